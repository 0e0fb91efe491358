/**
 * DPO's held-out evaluation beyond its pair metrics: fresh generations on held-out prompts, scored by
 * the demo task's oracle, with their KL to the reference — the two axes of the reward–KL frontier —
 * and whether the demo task (its oracle and held-out prompts) applies to a stage at all.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { klPerToken, mean, sum } from '../../core';
import type { Judgment } from '../../shared/preferences';
import type { DpoStageConfig, RunConfig } from '../../shared/runConfig';
import { heldOutPrompts } from '../data/reviews';
import { buildSequenceBatch, padTo, responseValues, tokenBatchOf } from '../data/sequences';
import type { EngineModel } from '../engine/engine';
import type { RunJsonFields } from '../run/runDirectory';
import type { Task } from '../tasks/task';
import type { StageContext } from '../stageContext';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';

// Held-out generations: the oracle's score and the KL to the reference

export interface GenerationEval {
  /** Mean oracle score of prompt + response (only when the task has an oracle). */
  readonly score?: number;
  /** Mean over samples of Σ_t log π(y_t) − log π_ref(y_t) over the response tokens (k1). */
  readonly kl: number;
  readonly responseLength: number;
}

/**
 * Samples one response per prompt from `policy` (temperature 1, no top-k/top-p, `seed`), then runs
 * policy and reference over prompt + response to read each token's log-probability under both.
 * Means are core's (NaN of an empty list, as before): `kept` has at least one prompt, so none is empty.
 */
export async function evaluateGenerations(
  policy: EngineModel,
  reference: EngineModel,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: { maxNewTokens: number; seed: number; oracle: Task | null },
): Promise<GenerationEval> {
  const blockSize = policy.config.block_size;
  const kept = prompts
    .map((prompt) => ({ prompt, ids: encodePrompt(tokenizer, prompt) }))
    .filter((item) => item.ids.length < blockSize);
  if (kept.length === 0)
    throw new Error(
      `Every eval prompt fills the context of ${blockSize} tokens; use shorter prompts or a larger block_size.`,
    );
  const sequences = await policy.generate(
    kept.map((item) => item.ids),
    {
      temperature: 1,
      topK: 0,
      topP: 1,
      maxNewTokens: options.maxNewTokens,
      seed: options.seed,
      eosTokenId: tokenizer.eosId,
      padTokenId: tokenizer.padId,
    },
  );
  const items = sequences.map((sequence, i) => ({ prompt: kept[i].ids, response: sequence.tokens }));
  const batch = padTo(buildSequenceBatch(items, tokenizer.padId), blockSize, tokenizer.padId);
  const tokens = tokenBatchOf(batch);
  const policyEval = await policy.evaluate(tokens, { logprobs: true }); // [N, T]
  const referenceEval = await reference.evaluate(tokens, { logprobs: true });
  const logprobs = responseValues(policyEval.logprobs as Float32Array, batch);
  const refLogprobs = responseValues(referenceEval.logprobs as Float32Array, batch);
  const kl = klPerToken(logprobs, refLogprobs, 'k1').map((row) => sum(row));
  const { oracle } = options;
  return {
    score: oracle
      ? mean(
          items.map((item, i) =>
            oracle.score(kept[i].prompt + tokenizer.decode(item.response, { skipSpecialTokens: true })),
          ),
        )
      : undefined,
    kl: mean(kl),
    responseLength: mean(items.map((item) => item.response.length)),
  };
}

/**
 * Whether the demo task's oracle and held-out prompts apply: the policy or the preferences trace back,
 * through the stages of this config, to demo data — or the policy checkpoint was written by a run
 * (its `checkpoints/step-<n>/` inside a run directory) whose stages do.
 */
export function isDemoTask(stage: DpoStageConfig, context: StageContext, policyDir: string): boolean {
  const tracesToDemo = (config: unknown, start: readonly string[]): boolean => {
    const stages = (config as Partial<RunConfig> | undefined)?.stages ?? [];
    const queue = [...start];
    const seen = new Set<string>();
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      if (seen.has(name)) continue;
      seen.add(name);
      const found = stages.find((candidate) => (candidate.name ?? candidate.type) === name);
      switch (found?.type) {
        case undefined:
          break;
        case 'sft':
          if (found.dataset.source === 'demo') return true;
          break;
        case 'preferences':
        case 'ppo':
          if (found.prompts.source === 'demo') return true;
          queue.push(found.policy);
          break;
        case 'reward':
          queue.push(found.init_from, found.preferences);
          break;
        case 'dpo':
          queue.push(found.policy, found.preferences);
          break;
      }
    }
    return false;
  };
  if (tracesToDemo(context.run.runJson.config, [stage.policy, stage.preferences])) return true;
  try {
    const writer = JSON.parse(readFileSync(path.join(policyDir, '..', '..', 'run.json'), 'utf8')) as RunJsonFields;
    return tracesToDemo(writer.config, [writer.stage]);
  } catch {
    return false; // not a checkpoint of an RLHF Lens run
  }
}

/**
 * The prompts of the eval generations: the demo's held-out prompts when the demo task applies, else the
 * distinct prompts of the held-out judgments (of the training ones when none is held out).
 */
export function evalPrompts(
  demo: boolean,
  judgments: { readonly train: readonly Judgment[]; readonly evaluation: readonly Judgment[] },
  count: number,
): string[] {
  if (demo) return heldOutPrompts(count);
  const source = judgments.evaluation.length > 0 ? judgments.evaluation : judgments.train;
  return [...new Set(source.map((judgment) => judgment.prompt))].slice(0, count);
}
