/**
 * `node --import tsx bench/samplingBench.ts [rounds]`: where sampling time goes on the ONNX Runtime engine, at the
 * quick demo's preferences shape (demoConfig.ts: vocab 512, 2 layers, 4 heads, width 48, context 48; 16 prompts × 4
 * completions, 16 new tokens).
 *   1. One draw from 512 logits: `sampleToken` (no sort when top-k and top-p are off) against the sorting draw it
 *      replaced (kept below as `sortingDraw`, the pre-issue-15 algorithm), and with top-k 50 (still sorting).
 *   2. One `generateOnnx` pass on a weights-as-inputs KV-cache session, with onnxruntime's intra-op threads
 *      spin-waiting (its default) against sleeping between ops (`spinWait: false`, what onnxEngineSampler uses).
 * Every comparison is interleaved round by round so load on a shared machine hits both sides alike; prints medians
 * with min–max, wall and (for 2) process CPU time.
 */
import { Random } from '../src/core/random';
import { initialGptWeights } from '../src/trainer/model/gptInit';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { OnnxCausalLm } from '../src/trainer/onnx/onnxCausalLm';
import { generateOnnx } from '../src/trainer/onnx/onnxSampler';
import { sampleToken, type SamplingOptions } from '../src/trainer/sampling/sampler';

const config: GptConfig = { vocab_size: 512, block_size: 48, n_layer: 2, n_head: 4, n_embd: 48, dropout: 0 };
const promptCount = 16;
const completionsPerPrompt = 4;
const newTokens = 16;
/** Demo prompts are a BOS and a few words: 4–11 tokens here. */
const shortestPrompt = 3;
const promptLengthSpread = 8;
/** ln_f's γ: spreads a fresh model's logits (σ ≈ 0.1 otherwise) to a trained model's few-unit range. */
const logitSpread = 10;
const drawsPerRound = 2000;
/** Logit σ for part 1, about a trained small model's. */
const benchLogitSigma = 2;
const benchTopK = 50;
const rounds = Number(process.argv[2] ?? 15);

const sampling: SamplingOptions = {
  temperature: 1,
  topK: 0,
  topP: 1,
  maxNewTokens: newTokens,
  seed: 1,
  padTokenId: 0,
  eosTokenId: config.vocab_size - 1,
};

/** The draw before issue 15: every candidate sorted by logit, then the scan (here without top-k / top-p). */
function sortingDraw(logits: Float32Array, temperature: number, random: Random): number {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  const scaled = order.map((i) => Math.exp((logits[i] - max) / temperature));
  let draw = random.next() * scaled.reduce((a, b) => a + b, 0);
  for (let i = 0; i < scaled.length; i++) {
    draw -= scaled[i];
    if (draw <= 0) return order[i];
  }
  return order[n - 1];
}

function summary(values: number[], digits = 2): string {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return `${median.toFixed(digits)} (${sorted[0].toFixed(digits)}–${sorted[sorted.length - 1].toFixed(digits)})`;
}

function drawBench(): void {
  const random = new Random(7);
  const logits = Float32Array.from({ length: config.vocab_size }, () => benchLogitSigma * random.normal());
  const variants: Record<string, (r: Random) => unknown> = {
    'sorting draw (before)': (r) => sortingDraw(logits, 1, r),
    'sampleToken, no top-k/top-p': (r) => sampleToken(logits, sampling, r),
    [`sampleToken, top-k ${benchTopK}`]: (r) => sampleToken(logits, { ...sampling, topK: benchTopK }, r),
  };
  const perDraw: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++)
    for (const [name, draw] of Object.entries(variants)) {
      const r = new Random(round);
      const t0 = performance.now();
      for (let i = 0; i < drawsPerRound; i++) draw(r);
      (perDraw[name] ??= []).push(((performance.now() - t0) * 1000) / drawsPerRound);
    }
  console.log(`\n1. One draw from ${config.vocab_size} logits, µs (median, min–max of ${rounds} rounds)`);
  for (const [name, times] of Object.entries(perDraw)) console.log(`  ${name.padEnd(30)} ${summary(times)}`);
}

async function generateBench(): Promise<void> {
  const weights = initialGptWeights(config, { seed: 1 });
  const finalNorm = weights.get('transformer.ln_f.weight');
  if (finalNorm) finalNorm.data.fill(logitSpread);
  const random = new Random(3);
  const prompts = Array.from({ length: promptCount }, () => {
    const length = shortestPrompt + random.int(promptLengthSpread);
    const prompt = [1, ...Array.from({ length }, () => 2 + random.int(config.vocab_size - 3))];
    return Array.from({ length: completionsPerPrompt }, () => prompt);
  }).flat();
  const sessions = {
    'spin-wait (onnxruntime default)': await OnnxCausalLm.fromGpt(config, [], weights, {
      kvCache: true,
      weightSync: 'inputs',
    }),
    'no spin-wait (engine sampler)': await OnnxCausalLm.fromGpt(config, [], weights, {
      kvCache: true,
      weightSync: 'inputs',
      spinWait: false,
    }),
  };
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (const session of Object.values(sessions)) await generateOnnx(session, prompts, sampling); // warm-up
  for (let round = 0; round < rounds; round++)
    for (const [name, session] of Object.entries(sessions)) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await generateOnnx(session, prompts, { ...sampling, seed: round });
      (wall[name] ??= []).push(performance.now() - t0);
      const used = process.cpuUsage(cpu0);
      (cpu[name] ??= []).push((used.user + used.system) / 1000);
    }
  await Promise.all(Object.values(sessions).map((session) => session.release()));
  console.log(
    `\n2. generateOnnx, ${prompts.length} rows × ${newTokens} new tokens, ms (median, min–max of ${rounds} rounds)`,
  );
  for (const name of Object.keys(wall))
    console.log(`  ${name.padEnd(32)} wall ${summary(wall[name], 1)}   cpu ${summary(cpu[name], 1)}`);
}

async function main(): Promise<void> {
  drawBench();
  await generateBench();
}

void main();
