/**
 * A GPT's fresh weights as nanoGPT initialises them, engine-neutral (plain Float32Arrays, so the tfjs
 * and ONNX Runtime engines start from the same numbers for a seed): N(0, 0.02), residual projections
 * N(0, 0.02/√(2·n_layer)) (GPT-2's scaling), biases 0, LayerNorm γ 1, scalar heads N(0, 0.02/√C)
 * (a small init keeps early values and rewards near 0, as TRL's value head). The normals are drawn in
 * state-dict order from one `Random(seed)` stream.
 */
import { Random } from '../../core/random';
import type { GptConfig, ScalarHead } from './gptConfig';
import { gptWeightShapes } from './gptWeightShapes';

const EMBEDDING_STD = 0.02;

/** The standard deviation of a weight drawn from a normal, or the constant it starts at. */
function initialValue(name: string, config: GptConfig, heads: readonly ScalarHead[]): { std?: number; value?: number } {
  const residualStd = EMBEDDING_STD / Math.sqrt(2 * config.n_layer);
  if (heads.some((head) => name === `${head}.weight`)) return { std: EMBEDDING_STD / Math.sqrt(config.n_embd) };
  if (name.endsWith('.bias')) return { value: 0 };
  if (/\.ln_\w+\.weight$/.test(name)) return { value: 1 };
  if (name.endsWith('attn.c_proj.weight') || name.endsWith('mlp.c_proj.weight')) return { std: residualStd };
  return { std: EMBEDDING_STD };
}

/** Every weight of a GPT with `heads`, in state-dict order, deterministic in `seed`. */
export function initialGptWeights(
  config: GptConfig,
  options: { seed: number; heads?: readonly ScalarHead[] },
): Map<string, { shape: number[]; data: Float32Array }> {
  const heads = options.heads ?? [];
  const rng = new Random(options.seed);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of gptWeightShapes(config, heads)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const { std, value } = initialValue(name, config, heads);
    if (std !== undefined) for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    else data.fill(value ?? 0);
    weights.set(name, { shape, data });
  }
  return weights;
}
