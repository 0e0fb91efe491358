/**
 * NeMo-RL runs: the per-step sample dumps in the logger's log dir (`logger.log_dir`, e.g. `logs/exp_001/`).
 * Read from NVIDIA-NeMo/RL at 7ea279a (Aug 2026):
 *
 * - `Logger.log_batched_dict_as_jsonl` (nemo_rl/utils/logger.py) writes one line per sample,
 *   `json.dumps({**sample, "idx": i}, default=str)`, where `sample` is a microbatch of ONE
 *   (`make_microbatch_iterator(1)`, tensors `.tolist()`-ed): every logged field is a list of one item
 *   (`"rewards": [0.5]`, `"token_ids": [[…]]`), only `idx` is bare. The file is rewritten whole (mode "w").
 * - `train_data_step{N}.jsonl`, GRPO (`grpo_train` in nemo_rl/algorithms/grpo.py) and PPO (ppo.py): `content`
 *   (the sample's messages' texts, `flat_messages["content"]`: a list of strings), `rewards`, `filtered_rewards`
 *   (with dynamic sampling), `agent_ref` (NeMo-Gym), `input_lengths` (the unpadded length of prompt + response),
 *   `token_ids` (`input_ids`: prompt and response, padded to the batch's longest), `token_loss_mask`
 *   (`token_mask`: 1 on tokens the loss trains, the assistant's), `sample_loss_mask`, `advantages` (per token),
 *   `generation_logprobs` (log π of each token under the generation engine, e.g. vLLM; 0 on prompt tokens),
 *   `prev_logprobs` (log π_old under the training policy before the update). Older versions logged only
 *   `content`, `rewards`, `generation_logprobs`, `prev_logprobs` and `input_lengths`.
 * - `val_data_step{N}.jsonl` (`validate` in grpo.py and ppo.py): `content` (the message log, a list of
 *   `{"role", "content"}` dicts) and `rewards` (`total_reward`).
 *
 * Each line becomes a lens PPO trace row (the rows `decodeJsonlTrace` reads, src/shared/traceJsonl.ts, with the
 * same `TraceTable` out): `score` ← rewards, `sample` ← idx, and over the response span, from the first to the
 * last token of `token_loss_mask` within `input_lengths`: `token_ids`, `logprob` ← generation_logprobs,
 * `advantage` ← advantages, and the extra per-token columns `prev_logprob` ← prev_logprobs and `loss_mask` (1 where
 * the loss trains the token; 0 inside the span marks a tool's or user's turn of a multi-turn rollout). Extra
 * per-sample columns: `prompt_length` (tokens before the span), `sample_loss_mask`, `filtered_reward`.
 * `prompt` is the messages before the last joined by blank lines and `response` the last message (roles are not
 * in the train dump; a multi-turn response's earlier turns are then in `prompt`).
 *
 * NOT logged by NeMo-RL, so absent in the lens (never 0): `tokens` (token text: the host decodes `token_ids`
 * with the run's tokenizer.json), `ref_logprob` and `kl` (the reference log-probs are computed for the loss but not
 * dumped), `value` (GRPO has no critic; PPO's values are not dumped), per-token `reward`, `return`, `entropy`,
 * `ratio` and `clip_class` (computed inside the loss), `oracle_score`. A line without `token_loss_mask` (older
 * versions) has no per-token data at all: nothing there says where the response starts.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeConvertedJsonl, type Converted, type ImportedStep } from './convertedLines';
import { readImportedFile } from './readText';
import type { NotLoggedField } from '../dashboardMessages';

/** What NeMo-RL's dumps do not hold (the comment above), as the dashboard explains it where a view is empty. */
export const nemoRlNotLogged: readonly NotLoggedField[] = [
  { field: 'tokens', how: "the run's tokenizer.json next to the dumps (the lens decodes token_ids with it)" },
  { field: 'ref_logprob', how: 'computed for the loss but not dumped: log the run with rlhf_lens.RunWriter' },
  { field: 'kl', how: 'the reference log-probs are not dumped: log the run with rlhf_lens.RunWriter' },
  { field: 'value', how: "GRPO has no critic; PPO's values are not dumped: log them with rlhf_lens.RunWriter" },
  {
    field: 'reward',
    how: 'only the sample reward is dumped (rewards): log per-token rewards with rlhf_lens.RunWriter',
  },
  { field: 'return', how: 'computed in the loss, not dumped: log it with rlhf_lens.RunWriter' },
  { field: 'entropy', how: 'computed in the loss, not dumped: log it with rlhf_lens.RunWriter' },
  { field: 'ratio', how: 'computed inside the loss, not dumped: log it with rlhf_lens.RunWriter' },
  { field: 'clip_class', how: 'computed inside the loss, not dumped: log it with rlhf_lens.RunWriter' },
  {
    field: 'metrics',
    how:
      'NeMo-RL logs metrics to TensorBoard / W&B: set logger.tensorboard_enabled=true ' +
      '(the lens reads the tfevents files)',
  },
];

