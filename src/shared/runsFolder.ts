/**
 * Reads the runs folder of a workspace (`.rlhf/runs/`): one summary per `<run-id>/run.json`, and a problem
 * naming the file for each one that cannot be read. No `vscode`: the CLI and tests use it too.
 */
import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import { compareRunsNewestFirst, parseRunJson, type RunReadProblem, type RunSummary } from './runSummary';
import { isTemporaryName } from './durableWrite';

/** Relative to the workspace root. */
export const defaultRunsFolder = path.join('.rlhf', 'runs');

export interface RunsListing {
  readonly runs: RunSummary[];
  readonly problems: RunReadProblem[];
}

export async function listRuns(runsFolder: string): Promise<RunsListing> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(runsFolder, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { runs: [], problems: [] };
    throw error;
  }
  const runs: RunSummary[] = [];
  const problems: RunReadProblem[] = [];
  await Promise.all(
    entries
      // A folder under a temporary name is a run still being created (or one whose trainer was killed while creating
      // it): it is not a run yet, and nothing can resume it.
      .filter((entry) => entry.isDirectory() && !isTemporaryName(entry.name))
      .map(async (entry) => {
        const file = path.join(runsFolder, entry.name, 'run.json');
        let text: string;
        try {
          text = await fs.readFile(file, 'utf8');
        } catch (error) {
          // A run directory whose trainer has not written run.json yet is not a problem.
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          problems.push({ file, message: (error as Error).message });
          return;
        }
        const parsed = parseRunJson(text, entry.name);
        if (parsed.ok) runs.push(parsed.run);
        else problems.push({ file, message: parsed.message });
      }),
  );
  runs.sort(compareRunsNewestFirst);
  problems.sort((a, b) => a.file.localeCompare(b.file));
  return { runs, problems };
}
