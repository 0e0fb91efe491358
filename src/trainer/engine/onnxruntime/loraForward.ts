/**
 * LoRA on the differentiable graph (Hu et al. 2021, eq. 3; PEFT's Linear and Conv1D layers): each targeted linear
 * layer of the base forward becomes
 *   h = W₀x + b + (α/r)·B·A·dropout(x),   A [r, in], B [out, r]   (graph inputs, named as lora/loraTargets.ts)
 * — the same A, B shapes and product for GPT-2's Conv1D (W₀ stored [in, out]) as for Llama's Linear. The base
 * weights stay graph inputs without gradient outputs: a loss graph differentiates the adapters and the heads only.
 *
 * Dropout on the adapter's input (PEFT's `lora_dropout`, training steps with a dropout seed only): one site per
 * targeted module after the model's own, drawn by model/dropoutMasks.ts (drawLoraDropoutMasks) as in tfjs.
 * Fresh adapters: lora/loraInit.ts.
 */
import type { LoraSettings } from '../../lora/loraTargets';
import { isLoraWeight, loraAName, loraBName, loraScale, loraTargets } from '../../lora/loraTargets';
import { drawLoraDropoutMasks, type DropoutMask } from '../../model/dropoutMasks';
import * as op from './autodiff/ops';
import type { AdaptableForward, ModelForward } from './modelForward';

const HEAD_NAME = /^(?:v_head|score)\./;

/** `base` with LoRA adapters on the modules `settings` targets. */
export function loraForward(base: AdaptableForward, settings: LoraSettings): ModelForward {
  const targets = loraTargets(base.config, settings);
  const byModule = new Map(targets.map((target, index) => [target.module, { target, index }]));
  const scale = loraScale(settings);
  const baseSites = (shape: { batchSize: number; length: number }) =>
    base.hasDropout ? base.dropoutMasks(shape, 0).length : 0;
  return {
    config: base.config,
    /** The base weights and heads, then every target's A and B (the tfjs engine's readWeights order). */
    weightShapes(heads) {
      const shapes = base.weightShapes(heads);
      for (const target of targets) {
        shapes.set(loraAName(target.module), [settings.r, target.inFeatures]);
        shapes.set(loraBName(target.module), [target.outFeatures, settings.r]);
      }
      return shapes;
    },
    trains: (name) => isLoraWeight(name) || HEAD_NAME.test(name),
    hasDropout: base.hasDropout || settings.dropout > 0,
    dropoutMasks(shape, forwardSeed) {
      const masks: DropoutMask[] = base.hasDropout ? base.dropoutMasks(shape, forwardSeed) : [];
      return [...masks, ...drawLoraDropoutMasks(base.config, targets, settings.dropout, shape, forwardSeed).values()];
    },
    forward(g, weights, ids, dropout) {
      const [batchSize, length] = g.shape(ids);
      const first = baseSites({ batchSize, length });
      const W = (name: string) => {
        const value = weights.get(name);
        if (!value) throw new Error(`lora graph: no weight "${name}"`);
        return value;
      };
      const adapt = (module: string, x: string, y: string) => {
        const adapted = byModule.get(module);
        if (!adapted) return y;
        const dropped =
          dropout && settings.dropout > 0 ? op.mul(g, x, dropout.mask(first + adapted.index, g.shape(x))) : x;
        const down = op.matMul(g, dropped, op.transpose(g, W(loraAName(module)), [1, 0])); // [B, T, r]
        const up = op.matMul(g, down, op.transpose(g, W(loraBName(module)), [1, 0])); // [B, T, out]
        return op.add(g, y, op.mul(g, up, g.scalar(scale)));
      };
      return base.forward(g, weights, ids, base.hasDropout ? dropout : undefined, adapt);
    },
  };
}
