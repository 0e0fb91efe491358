/**
 * The run folders of test/vscode/externalRuns.test.ts, one per engine, each written the way its engine writes it
 * (test/fixtures/engineRuns.ts, trlGrpoRun.ts; the Python package's PyTorch example) and moved to a folder whose
 * name the Runs view shows. The NeMo-RL log dir is written with NeMo-RL's own dump function over ids of the
 * tokenizer saved beside it (the fixture's made-up ids would decode to control characters), so its token texts
 * read as words.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { nemoRun, pythonFixture, writeBoardRun, writeVerlRun } from '../fixtures/engineRuns';
import { writeTrlGrpoRun } from '../fixtures/trlGrpoRun';
import { repoRoot } from './codeServer';

/** The samples of each NeMo-RL train step: the user's message and the assistant's reply (content's two strings). */
export const nemoSamples: readonly (readonly [string, string])[] = [
  ['add five and seven', 'then two.'],
  ['add two and five', 'seven, then five.'],
  ['then seven', 'add two.'],
];
/** generation_logprobs of the response's i-th token of sample s (made up, different per token). */
export const nemoLogprob = (s: number, i: number) => -0.125 * (i + 1) - 0.5 * s;
/** advantages of sample s (GRPO: one value over the whole response). */
export const nemoAdvantage = [1, -0.5, 0.25];

export interface NemoRlFolder {
  readonly folder: string;
  readonly tokenizer: BpeTokenizer;
  /** The response's token ids of each sample. */
  readonly responseIds: readonly number[][];
}

/** A NeMo-RL log dir: train_data_step1/2.jsonl by Logger.log_batched_dict_as_jsonl, and the run's tokenizer.json. */
export async function writeNemoRlFolder(folder: string): Promise<NemoRlFolder> {
  mkdirSync(folder, { recursive: true });
  const tokenizer = new BpeTokenizer(trainBpe(['add five and seven, then two. '.repeat(20)], { vocabSize: 300 }));
  await tokenizer.save(folder);
  const encoded = nemoSamples.map(([prompt, response]) => [tokenizer.encode(prompt), tokenizer.encode(response)]);
  const width = Math.max(...encoded.map(([prompt, response]) => prompt.length + response.length));
  // Padded to the batch's longest, as NeMo-RL's batched input_ids are; 0 past input_lengths.
  const pad = (values: number[]) => [...values, ...new Array<number>(width - values.length).fill(0)];
  const columns = {
    content: nemoSamples.map((sample) => [...sample]),
    rewards: [1, 0, 0.5],
    input_lengths: encoded.map(([prompt, response]) => prompt.length + response.length),
    token_ids: encoded.map(([prompt, response]) => pad([...prompt, ...response])),
    token_loss_mask: encoded.map(([prompt, response]) => pad([...prompt.map(() => 0), ...response.map(() => 1)])),
    sample_loss_mask: [1, 1, 1],
    advantages: encoded.map(([prompt, response], s) =>
      pad([...prompt.map(() => 0), ...response.map(() => nemoAdvantage[s])]),
    ),
    generation_logprobs: encoded.map(([prompt, response], s) =>
      pad([...prompt.map(() => 0), ...response.map((_, i) => nemoLogprob(s, i))]),
    ),
  };
  pythonFixture(
    `${nemoRun.split('content = ')[0]}
log_data = json.loads(${JSON.stringify(JSON.stringify(columns))})
log_data["prev_logprobs"] = log_data["generation_logprobs"]
log_batched_dict_as_jsonl(log_data, "train_data_step1.jsonl")
log_batched_dict_as_jsonl(log_data, "train_data_step2.jsonl")
`,
    folder,
  );
  return { folder, tokenizer, responseIds: encoded.map(([, response]) => response) };
}

/** Moves a fixture writer's temp folder to `to` (the name the Runs view shows). */
function moveTo(from: string, to: string): string {
  renameSync(from, to);
  return to;
}

export const writeTrlGrpoFolder = (to: string) => moveTo(writeTrlGrpoRun([1, 2]), to);
export const writeVerlFolder = (to: string) => moveTo(writeVerlRun(), to);
export const writeBoardFolder = (to: string) => moveTo(writeBoardRun(), to);

/** One line of the example's traces/step-<n>.jsonl (the fields the test checks). */
export interface PythonTraceRow {
  prompt: string;
  response: string;
  tokens: string[];
  ratio: number[][];
  clip_class: number[][];
}

/** The PyTorch PPO example's run (python/examples/minimal_ppo.py with RunWriter) written by /usr/bin/python3. */
export function writePythonExampleRun(runDir: string, iterations: number): void {
  const example = join(repoRoot, 'python', 'examples', 'minimal_ppo.py');
  const result = spawnSync('/usr/bin/python3', [example, '--run-dir', runDir, '--iterations', `${iterations}`], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.status !== 0) throw new Error(`the example failed:\n${result.stdout}\n${result.stderr}`);
}

export function pythonTrace(runDir: string, step: number): PythonTraceRow[] {
  return readFileSync(join(runDir, 'traces', `step-${step}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PythonTraceRow);
}

export function pythonMetrics(runDir: string): Record<string, number>[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, number>);
}

/** A folder with files of no engine (notes and a CSV). */
export function writeUnknownFolder(folder: string): void {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'notes.txt'), 'not a run\n');
  writeFileSync(join(folder, 'scores.csv'), 'step,score\n1,0.5\n');
  if (readdirSync(folder).length !== 2) throw new Error(`${folder} has other files`);
}
