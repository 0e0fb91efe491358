/**
 * The run config's checks of where its model comes from: a `model.from` Hugging Face folder (config.json of an
 * architecture the lens loads, tokenizer.json, no shape fields that would be ignored), `"chat_template": true` on a
 * dataset, prompts or preference file (a model whose tokenizer has a template), and each stage's `lora` block
 * (target_modules that name layers of the model: the folder's, or the lens's own GPT, which has GPT-2's names).
 */
import * as path from 'node:path';
import type { ConfigCheck, Path } from './configProblems';
import {
  folderHasChatTemplate,
  hfChatTemplateFile,
  hfLinearModuleNames,
  hfTokenizerConfigFile,
  hfTokenizerFile,
  matchesModule,
  readHfModelFolder,
  type HfModelFolderSummary,
  type HfModelTypeName,
} from './hfModelFolder';
import type { LoraConfig, ModelConfig, StageConfig } from './runConfig';
import { clip, quote } from './userError';

/** Shape fields of our own GPT that a model folder's config.json replaces (block_size still caps the context). */
const ignoredShapeFields = ['n_layer', 'n_head', 'n_embd', 'dropout'] as const satisfies readonly (keyof ModelConfig)[];

/** The model.from folder read through the environment; undefined when it is not set, missing or not checkable. */
export function checkModelFolder(check: ConfigCheck): HfModelFolderSummary | undefined {
  const { model } = check.config;
  if (model.from === undefined) return undefined;
  const at: Path = ['model', 'from'];
  for (const field of ignoredShapeFields)
    if (check.written(['model', field]))
      check.warning(
        ['model', field],
        'is ignored: "from" names a model folder, whose config.json gives the shape (only block_size applies, ' +
          'capping the context)',
      );
  if (check.written(['tokenizer']))
    check.warning(['tokenizer'], 'is ignored: the model folder of "model.from" brings its own tokenizer');
  const summary = readFolder(check, model.from, at);
  if (summary === undefined) return undefined;
  if (!summary.hasTokenizer)
    check.error(at, `${quote(model.from)} has no ${hfTokenizerFile}: the lens needs the model's own tokenizer`);
  // Only a block_size written: the default is capped at the folder's context by the loader.
  const blockSizeWritten = check.written(['model', 'block_size']);
  if (blockSizeWritten && summary.maxPositions !== undefined && model.block_size > summary.maxPositions) {
    const message =
      `(${model.block_size}) is longer than the context the ${summary.modelType} model in "from" was built for ` +
      `(${summary.maxPositions})`;
    const fix = {
      title: `Set block_size to ${summary.maxPositions}`,
      path: ['model', 'block_size'],
      value: summary.maxPositions,
    };
    // GPT-2's positions are learned: there is no embedding past the last; rotary positions only degrade.
    if (summary.modelType === 'gpt2') check.error(['model', 'block_size'], message, fix);
    else check.warning(['model', 'block_size'], `${message}; text past it may degrade`, fix);
  }
  return summary;
}

/** A folder the config names, read as a model folder; problems are reported at `at`. */
function readFolder(check: ConfigCheck, relative: string, at: Path): HfModelFolderSummary | undefined {
  const { environment } = check;
  if (!environment) return undefined;
  const folder = path.resolve(environment.configDir, relative);
  const kind = environment.kind(folder);
  if (kind === 'missing') {
    check.error(at, `the model folder ${quote(relative)} does not exist (looked for ${clip(folder)})`);
    return undefined;
  }
  if (kind !== 'folder') {
    check.error(at, `${quote(relative)} is not a folder (${clip(folder)}): name the model folder itself`);
    return undefined;
  }
  if (!environment.readText) return undefined;
  const { readText, kind: kindOf } = environment;
  const read = readHfModelFolder(folder, { readText, isFile: (file) => kindOf(file) === 'file' });
  if ('problem' in read) {
    check.error(at, `${quote(relative)}: ${read.problem}`);
    return undefined;
  }
  return read.summary;
}

