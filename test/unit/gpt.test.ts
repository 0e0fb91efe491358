/**
 * The GPT (src/trainer/engine/tfjs/gpt.ts) on the wasm backend the trainer uses: shapes, parameter count,
 * nanoGPT's names and init, the KV cache and left padding against plain full forwards, causality,
 * the context limit, weight round trips and errors, gradients, and tensor bookkeeping.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Random } from '../../src/core/random';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { maskedNll } from '../../src/trainer/engine/tfjs/losses';
import { tf, type Tensor } from '../../src/trainer/engine/tfjs/tfRuntime';
import { Gpt, type KvCache } from '../../src/trainer/engine/tfjs/gpt';
import { drawDropoutMasks, dropoutSiteShapes, type DropoutMask } from '../../src/trainer/model/dropoutMasks';
import { countParameters, type GptConfig } from '../../src/trainer/model/gptConfig';

const config: GptConfig = { vocab_size: 40, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
const V = config.vocab_size;

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

before(async () => {
  await selectBackend('wasm');
});

function randomIds(rows: number, length: number, seed: number): number[][] {
  const rng = new Random(seed);
  return Array.from({ length: rows }, () => Array.from({ length }, () => rng.int(V)));
}

/** Runs `f` in a tidy and reads its result out as a plain array. */
async function readTidy(f: () => Tensor): Promise<Float32Array> {
  const t = tf.tidy(f);
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

const logitsOf = (model: Gpt, ids: number[][]) =>
  readTidy(() => model.forward(tf.tensor2d(ids, undefined, 'int32')).logits);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${what}: max |difference| ${diff} > ${tolerance}`);
}

/** Logits of row b, positions [from, to), from a flat [B, T, V] array. */
function rowLogits(flat: Float32Array, length: number, b: number, from: number, to: number): Float32Array {
  return flat.subarray((b * length + from) * V, (b * length + to) * V);
}

function withModel<T>(options: Parameters<typeof Gpt.create>[1], f: (model: Gpt) => Promise<T>): Promise<T> {
  const model = Gpt.create(config, options);
  return f(model).finally(() => model.dispose());
}

test('forward gives logits [B, T, V] and hidden [B, T, C]; v_head gives [B, T]; score gives [B]', async () => {
  await withModel({ seed: 1, heads: ['v_head', 'score'] }, async (model) => {
    const shapes = tf.tidy(() => {
      const ids = tf.tensor2d(randomIds(3, 5, 1), undefined, 'int32');
      const { logits, hidden } = model.forward(ids);
      return [
        logits.shape,
        hidden.shape,
        model.scalarHead('v_head', hidden).shape,
        model.score(ids, [5, 2, 4]).shape,
      ].map((shape) => [...shape]);
    });
    assert.deepEqual(shapes, [[3, 5, 40], [3, 5, 16], [3, 5], [3]]);
  });
});

test('score reads the score head at index length − 1 of each row, whatever padding follows', async () => {
  await withModel({ seed: 2, heads: ['score'] }, async (model) => {
    const ids = randomIds(3, 8, 2);
    const lengths = [8, 3, 5];
    const perPosition = await readTidy(() =>
      model.scalarHead('score', model.forward(tf.tensor2d(ids, undefined, 'int32')).hidden),
    ); // [B, T]
    const scores = await readTidy(() => model.score(tf.tensor2d(ids, undefined, 'int32'), lengths));
    assert.deepEqual(
      Array.from(scores),
      lengths.map((n, b) => perPosition[b * 8 + n - 1]),
    );
    // Different pad tokens after each row's end leave the score unchanged (the model is causal).
    const repadded = ids.map((row, b) => row.map((id, t) => (t < lengths[b] ? id : (id + 7) % V)));
    const rescored = await readTidy(() => model.score(tf.tensor2d(repadded, undefined, 'int32'), lengths));
    assertClose(rescored, scores, 1e-6, 'score after repadding');
    // The heads really do differ per position, so reading the wrong index would show.
    assert.notEqual(perPosition[1 * 8 + 2], perPosition[1 * 8 + 7]);
  });
});

test(
  "score_pooling 'sum' adds the head's projection over a " + "row's tokens and its bias once, whatever padding follows",
  async () => {
    await withModel({ seed: 2, heads: ['score'] }, async (model) => {
      const summing = Gpt.fromWeights({ ...model.config, score_pooling: 'sum' }, ['score'], await model.readWeights());
      try {
        // A non-zero bias, so adding it once per token instead of once per row would show.
        tf.tidy(() => summing.weights.get('score.bias')?.assign(tf.tensor1d([0.75])));
        const ids = randomIds(3, 8, 4);
        const lengths = [8, 3, 5];
        const perPosition = await readTidy(() =>
          summing.scalarHead('score', summing.forward(tf.tensor2d(ids, undefined, 'int32')).hidden),
        ); // [B, T] = w·h_t + b
        const expected = lengths.map(
          (n, b) =>
            Array.from(perPosition.subarray(b * 8, b * 8 + n)).reduce((sum, value) => sum + value - 0.75, 0) + 0.75,
        );
        const scores = await readTidy(() => summing.score(tf.tensor2d(ids, undefined, 'int32'), lengths));
        assertClose(scores, Float32Array.from(expected), 1e-5, 'summed score');
        const repadded = ids.map((row, b) => row.map((id, t) => (t < lengths[b] ? id : (id + 7) % V)));
        assertClose(
          await readTidy(() => summing.score(tf.tensor2d(repadded, undefined, 'int32'), lengths)),
          scores,
          1e-6,
          'summed score after repadding',
        );
        // The default reads the last token: the two poolings really differ.
        const last = await readTidy(() => model.score(tf.tensor2d(ids, undefined, 'int32'), lengths));
        assert.ok(Math.abs(last[0] - scores[0]) > 1e-3);
      } finally {
        summing.dispose();
      }
    });
  },
);

test('a head the model was not created with is refused by name', async () => {
  await withModel({ seed: 3 }, async (model) => {
    assert.throws(() => tf.tidy(() => model.scalarHead('v_head', tf.zeros([1, 1, 16]))), /no v_head head/);
  });
});

test(
  'parameterCount is countParameters(config) plus (C + 1) ' + 'per scalar head, and countParameters is right by hand',
  async () => {
    // V·C + T·C + L·(2·2C + (3C² + 3C) + (C² + C) + (4C² + 4C) + (4C² + C)) + 2C
    //   = 640 + 256 + 2 · (64 + 816 + 272 + 1088 + 1040) + 32 = 7488
    assert.equal(countParameters(config), 7488);
    await withModel({ seed: 1 }, async (model) => assert.equal(model.parameterCount, 7488));
    await withModel({ seed: 1, heads: ['v_head', 'score'] }, async (model) =>
      assert.equal(model.parameterCount, countParameters(config) + 2 * (16 + 1)),
    );
  },
);

test('an invalid config is refused with every problem named', () => {
  assert.throws(
    () => Gpt.create({ ...config, n_head: 3, block_size: 0 }, { seed: 1 }),
    /block_size must be a positive integer.*n_embd \(16\) must be divisible by n_head \(3\)/,
  );
});

test('weights are named as nanoGPT names them, in state-dict order, heads last', async () => {
  await withModel({ seed: 1, heads: ['v_head'] }, async (model) => {
    const block = (l: number) =>
      [
        'ln_1.weight',
        'ln_1.bias',
        'attn.c_attn.weight',
        'attn.c_attn.bias',
        'attn.c_proj.weight',
        'attn.c_proj.bias',
        'ln_2.weight',
        'ln_2.bias',
        'mlp.c_fc.weight',
        'mlp.c_fc.bias',
        'mlp.c_proj.weight',
        'mlp.c_proj.bias',
      ].map((name) => `transformer.h.${l}.${name}`);
    assert.deepEqual(
      [...model.weights.keys()],
      [
        'transformer.wte.weight',
        'transformer.wpe.weight',
        ...block(0),
        ...block(1),
        'transformer.ln_f.weight',
        'transformer.ln_f.bias',
        'v_head.weight',
        'v_head.bias',
      ],
    );
    assert.deepEqual([...model.weights.get('transformer.h.0.attn.c_attn.weight')!.shape], [16, 48]);
    assert.deepEqual([...model.weights.get('transformer.h.1.mlp.c_proj.weight')!.shape], [64, 16]);
  });
});

test(
  'the same seed gives identical weights and a different ' + 'seed different ones, with two models alive at once',
  async () => {
    const [a, b, c] = [
      Gpt.create(config, { seed: 7 }),
      Gpt.create(config, { seed: 7 }),
      Gpt.create(config, { seed: 8 }),
    ];
    try {
      const [wa, wb, wc] = await Promise.all([a.readWeights(), b.readWeights(), c.readWeights()]);
      assert.deepEqual(wa, wb);
      for (const name of [
        'transformer.wte.weight',
        'transformer.wpe.weight',
        'transformer.h.1.attn.c_attn.weight',
        'transformer.h.0.mlp.c_proj.weight',
      ]) {
        assert.notDeepEqual(wa.get(name)!.data, wc.get(name)!.data, `${name} should depend on the seed`);
      }
    } finally {
      [a, b, c].forEach((model) => model.dispose());
    }
  },
);

test(
  'init follows nanoGPT: N(0, 0.02), residual projections ' + 'N(0, 0.02/√(2·n_layer)), biases 0, LayerNorm γ 1',
  async () => {
    await withModel({ seed: 4 }, async (model) => {
      const weights = await model.readWeights();
      const std = (name: string) => {
        const data = weights.get(name)!.data;
        const mean = data.reduce((a, b) => a + b, 0) / data.length;
        return Math.sqrt(data.reduce((a, b) => a + (b - mean) ** 2, 0) / data.length);
      };
      // 640 to 4096 samples: the sample std is within ~6% of the true one.
      assert.ok(Math.abs(std('transformer.wte.weight') / 0.02 - 1) < 0.1);
      assert.ok(Math.abs(std('transformer.h.0.mlp.c_fc.weight') / 0.02 - 1) < 0.1);
      assert.ok(Math.abs(std('transformer.h.1.attn.c_proj.weight') / (0.02 / Math.sqrt(4)) - 1) < 0.1);
      assert.ok(Math.abs(std('transformer.h.1.mlp.c_proj.weight') / (0.02 / Math.sqrt(4)) - 1) < 0.1);
      assert.ok(weights.get('transformer.h.0.attn.c_attn.bias')!.data.every((x) => x === 0));
      assert.ok(weights.get('transformer.ln_f.weight')!.data.every((x) => x === 1));
    });
  },
);

test(
  'a KV-cached forward (a prefix, then one token at a ' + 'time) gives the logits of one full forward, to 1e-4',
  async () => {
    await withModel({ seed: 5 }, async (model) => {
      const ids = randomIds(2, 10, 5);
      const full = await logitsOf(model, ids);
      const cached = await readTidy(() => {
        const input = tf.tensor2d(ids, undefined, 'int32');
        let cache: KvCache = { layers: [], length: 0 };
        const parts: Tensor[] = [];
        for (const [from, to] of [
          [0, 4],
          [4, 5],
          [5, 6],
          [6, 7],
          [7, 8],
          [8, 9],
          [9, 10],
        ]) {
          const out = model.forward(tf.slice(input, [0, from], [2, to - from]), { cache });
          cache = out.cache as KvCache;
          assert.equal(cache.length, to);
          assert.deepEqual([...cache.layers[0].k.shape], [2, 2, to, 8]); // [B, H, P + T, D]
          parts.push(out.logits);
        }
        return tf.concat(parts, 1); // [B, T, V]
      });
      assertClose(cached, full, 1e-4, 'cached vs full logits');
    });
  },
);

test(
  'a left-padded batch (positions and keyMask as generate builds them) ' +
    'gives each row the logits of that row alone, also for a cached next token',
  async () => {
    await withModel({ seed: 6 }, async (model) => {
      const prompts = randomIds(3, 7, 6).map((row, b) => row.slice(0, [3, 7, 5][b]));
      const nextTokens = [11, 22, 33];
      const length = 7;
      // As generate does: [pad … pad, prompt]; positions count real tokens only; mask 1 on real tokens.
      const offsets = prompts.map((p) => length - p.length);
      const ids = prompts.map((p, b) => [...new Array<number>(offsets[b]).fill(0), ...p]);
      const positions = offsets.map((offset) => Array.from({ length }, (_, t) => Math.max(0, t - offset)));
      const keyMask = offsets.map((offset) => Array.from({ length }, (_, t) => (t >= offset ? 1 : 0)));
      const [padded, next] = await Promise.all(
        tf
          .tidy(() => {
            const first = model.forward(tf.tensor2d(ids, undefined, 'int32'), {
              positions: tf.tensor2d(positions, undefined, 'int32'),
              keyMask: tf.tensor2d(keyMask),
              cache: { layers: [], length: 0 },
            });
            const second = model.forward(
              tf.tensor2d(
                nextTokens.map((t) => [t]),
                undefined,
                'int32',
              ),
              {
                positions: tf.tensor2d(
                  prompts.map((p) => [p.length]),
                  undefined,
                  'int32',
                ),
                keyMask: tf.tensor2d(keyMask.map((row) => [...row, 1])),
                cache: first.cache,
              },
            );
            return [first.logits, second.logits];
          })
          .map(async (t) => {
            const data = (await t.data()) as Float32Array;
            t.dispose();
            return data;
          }),
      );
      for (let b = 0; b < prompts.length; b++) {
        const n = prompts[b].length;
        const alone = await logitsOf(model, [[...prompts[b], nextTokens[b]]]); // [1, n + 1, V]
        assertClose(
          rowLogits(padded, length, b, offsets[b], length),
          rowLogits(alone, n + 1, 0, 0, n),
          1e-4,
          `row ${b} prompt`,
        );
        assertClose(rowLogits(next, 1, b, 0, 1), rowLogits(alone, n + 1, 0, n, n + 1), 1e-4, `row ${b} next token`);
      }
    });
  },
);

test('attention is causal: changing a later token leaves every earlier position\u2019s logits unchanged', async () => {
  await withModel({ seed: 7 }, async (model) => {
    const [row] = randomIds(1, 12, 7);
    const changed = row.map((id, t) => (t === 7 ? (id + 1) % V : id));
    const [a, b] = [await logitsOf(model, [row]), await logitsOf(model, [changed])];
    assertClose(rowLogits(b, 12, 0, 0, 7), rowLogits(a, 12, 0, 0, 7), 1e-6, 'positions before the change');
    assert.ok(
      maxAbsDiff(rowLogits(b, 12, 0, 7, 12), rowLogits(a, 12, 0, 7, 12)) > 1e-3,
      'positions from the change on should differ',
    );
  });
});

test('a sequence longer than block_size is refused with a clear error, with or without a cache', async () => {
  await withModel({ seed: 8 }, async (model) => {
    assert.throws(
      () => tf.tidy(() => model.forward(tf.zeros([1, 17], 'int32')).logits),
      /sequence of 17 positions exceeds block_size 16/,
    );
    assert.throws(
      () =>
        tf.tidy(() => {
          const { cache } = model.forward(tf.zeros([1, 15], 'int32'), { cache: { layers: [], length: 0 } });
          model.forward(tf.zeros([1, 2], 'int32'), { cache });
        }),
      /sequence of 17 positions exceeds block_size 16/,
    );
    // Exactly block_size is fine.
    assert.equal((await logitsOf(model, randomIds(1, 16, 8))).length, 16 * V);
  });
});

test('readWeights → fromWeights gives a second model with identical logits', async () => {
  await withModel({ seed: 9, heads: ['v_head'] }, async (model) => {
    const copy = Gpt.fromWeights(config, ['v_head'], await model.readWeights());
    try {
      const ids = randomIds(2, 6, 9);
      assert.deepEqual(await logitsOf(copy, ids), await logitsOf(model, ids));
      assert.deepEqual(await copy.readWeights(), await model.readWeights());
    } finally {
      copy.dispose();
    }
  });
});

test('assign with a missing or mis-shaped weight throws naming it, and changes nothing', async () => {
  await withModel({ seed: 10 }, async (model) => {
    const original = await model.readWeights();
    const other: Weights = await withModel({ seed: 11 }, (m) => m.readWeights());
    const missing = new Map(other);
    missing.delete('transformer.h.1.mlp.c_fc.bias');
    assert.throws(() => model.assign(missing), /the checkpoint has no weight "transformer\.h\.1\.mlp\.c_fc\.bias"/);
    const misShaped = new Map(other);
    misShaped.set('transformer.wpe.weight', { shape: [8, 16], data: new Float32Array(8 * 16) });
    assert.throws(
      () => model.assign(misShaped),
      /weight "transformer\.wpe\.weight" has shape \[8,16\] in the checkpoint but \[16,16\]/,
    );
    // The weights before the bad one were not half-overwritten.
    assert.deepEqual(await model.readWeights(), original);
    // fromWeights reports the same error and leaves no tensors behind.
    const tensors = tf.memory().numTensors;
    assert.throws(() => Gpt.fromWeights(config, [], missing), /no weight "transformer\.h\.1\.mlp\.c_fc\.bias"/);
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test('dropout multiplies each site by its mask, in forward order, and is reproducible from its seed', async () => {
  const model = Gpt.create({ ...config, dropout: 0.2 }, { seed: 12 });
  try {
    const ids = randomIds(1, 6, 12);
    const shape = { batchSize: 1, length: 6 };
    const run = (dropoutMasks?: readonly DropoutMask[]) =>
      readTidy(() => model.forward(tf.tensor2d(ids, undefined, 'int32'), { dropoutMasks }).logits);
    const evaluation = await run();
    assert.deepEqual(await run([]), evaluation);
    const ones = dropoutSiteShapes(model.config, shape).map((siteShape) => ({
      shape: siteShape,
      data: new Float32Array(siteShape.reduce((a, d) => a * d, 1)).fill(1),
    }));
    assert.deepEqual(await run(ones), evaluation, 'all-ones masks are the identity');
    const trained = await run(drawDropoutMasks(model.config, shape, 3));
    assert.ok(maxAbsDiff(trained, evaluation) > 1e-3);
    assert.deepEqual(await run(drawDropoutMasks(model.config, shape, 3)), trained);
    assert.ok(maxAbsDiff(await run(drawDropoutMasks(model.config, shape, 4)), trained) > 1e-3);
    // Zeroing the last site (layer 1's MLP output) changes the logits: every mask is applied, in order.
    const lastZeroed = ones.map((mask, site) =>
      site === ones.length - 1 ? { ...mask, data: mask.data.map(() => 0) } : mask,
    );
    assert.ok(maxAbsDiff(await run(lastZeroed), evaluation) > 1e-3);
    const forwardWith = (dropoutMasks: readonly DropoutMask[]) => () =>
      tf.tidy(() => model.forward(tf.tensor2d(ids, undefined, 'int32'), { dropoutMasks }).logits);
    assert.throws(forwardWith(ones.slice(1)), /dropout site 0: mask \[1, 2, 6, 6\] for a tensor \[1, 6, 16\]/);
    assert.throws(forwardWith(ones.slice(0, -1)), /no dropout mask for dropout site 6/);
    assert.throws(forwardWith([...ones, ones[0]]), /8 dropout masks for 7 dropout sites/);
  } finally {
    model.dispose();
  }
});

test('the LM loss has a gradient for every weight on wasm, equal to the one computed on cpu', async () => {
  const ids = randomIds(2, 9, 13);
  const inputs = ids.map((row) => row.slice(0, -1));
  const targets = ids.map((row) => row.slice(1));
  const mask = targets.map((row) => row.map((_, t) => (t < 6 ? 1 : 0)));
  const gradients = async (model: Gpt) => {
    const names = [...model.weights.keys()];
    const variables = model.trainableVariables;
    const { value, grads } = tf.variableGrads(
      () =>
        maskedNll(
          model.forward(tf.tensor2d(inputs, undefined, 'int32')).logits,
          tf.tensor2d(targets, undefined, 'int32'),
          tf.tensor2d(mask),
        ) as never,
      variables,
    );
    const out = new Map<string, Float32Array>();
    for (let i = 0; i < names.length; i++) out.set(names[i], (await grads[variables[i].name].data()) as Float32Array);
    out.set('loss', (await value.data()) as Float32Array);
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  };
  let weights: Weights;
  let onWasm: Map<string, Float32Array>;
  const model = Gpt.create(config, { seed: 13 });
  try {
    weights = await model.readWeights();
    onWasm = await gradients(model);
  } finally {
    model.dispose();
  }
  await selectBackend('cpu');
  try {
    const onCpu = await withModel({ seed: 0 }, async (cpuModel) => {
      cpuModel.assign(weights);
      return gradients(cpuModel);
    });
    assert.deepEqual([...onWasm.keys()], [...weights.keys(), 'loss']);
    for (const [name, grad] of onWasm) {
      const expected = onCpu.get(name)!;
      const scale = Math.max(1e-3, ...Array.from(expected, Math.abs));
      assert.ok(maxAbsDiff(grad, expected) / scale < 1e-3, `${name}: wasm and cpu gradients differ`);
      if (name !== 'loss')
        assert.ok(
          grad.some((x) => x !== 0),
          `${name} has an all-zero gradient`,
        );
    }
  } finally {
    await selectBackend('wasm');
  }
});

test('forward passes inside tf.tidy leak no tensors, once the causal-mask cache is warm', async () => {
  await withModel({ seed: 14, heads: ['v_head', 'score'] }, async (model) => {
    const passes = () =>
      tf.tidy(() => {
        const ids = tf.tensor2d(randomIds(2, 6, 14), undefined, 'int32');
        const { hidden, cache } = model.forward(ids, { cache: { layers: [], length: 0 }, keyMask: tf.ones([2, 6]) });
        model.scalarHead('v_head', hidden);
        model.score(ids, [6, 3]);
        model.forward(tf.tensor2d([[1], [2]], undefined, 'int32'), {
          cache,
          keyMask: tf.ones([2, 7]),
          positions: tf.tensor2d([[6], [6]], undefined, 'int32'),
        });
      });
    passes(); // warm-up: the model keeps one causal mask per (length, past)
    const tensors = tf.memory().numTensors;
    passes();
    passes();
    assert.equal(tf.memory().numTensors, tensors);
  });
});

test('dispose() frees every tensor a model made, its weights and its cached masks', async () => {
  const tensors = tf.memory().numTensors;
  const model = Gpt.create(config, { seed: 15, heads: ['v_head'] });
  assert.equal(tf.memory().numTensors, tensors + model.weights.size);
  await logitsOf(model, randomIds(1, 5, 15));
  model.dispose();
  assert.equal(tf.memory().numTensors, tensors);
});
