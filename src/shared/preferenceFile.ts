/**
 * Reads a preference file line by line: judgments in order, retractions honoured, and every
 * malformed line (not UTF-8 included) reported as file:line with the field, while the good lines are kept.
 */
import { writeFileDurable } from './durableWrite';
import { readJsonlLines } from './jsonlLines';
import { judgmentPairs, parsePreferenceLine, type Judgment } from './preferences';

export interface PreferenceFileProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface PreferenceFileRead {
  readonly judgments: Judgment[];
  readonly problems: PreferenceFileProblem[];
  readonly retracted: number;
}

export async function readPreferenceFile(file: string): Promise<PreferenceFileRead> {
  const judgments = new Map<string, Judgment>();
  const problems: PreferenceFileProblem[] = [];
  let retracted = 0;
  try {
    for await (const read of readJsonlLines(file)) {
      const lineNumber = read.line;
      if ('problem' in read) {
        problems.push({ file, line: lineNumber, message: read.problem });
        continue;
      }
      const text = read.text;
      if (text.trim() === '') continue;
      try {
        const line = parsePreferenceLine(text, lineNumber);
        if (line.kind === 'retraction') {
          if (judgments.delete(line.retraction.retracts)) retracted++;
          else
            problems.push({
              file,
              line: lineNumber,
              message: `retracts "${line.retraction.retracts}", which no earlier line holds`,
            });
        } else {
          if (judgments.has(line.judgment.id))
            problems.push({
              file,
              line: lineNumber,
              message: `field "id": "${line.judgment.id}" appears again; the later judgment replaces the earlier`,
            });
          judgments.set(line.judgment.id, line.judgment);
        }
      } catch (error) {
        problems.push({ file, line: lineNumber, message: (error as Error).message });
      }
    }
  } catch (error) {
    throw new Error(`Cannot read the preference file ${file}: ${(error as Error).message}`);
  }
  return { judgments: [...judgments.values()], problems, retracted };
}

export function formatPreferenceProblem(problem: PreferenceFileProblem): string {
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

export interface PairwiseExport {
  readonly pairs: number;
  readonly judgments: number;
  readonly problems: PreferenceFileProblem[];
}

/**
 * Writes TRL's pairwise JSONL (`{"prompt", "chosen", "rejected"}` per line): every pair of every live
 * judgment, ties skipped. Written durably (shared/durableWrite.ts), so `output` is whole or absent.
 */
export async function exportTrlPairwise(input: string, output: string): Promise<PairwiseExport> {
  const read = await readPreferenceFile(input);
  const lines = read.judgments.flatMap((judgment) =>
    judgmentPairs(judgment).map(({ prompt, chosen, rejected }) => JSON.stringify({ prompt, chosen, rejected })),
  );
  writeFileDurable(output, lines.map((line) => `${line}\n`).join(''));
  return { pairs: lines.length, judgments: read.judgments.length, problems: read.problems };
}
