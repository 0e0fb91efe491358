/**
 * The true objective of the demo task: how positive a text is, in [-1, 1]. Every demo RLHF run asks
 * "did PPO raise this?", so it is a fixed, deterministic function of the text — a lexicon scorer in the
 * spirit of VADER (Hutto & Gilbert 2014) and SO-CAL (Taboada et al. 2011), with its lexicon drawn from
 * the review grammar (`reviews.ts`) plus common review words, and guards against the ways a policy
 * hacks such a scorer (repetition, word salad). It reads any text; words it does not know count 0.
 *
 * Rules, in the order they apply:
 *  1. Tokens: lowercase words (`’` read as `'`, so "isn't" is one token); `. ! ? ; :` end a sentence,
 *     `,` ends a clause. Digits and other symbols are ignored.
 *  2. Lexicon: a sentiment word has a valence v in [-1, 1] (great 0.8, fine 0.15, dragged -0.5, …).
 *  3. Intensifiers scale the next sentiment word within 2 tokens ("really great" = 0.8 × 1.5,
 *     "a bit slow" = -0.4 × 0.5). Stacked ones do not multiply: the last one counts.
 *  4. Negation (not, never, no, nothing, without, hardly, …n't) flips the first sentiment word within
 *     the next 3 tokens of its clause, asymmetrically, as people mean it: positive v → -0.7 v ("not
 *     good" = -0.42), negative v → -0.4 v ("not bad" = +0.24, "never boring" = +0.24). A negated word
 *     ignores its intensifier ("not very good" reads as "not good").
 *  5. Contrast: "but"/"however" halve what came before in the sentence (the sentence before, when
 *     they open one) and weigh what follows ×1.5;
 *     a concessive clause ("although …,", "though …", "despite …") weighs ×0.5 until its comma.
 *  6. Summary: "overall"/"ultimately" weighs the rest of its sentence ×1.5.
 *  7. Saturation: the k-th use (k = 0, 1, …) of the same sentiment word counts 0.5^k, so repeating a
 *     word adds at most twice what it adds once.
 *  8. The weighted sum s becomes tanh(s / 1.2): one "great" ≈ 0.58, a glowing review ≈ 0.9.
 *  9. Well-formedness multiplies the result, so degenerate text scores near 0 whatever its words:
 *     - repetition r = the larger of the rate of immediately repeated words and the rate of repeated
 *       word trigrams: × clamp(1 - 2.5 (r - 0.1), 0, 1) ("great great great" → 0);
 *     - sentiment density d = sentiment words / words (4+ words): above 0.5, × max(0.2, 1 - 1.6 (d - 0.5))
 *       ("amazing superb excellent wonderful" is not a review);
 *     - gibberish g = share of tokens that cannot be English words (no vowel, 5+ consonants in a row,
 *       a letter 3× in a row, over 20 letters): × max(0, 1 - 1.5 g).
 *     Text with no sentiment words scores 0.
 */

type Entry =
  | { readonly kind: 'word'; readonly value: number }
  | { readonly kind: 'intensifier'; readonly factor: number }
  | { readonly kind: 'negator' | 'contrast' | 'concession' | 'summary' };

