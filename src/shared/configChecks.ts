/**
 * Checks of a run config that its schema cannot express: values that must agree with each other
 * (minibatches dividing the batch), references between stages (order, kind, spelling), files a
 * config names (datasets, preference files, checkpoints), and options that contradict each other.
 * Each problem sits at a path of the document, so an editor can underline it, and carries a fix
 * where one value is the obvious repair.
 */
import * as path from 'node:path';
import { editDistance, type ConfigProblem } from './configSchema';
import { clip, quote } from './userError';
import type {
  DatasetConfig,
  DpoStageConfig,
  PpoStageConfig,
  PreferencesStageConfig,
  PromptsConfig,
  RunConfig,
  SftStageConfig,
  StageConfig,
} from './runConfig';

export type ProblemSeverity = 'error' | 'warning';

/** Set the value at `path` (a quick fix). */
export interface ConfigFix {
  readonly title: string;
  readonly path: readonly (string | number)[];
  readonly value: unknown;
}

export interface SemanticProblem extends ConfigProblem {
  /** Errors stop a run from starting; warnings do not. */
  readonly severity: ProblemSeverity;
  readonly fix?: ConfigFix;
}

/** What is at a path: datasets and preference files must be files, checkpoints folders. */
export type PathKind = 'file' | 'folder' | 'missing' | 'other';

/** What checking file references needs; without it those checks are skipped (pure callers). */
export interface CheckEnvironment {
  /** The folder of the config file: relative paths in the config are relative to it. */
  readonly configDir: string;
  /** What is at an absolute path (symbolic links followed); `other` for a device, socket or pipe. */
  readonly kind: (absolutePath: string) => PathKind;
}

const kindWords: Record<Exclude<PathKind, 'missing'>, string> = {
  file: 'a file',
  folder: 'a folder',
  other: 'a device, pipe or socket',
};

type Path = (string | number)[];
type Output = 'checkpoint' | 'preferences';

/** What each stage type leaves for later stages (pipeline.ts's StageOutputs). */
const stageOutput: Record<StageConfig['type'], Output> = {
  sft: 'checkpoint',
  preferences: 'preferences',
  reward: 'checkpoint',
  ppo: 'checkpoint',
  dpo: 'checkpoint',
};

interface Reference {
  readonly key: string;
  readonly value: string;
  readonly wants: Output;
  /** Stage types whose output fits (a policy must not be a reward model, and the other way round). */
  readonly kinds: readonly StageConfig['type'][];
}

const policyKinds: StageConfig['type'][] = ['sft', 'ppo', 'dpo'];

function references(stage: StageConfig): Reference[] {
  switch (stage.type) {
    case 'sft':
      return stage.init_from === 'scratch'
        ? []
        : [{ key: 'init_from', value: stage.init_from, wants: 'checkpoint', kinds: policyKinds }];
    case 'preferences':
      return [{ key: 'policy', value: stage.policy, wants: 'checkpoint', kinds: policyKinds }];
    case 'reward':
      return [
        { key: 'init_from', value: stage.init_from, wants: 'checkpoint', kinds: ['sft', 'ppo', 'dpo', 'reward'] },
        { key: 'preferences', value: stage.preferences, wants: 'preferences', kinds: ['preferences'] },
      ];
    case 'ppo':
      return [
        { key: 'policy', value: stage.policy, wants: 'checkpoint', kinds: policyKinds },
        { key: 'reward_model', value: stage.reward_model, wants: 'checkpoint', kinds: ['reward'] },
      ];
    case 'dpo':
      return [
        { key: 'policy', value: stage.policy, wants: 'checkpoint', kinds: policyKinds },
        { key: 'preferences', value: stage.preferences, wants: 'preferences', kinds: ['preferences'] },
      ];
  }
}

/** Whether the user wrote `key` in the raw object at `path` (defaults are filled in the checked config). */
function written(raw: unknown, at: Path): boolean {
  let node = raw;
  for (const part of at) {
    if (typeof node !== 'object' || node === null) return false;
    node = (node as Record<string | number, unknown>)[part];
  }
  return node !== undefined;
}

