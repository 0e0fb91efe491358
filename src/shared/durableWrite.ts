/**
 * Durable writes: the one way RLHF Lens puts a file on disk, trainer and host alike (DESIGN.md: "Files
 * are written whole or not at all"). A reader, a crash or a full disk never leaves a cut file:
 *   - a whole file goes to a temporary name in the same folder; every byte is written (a short write
 *     is continued and the count checked against the file's size), the file fsynced, renamed over the
 *     target (atomic on one file system), and the folder fsynced so the rename itself survives a crash;
 *   - a whole folder (a checkpoint, an ONNX export) is filled with durable files inside a temporary
 *     folder, then renamed into place and its parent fsynced;
 *   - a JSONL line is appended as one whole line; an append that fails is cut back off the file.
 * On any error the temporary file or folder is removed and a DurableWriteError names the final path,
 * the reason and what to do. Temporary names end in `.rlhf-tmp` with the writer's pid and a random
 * tag, so `removeStaleTemporaries` can clear what a killed process left without touching a user's file.
 *
 * Every function takes an optional `fs` (the few node:fs calls used) so tests can inject a short
 * write or ENOSPC at an exact byte; production code always uses `nodeFs`.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The node:fs calls a durable write makes; a test passes a copy with one of them failing. */
export interface DurableFs {
  openSync(file: string, flags: string): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fsyncSync(fd: number): void;
  fstatSync(fd: number): { size: number };
  ftruncateSync(fd: number, length: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(file: string, options: { recursive?: boolean; force?: boolean }): void;
  mkdirSync(dir: string, options?: { recursive?: boolean }): unknown;
  existsSync(file: string): boolean;
}

export const nodeFs: DurableFs = {
  openSync: (file, flags) => fs.openSync(file, flags),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  rmSync: (file, options) => fs.rmSync(file, options),
  mkdirSync: (dir, options) => fs.mkdirSync(dir, options),
  existsSync: (file) => fs.existsSync(file),
};

/** `could not write /x/run.json: no space left on device (ENOSPC) — free disk space, then …` */
export class DurableWriteError extends Error {
  constructor(
    /** The final path the caller asked for (never a temporary name). */
    readonly path: string,
    /** The errno code (`ENOSPC`, `EACCES`…) or `SHORT_WRITE`. */
    readonly code: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`could not write ${path}: ${reason} (${code}) — ${advice(code, path)}`, options);
    this.name = 'DurableWriteError';
  }
}

function advice(code: string, file: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'SHORT_WRITE':
      return 'free disk space, then try again (a stopped run continues with --resume)';
    case 'EACCES':
    case 'EPERM':
      return `check that you may write to ${path.dirname(file)}`;
    case 'EROFS':
      return 'the file system is read-only; choose a folder on a writable disk';
    case 'ENOENT':
    case 'ENOTDIR':
      return `check that the folder ${path.dirname(file)} exists and was not removed meanwhile`;
    default:
      return 'check the disk and the folder, then try again';
  }
}

/** Raised inside a write when the disk takes fewer bytes than it was given. */
class ShortWrite extends Error {
  constructor(
    readonly written: number,
    readonly expected: number,
  ) {
    super(`only ${written} of ${expected} bytes reached the file`);
  }
}

