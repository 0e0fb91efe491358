// Token ids → token texts (src/shared/importers/tokenIdsToTexts.ts) with real tokenizer.json files: the byte-level
// BPE this project's trainer saves (src/trainer/tokenizer, Hugging Face's format) and a SentencePiece-style one in
// the schema tokenizers writes for Llama-2 (test/fixtures/sentencePieceTokenizer.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { decodeNemoRlJsonl } from '../../src/shared/importers/nemoRl';
import {
  fillTokenTexts,
  findTokenizerJson,
  loadTokenTextDecoder,
  tokenTexts,
  unknownTokenText,
} from '../../src/shared/importers/tokenIdsToTexts';
import { UserError } from '../../src/shared/userError';
import { BpeTokenizer, trainBpe } from '../../src/trainer/tokenizer';
import { sentencePieceTokenizerJson, writeSentencePieceTokenizer } from '../fixtures/sentencePieceTokenizer';
import { pythonFixture } from '../fixtures/engineRuns';

const folder = () => mkdtempSync(path.join(tmpdir(), 'rlhf-tok-'));

/** The trainer's byte-level BPE, trained on English only: CJK and emoji fall apart into byte tokens. */
async function savedByteLevel(dir: string): Promise<BpeTokenizer> {
  const ours = new BpeTokenizer(trainBpe(['the cat sat on the mat. '.repeat(20)], { vocabSize: 300 }));
  await ours.save(dir);
  return ours;
}

test('token texts: byte-level BPE pieces join into the decoded text; a split character goes last', async () => {
  const run = folder();
  const ours = await savedByteLevel(run);
  const file = await findTokenizerJson(run);
  assert.equal(file, path.join(run, 'tokenizer.json'));
  const decoder = await loadTokenTextDecoder(file as string);
  const text = 'the cat 数一 sat 🙂.';
  const ids = ours.encode(text);
  const { texts, unknownIds } = tokenTexts(decoder, ids);
  assert.deepEqual(unknownIds, []);
  assert.equal(texts.length, ids.length);
  assert.equal(texts.join(''), text);
  assert.equal(texts.join(''), new Tokenizer(JSON.parse(readFileSync(file as string, 'utf8')), {}).decode(ids));
  // 数 is 3 bytes, each its own token: the first two carry no text, the third the whole character.
  const at = texts.indexOf('数');
  assert.ok(at >= 2, JSON.stringify(texts));
  assert.deepEqual(texts.slice(at - 2, at + 1), ['', '', '数']);
  // Decoding each id alone would show a replacement character for each byte instead.
  assert.equal(decoder.tokenizer.decode([ids[at - 2]]), '\uFFFD');
  // Only the leading bytes of 数 and 一 (2 each) and of 🙂 (3) are empty: no other token loses its text.
  assert.equal(texts.filter((piece) => piece === '').length, 2 + 2 + 3, JSON.stringify(texts));
});

test('token texts: a response cut inside a character keeps the replacement mark on its last token', async () => {
  const run = folder();
  const ours = await savedByteLevel(run);
  const decoder = await loadTokenTextDecoder(path.join(run, 'tokenizer.json'));
  const ids = ours.encode('sat 数').slice(0, -1);
  const { texts } = tokenTexts(decoder, ids);
  assert.equal(texts.join(''), decoder.tokenizer.decode(ids));
  assert.equal(texts.at(-1), '\uFFFD');
});

test('token texts: SentencePiece ▁ words keep their space, byte fallback <0xNN> joins into characters', async () => {
  const run = folder();
  writeSentencePieceTokenizer(path.join(run, 'tokenizer'));
  const file = await findTokenizerJson(run);
  assert.equal(file, path.join(run, 'tokenizer', 'tokenizer.json'));
  const decoder = await loadTokenTextDecoder(file as string);
  const encoded = decoder.tokenizer.encode('hi token 数s', { add_special_tokens: false });
  assert.deepEqual(encoded.tokens, ['▁hi', '▁token', '▁', '<0xE6>', '<0x95>', '<0xB0>', 's']);
  const { texts } = tokenTexts(decoder, encoded.ids);
  assert.deepEqual(texts, ['hi', ' token', ' ', '', '', '数', 's']);
  assert.equal(texts.join(''), decoder.tokenizer.decode(encoded.ids));
  // A later window (more than its context tokens in) still gives ▁hi its space.
  const long = decoder.tokenizer.encode('hi hi hi hi hi hi hi', { add_special_tokens: false }).ids;
  assert.deepEqual(tokenTexts(decoder, long).texts, ['hi', ' hi', ' hi', ' hi', ' hi', ' hi', ' hi']);
  // Special tokens are shown, as the heatmap should show them.
  assert.deepEqual(tokenTexts(decoder, [1, ...long.slice(0, 2), 2]).texts, ['<s>', ' hi', ' hi', '</s>']);
});

