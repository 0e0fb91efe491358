/**
 * A fixture PPO run for the dashboard's webview tests and benchmark: rows with chosen values (so a
 * test can predict each token's colour and clip class), synthetic steps of any size, and a way to
 * deliver messages holding typed arrays to the page as VS Code's postMessage does.
 */
import { classifyClip, Random } from '../../src/core';
import type { DashboardRunInfo, MetricPoint, ToDashboardMessage } from '../../src/shared/dashboardMessages';
import { packPpoTrace, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { decodeTraceTable, encodeTrace, type PpoTraceRow } from '../../src/shared/traceFormat';
import type { WebviewPage } from './webviewPage';

export const fixtureEpsilon = 0.2;

/** clip_class as the trainer's trace writer computes it (ppoTraceRows): on the float32 values the file stores. */
export function clipClassesOf(
  ratios: readonly number[][],
  advantage: readonly number[],
  cliprange: number,
): number[][] {
  return ratios.map((epoch) =>
    epoch.map((r, t) => classifyClip(Math.fround(r), Math.fround(advantage[t]), cliprange) as number),
  );
}

export const fixtureRun: DashboardRunInfo = {
  id: 'fixture-ppo-20261121-120000',
  name: 'fixture · ppo',
  status: 'completed',
  runDir: '/work/project/.rlhf/runs/fixture-ppo-20261121-120000',
  stage: 'ppo',
  step: 3,
  maxSteps: 3,
  cliprange: { value: fixtureEpsilon, source: 'run.json config.stages[2].cliprange' },
  maxNewTokens: { value: 16, source: 'run.json config.stages[2].max_new_tokens' },
};

function row(
  sample: number,
  prompt: string,
  tokens: string[],
  score: number,
  oracle: number | null,
  advantage: number[],
  ratios: number[][],
  extra: Partial<PpoTraceRow> = {},
): PpoTraceRow {
  const n = tokens.length;
  const ramp = (scale: number) => tokens.map((_, i) => Number((scale * (i + 1 - n / 2)).toFixed(3)));
  return {
    step: 1,
    sample,
    prompt,
    response: tokens.join(''),
    score,
    oracle_score: oracle,
    tokens,
    token_ids: tokens.map((_, i) => 100 + sample * 10 + i),
    logprob: tokens.map((_, i) => -0.5 - 0.25 * i),
    ref_logprob: tokens.map((_, i) => -0.6 - 0.2 * i),
    kl: ramp(0.1),
    value: ramp(0.05),
    reward: tokens.map((_, i) => (i === n - 1 ? score : -0.01)),
    advantage,
    return: ramp(0.2),
    entropy: tokens.map(() => 1.5),
    ratio: ratios,
    clip_class: clipClassesOf(ratios, advantage, fixtureEpsilon),
    ...extra,
  };
}

/**
 * Step 1 of the fixture: four samples. Sample 0 has one token of each clip class at epoch 2:
 * "great" A>0 r=1.5 (removed above), " film" A<0 r=0.5 (removed below), "!" A>0 r=0.6 (outside,
 * kept), " and" inside. Sample 2 has a whitespace-only token and a newline token.
 */
export function fixtureRows(step = 1): PpoTraceRow[] {
  const rows = [
    row(
      0,
      'The film was',
      [' great', ' film', '!', ' and'],
      0.9,
      0.8,
      [1.2, -0.8, 0.5, 0.3],
      [
        [1.0, 1.0, 1.0, 1.0],
        [1.5, 0.5, 0.6, 1.1],
      ],
    ),
    row(
      1,
      'The film was',
      [' dull', '.'],
      -0.7,
      -0.6,
      [-0.4, -2.0],
      [
        [1.0, 1.0],
        [0.9, 1.05],
      ],
    ),
    row(
      2,
      'This product is',
      [' fine', ' ', '\n', 'ok'],
      0.1,
      null,
      [0.2, 0.1, -0.1, 0.4],
      [
        [1.0, 1.0, 1.0, 1.0],
        [1.02, 0.98, 1.0, 1.3],
      ],
    ),
    row(
      3,
      'This product is',
      [' awful', ' really', ' bad', ' stuff', '.'],
      -0.2,
      0.3,
      [0.1, 0.2, -0.3, 0.05, 0.0],
      [
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [1.0, 1.25, 0.7, 1.0, 1.0],
      ],
    ),
  ];
  return rows.map((r) => ({ ...r, step }));
}

/** Packs rows the way the host does: Arrow IPC bytes → decodeTraceTable → packPpoTrace. */
export function packThroughArrow(step: number, rows: PpoTraceRow[]): PackedPpoTrace {
  const table = decodeTraceTable(encodeTrace('ppo', rows));
  if (table.kind !== 'ppo') throw new Error('expected a PPO trace');
  return packPpoTrace(step, table.numRows, (i) => table.row(i));
}

/** A step of `samples` responses of `tokens` tokens each, with random but plausible values. */
export function syntheticRows(step: number, samples: number, tokens: number, seed = 1): PpoTraceRow[] {
  const random = new Random(seed);
  const words = [
    ' the',
    ' film',
    ' was',
    ' really',
    ' good',
    ' and',
    ' bad',
    '.',
    ' I',
    ' liked',
    ' it',
    ',',
    ' plot',
    '\n',
    ' ',
    ' acting',
  ];
  return Array.from({ length: samples }, (_, s) => {
    const text = Array.from({ length: tokens }, () => random.pick(words));
    const values = () => Array.from({ length: tokens }, () => Math.fround(random.normal()));
    const ratio = [
      Array.from({ length: tokens }, () => 1),
      Array.from({ length: tokens }, () => Math.fround(1 + 0.15 * random.normal())),
    ];
    // Drawn in this order (the benchmark's numbers depend on it).
    const score = Math.fround(random.normal());
    const oracleScore = Math.fround(random.normal() * 0.5);
    const logprob = values().map((v) => -Math.abs(v));
    const refLogprob = values().map((v) => -Math.abs(v));
    const kl = values();
    const value = values();
    const reward = values();
    const advantage = values();
    const returns = values();
    const entropy = values().map((v) => Math.abs(v));
    return {
      step,
      sample: s,
      prompt: `Prompt number ${s % 37} says`,
      response: text.join(''),
      score,
      oracle_score: oracleScore,
      tokens: text,
      token_ids: text.map((_, i) => i % 500),
      logprob,
      ref_logprob: refLogprob,
      kl,
      value,
      reward,
      advantage,
      return: returns,
      entropy,
      ratio,
      clip_class: clipClassesOf(ratio, advantage, fixtureEpsilon),
    };
  });
}

/** Metrics of a run whose KL climbs and whose oracle falls while the reward rises (every warning fires). */
export function fixtureMetrics(steps = 24): MetricPoint[] {
  return Array.from({ length: steps }, (_, i) => {
    const step = i + 1;
    return {
      step,
      time: 1_795_000_000 + step,
      episode: step * 8,
      'objective/kl': 0.1 * step * (1 + 0.1 * Math.sin(step)),
      'objective/entropy': 60 * Math.exp(-step / 8),
      'objective/scores': 0.02 * step + 0.01 * Math.sin(3 * step),
      'oracle/score': 0.3 - 0.015 * step + 0.005 * Math.cos(2 * step),
      'policy/clipfrac_avg': 0.01 * step,
      'loss/policy_avg': -0.01 * Math.cos(step),
      'val/ratio': 1 + 0.001 * step,
      response_length: 8 + step,
      lr: 0.0003,
    };
  });
}

// Typed arrays cross into the page as base64 of their bytes and are rebuilt there, then delivered with
// window.postMessage — a structured clone, as VS Code delivers them to a webview.
const typedNames = ['Float32Array', 'Float64Array', 'Int32Array', 'Uint32Array', 'Int8Array', 'Uint8Array'] as const;

function encodeTyped(value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const name = typedNames.find((candidate) => value.constructor.name === candidate);
    if (!name) throw new Error(`unsupported typed array ${value.constructor.name}`);
    return { __typed: name, base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (Array.isArray(value)) return value.map(encodeTyped);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, encodeTyped(item)]));
  return value;
}

/** Defines window.__revive in the page (a string: tsx rewrites functions with helpers the page lacks). */
export const reviveScript = `
  window.__revive = function revive(value) {
    if (Array.isArray(value)) return value.map(revive);
    if (value && typeof value === 'object') {
      if (value.__typed) {
        const binary = atob(value.base64);
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
        return new window[value.__typed](bytes.buffer);
      }
      const out = {};
      for (const key of Object.keys(value)) out[key] = revive(value[key]);
      return out;
    }
    return value;
  };
`;

/** Sends a host message that may hold typed arrays. */
export async function sendToDashboard(view: WebviewPage, message: ToDashboardMessage): Promise<void> {
  await view.page.evaluate(reviveScript);
  await view.page.evaluate(
    (encoded) =>
      window.postMessage((window as unknown as { __revive(value: unknown): unknown }).__revive(encoded), '*'),
    encodeTyped(message),
  );
}
