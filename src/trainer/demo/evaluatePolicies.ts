/**
 * The demo's held-out evaluation, the same for every policy: sample responses to held-out prompts,
 * score prompt + response with the sentiment oracle, and estimate KL(π ‖ π_ref) to the SFT policy as
 * the mean over samples of Σₜ (log π − log π_ref) of the sampled response tokens — a sequence-level
 * estimate whose expectation under π is the KL (the DPO paper's frontier plots exactly this pair).
 */
import { heldOutPrompts } from '../data/reviews';
import { sentimentScore } from '../data/sentimentOracle';
import { tf } from '../engine/tfjs/tfRuntime';
import type { Gpt } from '../engine/tfjs/gpt';
import { buildSequenceBatch, responseValues } from '../data/sequences';
import { generate } from '../sampling/sampler';
import { loadModel } from '../checkpoint/loadGpt';
import { sequenceLogprobs, sequenceTensors } from '../engine/tfjs/sequenceTensors';

export interface PolicyEvaluation {
  readonly oracleScore: number;
  /** Standard error of the oracle mean. */
  readonly oracleStderr: number;
  readonly kl: number;
  readonly klStderr: number;
  readonly responseLength: number;
}

export interface EvaluationSettings {
  readonly prompts: number;
  readonly maxNewTokens: number;
  readonly seed: number;
}

const meanAndStderr = (values: readonly number[]) => {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean, stderr: Math.sqrt(variance / values.length) };
};

async function logprobsOf(model: Gpt, batch: ReturnType<typeof buildSequenceBatch>): Promise<number[][]> {
  const logprobs = tf.tidy(() => {
    const { inputs, targets } = sequenceTensors(batch);
    return sequenceLogprobs(model, inputs, targets).logprobs;
  });
  const data = (await logprobs.data()) as Float32Array;
  logprobs.dispose();
  return responseValues(data, batch);
}

export async function evaluatePolicy(
  policyDir: string,
  referenceDir: string,
  settings: EvaluationSettings,
): Promise<PolicyEvaluation> {
  const { model: policy, checkpoint } = await loadModel(policyDir, [], settings.seed);
  const { model: reference } = await loadModel(referenceDir, [], settings.seed);
  const tokenizer = checkpoint.tokenizer;
  try {
    const prompts = heldOutPrompts(settings.prompts);
    const oracle: number[] = [];
    const kl: number[] = [];
    const lengths: number[] = [];
    // Chunks keep the generation batch (and memory) small on 2 cores.
    for (let start = 0; start < prompts.length; start += 64) {
      const chunk = prompts.slice(start, start + 64);
      const encoded = chunk.map((prompt) => [tokenizer.bosId, ...tokenizer.encode(prompt)]);
      const sequences = await generate(policy, encoded, {
        temperature: 1,
        topK: 0,
        topP: 1,
        maxNewTokens: settings.maxNewTokens,
        seed: settings.seed + start,
        eosTokenId: tokenizer.eosId,
        padTokenId: tokenizer.padId,
      });
      const batch = buildSequenceBatch(
        sequences.map((sequence, i) => ({ prompt: encoded[i], response: sequence.tokens })),
        tokenizer.padId,
      );
      const [policyLogprobs, referenceLogprobs] = [await logprobsOf(policy, batch), await logprobsOf(reference, batch)];
      sequences.forEach((sequence, i) => {
        oracle.push(sentimentScore(chunk[i] + tokenizer.decode(sequence.tokens, { skipSpecialTokens: true })));
        kl.push(policyLogprobs[i].reduce((sum, logprob, t) => sum + logprob - referenceLogprobs[i][t], 0));
        lengths.push(sequence.tokens.length);
      });
    }
    const o = meanAndStderr(oracle);
    const k = meanAndStderr(kl);
    return {
      oracleScore: o.mean,
      oracleStderr: o.stderr,
      kl: k.mean,
      klStderr: k.stderr,
      responseLength: lengths.reduce((a, b) => a + b, 0) / lengths.length,
    };
  } finally {
    policy.dispose();
    reference.dispose();
  }
}
