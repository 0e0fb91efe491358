/**
 * The preference-labels stage: K completions per prompt from a policy, ranked by the simulated
 * annotator (demo task) — or the judgments of a file made in the ranking panel, used as they are.
 * Writes `preferences.jsonl` in the run directory in the preference format (src/shared/preferences.ts),
 * one judgment appended per line, so a killed run keeps every judgment it wrote and resumes after them.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Random } from '../../core/random';
import { sum } from '../../core/stats';
import type { Judgment } from '../../shared/preferences';
import type { PreferencesStageConfig } from '../../shared/runConfig';
import { loadEngineModel } from '../checkpoint/modelLoading';
import { loadPrompts } from '../data/prompts';
import type { EngineModel } from '../engine/engine';
import { runStageLoop } from '../loop/stageLoop';
import { appendLineDurable, writeFileDurable } from '../../shared/durableWrite';
import type { RunDirectory } from '../run/runDirectory';
import { seeds } from '../seeds';
import type { LogLevel, StageContext, StageResult } from '../stageContext';
import type { Tokenizer } from '../tokenizer';
import { simulatedRanking } from './simulatedAnnotator';
import { renderPreferenceFile } from './chatPreferenceFile';
import { loadHfTokenizer } from '../hf/hfTokenizer';
import { chatFormatterOf, encodePrompt } from '../data/chatTokens';

/** Prompts per generation batch (× K completions each). */
export const promptsPerBatch = 16;

/**
 * On resume: cuts `file` back to the judgments of whole batches whose metrics line was also written,
 * so the batch a kill interrupted (lines missing, the last one cut, or its metrics line not yet
 * written) is written again in full. Returns how many batches stay. A file with more judgments than
 * the stage writes is not this stage's, and is left alone.
 */
function keepWholeBatches(
  file: string,
  run: RunDirectory,
  total: number,
  log: (level: LogLevel, message: string) => void,
): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  // Only lines that ended (a newline after them) and parse count; the first that does not ends the good part.
  let whole = 0;
  while (whole < lines.length - 1 && isJsonObject(lines[whole])) whole++;
  if (whole > total)
    throw new Error(
      `${file} holds ${whole} judgments but this stage writes ${total}; it was not written by this stage. ` +
        'Move it away and resume again.',
    );
  const batches = Math.min(
    whole === total ? Math.ceil(total / promptsPerBatch) : Math.floor(whole / promptsPerBatch),
    loggedBatches(run),
  );
  const kept = Math.min(total, batches * promptsPerBatch);
  const keptText = lines
    .slice(0, kept)
    .map((line) => `${line}\n`)
    .join('');
  if (keptText !== text) {
    const dropped = lines.slice(kept).filter((line) => line !== '').length;
    log(
      'info',
      `${file}: keeping the ${kept} judgments of whole batches and dropping the ${dropped} ` +
        `line${dropped === 1 ? '' : 's'} after them; batch ${batches + 1} is written again`,
    );
    writeFileDurable(file, keptText);
  }
  return batches;
}

/** How many batches have their metrics line: steps 1, 2, … in order, up to the first gap or cut line. */
function loggedBatches(run: RunDirectory): number {
  if (!existsSync(run.metricsFile)) return 0;
  let logged = 0;
  for (const line of readFileSync(run.metricsFile, 'utf8').split('\n')) {
    if (!isJsonObject(line) || (JSON.parse(line) as { step?: unknown }).step !== logged + 1) break;
    logged++;
  }
  return logged;
}

function isJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** What labelling a batch needs besides its prompts. */
interface Labelling {
  readonly stage: PreferencesStageConfig;
  readonly context: StageContext;
  readonly model: EngineModel;
  readonly tokenizer: Tokenizer;
  readonly policyDir: string;
  /** The judgments file, appended to. */
  readonly file: string;
}

/**
 * Batch `batch`: K completions of each prompt from the policy, ranked by the simulated annotator from the
 * task's oracle, appended to the file one judgment per line. Returns the batch's metrics.
 */