/** Every `chat_template` of a stage: its dataset, prompts, PPO-ptx data and preference file. */
function chatTemplatePaths(stage: StageConfig, at: Path): Path[] {
  const paths: Path[] = [];
  const add = (source: { source: string; chat_template?: boolean } | undefined, key: string) => {
    if (source?.source === 'jsonl' && source.chat_template === true) paths.push([...at, key, 'chat_template']);
  };
  if (stage.type === 'sft') add(stage.dataset, 'dataset');
  if (stage.type === 'preferences') {
    add(stage.prompts, 'prompts');
    if (stage.chat_template === true) paths.push([...at, 'chat_template']);
  }
  if (stage.type === 'ppo') {
    add(stage.prompts, 'prompts');
    add(stage.ptx_dataset, 'ptx_dataset');
  }
  return paths;
}

/**
 * The folder a stage's model comes from when it names one by path (init_from, policy) rather than an earlier stage:
 * a saved checkpoint, which carries its tokenizer. Undefined when it names a stage or "scratch".
 */
function referencedFolder(check: ConfigCheck, stage: StageConfig): string | undefined {
  const reference =
    stage.type === 'sft' ? stage.init_from : stage.type === 'preferences' || stage.type === 'ppo' ? stage.policy : '';
  if (reference === '' || reference === 'scratch' || check.names.includes(reference)) return undefined;
  return reference;
}

/**
 * `"chat_template": true` needs a model whose tokenizer has one: the run's model.from folder, or the checkpoint
 * folder the stage starts from.
 */
export function checkChatTemplates(
  check: ConfigCheck,
  stage: StageConfig,
  index: number,
  folder: HfModelFolderSummary | undefined,
): void {
  const from = check.config.model.from;
  const referenced = referencedFolder(check, stage);
  const { environment } = check;
  for (const at of chatTemplatePaths(stage, ['stages', index])) {
    const remove = { title: 'Remove "chat_template"', path: at, value: undefined };
    if (referenced !== undefined) {
      if (!environment?.readText) continue;
      const absolute = path.resolve(environment.configDir, referenced);
      const files = { readText: environment.readText, isFile: (file: string) => environment.kind(file) === 'file' };
      // A folder that is not there is reported by the reference checks.
      if (environment.kind(absolute) === 'folder' && !folderHasChatTemplate(absolute, files))
        check.error(
          at,
          `needs a chat template, and the folder ${quote(referenced)} this stage starts from has none`,
          remove,
        );
    } else if (from === undefined)
      check.error(
        at,
        'needs a model with a chat template, and the lens\'s own GPT has none: set "model": {"from": "<model ' +
          'folder>"}, or remove "chat_template"',
        remove,
      );
    else if (folder !== undefined && !folder.hasChatTemplate)
      check.error(
        at,
        `needs a chat template, and the model folder ${quote(from)} has none (no "chat_template" in its ` +
          `${hfTokenizerConfigFile}, no ${hfChatTemplateFile}): use an instruct model's folder, or remove ` +
          '"chat_template"',
        remove,
      );
  }
}

/**
 * A stage's lora.target_modules must each name a linear layer of the model (PEFT's suffix match), and
 * "all-linear" stands alone. The model is the folder of model.from, or the lens's own GPT (GPT-2's names).
 */
export function checkLora(
  check: ConfigCheck,
  stage: StageConfig,
  index: number,
  folder: HfModelFolderSummary | undefined,
): void {
  const lora: LoraConfig | undefined = stage.type === 'preferences' ? undefined : stage.lora;
  if (lora?.target_modules === undefined) return;
  // A model folder that could not be read has been reported already; its layers are unknown.
  if (check.config.model.from !== undefined && folder === undefined) return;
  const modelType: HfModelTypeName = folder?.modelType ?? 'gpt2';
  const what = folder === undefined ? "the lens's own GPT (GPT-2's layer names)" : `this ${modelType} model`;
  const modules = hfLinearModuleNames(modelType, folder?.numLayers ?? check.config.model.n_layer);
  const at: Path = ['stages', index, 'lora', 'target_modules'];
  const entries = lora.target_modules;
  if (entries.includes('all-linear') && entries.length > 1) {
    check.error(at, '"all-linear" already names every linear layer: give it alone, or list layers without it', {
      title: 'Use ["all-linear"]',
      path: at,
      value: ['all-linear'],
    });
    return;
  }
  const names = [...new Set(modules.map((module) => module.split('.').slice(-1)[0]))];
  entries.forEach((entry, entryIndex) => {
    if (entry === 'all-linear' || modules.some((module) => matchesModule(module, entry))) return;
    check.error(
      [...at, entryIndex],
      `${quote(entry)} matches no linear layer of ${what}; its layers: ${names.join(', ')}`,
    );
  });
}
