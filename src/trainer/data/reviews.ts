/**
 * The embedded demo task: short film, book, product and place reviews from a small grammar, small
 * enough for a GPT with 64–128 tokens of context to learn, varied enough to be worth learning.
 *
 * A review is 1–3 lowercase sentences (≤ 180 characters) about one subject: sentences on the subject
 * as a whole ("i loved the film"), on an aspect ("the battery died after a week"), negated ("the plot
 * wasn't bad"), contrasting ("the acting was fine but the plot dragged"), concessive ("although …, …"),
 * a closing verdict ("overall, it is great"), or neutral facts ("we stayed for three nights"). Each
 * review is planned positive, negative, mixed or neutral, and its `label` is the intended sentiment:
 * the mean value of its non-neutral sentences, where a contrast counts 0.3 × first + 0.7 × second
 * clause and a closing verdict counts 1.5×. The values are written next to each phrase below, by
 * meaning, independently of the oracle's lexicon (`sentimentOracle.ts`), which must agree with them.
 *
 * Everything is drawn from the seeded `Random`: the same seed gives the same reviews on every machine,
 * and the first k of `generateReviews(n, seed)` are `generateReviews(k, seed)`.
 */
import { Random } from '../../core/random';

export interface Review {
  /** The opening: a header such as "review of the blender:" or the first few words. */
  prompt: string;
  /** The rest, starting with a space. */
  completion: string;
  /** `prompt + completion`. */
  text: string;
  /** Intended sentiment in [-1, 1]. */
  label: number;
}

/** A phrase and the sentiment it is meant to carry. */
type Phrase = readonly [text: string, value: number];

interface Aspect {
  readonly name: string;
  readonly plural?: boolean;
  /** Only its own phrases: "the price is outstanding" is not how people talk. */
  readonly phrasesOnly?: boolean;
  /** Predicates in the domain's tense, agreeing with the aspect ("kept me hooked", "are responsive"). */
  readonly good: readonly Phrase[];
  readonly bad: readonly Phrase[];
}

interface Domain {
  /** Noun phrases; `true` marks a plural one ("these headphones"). */
  readonly subjects: readonly (readonly [np: string, plural: boolean])[];
  readonly tense: 'past' | 'present';
  /** Stories are "never boring"; things are "a waste of money". */
  readonly story: boolean;
  readonly aspects: readonly Aspect[];
  /**
   * Neutral facts; `{s}` is the subject as an object ("i bought {s} last month"). A pair gives the
   * wording after the subject has been named, where a pronoun would not do ("we stayed there").
   */
  readonly facts: readonly (string | readonly [first: string, later: string])[];
}

const price = (be: string): Aspect => ({
  name: 'price',
  phrasesOnly: true,
  good: [
    [`${be} fair`, 0.4],
    [`${be} reasonable`, 0.4],
    [`${be} a bargain`, 0.6],
  ],
  bad: [
    [`${be} steep`, -0.4],
    [`${be} not worth it`, -0.4],
  ],
});

const plot: Aspect = {
  name: 'plot',
  good: [
    ['kept me hooked', 0.7],
    ['was gripping', 0.7],
    ['was clever', 0.6],
  ],
  bad: [
    ['dragged', -0.5],
    ['made no sense', -0.5],
    ['was predictable', -0.4],
  ],
};
const ending: Aspect = {
  name: 'ending',
  good: [['was satisfying', 0.7]],
  bad: [
    ['fell flat', -0.5],
    ['felt rushed', -0.5],
  ],
};
const pacing: Aspect = {
  name: 'pacing',
  good: [['was brisk', 0.4]],
  bad: [
    ['was slow', -0.4],
    ['dragged', -0.5],
  ],
};
const battery: Aspect = {
  name: 'battery',
  good: [
    ['is long lasting', 0.6],
    ['charges quickly and works', 0.4],
  ],
  bad: [
    ['died after a week', -0.7],
    ['drains in an hour', -0.5],
  ],
};

