/**
 * One submission's elements as the Runs view lists them: its run folders, the controller's states and, for a job
 * that died before its trainer started, the end of its output file (all the user has to learn why). No editor API:
 * clusterRuns.ts calls it every poll, and the unit tests call it against the real cluster.
 */
import { promises as fs } from 'node:fs';
import { clusterElements, outputTailLines, type ClusterElement, type OutputTail } from './clusterElements';
import type { SlurmJobState } from './slurmJobState';
import { readOutputTail, readSubmissionRuns, type Submission } from './submissions';

/** The end of an output file, or `exists: false` when there is no such file. */
export async function readOutputFileTail(file: string, count = outputTailLines): Promise<OutputTail> {
  const exists = await fs.stat(file).then(
    (stat) => stat.isFile(),
    () => false,
  );
  if (!exists) return { exists: false, lines: [] };
  const text = await readOutputTail(file, count);
  return { exists: true, lines: text ? text.split('\n') : [] };
}

/**
 * The elements of `submission` (see `clusterElements`), with the output's end for each that died before its
 * trainer started; only those files are read, once a poll.
 */
export async function listSubmissionElements(
  submission: Submission,
  jobs: readonly SlurmJobState[] | undefined,
  slurmProblem?: string,
): Promise<ClusterElement[]> {
  const runs = await readSubmissionRuns(submission);
  const elements = clusterElements(submission, runs, jobs, slurmProblem);
  const died = elements.filter((element) => element.diedBeforeTrainer);
  if (died.length === 0) return elements;
  const tails = new Map<string, OutputTail>();
  for (const element of died) tails.set(element.outputFile, await readOutputFileTail(element.outputFile));
  return clusterElements(submission, runs, jobs, slurmProblem, tails);
}
