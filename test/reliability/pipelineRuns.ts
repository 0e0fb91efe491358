/**
 * The tiny pipeline the kill and disk-full families train (SFT → preferences → reward → PPO → DPO,
 * a few seconds on wasm, checkpointing often), and how to resume a killed one to its end and
 * compare it with an uninterrupted run of the same config and seed.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isTemporaryName, listTree, runCli, tail, type CliResult } from './harness';

export const stageNames = ['sft', 'preferences', 'reward', 'ppo', 'dpo'] as const;

/**
 * Small enough for ~2 s (idle machine) on two cores, long enough that every stage has checkpoints (and PPO traces) to
 * kill inside.
 */
export const tinyPipeline = {
  name: 'k9',
  seed: 7,
  backend: 'wasm',
  model: { n_layer: 1, n_head: 2, n_embd: 16, block_size: 40 },
  tokenizer: { vocab_size: 280 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 200 },
      learning_rate: 0.005,
      max_steps: 12,
      warmup_steps: 2,
      eval_steps: 4,
      save_steps: 4,
    },
    {
      type: 'preferences',
      policy: 'sft',
      prompts: { source: 'demo' },
      num_prompts: 48,
      completions_per_prompt: 2,
      max_new_tokens: 8,
    },
    {
      type: 'reward',
      init_from: 'sft',
      preferences: 'preferences',
      num_train_epochs: 1,
      per_device_train_batch_size: 8,
    },
    {
      type: 'ppo',
      policy: 'sft',
      reward_model: 'reward',
      prompts: { source: 'demo' },
      total_episodes: 32,
      batch_size: 8,
      num_mini_batches: 2,
      num_ppo_epochs: 1,
      max_new_tokens: 8,
      eval_steps: 2,
      num_eval_prompts: 8,
      save_steps: 2,
    },
    {
      type: 'dpo',
      policy: 'sft',
      preferences: 'preferences',
      num_train_epochs: 1,
      per_device_train_batch_size: 8,
      max_new_tokens: 8,
      num_eval_prompts: 8,
    },
  ],
};

export function writeTinyConfig(dir: string): string {
  const file = path.join(dir, 'k9.rlhf.json');
  writeFileSync(file, `${JSON.stringify(tinyPipeline, null, 2)}\n`);
  return file;
}

export interface RunFolder {
  readonly dir: string;
  readonly runJson: {
    stage?: string;
    stage_index?: number;
    status?: string;
    started_at?: string;
    outputs?: { checkpoint?: string; preferences?: string };
  };
}

/** The run folders under a runs folder whose run.json parses, oldest stage first. */
export function runFolders(runsRoot: string): RunFolder[] {
  if (!existsSync(runsRoot)) return [];
  const folders: RunFolder[] = [];
  for (const name of readdirSync(runsRoot)) {
    // A run folder still under its temporary name was never created (the Runs view does not list it either).
    if (isTemporaryName(name)) continue;
    try {
      const runJson = JSON.parse(readFileSync(path.join(runsRoot, name, 'run.json'), 'utf8')) as RunFolder['runJson'];
      if (runJson && typeof runJson === 'object') folders.push({ dir: path.join(runsRoot, name), runJson });
    } catch {
      // not a run folder, or its run.json is unreadable: unreadableFiles() reports that
    }
  }
  return folders.sort(
    (a, b) =>
      (a.runJson.stage_index ?? 0) - (b.runJson.stage_index ?? 0) ||
      String(a.runJson.started_at).localeCompare(String(b.runJson.started_at)),
  );
}

/** The folder a user resumes: the latest stage started. */
export function newestRun(runsRoot: string): RunFolder | undefined {
  return runFolders(runsRoot).at(-1);
}

/** Whether every stage of the tiny pipeline has a completed run folder. */
export function pipelineFinished(runsRoot: string): boolean {
  const completed = new Set(
    runFolders(runsRoot)
      .filter((run) => run.runJson.status === 'completed')
      .map((run) => run.runJson.stage),
  );
  return stageNames.every((stage) => completed.has(stage));
}

export interface ResumeOutcome {
  readonly finished: boolean;
  readonly resumes: number;
  readonly attempts: CliResult[];
  readonly why?: string;
}

/**
 * `train --resume <newest run folder>` until every stage is completed (at most `limit` times), from a
 * working folder of its own, so a resume that writes into its working folder's `.rlhf/runs` shows.
 * A kill before any run folder existed leaves nothing to resume: then the config is trained again.
 */
