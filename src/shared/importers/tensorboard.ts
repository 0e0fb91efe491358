/**
 * TensorBoard scalars of a run folder → the lens's metric points, followed live.
 *
 * transformers' `TensorBoardCallback` (huggingface/transformers, src/transformers/integrations/integration_utils.py;
 * on when `report_to` includes "tensorboard", which TRL's configs inherit from `TrainingArguments`) opens a
 * `SummaryWriter(log_dir=args.logging_dir)`, by default `<output_dir>/runs/<Mon DD_HH-MM-SS>_<hostname>`, one folder
 * per launch; the writer names its file `events.out.tfevents.<unix time>.<hostname>.<pid>.<n>`. At each log it
 * passes the logged dict through `rewrite_logs` — `eval_<name>` → `eval/<name>`, `test_<name>` → `test/<name>`,
 * anything else → `train/<name>` — and calls `add_scalar(tag, value, state.global_step)` for each number.
 * `metricNameOfTag` undoes that, so the points carry the names TRL gave them, as trainer_state.json's log_history
 * does (trlTrainerState.ts): `train/objective/kl` → `objective/kl`, `eval/loss` → `eval_loss`. Tags of other writers
 * (a TF2 `tf.summary.scalar`, a script's own `add_scalar`) keep their name.
 *
 * Every `events.out.tfevents.*` file anywhere under the folder is read (several launches, ranks or writers), and
 * their values are merged by step; when two files hold the same metric at the same step (a run resumed from a
 * checkpoint logs its steps again) the one written later (`wall_time`) wins.
 */
import { open, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { MetricPoint } from '../dashboardMessages';
import { UserError } from '../userError';
import { decodeEventScalars } from './tensorboardEvents';
import { frameRecords, recordHeaderBytes, recordOverheadBytes } from './tfRecord';

/** The start of every TensorBoard event file's name. */
export const eventFilePrefix = 'events.out.tfevents.';
/** Bytes read from a file at once; a longer record (an image summary) is read whole in one larger read. */
const readChunkBytes = 8 * 1024 * 1024;

const tagPrefixes: readonly (readonly [string, string])[] = [
  ['train/', ''],
  ['eval/', 'eval_'],
  ['test/', 'test_'],
];

/** The lens's (TRL's) name of a TensorBoard tag: transformers' `rewrite_logs` undone. */
export function metricNameOfTag(tag: string): string {
  for (const [prefix, replacement] of tagPrefixes)
    if (tag.startsWith(prefix) && tag.length > prefix.length) return replacement + tag.slice(prefix.length);
  return tag;
}

interface TimedValue {
  readonly value: number;
  readonly wallTime: number;
}

/** What has been read of one event file. */
interface EventFileState {
  /** Where the next read starts: just after the last whole record. */
  offset: number;
  /** Set once a damaged record is met: nothing after it is read. */
  stopped: boolean;
  /** The plugin each tag named in this file so far (a writer names it on the tag's first value only). */
  readonly pluginByTag: Map<string, string>;
  /** step → metric name → value. */
  readonly values: Map<number, Map<string, TimedValue>>;
  readonly problems: string[];
}

/**
 * What `readTensorboardScalars` has read of a folder so far; pass the one it returned to the next call. Opaque to
 * callers: the next call updates it in place.
 */
export interface TensorboardReadState {
  readonly files: Map<string, EventFileState>;
  /** The merged points of the last call, reused while no file changes. */
  points?: readonly MetricPoint[];
}

export interface TensorboardScalars {
  /** Every point read so far (not only the new ones), one per step, sorted by step, each with its `step`. */
  readonly points: readonly MetricPoint[];
  /**
   * Everything wrong so far, each `file: byte <offset>: …` (a damaged record, which ends the reading of its file; a
   * record that is not an Event; a value that cannot be read).
   */
  readonly problems: string[];
  /** Whether this call read anything new, or a file went away or was rewritten, since `state` was returned. */
  readonly changed: boolean;
  /** Pass to the next call to read only what was appended since. */
  readonly state: TensorboardReadState;
}

/**
 * The scalars of every TensorBoard event file under `folder` (a TRL / transformers `output_dir`, its `runs/`, or a
 * `logging_dir`). With the `state` a previous call returned, reads only the bytes appended since, so a live run is
 * followed without re-reading its files; a file that shrank (rewritten) is read again from its start, a file that
 * disappeared drops its values. A record cut off at the end of a file (still being written) is read whole on a
 * later call. A folder without event files gives no points and no problems. Throws a UserError naming `folder`
 * when it cannot be listed.
 */
export async function readTensorboardScalars(
  folder: string,
  state: TensorboardReadState = { files: new Map() },
): Promise<TensorboardScalars> {
  const files = await findEventFiles(folder);
  let changed = false;
  for (const known of [...state.files.keys()])
    if (!files.includes(known)) {
      state.files.delete(known);
      changed = true;
    }
  for (const file of files) {
    const fileChanged = await readNewRecords(file, state);
    changed ||= fileChanged;
  }
  if (changed || state.points === undefined) state.points = mergePoints([...state.files.values()]);
  const problems = [...state.files.values()].flatMap((file) => file.problems);
  return { points: state.points, problems, changed, state };
}

/** Paths of the `events.out.tfevents.*` files under `folder`, sorted (symbolic links are not followed). */
export async function findEventFiles(folder: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      // A subfolder removed while it is walked is simply gone; the folder itself must be there.
      if (!top && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new UserError(`cannot list the folder (${(error as Error).message})`, {
        file: dir,
        hint: 'open the output_dir (or logging_dir) of a run that reports to TensorBoard',
      });
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full, false);
      else if (entry.isFile() && entry.name.startsWith(eventFilePrefix)) found.push(full);
    }
  };
  await walk(folder, true);
  return found.sort();
}

