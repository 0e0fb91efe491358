/**
 * Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with
 * Subword Units"; byte-level as in GPT-2): start from the 256 bytes and repeatedly merge the most
 * frequent adjacent pair of tokens into a new token, counting pairs inside pre-tokenized words only.
 * Pair counts are updated incrementally, only in the words that hold the merged pair, as Hugging
 * Face tokenizers' `BpeTrainer` does, so each merge costs the words it touches, not the corpus.
 */
import { type BpeModel, SPECIAL_TOKENS } from './bpeTokenizer';
import { BYTE_TO_CHAR, splitWords, utf8Encode } from './byteLevel';

export interface BpeTrainOptions {
  /**
   * Final vocabulary size: 3 specials + 256 bytes + one token per merge. An upper bound: training stops early when no
   * pair is frequent enough.
   */
  vocabSize: number;
  /**
   * A pair must occur at least this many times in the corpus to be merged. Default 2: a pair seen once only memorises
   * that one spot.
   */
  minFrequency?: number;
}

/** 3 specials + 256 byte tokens: the smallest vocabulary that can encode every string. */
export const BASE_VOCAB_SIZE = Object.keys(SPECIAL_TOKENS).length + 256;

// A pair (left, right) is packed into one number, left * KEY_BASE + right: exact in a double while
// ids stay below 2^21, and numeric order on keys is lexicographic order on pairs (the tie-break).
const KEY_BASE = 2 ** 21;
const pairKey = (left: number, right: number): number => left * KEY_BASE + right;

/**
 * Trains a byte-level BPE on `corpus` (documents or lines; merges never cross a pre-token, so how
 * the text is cut into strings barely matters). Deterministic: equal counts go to the smaller
 * (left id, right id), so the result does not depend on the order of the corpus either.
 */
export function trainBpe(corpus: Iterable<string>, options: BpeTrainOptions): BpeModel {
  const { vocabSize, minFrequency = 2 } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < BASE_VOCAB_SIZE || vocabSize >= KEY_BASE) {
    throw new RangeError(
      `vocabSize must be an integer from ${BASE_VOCAB_SIZE} (specials and bytes) to ${KEY_BASE - 1}; got ${vocabSize}.`,
    );
  }

  // 1. Vocabulary starts as the specials, then byte b as id 3 + b.
  const vocab: string[] = [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.bos, SPECIAL_TOKENS.eos, ...BYTE_TO_CHAR];
  const idOf = new Map<string, number>(BYTE_TO_CHAR.map((char, byte) => [char, BASE_VOCAB_SIZE - 256 + byte]));
  const merges: [number, number][] = [];

  // 2. Pre-tokenize and count distinct words; BPE works on (word, count), never on the raw corpus.
  const wordCounts = new Map<string, number>();
  for (const text of corpus) {
    for (const word of splitWords(text)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push(Array.from(utf8Encode(word), (byte) => BASE_VOCAB_SIZE - 256 + byte));
    counts.push(count);
  }

  // 3. Count every adjacent pair, weighted by word count, and remember which words hold it.
  const pairCounts = new Map<number, number>();
  const wordsWith = new Map<number, Set<number>>();
  const bump = (key: number, delta: number, word: number): void => {
    const count = (pairCounts.get(key) ?? 0) + delta;
    if (count === 0) pairCounts.delete(key);
    else pairCounts.set(key, count);
    if (delta > 0) {
      let holders = wordsWith.get(key);
      if (holders === undefined) wordsWith.set(key, (holders = new Set()));
      holders.add(word);
    }
  };
  for (let w = 0; w < words.length; w++) {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) bump(pairKey(symbols[i], symbols[i + 1]), counts[w], w);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  // 4. Merge the most frequent pair until the vocabulary is full.
  const merged = new Set<number>();
  while (vocab.length < vocabSize) {
    const key = popMostFrequent(heap, pairCounts, merged);
    if (key === undefined || (pairCounts.get(key) ?? 0) < minFrequency) break;
    const left = Math.floor(key / KEY_BASE);
    const right = key - left * KEY_BASE;
    const text = vocab[left] + vocab[right];
    // Two merge paths can spell the same bytes ((ab, c) and (a, bc)); like Hugging Face's trainer,
    // both rules map to one id, because tokenizer.json's vocab is keyed by the token's text.
    let id = idOf.get(text);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(text);
      idOf.set(text, id);
    }
    merges.push([left, right]);
    merged.add(key);

    const changed = new Set<number>();
    for (const w of wordsWith.get(key) ?? []) mergeInWord(w, left, right, id, changed);
    wordsWith.delete(key);
    // Pairs that lost occurrences keep a stale, too-high heap entry that popMostFrequent corrects;
    // pairs that gained (all of them next to the new token) get a fresh entry here.
    for (const changedKey of changed) {
      const count = pairCounts.get(changedKey);
      if (count !== undefined) heap.push(count, changedKey);
    }
  }
  return { vocab, merges };

  /** Replaces each (left, right) in one word with `id`, left to right, and moves the pair counts. */
  function mergeInWord(w: number, left: number, right: number, id: number, changed: Set<number>): void {
    const symbols = words[w];
    const count = counts[w];
    let out = 0; // compacts in place: out <= i throughout
    for (let i = 0; i < symbols.length;) {
      if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
        // x [left right] y  →  x [id] y: lose (x,left), (left,right), (right,y); gain (x,id), (id,y).
        // x is read from the output, so in "a b a b" the second merge sees the first one's token.
        bump(pairKey(left, right), -count, w);
        if (out > 0) {
          const x = symbols[out - 1];
          bump(pairKey(x, left), -count, w);
          bump(pairKey(x, id), count, w);
          changed.add(pairKey(x, id));
        }
        if (i + 2 < symbols.length) {
          const y = symbols[i + 2];
          bump(pairKey(right, y), -count, w);
          bump(pairKey(id, y), count, w);
          changed.add(pairKey(id, y));
        }
        symbols[out++] = id;
        i += 2;
      } else {
        symbols[out++] = symbols[i++];
      }
    }
    symbols.length = out;
  }
}

/**
 * Pops heap entries until one is current, and returns its pair. Entries go stale only downwards
 * (a pair not touching the new token can only lose occurrences), so the first entry whose count
 * is current is the true maximum; a stale one is pushed back with its current count.
 */
function popMostFrequent(
  heap: PairHeap,
  pairCounts: ReadonlyMap<number, number>,
  merged: ReadonlySet<number>,
): number | undefined {
  for (let top = heap.pop(); top !== undefined; top = heap.pop()) {
    const current = pairCounts.get(top.key);
    // A merged pair can only reappear when a later merge reused an existing token's id; its rule
    // already exists, so it is never merged twice.
    if (current === undefined || merged.has(top.key)) continue;
    if (current === top.count) return top.key;
    heap.push(current, top.key);
  }
  return undefined;
}

/** Binary max-heap of (count, pair key): highest count first, then the smaller pair, so training is deterministic. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } | undefined {
    if (this.counts.length === 0) return undefined;
    const top = { count: this.counts[0], key: this.keys[0] };
    const last = this.counts.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
