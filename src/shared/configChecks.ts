/**
 * Checks of a run config that its schema cannot express: values that must agree with each other
 * (minibatches dividing the batch), references between stages (order, kind, spelling), files a
 * config names (datasets, preference files, checkpoints), and options that contradict each other.
 * Each problem sits at a path of the document, so an editor can underline it, and carries a fix
 * where one value is the obvious repair.
 */
import * as path from 'node:path';
import { editDistance, validate, type ConfigProblem } from './configSchema';
import {
  ConfigCheck,
  divisorAtMost,
  kindWords,
  type CheckEnvironment,
  type Path,
  type SemanticProblem,
} from './configProblems';
import { quote } from './userError';
import { runConfigSchema, type RunConfig, type StageConfig } from './runConfig';
import { sweepProblems } from './sweep';
import { checkStageSettings } from './stageSettingChecks';
import { checkChatTemplates, checkLora, checkModelFolder } from './modelChecks';

export type { CheckEnvironment, ConfigFix, PathKind, ProblemSeverity, SemanticProblem } from './configProblems';

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

function closestName(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function checkModelShape(check: ConfigCheck): void {
  const { model } = check.config;
  // A model folder's config.json gives the shape; the fields written here are ignored (modelChecks.ts warns).
  if (model.from === undefined && model.n_embd % model.n_head !== 0) {
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

export function semanticProblems(config: RunConfig, raw: unknown, environment?: CheckEnvironment): SemanticProblem[] {
  const check = new ConfigCheck(config, raw, environment);
  checkModelShape(check);
  const folder = checkModelFolder(check);
  checkStageNamesUnique(check);
  config.stages.forEach((stage, index) => {
    checkReferences(check, stage, index);
    checkStageSettings(check, stage, index);
    checkChatTemplates(check, stage, index, folder);
    checkLora(check, stage, index, folder);
  });
  const sweep = sweepProblems(config, raw, (element) => elementProblems(element, environment), check.problems);
  return [...check.problems, ...sweep.map((problem) => ({ ...problem, severity: 'error' as const }))];
}

/** The errors of one sweep element's config (sweep.ts): its schema's, else its semantic checks'. */
function elementProblems(raw: unknown, environment: CheckEnvironment | undefined): ConfigProblem[] {
  const { value, problems } = validate(runConfigSchema, raw);
  if (problems.length > 0) return problems;
  return semanticProblems(value as RunConfig, raw, environment).filter((problem) => problem.severity === 'error');
}
