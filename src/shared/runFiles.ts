/**
 * Validators for the files a run folder and a checkpoint hold, so a damaged or planted file stops a
 * reader with the file and the field named instead of a TypeError, a wrong step or a path outside
 * the runs folder:
 *   run.json              (host lists, dashboard, resume: runJsonProblems)
 *   trainer_state.json    (checkTrainerState)
 *   config.json           of a checkpoint (checkCheckpointConfig)
 *   tokenizer_config.json (checkTokenizerConfig; tokenizer.json's structure is checked by BpeTokenizer.fromJSON)
 * Pure: text and values in, no file access, so the host, the trainer and tests share one validator.
 */
import { checkpointModelTypes, type CheckpointConfig } from './gptShape';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { isRecord } from './isRecord';
import { lineAndColumn } from './textPosition';
import { quote } from './userError';

/** A file that does not hold what its reader needs; the message starts with the file (and the field). */
export class FileFormatError extends Error {
  override readonly name = 'FileFormatError';
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
    advice = '',
  ) {
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`${file}: ${problems.slice(0, 5).join('; ')}${more}${advice ? ` — ${advice}` : ''}`);
  }
}

function kindOf(value: unknown): string {
  return value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : typeof value === 'object'
        ? 'an object'
        : quote(value);
}

/** jsonc-parser's error codes in words. */
const parseErrorWords: Record<string, string> = {
  InvalidSymbol: 'an unexpected character',
  InvalidNumberFormat: 'a malformed number',
  PropertyNameExpected: 'a property name expected',
  ValueExpected: 'a value expected',
  ColonExpected: '":" expected',
  CommaExpected: '"," expected',
  CloseBraceExpected: '"}" expected',
  CloseBracketExpected: '"]" expected',
  EndOfFileExpected: 'more text after the JSON value',
  InvalidCommentToken: 'a comment, which JSON does not allow',
  UnexpectedEndOfString: 'a string that is not closed',
  UnexpectedEndOfNumber: 'a number cut short',
  InvalidUnicode: 'an invalid \\u escape',
  InvalidEscapeCharacter: 'an invalid escape',
  InvalidCharacter: 'a control character inside a string',
};

/**
 * JSON.parse, with a failure that names the file, the line and column and what is wrong there
 * (jsonc-parser finds the position: V8 says only "Unexpected end of JSON input" for a cut file).
 */
export function parseJsonText(
  text: string,
  file: string,
  advice = 'the file is damaged or cut short; restore it or write it again',
): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const errors: ParseError[] = [];
    parse(text, errors, { allowTrailingComma: false, disallowComments: true, allowEmptyContent: false });
    const first = errors[0];
    const position = lineAndColumn(text, first ? first.offset : text.length);
    const where = `${position.line}:${position.column}`;
    const what = first
      ? (parseErrorWords[printParseErrorCode(first.error)] ?? printParseErrorCode(first.error))
      : (error as Error).message;
    // An error at the very end is what a cut file gives.
    const end =
      text.length === 0
        ? ', the file is empty'
        : first && first.offset >= text.trimEnd().length
          ? ', at the end of the file: is it cut short?'
          : '';
    throw new FileFormatError(`${file}:${where}`, [`not valid JSON (${what}${end})`], advice);
  }
}

/** Checks the fields of one JSON object, collecting a `field must …, got …` line per problem. */
export class FieldChecker {
  readonly problems: string[] = [];
  constructor(
    readonly record: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private fail(key: string, what: string, value: unknown): undefined {
    this.problems.push(`${this.prefix}${key} ${what}, got ${kindOf(value)}`);
    return undefined;
  }

  private absent(key: string, optional: boolean): boolean {
    if (this.record[key] !== undefined) return false;
    if (!optional) this.problems.push(`${this.prefix}${key} is missing`);
    return true;
  }

  wholeNumber(key: string, options: { min?: number; max?: number; optional?: boolean } = {}): number | undefined {
    const { min = 0, max, optional = false } = options;
    if (this.absent(key, optional)) return undefined;
    const value = this.record[key];
    const range = max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || (max !== undefined && value > max))
      return this.fail(key, `must be a whole number ${range}`, value);
    return value;
  }

