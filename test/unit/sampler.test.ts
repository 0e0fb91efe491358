/**
 * Sampling (src/trainer/sampling/sampler.ts): `sampleToken`'s warpers against hand-computed
 * distributions, and `generate` — reproducibility, EOS, the length limits, left-padded batches
 * against one prompt at a time, its log-probabilities, and tensor bookkeeping — on wasm.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Random } from '../../src/core/random';
import { selectBackend } from '../../src/trainer/engine/tfjs/backend';
import { tokenLogprobs } from '../../src/trainer/engine/tfjs/losses';
import { tf } from '../../src/trainer/engine/tfjs/tfRuntime';
import { Gpt } from '../../src/trainer/engine/tfjs/gpt';
import type { GptConfig } from '../../src/trainer/model/gptConfig';
import { generate, sampleToken, type SamplingOptions } from '../../src/trainer/sampling/sampler';

before(async () => {
  await selectBackend('wasm');
});

describe('sampleToken', () => {
  // Probabilities chosen so every cut is far from a floating-point tie; the argmax is token 1.
  const probs = [0.05, 0.5, 0.1, 0.2, 0.15];
  // Logits are log p shifted by a constant (softmax does not see the shift).
  const logits = Float32Array.from(probs, (p) => Math.log(p) + 3);

  /** Token frequencies over many seeded draws; also checks each draw's logprob is the unwarped log p. */
  function frequencies(options: { temperature: number; topK: number; topP: number }, draws = 20000): number[] {
    const random = new Random(42);
    const counts = probs.map(() => 0);
    for (let i = 0; i < draws; i++) {
      const { token, logprob } = sampleToken(logits, options, random);
      counts[token] += 1;
      assert.ok(
        Math.abs(logprob - Math.log(probs[token])) < 1e-6,
        `logprob of ${token} is ${logprob}, log p is ${Math.log(probs[token])}`,
      );
    }
    return counts.map((count) => count / draws);
  }

  /** Empirical frequencies equal `expected` within 0.015 (about 4σ at 20000 draws); zero stays exactly zero. */
  function assertFrequencies(actual: number[], expected: number[]): void {
    actual.forEach((f, token) => {
      if (expected[token] === 0) assert.equal(f, 0, `token ${token} is outside the kept set but was drawn`);
      else
        assert.ok(Math.abs(f - expected[token]) < 0.015, `token ${token}: frequency ${f}, expected ${expected[token]}`);
    });
  }

  test('temperature 0 is argmax, with the unwarped log-probability', () => {
    const random = new Random(1);
    for (let i = 0; i < 10; i++) {
      const { token, logprob } = sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, random);
      assert.equal(token, 1);
      assert.ok(Math.abs(logprob - Math.log(0.5)) < 1e-6);
    }
  });

  test('top_k = 1 is argmax at any temperature', () => {
    assertFrequencies(frequencies({ temperature: 1, topK: 1, topP: 1 }, 2000), [0, 1, 0, 0, 0]);
    assertFrequencies(frequencies({ temperature: 5, topK: 1, topP: 1 }, 2000), [0, 1, 0, 0, 0]);
  });

  test('with no warping the draws follow softmax(logits)', () => {
    assertFrequencies(frequencies({ temperature: 1, topK: 0, topP: 1 }), probs);
  });

  test('top_k = 3 draws only the 3 most likely tokens, renormalised: p / 0.85', () => {
    assertFrequencies(frequencies({ temperature: 1, topK: 3, topP: 1 }), [0, 0.5 / 0.85, 0, 0.2 / 0.85, 0.15 / 0.85]);
  });

  test('top_p keeps the smallest nucleus whose probability reaches p, renormalised', () => {
    // Sorted: 0.5, 0.2, 0.15, 0.1, 0.05 → cumulative 0.5, 0.7, 0.85, 0.95, 1.
    // p = 0.6: {0.5, 0.2} (0.5 alone falls short).
    assertFrequencies(frequencies({ temperature: 1, topK: 0, topP: 0.6 }), [0, 0.5 / 0.7, 0, 0.2 / 0.7, 0]);
    // p = 0.9: {0.5, 0.2, 0.15, 0.1}; only the 0.05 tail is cut.
    assertFrequencies(frequencies({ temperature: 1, topK: 0, topP: 0.9 }), [
      0,
      0.5 / 0.95,
      0.1 / 0.95,
      0.2 / 0.95,
      0.15 / 0.95,
    ]);
    // p = 0.4: the top token alone already reaches it.
    assertFrequencies(frequencies({ temperature: 1, topK: 0, topP: 0.4 }, 2000), [0, 1, 0, 0, 0]);
  });

  test('temperature is applied before top_p (Hugging Face order), and top_k before top_p', () => {
    // T = 2: p_T ∝ √p = [0.2236, 0.7071, 0.3162, 0.4472, 0.3873] / 2.0815
    //      = [0.1074, 0.3397, 0.1519, 0.2149, 0.1861]; sorted cumulative 0.3397, 0.5546, 0.7407 …
    // so top_p = 0.6 keeps three tokens here (two without the temperature).
    const sqrt = probs.map(Math.sqrt);
    const kept = [1, 3, 4];
    const keptTotal = kept.reduce((sum, i) => sum + sqrt[i], 0);
    assertFrequencies(
      frequencies({ temperature: 2, topK: 0, topP: 0.6 }),
      sqrt.map((s, i) => (kept.includes(i) ? s / keptTotal : 0)),
    );
    // top_k = 2 first leaves {0.5, 0.2} → renormalised 0.714, 0.286; top_p = 0.6 then keeps only the first.
    assertFrequencies(frequencies({ temperature: 1, topK: 2, topP: 0.6 }, 2000), [0, 1, 0, 0, 0]);
  });

  /** Pearson's χ² = Σ (observed − expected)² / expected of token counts against the probabilities `expected`. */
  function chiSquare(counts: readonly number[], expected: readonly number[]): number {
    const draws = counts.reduce((a, b) => a + b, 0);
    return counts.reduce((statistic, count, token) => {
      const mean = draws * expected[token];
      return statistic + (count - mean) ** 2 / mean;
    }, 0);
  }
  // χ² with 4 degrees of freedom (5 tokens) exceeds 18.467 with probability 0.001 when the counts follow `expected`.
  const chiSquareCritical4Dof = 18.467;
  const chiSquareDraws = 20000;

  /** Token counts of `chiSquareDraws` seeded draws at temperature T, top-k and top-p off. */
  function counts(temperature: number, seed: number, topP: number | undefined = 1): number[] {
    const random = new Random(seed);
    const tally = probs.map(() => 0);
    for (let i = 0; i < chiSquareDraws; i++) tally[sampleToken(logits, { temperature, topK: 0, topP }, random).token]++;
    return tally;
  }

  /** softmax(log p / T) = p^(1/T) / Σ p^(1/T), in float64. */
  const tempered = (temperature: number) => {
    const powered = probs.map((p) => p ** (1 / temperature));
    const total = powered.reduce((a, b) => a + b, 0);
    return powered.map((w) => w / total);
  };

  test('without top-k / top-p the counts pass a χ² test against softmax(logits / T), and a shifted one fails', () => {
    for (const temperature of [1, 0.7, 2]) {
      for (const seed of [11, 12]) {
        const tally = counts(temperature, seed);
        const statistic = chiSquare(tally, tempered(temperature));
        assert.ok(statistic < chiSquareCritical4Dof, `T = ${temperature}, seed ${seed}: χ² = ${statistic}`);
        // The same statistic rejects a distribution two points of probability away (0.02 moved between tokens).
        const shifted = tempered(temperature).map((p, token) => p + (token === 1 ? -0.02 : token === 3 ? 0.02 : 0));
        const shiftedStatistic = chiSquare(tally, shifted);
        assert.ok(shiftedStatistic > chiSquareCritical4Dof, `T = ${temperature}: shifted χ² = ${shiftedStatistic}`);
      }
    }
    // topP undefined counts as off too (an options object read from a config without the field).
    const untyped = counts(1, 13, undefined as unknown as number);
    assert.ok(chiSquare(untyped, probs) < chiSquareCritical4Dof);
  });

  test('the logprob is the unwarped log-softmax of the drawn token at any temperature, even for huge logits', () => {
    // z + 1000: exp(z) would overflow without the max shift. Float32 rounds z + 1000 to ~6e-5, so the reference is
    // the log-softmax of the float32 values themselves, computed in float64 (log Σ exp through the largest term).
    const shifted = Float32Array.from(logits, (z) => z + 1000);
    const logSoftmax = (input: Float32Array, token: number) => {
      const top = Math.max(...input);
      return input[token] - top - Math.log(input.reduce((total, z) => total + Math.exp(z - top), 0));
    };
    for (const input of [logits, shifted]) {
      for (const temperature of [0.5, 1, 3]) {
        const random = new Random(5);
        for (let i = 0; i < 200; i++) {
          const { token, logprob } = sampleToken(input, { temperature, topK: 0, topP: 1 }, random);
          assert.ok(Number.isFinite(logprob));
          assert.ok(
            Math.abs(logprob - logSoftmax(input, token)) < 1e-12,
            `T = ${temperature}: ${logprob} for ${token}`,
          );
          if (input === logits) assert.ok(Math.abs(logprob - Math.log(probs[token])) < 1e-6);
        }
      }
    }
  });

  test('top-k selects the same candidates, in the same order, as sorting the whole vocabulary (ties included)', () => {
    /** The sort-everything warpers sampleToken had before top-k selected its candidates (Hugging Face's order). */
    function sortingReference(input: Float32Array, topK: number, topP: number, random: Random): number {
      const top = Math.max(...input);
      const order = Array.from(input, (_, i) => i).sort((a, b) => input[b] - input[a]);
      const scaled = order.slice(0, topK).map((i) => Math.exp(input[i] - top));
      const total = scaled.reduce((a, b) => a + b, 0);
      let keep = scaled.length;
      let cumulative = 0;
      for (let i = 0; i < scaled.length && topP < 1; i++) {
        cumulative += scaled[i] / total;
        if (cumulative >= topP) {
          keep = i + 1;
          break;
        }
      }
      let draw = random.next() * scaled.slice(0, keep).reduce((a, b) => a + b, 0);
      for (let i = 0; i < keep; i++) {
        draw -= scaled[i];
        if (draw <= 0) return order[i];
      }
      return order[keep - 1];
    }
    const values = new Random(21);
    for (let trial = 0; trial < 20; trial++) {
      // 64 logits from 12 distinct values: many ties, which a stable sort breaks by index.
      const input = Float32Array.from({ length: 64 }, () => values.int(12) / 3);
      for (const [topK, topP] of [
        [1, 1],
        [5, 1],
        [17, 1],
        [17, 0.8],
        [63, 0.95],
      ]) {
        const ours = new Random(trial);
        const reference = new Random(trial);
        for (let i = 0; i < 50; i++)
          assert.equal(
            sampleToken(input, { temperature: 1, topK, topP }, ours).token,
            sortingReference(input, topK, topP, reference),
            `trial ${trial}, top-k ${topK}, top-p ${topP}, draw ${i}`,
          );
      }
    }
  });

  test('the same seed draws the same tokens', () => {
    const draw = (seed: number) => {
      const random = new Random(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, random).token);
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    const drawTempered = (seed: number) => {
      const random = new Random(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 0.7, topK: 0, topP: 1 }, random));
    };
    assert.deepEqual(drawTempered(7), drawTempered(7));
  });
});

