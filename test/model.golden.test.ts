// The runtime against Hugging Face transformers' own outputs: token ids must be equal and
// outputs within 1e-4, for every head, on real functions (fixtures: scripts/golden/generate.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';
import { toLogProbs } from '../worker/model/roberta.ts';

const TOLERANCE = 1e-4;
const backend = await initBackend();
const root = new URL('./fixtures/golden/', import.meta.url).pathname;
const expected = (head: string) => JSON.parse(readFileSync(join(root, 'expected', `${head}.json`), 'utf8'));
const tensors = (e: { input_ids: number[][]; attention_mask: number[][] }) => ({
  inputIds: tf.tensor2d(e.input_ids, undefined, 'int32'),
  attentionMask: tf.tensor2d(e.attention_mask, undefined, 'int32'),
});

function maxAbsDiff(actual: number[] | number[][] | number[][][], wanted: number[] | number[][] | number[][][]): number {
  const a = (actual as number[]).flat(2) as number[];
  const w = (wanted as number[]).flat(2) as number[];
  assert.equal(a.length, w.length, 'same number of values');
  return Math.max(...a.map((x, i) => Math.abs(x - w[i])));
}

function assertClose(actual: any, wanted: any, what: string): void {
  const d = maxAbsDiff(actual, wanted);
  assert.ok(d <= TOLERANCE, `${what}: max |difference| ${d.toExponential(2)} > ${TOLERANCE} on ${backend}`);
}

for (const head of ['classify', 'defect']) {
  test(`${head}: token ids and logits equal transformers' on real C functions`, () => {
    const e = expected(head);
    const ckpt = loadCheckpoint(join(root, 'models', head));
    const encoded = ckpt.tokenizer.encode(e.inputs.map((i: { text: string }) => i.text), e.max_length, 'max');
    assert.deepEqual(encoded.inputIds, e.input_ids);
    assert.deepEqual(encoded.attentionMask, e.attention_mask);
    assert.ok(e.attention_mask.some((m: number[]) => m.includes(0)), 'the batch exercises padding');
    const logits = tf.tidy(() => ckpt.model.logits(tensors(e)).arraySync());
    assertClose(logits, e.logits, `${head} logits`);
    ckpt.model.dispose();
  });
}

test('defect: the same logits whether the model gets ids or their word embeddings', () => {
  const e = expected('defect');
  const ckpt = loadCheckpoint(join(root, 'models', 'defect'));
  const t = tensors(e);
  const fromEmbeds = tf.tidy(() => ckpt.model.logits({ inputsEmbeds: ckpt.model.wordEmbeddings(t.inputIds), attentionMask: t.attentionMask }).arraySync());
  assertClose(fromEmbeds, e.logits, 'defect logits from inputs_embeds');
  ckpt.model.dispose();
});

test('clone: pair logits equal transformers\' on real Java clone pairs', () => {
  const e = expected('clone');
  const ckpt = loadCheckpoint(join(root, 'models', 'clone'));
  const a = ckpt.tokenizer.encode(e.pairs.map((p: { text_a: string }) => p.text_a), e.max_length, 'max');
  const b = ckpt.tokenizer.encode(e.pairs.map((p: { text_b: string }) => p.text_b), e.max_length, 'max');
  assert.deepEqual(a.inputIds, e.a.input_ids);
  assert.deepEqual(b.inputIds, e.b.input_ids);
  const logits = tf.tidy(() => ckpt.model.logits(tensors(e.a), {}, tensors(e.b)).arraySync());
  assertClose(logits, e.logits, 'clone logits');
  ckpt.model.dispose();
});

test('search: code and query embeddings equal transformers\' on real Python functions and their queries', () => {
  const e = expected('search');
  const ckpt = loadCheckpoint(join(root, 'models', 'search'));
  const code = ckpt.tokenizer.encode(e.items.map((i: { code: string }) => i.code), e.max_length, 'max');
  const query = ckpt.tokenizer.encode(e.items.map((i: { query: string }) => i.query), e.max_length, 'max');
  assert.deepEqual(code.inputIds, e.code.input_ids);
  assert.deepEqual(query.inputIds, e.query.input_ids);
  const pooled = tf.tidy(() => ckpt.model.meanPooled(tensors(e.code)).arraySync());
  assertClose(pooled, e.code_mean_unnormalised, 'mean-pooled code vectors');
  ckpt.model.dispose();
});