/** Turns an fs error into a DurableWriteError about `file`; errors that are not I/O errors pass through. */
function asDurableError(file: string, error: unknown): Error {
  if (error instanceof DurableWriteError) return error;
  if (error instanceof ShortWrite) return new DurableWriteError(file, 'SHORT_WRITE', error.message, { cause: error });
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code))
    return error instanceof Error ? error : new Error(String(error));
  // "ENOSPC: no space left on device, write" → "no space left on device"
  const message = (error as Error).message;
  const reason = /^E[A-Z0-9]+: (.+?)(?:, \w+(?: '.*')?)?$/s.exec(message)?.[1] ?? message;
  return new DurableWriteError(file, code, reason, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// Temporary names

const temporarySuffix = '.rlhf-tmp';
/** `.<name>.<pid>-<8 hex>.rlhf-tmp`: a hidden name no user picks, with a tag no two writers share. */
const temporaryPattern = /^\..+\.\d+-[0-9a-f]{8}\.rlhf-tmp$/;
/**
 * What versions before this module left behind in a run folder: `.<file>.<pid>.<ms>.tmp` (files),
 * `.step-<n>.<pid>.tmp` (checkpoints) and `step-<n>.<pid>.tmp` (ONNX exports under `onnx/`).
 */
const legacyPatterns = [/^\..+\.\d+\.\d{13}\.tmp$/, /^\.?step-\d+\.\d+\.tmp$/];

/** A fresh temporary name next to `target`, in the same folder (so the rename stays on one disk). */
export function temporaryName(target: string): string {
  // Keep the whole name under the usual 255-byte limit for any target name.
  const base = path.basename(target).slice(0, 180);
  return path.join(path.dirname(target), `.${base}.${process.pid}-${randomBytes(4).toString('hex')}${temporarySuffix}`);
}

/** True for a name this project uses for a temporary file or folder (of any process, any version). */
export function isTemporaryName(name: string): boolean {
  return temporaryPattern.test(name) || legacyPatterns.some((pattern) => pattern.test(name));
}

/** The pid a temporary name records (every pattern above carries its writer's), or undefined. */
export function temporaryOwner(name: string): number | undefined {
  const match =
    /\.(\d+)-[0-9a-f]{8}\.rlhf-tmp$/.exec(name) ??
    /\.(\d+)\.\d{13}\.tmp$/.exec(name) ??
    /^\.?step-\d+\.(\d+)\.tmp$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** True when a process with this pid exists (signal 0 checks without sending anything). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by someone else
  }
}

/**
 * Removes the temporary files and folders a killed or failed writer (any process) left in `dir` and
 * in its direct subfolders (a run folder's checkpoints/, traces/, onnx/). Returns what was removed.
 * In a folder this process owns (a run folder it resumes) every temporary goes; in a shared one (the
 * runs folder, where other trainers may be writing now) pass `keepLiveOwners`: only temporaries
 * whose writer has exited go.
 */
export function removeStaleTemporaries(dir: string, options: { keepLiveOwners?: boolean } = {}): string[] {
  const removed: string[] = [];
  const stale = (name: string) => {
    if (!isTemporaryName(name)) return false;
    const owner = temporaryOwner(name);
    return !options.keepLiveOwners || owner === undefined || (owner !== process.pid && !processAlive(owner));
  };
  const sweep = (folder: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch {
      return; // nothing there yet
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (stale(entry.name)) {
        fs.rmSync(full, { recursive: true, force: true });
        removed.push(full);
      } else if (depth > 0 && entry.isDirectory() && !isTemporaryName(entry.name)) {
        sweep(full, depth - 1);
      }
    }
  };
  sweep(dir, 1);
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Whole files and folders

/** Writes `data` to `file` whole or not at all (see the header). Throws DurableWriteError. */
export function writeFileDurable(file: string, data: string | Uint8Array, io: DurableFs = nodeFs): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temporary = temporaryName(file);
  try {
    writeNewFile(temporary, bytes, io);
    io.renameSync(temporary, file);
  } catch (error) {
    removeQuietly(temporary, io);
    throw asDurableError(file, error);
  }
  syncDirectory(path.dirname(file), io);
}

/** `JSON.stringify(value, null, 2)` and a newline, written durably. */
export function writeJsonDurable(file: string, value: unknown, io: DurableFs = nodeFs): void {
  writeFileDurable(file, `${JSON.stringify(value, null, 2)}\n`, io);
}

/**
 * Builds the folder `target` whole or not at all: `fill` writes its files (with writeFileDurable)
 * into the temporary folder it is given; then that folder replaces `target` and the parent is
 * fsynced. If `fill` or the rename fails, the temporary folder is removed and any previous `target`
 * is left as it was. An I/O error is reported against the final path (`target/model.safetensors`).
 */