const valences: Record<string, number> = {
  // Positive, general.
  great: 0.8,
  excellent: 0.9,
  wonderful: 0.85,
  fantastic: 0.9,
  amazing: 0.9,
  superb: 0.9,
  brilliant: 0.9,
  outstanding: 0.9,
  terrific: 0.85,
  perfect: 0.9,
  perfectly: 0.8,
  flawless: 0.85,
  best: 0.8,
  good: 0.6,
  nice: 0.5,
  solid: 0.5,
  decent: 0.3,
  fine: 0.15,
  okay: 0.1,
  ok: 0.1,
  alright: 0.15,
  acceptable: 0.2,
  lovely: 0.7,
  beautiful: 0.8,
  gorgeous: 0.8,
  stunning: 0.9,
  impressive: 0.7,
  memorable: 0.6,
  enjoyable: 0.6,
  fun: 0.6,
  charming: 0.6,
  delightful: 0.8,
  pleasant: 0.5,
  special: 0.4,
  joy: 0.7,
  love: 0.8,
  loved: 0.8,
  loves: 0.8,
  enjoy: 0.6,
  enjoyed: 0.7,
  liked: 0.5,
  recommend: 0.6,
  recommended: 0.6,
  happy: 0.6,
  pleased: 0.6,
  impressed: 0.7,
  favorite: 0.7,
  favourite: 0.7,
  worth: 0.5,
  works: 0.3,
  worked: 0.3,
  sense: 0.3,
  bargain: 0.6,
  // Positive, as the grammar's aspects use them.
  gripping: 0.7,
  hooked: 0.7,
  clever: 0.6,
  convincing: 0.6,
  satisfying: 0.7,
  witty: 0.7,
  sharp: 0.5,
  funny: 0.5,
  elegant: 0.7,
  likeable: 0.5,
  likable: 0.5,
  brisk: 0.4,
  crisp: 0.6,
  rich: 0.5,
  clear: 0.5,
  punchy: 0.5,
  lasting: 0.4,
  comfortable: 0.6,
  snug: 0.4,
  powerful: 0.6,
  strong: 0.4,
  sturdy: 0.5,
  reliable: 0.6,
  easy: 0.5,
  responsive: 0.5,
  smooth: 0.4,
  spotless: 0.8,
  clean: 0.5,
  cozy: 0.6,
  friendly: 0.6,
  helpful: 0.6,
  attentive: 0.6,
  delicious: 0.8,
  tasty: 0.7,
  fresh: 0.5,
  generous: 0.6,
  convenient: 0.5,
  bright: 0.5,
  affordable: 0.5,
  reasonable: 0.4,
  fair: 0.3,
  quick: 0.3,
  quiet: 0.3,
  // Negative, general.
  terrible: -0.9,
  awful: -0.9,
  horrible: -0.9,
  dreadful: -0.85,
  worst: -0.9,
  bad: -0.6,
  poor: -0.6,
  poorly: -0.6,
  lousy: -0.7,
  mediocre: -0.4,
  subpar: -0.5,
  weak: -0.5,
  disappointing: -0.7,
  disappointed: -0.7,
  underwhelming: -0.5,
  average: -0.05,
  boring: -0.6,
  dull: -0.5,
  tedious: -0.6,
  annoying: -0.6,
  frustrating: -0.6,
  useless: -0.8,
  waste: -0.7,
  regret: -0.7,
  hate: -0.8,
  hated: -0.8,
  disliked: -0.5,
  mess: -0.6,
  problem: -0.4,
  problems: -0.4,
  issues: -0.3,
  complaints: -0.4,
  unfortunately: -0.3,
  sadly: -0.3,
  // Negative, as the grammar's aspects use them.
  dragged: -0.5,
  drags: -0.5,
  predictable: -0.4,
  forgettable: -0.5,
  confusing: -0.5,
  wooden: -0.6,
  stiff: -0.4,
  flat: -0.5,
  rushed: -0.5,
  clunky: -0.5,
  forced: -0.4,
  clumsy: -0.5,
  dense: -0.3,
  bland: -0.5,
  muddy: -0.5,
  tinny: -0.5,
  crackles: -0.5,
  hurts: -0.6,
  uncomfortable: -0.6,
  flimsy: -0.6,
  cheap: -0.4,
  broke: -0.7,
  broken: -0.7,
  cracked: -0.6,
  leaks: -0.6,
  leaked: -0.6,
  overheats: -0.6,
  burned: -0.5,
  died: -0.6,
  dies: -0.6,
  drains: -0.5,
  noisy: -0.5,
  loud: -0.3,
  deafening: -0.6,
  dirty: -0.7,
  cramped: -0.5,
  rude: -0.7,
  unhelpful: -0.6,
  cold: -0.4,
  greasy: -0.5,
  tiny: -0.3,
  lumpy: -0.5,
  unreliable: -0.6,
  slow: -0.4,
  sluggish: -0.5,
  dim: -0.4,
  blurry: -0.5,
  grainy: -0.5,
  dated: -0.4,
  ugly: -0.7,
  steep: -0.4,
  overpriced: -0.6,
  expensive: -0.3,
};

