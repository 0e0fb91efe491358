/**
 * The trainer's tokenizers behind one interface: GPT-2 style byte-level BPE trained here (saved as a Hugging Face
 * tokenizer.json), or a Hugging Face model folder's own tokenizer.
 */
export type { Tokenizer } from './tokenizer';
export { HfTokenizerAdapter, hfTokenizerFiles } from './hfTokenizerAdapter';
export { BpeTokenizer, SPECIAL_TOKENS, type BpeModel, type TokenizerJson } from './bpeTokenizer';
export { BASE_VOCAB_SIZE, trainBpe, type BpeTrainOptions } from './bpeTrainer';
export {
  BYTE_TO_CHAR,
  CHAR_TO_BYTE,
  byteLevelToBytes,
  bytesToByteLevel,
  splitWords,
  utf8Decode,
  utf8Encode,
} from './byteLevel';