export async function writeFolderDurable(
  target: string,
  fill: (folder: string) => void | Promise<void>,
  io: DurableFs = nodeFs,
): Promise<void> {
  const temporary = startFolder(target, io);
  try {
    await fill(temporary);
  } catch (error) {
    abandonFolder(temporary, target, error, io);
  }
  commitFolder(temporary, target, io);
}

/**
 * writeFolderDurable for a synchronous `fill` that makes a new folder (a run folder and its run.json):
 * it never replaces one. When `target` appeared meanwhile (another trainer took the same run id), the
 * rename fails (ENOTEMPTY/EEXIST), the temporary folder is removed and a FolderTakenError is thrown.
 */
export function createFolderDurableSync(target: string, fill: (folder: string) => void, io: DurableFs = nodeFs): void {
  const temporary = startFolder(target, io);
  try {
    fill(temporary);
    syncDirectory(temporary, io);
  } catch (error) {
    abandonFolder(temporary, target, error, io);
  }
  try {
    if (io.existsSync(target)) throw Object.assign(new Error('target exists'), { code: 'EEXIST' });
    io.renameSync(temporary, target); // rename(2) refuses a non-empty target folder
  } catch (error) {
    removeQuietly(temporary, io);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') throw new FolderTakenError(target);
    throw asDurableError(target, error);
  }
  syncDirectory(path.dirname(target), io);
}

/** The folder createFolderDurableSync was to make exists already. */
export class FolderTakenError extends Error {
  constructor(readonly path: string) {
    super(`${path} exists already`);
  }
}

function startFolder(target: string, io: DurableFs): string {
  const temporary = temporaryName(target);
  try {
    io.mkdirSync(path.dirname(target), { recursive: true });
    io.mkdirSync(temporary);
  } catch (error) {
    abandonFolder(temporary, target, error, io);
  }
  return temporary;
}

function commitFolder(temporary: string, target: string, io: DurableFs): void {
  try {
    syncDirectory(temporary, io);
    replaceFolder(temporary, target, io);
  } catch (error) {
    abandonFolder(temporary, target, error, io);
  }
  syncDirectory(path.dirname(target), io);
}

/** Removes the temporary folder and throws the error, an I/O one reported against the final path. */
function abandonFolder(temporary: string, target: string, error: unknown, io: DurableFs): never {
  removeQuietly(temporary, io);
  if (error instanceof DurableWriteError && error.path.startsWith(temporary + path.sep)) {
    throw new DurableWriteError(path.join(target, path.relative(temporary, error.path)), error.code, error.reason, {
      cause: error.cause,
    });
  }
  throw asDurableError(target, error);
}

/**
 * A folder cannot be renamed over a non-empty one: the old one is moved aside (under a temporary
 * name, so a crash right here leaves something cleanup removes), the new one renamed in, the old
 * removed. If the second rename fails the old folder is put back.
 */
function replaceFolder(temporary: string, target: string, io: DurableFs): void {
  if (!io.existsSync(target)) {
    io.renameSync(temporary, target);
    return;
  }
  const aside = temporaryName(target);
  io.renameSync(target, aside);
  try {
    io.renameSync(temporary, target);
  } catch (error) {
    io.renameSync(aside, target);
    throw error;
  }
  removeQuietly(aside, io);
}

/** Creates `file` (which must not exist), writes every byte, checks the size, fsyncs, closes. */
function writeNewFile(file: string, bytes: Uint8Array, io: DurableFs): void {
  const fd = io.openSync(file, 'wx');
  try {
    writeAll(fd, bytes, io);
    io.fsyncSync(fd);
    // The count the kernel reported, checked once more against what the file now holds.
    const size = io.fstatSync(fd).size;
    if (size !== bytes.byteLength) throw new ShortWrite(size, bytes.byteLength);
  } catch (error) {
    closeQuietly(fd, io);
    throw error;
  }
  io.closeSync(fd); // close can report a delayed write error (NFS): it must throw, not be ignored
}