const domains: readonly Domain[] = [
  {
    subjects: [
      ['the film', false],
      ['this movie', false],
      ['the sequel', false],
      ['the new thriller', false],
      ['this comedy', false],
      ['the documentary', false],
    ],
    tense: 'past',
    story: true,
    aspects: [
      plot,
      ending,
      pacing,
      {
        name: 'acting',
        good: [['was convincing', 0.6]],
        bad: [
          ['felt wooden', -0.6],
          ['was stiff', -0.4],
        ],
      },
      {
        name: 'dialogue',
        good: [
          ['was witty', 0.7],
          ['was sharp', 0.5],
        ],
        bad: [
          ['was clunky', -0.5],
          ['felt forced', -0.4],
        ],
      },
      {
        name: 'soundtrack',
        good: [['was beautiful', 0.8]],
        bad: [
          ['was forgettable', -0.5],
          ['was too loud', -0.4],
        ],
      },
      {
        name: 'visuals',
        plural: true,
        good: [
          ['were stunning', 0.9],
          ['looked gorgeous', 0.8],
        ],
        bad: [
          ['looked cheap', -0.4],
          ['were ugly', -0.6],
        ],
      },
    ],
    facts: [
      'i watched {s} on a sunday',
      'i saw {s} with my brother',
      'i went to a late showing',
      'it runs about two hours',
      'it came out last year',
    ],
  },
  {
    subjects: [
      ['the book', false],
      ['this novel', false],
      ['the memoir', false],
      ['the new mystery', false],
    ],
    tense: 'past',
    story: true,
    aspects: [
      plot,
      ending,
      pacing,
      {
        name: 'writing',
        good: [
          ['was elegant', 0.7],
          ['was sharp', 0.5],
        ],
        bad: [
          ['was clumsy', -0.5],
          ['was dense', -0.3],
        ],
      },
      {
        name: 'characters',
        plural: true,
        good: [
          ['were memorable', 0.6],
          ['were likeable', 0.5],
        ],
        bad: [
          ['were flat', -0.5],
          ['were annoying', -0.6],
        ],
      },
    ],
    facts: [
      'i read {s} on a long flight',
      'a friend lent me {s}',
      'it has twelve chapters',
      'it is the second in a series',
      'i finished it in a week',
    ],
  },
  {
    subjects: [
      ['these headphones', true],
      ['the earbuds', true],
      ['these wireless earbuds', true],
    ],
    tense: 'present',
    story: false,
    aspects: [
      battery,
      price('is'),
      {
        name: 'sound',
        good: [
          ['is crisp', 0.6],
          ['is rich', 0.5],
          ['is clear', 0.5],
        ],
        bad: [
          ['is muddy', -0.5],
          ['is tinny', -0.5],
          ['crackles', -0.5],
        ],
      },
      {
        name: 'bass',
        good: [
          ['is punchy', 0.5],
          ['is strong', 0.4],
        ],
        bad: [
          ['is weak', -0.5],
          ['is muddy', -0.5],
        ],
      },
      {
        name: 'fit',
        good: [
          ['is comfortable', 0.6],
          ['is snug', 0.4],
        ],
        bad: [
          ['hurts my ears', -0.6],
          ['is uncomfortable', -0.6],
        ],
      },
      {
        name: 'microphone',
        good: [
          ['is clear', 0.5],
          ['is flawless', 0.8],
        ],
        bad: [
          ['is useless', -0.8],
          ['sounds muddy', -0.5],
        ],
      },
    ],
    facts: [
      'i bought {s} last month',
      'i use {s} on the train',
      'they came in a small box',
      'they arrived in two days',
    ],
  },
  {
    subjects: [
      ['the blender', false],
      ['this blender', false],
      ['the new blender', false],
    ],
    tense: 'present',
    story: false,
    aspects: [
      price('is'),
      {
        name: 'motor',
        good: [
          ['is powerful', 0.6],
          ['is strong', 0.4],
        ],
        bad: [
          ['overheats', -0.6],
          ['burned out', -0.6],
        ],
      },
      {
        name: 'lid',
        good: [['seals perfectly', 0.7]],
        bad: [
          ['leaks', -0.6],
          ['cracked', -0.6],
        ],
      },
      {
        name: 'jar',
        good: [['is sturdy', 0.5]],
        bad: [
          ['is flimsy', -0.6],
          ['cracked', -0.6],
        ],
      },
      {
        name: 'buttons',
        plural: true,
        good: [['are easy to use', 0.5]],
        bad: [
          ['are confusing', -0.5],
          ['feel cheap', -0.4],
        ],
      },
    ],
    facts: ['i use {s} every morning', 'it came with two cups', 'i mostly make smoothies', 'it arrived in two days'],
  },
  {
    subjects: [
      ['the hotel', false],
      ['this hotel', false],
      ['the resort', false],
      ['the inn', false],
    ],
    tense: 'past',
    story: false,
    aspects: [
      price('was'),
      {
        name: 'room',
        good: [
          ['was spotless', 0.8],
          ['was cozy', 0.6],
        ],
        bad: [
          ['was dirty', -0.7],
          ['was cramped', -0.5],
        ],
      },
      {
        name: 'staff',
        plural: true,
        good: [
          ['were friendly', 0.6],
          ['were helpful', 0.6],
        ],
        bad: [
          ['were rude', -0.7],
          ['were unhelpful', -0.6],
        ],
      },
      {
        name: 'breakfast',
        good: [
          ['was delicious', 0.8],
          ['was fresh', 0.5],
        ],
        bad: [
          ['was bland', -0.5],
          ['was cold', -0.4],
        ],
      },
      {
        name: 'location',
        good: [
          ['was perfect', 0.9],
          ['was convenient', 0.5],
        ],
        bad: [['was noisy', -0.5]],
      },
      { name: 'bed', good: [['was comfortable', 0.6]], bad: [['was lumpy', -0.5]] },
      {
        name: 'wifi',
        good: [['was reliable', 0.6]],
        bad: [
          ['was unreliable', -0.6],
          ['was slow', -0.4],
        ],
      },
    ],
    facts: [
      ['we stayed at {s} for three nights', 'we stayed there for three nights'],
      'we booked {s} online',
      'it is near the station',
      'we visited in march',
    ],
  },
  {
    subjects: [
      ['this phone', false],
      ['the new phone', false],
      ['the tablet', false],
    ],
    tense: 'present',
    story: false,
    aspects: [
      battery,
      price('is'),
      {
        name: 'screen',
        good: [
          ['is bright', 0.5],
          ['is sharp', 0.5],
        ],
        bad: [
          ['is dim', -0.4],
          ['cracked', -0.6],
        ],
      },
      {
        name: 'camera',
        good: [['takes stunning photos', 0.9]],
        bad: [
          ['is blurry', -0.5],
          ['is grainy', -0.5],
        ],
      },
      {
        name: 'speaker',
        good: [['is clear', 0.5]],
        bad: [
          ['is tinny', -0.5],
          ['crackles', -0.5],
        ],
      },
    ],
    facts: [
      'i bought {s} last month',
      'i mostly use {s} for calls',
      'it comes in black and green',
      'it arrived in two days',
    ],
  },
  {
    subjects: [
      ['the restaurant', false],
      ['this cafe', false],
      ['the diner', false],
    ],
    tense: 'past',
    story: false,
    aspects: [
      price('was'),
      {
        name: 'food',
        good: [
          ['was delicious', 0.8],
          ['was fresh', 0.5],
        ],
        bad: [
          ['was bland', -0.5],
          ['was greasy', -0.5],
        ],
      },
      {
        name: 'service',
        good: [
          ['was quick', 0.4],
          ['was attentive', 0.6],
        ],
        bad: [
          ['was slow', -0.4],
          ['was rude', -0.7],
        ],
      },
      { name: 'portions', plural: true, good: [['were generous', 0.6]], bad: [['were tiny', -0.4]] },
      { name: 'desserts', plural: true, good: [['were delicious', 0.8]], bad: [['were bland', -0.5]] },
    ],
    facts: [
      ['we went to {s} on a friday night', 'we went there on a friday night'],
      'we ordered the set menu',
      'we sat by the window',
    ],
  },
  {
    subjects: [
      ['this game', false],
      ['the new game', false],
      ['the puzzle game', false],
    ],
    tense: 'present',
    story: true,
    aspects: [
      price('is'),
      {
        name: 'story',
        good: [
          ['is gripping', 0.7],
          ['is clever', 0.6],
        ],
        bad: [
          ['drags', -0.5],
          ['is predictable', -0.4],
        ],
      },
      {
        name: 'controls',
        plural: true,
        good: [
          ['are responsive', 0.5],
          ['feel smooth', 0.4],
        ],
        bad: [
          ['feel sluggish', -0.5],
          ['are clunky', -0.5],
        ],
      },
      {
        name: 'graphics',
        plural: true,
        good: [
          ['are stunning', 0.9],
          ['are gorgeous', 0.8],
        ],
        bad: [
          ['look dated', -0.4],
          ['are ugly', -0.6],
        ],
      },
      { name: 'music', good: [['is beautiful', 0.8]], bad: [['is forgettable', -0.5]] },
    ],
    facts: ['i played {s} over a weekend', 'it takes about ten hours', 'i played it on my laptop'],
  },
];

