/**
 * A model's ONNX Runtime sessions, one per graph key, least recently used first out. Each session holds
 * its graph and the kernels' buffers (several MB for the gradient graphs), and a long run meets many
 * keys (shapes × settings), so only MAX_CACHED_SESSIONS are kept; an evicted session is released once
 * no run still uses it, and built again if its key comes back (a build costs ~0.1–1 s).
 */
import * as ort from 'onnxruntime-node';

/** Sessions kept per model: a PPO policy's loss graphs over its length buckets plus its evaluate graphs. */
export const MAX_CACHED_SESSIONS = 16;

/** A graph as the builders give it: the encoded model and the weights it reads, in input order. */
export interface BuiltGraph {
  readonly model: Uint8Array;
  readonly weightNames: readonly string[];
}

export interface CachedSession {
  readonly session: ort.InferenceSession;
  readonly weightNames: readonly string[];
}

interface Entry {
  readonly ready: Promise<CachedSession>;
  /** Runs holding the session now; it is released when this is 0 and the entry was evicted. */
  users: number;
  evicted: boolean;
}

/** Counts for logs, tests and benchmarks. */
export interface SessionCacheStats {
  readonly built: number;
  readonly released: number;
  readonly cached: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private built = 0;
  private released = 0;

  constructor(
    private readonly sessionOptions: ort.InferenceSession.SessionOptions,
    private readonly capacity: number = MAX_CACHED_SESSIONS,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`session cache capacity ${capacity}: need ≥ 1`);
  }

  get stats(): SessionCacheStats {
    return { built: this.built, released: this.released, cached: this.entries.size };
  }

  /** Runs `use` with the session of `key`, built by `build` when absent; the key becomes the most recent. */
  async use<T>(key: string, build: () => BuiltGraph, use: (cached: CachedSession) => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry)
      this.entries.delete(key); // re-inserted below as the most recently used
    else entry = this.create(build);
    this.entries.set(key, entry);
    entry.users++;
    this.evictBeyondCapacity();
    try {
      return await use(await this.ready(key, entry));
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) this.release(entry);
    }
  }

  /** Releases every session (the model's dispose); sessions in use go when their runs end. */
  clear(): void {
    for (const entry of this.entries.values()) this.evict(entry);
    this.entries.clear();
  }

  /** The entry's session; a build that failed is forgotten, so that the next use tries again. */
  private async ready(key: string, entry: Entry): Promise<CachedSession> {
    try {
      return await entry.ready;
    } catch (error) {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw error;
    }
  }

  private create(build: () => BuiltGraph): Entry {
    const graph = build();
    this.built++;
    const ready = ort.InferenceSession.create(graph.model, this.sessionOptions).then((session) => ({
      session,
      weightNames: graph.weightNames,
    }));
    return { ready, users: 0, evicted: false };
  }

  private evictBeyondCapacity(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      this.entries.delete(key);
      this.evict(entry);
    }
  }

  private evict(entry: Entry): void {
    entry.evicted = true;
    if (entry.users === 0) this.release(entry);
  }

  private release(entry: Entry): void {
    this.released++;
    // A session whose build failed has nothing to release (the failure was reported to its run); a
    // release that fails leaves nothing the run could act on.
    entry.ready.then(({ session }) => session.release()).catch(() => undefined);
  }
}
