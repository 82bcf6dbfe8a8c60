import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../worker/model/backend.ts';
import { parseConfig } from '../worker/model/config.ts';
import { bmm, embeddingLookup, linear } from '../worker/model/ops.ts';
import { Roberta } from '../worker/model/roberta.ts';
import { AdamW, contrastiveLoss, linearSchedule, nllLoss } from '../worker/model/train.ts';
import { accuracy, f1, mrr } from '../worker/model/metrics.ts';
import { read, scalar } from '../worker/model/read.ts';

await initBackend();

const tinyConfig = parseConfig({
  model_type: 'roberta', vocab_size: 50, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
  intermediate_size: 32, max_position_embeddings: 20, architectures: ['RobertaForSequenceClassification'], num_labels: 2,
});
const batch = {
  inputIds: tf.tensor2d([[0, 7, 8, 9, 2, 1], [0, 10, 11, 2, 1, 1], [0, 7, 12, 13, 14, 2], [0, 15, 2, 1, 1, 1]], undefined, 'int32'),
  attentionMask: tf.tensor2d([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], undefined, 'int32'),
};
const labels = [1, 0, 1, 0];


test('custom gradients of linear and batched matmul equal the built-in ones', async () => {
  const x = tf.randomNormal([5, 4], 0, 1, 'float32', 1) as tf.Tensor2D;
  const w = tf.randomNormal([4, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
  const b = tf.randomNormal([3], 0, 1, 'float32', 3) as tf.Tensor1D;
  const weights = (y: tf.Tensor) => tf.range(1, y.size + 1).reshape(y.shape);
  const ours = tf.grads((x, w, b) => tf.sum(tf.mul(linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), weights(tf.zeros([5, 3])))))([x, w, b]);
  const builtIn = tf.grads((x, w, b) => tf.sum(tf.mul(tf.add(tf.matMul(x, w), b), weights(tf.zeros([5, 3])))))([x, w, b]);
  for (const [i, g] of ours.entries()) assert.ok((await scalar(() => tf.max(tf.abs(tf.sub(g, builtIn[i]))))) < 1e-5, `linear input ${i}`);

  const p = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 4) as tf.Tensor3D;
  const q = tf.randomNormal([3, 5, 2], 0, 1, 'float32', 5) as tf.Tensor3D;
  const ourB = tf.grads((p, q) => tf.sum(tf.mul(bmm(p as tf.Tensor3D, q as tf.Tensor3D), weights(tf.zeros([3, 4, 2])))))([p, q]);
  const refB = tf.grads((p, q) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor3D, q as tf.Tensor3D), weights(tf.zeros([3, 4, 2])))))([p, q]);
  for (const [i, g] of ourB.entries()) assert.ok((await scalar(() => tf.max(tf.abs(tf.sub(g, refB[i]))))) < 1e-4, `bmm input ${i}`);
});

test('the embedding gradient scatter-adds, summing rows used more than once', async () => {
  const table = tf.randomNormal([6, 3], 0, 1, 'float32', 7) as tf.Tensor2D;
  const ids = tf.tensor1d([4, 1, 4, 4], 'int32');
  const upstream = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
  const g = tf.grad((t) => tf.sum(tf.mul(embeddingLookup(t as tf.Tensor2D, ids), upstream)))(table);
  assert.deepEqual(await g.array(), [[0, 0, 0], [4, 5, 6], [0, 0, 0], [0, 0, 0], [18, 21, 24], [0, 0, 0]]);
  assert.deepEqual(await read(() => embeddingLookup(table, ids)), await read(() => tf.gather(table, ids)));
});

test('linear warm-up then linear decay to zero', async () => {
  assert.equal(linearSchedule(0, 1, 4, 10), 0.25);
  assert.equal(linearSchedule(3, 1, 4, 10), 1);
  assert.equal(linearSchedule(4, 1, 4, 10), 1);
  assert.equal(linearSchedule(7, 1, 4, 10), 0.5);
  assert.equal(linearSchedule(10, 1, 4, 10), 0);
  assert.equal(linearSchedule(0, 2e-5, 0, 100), 2e-5);
});

test('AdamW takes the bias-corrected Adam step and decays weights apart from the gradient', async () => {
  const p = tf.variable(tf.tensor1d([1, -2]));
  const bias = tf.variable(tf.tensor1d([0.5]));
  const opt = new AdamW(new Map([['w.weight', p], ['w.bias', bias]]), { learningRate: 0.1, totalSteps: 100, weightDecay: 0.5, maxGradNorm: 0 });
  // loss = 3*w0 + 4*w1 + 2*b: the first Adam step moves each parameter by lr*sign(g).
  await opt.minimize(() => tf.add(tf.sum(tf.mul(p, tf.tensor1d([3, 4]))), tf.mul(tf.sum(bias), 2)) as tf.Scalar);
  const [w0, w1] = await p.data();
  assert.ok(Math.abs(w0 - (1 * (1 - 0.1 * 0.5) - 0.1)) < 1e-6, `w0 ${w0}`);
  assert.ok(Math.abs(w1 - (-2 * (1 - 0.1 * 0.5) - 0.1)) < 1e-6, `w1 ${w1}`);
  assert.ok(Math.abs((await bias.data())[0] - (0.5 - 0.1)) < 1e-6, 'biases are not decayed');
  opt.dispose();
});

