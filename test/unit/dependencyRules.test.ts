// The import rules of .dependency-cruiser.cjs (cycles and the algorithm boundary; DESIGN.md's room rules are eslint's,
// see importBoundaries.test.ts), run as `npm run lint` runs them: scripts/checkImports.mjs → dependency-cruiser. Each
// test writes a tiny source tree to a temporary folder; the check must reject each broken tree naming the rule (and
// only that rule), and accept a clean one. Real depcruise runs on real files; nothing is mocked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';

const repositoryRoot = path.join(__dirname, '..', '..');
const checkImports = path.join(repositoryRoot, 'scripts', 'checkImports.mjs');
const depcruise = path.join(repositoryRoot, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

/** File path under the tree's root → its text. */
type SourceTree = Readonly<Record<string, string>>;

interface CheckResult {
  readonly status: number | null;
  readonly output: string;
  /** The rules the report names (its `rule-name (count):` headings). */
  readonly brokenRules: readonly string[];
}

/** Writes the tree to a temporary folder (removed after the test), with the project's packages beside it. */
function writeTree(t: TestContext, files: SourceTree): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rlhf-import-rules-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  // Packages resolve as in the project (`@tensorflow/tfjs-core` → node_modules/@tensorflow/...), not as unknowns.
  symlinkSync(path.join(repositoryRoot, 'node_modules'), path.join(root, 'node_modules'), 'junction');
  return root;
}

/** What `npm run lint`'s import step says about the tree's src folder. */
function checkTree(t: TestContext, files: SourceTree): CheckResult {
  const run = spawnSync(process.execPath, [checkImports, 'src'], { cwd: writeTree(t, files), encoding: 'utf8' });
  const output = run.stdout + run.stderr;
  const brokenRules = [...output.matchAll(/^([a-z-]+) \(\d+\):$/gm)].map((match) => match[1]);
  return { status: run.status, output, brokenRules };
}

function assertRejected(result: CheckResult, rule: string, violation: string): void {
  assert.equal(result.status, 1, result.output);
  assert.deepEqual(result.brokenRules, [rule], result.output);
  assert.ok(result.output.includes(violation), `expected "${violation}" in:\n${result.output}`);
}

test('a cycle between two files is rejected, also when one side imports only a type', (t) => {
  const result = checkTree(t, {
    'src/shared/protocol.ts': "export * from './rankMessages';\nexport interface ReadyMessage { type: 'ready' }\n",
    'src/shared/rankMessages.ts':
      "import type { ReadyMessage } from './protocol';\nexport type RankMessage = ReadyMessage | { type: 'rank' };\n",
  });
  const cycle = 'src/shared/protocol.ts → src/shared/rankMessages.ts → src/shared/protocol.ts';
  assertRejected(result, 'no-circular', cycle);
});

test('a cycle between two folders is rejected though no file cycle exists', (t) => {
  const result = checkTree(t, {
    'src/trainer/sampling/sampler.ts': 'export const sample = (): number => 4;\n',
    'src/trainer/sampling/sampleServer.ts':
      "import { complete } from '../onnx/onnxCompletions';\nexport const serve = () => complete();\n",
    'src/trainer/onnx/onnxCompletions.ts':
      "import { sample } from '../sampling/sampler';\nexport const complete = () => sample();\n",
  });
  assertRejected(result, 'no-folder-cycles', 'src/trainer/onnx → src/trainer/sampling → src/trainer/onnx');
});

test('each folder cycle is reported once, not once from each of its folders', (t) => {
  const result = checkTree(t, {
    'src/a/one.ts': "import { two } from '../b/two';\nexport const one = () => two;\n",
    'src/b/two.ts': 'export const two = 2;\n',
    'src/b/three.ts': "import { four } from '../a/four';\nexport const three = () => four;\n",
    'src/a/four.ts': 'export const four = 4;\n',
  });
  assert.deepEqual(result.brokenRules, ['no-folder-cycles'], result.output);
  assert.match(result.output, /^no-folder-cycles \(1\):$/m);
});

