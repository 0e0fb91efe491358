/** A GPT's weights by name and shape: what checkpoints hold and every engine's model reads. */
import type { GptConfig, ScalarHead } from './gptConfig';

/** The names and shapes of every weight of a GPT with `heads`, in state-dict order (nanoGPT's names). */
export function gptWeightShapes(config: GptConfig, heads: readonly ScalarHead[]): Map<string, number[]> {
  const { vocab_size: v, block_size: t, n_embd: c, n_layer: layers } = config;
  const shapes = new Map<string, number[]>([
    ['transformer.wte.weight', [v, c]],
    ['transformer.wpe.weight', [t, c]],
  ]);
  for (let l = 0; l < layers; l++) {
    const p = `transformer.h.${l}`;
    for (const [name, shape] of [
      ['ln_1.weight', [c]],
      ['ln_1.bias', [c]],
      ['attn.c_attn.weight', [c, 3 * c]],
      ['attn.c_attn.bias', [3 * c]],
      ['attn.c_proj.weight', [c, c]],
      ['attn.c_proj.bias', [c]],
      ['ln_2.weight', [c]],
      ['ln_2.bias', [c]],
      ['mlp.c_fc.weight', [c, 4 * c]],
      ['mlp.c_fc.bias', [4 * c]],
      ['mlp.c_proj.weight', [4 * c, c]],
      ['mlp.c_proj.bias', [c]],
    ] as const)
      shapes.set(`${p}.${name}`, [...shape]);
  }
  shapes.set('transformer.ln_f.weight', [c]);
  shapes.set('transformer.ln_f.bias', [c]);
  for (const head of heads) {
    shapes.set(`${head}.weight`, [c, 1]);
    shapes.set(`${head}.bias`, [1]);
  }
  return shapes;
}
