/**
 * ONNX Runtime's thread setting for the engine's sessions, explicit rather than onnxruntime's default
 * (one intra-op thread per core, spinning between ops): on the 2 shared cores this was developed on,
 * one intra-op thread was the fastest for the training steps (bench:train: the default 1.7–1.8× slower;
 * re-measured for issue 15, see the notes), because the graphs are small and the spinning threads compete
 * with the sampler, the other processes and each other. RLHF_LENS_ORT_THREADS overrides it for machines
 * where more threads pay: a positive integer is the intra-op thread count, 0 is onnxruntime's default.
 *
 * Every setting also turns the CPU memory arena off. With it on, each session keeps the peak of its runs
 * allocated, and a model keeps up to MAX_CACHED_SESSIONS sessions (one per length bucket and kind): 4×128,
 * T 128, batch 16, four bucket sessions held +1387 MB RSS with the arena and +216 MB without, at the same
 * step time within the noise (interleaved rounds, 2 shared cores: lm 19.4 vs 19.2 ms, ppo 20.3 vs 19.5 ms).
 */
import type * as ort from 'onnxruntime-node';

export const ortThreadsEnvironmentVariable = 'RLHF_LENS_ORT_THREADS';
/** Intra-op threads unless RLHF_LENS_ORT_THREADS says otherwise (measured fastest; see above). */
export const DEFAULT_INTRA_OP_THREADS = 1;
/** Ops run one after another: the graphs are chains, an inter-op pool would only add threads. */
const INTER_OP_THREADS = 1;
/** Intermediates are freed after each run instead of kept in a per-session arena (see above). */
const WITHOUT_ARENA = { enableCpuMemArena: false } as const;

export interface OnnxThreadSetting {
  readonly sessionOptions: ort.InferenceSession.SessionOptions;
  /** "1 intra-op thread" or "onnxruntime's default threads (one per core)", for run.json and the log. */
  readonly description: string;
  /** Why: the default, or the environment variable's value (and whether it was usable). */
  readonly reason: string;
}

const threadsOf = (count: number) => `${count} intra-op thread${count === 1 ? '' : 's'}`;

function fixed(count: number, reason: string): OnnxThreadSetting {
  return {
    sessionOptions: { intraOpNumThreads: count, interOpNumThreads: INTER_OP_THREADS, ...WITHOUT_ARENA },
    description: threadsOf(count),
    reason,
  };
}

/** The setting RLHF_LENS_ORT_THREADS asks for, or the measured default. */
export function onnxThreadSetting(env: NodeJS.ProcessEnv = process.env): OnnxThreadSetting {
  const raw = env[ortThreadsEnvironmentVariable]?.trim();
  const byDefault = `the default (${ortThreadsEnvironmentVariable} unset; measured fastest on 2 shared cores)`;
  if (raw === undefined || raw === '') return fixed(DEFAULT_INTRA_OP_THREADS, byDefault);
  const count = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (count === 0)
    return {
      sessionOptions: { ...WITHOUT_ARENA },
      description: "onnxruntime's default threads (one per core)",
      reason: `${ortThreadsEnvironmentVariable} is "0"`,
    };
  if (Number.isSafeInteger(count)) return fixed(count, `${ortThreadsEnvironmentVariable} is "${raw}"`);
  const ignored = `${ortThreadsEnvironmentVariable} "${raw}" is not a thread count (0 or more), so the default`;
  return fixed(DEFAULT_INTRA_OP_THREADS, ignored);
}
