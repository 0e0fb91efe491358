/**
 * Serves `sample/request`s in a long-lived trainer process (the Rank view's sampler) from a checkpoint,
 * or from a transformers.js-style ONNX folder (a user's own model, sampled on onnxruntime-node): the backend is
 * chosen once and the last checkpoint's model stays loaded, so after the first request a set of K
 * completions costs only the sampling itself. Requests run one at a time, in arrival order.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { SampleRequestMessage, SampleResultMessage } from '../../shared/protocol';
import { readModelSource } from '../checkpoint/modelLoading';
import type { EngineModel } from '../engine/engine';
import { selectBackend, type BackendChoice } from '../engine/tfjs/backend';
import { createTrainingEngine } from '../engineFactory';
import type { OnnxCompletionSource } from '../onnx/onnxCompletions';
import type { Tokenizer } from '../tokenizer';
import { encodePrompt } from '../data/chatTokens';

interface LoadedCheckpoint {
  readonly dir: string;
  /** Any causal LM (our GPT, GPT-2, the Llama family) on the tfjs engine, sampled with its KV cache. */
  readonly model: EngineModel;
  readonly tokenizer: Tokenizer;
}

export class SampleServer {
  private backend: BackendChoice | undefined;
  private loaded: LoadedCheckpoint | undefined;
  /** A transformers.js-style ONNX folder in use instead of a checkpoint (a user's own model). */
  private onnx: OnnxCompletionSource | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  sample(request: SampleRequestMessage): Promise<SampleResultMessage> {
    const next = this.queue.catch(() => undefined).then(() => this.serve(request));
    this.queue = next;
    return next;
  }

  dispose(): void {
    this.loaded?.model.dispose();
    this.loaded = undefined;
    void this.onnx?.release();
    this.onnx = undefined;
  }

  private async serve(request: SampleRequestMessage): Promise<SampleResultMessage> {
    if (!Number.isInteger(request.numSamples) || request.numSamples < 1 || request.numSamples > 8)
      throw new Error(`numSamples must be 1 to 8, got ${request.numSamples}`);
    if (!Number.isInteger(request.maxNewTokens) || request.maxNewTokens < 1)
      throw new Error(`maxNewTokens must be a positive integer, got ${request.maxNewTokens}`);
    if (existsSync(path.join(request.checkpoint, 'onnx', 'model.onnx'))) return this.serveOnnx(request);
    const loadStart = performance.now();
    const { model, tokenizer } = await this.load(request.checkpoint);
    const loadMs = performance.now() - loadStart;

    const start = performance.now();
    const promptIds = encodePrompt(tokenizer, request.prompt);
    const room = model.config.block_size - promptIds.length;
    if (room < 1)
      throw new Error(
        `The prompt is ${promptIds.length} tokens; the checkpoint's context is ${model.config.block_size}. ` +
          `Shorten the prompt.`,
      );
    // The same prompt K times in one batch: one forward per new token serves all K completions.
    const sequences = await model.generate(
      Array.from({ length: request.numSamples }, () => promptIds),
      {
        temperature: request.temperature,
        topK: 0,
        topP: request.topP,
        maxNewTokens: Math.min(request.maxNewTokens, room),
        seed: request.seed,
        eosTokenId: request.stopAtEos === false ? undefined : tokenizer.eosId,
        padTokenId: tokenizer.padId,
      },
    );
    const completions = sequences.map((sequence) => tokenizer.decode(sequence.tokens, { skipSpecialTokens: true }));
    return {
      type: 'sample/result',
      id: request.id,
      completions,
      tokenCounts: sequences.map((sequence) => sequence.tokens.length),
      loadMs,
      sampleMs: performance.now() - start,
      backend: this.backend?.name ?? 'unknown',
    };
  }

  /** Completions from an ONNX folder on onnxruntime-node (loaded on demand, like its native binding). */
  private async serveOnnx(request: SampleRequestMessage): Promise<SampleResultMessage> {
    const loadStart = performance.now();
    if (this.onnx?.dir !== request.checkpoint) {
      this.dispose(); // one model loaded at a time, as with checkpoints
      const { OnnxCompletionSource } = await import('../onnx/onnxCompletions');
      this.onnx = await OnnxCompletionSource.load(request.checkpoint);
    }
    const loadMs = performance.now() - loadStart;
    const start = performance.now();
    const { sequences, texts } = await this.onnx.complete(request.prompt, request.numSamples, {
      temperature: request.temperature,
      topK: 0,
      topP: request.topP,
      maxNewTokens: request.maxNewTokens,
      seed: request.seed,
      stopAtEos: request.stopAtEos,
    });
    return {
      type: 'sample/result',
      id: request.id,
      completions: texts,
      tokenCounts: sequences.map((sequence) => sequence.tokens.length),
      loadMs,
      sampleMs: performance.now() - start,
      backend: 'onnxruntime-node',
    };
  }

  private async load(dir: string): Promise<LoadedCheckpoint> {
    if (this.loaded?.dir === dir) return this.loaded;
    this.backend ??= await selectBackend('auto');
    // A checkpoint or a Hugging Face model folder (gpt2 or the Llama family), without its heads.
    const checkpoint = await readModelSource(dir, { seed: 0 });
    this.dispose();
    const model = createTrainingEngine(this.backend).createModel(checkpoint.config.model, {
      heads: [],
      weights: checkpoint.weights,
      seed: 0,
    });
    this.loaded = { dir, model, tokenizer: checkpoint.tokenizer };
    return this.loaded;
  }
}