export async function resumeUntilDone(
  configFile: string,
  runsRoot: string,
  cwd: string,
  limit = 4,
): Promise<ResumeOutcome> {
  const attempts: CliResult[] = [];
  for (let i = 0; i < limit; i++) {
    if (pipelineFinished(runsRoot)) return { finished: true, resumes: i, attempts };
    const newest = newestRun(runsRoot);
    const result = newest
      ? await runCli(['train', '--resume', newest.dir], { cwd, timeoutMs: 120_000 })
      : await runCli(['train', configFile, '--runs-dir', runsRoot], { cwd, timeoutMs: 120_000 });
    attempts.push(result);
    const what = newest ? `train --resume ${path.basename(newest.dir)}` : 'train (again)';
    if (result.code !== 0)
      return {
        finished: false,
        resumes: i + 1,
        attempts,
        why: `${what} exited ${result.code ?? result.signal}: ${tail(result.stderr, 3)}`,
      };
    const strays = listTree(cwd);
    if (strays.length > 0)
      return {
        finished: false,
        resumes: i + 1,
        attempts,
        why:
          `${what} wrote into its working folder (${strays.slice(0, 3).join(', ')}), not the pipeline's runs ` +
          `folder ${runsRoot}`,
      };
    // Exit 0 without progress in this runs folder (e.g. the later stages went somewhere else): resuming again would
    // loop.
    const after = newestRun(runsRoot);
    if (!pipelineFinished(runsRoot) && after?.dir === newest?.dir && after?.runJson.status === newest?.runJson.status) {
      return {
        finished: false,
        resumes: i + 1,
        attempts,
        why: `${what} exited 0, but the runs folder ${runsRoot} is no further: ${tail(result.stderr, 2)}`,
      };
    }
  }
  return pipelineFinished(runsRoot)
    ? { finished: true, resumes: limit, attempts }
    : { finished: false, resumes: limit, attempts, why: `not finished after ${limit} resumes` };
}

/** Judgments without what legitimately differs between two runs (times, run ids). */
function comparableJudgments(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const { prompt, completions, ranking, shown_order, annotator } = JSON.parse(line) as Record<string, unknown>;
      return JSON.stringify({ prompt, completions, ranking, shown_order, annotator });
    });
}

/** The completed run of each stage (the newest, if a stage was restarted in a new folder). */
function completedByStage(runsRoot: string): Map<string, RunFolder> {
  const byStage = new Map<string, RunFolder>();
  for (const run of runFolders(runsRoot))
    if (run.runJson.status === 'completed' && run.runJson.stage) byStage.set(run.runJson.stage, run);
  return byStage;
}

/**
 * Differences between two finished pipelines: each stage's final checkpoint (model and optimizer
 * safetensors, byte for byte) and the preference labels. Empty when they are equal.
 */
export function pipelineDifferences(expectedRoot: string, actualRoot: string): string[] {
  const expected = completedByStage(expectedRoot);
  const actual = completedByStage(actualRoot);
  const differences: string[] = [];
  for (const stage of stageNames) {
    const want = expected.get(stage);
    const got = actual.get(stage);
    if (!want || !got) {
      differences.push(`${stage}: no completed run in ${want ? 'the resumed' : 'the reference'} pipeline`);
      continue;
    }
    const wantCheckpoint = want.runJson.outputs?.checkpoint;
    const gotCheckpoint = got.runJson.outputs?.checkpoint;
    if (wantCheckpoint) {
      if (!gotCheckpoint) differences.push(`${stage}: the resumed run records no final checkpoint`);
      else {
        if (path.basename(wantCheckpoint) !== path.basename(gotCheckpoint))
          differences.push(
            `${stage}: final checkpoint ${path.basename(gotCheckpoint)}, uninterrupted ` +
              `${path.basename(wantCheckpoint)}`,
          );
        for (const file of ['model.safetensors', 'optimizer.safetensors']) {
          const a = path.join(wantCheckpoint, file);
          const b = path.join(gotCheckpoint, file);
          if (!existsSync(b)) differences.push(`${stage}: ${file} missing`);
          else if (!readFileSync(a).equals(readFileSync(b)))
            differences.push(`${stage}: ${path.basename(gotCheckpoint)}/${file} differs from the uninterrupted run's`);
        }
      }
    }
    if (want.runJson.outputs?.preferences) {
      const gotFile = got.runJson.outputs?.preferences;
      if (!gotFile || !existsSync(gotFile)) differences.push(`${stage}: no preferences file`);
      else {
        const a = comparableJudgments(want.runJson.outputs.preferences);
        const b = comparableJudgments(gotFile);
        const first = a.findIndex((line, i) => line !== b[i]);
        if (a.length !== b.length || first >= 0)
          differences.push(
            `${stage}: preferences.jsonl has ${b.length} judgments (uninterrupted ${a.length})` +
              `${first >= 0 ? `, first difference at line ${first + 1}` : ''}`,
          );
      }
    }
  }
  return differences;
}
