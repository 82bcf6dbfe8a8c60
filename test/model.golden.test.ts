// The runtime against Hugging Face transformers' own outputs: token ids must be equal and
// outputs within 1e-4, for every head, on real functions (fixtures: scripts/golden/generate.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint, sha256 } from '../worker/model/checkpoint.ts';
import { nllLoss } from '../worker/model/train.ts';
import { read } from '../worker/model/read.ts';

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

test('the checks run on the backend asked for (ELIBADCODE_BACKEND), not a fallback', () => {
  if (process.env.ELIBADCODE_BACKEND) assert.equal(backend, process.env.ELIBADCODE_BACKEND);
  assert.equal(tf.getBackend(), backend);
});

for (const head of ['classify', 'defect']) {
  test(`${head}: token ids and logits equal transformers' on real C functions`, async () => {
    const e = expected(head);
    const ckpt = loadCheckpoint(join(root, 'models', head));
    const encoded = ckpt.tokenizer.encode(e.inputs.map((i: { text: string }) => i.text), e.max_length, 'max');
    assert.deepEqual(encoded.inputIds, e.input_ids);
    assert.deepEqual(encoded.attentionMask, e.attention_mask);
    assert.ok(e.attention_mask.some((m: number[]) => m.includes(0)), 'the batch exercises padding');
    const logits = await read(() => ckpt.model.logits(tensors(e)));
    assertClose(logits, e.logits, `${head} logits`);
    ckpt.model.dispose();
  });
}

test('defect: the same logits whether the model gets ids or their word embeddings', async () => {
  const e = expected('defect');
  const ckpt = loadCheckpoint(join(root, 'models', 'defect'));
  const t = tensors(e);
  const fromEmbeds = await read(() => ckpt.model.logits({ inputsEmbeds: ckpt.model.wordEmbeddings(t.inputIds), attentionMask: t.attentionMask }));
  assertClose(fromEmbeds, e.logits, 'defect logits from inputs_embeds');
  ckpt.model.dispose();
});

test('clone: pair logits equal transformers\' on real Java clone pairs', async () => {
  const e = expected('clone');
  const ckpt = loadCheckpoint(join(root, 'models', 'clone'));
  const a = ckpt.tokenizer.encode(e.pairs.map((p: { text_a: string }) => p.text_a), e.max_length, 'max');
  const b = ckpt.tokenizer.encode(e.pairs.map((p: { text_b: string }) => p.text_b), e.max_length, 'max');
  assert.deepEqual(a.inputIds, e.a.input_ids);
  assert.deepEqual(b.inputIds, e.b.input_ids);
  const logits = await read(() => ckpt.model.logits(tensors(e.a), {}, tensors(e.b)));
  assertClose(logits, e.logits, 'clone logits');
  ckpt.model.dispose();
});

test('search: code and query embeddings equal transformers\' on real Python functions and their queries', async () => {
  const e = expected('search');
  const ckpt = loadCheckpoint(join(root, 'models', 'search'));
  const code = ckpt.tokenizer.encode(e.items.map((i: { code: string }) => i.code), e.max_length, 'max');
  const query = ckpt.tokenizer.encode(e.items.map((i: { query: string }) => i.query), e.max_length, 'max');
  assert.deepEqual(code.inputIds, e.code.input_ids);
  assert.deepEqual(query.inputIds, e.query.input_ids);
  const pooled = await read(() => ckpt.model.meanPooled(tensors(e.code)));
  assertClose(pooled, e.code_mean_unnormalised, 'mean-pooled code vectors');
  ckpt.model.dispose();
});