/** Adjectives that fit any subject or aspect. */
const positive: readonly Phrase[] = [
  ['great', 0.8],
  ['excellent', 0.9],
  ['wonderful', 0.85],
  ['fantastic', 0.9],
  ['amazing', 0.9],
  ['superb', 0.9],
  ['brilliant', 0.9],
  ['outstanding', 0.9],
  ['terrific', 0.85],
  ['good', 0.6],
  ['solid', 0.5],
  ['impressive', 0.7],
  ['lovely', 0.7],
  ['nice', 0.5],
];
const negative: readonly Phrase[] = [
  ['terrible', -0.9],
  ['awful', -0.9],
  ['horrible', -0.9],
  ['dreadful', -0.85],
  ['bad', -0.6],
  ['poor', -0.6],
  ['disappointing', -0.7],
  ['weak', -0.5],
  ['mediocre', -0.4],
  ['underwhelming', -0.5],
  ['lousy', -0.7],
];
const lukewarm: readonly Phrase[] = [
  ['okay', 0.1],
  ['fine', 0.15],
  ['average', -0.05],
  ['alright', 0.15],
  ['acceptable', 0.2],
];
const intensifiers: readonly Phrase[] = [
  ['really', 1.5],
  ['very', 1.5],
  ['truly', 1.5],
  ['extremely', 1.8],
  ['incredibly', 1.8],
  ['quite', 1.2],
  ['pretty', 1.2],
];
const strongIntensifiers: readonly Phrase[] = [
  ['really', 1.5],
  ['truly', 1.5],
  ['absolutely', 1.7],
];
const downtoners: readonly Phrase[] = [
  ['a bit', 0.5],
  ['slightly', 0.5],
  ['somewhat', 0.6],
];

