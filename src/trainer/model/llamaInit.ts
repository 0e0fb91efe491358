/**
 * A Llama-family model's fresh weights, engine-neutral (plain Float32Arrays, so the tfjs and ONNX Runtime engines
 * start from the same numbers for a seed), as transformers' `_init_weights`: every Linear and embedding
 * N(0, initializer_range = 0.02), biases 0, RMSNorm γ 1, the normals drawn in the folder's tensor order
 * (hf/hfTensorNames.ts's expectedHfTensors) from one `Random(seed)` stream.
 *
 * Fresh scalar heads ([C, 1] weight N(0, 0.02/√C), bias 0, the GPT's scale: gptInit.ts) come from a stream of their
 * own, `Random(scrambleSeed(seed ^ 0x4ead))`, so that the heads a pretrained folder lacks are drawn without drawing
 * the billions of trunk normals the folder replaces. (Our GPT draws its heads after its trunk from the trunk's
 * stream, gptInit.ts; it is small, and its existing runs keep their numbers.)
 */
import { Random, scrambleSeed } from '../../core/random';
import { expectedHfTensors } from '../hf/hfTensorNames';
import type { LlamaConfig } from './causalLmConfig';
import type { ScalarHead } from './gptConfig';

/** transformers' `initializer_range` default (LlamaConfig, Qwen2Config, MistralConfig). */
const INITIALIZER_RANGE = 0.02;
/** XOR mask that gives fresh heads a stream apart from the trunk's (same seed). */
const HEAD_INIT_MASK = 0x4ead;

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

const sizeOf = (shape: readonly number[]) => shape.reduce((product, dim) => product * dim, 1);

/** The trunk's weights (no heads), in the folder's tensor order, deterministic in `seed`. */
export function initialLlamaTrunk(config: LlamaConfig, seed: number): Weights {
  const random = new Random(seed);
  const weights: Weights = new Map();
  for (const { name, shape } of expectedHfTensors(config.architecture)) {
    const data = new Float32Array(sizeOf(shape));
    if (name.endsWith('norm.weight')) data.fill(1);
    else if (!name.endsWith('.bias'))
      for (let i = 0; i < data.length; i++) data[i] = random.normal() * INITIALIZER_RANGE;
    weights.set(name, { shape: [...shape], data });
  }
  return weights;
}

/** Fresh `heads` on a hidden state of `width`: `<head>.weight` [C, 1] N(0, 0.02/√C), `<head>.bias` [1] 0. */
export function initialLlamaHeads(width: number, heads: readonly ScalarHead[], seed: number): Weights {
  const random = new Random(scrambleSeed(seed ^ HEAD_INIT_MASK));
  const std = INITIALIZER_RANGE / Math.sqrt(width);
  const weights: Weights = new Map();
  for (const head of heads) {
    const weight = new Float32Array(width);
    for (let i = 0; i < width; i++) weight[i] = random.normal() * std;
    weights.set(`${head}.weight`, { shape: [width, 1], data: weight });
    weights.set(`${head}.bias`, { shape: [1], data: new Float32Array(1) });
  }
  return weights;
}

/** Every weight of a fresh Llama-family model with `heads`: the trunk in the folder's order, then the heads. */
export function initialLlamaWeights(
  config: LlamaConfig,
  options: { seed: number; heads: readonly ScalarHead[] },
): Weights {
  const weights = initialLlamaTrunk(config, options.seed);
  for (const [name, value] of initialLlamaHeads(config.architecture.hiddenSize, options.heads, options.seed))
    weights.set(name, value);
  return weights;
}
