/**
 * Each LossSpec of the seam as an ONNX Runtime run: the key of its loss+gradient graph (kind, batch
 * shapes and the hyperparameters the graph holds as constants), how to build that graph, and the
 * feeds besides the weights. The graphs themselves are gptGraph.ts, ppoGraph.ts and
 * preferenceGraphs.ts; their outputs are `loss`, the kind's reported values (named as the tfjs
 * engine's lossGraphs.ts reports them) and `grad.<weight>`.
 * With `padToBuckets`, a batch's time axis is padded to its length bucket (lengthBuckets.ts) so that few
 * graphs are built; the run's `timeAxis` says which outputs to trim back.
 */
import * as ort from 'onnxruntime-node';
import type { BradleyTerryLoss, DpoLoss, LossSpec, PpoLoss, ScoreBatch, TokenBatch } from '../engine';
import type { CausalLmConfig } from '../../model/causalLmConfig';
import { forwardOf, type ModelForward, type ModelSource } from './modelForward';
import { bucketLength, padGrid, padScoreBatch, padTokenBatch, type TimeAxis } from './lengthBuckets';
import { buildLmLossGraph, dropoutMaskInput, lmGraphInputs } from './gptGraph';
import { buildPpoLossGraph, ppoGraphInputs } from './ppoGraph';
import { bradleyTerryGraphInputs, buildBradleyTerryGraph, buildDpoGraph, dpoGraphInputs } from './preferenceGraphs';

export interface LossRun {
  /** Identifies the graph: equal keys, equal graphs. */
  readonly key: string;
  build(): { model: Uint8Array; weightNames: readonly string[] };
  /** The inputs besides the weights. */
  feeds(): Record<string, ort.Tensor>;
  /** Present when the batch was padded: outputs on the padded [B, T] grid are trimmed back. */
  readonly timeAxis?: TimeAxis;
}

export interface LossRunOptions {
  /** Pad time axes to length buckets (the engine's default); off gives one graph per exact length. */
  readonly padToBuckets: boolean;
}

/** The length a batch of `length` positions runs at. */
const runLength = (config: CausalLmConfig, length: number, options: LossRunOptions) =>
  options.padToBuckets ? bucketLength(length, config.block_size) : length;

const timeAxisOf = (batchSize: number, length: number, padded: number): TimeAxis | undefined =>
  padded === length ? undefined : { batchSize, length, padded };

export const int64Tensor = (values: ArrayLike<number>, dims: readonly number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
    dims,
  );
export const floatTensor = (values: ArrayLike<number>, dims: readonly number[]) =>
  new ort.Tensor('float32', Float32Array.from(values), dims);

const FLOAT_TYPE = 'float32';
const shapeOf = (batch: TokenBatch) => ({ batchSize: batch.batchSize, length: batch.length });

/** `input_ids`, `targets` and `mask` of a token batch under the given names. */
function tokenFeeds(batch: TokenBatch, names: { ids: string; targets: string; mask: string }) {
  const dims = [batch.batchSize, batch.length];
  return {
    [names.ids]: int64Tensor(batch.inputs, dims),
    [names.targets]: int64Tensor(batch.targets, dims),
    [names.mask]: floatTensor(batch.mask, dims),
  };
}

/**
 * The score head's pooling as two inputs (preferenceGraphs.ts): 'last' picks position n − 1 and
 * subtracts no bias; 'sum' picks the first n positions and subtracts the bias n − 1 times (once per row).
 */
export function scorePoolingFeeds(config: CausalLmConfig, batch: ScoreBatch): { pick: number[]; biasCount: number[] } {
  const last = (config.score_pooling ?? 'last') === 'last';
  const pick = batch.lengths.flatMap((n) =>
    Array.from({ length: batch.length }, (_, t) => (last ? Number(t === n - 1) : Number(t < n))),
  );
  return { pick, biasCount: batch.lengths.map((n) => (last ? 0 : n - 1)) };
}

/**
 * SFT's loss; with a dropout seed (and dropout sites: a GPT's dropout > 0, LoRA's dropout > 0) the masks of
 * model/dropoutMasks.ts's scheme are fed in, as to tfjs. They are drawn for the batch's own shape (the tfjs engine
 * does not pad), so a batch with dropout is not padded: padding would need the masks drawn unpadded and then padded
 * site by site.
 */
function lmRun(model: ModelForward, unpadded: TokenBatch, dropoutSeed: number | undefined, options: LossRunOptions) {
  const { config } = model;
  const dropout = dropoutSeed !== undefined && model.hasDropout;
  const padded = dropout ? unpadded.length : runLength(config, unpadded.length, options);
  const batch = padTokenBatch(unpadded, padded);
  return {
    timeAxis: timeAxisOf(batch.batchSize, unpadded.length, padded),
    key: JSON.stringify(['lm', shapeOf(batch), dropout]),
    build: () => buildLmLossGraph(model, shapeOf(batch), FLOAT_TYPE, dropout ? dropoutMaskInput : undefined),
    feeds: () => {
      const feeds: Record<string, ort.Tensor> = tokenFeeds(batch, lmGraphInputs);
      if (dropout)
        model.dropoutMasks(shapeOf(batch), dropoutSeed).forEach((mask, site) => {
          feeds[dropoutMaskInput(site)] = new ort.Tensor('float32', mask.data, mask.shape);
        });
      return feeds;
    },
  };
}