const algorithmImports: [name: string, file: string, code: string, rule: string, violation: RegExp][] = [
  [
    'PPO importing @tensorflow/tfjs-core',
    'src/trainer/ppo/ppoLosses.ts',
    "import * as tf from '@tensorflow/tfjs-core';\nexport const zeros = () => tf.zeros([1]);\n",
    'algorithm-not-to-engine-library',
    /src\/trainer\/ppo\/ppoLosses\.ts → \S*node_modules\/@tensorflow\/tfjs-core\//,
  ],
  [
    'SFT importing a tfjs package not installed here (an optional dependency)',
    'src/trainer/sft/sftTrainer.ts',
    "import * as tf from '@tensorflow/tfjs-node';\nexport const backend = () => tf.getBackend();\n",
    'algorithm-not-to-engine-library',
    /src\/trainer\/sft\/sftTrainer\.ts → @tensorflow\/tfjs-node$/m,
  ],
  [
    'the stage loop importing a tfjs backend with a dynamic import()',
    'src/trainer/loop/stageLoop.ts',
    "export async function load() {\n  await import('@tensorflow/tfjs-backend-cpu');\n}\n",
    'algorithm-not-to-engine-library',
    /src\/trainer\/loop\/stageLoop\.ts → \S*@tensorflow\/tfjs-backend-cpu\//,
  ],
  [
    'DPO importing onnxruntime-node',
    'src/trainer/dpo/dpoTrainer.ts',
    "import { InferenceSession } from 'onnxruntime-node';\nexport const session = InferenceSession;\n",
    'algorithm-not-to-engine-library',
    /src\/trainer\/dpo\/dpoTrainer\.ts → \S*onnxruntime-node\//,
  ],
  [
    'reward importing the tfjs engine behind the seam',
    'src/trainer/reward/rewardTrainer.ts',
    "import { TfjsEngine } from '../engine/tfjs/tfjsEngine';\nexport const engine = TfjsEngine;\n",
    'algorithm-not-to-tfjs-engine',
    /src\/trainer\/reward\/rewardTrainer\.ts → src\/trainer\/engine\/tfjs\/tfjsEngine\.ts/,
  ],
  [
    'SFT making its own engine through the factory instead of using context.engine',
    'src/trainer/sft/sftTrainer.ts',
    "import { createTrainingEngine } from '../engineFactory';\nexport const make = createTrainingEngine;\n",
    'algorithm-not-to-tfjs-engine',
    /src\/trainer\/sft\/sftTrainer\.ts → src\/trainer\/engineFactory\.ts/,
  ],
  [
    'PPO importing the demo task',
    'src/trainer/ppo/ppoTrainer.ts',
    "import { demoTask } from '../demo/x';\nexport const task = demoTask;\n",
    'algorithm-not-to-demo-task',
    /src\/trainer\/ppo\/ppoTrainer\.ts → src\/trainer\/demo\/x\.ts/,
  ],
  [
    'preferences importing the sentiment oracle',
    'src/trainer/preferences/preferencesStage.ts',
    "import { sentimentScore } from '../data/sentimentOracle';\nexport const score = sentimentScore;\n",
    'algorithm-not-to-demo-task',
    /src\/trainer\/preferences\/preferencesStage\.ts → src\/trainer\/data\/sentimentOracle\.ts/,
  ],
];

/** Modules the algorithm fixtures import, so every import resolves and only the rule under test can fire. */
const trainerModules: SourceTree = {
  'src/trainer/engine/tfjs/tfjsEngine.ts':
    "import * as tf from '@tensorflow/tfjs-core';\nexport const TfjsEngine = tf;\n",
  'src/trainer/engineFactory.ts':
    "import { TfjsEngine } from './engine/tfjs/tfjsEngine';\nexport const createTrainingEngine = () => TfjsEngine;\n",
  'src/trainer/demo/x.ts': 'export const demoTask = { score: (text: string) => text.length };\n',
  'src/trainer/data/sentimentOracle.ts': 'export const sentimentScore = (text: string) => text.length;\n',
};

