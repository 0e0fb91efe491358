/**
 * What stages need of a tokenizer, whichever kind a model has: our byte-level BPE (trained from the SFT data,
 * bpeTokenizer.ts) or a Hugging Face model folder's own (hfTokenizerAdapter.ts over @huggingface/tokenizers).
 */
export interface Tokenizer {
  /** The token right-padded batches are filled with (never trained on: the mask is 0 there). */
  readonly padId: number;
  /**
   * The token a prompt starts with, or undefined for models trained without one (Qwen2). Code that builds a
   * prompt asks `encode(text, { bos: true })`, which adds it only when there is one; nothing else reads it.
   */
  readonly bosId: number | undefined;
  /** The token that ends a response (the first, when a model's config.json lists several). */
  readonly eosId: number;
  /** Ids run from 0 to vocabSize − 1 (a model may have more embedding rows; never fewer). */
  readonly vocabSize: number;
  /**
   * Token ids of `text`; BOS (when the model has one) and EOS added only when asked for. Our BPE never reads a
   * special token from text; a Hugging Face tokenizer does, as transformers does (chat templates spell them).
   */
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** One token's text for per-token views. */
  tokenText(id: number): string;
  isSpecial(id: number): boolean;
  /** Writes the tokenizer's files into a checkpoint folder, as transformers reads them. */
  save(dir: string, options?: { modelMaxLength?: number }): Promise<void>;
}