test('gradients are clipped to the global norm', async () => {
  const p = tf.variable(tf.tensor1d([0, 0]));
  const opt = new AdamW(new Map([['p', p]]), { learningRate: 0.1, totalSteps: 10, maxGradNorm: 1 });
  const r = await opt.minimize(() => tf.sum(tf.mul(p, tf.tensor1d([30, 40]))) as tf.Scalar);
  assert.ok(Math.abs(r.gradNorm - 50) < 1e-4);
  assert.equal(r.clipScale.toFixed(4), (1 / 50).toFixed(4));
  opt.dispose();
});

test('fine-tuning fits a small batch and leaks no tensors: the count after 100 steps equals the count after 1', async () => {
  const model = Roberta.init(tinyConfig, 'classify', 3);
  const opt = new AdamW(model.params, { learningRate: 5e-3, totalSteps: 100, warmupSteps: 5, weightDecay: 0.01 });
  const first = (await opt.minimize(() => nllLoss(model.logProbs(batch, { training: true }), labels))).loss;
  const afterOne = tf.memory().numTensors;
  let last = first;
  for (let i = 1; i < 100; i++) last = (await opt.minimize(() => nllLoss(model.logProbs(batch, { training: true }), labels))).loss;
  assert.equal(tf.memory().numTensors, afterOne);
  assert.ok(last < first / 4, `loss ${first} -> ${last}`);
  const predicted = await read<number[]>(() => tf.argMax(model.logProbs(batch), 1));
  assert.deepEqual(predicted, labels);
  opt.dispose();
  model.dispose();
});

test('a head-only parameter group leaves the encoder untouched', async () => {
  const model = Roberta.init(tinyConfig, 'classify', 4);
  const before = new Map(await Promise.all([...model.params].map(async ([n, v]) => [n, (await v.data()).slice()] as const)));
  const opt = new AdamW(model.trainable(['classifier.']), { learningRate: 1e-2, totalSteps: 5 });
  for (let i = 0; i < 3; i++) await opt.minimize(() => nllLoss(model.logProbs(batch, { training: true }), labels));
  for (const [name, v] of model.params) {
    const changed = (await v.data()).some((x, i) => x !== before.get(name)![i]);
    assert.equal(changed, name.startsWith('classifier.'), name);
  }
  assert.throws(() => model.trainable(['nothing.']), /no parameter matches nothing\./);
  opt.dispose();
  model.dispose();
});

test('dropout is off in inference and on in training', async () => {
  const model = Roberta.init(tinyConfig, 'classify', 5);
  const a = await read(() => model.logits(batch));
  const b = await read(() => model.logits(batch));
  assert.deepEqual(a, b);
  const c = await read(() => model.logits(batch, { training: true }));
  assert.notDeepEqual(a, c);
  model.dispose();
});

test('the code-search bi-encoder learns to rank its own code first', async () => {
  const config = parseConfig({ ...tinyConfig, architectures: ['RobertaModel'] });
  const model = Roberta.init(config, 'search', 6);
  const queries = { inputIds: tf.tensor2d([[0, 20, 21, 2], [0, 22, 23, 2], [0, 24, 25, 2]], undefined, 'int32'), attentionMask: tf.ones([3, 4], 'int32') as tf.Tensor2D };
  const codes = { inputIds: tf.tensor2d([[0, 30, 31, 2], [0, 32, 33, 2], [0, 34, 35, 2]], undefined, 'int32'), attentionMask: tf.ones([3, 4], 'int32') as tf.Tensor2D };
  const opt = new AdamW(model.params, { learningRate: 5e-3, totalSteps: 60 });
  for (let i = 0; i < 60; i++) await opt.minimize(() => contrastiveLoss(model.embed(queries, { training: true }), model.embed(codes, { training: true })));
  const scores = await read<number[][]>(() => tf.matMul(model.embed(queries), tf.transpose(model.embed(codes))));
  assert.equal(mrr(scores), 1);
  const norms = await read<number[]>(() => tf.norm(model.embed(codes), 'euclidean', 1));
  norms.forEach((n) => assert.ok(Math.abs(n - 1) < 1e-5));
  opt.dispose();
  model.dispose();
});

test('metrics: accuracy, F1 of the positive class, mean reciprocal rank', async () => {
  assert.equal(accuracy([1, 0, 1, 1], [1, 0, 0, 1]), 0.75);
  assert.equal(f1([1, 0, 1, 1], [1, 0, 0, 1]), 0.8);
  assert.equal(f1([0, 0], [0, 0]), 0);
  // Query 1 ranks its code second (0.8 > 0.2): reciprocal rank 1/2.
  assert.equal(mrr([[0.9, 0.1, 0.5], [0.8, 0.2, 0.1], [0.1, 0.2, 0.3]]), (1 + 1 / 2 + 1) / 3);
});