type Polarity = 1 | -1;

interface Sentence {
  readonly text: string;
  readonly value: number;
  /** 0 for neutral facts (left out of the label), 1.5 for a closing verdict, else 1. */
  readonly weight: number;
}

const maxLength = 180;
const clamp = (x: number): number => Math.max(-1, Math.min(1, x));

/** Writes one review; `used` keeps a review from repeating a word choice or an aspect. */
class ReviewWriter {
  private readonly used = new Set<string>();
  readonly np: string;
  readonly plural: boolean;

  constructor(
    private readonly rng: Random,
    readonly domain: Domain,
  ) {
    [this.np, this.plural] = rng.pick(domain.subjects);
  }

  be(plural: boolean, negated = false): string {
    const verb = this.domain.tense === 'past' ? (plural ? 'were' : 'was') : plural ? 'are' : 'is';
    return negated ? this.rng.pick([`${verb} not`, `${verb}n't`]) : verb;
  }

  /** The subject on first mention, then a pronoun. */
  subject(first: boolean): string {
    return first ? this.np : this.plural ? 'they' : 'it';
  }

  object(first: boolean): string {
    return first ? this.np : this.plural ? 'them' : 'it';
  }

  /** A random item this review has not used yet (after a few tries, any: some lists are short). */
  fresh<T extends Phrase | Aspect>(items: readonly T[]): T {
    const keyOf = (item: T): string => ('name' in item ? item.name : item[0]);
    let item = this.rng.pick(items);
    for (let tries = 0; tries < 5 && this.used.has(keyOf(item)); tries++) item = this.rng.pick(items);
    this.used.add(keyOf(item));
    return item;
  }