for (const [name, file, code, rule, violation] of algorithmImports) {
  test(`${name} is rejected`, (t) => {
    const result = checkTree(t, { ...trainerModules, [file]: code });
    assert.equal(result.status, 1, result.output);
    assert.deepEqual(result.brokenRules, [rule], result.output);
    assert.match(result.output, violation);
  });
}

/**
 * Layers import one way; algorithms use the seam and a top-level shared file; the engine implementation, ONNX code,
 * the demo task and the pipeline may use the engines and the algorithms.
 */
const cleanTree: SourceTree = {
  'src/core/stats.ts': 'export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;\n',
  'src/shared/webviewMessages.ts': "export interface ReadyMessage { type: 'ready' }\n",
  'src/shared/rankMessages.ts':
    "import type { ReadyMessage } from './webviewMessages';\nexport type RankMessage = ReadyMessage;\n",
  'src/shared/protocol.ts': "export * from './rankMessages';\nexport type { ReadyMessage } from './webviewMessages';\n",
  'src/trainer/engine/engine.ts': 'export interface TrainingEngine { readonly name: string }\n',
  'src/trainer/engine/tfjs/tfjsEngine.ts':
    "import * as tf from '@tensorflow/tfjs-core';\nimport type { TrainingEngine } from '../engine';\n" +
    'export const tfjsEngine: TrainingEngine = { name: tf.version_core };\n',
  'src/trainer/onnx/onnxModel.ts':
    "import { InferenceSession } from 'onnxruntime-node';\nexport const s = InferenceSession;\n",
  'src/trainer/stageContext.ts': 'export interface StageContext { readonly runDir: string }\n',
  'src/trainer/ppo/ppoTrainer.ts':
    "import { mean } from '../../core/stats';\nimport type { TrainingEngine } from '../engine/engine';\n" +
    "import type { StageContext } from '../stageContext';\n" +
    'export const train = (engine: TrainingEngine, context: StageContext) => [engine.name, context, mean([1])];\n',
  'src/trainer/demo/sentimentTask.ts':
    "import { train } from '../ppo/ppoTrainer';\nexport const score = (text: string) => text.length;\n" +
    'export const run = train;\n',
  'src/trainer/pipeline.ts':
    "import { score } from './demo/sentimentTask';\nimport { tfjsEngine } from './engine/tfjs/tfjsEngine';\n" +
    "import { train } from './ppo/ppoTrainer';\n" +
    "export const go = () => [train(tfjsEngine, { runDir: '.' }), score('x')];\n",
};

test('a clean tree passes: layers import one way, algorithms use the seam', (t) => {
  const result = checkTree(t, cleanTree);
  assert.equal(result.status, 0, result.output);
  assert.equal(result.output, '');
});

test('the clean tree with one import back (an engine file importing PPO) fails: the check sees its imports', (t) => {
  const result = checkTree(t, {
    ...cleanTree,
    'src/trainer/engine/engineNames.ts': "import { train } from '../ppo/ppoTrainer';\nexport const trainer = train;\n",
  });
  assertRejected(result, 'no-folder-cycles', 'src/trainer/engine → src/trainer/ppo → src/trainer/engine');
});

test('depcruise with the config alone (no report script) also fails on a broken tree and names the rule', (t) => {
  const root = writeTree(t, {
    'src/trainer/sft/sftTrainer.ts':
      "import { sentimentScore } from '../data/sentimentOracle';\nexport const s = sentimentScore;\n",
    'src/trainer/data/sentimentOracle.ts': 'export const sentimentScore = (text: string) => text.length;\n',
  });
  const configFile = path.join(repositoryRoot, '.dependency-cruiser.cjs');
  const run = spawnSync(process.execPath, [depcruise, '--config', configFile, 'src'], { cwd: root, encoding: 'utf8' });
  assert.notEqual(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /error algorithm-not-to-demo-task: src\/trainer\/sft\/sftTrainer\.ts → /);
});

test('npm run lint runs the import check over src and webview', () => {
  const { scripts } = JSON.parse(readFileSync(path.join(repositoryRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.match(scripts.lint, /(^|&& )node scripts\/checkImports\.mjs src webview( &&|$)/);
});