function newFileState(): EventFileState {
  return { offset: 0, stopped: false, pluginByTag: new Map(), values: new Map(), problems: [] };
}

/** Reads what was appended to `file` since its state's offset; whether anything changed. */
async function readNewRecords(file: string, state: TensorboardReadState): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return state.files.delete(file);
  }
  try {
    const size = (await handle.stat()).size;
    let fileState = state.files.get(file);
    let changed = false;
    if (fileState === undefined || size < fileState.offset) {
      fileState = newFileState();
      state.files.set(file, fileState);
      changed = true;
    }
    let want = readChunkBytes;
    while (!fileState.stopped && fileState.offset < size) {
      const start = fileState.offset;
      const length = Math.min(size - start, want);
      const bytes = new Uint8Array(length);
      const { bytesRead } = await handle.read(bytes, 0, length, start);
      const framed = frameRecords(bytes.subarray(0, bytesRead), start);
      for (const record of framed.records) readRecord(file, record.offset, record.data, fileState);
      fileState.offset = framed.end;
      changed ||= framed.records.length > 0;
      if (framed.damage) {
        fileState.stopped = true;
        fileState.problems.push(
          `${file}: byte ${framed.damage.offset}: ${framed.damage.reason} (a damaged file); ` +
            `the ${size - framed.damage.offset} bytes from there on are not read`,
        );
        return true;
      }
      if (framed.end > start) {
        want = readChunkBytes;
        continue;
      }
      // No whole record in what was read: a record longer than the chunk, or one still being written.
      const whole = wholeRecordBytes(bytes.subarray(0, bytesRead));
      if (whole === undefined || whole > size - start || whole <= length) break;
      want = whole;
    }
    return changed;
  } finally {
    await handle.close();
  }
}

/** The size of the record at the start of `bytes` (header, data and data CRC), when its header is there. */
function wholeRecordBytes(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < recordHeaderBytes) return undefined;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return length > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(length) + recordOverheadBytes;
}

/** Decodes one record's Event into `fileState`; a record that is not an Event is a problem, and skipped. */
function readRecord(file: string, offset: number, data: Uint8Array, fileState: EventFileState): void {
  const where = `${file}: byte ${offset}`;
  let event;
  try {
    event = decodeEventScalars(data, fileState.pluginByTag);
  } catch (error) {
    fileState.problems.push(`${where}: not a TensorBoard Event (${(error as Error).message}); record skipped`);
    return;
  }
  for (const problem of event.problems) fileState.problems.push(`${where}: step ${event.step}: ${problem}`);
  if (event.scalars.length === 0) return;
  if (!Number.isSafeInteger(event.step) || event.step < 0) {
    fileState.problems.push(`${where}: field "step" must be a whole number ≥ 0, not ${event.step}; event skipped`);
    return;
  }
  let atStep = fileState.values.get(event.step);
  if (atStep === undefined) fileState.values.set(event.step, (atStep = new Map()));
  for (const { tag, value } of event.scalars) atStep.set(metricNameOfTag(tag), { value, wallTime: event.wallTime });
}

/** One point per step over all files; of two values of one metric at one step, the later written wins. */
function mergePoints(files: readonly EventFileState[]): MetricPoint[] {
  const merged = new Map<number, Map<string, TimedValue>>();
  for (const file of files)
    for (const [step, values] of file.values) {
      let atStep = merged.get(step);
      if (atStep === undefined) merged.set(step, (atStep = new Map()));
      for (const [name, timed] of values) {
        const earlier = atStep.get(name);
        if (earlier === undefined || timed.wallTime >= earlier.wallTime) atStep.set(name, timed);
      }
    }
  return [...merged.keys()]
    .sort((a, b) => a - b)
    .map((step) => {
      const point: Record<string, number> = {};
      for (const [name, { value }] of merged.get(step) ?? []) point[name] = value;
      point.step = step;
      return point;
    });
}