export const nemoRlFilePattern = /^(train|val)_data_step(\d+)\.jsonl$/;

export type NemoRlSplit = 'train' | 'val';

export type NemoRlDecoded = ImportedStep;

/** A field of a batch-of-one sample: `[x]` → x; a bare value (another writer) is taken as is. */
function unwrap(value: unknown): unknown {
  return Array.isArray(value) && value.length === 1 ? value[0] : value;
}

/** A batch-of-one per-token list: `[[…]]` → the list (a flat list is taken as is). */
function unwrapList(value: unknown): unknown {
  return Array.isArray(value) && value.length === 1 && Array.isArray(value[0]) ? value[0] : value;
}

const isNumberOrNull = (value: unknown) => value === null || typeof value === 'number';

/** The texts of `content`: a train dump's list of strings or a val dump's list of {role, content} messages. */
function messagesOf(content: unknown): { role?: string; text: string }[] | string {
  const messages = unwrapList(content);
  if (messages === undefined || messages === null) return [];
  if (typeof messages === 'string') return [{ text: messages }];
  if (!Array.isArray(messages)) return 'field "content" must be a list of messages';
  const out: { role?: string; text: string }[] = [];
  for (const message of messages) {
    if (typeof message === 'string') out.push({ text: message });
    else if (typeof message === 'object' && message !== null && typeof message.content === 'string')
      out.push({ role: typeof message.role === 'string' ? message.role : undefined, text: message.content });
    else return 'field "content" must hold strings or {"role", "content"} messages';
  }
  return out;
}