  /** "really great" / "a bit weak" / "solid", with its value. */
  adjective(polarity: Polarity): Phrase {
    const [word, value] = this.fresh(polarity > 0 ? positive : negative);
    const roll = this.rng.next();
    if (roll < 0.3) {
      // "extremely excellent" is not English: the strongest words take only the adverbs that fit them.
      const [adverb, factor] = this.rng.pick(Math.abs(value) > 0.8 ? strongIntensifiers : intensifiers);
      return [`${adverb} ${word}`, clamp(value * factor)];
    }
    if (polarity < 0 && value > -0.8 && roll < 0.45) {
      const [adverb, factor] = this.rng.pick(downtoners);
      return [`${adverb} ${word}`, value * factor];
    }
    return [word, value];
  }

  /** A clause on one aspect, in one of three forms. */
  aspectClause(polarity: Polarity): Sentence {
    const aspect = this.fresh(this.domain.aspects);
    const the = `the ${aspect.name}`;
    const roll = this.rng.next();
    if (roll < 0.45 || aspect.phrasesOnly) {
      const [text, value] = this.fresh(polarity > 0 ? aspect.good : aspect.bad);
      return { text: `${the} ${text}`, value, weight: 1 };
    }
    if (roll < 0.8) {
      const [text, value] = this.adjective(polarity);
      return { text: `${the} ${this.be(aspect.plural ?? false)} ${text}`, value, weight: 1 };
    }
    // Negated: "not great" is meant as mildly negative, "not bad" as mildly positive.
    const [word, value] = this.fresh(polarity > 0 ? negative : positive);
    return {
      text: `${the} ${this.be(aspect.plural ?? false, true)} ${word}`,
      value: value > 0 ? -0.6 * value : -0.45 * value,
      weight: 1,
    };
  }

  subjectClause(polarity: Polarity, first: boolean): Sentence {
    const roll = this.rng.next();
    if (roll < 0.4) {
      const [text, value] = this.adjective(polarity);
      return { text: `${this.subject(first)} ${this.be(this.plural)} ${text}`, value, weight: 1 };
    }
    if (roll < 0.5 && this.domain.story && polarity > 0) {
      return {
        text: `${this.subject(first)} ${this.be(this.plural)} never ${
          this.fresh<Phrase>([
            ['boring', 0],
            ['dull', 0],
          ])[0]
        }`,
        value: 0.3,
        weight: 1,
      };
    }
    const it = this.object(first);
    const itIs = `${this.subject(first)} ${this.be(this.plural)}`;
    const story = this.domain.story;
    const verbs: Phrase[] =
      polarity > 0
        ? [
            [`i loved ${it}`, 0.8],
            [`i really enjoyed ${it}`, 1],
            [`i liked ${it}`, 0.5],
            [`i would recommend ${it}`, 0.6],
          ]
        : [
            [`i hated ${it}`, -0.8],
            [`i would not recommend ${it}`, -0.5],
            [`i was disappointed by ${it}`, -0.7],
            [`${itIs} a waste of ${story ? 'time' : 'money'}`, -0.7],
          ];
    if (!story) verbs.push(polarity > 0 ? [`${itIs} worth every penny`, 0.7] : [`i regret buying ${it}`, -0.7]);
    const [text, value] = this.fresh(verbs);
    return { text, value, weight: 1 };
  }

