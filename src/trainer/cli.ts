/**
 * The one error path of the `rlhf-lens` command: argument parsing that answers `--help`/`-h` with
 * the usage on stdout and refuses unknown options with the usage (exit 2), the printing of errors
 * (`error: <file>:<line>: <what> — <what to do>`, a stack only with --debug or RLHF_LENS_DEBUG),
 * and an end of the process that loses no output through a pipe.
 */
import { parseArgs } from 'node:util';
import { clip, quote, UserError, userErrorFromFileSystem, type UserErrorDetails } from '../shared/userError';
import { BackendUnavailableError } from './engine/tfjs/backend';

/** A command line a subcommand cannot use: the usage is printed with the error, exit status 2. */
export class UsageError extends UserError {
  constructor(
    what: string,
    readonly usage: string,
  ) {
    super(what, { hint: 'see the usage below' });
  }
}

/** Thrown by parseCommandArgs for `--help` / `-h`: not an error, the usage goes to stdout. */
export class HelpRequested {
  constructor(readonly usage: string) {}
}

type OptionSpec = {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[] | boolean[];
};

/** Arguments before `--` (after it everything is a positional, `--help` included). */
function beforeDoubleDash(args: readonly string[]): readonly string[] {
  const end = args.indexOf('--');
  return end < 0 ? args : args.slice(0, end);
}

/**
 * node:util's parseArgs, strict, with `--help`/`-h` (HelpRequested) and a UsageError for unknown
 * options, missing option values and a wrong number of positionals.
 */
export function parseCommandArgs<O extends Record<string, OptionSpec>>(
  args: string[],
  options: O,
  usage: string,
  positionals: { min: number; max: number },
) {
  if (beforeDoubleDash(args).some((arg) => arg === '--help' || arg === '-h')) throw new HelpRequested(usage);
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw error;
    throw new UsageError(usageProblem(code, args, options, error as Error), usage);
  }
  const count = parsed.positionals.length;
  if (count < positionals.min)
    throw new UsageError(
      positionals.min === 1 && positionals.max === 1 ? 'missing the folder or file to work on' : 'missing arguments',
      usage,
    );
  if (count > positionals.max)
    throw new UsageError(`unexpected argument ${quote(parsed.positionals[positionals.max])}`, usage);
  return parsed;
}

function usageProblem(
  code: string,
  args: readonly string[],
  options: Record<string, OptionSpec>,
  error: Error,
): string {
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const known = new Set(
      Object.entries(options).flatMap(([name, spec]) => [`--${name}`, ...(spec.short ? [`-${spec.short}`] : [])]),
    );
    const unknown = beforeDoubleDash(args).find(
      (arg) => arg.startsWith('-') && arg !== '-' && !known.has(arg.split('=')[0]),
    );
    return `unknown option ${quote(unknown?.split('=')[0] ?? '')}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = /'(-[^' ]*)/.exec(error.message)?.[1];
    return option ? `${clip(option)} needs a value` : clip(error.message);
  }
  return clip(error.message);
}

/** A number option; a UserError naming the option and the value otherwise. */
export function numberOption(
  name: string,
  raw: string | undefined,
  rule: 'number' | 'positive integer' | 'non-negative integer' = 'number',
): number {
  const value = Number(raw);
  const ok =
    raw !== undefined &&
    raw.trim() !== '' &&
    Number.isFinite(value) &&
    (rule === 'number' || (Number.isInteger(value) && (rule === 'positive integer' ? value >= 1 : value >= 0)));
  if (!ok)
    throw new UserError(`must be a ${rule}, got ${quote(raw)}`, {
      field: `--${name}`,
      hint: `give --${name} a ${rule}`,
    });
  return value;
}

/**
 * An error thrown while reading something the user named (a checkpoint, an ONNX folder, a run
 * folder): a UserError naming it. A UserError passes unchanged; a file-system error names its own path.
 */
export function asUserError(error: unknown, details: UserErrorDetails & { file: string }): UserError {
  if (error instanceof UserError) return error;
  const fromFileSystem = userErrorFromFileSystem(error);
  if (fromFileSystem) return fromFileSystem;
  const message = clip(error instanceof Error ? error.message : String(error), 1000);
  // A message that already names the path (a reader's own) keeps it; others get the path in front.
  return message.includes(details.file)
    ? new UserError(message, { hint: details.hint })
    : new UserError(message, details);
}

/** TypeError, RangeError, a WebAssembly trap…: a bug or a runtime failure, never a message for the user. */
function isBuiltInErrorType(error: Error): boolean {
  const builtIn = [
    TypeError,
    RangeError,
    ReferenceError,
    SyntaxError,
    EvalError,
    URIError,
    WebAssembly.RuntimeError,
    WebAssembly.CompileError,
    WebAssembly.LinkError,
  ];
  return builtIn.some((type) => error instanceof type);
}

export const debugEnabled = (): boolean => Boolean(process.env.RLHF_LENS_DEBUG);

/**
 * What to print for an error, and the exit status. UserErrors, file-system errors, and every other
 * `Error` this code base throws (plain ones and its own classes, all with messages meant for the
 * user) print their message; JavaScript's built-in error types (a TypeError, a RangeError, a
 * WebAssembly trap) are internal errors. Each line is cut at 2000 characters, whatever it quotes.
 */
export function describeError(error: unknown, debug = debugEnabled()): { lines: string[]; exitCode: number } {
  const stack = debug && error instanceof Error && error.stack ? [error.stack] : [];
  const cut = (lines: string[]) => lines.map((line) => clip(line, 2000));
  if (error instanceof HelpRequested) return { lines: [], exitCode: 0 };
  if (error instanceof UsageError) return { lines: cut([...stack, ...error.lines(), error.usage]), exitCode: 2 };
  // A raw Node file-system error (plain Error with a code) gets words; the project's own error classes
  // (DurableWriteError, FileFormatError, …) already carry a message naming the file and what to do.
  const user =
    error instanceof UserError
      ? error
      : error instanceof Error && error.constructor === Error
        ? userErrorFromFileSystem(error)
        : undefined;
  if (user) return { lines: cut([...stack, ...user.lines()]), exitCode: 1 };
  if (error instanceof BackendUnavailableError || (error instanceof Error && !isBuiltInErrorType(error))) {
    return {
      lines: cut([...stack, ...error.message.split('\n').map((line, i) => (i === 0 ? `error: ${line}` : line))]),
      exitCode: 1,
    };
  }
  const message =
    error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  return {
    lines: cut([
      ...stack,
      `error: internal error: ${message.split('\n')[0]}${debug ? '' : ' — run again with --debug for the stack'}`,
    ]),
    exitCode: 1,
  };
}

/** Writes to a stream and resolves once the bytes are handed to the OS (a pipe's reader may be slow). */
export function writeFully(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) {
      resolve();
      return;
    }
    stream.write(text, () => resolve());
  });
}

/** Prints an error as describeError says; returns the exit status. */
export function reportError(error: unknown): number {
  if (error instanceof HelpRequested) {
    process.stdout.write(`${error.usage}\n`);
    return 0;
  }
  const { lines, exitCode } = describeError(error);
  process.stderr.write(`${lines.join('\n')}\n`);
  return exitCode;
}