/** One NeMo-RL line (parsed) as a line of the lens's JSONL trace, or why it is not usable. */
function convertLine(value: unknown, step: number, lineIndex: number): Converted {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'expected a JSON object (one sample per line)' };
  const nemo = value as Record<string, unknown>;
  const line: Record<string, unknown> = { step };
  const idx = nemo.idx ?? lineIndex;
  if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0)
    return { ok: false, reason: `field "idx" must be a whole number ≥ 0, not ${JSON.stringify(nemo.idx)}` };
  line.sample = idx;

  const messages = messagesOf(nemo.content);
  if (typeof messages === 'string') return { ok: false, reason: messages };
  const hasRoles = messages.some((message) => message.role !== undefined);
  const isResponse = (message: { role?: string }, index: number) =>
    hasRoles ? message.role === 'assistant' : index === messages.length - 1;
  line.prompt = messages
    .filter((message, index) => !isResponse(message, index))
    .map((message) => message.text)
    .join('\n\n');
  line.response = messages
    .filter(isResponse)
    .map((message) => message.text)
    .join('\n\n');

  for (const [from, to] of [
    ['rewards', 'score'],
    ['filtered_rewards', 'filtered_reward'],
    ['sample_loss_mask', 'sample_loss_mask'],
  ]) {
    if (nemo[from] === undefined) continue;
    const number = unwrap(nemo[from]);
    if (!isNumberOrNull(number))
      return { ok: false, reason: `field "${from}" must be [a number], not ${JSON.stringify(nemo[from])}` };
    line[to] = number;
  }

  if (nemo.token_loss_mask === undefined) return { ok: true, line };
  const perToken: Record<string, number[]> = {};
  for (const key of ['token_ids', 'token_loss_mask', 'generation_logprobs', 'prev_logprobs', 'advantages']) {
    if (nemo[key] === undefined) continue;
    const list = unwrapList(nemo[key]);
    if (!Array.isArray(list) || !list.every(isNumberOrNull))
      return { ok: false, reason: `field "${key}" must be [a list of numbers] (one per token of prompt and response)` };
    perToken[key] = list as number[];
  }
  const mask = perToken.token_loss_mask;
  const length = unwrap(nemo.input_lengths) ?? mask.length;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0)
    return {
      ok: false,
      reason: `field "input_lengths" must be [a whole number], not ${JSON.stringify(nemo.input_lengths)}`,
    };
  for (const [key, list] of Object.entries(perToken))
    if (list.length < length)
      return { ok: false, reason: `field "${key}" has ${list.length} entries but "input_lengths" is ${length}` };
  const first = mask.findIndex((flag, index) => index < length && flag === 1);
  let last = first;
  for (let index = first; index >= 0 && index < length; index++) if (mask[index] === 1) last = index;
  const [start, end] = first < 0 ? [length, length] : [first, last + 1];
  line.prompt_length = start;
  const span = (key: string) => perToken[key]?.slice(start, end);
  if (perToken.token_ids) {
    if (!perToken.token_ids.every((id) => Number.isInteger(id)))
      return { ok: false, reason: 'field "token_ids" must be [a list of whole numbers]' };
    line.token_ids = span('token_ids');
  }
  line.loss_mask = span('token_loss_mask');
  if (perToken.generation_logprobs) line.logprob = span('generation_logprobs');
  if (perToken.advantages) line.advantage = span('advantages');
  if (perToken.prev_logprobs) line.prev_logprob = span('prev_logprobs');
  return { ok: true, line };
}

/**
 * Decodes one `train_data_step{N}.jsonl` or `val_data_step{N}.jsonl` (its text and the name problems are
 * reported under) into a PPO trace table of step `step`. A malformed line is skipped and reported as
 * `file:line: …`; the others are kept.
 */
export function decodeNemoRlJsonl(file: string, text: string, step: number): NemoRlDecoded {
  return decodeConvertedJsonl(file, text, step, 'nemo-rl-jsonl', (value, index) => convertLine(value, step, index));
}

/** The steps of a NeMo-RL log dir that have a dump of `split`, ascending. */
export async function listNemoRlSteps(logDir: string, split: NemoRlSplit = 'train'): Promise<number[]> {
  const steps: number[] = [];
  for (const name of await readdir(logDir)) {
    const match = nemoRlFilePattern.exec(name);
    if (match && match[1] === split) steps.push(Number(match[2]));
  }
  return steps.sort((a, b) => a - b);
}

/** The file of step `step`'s dump of `split`. */
export function nemoRlFile(logDir: string, step: number, split: NemoRlSplit = 'train'): string {
  return path.join(logDir, `${split}_data_step${step}.jsonl`);
}

/** Reads and decodes one step's dump; a missing file is a UserError naming it. */
export async function readNemoRlStep(
  logDir: string,
  step: number,
  split: NemoRlSplit = 'train',
): Promise<NemoRlDecoded> {
  const file = nemoRlFile(logDir, step, split);
  return decodeNemoRlJsonl(file, await readImportedFile(file, `NeMo-RL ${split} dump of step ${step}`), step);
}
