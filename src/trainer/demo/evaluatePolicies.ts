/**
 * The demo's held-out evaluation, the same for every policy: sample responses to held-out prompts,
 * score prompt + response with the sentiment oracle, and estimate KL(π ‖ π_ref) to the SFT policy as
 * the mean over samples of Σₜ (log π − log π_ref) of the sampled response tokens — a sequence-level
 * estimate whose expectation under π is the KL (the DPO paper's frontier plots exactly this pair).
 */
import { mean } from '../../core';
import { loadEngineModel } from '../checkpoint/modelLoading';
import { heldOutPrompts } from '../data/reviews';
import { buildSequenceBatch, responseValues, tokenBatchOf, type SequenceBatch } from '../data/sequences';
import type { EngineModel, TrainingEngine } from '../engine/engine';
import { seeds } from '../seeds';
import type { Task } from '../tasks/task';
import { encodePrompt } from '../data/chatTokens';

/** Prompts sampled per generation batch: chunks keep the batch (and memory) small on 2 cores. */
const promptsPerChunk = 64;

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

/** Where policies are evaluated: the engine they are loaded into and the task whose oracle scores them. */
export interface Evaluator {
  readonly engine: TrainingEngine;
  readonly task: Task;
}

/** Mean and its standard error (sample variance, n − 1): core's mean, NaN of an empty list as before. */
const meanAndStderr = (values: readonly number[]) => {
  const average = mean(values);
  const variance = values.reduce((a, b) => a + (b - average) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean: average, stderr: Math.sqrt(variance / values.length) };
};

/** log p of each response token of `batch` under `model`, one list per row. */
async function responseLogprobs(model: EngineModel, batch: SequenceBatch): Promise<number[][]> {
  const { logprobs } = await model.evaluate(tokenBatchOf(batch), { logprobs: true });
  return responseValues(logprobs as Float32Array, batch);
}

export async function evaluatePolicy(
  evaluator: Evaluator,
  policyDir: string,
  referenceDir: string,
  settings: EvaluationSettings,
): Promise<PolicyEvaluation> {
  const { engine, task } = evaluator;
  const { model: policy, checkpoint } = await loadEngineModel(engine, policyDir, [], settings.seed);
  const { model: reference } = await loadEngineModel(engine, referenceDir, [], settings.seed);
  const tokenizer = checkpoint.tokenizer;
  try {
    const prompts = heldOutPrompts(settings.prompts);
    const oracle: number[] = [];
    const kl: number[] = [];
    const lengths: number[] = [];
    for (let start = 0; start < prompts.length; start += promptsPerChunk) {
      const chunk = prompts.slice(start, start + promptsPerChunk);
      const encoded = chunk.map((prompt) => encodePrompt(tokenizer, prompt));
      const sequences = await policy.generate(encoded, {
        temperature: 1,
        topK: 0,
        topP: 1,
        maxNewTokens: settings.maxNewTokens,
        seed: seeds.demoEvaluationChunk(settings.seed, start),
        eosTokenId: tokenizer.eosId,
        padTokenId: tokenizer.padId,
      });
      const batch = buildSequenceBatch(
        sequences.map((sequence, i) => ({ prompt: encoded[i], response: sequence.tokens })),
        tokenizer.padId,
      );
      const policyLogprobs = await responseLogprobs(policy, batch);
      const referenceLogprobs = await responseLogprobs(reference, batch);
      sequences.forEach((sequence, i) => {
        oracle.push(task.score(chunk[i] + tokenizer.decode(sequence.tokens, { skipSpecialTokens: true })));
        kl.push(policyLogprobs[i].reduce((sum, logprob, t) => sum + logprob - referenceLogprobs[i][t], 0));
        lengths.push(sequence.tokens.length);
      });
    }
    const oracleStats = meanAndStderr(oracle);
    const klStats = meanAndStderr(kl);
    return {
      oracleScore: oracleStats.mean,
      oracleStderr: oracleStats.stderr,
      kl: klStats.mean,
      klStderr: klStats.stderr,
      responseLength: mean(lengths),
    };
  } finally {
    policy.dispose();
    reference.dispose();
  }
}