  /** "the acting was fine but the plot dragged": the second clause is what the reviewer means. */
  contrast(second: Polarity): Sentence {
    const a = this.aspectClause(second > 0 ? -1 : 1);
    const b = this.aspectClause(second);
    const text = this.rng.next() < 0.7 ? `${a.text} but ${b.text}` : `although ${a.text}, ${b.text}`;
    return { text, value: 0.3 * a.value + 0.7 * b.value, weight: 1 };
  }

  verdict(polarity: Polarity | 0, first: boolean): Sentence {
    const [text, value] = polarity === 0 ? this.fresh(lukewarm) : this.adjective(polarity);
    return { text: `overall, ${this.subject(first)} ${this.be(this.plural)} ${text}`, value, weight: 1.5 };
  }

  /** A neutral fact; the first sentence of a review with no header names the subject. */
  fact(first: boolean): Sentence {
    const facts = this.domain.facts
      .map((fact) => (typeof fact === 'string' ? fact : first ? fact[0] : fact[1]))
      .filter((fact) => !first || fact.includes('{s}'));
    const [fact] = this.fresh<Phrase>(facts.map((text) => [text, 0]));
    return { text: fact.replace('{s}', this.object(first)), value: 0, weight: 0 };
  }

  lukewarmClause(first: boolean): Sentence {
    const [word, value] = this.fresh(lukewarm);
    if (this.rng.next() < 0.5)
      return { text: `${this.subject(first)} ${this.be(this.plural)} ${word}`, value, weight: 1 };
    const aspect = this.fresh(this.domain.aspects);
    return { text: `the ${aspect.name} ${this.be(aspect.plural ?? false)} ${word}`, value, weight: 1 };
  }
}

type Plan = 'positive' | 'negative' | 'mixed' | 'neutral';

/** The sentences of one review; `named` says whether a header already named the subject. */
function writeBody(writer: ReviewWriter, rng: Random, plan: Plan, count: number, named: boolean): Sentence[] {
  const sentences: Sentence[] = [];
  let first = !named;
  const polarity: Polarity = plan === 'negative' ? -1 : 1;
  const opening: Polarity = rng.next() < 0.5 ? 1 : -1;
  for (let i = 0; i < count; i++) {
    const last = i === count - 1 && count > 1;
    const roll = rng.next();
    let sentence: Sentence;
    if (plan === 'neutral') {
      sentence =
        roll < 0.5 ? writer.fact(first) : last && roll < 0.7 ? writer.verdict(0, first) : writer.lukewarmClause(first);
    } else if (plan === 'mixed') {
      // One side, then the other (or both in one contrast); more would only blur the mix.
      const other: Polarity = opening > 0 ? -1 : 1;
      if (i === 0) sentence = roll < 0.5 || count === 1 ? writer.contrast(opening) : writer.aspectClause(opening);
      else if (i === 1) sentence = roll < 0.6 ? writer.aspectClause(other) : writer.subjectClause(other, first);
      else sentence = writer.fact(first);
    } else if (first) {
      sentence = roll < 0.2 ? writer.fact(true) : writer.subjectClause(polarity, true);
    } else if (last && roll < 0.3) {
      sentence = writer.verdict(polarity, false);
    } else {
      sentence =
        roll < 0.15
          ? writer.fact(false)
          : roll < 0.3
            ? writer.contrast(polarity)
            : roll < 0.85
              ? writer.aspectClause(polarity)
              : writer.subjectClause(polarity, false);
    }
    sentences.push(sentence);
    if (first && sentence.text.includes(writer.np)) first = false;
  }
  return sentences;
}