const intensifiers: Record<string, number> = {
  really: 1.5,
  very: 1.5,
  so: 1.4,
  extremely: 1.8,
  incredibly: 1.8,
  truly: 1.5,
  absolutely: 1.7,
  super: 1.5,
  remarkably: 1.6,
  genuinely: 1.4,
  quite: 1.2,
  pretty: 1.2,
  too: 1.3,
  // Downtoners: "a bit" and "a little" reach here as "bit" and "little".
  slightly: 0.5,
  somewhat: 0.6,
  bit: 0.5,
  little: 0.5,
  fairly: 0.8,
  mostly: 0.8,
  kinda: 0.6,
};

const negators = [
  'not',
  'never',
  'no',
  'nothing',
  'none',
  'without',
  'hardly',
  'barely',
  'neither',
  'nor',
  'cannot',
  // Contractions typed without the apostrophe; those with one are caught by their "n't".
  'isnt',
  'wasnt',
  'werent',
  'arent',
  'dont',
  'doesnt',
  'didnt',
  'wont',
  'cant',
  'couldnt',
  'wouldnt',
  'hasnt',
  'havent',
  'aint',
];

const lexicon = new Map<string, Entry>([
  ...Object.entries(valences).map(([word, value]): [string, Entry] => [word, { kind: 'word', value }]),
  ...Object.entries(intensifiers).map(([word, factor]): [string, Entry] => [word, { kind: 'intensifier', factor }]),
  ...negators.map((word): [string, Entry] => [word, { kind: 'negator' }]),
  ...['but', 'however'].map((word): [string, Entry] => [word, { kind: 'contrast' }]),
  ...['although', 'though', 'despite'].map((word): [string, Entry] => [word, { kind: 'concession' }]),
  ...['overall', 'ultimately'].map((word): [string, Entry] => [word, { kind: 'summary' }]),
]);