function bradleyTerryRun(model: ModelForward, spec: BradleyTerryLoss, options: LossRunOptions): LossRun {
  const { config } = model;
  const scores = padScoreBatch(spec.scores, runLength(config, spec.scores.length, options));
  const shape = { batchSize: scores.batchSize, length: scores.length };
  const pairs = spec.chosenRows.length;
  const oneHot = (rows: readonly number[]) =>
    floatTensor(
      rows.flatMap((row) => Array.from({ length: scores.batchSize }, (_, n) => Number(n === row))),
      [pairs, scores.batchSize],
    );
  return {
    key: JSON.stringify(['bradleyTerry', shape, pairs]),
    build: () => buildBradleyTerryGraph(model, shape, pairs, FLOAT_TYPE),
    feeds: () => {
      const { pick, biasCount } = scorePoolingFeeds(config, scores);
      return {
        [bradleyTerryGraphInputs.ids]: int64Tensor(scores.ids, [scores.batchSize, scores.length]),
        [bradleyTerryGraphInputs.pick]: floatTensor(pick, [scores.batchSize, scores.length]),
        [bradleyTerryGraphInputs.biasCount]: floatTensor(biasCount, [scores.batchSize]),
        [bradleyTerryGraphInputs.chosen]: oneHot(spec.chosenRows),
        [bradleyTerryGraphInputs.rejected]: oneHot(spec.rejectedRows),
      };
    },
  };
}

function ppoRun(model: ModelForward, spec: PpoLoss, options: LossRunOptions): LossRun {
  const { config } = model;
  const { batchSize, length } = spec.batch;
  const padded = runLength(config, length, options);
  const batch = padTokenBatch(spec.batch, padded);
  const dims = [batchSize, padded];
  const grid = (values: Float32Array) => floatTensor(padGrid(values, batchSize, length, padded), dims);
  const ptxBatch = spec.ptx && padTokenBatch(spec.ptx.batch, runLength(config, spec.ptx.batch.length, options));
  const settings = {
    temperature: spec.temperature,
    cliprange: spec.cliprange,
    cliprangeValue: spec.cliprangeValue,
    vfCoef: spec.vfCoef,
    entropyCoef: spec.entropyCoef,
    policyActive: spec.policyActive,
    ptx: ptxBatch && spec.ptx && { shape: shapeOf(ptxBatch), coef: spec.ptx.coef },
  };
  return {
    timeAxis: timeAxisOf(batchSize, length, padded),
    key: JSON.stringify(['ppo', shapeOf(batch), settings]),
    build: () => buildPpoLossGraph(model, shapeOf(batch), settings, FLOAT_TYPE),
    feeds: () => ({
      ...tokenFeeds(batch, ppoGraphInputs),
      [ppoGraphInputs.oldLogprobs]: grid(spec.oldLogprobs),
      [ppoGraphInputs.oldValues]: grid(spec.oldValues),
      [ppoGraphInputs.advantages]: grid(spec.advantages),
      [ppoGraphInputs.returns]: grid(spec.returns),
      ...(ptxBatch
        ? tokenFeeds(ptxBatch, {
            ids: ppoGraphInputs.ptxIds,
            targets: ppoGraphInputs.ptxTargets,
            mask: ppoGraphInputs.ptxMask,
          })
        : {}),
    }),
  };
}

function dpoRun(model: ModelForward, spec: DpoLoss, options: LossRunOptions): LossRun {
  const { config } = model;
  const batch = padTokenBatch(spec.batch, runLength(config, spec.batch.length, options));
  const settings = { beta: spec.beta, lossType: spec.lossType, labelSmoothing: spec.labelSmoothing };
  const pairs = [spec.refChosen.length];
  return {
    key: JSON.stringify(['dpo', shapeOf(batch), settings]),
    build: () => buildDpoGraph(model, shapeOf(batch), settings, FLOAT_TYPE),
    feeds: () => ({
      ...tokenFeeds(batch, dpoGraphInputs),
      [dpoGraphInputs.refChosen]: floatTensor(spec.refChosen, pairs),
      [dpoGraphInputs.refRejected]: floatTensor(spec.refRejected, pairs),
      [dpoGraphInputs.chosenLengths]: floatTensor(spec.chosenLengths, pairs),
      [dpoGraphInputs.rejectedLengths]: floatTensor(spec.rejectedLengths, pairs),
    }),
  };
}

/** The run of a loss on a model (a config's plain forward, or a LoRA forward). */
export function lossRun(
  source: ModelSource,
  spec: LossSpec,
  options: LossRunOptions = { padToBuckets: true },
): LossRun {
  const model = forwardOf(source);
  switch (spec.kind) {
    case 'lm':
      return lmRun(model, spec.batch, spec.dropoutSeed, options);
    case 'bradleyTerry':
      return bradleyTerryRun(model, spec, options);
    case 'ppo':
      return ppoRun(model, spec, options);
    case 'dpo':
      return dpoRun(model, spec, options);
    default:
      throw new Error(`unknown loss ${JSON.stringify(spec satisfies never)}`);
  }
}
