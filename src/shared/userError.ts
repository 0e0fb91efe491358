/**
 * Errors a user can fix (a bad option, a missing file, a config the checks refuse), as opposed to
 * bugs. The CLI prints a UserError as `error: <file>:<line>: <what> — <what to do>` with no stack;
 * anything else is an internal error. Every value a message quotes goes through `clip`, so a 50 MB
 * name is never echoed whole. Pure: no Node built-ins, usable by the host, trainer and webviews.
 */

/** The most characters of one user value a message quotes. */
export const maxQuotedLength = 200;

/** `text` cut to `max` characters, saying how much was left out. */
export function clip(text: string, max = maxQuotedLength): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A user value as a message quotes it: JSON-quoted (strings in "…"), cut to 200 characters. */
export function quote(value: unknown): string {
  let text: string;
  try {
    // NaN and ±Infinity as themselves (JSON would say null).
    text =
      typeof value === 'number' && !Number.isFinite(value)
        ? String(value)
        : value === undefined
          ? 'nothing'
          : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return clip(text);
}

export interface UserErrorDetails {
  /** The file the problem is in (or about); printed first. */
  readonly file?: string;
  /** 1-based line (and column) in `file`, where known. */
  readonly line?: number;
  readonly column?: number;
  /** The setting or option at fault, such as `stages[0].dataset.path` or `--top-p`. */
  readonly field?: string;
  /** What to do about it; printed after " — ". */
  readonly hint?: string;
}

export class UserError extends Error {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly field?: string;
  readonly hint?: string;

  /** `what`: what is wrong, without the file or the hint (they are separate fields). */
  constructor(
    readonly what: string,
    details: UserErrorDetails = {},
  ) {
    super(formatUserProblem(what, details));
    this.name = 'UserError';
    Object.assign(this, details);
  }

  /** The lines the CLI prints for this error (each starts with `error: `). */
  lines(): string[] {
    return [`error: ${this.message}`];
  }
}

/** `<file>:<line>:<column>: <field> <what> — <hint>`, leaving out what is unknown. */
export function formatUserProblem(what: string, details: UserErrorDetails): string {
  const column = details.column === undefined ? '' : `:${details.column}`;
  const line = details.line === undefined ? '' : `:${details.line}${column}`;
  const place = details.file === undefined ? '' : `${clip(details.file)}${line}: `;
  const field = details.field ? `${details.field} ` : '';
  return `${place}${field}${what}${details.hint ? ` — ${details.hint}` : ''}`;
}

/** A user error made of several problems (a config's): one `error:` line each, then a summary. */
export class UserErrors extends UserError {
  constructor(
    readonly problems: readonly string[],
    summary: string,
    details: UserErrorDetails = {},
  ) {
    super(summary, details);
    this.message = [...problems, formatUserProblem(summary, details)].join('\n');
  }

  override lines(): string[] {
    return [...this.problems.map((problem) => `error: ${problem}`), `error: ${formatUserProblem(this.what, this)}`];
  }
}

/** Errors of the file system a user causes (a path that is not there, not readable, not a folder): no bug. */
const userFileErrorCodes = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'EISDIR',
  'ENOTDIR',
  'ENOSPC',
  'EROFS',
  'EEXIST',
  'ENAMETOOLONG',
  'ELOOP',
  'EMFILE',
  'EDQUOT',
]);

/** A Node file-system error (it names its path) as a UserError; undefined for anything else. */
export function userErrorFromFileSystem(error: unknown): UserError | undefined {
  const { code, path, syscall } = (error ?? {}) as { code?: unknown; path?: unknown; syscall?: unknown };
  if (typeof code !== 'string' || !userFileErrorCodes.has(code)) return undefined;
  const what: Record<string, string> = {
    ENOENT: 'does not exist',
    EACCES: 'cannot be accessed (permission denied)',
    EPERM: 'cannot be accessed (operation not permitted)',
    EISDIR: 'is a folder, not a file',
    ENOTDIR: 'is not a folder',
    ENOSPC: 'cannot be written: the disk is full',
    EDQUOT: 'cannot be written: the disk quota is used up',
    EROFS: 'cannot be written: the file system is read-only',
    EEXIST: 'already exists',
    ENAMETOOLONG: 'has a name too long for the file system',
    ELOOP: 'is a loop of symbolic links',
    EMFILE: 'cannot be opened: too many open files',
  };
  const hints: Record<string, string> = {
    ENOENT: 'check the path',
    ENOSPC: 'free some space and run again',
    EDQUOT: 'free some space and run again',
    ENAMETOOLONG: 'use a shorter name',
  };
  return new UserError(`${what[code]}${typeof syscall === 'string' ? ` (${syscall})` : ''}`, {
    file: typeof path === 'string' ? path : undefined,
    hint: hints[code] ?? 'check the path and its permissions',
  });
}