const negationWindow = 3;
const intensifierWindow = 2;
/** Words and the punctuation that bounds sentences and clauses. */
const tokenPattern = /[a-z]+(?:'[a-z]+)*|[.!?;:,]/g;
const implausibleWord = /^[^aeiouy]{2,}$|[^aeiouy']{5,}|([a-z])\1\1/;
const shortWordsWithoutVowels = new Set([
  'hmm',
  'mm',
  'tv',
  'pc',
  'cd',
  'dvd',
  'mr',
  'mrs',
  'ms',
  'dr',
  'st',
  'nd',
  'rd',
  'th',
  'vs',
]);

export function sentimentScore(text: string): number {
  const words: string[] = [];
  const uses = new Map<string, number>();
  let gibberish = 0;
  let sentimentWords = 0;

  let total = 0; // Σ over finished sentences
  let sentence = 0; // Σ of the current sentence, already weighted
  let previousSentence = 0;
  let sentenceStart = true;
  let afterContrast = 1;
  let summary = 1;
  let concession = 1;
  let negationLeft = 0;
  let intensity = 1;
  let intensityLeft = 0;

  tokenPattern.lastIndex = 0;
  const lower = text.includes('’') ? text.toLowerCase().replace(/’/g, "'") : text.toLowerCase();
  for (let match = tokenPattern.exec(lower); match !== null; match = tokenPattern.exec(lower)) {
    const token = match[0];
    if (token.length === 1 && '.!?;:,'.includes(token)) {
      negationLeft = 0;
      intensityLeft = 0;
      concession = 1;
      if (token !== ',') {
        if (!sentenceStart) previousSentence = sentence;
        total += sentence;
        sentence = 0;
        sentenceStart = true;
        afterContrast = 1;
        summary = 1;
      }
      continue;
    }
    words.push(token);
    const atSentenceStart = sentenceStart;
    sentenceStart = false;
    const { entry, implausible } = lookUp(token);
    if (implausible) gibberish++;
    if (entry === undefined) {
      negationLeft = Math.max(0, negationLeft - 1);
      intensityLeft = Math.max(0, intensityLeft - 1);
      continue;
    }
    switch (entry.kind) {
      case 'word': {
        let value = entry.value;
        if (negationLeft > 0) value = value > 0 ? -0.7 * value : -0.4 * value;
        else if (intensityLeft > 0) value *= intensity;
        const used = uses.get(token) ?? 0;
        uses.set(token, used + 1);
        sentence += value * 0.5 ** used * afterContrast * summary * concession;
        sentimentWords++;
        negationLeft = 0;
        intensityLeft = 0;
        break;
      }
      case 'intensifier':
        intensity = entry.factor;
        intensityLeft = intensifierWindow;
        negationLeft = Math.max(0, negationLeft - 1);
        break;
      case 'negator':
        negationLeft = negationWindow;
        intensityLeft = 0;
        break;
      case 'contrast':
        // Sentence-initial ("…lovely; however, the breakfast was cold") contrasts with the sentence before.
        if (atSentenceStart) {
          total -= 0.5 * previousSentence;
          previousSentence *= 0.5;
        }
        sentence *= 0.5;
        afterContrast = 1.5;
        negationLeft = 0;
        concession = 1;
        break;
      case 'concession':
        concession = 0.5;
        break;
      case 'summary':
        summary = 1.5;
        break;
      default: {
        const unhandled: never = entry;
        throw new Error(`unhandled lexicon entry ${JSON.stringify(unhandled)}`);
      }
    }
  }
  total += sentence;
  if (total === 0 || words.length === 0) return 0;

  const score =
    Math.tanh(total / 1.2) *
    repetitionFactor(words) *
    densityFactor(sentimentWords, words.length) *
    Math.max(0, 1 - (1.5 * gibberish) / words.length);
  return score === 0 ? 0 : score; // never -0
}

interface TokenInfo {
  readonly entry: Entry | undefined;
  readonly implausible: boolean;
}

const negatorEntry: Entry = { kind: 'negator' };
/**
 * Memo of `lookUp`: texts reuse a small vocabulary, and the regex tests dominate otherwise. Bounded, since
 * any text may come in.
 */
const tokenInfos = new Map<string, TokenInfo>();
const maxTokenInfos = 50_000;

function lookUp(token: string): TokenInfo {
  let info = tokenInfos.get(token);
  if (info === undefined) {
    info = {
      entry: lexicon.get(token) ?? (token.endsWith("n't") ? negatorEntry : undefined),
      implausible: token.length > 20 || (implausibleWord.test(token) && !shortWordsWithoutVowels.has(token)),
    };
    if (tokenInfos.size >= maxTokenInfos) tokenInfos.clear();
    tokenInfos.set(token, info);
  }
  return info;
}

function repetitionFactor(words: readonly string[]): number {
  if (words.length < 2) return 1;
  let repeatedWords = 0;
  for (let i = 1; i < words.length; i++) if (words[i] === words[i - 1]) repeatedWords++;
  let repeatedTrigrams = 0;
  if (words.length <= 64) {
    // Short texts (all the demo's): comparing in place beats building a set of joined strings.
    for (let i = 3; i < words.length; i++) {
      for (let j = 2; j < i; j++) {
        if (words[i] === words[j] && words[i - 1] === words[j - 1] && words[i - 2] === words[j - 2]) {
          repeatedTrigrams++;
          break;
        }
      }
    }
  } else {
    const trigrams = new Set<string>();
    for (let i = 2; i < words.length; i++) {
      const trigram = `${words[i - 2]} ${words[i - 1]} ${words[i]}`;
      if (trigrams.has(trigram)) repeatedTrigrams++;
      else trigrams.add(trigram);
    }
  }
  const rate = Math.max(
    repeatedWords / (words.length - 1),
    words.length > 2 ? repeatedTrigrams / (words.length - 2) : 0,
  );
  return Math.min(1, Math.max(0, 1 - 2.5 * (rate - 0.1)));
}

function densityFactor(sentimentWords: number, words: number): number {
  const density = sentimentWords / words;
  return words < 4 || density <= 0.5 ? 1 : Math.max(0.2, 1 - 1.6 * (density - 0.5));
}
