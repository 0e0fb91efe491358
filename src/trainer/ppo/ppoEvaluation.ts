/**
 * PPO's held-out evaluation: fresh generations from the policy for the held-out prompts, scored by the
 * reward model, their KL to the reference, and the task's oracle score where the prompts are the task's.
 * Sampled from one stream for the whole stage (seeds.evalGeneration), so every eval draws alike.
 */
import { mean, sum } from '../../core/stats';
import type { PpoStageConfig } from '../../shared/runConfig';
import { collectRollout } from '../rollout/engineRollout';
import type { RolloutModels } from '../rollout/rolloutEngine';
import type { Task } from '../tasks/task';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';

/** The eval/* metrics of the policy now. */
export async function evaluatePolicy(
  models: RolloutModels,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  stage: PpoStageConfig,
  seed: number,
  oracle: Task | null,
): Promise<Record<string, number>> {
  const rollout = await collectRollout(
    models,
    prompts.map((prompt) => encodePrompt(tokenizer, prompt)),
    {
      temperature: stage.temperature,
      topK: stage.top_k,
      topP: stage.top_p,
      maxNewTokens: stage.max_new_tokens,
      seed,
      eosTokenId: tokenizer.eosId,
      padTokenId: tokenizer.padId,
    },
    tokenizer.eosId,
  );
  // KL(π ‖ π_ref) of each response: Σ_t log π(y_t) − log π_ref(y_t), the sampled-token estimate
  const kl = rollout.logprobs.map((row, b) => sum(row.map((logprob, t) => logprob - rollout.refLogprobs[b][t])));
  const metrics: Record<string, number> = {
    'eval/objective/scores': mean(rollout.rawScores),
    'eval/objective/kl': mean(kl),
    'eval/response_length': mean(rollout.logprobs.map((row) => row.length)),
  };
  if (oracle)
    metrics['eval/oracle/score'] = mean(
      rollout.items.map((item, i) =>
        oracle.score(prompts[i] + tokenizer.decode(item.response, { skipSpecialTokens: true })),
      ),
    );
  return metrics;
}