async function labelBatch(
  labelling: Labelling,
  batchPrompts: readonly string[],
  batch: number,
): Promise<Record<string, number>> {
  const { stage, context, model, tokenizer, policyDir, file } = labelling;
  const { run, seed } = context;
  const t0 = performance.now();
  const encoded = batchPrompts.map((prompt) => encodePrompt(tokenizer, prompt));
  const k = stage.completions_per_prompt;
  const sequences = await model.generate(
    encoded.flatMap((ids) => Array.from({ length: k }, () => ids)),
    {
      temperature: stage.temperature,
      topK: stage.top_k,
      topP: stage.top_p,
      maxNewTokens: stage.max_new_tokens,
      seed: seeds.preferenceSampling(seed, batch),
      eosTokenId: tokenizer.eosId,
      padTokenId: tokenizer.padId,
    },
  );
  const random = new Random(seeds.annotator(seed, batch));
  let oracleSum = 0;
  let spreadSum = 0;
  batchPrompts.forEach((prompt, p) => {
    const completions = sequences
      .slice(p * k, (p + 1) * k)
      .map((sequence) => tokenizer.decode(sequence.tokens, { skipSpecialTokens: true }));
    const scores = completions.map((completion) => context.task.score(prompt + completion));
    const judgment: Judgment = {
      id: `${run.id}-${batch * promptsPerBatch + p}`,
      prompt,
      completions,
      ranking: simulatedRanking(completions, scores, stage.annotator_temperature, random),
      annotator: `simulated(oracle, temperature ${stage.annotator_temperature})`,
      time: new Date().toISOString(),
      source: { run: run.id, step: 0, model: policyDir },
      shown_order: random.shuffle(completions.map((_, i) => i)),
    };
    appendLineDurable(file, JSON.stringify(judgment));
    oracleSum += sum(scores) / k;
    spreadSum += Math.max(...scores) - Math.min(...scores);
  });
  return {
    'preferences/judgments': batch * promptsPerBatch + batchPrompts.length,
    'oracle/score': oracleSum / batchPrompts.length,
    'oracle/spread': spreadSum / batchPrompts.length,
    completions_per_s: (batchPrompts.length * k) / ((performance.now() - t0) / 1000),
  };
}

/** The folder whose tokenizer renders a file's lines: the policy's, else the run's model folder (model.from). */
function policyFolder(stage: PreferencesStageConfig, context: StageContext): string {
  const policy = context.resolve(stage.policy, 'checkpoint');
  if (existsSync(policy) || context.model.from === undefined) return policy;
  return path.resolve(context.configDir, context.model.from);
}

export async function runPreferencesStage(stage: PreferencesStageConfig, context: StageContext): Promise<StageResult> {
  const { run, log, seed } = context;
  if (stage.annotator === 'file') {
    if (!stage.file) throw new Error('"annotator": "file" needs "file": the preference file to use.');
    const file = path.resolve(context.configDir, stage.file);
    if (!existsSync(file)) throw new Error(`The preference file ${file} does not exist.`);
    if (!stage.chat_template) {
      log('info', `using the judgments in ${file}`);
      return { status: 'completed', step: 0, outputs: { preferences: file }, lastMetrics: {} };
    }
    const rendered = path.join(run.dir, 'preferences.jsonl');
    const tokenizerFolder = policyFolder(stage, context);
    const { rendered: count, problems } = await renderPreferenceFile(
      file,
      rendered,
      await loadHfTokenizer(tokenizerFolder),
    );
    for (const problem of problems) log('warn', problem);
    log('info', `${count} lines of ${file} rendered with the chat template of ${tokenizerFolder} into ${rendered}`);
    return { status: 'completed', step: 0, outputs: { preferences: rendered }, lastMetrics: {} };
  }

  const policyDir = context.resolve(stage.policy, 'checkpoint');
  const { model, checkpoint } = await loadEngineModel(context.engine, policyDir, [], seed, {
    blockSize: context.model.block_size,
  });
  const tokenizer = checkpoint.tokenizer;
  const file = path.join(run.dir, 'preferences.jsonl');
  try {
    const chat = chatFormatterOf(tokenizer);
    const prompts = await loadPrompts(stage.prompts, context.configDir, stage.num_prompts, 0, seed, chat);
    for (const message of prompts.messages) log('warn', message);
    if (!prompts.hasOracle)
      throw new Error(
        "The simulated annotator ranks by the demo task's sentiment oracle; with your own prompts, " +
          'rank in the Rank panel and use "annotator": "file".',
      );
    const selected = prompts.train.slice(0, stage.num_prompts);
    const batches = Math.ceil(selected.length / promptsPerBatch);
    run.update({ max_steps: batches });
    // Resume: the whole batches already in the file stay; a batch the kill cut short is redone (each
    // batch is a pure function of seed and batch number, so it comes out the same).
    const firstBatch = context.resume ? keepWholeBatches(file, run, selected.length, log) : 0;
    const result = await runStageLoop(
      {
        startStep: firstBatch,
        maxSteps: batches,
        outputs: { preferences: file },
        stopMessage: (batch) => `stopped after ${batch * promptsPerBatch} judgments on request`,
        step: async (batch) => ({
          metrics: await labelBatch(
            { stage, context, model, tokenizer, policyDir, file },
            selected.slice(batch * promptsPerBatch, (batch + 1) * promptsPerBatch),
            batch,
          ),
        }),
      },
      context,
    );
    if (result.status === 'stopped') return result;
    log('info', `${selected.length} judgments of ${stage.completions_per_prompt} completions in ${file}`);
    run.update({ summary: { judgments: selected.length } });
    return result;
  } finally {
    model.dispose();
  }
}