  number(key: string, options: { min?: number; max?: number; optional?: boolean } = {}): number | undefined {
    const { min = -Infinity, max = Infinity, optional = false } = options;
    if (this.absent(key, optional)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      return this.fail(
        key,
        `must be a number${Number.isFinite(min) ? ` ≥ ${min}` : ''}${Number.isFinite(max) ? ` and ≤ ${max}` : ''}`,
        value,
      );
    }
    return value;
  }

  string(key: string, options: { optional?: boolean; nonEmpty?: boolean } = {}): string | undefined {
    if (this.absent(key, options.optional ?? false)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'string' || (options.nonEmpty && value.length === 0))
      return this.fail(key, `must be a ${options.nonEmpty ? 'non-empty ' : ''}string`, value);
    return value;
  }

  oneOf<V extends string>(key: string, values: readonly V[], options: { optional?: boolean } = {}): V | undefined {
    if (this.absent(key, options.optional ?? false)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value))
      return this.fail(key, `must be one of ${values.join(', ')}`, value);
    return value as V;
  }

  date(key: string, options: { optional?: boolean } = {}): string | undefined {
    if (this.absent(key, options.optional ?? false)) return undefined;
    const value = this.record[key];
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
      return this.fail(key, 'must be an ISO 8601 date string', value);
    return value;
  }

  object(key: string, options: { optional?: boolean } = {}): Record<string, unknown> | undefined {
    if (this.absent(key, options.optional ?? false)) return undefined;
    const value = this.record[key];
    if (!isRecord(value)) return this.fail(key, 'must be a JSON object', value);
    return value;
  }

  /** An object whose every value is a string (versions, metadata). */
  stringMap(key: string, options: { optional?: boolean } = {}): void {
    const map = this.object(key, options);
    for (const [name, value] of Object.entries(map ?? {}))
      if (typeof value !== 'string') this.fail(`${key}.${name}`, 'must be a string', value);
  }

  stringList(key: string, options: { optional?: boolean } = {}): void {
    if (this.absent(key, options.optional ?? false)) return;
    const value = this.record[key];
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
      this.fail(key, 'must be a list of strings', value);
  }

  /** A nested object checked field by field; its problems carry the `key.` prefix. */
  nested(key: string, checkFields: (fields: FieldChecker) => void, options: { optional?: boolean } = {}): void {
    const value = this.object(key, options);
    if (!value) return;
    const inner = new FieldChecker(value, `${this.prefix}${key}.`);
    checkFields(inner);
    this.problems.push(...inner.problems);
  }
}

/** The problems of a JSON value that must be an object, before any field is looked at. */
export function objectProblems(value: unknown): string[] {
  return isRecord(value) ? [] : [`must be a JSON object, got ${kindOf(value)}`];
}

export const runStatusValues = ['created', 'running', 'completed', 'failed', 'stopped'] as const;

const outputFields = (fields: FieldChecker) => {
  fields.string('checkpoint', { optional: true });
  fields.string('preferences', { optional: true });
};

/**
 * run.json's fields, the same for the host's lists and the trainer's resume: every field that is
 * present has its type; `name`, `status` and `started_at` are required unless `header` is
 * 'optional'. The trainer adds what resuming needs (runJsonCheck.ts).
 */
export function runJsonProblems(value: unknown, options: { header?: 'required' | 'optional' } = {}): string[] {
  if (!isRecord(value)) return objectProblems(value);
  const fields = new FieldChecker(value);
  // Readers of single fields (the Runs view's details) take a run.json whose header another reader reports.
  const optional = options.header === 'optional';
  fields.string('id', { optional: true, nonEmpty: true });
  fields.string('name', { nonEmpty: true, optional });
  fields.oneOf('status', runStatusValues, { optional });
  fields.date('started_at', { optional });
  fields.date('ended_at', { optional: true });
  for (const key of [
    'stage',
    'backend',
    'backend_reason',
    'backend_adapter',
    'engine',
    'engine_reason',
    'config_file',
    'error',
    'last_checkpoint',
  ])
    fields.string(key, { optional: true });
  for (const key of ['stage_index', 'step', 'max_steps', 'parameters', 'train_examples', 'eval_examples'])
    fields.wholeNumber(key, { optional: true });
  // `inspect --seed` takes any number; JSON writes a NaN loss as null.
  fields.number('seed', { optional: true });
  if (value.unigram_eval_loss !== null) fields.number('unigram_eval_loss', { optional: true });
  fields.stringMap('versions', { optional: true });
  fields.stringList('resumed_at', { optional: true });
  fields.nested('outputs', outputFields, { optional: true });
  const earlier = fields.object('stage_outputs', { optional: true });
  for (const name of Object.keys(earlier ?? {})) {
    const inner = new FieldChecker(earlier as Record<string, unknown>, 'stage_outputs.');
    inner.nested(name, outputFields);
    fields.problems.push(...inner.problems);
  }
  fields.object('summary', { optional: true });
  return fields.problems;
}