function closestName(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** The largest divisor of `n` that is at most `atMost` (at least 1). */
function divisorAtMost(n: number, atMost: number): number {
  for (let d = Math.min(n, atMost); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** One config's check: what every concern reads (config, raw document, environment) and the problems found. */
class ConfigCheck {
  readonly problems: SemanticProblem[] = [];
  /** Each stage's name: its "name", else its type. */
  readonly names: string[];

  constructor(
    readonly config: RunConfig,
    readonly raw: unknown,
    readonly environment: CheckEnvironment | undefined,
  ) {
    this.names = config.stages.map((stage) => stage.name ?? stage.type);
  }

  error(at: Path, message: string, fix?: ConfigFix): void {
    this.problems.push({ path: at, message, severity: 'error', fix });
  }

  warning(at: Path, message: string, fix?: ConfigFix): void {
    this.problems.push({ path: at, message, severity: 'warning', fix });
  }

  /** Whether the user wrote the value at `at` (defaults are filled in the checked config). */
  written(at: Path): boolean {
    return written(this.raw, at);
  }

  fileExists(at: Path, relative: string, what: string): void {
    const { environment } = this;
    if (!environment) return;
    const file = path.resolve(environment.configDir, relative);
    const kind = environment.kind(file);
    if (kind === 'missing') this.error(at, `${what} ${quote(relative)} does not exist (looked for ${clip(file)})`);
    // Caught here, before a run folder exists, rather than as EISDIR once the stage reads it.
    else if (kind !== 'file')
      this.error(
        at,
        `${what} ${quote(relative)} is ${kindWords[kind]}, not a file (${clip(file)}); name the file itself`,
      );
  }

  checkDataset(at: Path, dataset: DatasetConfig | PromptsConfig): void {
    if (dataset.source === 'jsonl') this.fileExists([...at, 'path'], dataset.path, 'the JSONL file');
  }

  checkResponseLength(at: Path, maxNewTokens: number): void {
    const { model } = this.config;
    if (maxNewTokens >= model.block_size) {
      const fitting = Math.max(1, Math.floor(model.block_size / 2));
      this.error(
        [...at, 'max_new_tokens'],
        `(${maxNewTokens}) leaves no room for the prompt in the model's context (block_size ${model.block_size})`,
        { title: `Set max_new_tokens to ${fitting}`, path: [...at, 'max_new_tokens'], value: fitting },
      );
    }
  }
}

function checkModelShape(check: ConfigCheck): void {
  const { model } = check.config;
  if (model.n_embd % model.n_head !== 0) {
    const heads = divisorAtMost(model.n_embd, model.n_head);
    check.error(['model', 'n_head'], `(${model.n_head}) must divide n_embd (${model.n_embd}); try ${heads}`, {
      title: `Set n_head to ${heads}`,
      path: ['model', 'n_head'],
      value: heads,
    });
  }
}

function checkStageNamesUnique(check: ConfigCheck): void {
  const { names } = check;
  names.forEach((name, index) => {
    if (names.indexOf(name) !== index)
      check.error(
        ['stages', index, check.written(['stages', index, 'name']) ? 'name' : 'type'],
        `two stages are called ${quote(name)}; give one a "name"`,
      );
  });
}

/** A reference naming an earlier stage must name one whose output it can use. */
function checkStageReference(check: ConfigCheck, reference: Reference, refPath: Path, target: number): void {
  const kind = check.config.stages[target].type;
  if (stageOutput[kind] !== reference.wants)
    check.error(
      refPath,
      `${quote(reference.value)} is a ${kind} stage, which writes no ${reference.wants}; ` +
        `${reference.key} needs a ${reference.kinds.join(' or ')} stage`,
    );
  else if (!reference.kinds.includes(kind))
    check.error(
      refPath,
      `${quote(reference.value)} is a ${kind} stage; ${reference.key} needs a ` +
        `${reference.kinds.join(' or ')} stage`,
    );
}

/** Not a stage: a path relative to the config file, which must exist when the stage starts. */
function checkPathReference(check: ConfigCheck, reference: Reference, refPath: Path, index: number): void {
  const { config, environment } = check;
  const defaulted = check.written(refPath) ? '' : ' (the default)';
  const earlier = check.names.slice(0, index).filter((name, i) => reference.kinds.includes(config.stages[i].type));
  const near = closestName(reference.value, earlier);
  const looksLikePath = /[\\/]/.test(reference.value) || reference.value.startsWith('.');
  const kind = environment?.kind(path.resolve(environment.configDir, reference.value));
  const wantedKind = reference.wants === 'checkpoint' ? 'folder' : 'file';
  if (kind === 'missing') {
    const choices =
      earlier.length > 0
        ? `earlier ${reference.kinds.join('/')} stages: ${earlier.map((name) => `"${name}"`).join(', ')}`
        : `no earlier ${reference.kinds.join('/')} stage`;
    const wantedThing = reference.wants === 'checkpoint' ? 'checkpoint folder' : 'preference file';
    const suggestion = near ? `; did you mean "${near}"?` : '';
    check.error(
      refPath,
      `${quote(reference.value)}${defaulted} is neither an earlier stage (${choices}) nor an existing ` +
        `${wantedThing}${suggestion}`,
      near ? { title: `Use stage "${near}"`, path: refPath, value: near } : undefined,
    );
  } else if (kind !== undefined && kind !== wantedKind) {
    const wanted = reference.wants === 'checkpoint' ? 'a checkpoint folder' : 'a preference file';
    check.error(
      refPath,
      `${quote(reference.value)}${defaulted} is ${kindWords[kind]}, not ${kindWords[wantedKind]}: name ` +
        `an earlier stage or ${wanted}`,
    );
  } else if (!environment && !looksLikePath && near) {
    check.warning(refPath, `${quote(reference.value)} is not a stage of this config; did you mean "${near}"?`, {
      title: `Use stage "${near}"`,
      path: refPath,
      value: near,
    });
  }
}

/** Each stage a stage reads from (its policy, reward model, preferences) runs before it, or is a path. */
function checkReferences(check: ConfigCheck, stage: StageConfig, index: number): void {
  const at: Path = ['stages', index];
  const { names } = check;
  const stageName = names[index];
  for (const reference of references(stage)) {
    const refPath = [...at, reference.key];
    const target = names.indexOf(reference.value);
    const defaulted = check.written(refPath) ? '' : ' (the default)';
    if (target === index) {
      check.error(refPath, `${quote(reference.value)}${defaulted} is this stage itself; name an earlier stage`);
    } else if (target > index) {
      check.error(
        refPath,
        `${quote(reference.value)}${defaulted} runs after this stage (stage ${target + 1} of ` +
          `${names.length}); move stage "${stageName}" below it, or name an earlier stage`,
      );
    } else if (target >= 0) {
      checkStageReference(check, reference, refPath, target);
    } else {
      checkPathReference(check, reference, refPath, index);
    }
  }
}

function checkSftStage(check: ConfigCheck, stage: SftStageConfig, index: number): void {
  const at: Path = ['stages', index];
  check.checkDataset([...at, 'dataset'], stage.dataset);
  if (stage.warmup_steps >= stage.max_steps) {
    const warmup = Math.floor(stage.max_steps / 10);
    check.error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
      title: `Set warmup_steps to ${warmup}`,
      path: [...at, 'warmup_steps'],
      value: warmup,
    });
  }
  if (stage.init_from !== 'scratch' && (check.written(['model']) || check.written(['tokenizer'])) && index === 0) {
    check.warning(
      [...at, 'init_from'],
      'starts from a checkpoint, whose model shape and tokenizer are used: the config\'s "model" and ' +
        '"tokenizer" are ignored',
    );
  }
}

function checkPreferencesStage(check: ConfigCheck, stage: PreferencesStageConfig, at: Path): void {
  check.checkDataset([...at, 'prompts'], stage.prompts);
  check.checkResponseLength(at, stage.max_new_tokens);
  if (stage.annotator === 'file' && stage.file === undefined)
    check.error([...at, 'annotator'], '"file" needs a "file": the preference file whose judgments to use');
  if (stage.annotator === 'file' && stage.file !== undefined)
    check.fileExists([...at, 'file'], stage.file, 'the preference file');
  if (stage.annotator === 'simulated' && stage.file !== undefined) {
    check.warning([...at, 'file'], 'is ignored: the annotator is "simulated"; set "annotator": "file" to use it', {
      title: 'Set annotator to "file"',
      path: [...at, 'annotator'],
      value: 'file',
    });
  }
}

/** PPO's batch arithmetic: minibatches divide the batch, at least one step, and a step left after critic warmup. */
function checkPpoSteps(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  if (stage.batch_size % stage.num_mini_batches !== 0) {
    const fitting = divisorAtMost(stage.batch_size, stage.num_mini_batches);
    check.error(
      [...at, 'num_mini_batches'],
      `(${stage.num_mini_batches}) must divide batch_size (${stage.batch_size}) so every minibatch has ` +
        `the same size; try ${fitting}`,
      { title: `Set num_mini_batches to ${fitting}`, path: [...at, 'num_mini_batches'], value: fitting },
    );
  }
  if (stage.total_episodes < stage.batch_size) {
    check.error(
      [...at, 'total_episodes'],
      `(${stage.total_episodes}) is less than batch_size (${stage.batch_size}): not even one PPO step`,
      {
        title: `Set total_episodes to ${stage.batch_size}`,
        path: [...at, 'total_episodes'],
        value: stage.batch_size,
      },
    );
  }
  const steps = Math.floor(stage.total_episodes / stage.batch_size);
  if (stage.critic_warmup_steps >= steps && steps > 0)
    check.error(
      [...at, 'critic_warmup_steps'],
      `(${stage.critic_warmup_steps}) covers all ${steps} steps: the policy would never be updated`,
    );
}

/** PPO's options that contradict each other, or apply only with another one on. */
function checkPpoOptions(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  if (stage.temperature === 0)
    check.error(
      [...at, 'temperature'],
      'must be > 0 for PPO: log-probabilities are computed at the sampling temperature',
      { title: 'Set temperature to 1', path: [...at, 'temperature'], value: 1 },
    );
  if (stage.use_score_norm && !stage.use_score_scaling) {
    check.error([...at, 'use_score_norm'], 'has no effect without use_score_scaling (normalising is part of scaling)', {
      title: 'Set use_score_scaling to true',
      path: [...at, 'use_score_scaling'],
      value: true,
    });
  }
  if (stage.adap_kl_ctrl && stage.init_kl_coef === 0)
    check.error(
      [...at, 'init_kl_coef'],
      'is 0 with adap_kl_ctrl: the adaptive controller multiplies β, so it would stay 0',
      { title: 'Set init_kl_coef to 0.05', path: [...at, 'init_kl_coef'], value: 0.05 },
    );
  for (const key of ['target', 'horizon'] as const) {
    if (!stage.adap_kl_ctrl && check.written([...at, key]))
      check.warning([...at, key], 'only applies with adap_kl_ctrl, which is off', {
        title: 'Set adap_kl_ctrl to true',
        path: [...at, 'adap_kl_ctrl'],
        value: true,
      });
  }
  if (!stage.early_stopping && check.written([...at, 'target_kl']))
    check.warning([...at, 'target_kl'], 'only applies with early_stopping, which is off', {
      title: 'Set early_stopping to true',
      path: [...at, 'early_stopping'],
      value: true,
    });
  if (stage.missing_eos_penalty !== undefined && stage.stop_token === 'none') {
    check.error(
      [...at, 'missing_eos_penalty'],
      'contradicts "stop_token": "none": no response ends at EOS, so every score would be penalised',
      { title: 'Set stop_token to "eos"', path: [...at, 'stop_token'], value: 'eos' },
    );
  }
}

function checkPpoStage(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  check.checkDataset([...at, 'prompts'], stage.prompts);
  check.checkResponseLength(at, stage.max_new_tokens);
  checkPpoSteps(check, stage, at);
  checkPpoOptions(check, stage, at);
  if (stage.ptx_dataset !== undefined) {
    check.checkDataset([...at, 'ptx_dataset'], stage.ptx_dataset);
    if (stage.ptx_coef === 0) check.warning([...at, 'ptx_dataset'], 'is unused: ptx_coef is 0');
  }
}

function checkDpoStage(check: ConfigCheck, stage: DpoStageConfig, at: Path): void {
  if (stage.label_smoothing > 0 && stage.loss_type !== 'sigmoid') {
    check.error(
      [...at, 'label_smoothing'],
      `applies only to "loss_type": "sigmoid" (conservative DPO), not "${stage.loss_type}"`,
      { title: 'Set label_smoothing to 0', path: [...at, 'label_smoothing'], value: 0 },
    );
  }
  if (stage.max_steps !== undefined && check.written([...at, 'num_train_epochs']))
    check.warning([...at, 'num_train_epochs'], 'is ignored: max_steps is set and overrides it');
  if (stage.max_steps !== undefined && stage.warmup_steps >= stage.max_steps) {
    const warmup = Math.floor(stage.max_steps / 10);
    check.error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
      title: `Set warmup_steps to ${warmup}`,
      path: [...at, 'warmup_steps'],
      value: warmup,
    });
  }
  check.checkResponseLength(at, stage.max_new_tokens);
}

/** The checks of one stage's own settings, by its type (a reward stage has none beyond its schema). */
function checkStageSettings(check: ConfigCheck, stage: StageConfig, index: number): void {
  const at: Path = ['stages', index];
  switch (stage.type) {
    case 'sft':
      checkSftStage(check, stage, index);
      break;
    case 'preferences':
      checkPreferencesStage(check, stage, at);
      break;
    case 'reward':
      break;
    case 'ppo':
      checkPpoStage(check, stage, at);
      break;
    case 'dpo':
      checkDpoStage(check, stage, at);
      break;
  }
}

export function semanticProblems(config: RunConfig, raw: unknown, environment?: CheckEnvironment): SemanticProblem[] {
  const check = new ConfigCheck(config, raw, environment);
  checkModelShape(check);
  checkStageNamesUnique(check);
  config.stages.forEach((stage, index) => {
    checkReferences(check, stage, index);
    checkStageSettings(check, stage, index);
  });
  return check.problems;
}
