/**
 * ONNX Runtime's thread settings, explicit rather than onnxruntime's defaults (one intra-op thread per core that
 * spins between ops).
 *
 * Training sessions (the engine's loss + gradient graphs and forward passes) use every core, with threads that
 * sleep between ops instead of spinning: each session has its own pool, and a process holds several (a model's
 * length buckets, the sampler), so spinning pools take the cores from each other and from the JavaScript between
 * runs. On this project's 2 vCPUs (bench:rollout's PPO iteration, interleaved with PyTorch, nothing else running):
 * 2 threads not spinning 0.93× PyTorch's time, 2 spinning 1.14×, 1 thread ~1.0×; the PPO update alone 0.68× against
 * 0.87× with 1 thread (110k), 0.80× against 1.20× (2×128), 0.99× against 1.40× (4×128).
 *
 * Decode sessions (onnx/onnxCausalLm.ts: sampling one token at a time, the ONNX rollout engine, inspection) use one
 * thread: a decode step is a handful of small ops, and a pool's hand-offs cost more than they save (one thread took
 * bench:rollout's generation and scoring from 4.5× PyTorch's time to 2.0× on 2 shared cores).
 *
 * RLHF_LENS_ORT_THREADS=N sets the training sessions' intra-op threads (not spinning); 0 is onnxruntime's own
 * default (all cores, spinning).
 *
 * Every setting also turns the CPU memory arena off. With it on, each session keeps the peak of its runs
 * allocated, and a model keeps up to MAX_CACHED_SESSIONS sessions (one per length bucket and kind): 4×128,
 * T 128, batch 16, four bucket sessions held +1387 MB RSS with the arena and +216 MB without, at the same
 * step time within the noise (interleaved rounds, 2 shared cores: lm 19.4 vs 19.2 ms, ppo 20.3 vs 19.5 ms).
 */
import { availableParallelism } from 'node:os';
import type * as ort from 'onnxruntime-node';

export const ortThreadsEnvironmentVariable = 'RLHF_LENS_ORT_THREADS';
/** Training sessions' intra-op threads unless RLHF_LENS_ORT_THREADS says otherwise: every core (see above). */
export const defaultIntraOpThreads = (): number => availableParallelism();
/** Ops run one after another: the graphs are chains, an inter-op pool would only add threads. */
const INTER_OP_THREADS = 1;
/** Intermediates are freed after each run instead of kept in a per-session arena (see above). */
const WITHOUT_ARENA = { enableCpuMemArena: false } as const;
/** Intra-op threads sleep between ops (onnxruntime's `session.intra_op.allow_spinning`; see above). */
const WITHOUT_SPINNING = { extra: { session: { intra_op: { allow_spinning: '0' } } } } as const;

/** The decode sessions' options: one thread (see above). */
export const decodeSessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: INTER_OP_THREADS,
  ...WITHOUT_ARENA,
};

export interface OnnxThreadSetting {
  readonly sessionOptions: ort.InferenceSession.SessionOptions;
  /** "2 intra-op threads" or "onnxruntime's default threads (one per core)", for run.json and the log. */
  readonly description: string;
  /** Why: the default, or the environment variable's value (and whether it was usable). */
  readonly reason: string;
}

const threadsOf = (count: number) =>
  `${count} intra-op thread${count === 1 ? '' : 's'}${count > 1 ? ' (not spinning)' : ''}`;

function fixed(count: number, reason: string): OnnxThreadSetting {
  return {
    sessionOptions: {
      intraOpNumThreads: count,
      interOpNumThreads: INTER_OP_THREADS,
      ...WITHOUT_ARENA,
      ...(count > 1 ? WITHOUT_SPINNING : {}),
    },
    description: threadsOf(count),
    reason,
  };
}

/** The setting RLHF_LENS_ORT_THREADS asks for, or the measured default. */
export function onnxThreadSetting(env: NodeJS.ProcessEnv = process.env): OnnxThreadSetting {
  const raw = env[ortThreadsEnvironmentVariable]?.trim();
  const byDefault = `the default, one per core, not spinning (${ortThreadsEnvironmentVariable} unset)`;
  if (raw === undefined || raw === '') return fixed(defaultIntraOpThreads(), byDefault);
  const count = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (count === 0)
    return {
      sessionOptions: { ...WITHOUT_ARENA },
      description: "onnxruntime's default threads (one per core)",
      reason: `${ortThreadsEnvironmentVariable} is "0"`,
    };
  if (Number.isSafeInteger(count)) return fixed(count, `${ortThreadsEnvironmentVariable} is "${raw}"`);
  const ignored = `${ortThreadsEnvironmentVariable} "${raw}" is not a thread count (0 or more), so the default`;
  return fixed(defaultIntraOpThreads(), ignored);
}