/** trainer_state.json: the step a resumed stage starts from, and what each stage keeps there. */
export interface CheckedTrainerState {
  readonly global_step: number;
  readonly max_steps: number;
  readonly stage: string;
  readonly seed: number;
  readonly [key: string]: unknown;
}

/**
 * Throws a FileFormatError naming `file` and the field. A checkpoint copied into another `step-<n>`
 * folder is allowed (export reads such copies), so the folder's step is not compared.
 */
export function checkTrainerState(value: unknown, file: string): CheckedTrainerState {
  const advice = 'this checkpoint cannot be resumed; delete its folder to resume from the one before';
  if (!isRecord(value)) throw new FileFormatError(file, objectProblems(value), advice);
  const fields = new FieldChecker(value);
  const step = fields.wholeNumber('global_step');
  const maxSteps = fields.wholeNumber('max_steps');
  const stage = fields.string('stage', { nonEmpty: true });
  fields.wholeNumber('seed');
  if (step !== undefined && maxSteps !== undefined && step > maxSteps)
    fields.problems.push(`global_step ${step} is beyond max_steps ${maxSteps}`);
  if (stage === 'ppo') {
    fields.number('kl_coef', { min: 0 });
    fields.nested('score_moments', (moments) => {
      moments.number('mean');
      moments.number('variance', { min: 0 });
      moments.number('count', { min: 0 });
    });
  }
  if (fields.problems.length > 0) throw new FileFormatError(file, fields.problems, advice);
  return value as CheckedTrainerState;
}

/**
 * A checkpoint's config.json: a Hugging Face config (model_type gpt2, llama, qwen2 or mistral) with the `rlhf_lens`
 * key, or the format before it (model_type "rlhf-lens-gpt"). Only what a reader needs before the weights is checked
 * here; the trainer reads the architecture's every key with transformers' defaults (hf/hfConfig.ts).
 */
export function checkCheckpointConfig(value: unknown, file: string): CheckpointConfig {
  const advice =
    `a checkpoint written by RLHF Lens has model_type ${checkpointModelTypes.join(', ')} and an "rlhf_lens" key ` +
    '(or, before, model_type "rlhf-lens-gpt"); restore the file';
  if (!isRecord(value)) throw new FileFormatError(file, objectProblems(value), advice);
  const fields = new FieldChecker(value);
  if (value.model_type === 'rlhf-lens-gpt') legacyCheckpointFields(fields, value);
  else if ((checkpointModelTypes as readonly unknown[]).includes(value.model_type)) hfCheckpointFields(fields, value);
  else
    fields.problems.push(
      `model_type must be one of ${[...checkpointModelTypes, 'rlhf-lens-gpt'].join(', ')}, ` +
        `got ${kindOf(value.model_type)}`,
    );
  if (fields.problems.length > 0) throw new FileFormatError(file, fields.problems, advice);
  return value as unknown as CheckpointConfig;
}

function headListProblem(headList: unknown, field: string): string | undefined {
  if (Array.isArray(headList) && headList.every((head) => head === 'v_head' || head === 'score')) return undefined;
  return `${field} must be a list of "v_head" and "score", got ${kindOf(headList)}`;
}

function legacyCheckpointFields(fields: FieldChecker, value: Record<string, unknown>): void {
  const vocab = fields.wholeNumber('vocab_size', { min: 1, max: 1 << 24 });
  fields.wholeNumber('block_size', { min: 1, max: 1 << 20 });
  fields.wholeNumber('n_layer', { min: 1, max: 1024 });
  const heads = fields.wholeNumber('n_head', { min: 1, max: 1024 });
  const width = fields.wholeNumber('n_embd', { min: 1, max: 1 << 16 });
  if (heads !== undefined && width !== undefined && width % heads !== 0)
    fields.problems.push(`n_embd ${width} must be divisible by n_head ${heads}`);
  fields.number('dropout', { min: 0, max: 0.99 });
  fields.oneOf('score_pooling', ['last', 'sum'], { optional: true });
  const headProblem = headListProblem(value.heads, 'heads');
  if (headProblem) fields.problems.push(headProblem);
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id'])
    fields.wholeNumber(key, { max: vocab === undefined ? undefined : vocab - 1 });
}