/** write(2) may take fewer bytes than given (a nearly full disk): continue until all are written. */
function writeAll(fd: number, bytes: Uint8Array, io: DurableFs): void {
  let written = 0;
  while (written < bytes.byteLength) {
    const count = io.writeSync(fd, bytes, written, bytes.byteLength - written);
    if (!(count > 0)) throw new ShortWrite(written, bytes.byteLength);
    written += count;
  }
}

// ---------------------------------------------------------------------------------------------
// Appended lines

export interface AppendLineOptions {
  /** fsync the file (and its folder when the file is new) before returning: the line survives a power cut. */
  readonly sync?: boolean;
}

/**
 * Appends `line` and a newline as one write, to the end of `file` (created if missing). A file whose
 * last line was torn by a crash gets a newline first, so the torn line cannot swallow this one (readers
 * report the torn line and keep the rest). If the append fails, what it wrote is cut off again (when
 * no other writer appended meanwhile), so the file is as before. Throws DurableWriteError.
 */
export function appendLineDurable(
  file: string,
  line: string,
  options: AppendLineOptions = {},
  io: DurableFs = nodeFs,
): void {
  if (line.includes('\n'))
    throw new Error(`appendLineDurable: a JSONL line must not contain a newline (writing ${file})`);
  const created = !io.existsSync(file);
  let fd: number;
  try {
    fd = io.openSync(file, 'a+'); // read too: the last byte tells whether the previous line was torn
  } catch (error) {
    throw asDurableError(file, error);
  }
  try {
    const before = io.fstatSync(fd).size;
    const torn = before > 0 && lastByte(fd, before, io) !== 0x0a;
    const bytes = Buffer.from(`${torn ? '\n' : ''}${line}\n`, 'utf8');
    try {
      writeAll(fd, bytes, io);
      if (options.sync) io.fsyncSync(fd);
    } catch (error) {
      cutBack(fd, before, bytes.byteLength, io);
      throw error;
    }
  } catch (error) {
    closeQuietly(fd, io);
    throw asDurableError(file, error);
  }
  try {
    io.closeSync(fd);
  } catch (error) {
    throw asDurableError(file, error);
  }
  if (created && options.sync) syncDirectory(path.dirname(file), io);
}

function lastByte(fd: number, size: number, io: DurableFs): number {
  const buffer = Buffer.alloc(1);
  io.readSync(fd, buffer, 0, 1, size - 1);
  return buffer[0];
}

/** Truncates a failed append away, unless the file grew past it (another writer's line follows). */
function cutBack(fd: number, before: number, attempted: number, io: DurableFs): void {
  try {
    if (io.fstatSync(fd).size <= before + attempted) io.ftruncateSync(fd, before);
  } catch {
    // The torn tail stays; the next append starts on a fresh line and readers skip the torn one.
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * fsyncs an existing file that is appended to without a sync per line (metrics.jsonl), so every line
 * written so far survives a power cut from here on. A missing file is fine; other errors throw.
 */
export function syncFile(file: string, io: DurableFs = nodeFs): void {
  let fd: number;
  try {
    fd = io.openSync(file, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw asDurableError(file, error);
  }
  try {
    io.fsyncSync(fd);
  } catch (error) {
    closeQuietly(fd, io);
    throw asDurableError(file, error);
  }
  io.closeSync(fd);
}

/** fsyncs a folder, so a file created or renamed in it is still there after a crash. */
export function syncDirectory(dir: string, io: DurableFs = nodeFs): void {
  let fd: number;
  try {
    fd = io.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    io.fsyncSync(fd);
  } catch {
    // Some file systems (and Windows) refuse to fsync a folder; the files' own fsyncs still hold.
  } finally {
    closeQuietly(fd, io);
  }
}

function removeQuietly(file: string, io: DurableFs): void {
  try {
    io.rmSync(file, { recursive: true, force: true });
  } catch {
    // Cleanup is best effort here; removeStaleTemporaries clears what is left when the run resumes.
  }
}

function closeQuietly(fd: number, io: DurableFs): void {
  try {
    io.closeSync(fd);
  } catch {
    // Already reporting the error that made us close.
  }
}
