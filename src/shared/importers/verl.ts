/**
 * verl runs: the rollout dumps of `trainer.rollout_data_dir` (training batches) and `trainer.validation_data_dir`
 * (validation), one `<dir>/<global_step>.jsonl` per step. Read from volcengine/verl, verl/trainer/ppo/ray_trainer.py:
 *
 * - `RayPPOTrainer._dump_generations(inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path)` writes
 *   `os.path.join(dump_path, f"{self.global_steps}.jsonl")`, rewritten whole (mode "w"), one line per sample,
 *   `json.dumps(entry, ensure_ascii=False)` of `{"input", "output", "gts", "score", "step"}` plus every list of
 *   `reward_extra_infos_dict` as long as the batch (a custom reward function's extra infos, e.g. `acc`, `pred`),
 *   under its own key; lines joined by "\n" with a final "\n". Older versions have no `gts`.
 * - `_log_rollout_data` (training): `input` and `output` are the prompt and response token ids decoded with
 *   `skip_special_tokens=True` (newer versions strip only the pad token), `score` is
 *   `token_level_scores.sum(-1)` (the reward before any in-reward KL penalty), `gts` is each sample's
 *   `reward_model.ground_truth` (None when the dataset has none). `_validate` dumps the same fields for its samples.
 *
 * Each line becomes a lens PPO trace row (the rows `decodeJsonlTrace` reads, src/shared/traceJsonl.ts): `prompt` ←
 * input, `response` ← output, `score` ← score, `sample` ← the line's place in the file (verl writes no index),
 * `ground_truth` ← gts (any JSON value) and each extra reward info as an extra per-sample column under its own
 * name (`reward_extra_<name>` where the name is one of the lens's own columns).
 *
 * NOT logged by verl's dump, so absent in the lens (never 0): everything per token — `tokens`, `token_ids`,
 * `logprob` (old_log_probs), `ref_logprob` (ref_log_prob), `kl`, `value` (values), `reward` (token_level_rewards),
 * `advantage` (advantages), `return` (returns), `entropy` (computed in the actor and dropped), `ratio`,
 * `clip_class` — all in the batch when the dump is written, but not dumped; and `oracle_score`.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeConvertedJsonl, reservedColumns, type Converted, type ImportedStep } from './convertedLines';
import { readImportedFile } from './readText';
import type { NotLoggedField } from '../dashboardMessages';

/** The adapter that dumps what verl's rollout dump leaves out. */
const verlAdapter = "the rlhf_lens verl adapter (python/rlhf_lens/adapters) dumps the batch's per-token keys";

/** What verl's dump does not hold (the comment above), as the dashboard explains it where a view is empty. */
export const verlNotLogged: readonly NotLoggedField[] = [
  ...['tokens', 'token_ids', 'logprob', 'ref_logprob', 'kl', 'value', 'reward', 'advantage', 'return', 'ratio'].map(
    (field) => ({ field, how: verlAdapter }),
  ),
  { field: 'entropy', how: 'computed in the actor and dropped: the rlhf_lens verl adapter keeps and dumps it' },
  { field: 'clip_class', how: verlAdapter },
  {
    field: 'metrics',
    how:
      "verl logs metrics to its trainer.logger backends: add 'tensorboard' to trainer.logger " +
      '(the lens reads the tfevents files)',
  },
];

export const verlFilePattern = /^(\d+)\.jsonl$/;

export type VerlDecoded = ImportedStep;

/** One verl line (parsed) as a line of the lens's JSONL trace, or why it is not usable. */
function convertLine(value: unknown, step: number, lineIndex: number): Converted {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'expected a JSON object (one sample per line)' };
  const verl = value as Record<string, unknown>;
  if (verl.step !== undefined && verl.step !== step)
    return { ok: false, reason: `field "step" is ${JSON.stringify(verl.step)} in the file of step ${step}` };
  const line: Record<string, unknown> = { step, sample: lineIndex };
  for (const [from, to] of [
    ['input', 'prompt'],
    ['output', 'response'],
  ]) {
    if (verl[from] === undefined || verl[from] === null) continue;
    if (typeof verl[from] !== 'string')
      return { ok: false, reason: `field "${from}" must be a string (the decoded text), not ${typeof verl[from]}` };
    line[to] = verl[from];
  }
  if (verl.score !== undefined) {
    // A reward function may return a bool; Python's json.dumps writes it as true/false.
    const score = typeof verl.score === 'boolean' ? Number(verl.score) : verl.score;
    if (score !== null && typeof score !== 'number')
      return { ok: false, reason: `field "score" must be a number, not ${JSON.stringify(verl.score)}` };
    line.score = score;
  }
  if (verl.gts !== undefined) line.ground_truth = verl.gts;
  for (const [key, extra] of Object.entries(verl)) {
    if (['input', 'output', 'gts', 'score', 'step'].includes(key)) continue;
    line[reservedColumns.has(key) ? `reward_extra_${key}` : key] = extra;
  }
  return { ok: true, line };
}

/**
 * Decodes one `<global_step>.jsonl` of a verl rollout or validation dump dir (its text and the name problems are
 * reported under) into a PPO trace table of step `step`. A malformed line is skipped and reported as
 * `file:line: …`; the others are kept.
 */
export function decodeVerlJsonl(file: string, text: string, step: number): VerlDecoded {
  return decodeConvertedJsonl(file, text, step, 'verl-jsonl', (value, index) => convertLine(value, step, index));
}

/** The steps of a verl dump dir (`rollout_data_dir` or `validation_data_dir`), ascending. */
export async function listVerlSteps(dumpDir: string): Promise<number[]> {
  const steps: number[] = [];
  for (const name of await readdir(dumpDir)) {
    const match = verlFilePattern.exec(name);
    if (match) steps.push(Number(match[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** The file of step `step` in a verl dump dir. */
export function verlFile(dumpDir: string, step: number): string {
  return path.join(dumpDir, `${step}.jsonl`);
}

/** Reads and decodes one step's dump; a missing file is a UserError naming it. */
export async function readVerlStep(dumpDir: string, step: number): Promise<VerlDecoded> {
  const file = verlFile(dumpDir, step);
  return decodeVerlJsonl(file, await readImportedFile(file, `verl rollout dump of step ${step}`), step);
}