function hfCheckpointFields(fields: FieldChecker, value: Record<string, unknown>): void {
  const vocab = fields.wholeNumber('vocab_size', { min: 1, max: 1 << 24 });
  const gpt2 = value.model_type === 'gpt2';
  const layers = gpt2 ? 'n_layer' : 'num_hidden_layers';
  const width = gpt2 ? 'n_embd' : 'hidden_size';
  const attentionHeads = gpt2 ? 'n_head' : 'num_attention_heads';
  fields.wholeNumber(layers, { min: 1, max: 1024 });
  const widthValue = fields.wholeNumber(width, { min: 1, max: 1 << 16 });
  const headCount = fields.wholeNumber(attentionHeads, { min: 1, max: 1024 });
  // The Llama family may set head_dim instead; GPT-2 always splits the width.
  if (gpt2 && widthValue !== undefined && headCount !== undefined && widthValue % headCount !== 0)
    fields.problems.push(`${width} ${widthValue} must be divisible by ${attentionHeads} ${headCount}`);
  const maxId = vocab === undefined ? undefined : vocab - 1;
  fields.wholeNumber('pad_token_id', { max: maxId });
  fields.nested('rlhf_lens', (lens) => {
    lens.wholeNumber('block_size', { min: 1, max: 1 << 20 });
    lens.oneOf('score_pooling', ['last', 'sum'], { optional: true });
    lens.oneOf('tokenizer', ['bpe', 'hf']);
  });
  const lens = value.rlhf_lens;
  const headProblem = isRecord(lens) ? headListProblem(lens.heads, 'rlhf_lens.heads') : undefined;
  if (headProblem) fields.problems.push(headProblem);
}

/** tokenizer_config.json (transformers): only the fields RLHF Lens writes are checked, when present. */
export function checkTokenizerConfig(value: unknown, file: string): void {
  const advice = 'restore it, or delete it: RLHF Lens reads the tokenizer from tokenizer.json';
  if (!isRecord(value)) throw new FileFormatError(file, objectProblems(value), advice);
  const fields = new FieldChecker(value);
  fields.string('tokenizer_class', { optional: true });
  // transformers writes a special token as its text, or (older versions) as an AddedToken object.
  for (const key of ['bos_token', 'eos_token', 'pad_token']) {
    const token = value[key];
    if (
      token !== undefined &&
      token !== null &&
      typeof token !== 'string' &&
      !(isRecord(token) && typeof token.content === 'string')
    )
      fields.problems.push(`${key} must be a string or {"content": string}, got ${kindOf(token)}`);
  }
  // transformers writes 1e30 for "no limit", so any positive number.
  fields.number('model_max_length', { min: 1, optional: true });
  fields.object('added_tokens_decoder', { optional: true });
  if (fields.problems.length > 0) throw new FileFormatError(file, fields.problems, advice);
}

/**
 * The special-token ids an ONNX folder's config.json names (`bos_token_id`, …), else `fallback`
 * (the tokenizer's own); each must be a token of the vocabulary.
 */
export function specialTokenIds(
  value: unknown,
  file: string,
  fallback: { bos: number; eos: number; pad: number },
  vocabSize: number,
): { bos: number; eos: number; pad: number } {
  if (!isRecord(value)) throw new FileFormatError(file, objectProblems(value));
  const fields = new FieldChecker(value);
  const id = (key: string, otherwise: number) =>
    fields.wholeNumber(key, { max: vocabSize - 1, optional: true }) ?? otherwise;
  const ids = {
    bos: id('bos_token_id', fallback.bos),
    eos: id('eos_token_id', fallback.eos),
    pad: id('pad_token_id', fallback.pad),
  };
  if (fields.problems.length > 0)
    throw new FileFormatError(file, fields.problems, `the tokenizer beside it has ${vocabSize} tokens`);
  return ids;
}
