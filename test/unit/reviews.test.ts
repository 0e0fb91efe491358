import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoPrompts, generateReviews, heldOutPrompts } from '../../src/trainer/data/reviews';
import { sentimentScore } from '../../src/trainer/data/sentimentOracle';

const reviews = generateReviews(5000, 1);

test('the same seed gives the same reviews, another seed others, and a shorter run is a prefix', () => {
  assert.deepEqual(generateReviews(300, 1), reviews.slice(0, 300));
  assert.deepEqual(generateReviews(300, 1), generateReviews(300, 1));
  const other = generateReviews(300, 2);
  assert.ok(other.filter((review, i) => review.text === reviews[i].text).length < 30, 'seed 2 is not seed 1');
  assert.deepEqual(demoPrompts(50, 4), demoPrompts(50, 4));
  assert.deepEqual(heldOutPrompts(50), heldOutPrompts(50));
});

test(
  'each review is prompt + completion, the completion starts with a space, and the text is short plain ' + 'lowercase',
  () => {
    for (const review of reviews) {
      assert.equal(review.text, review.prompt + review.completion);
      assert.match(review.completion, /^ \S/);
      assert.ok(review.prompt.length > 0 && review.prompt.trim() === review.prompt, review.prompt);
      assert.ok(review.text.length <= 180, `${review.text.length} characters: ${review.text}`);
      assert.match(review.text, /^[a-z][a-z ',:.!]*[.!]$/, review.text);
      assert.doesNotMatch(review.text, / {2}|\.\./);
      assert.ok(review.label >= -1 && review.label <= 1);
    }
    const sentences = reviews.map((review) => review.text.split(/[.!](?: |$)/).filter(Boolean).length);
    assert.ok(Math.min(...sentences) >= 1 && Math.max(...sentences) <= 3);
    const mean = reviews.reduce((sum, review) => sum + review.text.length, 0) / reviews.length;
    assert.ok(mean > 40 && mean < 120, `mean length ${mean}`);
  },
);

test('reviews vary: most texts are distinct, and positive, negative and lukewarm ones all occur', () => {
  const distinct = new Set(reviews.map((review) => review.text)).size;
  assert.ok(distinct / reviews.length > 0.85, `${distinct} distinct of ${reviews.length}`);
  const share = (predicate: (label: number) => boolean): number =>
    reviews.filter((review) => predicate(review.label)).length / reviews.length;
  assert.ok(share((label) => label > 0.3) > 0.25);
  assert.ok(share((label) => label < -0.3) > 0.25);
  assert.ok(share((label) => Math.abs(label) <= 0.3) > 0.15);
  assert.ok(
    reviews.some((review) => / but /.test(review.text)) &&
      reviews.some((review) => /^although |: although /.test(review.text)),
  );
  assert.ok(reviews.some((review) => /n't|\bnot\b|\bnever\b/.test(review.text)));
  assert.ok(reviews.filter((review) => review.prompt.endsWith(':')).length > 1000, 'header prompts occur');
});

test('the oracle agrees in sign with the intended label on at least 95% of clearly polar reviews', () => {
  const polar = generateReviews(20_000, 7).filter((review) => Math.abs(review.label) > 0.3);
  const agree = polar.filter((review) => Math.sign(sentimentScore(review.text)) === Math.sign(review.label)).length;
  console.log(`oracle sign agreement: ${agree}/${polar.length} = ${((100 * agree) / polar.length).toFixed(2)}%`);
  assert.ok(agree / polar.length >= 0.95);
});

test('demo prompts are openings, mostly neutral, and never held-out prompts', () => {
  const prompts = demoPrompts(2000, 1);
  const heldOut = heldOutPrompts(500);
  assert.equal(prompts.length, 2000);
  assert.equal(heldOut.length, 500);
  const training = new Set(prompts);
  assert.equal(heldOut.filter((prompt) => training.has(prompt)).length, 0);
  assert.ok(new Set(heldOut).size > 50, 'the held-out set is not a handful of prompts');
  for (const prompt of [...prompts, ...heldOut])
    assert.ok(prompt.length > 0 && prompt.length < 60 && !prompt.startsWith(' '), prompt);
  const neutral = prompts.filter((prompt) => sentimentScore(prompt) === 0).length / prompts.length;
  assert.ok(neutral > 0.6, `${neutral} of prompts are neutral`);
  assert.ok(prompts.filter((prompt) => prompt.endsWith(':')).length > 600, 'headers such as "review of the blender:"');
});

const cases: [text: string, expect: (score: number) => boolean, why: string][] = [
  ['the film was great', (s) => s > 0.4, 'positive'],
  ['the acting was superb and the plot kept me hooked. i loved it!', (s) => s > 0.8, 'very positive'],
  ['the battery died after a week and the sound is terrible.', (s) => s < -0.6, 'negative'],
  ['The Hotel Was Lovely.', (s) => s > 0.4, 'case does not matter'],
  ['the plot was not good', (s) => s < -0.2 && s > -0.6, 'negated positive is negative'],
  ['the plot was not bad', (s) => s > 0.05 && s < 0.4, 'negated negative is mildly positive'],
  ['it was never boring', (s) => s > 0.05 && s < 0.4, 'never boring'],
  ["the staff weren't helpful", (s) => s < -0.2, "n't negates"],
  ['the staff werent helpful', (s) => s < -0.2, "n't without the apostrophe"],
  ['the staff weren’t helpful', (s) => s < -0.2, 'curly apostrophe'],
  ['i would not recommend it', (s) => s < -0.2, 'not recommend'],
  ['nothing special', (s) => s < 0, 'nothing special'],
  ['the acting was fine but the plot dragged', (s) => s < -0.3, 'but: the second clause wins'],
  ['the plot dragged but the acting was superb', (s) => s > 0.3, 'but, the other way round'],
  ['although the plot dragged, the acting was superb', (s) => s > 0.3, 'concession'],
  ['the room was lovely; however, the breakfast was cold.', (s) => s < 0, 'sentence-initial however'],
  ['the room was a bit cramped', (s) => s < 0 && s > sentimentScore('the room was cramped'), 'downtoner'],
  ['the room was really cramped', (s) => s < sentimentScore('the room was cramped'), 'intensifier'],
  ['it arrived on tuesday in a brown box.', (s) => s === 0, 'neutral'],
  ['', (s) => s === 0, 'empty'],
  ['!!! ??? 123', (s) => s === 0, 'no words'],
  ['xkcdq zzzt pfffrt bvvvv', (s) => s === 0, 'gibberish'],
  ['great xkcdq zzzt pfffrt bvvvv qwrtp', (s) => Math.abs(s) < 0.05, 'a sentiment word lost in gibberish'],
  [
    'amazing superb excellent wonderful fantastic brilliant',
    (s) => s < sentimentScore('the film was amazing and the acting was superb'),
    'word salad scores below a sentence',
  ],
];

for (const [text, expect, why] of cases) {
  test(`oracle, ${why}: ${JSON.stringify(text)}`, () => {
    const score = sentimentScore(text);
    assert.ok(expect(score), `score ${score}`);
    assert.ok(score >= -1 && score <= 1);
  });
}

test('repetition never raises the score beyond a bound', () => {
  const single = sentimentScore('the film was great');
  for (let k = 2; k <= 60; k++) {
    assert.ok(sentimentScore(Array(k).fill('great').join(' ')) <= 0.05, `great × ${k}`);
    assert.ok(sentimentScore(Array(k).fill('great!').join(' ')) <= 0.05, `great! × ${k}`);
    assert.ok(sentimentScore(Array(k).fill('the film was great.').join(' ')) <= single, `sentence × ${k}`);
    assert.ok(
      sentimentScore(`the film was ${Array(k).fill('really').join(' ')} great`) <=
        sentimentScore('the film was really great'),
    );
  }
  // Distinct sentences reusing one word: each reuse adds half the last, so the sum stays under 2× one use.
  const reused = Array.from({ length: 30 }, (_, i) => `part ${String.fromCharCode(97 + (i % 26))}${i} was great.`).join(
    ' ',
  );
  assert.ok(sentimentScore(reused) <= Math.tanh((2 * 0.8) / 1.2) + 1e-9, `${sentimentScore(reused)}`);
});

test('the oracle is deterministic and scores over 100k short texts a second', () => {
  const texts = generateReviews(20_000, 3).map((review) => review.text);
  const first = texts.map(sentimentScore);
  assert.deepEqual(texts.map(sentimentScore), first);
  const rounds = 10;
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let round = 0; round < rounds; round++) for (const text of texts) sink += sentimentScore(text);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const perSecond = (rounds * texts.length) / seconds;
  console.log(
    `oracle throughput: ${Math.round(perSecond).toLocaleString('en-US')} texts/s (mean ` +
      `${Math.round(texts.join('').length / texts.length)} characters; checksum ${sink.toFixed(3)})`,
  );
  assert.ok(perSecond > 100_000, `${Math.round(perSecond)} texts/s`);
});
