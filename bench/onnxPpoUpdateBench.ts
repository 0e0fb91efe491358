/**
 * The PPO update of bench:rollout's iteration (vocab 300, context 96, 16 rows of 18 prompt + 64 new tokens,
 * 4 epochs × 2 minibatches = 8 optimizer steps) on the ONNX Runtime engine through the seam
 * (step({kind: 'ppo'}), policy + v_head, one intra-op thread), interleaved round by round with PyTorch's
 * PPO iteration (reference.py, one thread), of which the update phase is compared: ratio per round and
 * median (min–max). The update alone, on one fixed minibatch shape: old log-probs, values, advantages and
 * returns are fixed synthetic arrays (the whole iteration, rollouts included, is bench:rollout's section 3).
 * Run: node --import tsx bench/onnxPpoUpdateBench.ts
 */
import type { PpoLoss } from '../src/trainer/engine/engine';
import { OnnxEngine } from '../src/trainer/engine/onnxruntime/onnxEngine';
import type { GptConfig } from '../src/trainer/model/gptConfig';
import { formatSpread, spread, TorchReference } from './torch/torchReference';

const config: GptConfig = { vocab_size: 300, block_size: 96, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0 };
const rows = 16;
const promptLength = 18;
const newTokens = 64;
const epochs = 4;
const miniBatches = 2;
const rounds = 7;
const adam = { adamBeta1: 0.9, adamBeta2: 0.99, adamEpsilon: 1e-8, weightDecay: 0 };
const stage = {
  learning_rate: 3e-4,
  temperature: 1,
  kl_coef: 0.05,
  gamma: 1,
  lam: 0.95,
  cliprange: 0.2,
  cliprange_value: 0.2,
  vf_coef: 0.1,
  entropy_coef: 0,
  max_grad_norm: 1,
};

/** One minibatch's PPO loss: inputs are the sequence but its last token, the mask covers the response. */
function minibatch(size: number, offset: number): PpoLoss {
  const length = promptLength + newTokens - 1;
  const cells = size * length;
  const token = (i: number) => (i * 31 + offset * 7) % config.vocab_size;
  const wave = (scale: number) => Float32Array.from({ length: cells }, (_, i) => scale * Math.sin(i + offset));
  return {
    kind: 'ppo',
    batch: {
      batchSize: size,
      length,
      inputs: Int32Array.from({ length: cells }, (_, i) => token(i)),
      targets: Int32Array.from({ length: cells }, (_, i) => token(i + 1)),
      mask: Float32Array.from({ length: cells }, (_, i) => Number(i % length >= promptLength - 1)),
    },
    temperature: stage.temperature,
    oldLogprobs: Float32Array.from({ length: cells }, () => -Math.log(config.vocab_size)),
    oldValues: wave(0.1),
    advantages: wave(1),
    returns: wave(0.5),
    cliprange: stage.cliprange,
    cliprangeValue: stage.cliprange_value,
    vfCoef: stage.vf_coef,
    entropyCoef: stage.entropy_coef,
    policyActive: true,
  };
}

async function main(): Promise<void> {
  const torch = await TorchReference.start();
  const model = new OnnxEngine(undefined, { intraOpNumThreads: 1, interOpNumThreads: 1 }).createModel(config, {
    heads: ['v_head'],
    seed: 0,
  });
  const optimizer = model.createOptimizer(adam);
  const size = rows / miniBatches;
  const batches = Array.from({ length: miniBatches }, (_, i) => minibatch(size, i));
  const update = async () => {
    const t0 = performance.now();
    for (let epoch = 0; epoch < epochs; epoch++)
      for (const spec of batches)
        await optimizer.step(spec, { learningRate: stage.learning_rate, maxGradNorm: stage.max_grad_norm });
    return performance.now() - t0;
  };
  const key = 'ppo';
  await torch?.request('ppo_setup', {
    key,
    config,
    batch: rows,
    prompt_length: promptLength,
    new_tokens: newTokens,
    epochs,
    mini_batches: miniBatches,
    stage,
    seed: 1,
  });
  const torchUpdate = async () => Number((await torch!.request('ppo_iteration', { key })).update);
  await update();
  if (torch) await torchUpdate();
  const ours: number[] = [];
  const pytorch: number[] = [];
  for (let round = 0; round < rounds; round++) {
    ours.push(await update());
    if (!torch) continue;
    pytorch.push(await torchUpdate());
    const cells = `ONNX ${ours[round].toFixed(0)} ms, PyTorch ${pytorch[round].toFixed(0)} ms`;
    console.log(`round ${round + 1}/${rounds}: PPO update ${cells}, ${(ours[round] / pytorch[round]).toFixed(2)}×`);
  }
  console.log(`PPO update (8 steps), ONNX Runtime 1 thread: ${formatSpread(spread(ours))} ms`);
  if (torch) {
    console.log(`PyTorch 1 thread: ${formatSpread(spread(pytorch))} ms`);
    const ratio = ours.map((ms, i) => ms / pytorch[i]);
    console.log(`ONNX / PyTorch: ${formatSpread(spread(ratio), 2, '×')}`);
    await torch.request('release', { key });
    await torch.close();
  }
  model.dispose();
}

void main();