test('search: normalised embeddings and the code-query cosine matrix equal transformers\'', async () => {
  const e = expected('search');
  const ckpt = loadCheckpoint(join(root, 'models', 'search'));
  const code = await read(() => ckpt.model.embed(tensors(e.code)));
  const query = await read(() => ckpt.model.embed(tensors(e.query)));
  const cosine = await read(() => tf.matMul(ckpt.model.embed(tensors(e.query)), tf.transpose(ckpt.model.embed(tensors(e.code)))));
  assertClose(code, e.code_embeddings, 'code embeddings');
  assertClose(query, e.query_embeddings, 'query embeddings');
  assert.equal(e.cosine.rows, 'queries');
  assertClose(cosine, e.cosine.values, 'cosine matrix (queries × codes)');
  ckpt.model.dispose();
});

test('defect: loss and gradients (inputs_embeds, head, attention, word embeddings) equal torch autograd', async () => {
  const e = expected('defect');
  const g = e.gradients;
  const ckpt = loadCheckpoint(join(root, 'models', 'defect'));
  const t = tensors(e);
  const embeds = tf.tidy(() => ckpt.model.wordEmbeddings(t.inputIds));
  const loss = (x: tf.Tensor) => nllLoss(ckpt.model.logProbs({ inputsEmbeds: x as tf.Tensor3D, attentionMask: t.attentionMask }), g.labels);
  const { value, grad } = tf.valueAndGrad(loss)(embeds);
  const lossValue = (await value.data())[0];
  assert.ok(Math.abs(lossValue - g.loss) < TOLERANCE, `loss ${lossValue} vs ${g.loss}`);
  assertClose(await grad.array(), g.d_loss_d_inputs_embeds, 'd loss / d inputs_embeds');

  const names = ['classifier.out_proj.weight', 'encoder.layer.0.attention.self.query.weight', 'embeddings.word_embeddings.weight'];
  const { grads } = tf.variableGrads(() => nllLoss(ckpt.model.logProbs(t), g.labels), names.map((n) => ckpt.model.p(n)));
  const byName = (n: string) => grads[ckpt.model.p(n).name];
  // Linear weights are held transposed ([in, out]); torch reports [out, in].
  assertClose(await read(() => tf.transpose(byName(names[0]))), g.d_loss_d_params['classifier.out_proj.weight'], 'd loss / d classifier.out_proj.weight');
  assertClose(await read(() => tf.transpose(byName(names[1]))), g.d_loss_d_params['roberta.encoder.layer.0.attention.self.query.weight'], 'd loss / d query.weight');
  const rows = g.d_loss_d_params['roberta.embeddings.word_embeddings.weight'].rows as Record<string, number[]>;
  const ours = (await byName(names[2]).array()) as number[][];
  for (const [id, row] of Object.entries(rows)) assertClose(ours[Number(id)], row, `d loss / d word_embeddings[${id}]`);
  const used = new Set(Object.keys(rows).map(Number));
  assert.ok(ours.every((row, id) => used.has(id) || row.every((x) => x === 0)), 'rows of unused ids get no gradient');
  ckpt.model.dispose();
});

test('round trip: a checkpoint this runtime wrote loads in transformers with the same logits', async () => {
  const record = JSON.parse(readFileSync(join(root, 'roundtrip.json'), 'utf8'));
  assert.equal(record.ok, true, `recorded by scripts/golden/generate.py: ${record.reason ?? ''}`);
  assert.ok(record.maxAbsDiff <= TOLERANCE);
  assert.ok(record.maxAbsChangeFromModelsDefect > 0.01, 'the round-tripped weights differ from the generated ones');
  // The committed checkpoint is the one transformers checked, and this runtime still computes what it recorded.
  const dir = join(root, 'roundtrip');
  for (const [file, digest] of Object.entries(record.files as Record<string, string>)) {
    assert.equal(sha256(readFileSync(join(dir, file))), digest, file);
  }
  const outputs = JSON.parse(readFileSync(join(dir, 'outputs.json'), 'utf8'));
  const ckpt = loadCheckpoint(dir);
  const logits = await read(() => ckpt.model.logits(tensors(outputs)));
  assertClose(logits, outputs.logits, 'round-trip logits');
  ckpt.model.dispose();
});
