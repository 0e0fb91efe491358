/**
 * PPO's rollout phases 1–2 (see src/trainer/ppo/rollout.ts) on onnxruntime-node: the policy samples
 * with a KV cache, then the policy (log-probabilities, values, entropies), the frozen reference and
 * the reward model score the sequences — the generation engine of a split training/generation setup.
 * tfjs keeps the gradients; after each PPO update `syncPolicy` brings the new weights over.
 * Our GPT or a Llama-family model (OnnxCausalLm.fromCausalLm). A LoRA policy samples with its merged weights
 * W₀ + (α/r)·B·A (recomputed at each sync); a LoRA model as the reference is its base, adapters off (the seam's
 * `adaptersOff`): its session is built from the base weights, read once and dropped after building, so JavaScript
 * holds no second copy beyond the sessions.
 */
import type { EngineModel, NamedArrays } from '../engine/engine';
import { mergeLoraWeights } from '../lora/mergeLora';
import type { Rollout, RolloutEngine } from '../rollout/rolloutEngine';
import { buildSequenceBatch, responseValues } from '../data/sequences';
import type { SamplingOptions } from '../sampling/sampler';
import { chooseOrtProvider } from '../engine/onnxruntime/ortProvider';
import { OnnxCausalLm, type SessionSettings, type WeightSyncMode } from './onnxCausalLm';
import { generateOnnx } from './onnxSampler';
import { rewardScoresOnnx, sequenceStatsOnnx } from './onnxScoring';
import { namedAll } from '../../shared/namedAll';

/** What the sessions are built from: a model's shape and current weights (a seam model, or a tfjs Gpt). */
type WeightSource = Pick<EngineModel, 'config' | 'heads' | 'readWeights' | 'lora'>;

/** The weights a session computes with: a LoRA model's merged ones, or its base ones with adapters off. */
async function sessionWeights(model: WeightSource, adapters: 'merged' | 'off'): Promise<NamedArrays> {
  const weights = await model.readWeights();
  if (!model.lora) return weights;
  if (adapters === 'off') return weights; // the graphs read the base weights' names only: adapters are ignored
  return mergeLoraWeights(weights, model.config, model.lora);
}

export class OnnxRolloutEngine implements RolloutEngine {
  private constructor(
    /** The training engine's policy, whose weights `syncPolicy` brings over. */
    private readonly trainedPolicy: WeightSource,
    private readonly policy: OnnxCausalLm,
    private readonly reference: OnnxCausalLm,
    private readonly reward: OnnxCausalLm,
  ) {}

  /**
   * Sessions over the current weights of the three models. The policy, which changes every update,
   * takes its weights as graph inputs by default (measured in bench/rolloutBench.ts: a sync costs
   * ~1 ms instead of a 35–45 ms rebuild, and sync + sampling was as fast or faster); the frozen
   * reference and reward model keep theirs as initializers.
   */
  static async create(
    models: { policy: WeightSource; reference: WeightSource; reward: WeightSource },
    options: { weightSync?: WeightSyncMode } & SessionSettings = {},
  ): Promise<OnnxRolloutEngine> {
    // The training engine's provider (probed once per process): rollouts run where training does.
    const executionProviders = options.executionProviders ?? (await chooseOrtProvider()).executionProviders;
    const session = async (model: WeightSource, kvCache: boolean, sync: WeightSyncMode, adapters: 'merged' | 'off') =>
      OnnxCausalLm.fromCausalLm(model.config, model.heads, await sessionWeights(model, adapters), {
        kvCache,
        weightSync: sync,
        threads: options.threads,
        executionProviders,
      });
    const { policy, reference, reward } = await namedAll({
      policy: session(models.policy, true, options.weightSync ?? 'inputs', 'merged'),
      reference: session(models.reference, false, 'reexport', 'off'),
      reward: session(models.reward, false, 'reexport', 'merged'),
    });
    return new OnnxRolloutEngine(models.policy, policy, reference, reward);
  }

  /** Brings the policy's current weights from the training engine (after an update). */
  async syncPolicy(): Promise<void> {
    await this.policy.updateWeights(await sessionWeights(this.trainedPolicy, 'merged'));
  }

  /** Phases 1–2: generate, then log-probabilities, values, entropies, reference log-probabilities and scores. */
  async collect(prompts: readonly number[][], sampling: SamplingOptions, eosId: number | undefined): Promise<Rollout> {
    let t0 = performance.now();
    const sequences = await generateOnnx(this.policy, prompts, sampling);
    const generate = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const items = sequences.map((sequence, i) => ({
      prompt: prompts[i],
      response: sequence.tokens.length > 0 ? sequence.tokens : [sampling.padTokenId],
    }));
    const batch = buildSequenceBatch(items, sampling.padTokenId);
    const temperature = sampling.temperature > 0 ? sampling.temperature : 1;
    const { policy, reference, rawScores } = await namedAll({
      policy: sequenceStatsOnnx(this.policy, batch, temperature),
      reference: sequenceStatsOnnx(this.reference, batch, temperature, false),
      rawScores: rewardScoresOnnx(this.reward, items, sampling.padTokenId),
    });
    const score = (performance.now() - t0) / 1000;
    return {
      items,
      batch,
      logprobs: responseValues(policy.logprobs, batch),
      values: responseValues(policy.scalars.values, batch),
      entropy: responseValues(policy.entropy, batch),
      refLogprobs: responseValues(reference.logprobs, batch),
      rawScores,
      endedWithEos: sequences.map((sequence) => eosId !== undefined && sequence.tokens.at(-1) === eosId),
      timings: { generate, score },
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.policy.release(), this.reference.release(), this.reward.release()]);
  }
}