describe('generate', () => {
  const config: GptConfig = { vocab_size: 40, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0 };
  const base: SamplingOptions = { temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, seed: 1, padTokenId: 0 };
  let model: Gpt;

  before(async () => {
    // A fresh model's logits are nearly uniform (σ ≈ 0.08) and its residual stream is mostly the
    // last token's embedding. Scaling the blocks' matrices ×10 makes attention over the context
    // matter, and ln_f's γ ×25 spreads the logits, so greedy continuations vary with the prompt and
    // are not decided by float rounding.
    model = Gpt.create(config, { seed: 3 });
    const weights = await model.readWeights();
    for (const [name, weight] of weights) {
      if (/^transformer\.h\.\d+\.(attn|mlp)\.c_\w+\.weight$/.test(name)) weight.data = weight.data.map((x) => x * 10);
      if (name === 'transformer.ln_f.weight') weight.data = weight.data.map((x) => x * 25);
    }
    model.assign(weights);
  });

  after(() => model.dispose());

  test('is deterministic per seed: same seed, same tokens and logprobs; another seed, other tokens', async () => {
    const prompts = [
      [1, 2, 3],
      [4, 5],
    ];
    const a = await generate(model, prompts, base);
    assert.deepEqual(await generate(model, prompts, base), a);
    assert.notDeepEqual(
      (await generate(model, prompts, { ...base, seed: 2 })).map((s) => s.tokens),
      a.map((s) => s.tokens),
    );
  });

  test('the logprobs it returns are the model\u2019s log p of each new token, from a full forward', async () => {
    const prompt = [5, 9, 2, 17];
    const [sequence] = await generate(model, [prompt], { ...base, maxNewTokens: 8, seed: 5 });
    const full = [...prompt, ...sequence.tokens];
    const logprobs = tf.tidy(() =>
      tokenLogprobs(
        model.forward(tf.tensor2d([full.slice(0, -1)], undefined, 'int32')).logits,
        tf.tensor2d([full.slice(1)], undefined, 'int32'),
      ),
    );
    const all = Array.from(await logprobs.data());
    logprobs.dispose();
    const expected = all.slice(prompt.length - 1);
    sequence.logprobs.forEach((lp, i) =>
      assert.ok(Math.abs(lp - expected[i]) < 1e-4, `token ${i}: ${lp} vs ${expected[i]}`),
    );
  });

  test('respects max_new_tokens, and stops at the context limit when that comes first', async () => {
    const [six] = await generate(model, [[1, 2, 3]], base);
    assert.equal(six.tokens.length, 6);
    assert.equal(six.logprobs.length, 6);
    assert.equal(six.finishedByEos, false);
    // 13 prompt tokens in a context of 16 leave room for 3.
    const long = Array.from({ length: 13 }, (_, i) => (i % 39) + 1);
    const results = await generate(model, [long, [1, 2]], { ...base, maxNewTokens: 10 });
    assert.deepEqual(
      results.map((s) => s.tokens.length),
      [3, 3],
    );
  });

  test('refuses prompts that fill the context, saying so', async () => {
    const full = Array.from({ length: 16 }, (_, i) => i + 1);
    await assert.rejects(generate(model, [[1], full], base), /prompts of 16 tokens leave no room in the context of 16/);
  });

  test('stops a sequence at EOS when EOS dominates the logits (EOS kept, finishedByEos set)', async () => {
    // ln_f with γ = 0 and β = e₀ makes every hidden state e₀, so logits = wte[:, 0]; EOS's 30 dominates.
    const eos = 7;
    const rigged = Gpt.create(config, { seed: 4 });
    try {
      const weights = await rigged.readWeights();
      (weights.get('transformer.ln_f.weight') as { data: Float32Array }).data.fill(0);
      (weights.get('transformer.ln_f.bias') as { data: Float32Array }).data.set([1], 0);
      const wte = weights.get('transformer.wte.weight') as { data: Float32Array };
      for (let v = 0; v < config.vocab_size; v++) wte.data[v * config.n_embd] = v === eos ? 30 : 0;
      rigged.assign(weights);
      for (const temperature of [0, 1]) {
        const results = await generate(rigged, [[1, 2, 3], [4]], { ...base, temperature, eosTokenId: eos });
        for (const sequence of results) {
          assert.deepEqual(sequence.tokens, [eos]);
          assert.equal(sequence.finishedByEos, true);
          assert.ok(Math.abs(sequence.logprobs[0]) < 1e-6, 'EOS has probability ≈ 1');
        }
      }
    } finally {
      rigged.dispose();
    }
  });

  test('in a batch, a row that reaches EOS stops while the others go on as they would alone', async () => {
    const greedy = { ...base, temperature: 0, maxNewTokens: 8 };
    const prompts = [
      [3, 1, 4],
      [1, 5, 9, 2, 6],
    ];
    const [first, second] = await generate(model, prompts, greedy);
    // EOS := the first token of row 0's greedy continuation that did not appear before it.
    const k = first.tokens.findIndex((token, i) => i > 0 && !first.tokens.slice(0, i).includes(token));
    assert.ok(k > 0, `row 0's greedy continuation is one repeated token: ${first.tokens}`);
    const eos = first.tokens[k];
    const results = await generate(model, prompts, { ...greedy, eosTokenId: eos });
    assert.deepEqual(results[0].tokens, first.tokens.slice(0, k + 1));
    assert.equal(results[0].finishedByEos, true);
    const stop = second.tokens.indexOf(eos);
    assert.deepEqual(results[1].tokens, stop < 0 ? second.tokens : second.tokens.slice(0, stop + 1));
    assert.equal(results[1].finishedByEos, stop >= 0);
  });

  test(
    'a batch of prompts of different lengths at temperature 0 gives ' +
      'each prompt what it gives alone (left padding is invisible)',
    async () => {
      const prompts = [[2], [7, 3, 11, 19, 23, 5], [13, 8, 30], [1, 2, 3, 4]];
      const greedy = { ...base, temperature: 0, maxNewTokens: 7 };
      const batch = await generate(model, prompts, greedy);
      for (const [b, prompt] of prompts.entries()) {
        const [alone] = await generate(model, [prompt], greedy);
        assert.deepEqual(batch[b].tokens, alone.tokens, `prompt ${b}`);
        batch[b].logprobs.forEach((lp, i) =>
          assert.ok(Math.abs(lp - alone.logprobs[i]) < 1e-4, `prompt ${b} token ${i}: ${lp} vs ${alone.logprobs[i]}`),
        );
      }
      // The continuations are not all the same, so the comparison means something.
      assert.ok(new Set(batch.map((s) => s.tokens.join(','))).size > 1);
    },
  );

  test('leaks no tensors: numTensors is the same before and after generate, also when EOS ends it early', async () => {
    const prompts = [
      [1, 2, 3],
      [4, 5],
    ];
    const run = async () => {
      await generate(model, prompts, base);
      const [first] = await generate(model, prompts, { ...base, temperature: 0 });
      await generate(model, prompts, { ...base, temperature: 0, eosTokenId: first.tokens[1] });
    };
    await run(); // warm-up: the model caches one causal mask per (length, past)
    const tensors = tf.memory().numTensors;
    await run();
    assert.equal(tf.memory().numTensors, tensors);
    await assert.rejects(generate(model, [new Array<number>(16).fill(1)], base));
    assert.equal(tf.memory().numTensors, tensors);
  });
});