test('token texts: an id outside the vocabulary is named and shown as a marker, the others are kept', async () => {
  const run = folder();
  const file = writeSentencePieceTokenizer(run);
  const decoder = await loadTokenTextDecoder(file);
  const hi = decoder.tokenizer.token_to_id('▁hi') as number;
  const { texts, unknownIds } = tokenTexts(decoder, [hi, 99_999, hi, -1]);
  assert.deepEqual(unknownIds, [99_999, -1]);
  assert.deepEqual(texts, ['hi', unknownTokenText(99_999), ' hi', unknownTokenText(-1)]);
});

test('token texts: a NeMo-RL step with only token_ids gets tokens; an unknown id is a problem naming it', async () => {
  const run = folder();
  const file = writeSentencePieceTokenizer(run);
  const decoder = await loadTokenTextDecoder(file);
  const vocab = (sentencePieceTokenizerJson() as { model: { vocab: Record<string, number> } }).model.vocab;
  const [hi, token, s] = [vocab['▁hi'], vocab['▁token'], vocab['s']];
  // log_batched_dict_as_jsonl: a microbatch of one per line, then "idx".
  const out = pythonFixture(`
samples = [
    {"content": [["user: hi", "hi tokens"]], "rewards": [1.0], "token_ids": [[${hi}, ${hi}, ${token}, ${s}]],
     "token_loss_mask": [[0, 1, 1, 1]], "input_lengths": [4]},
    {"content": [["user: hi", "?"]], "rewards": [0.0], "token_ids": [[${hi}, 70000, 0]],
     "token_loss_mask": [[0, 1, 0]], "input_lengths": [3]},
]
with open(os.path.join(out, "train_data_step3.jsonl"), "w") as f:
    for i, sample in enumerate(samples):
        f.write(json.dumps({**sample, "idx": i}, default=str) + "\\n")
`);
  const dump = path.join(out, 'train_data_step3.jsonl');
  const step = decodeNemoRlJsonl(dump, readFileSync(dump, 'utf8'), 3);
  assert.deepEqual(step.problems, []);
  assert.ok(!step.table.columns.includes('tokens'));
  const filled = fillTokenTexts(step, decoder);
  assert.deepEqual(filled.problems, [
    `${file}: token id 70000 of sample 1 is not in the tokenizer's vocabulary; shown as ${unknownTokenText(70000)}`,
  ]);
  const columns = filled.table.columns;
  assert.equal(columns.indexOf('tokens') + 1, columns.indexOf('token_ids'));
  assert.deepEqual(filled.table.row(0).tokens, ['hi', ' token', 's']);
  assert.deepEqual(filled.table.row(1).tokens, [unknownTokenText(70000)]);
  // A table that has token texts already is left as it is.
  assert.equal(fillTokenTexts(filled, decoder), filled);
});

test('token texts: a setting’s model folder wins, then the run, tokenizer/, the newest checkpoint', async () => {
  const run = folder();
  assert.equal(await findTokenizerJson(run), undefined);
  writeSentencePieceTokenizer(path.join(run, 'checkpoint-20'));
  writeSentencePieceTokenizer(path.join(run, 'checkpoint-100'));
  mkdirSync(path.join(run, 'checkpoint-300'));
  assert.equal(await findTokenizerJson(run), path.join(run, 'checkpoint-100', 'tokenizer.json'));
  writeSentencePieceTokenizer(run);
  assert.equal(await findTokenizerJson(run), path.join(run, 'tokenizer.json'));
  const model = folder();
  writeSentencePieceTokenizer(model);
  assert.equal(await findTokenizerJson(run, model), path.join(model, 'tokenizer.json'));
});

test('token texts: a damaged tokenizer.json is a UserError naming it', async () => {
  const run = folder();
  const file = path.join(run, 'tokenizer.json');
  writeFileSync(file, '{"version": "1.0", "model": {');
  await assert.rejects(
    loadTokenTextDecoder(file),
    (error) => error instanceof UserError && error.file === file && /not valid JSON/.test(error.message),
  );
  await assert.rejects(loadTokenTextDecoder(path.join(run, 'none.json')), (error) => error instanceof UserError);
});
