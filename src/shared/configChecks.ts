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
import type { DatasetConfig, PromptsConfig, RunConfig, StageConfig } from './runConfig';

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

export function semanticProblems(config: RunConfig, raw: unknown, environment?: CheckEnvironment): SemanticProblem[] {
  const problems: SemanticProblem[] = [];
  const error = (at: Path, message: string, fix?: ConfigFix) =>
    problems.push({ path: at, message, severity: 'error', fix });
  const warning = (at: Path, message: string, fix?: ConfigFix) =>
    problems.push({ path: at, message, severity: 'warning', fix });

  const { model } = config;
  if (model.n_embd % model.n_head !== 0) {
    const heads = divisorAtMost(model.n_embd, model.n_head);
    error(['model', 'n_head'], `(${model.n_head}) must divide n_embd (${model.n_embd}); try ${heads}`, {
      title: `Set n_head to ${heads}`,
      path: ['model', 'n_head'],
      value: heads,
    });
  }

  const names = config.stages.map((stage) => stage.name ?? stage.type);
  names.forEach((name, index) => {
    if (names.indexOf(name) !== index)
      error(
        ['stages', index, written(raw, ['stages', index, 'name']) ? 'name' : 'type'],
        `two stages are called ${quote(name)}; give one a "name"`,
      );
  });

  const fileExists = (at: Path, relative: string, what: string) => {
    if (!environment) return;
    const file = path.resolve(environment.configDir, relative);
    const kind = environment.kind(file);
    if (kind === 'missing') error(at, `${what} ${quote(relative)} does not exist (looked for ${clip(file)})`);
    // Caught here, before a run folder exists, rather than as EISDIR once the stage reads it.
    else if (kind !== 'file')
      error(at, `${what} ${quote(relative)} is ${kindWords[kind]}, not a file (${clip(file)}); name the file itself`);
  };
  const checkDataset = (at: Path, dataset: DatasetConfig | PromptsConfig) => {
    if (dataset.source === 'jsonl') fileExists([...at, 'path'], dataset.path, 'the JSONL file');
  };
  const checkResponseLength = (at: Path, maxNewTokens: number) => {
    if (maxNewTokens >= model.block_size) {
      const fitting = Math.max(1, Math.floor(model.block_size / 2));
      error(
        [...at, 'max_new_tokens'],
        `(${maxNewTokens}) leaves no room for the prompt in the model's context (block_size ${model.block_size})`,
        { title: `Set max_new_tokens to ${fitting}`, path: [...at, 'max_new_tokens'], value: fitting },
      );
    }
  };

  config.stages.forEach((stage, index) => {
    const at: Path = ['stages', index];
    const stageName = names[index];

    for (const reference of references(stage)) {
      const refPath = [...at, reference.key];
      const target = names.indexOf(reference.value);
      const defaulted = written(raw, refPath) ? '' : ' (the default)';
      if (target === index) {
        error(refPath, `${quote(reference.value)}${defaulted} is this stage itself; name an earlier stage`);
      } else if (target > index) {
        error(
          refPath,
          `${quote(reference.value)}${defaulted} runs after this stage (stage ${target + 1} of ` +
            `${names.length}); move stage "${stageName}" below it, or name an earlier stage`,
        );
      } else if (target >= 0) {
        const kind = config.stages[target].type;
        if (stageOutput[kind] !== reference.wants)
          error(
            refPath,
            `${quote(reference.value)} is a ${kind} stage, which writes no ${reference.wants}; ` +
              `${reference.key} needs a ${reference.kinds.join(' or ')} stage`,
          );
        else if (!reference.kinds.includes(kind))
          error(
            refPath,
            `${quote(reference.value)} is a ${kind} stage; ${reference.key} needs a ` +
              `${reference.kinds.join(' or ')} stage`,
          );
      } else {
        // Not a stage: a path relative to the config file, which must exist when the stage starts.
        const earlier = names.slice(0, index).filter((name, i) => reference.kinds.includes(config.stages[i].type));
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
          error(
            refPath,
            `${quote(reference.value)}${defaulted} is neither an earlier stage (${choices}) nor an existing ` +
              `${wantedThing}${suggestion}`,
            near ? { title: `Use stage "${near}"`, path: refPath, value: near } : undefined,
          );
        } else if (kind !== undefined && kind !== wantedKind) {
          const wanted = reference.wants === 'checkpoint' ? 'a checkpoint folder' : 'a preference file';
          error(
            refPath,
            `${quote(reference.value)}${defaulted} is ${kindWords[kind]}, not ${kindWords[wantedKind]}: name ` +
              `an earlier stage or ${wanted}`,
          );
        } else if (!environment && !looksLikePath && near) {
          warning(refPath, `${quote(reference.value)} is not a stage of this config; did you mean "${near}"?`, {
            title: `Use stage "${near}"`,
            path: refPath,
            value: near,
          });
        }
      }
    }

    switch (stage.type) {
      case 'sft':
        checkDataset([...at, 'dataset'], stage.dataset);
        if (stage.warmup_steps >= stage.max_steps) {
          const warmup = Math.floor(stage.max_steps / 10);
          error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
            title: `Set warmup_steps to ${warmup}`,
            path: [...at, 'warmup_steps'],
            value: warmup,
          });
        }
        if (stage.init_from !== 'scratch' && (written(raw, ['model']) || written(raw, ['tokenizer'])) && index === 0) {
          warning(
            [...at, 'init_from'],
            'starts from a checkpoint, whose model shape and tokenizer are used: the config\'s "model" and ' +
              '"tokenizer" are ignored',
          );
        }
        break;
      case 'preferences':
        checkDataset([...at, 'prompts'], stage.prompts);
        checkResponseLength(at, stage.max_new_tokens);
        if (stage.annotator === 'file' && stage.file === undefined)
          error([...at, 'annotator'], '"file" needs a "file": the preference file whose judgments to use');
        if (stage.annotator === 'file' && stage.file !== undefined)
          fileExists([...at, 'file'], stage.file, 'the preference file');
        if (stage.annotator === 'simulated' && stage.file !== undefined) {
          warning([...at, 'file'], 'is ignored: the annotator is "simulated"; set "annotator": "file" to use it', {
            title: 'Set annotator to "file"',
            path: [...at, 'annotator'],
            value: 'file',
          });
        }
        break;
      case 'reward':
        break;
      case 'ppo': {
        checkDataset([...at, 'prompts'], stage.prompts);
        checkResponseLength(at, stage.max_new_tokens);
        if (stage.batch_size % stage.num_mini_batches !== 0) {
          const fitting = divisorAtMost(stage.batch_size, stage.num_mini_batches);
          error(
            [...at, 'num_mini_batches'],
            `(${stage.num_mini_batches}) must divide batch_size (${stage.batch_size}) so every minibatch has ` +
              `the same size; try ${fitting}`,
            { title: `Set num_mini_batches to ${fitting}`, path: [...at, 'num_mini_batches'], value: fitting },
          );
        }
        if (stage.total_episodes < stage.batch_size) {
          error(
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
          error(
            [...at, 'critic_warmup_steps'],
            `(${stage.critic_warmup_steps}) covers all ${steps} steps: the policy would never be updated`,
          );
        if (stage.temperature === 0)
          error(
            [...at, 'temperature'],
            'must be > 0 for PPO: log-probabilities are computed at the sampling temperature',
            { title: 'Set temperature to 1', path: [...at, 'temperature'], value: 1 },
          );
        if (stage.use_score_norm && !stage.use_score_scaling) {
          error([...at, 'use_score_norm'], 'has no effect without use_score_scaling (normalising is part of scaling)', {
            title: 'Set use_score_scaling to true',
            path: [...at, 'use_score_scaling'],
            value: true,
          });
        }
        if (stage.adap_kl_ctrl && stage.init_kl_coef === 0)
          error(
            [...at, 'init_kl_coef'],
            'is 0 with adap_kl_ctrl: the adaptive controller multiplies β, so it would stay 0',
            { title: 'Set init_kl_coef to 0.05', path: [...at, 'init_kl_coef'], value: 0.05 },
          );
        for (const key of ['target', 'horizon'] as const) {
          if (!stage.adap_kl_ctrl && written(raw, [...at, key]))
            warning([...at, key], 'only applies with adap_kl_ctrl, which is off', {
              title: 'Set adap_kl_ctrl to true',
              path: [...at, 'adap_kl_ctrl'],
              value: true,
            });
        }
        if (!stage.early_stopping && written(raw, [...at, 'target_kl']))
          warning([...at, 'target_kl'], 'only applies with early_stopping, which is off', {
            title: 'Set early_stopping to true',
            path: [...at, 'early_stopping'],
            value: true,
          });
        if (stage.missing_eos_penalty !== undefined && stage.stop_token === 'none') {
          error(
            [...at, 'missing_eos_penalty'],
            'contradicts "stop_token": "none": no response ends at EOS, so every score would be penalised',
            { title: 'Set stop_token to "eos"', path: [...at, 'stop_token'], value: 'eos' },
          );
        }
        if (stage.ptx_dataset !== undefined) {
          checkDataset([...at, 'ptx_dataset'], stage.ptx_dataset);
          if (stage.ptx_coef === 0) warning([...at, 'ptx_dataset'], 'is unused: ptx_coef is 0');
        }
        break;
      }
      case 'dpo':
        if (stage.label_smoothing > 0 && stage.loss_type !== 'sigmoid') {
          error(
            [...at, 'label_smoothing'],
            `applies only to "loss_type": "sigmoid" (conservative DPO), not "${stage.loss_type}"`,
            { title: 'Set label_smoothing to 0', path: [...at, 'label_smoothing'], value: 0 },
          );
        }
        if (stage.max_steps !== undefined && written(raw, [...at, 'num_train_epochs']))
          warning([...at, 'num_train_epochs'], 'is ignored: max_steps is set and overrides it');
        if (stage.max_steps !== undefined && stage.warmup_steps >= stage.max_steps) {
          const warmup = Math.floor(stage.max_steps / 10);
          error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
            title: `Set warmup_steps to ${warmup}`,
            path: [...at, 'warmup_steps'],
            value: warmup,
          });
        }
        checkResponseLength(at, stage.max_new_tokens);
        break;
    }
  });
  return problems;
}