function labelOf(sentences: readonly Sentence[]): number {
  const weight = sentences.reduce((sum, sentence) => sum + sentence.weight, 0);
  return weight === 0
    ? 0
    : clamp(sentences.reduce((sum, sentence) => sum + sentence.weight * sentence.value, 0) / weight);
}

/** One review; `headerShare` is the chance its prompt is a header rather than its first words. */
function generateReview(rng: Random, headerShare: number): Review {
  const writer = new ReviewWriter(rng, rng.pick(domains));
  const roll = rng.next();
  const plan: Plan = roll < 0.36 ? 'positive' : roll < 0.72 ? 'negative' : roll < 0.9 ? 'mixed' : 'neutral';
  const header =
    rng.next() < headerShare
      ? rng.pick([`review of ${writer.np}:`, `${writer.np} review:`, `my thoughts on ${writer.np}:`])
      : undefined;
  const wanted = 1 + rng.int(3);
  let sentences = writeBody(writer, rng, plan, wanted, header !== undefined);
  const end = plan === 'positive' && rng.next() < 0.15 ? '!' : '.';
  const render = (): string => sentences.map((sentence) => sentence.text).join('. ') + end;
  // Too long for the context of the small models: drop sentences from the end (never the first).
  while (sentences.length > 1 && (header ?? '').length + 1 + render().length > maxLength)
    sentences = sentences.slice(0, -1);
  const body = render();
  const label = labelOf(sentences);
  if (header !== undefined) return { prompt: header, completion: ` ${body}`, text: `${header} ${body}`, label };
  const words = body.split(' ');
  const take = Math.min(2 + rng.int(3), words.length - 1);
  const prompt = words.slice(0, take).join(' ');
  return { prompt, completion: body.slice(prompt.length), text: body, label };
}

/** Separate streams per use, so prompts are not the first words of the training reviews of the same seed. */
function streamSeed(seed: number, stream: number): number {
  // murmur3's 32-bit finalizer: nearby seeds give unrelated streams.
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ stream) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const reviewStream = 1;
const promptStream = 2;
const heldOutSeed = 0x5eed;
const heldOutStream = 3;

/** `count` reviews for supervised fine-tuning and reward-model data. */
export function generateReviews(count: number, seed: number): Review[] {
  const rng = new Random(streamSeed(seed, reviewStream));
  return Array.from({ length: count }, () => generateReview(rng, 0.4));
}

/**
 * Prompts for RLHF rollouts: openings alone, half of them headers that say nothing either way, so a
 * policy has room to become more positive. None is ever a held-out prompt.
 */
export function demoPrompts(count: number, seed: number): string[] {
  return drawPrompts(new Random(streamSeed(seed, promptStream)), count, false);
}

/** A fixed held-out set of prompts, from a seed and stream of their own, disjoint from `demoPrompts`. */
export function heldOutPrompts(count: number): string[] {
  return drawPrompts(new Random(streamSeed(heldOutSeed, heldOutStream)), count, true);
}

/**
 * Openings are short, so two streams repeat each other's prompts; a separate stream alone would not
 * make a held-out set. Instead a hash of the prompt's text puts a fifth of all prompts aside for
 * evaluation (FNV-1a, 32-bit), and each side draws only its own.
 */
function isHeldOut(prompt: string): boolean {
  let hash = 0x811c9dc5;
  for (let i = 0; i < prompt.length; i++) hash = Math.imul(hash ^ prompt.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % 5 === 0;
}

function drawPrompts(rng: Random, count: number, heldOut: boolean): string[] {
  const prompts: string[] = [];
  while (prompts.length < count) {
    const { prompt } = generateReview(rng, 0.5);
    if (isHeldOut(prompt) === heldOut) prompts.push(prompt);
  }
  return prompts;
}
