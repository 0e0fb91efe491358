/** Hugging Face model folders: config.json, safetensors weights (single or sharded), tokenizer and chat template. */
export * from './hfArchitecture';
export { configFileName, parseHfConfig, readHfConfig } from './hfConfig';
export { basePrefix, expectedHfTensors, isUnusedHfTensor, lmHeadName, type HfTensorSpec } from './hfTensorNames';
export { openHfWeights, shardIndexFile, singleWeightsFile, type HfWeights } from './hfWeights';
export {
  chatTemplateFile,
  loadHfTokenizer,
  tokenizerConfigFile,
  tokenizerFile,
  type HfTokenizer,
  type SpecialTokenKey,
} from './hfTokenizer';
export { defaultTemplateName, type ChatMessage, type FormatChatOptions } from './chatTemplate';
export { hfParameterCount, openHfModelFolder, type HfModelFolder } from './hfModelFolder';
