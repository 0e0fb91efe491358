/**
 * What the host needs to know of a Hugging Face model folder before any run starts (the editor's checks, New Run):
 * its config.json `model_type`, the layers LoRA can adapt, its context length, its tokenizer files and whether it
 * has a chat template. Read through the caller's `readText` (no trainer code and no tensors here; the trainer's
 * readHfConfig reads the whole architecture when a stage loads the folder). test/unit/hfConfigChecks.test.ts holds
 * these lists equal to the trainer's (supportedModelTypes, linearModules).
 */
import { isRecord } from './isRecord';
import { quote } from './userError';

/** The config.json model types the trainer loads (src/trainer/hf/hfArchitecture.ts supportedModelTypes). */
export const hfModelTypes = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;
export type HfModelTypeName = (typeof hfModelTypes)[number];

export const hfConfigFile = 'config.json';
export const hfTokenizerFile = 'tokenizer.json';
export const hfTokenizerConfigFile = 'tokenizer_config.json';
export const hfChatTemplateFile = 'chat_template.jinja';

/** Reads a file's text; undefined when there is no such file. */
export type ReadText = (absolutePath: string) => string | undefined;

/** How a model folder is looked at: small JSON files read, large ones (tokenizer.json) only looked for. */
export interface FolderFiles {
  readonly readText: ReadText;
  readonly isFile: (absolutePath: string) => boolean;
}

export interface HfModelFolderSummary {
  readonly modelType: HfModelTypeName;
  readonly numLayers: number;
  /** The longest context it was built for (n_positions / max_position_embeddings); undefined when not said. */
  readonly maxPositions: number | undefined;
  readonly hasTokenizer: boolean;
  readonly hasChatTemplate: boolean;
}

/** The summary, or what is wrong with the folder as one sentence naming the file (and field) at fault. */
export type HfModelFolderRead = { summary: HfModelFolderSummary } | { problem: string };

/** transformers' defaults when config.json leaves the layer count out (GPT2Config, LlamaConfig). */
const defaultLayers: Record<HfModelTypeName, number> = { gpt2: 12, llama: 32, qwen2: 32, mistral: 32 };

export function readHfModelFolder(folder: string, files: FolderFiles): HfModelFolderRead {
  const { readText, isFile } = files;
  const join = (name: string) => `${folder.replace(/[\\/]+$/, '')}/${name}`;
  const configPath = join(hfConfigFile);
  const configText = readText(configPath);
  if (configText === undefined)
    return { problem: `has no ${hfConfigFile} (looked for ${configPath}): not a Hugging Face model folder` };
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (error) {
    return { problem: `${configPath} is not valid JSON (${(error as Error).message})` };
  }
  if (!isRecord(config)) return { problem: `${configPath} must be a JSON object` };
  const modelType = config.model_type;
  if (typeof modelType !== 'string' || !(hfModelTypes as readonly string[]).includes(modelType))
    return {
      problem:
        `${configPath}: model_type ${quote(modelType)} is not an architecture the lens loads ` +
        `(supported: ${hfModelTypes.join(', ')})`,
    };
  const type = modelType as HfModelTypeName;
  const layersKey = type === 'gpt2' ? 'n_layer' : 'num_hidden_layers';
  const positionsKey = type === 'gpt2' ? 'n_positions' : 'max_position_embeddings';
  const numLayers = positiveInteger(config[layersKey]) ?? defaultLayers[type];
  const hasChatTemplate = folderHasChatTemplate(folder, files);
  return {
    summary: {
      modelType: type,
      numLayers,
      maxPositions: positiveInteger(config[positionsKey]),
      hasTokenizer: isFile(join(hfTokenizerFile)),
      hasChatTemplate,
    },
  };
}

/** Whether a folder's tokenizer has a chat template: chat_template.jinja, or tokenizer_config.json's chat_template. */
export function folderHasChatTemplate(folder: string, files: FolderFiles): boolean {
  const join = (name: string) => `${folder.replace(/[\\/]+$/, '')}/${name}`;
  if (files.isFile(join(hfChatTemplateFile))) return true;
  const tokenizerConfig = parseJsonObject(files.readText(join(hfTokenizerConfigFile)));
  return tokenizerConfig?.chat_template !== undefined && tokenizerConfig.chat_template !== null;
}

/**
 * The linear layers of a model's blocks by full module name, as PEFT and loraTargets.ts name them; `gpt2` is also
 * the layout of the lens's own GPT.
 */
export function hfLinearModuleNames(modelType: HfModelTypeName, numLayers: number): string[] {
  const [prefix, names] =
    modelType === 'gpt2'
      ? ['transformer.h', ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']]
      : [
          'model.layers',
          [
            'self_attn.q_proj',
            'self_attn.k_proj',
            'self_attn.v_proj',
            'self_attn.o_proj',
            'mlp.gate_proj',
            'mlp.up_proj',
            'mlp.down_proj',
          ],
        ];
  const modules: string[] = [];
  for (let layer = 0; layer < numLayers; layer++) for (const name of names) modules.push(`${prefix}.${layer}.${name}`);
  return modules;
}

/** PEFT's match of a target_modules entry: the module's name, or a suffix of it after a dot. */
export function matchesModule(module: string, entry: string): boolean {
  return module === entry || module.endsWith(`.${entry}`);
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
