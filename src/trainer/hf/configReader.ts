/**
 * Typed reads of one JSON object's keys, each problem a UserError naming the file and the key (`field`), so a
 * malformed config.json says where to look. An absent key (or null, which transformers treats the same for these
 * keys) takes the default the caller passes: the one transformers' configuration class has.
 */
import { quote, UserError } from '../../shared/userError';

export class ConfigReader {
  constructor(
    readonly json: Record<string, unknown>,
    readonly file: string,
    /** Prefix of every field named in errors (e.g. `rope_scaling.` for a nested object). */
    readonly fieldPrefix = '',
  ) {}

  has(key: string): boolean {
    return Object.hasOwn(this.json, key) && this.json[key] !== null && this.json[key] !== undefined;
  }

  problem(key: string, what: string, hint?: string): UserError {
    return new UserError(what, { file: this.file, field: `${this.fieldPrefix}${key}`, hint });
  }

  /** A required key: absence is an error. */
  required(key: string): unknown {
    if (!this.has(key)) throw this.problem(key, 'is missing');
    return this.json[key];
  }

  positiveInteger(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
      throw this.problem(key, `must be a positive integer, got ${quote(value)}`);
    return value;
  }

  positiveNumber(key: string, fallback: number): number {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      throw this.problem(key, `must be a positive number, got ${quote(value)}`);
    return value;
  }

  requiredPositiveNumber(key: string): number {
    this.required(key);
    return this.positiveNumber(key, Number.NaN);
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== 'boolean') throw this.problem(key, `must be true or false, got ${quote(value)}`);
    return value;
  }

  /** A token id: a non-negative integer, or null when absent and there is no default. */
  tokenId(key: string, fallback: number | null): number | null {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (!isTokenId(value)) throw this.problem(key, `must be a token id (a non-negative integer), got ${quote(value)}`);
    return value;
  }

  /** A token id or a list of them (`eos_token_id` may list several); [] when absent and no default. */
  tokenIds(key: string, fallback: number | null): number[] {
    if (!this.has(key)) return fallback === null ? [] : [fallback];
    const value = this.json[key];
    if (isTokenId(value)) return [value];
    if (Array.isArray(value) && value.every(isTokenId)) return value;
    throw this.problem(key, `must be a token id or a list of token ids, got ${quote(value)}`);
  }

  /** One of `allowed`, with `aliases` mapped to their canonical names. */
  choice<T extends string>(key: string, allowed: readonly T[], fallback: T, aliases: Record<string, T> = {}): T {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value === 'string' && Object.hasOwn(aliases, value)) return aliases[value];
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
      throw this.problem(key, `must be one of ${allowed.map((name) => `"${name}"`).join(', ')}, got ${quote(value)}`);
    return value as T;
  }

  /** A nested object, read with the same file and a prefixed field name; undefined when absent. */
  object(key: string): ConfigReader | undefined {
    if (!this.has(key)) return undefined;
    const value = this.json[key];
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw this.problem(key, `must be an object, got ${quote(value)}`);
    return new ConfigReader(value as Record<string, unknown>, this.file, `${this.fieldPrefix}${key}.`);
  }

  optionalString(key: string): string | null {
    if (!this.has(key)) return null;
    const value = this.json[key];
    if (typeof value !== 'string') throw this.problem(key, `must be a string, got ${quote(value)}`);
    return value;
  }
}

function isTokenId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
