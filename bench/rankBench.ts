/**
 * `npm run bench:rank`: how fast the Rank view gets its next set of K = 4 completions of 128 tokens
 * from a checkpoint, through the real path — the host's CheckpointSampler asking a warm trainer
 * process over IPC (the host never loads tfjs). Measures the first set (process start, backend,
 * checkpoint load, sampling), the next sets on the warm process (request → result at the host), and
 * the wait a user sees in a RankSession after submitting, with no think time and with 1.5 s (the
 * next set is sampled while the current one is ranked). Prints medians and writes bench-results/rank.json.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CheckpointSampler } from '../src/host/checkpointSampler';
import { PreferenceStore } from '../src/host/preferenceStore';
import { RankSession } from '../src/host/rankSession';
import { openRankSource } from '../src/host/rankSources';
import { TrainerSupervisor } from '../src/host/trainerSupervisor';
import { ensureRankCheckpoint } from '../test/unit/rankCheckpoint';

const root = path.join(__dirname, '..');
const k = 4;
const tokens = 128;
const repetitions = 10;
const prompt = 'review of the blender:';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const checkpoint = ensureRankCheckpoint();
  const supervisor = new TrainerSupervisor(path.join(root, 'dist', 'trainer.js'));
  const sampler = new CheckpointSampler(supervisor, root);
  const request = (seed: number) => ({
    checkpoint,
    prompt,
    numSamples: k,
    temperature: 1,
    topP: 1,
    maxNewTokens: tokens,
    seed,
    stopAtEos: false,
  });
  try {
    // 1. The first set: trainer start, backend, checkpoint load, sampling.
    let start = performance.now();
    const first = await sampler.sample(request(1));
    const firstMs = performance.now() - start;
    if (first.tokenCounts.some((count) => count !== tokens))
      throw new Error(`expected ${tokens} tokens per completion, got ${first.tokenCounts.join(', ')}`);

    // 2. Next sets on the warm trainer: request → result, as the host sees it.
    const warm: number[] = [];
    const sampleOnly: number[] = [];
    for (let i = 0; i < repetitions; i++) {
      start = performance.now();
      const result = await sampler.sample(request(100 + i));
      warm.push(performance.now() - start);
      sampleOnly.push(result.sampleMs);
      if (result.loadMs > 1) throw new Error(`the warm trainer loaded the checkpoint again (${result.loadMs} ms)`);
    }

    // 3. What the user waits for in the view: submit → next set on screen (a RankSession, real store).
    const dir = mkdtempSync(path.join(tmpdir(), 'rlhf-rank-bench-'));
    // stopAtEos false: every completion is the full 128 tokens (the worst case; real ones often stop earlier).
    const spec = {
      kind: 'checkpoint' as const,
      checkpoint,
      prompts: [prompt],
      k,
      temperature: 1,
      topP: 1,
      maxNewTokens: tokens,
      stopAtEos: false,
    };
    const waits: Record<'immediate' | 'think1500', number[]> = { immediate: [], think1500: [] };
    for (const mode of ['immediate', 'think1500'] as const) {
      const session = new RankSession({
        store: new PreferenceStore(path.join(dir, `${mode}.jsonl`)),
        annotator: 'bench',
      });
      await session.load();
      const { source } = await openRankSource(spec, new Set(), () => sampler);
      await session.setSource(source);
      for (let i = 0; i < repetitions; i++) {
        const set = session.state().set;
        if (!set) throw new Error(`no set on screen: ${session.state().status}`);
        if (mode === 'think1500') await sleep(1500);
        start = performance.now();
        await session.submit({ type: 'rank/submit', setId: set.id, ranking: [[0], [1], [2], [3]] });
        waits[mode].push(performance.now() - start);
      }
      session.dispose();
    }

    const result = {
      date: new Date().toISOString(),
      checkpoint: path.relative(root, checkpoint),
      k,
      tokens,
      backend: first.backend,
      first_set_ms: Math.round(firstMs),
      warm_request_median_ms: Math.round(median(warm)),
      warm_sampling_median_ms: Math.round(median(sampleOnly)),
      view_wait_no_think_median_ms: Math.round(median(waits.immediate)),
      view_wait_think_1500ms_median_ms: Math.round(median(waits.think1500)),
      repetitions,
    };
    console.log(
      `Next set of K=${k} completions × ${tokens} tokens from a checkpoint (backend ${first.backend}, medians ` +
        `of ${repetitions}):`,
    );
    console.log(`  first set (start trainer, load, sample) ${result.first_set_ms} ms`);
    console.log(
      `  warm trainer, request → result           ${result.warm_request_median_ms} ms (sampling ` +
        `${result.warm_sampling_median_ms} ms)`,
    );
    console.log(`  view: submit → next set, no think time   ${result.view_wait_no_think_median_ms} ms`);
    console.log(
      `  view: submit → next set, 1.5 s to rank   ${result.view_wait_think_1500ms_median_ms} ms (sampled ` +
        `while ranking)`,
    );
    mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    writeFileSync(path.join(root, 'bench-results', 'rank.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await sampler.dispose();
    await supervisor.dispose();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
