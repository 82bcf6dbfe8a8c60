// Spec 2.3 / 2.4 / 6.2: candidate generation, the one-hot gradient identity, anchoring, determinism.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';
import { readExamples } from '../worker/model/tasks.ts';
import { rng } from '../worker/rng.ts';
import { anchor } from '../worker/pipeline/anchoring.ts';
import { invert, singleSwapCandidates } from '../worker/pipeline/inversion.ts';
import { ClassificationObjective, padBatch } from '../worker/pipeline/objective.ts';
import { encodeIds, insertTokens } from '../worker/pipeline/positions.ts';
import { triggerVocabulary } from '../worker/pipeline/vocabulary.ts';
import { DEVIGN, GOLDEN_DEFECT } from './pipeline.helpers.ts';

await initBackend('wasm');

test('candidates: Hamming distance 1, from the position\'s top-k, distinct, never seen before', () => {
  const current = [1, 2, 3];
  const top = [[10, 11, 12], [20, 21], [30, 3]];
  const visited = new Set<string>([current.join(',')]);
  const random = rng(1);
  const a = singleSwapCandidates(current, top, 4, visited, random);
  assert.equal(a.length, 4);
  for (const c of a) {
    const diff = c.map((x, i) => (x !== current[i] ? i : -1)).filter((i) => i >= 0);
    assert.equal(diff.length, 1);
    assert.ok(top[diff[0]].includes(c[diff[0]]));
  }
  assert.equal(new Set(a.map((c) => c.join(','))).size, 4);
  // The neighbourhood has 3 + 2 + 1 = 6 members: 2 are left, then nothing, and it terminates.
  const b = singleSwapCandidates(current, top, 4, visited, random);
  assert.equal(b.length, 2);
  assert.ok(b.every((c) => !a.some((x) => x.join(',') === c.join(','))));
  assert.deepEqual(singleSwapCandidates(current, top, 4, visited, random), []);
});

test('top-k from (∂L/∂e_t)·E_fᵀ equals top-k of the autodiff gradient w.r.t. the one-hot matrix', async () => {
  const ck = loadCheckpoint(GOLDEN_DEFECT);
  const vocab = triggerVocabulary(ck.tokenizer).ids;
  const rows = readExamples(join(DEVIGN, 'train.jsonl'), 'defect').slice(0, 4);
  const samples = rows.map((r) => ({ where: r.where, code: r.code, ids: encodeIds(ck.tokenizer, r.code, 48), label: 1 }));
  const positions = [3, 5, 7, 9];
  const trigger = [vocab[5], vocab[50], vocab[100]];
  const obj = new ClassificationObjective({ model: ck.model, vocabulary: vocab, samples, positions, target: 0, triggerLength: 3, pad: ck.tokenizer.pad, sep: ck.tokenizer.sep, options: { maxLength: 48 } });
  const [ours] = await obj.topK([trigger], 8);
  // Reference: a one-hot O over V_f, e = O·E_f, spliced at the positions; G = ∂L/∂O.
  const G = tf.tidy(() => {
    const seqs = samples.map((s, i) => insertTokens(s.ids, positions[i], trigger, 48, ck.tokenizer.sep));
    const a = padBatch(seqs, ck.tokenizer.pad);
    const W = ck.model.p('embeddings.word_embeddings.weight');
    const Ef = tf.gather(W, tf.tensor1d(vocab, 'int32'));
    const O = tf.oneHot(tf.tensor1d(trigger.map((t) => vocab.indexOf(t)), 'int32'), vocab.length).toFloat();
    const base = ck.model.wordEmbeddings(a.inputIds).arraySync() as number[][][];
    return tf.grad((o: tf.Tensor) => {
      const e = tf.matMul(o, Ef);
      const rowsOut: tf.Tensor[] = [];
      seqs.forEach((seq, b) => {
        const parts: tf.Tensor[] = [];
        for (let j = 0; j < base[b].length; j++) {
          const k = j - positions[b];
          parts.push(k >= 0 && k < 3 ? tf.slice(e, [k, 0], [1, -1]) : tf.tensor2d([base[b][j]]));
        }
        rowsOut.push(tf.concat(parts));
      });
      const lp = ck.model.logProbs({ inputsEmbeds: tf.stack(rowsOut) as tf.Tensor3D, attentionMask: a.attentionMask });
      return tf.neg(tf.mean(tf.slice(lp, [0, 0], [-1, 1])));
    })(O);
  });
  const ref = tf.topk(tf.neg(G as tf.Tensor2D), 8).indices.arraySync() as number[][];
  assert.deepEqual(ours, ref);
  obj.dispose();
  ck.model.dispose();
});

test('anchoring keeps exactly the tokens whose removal raises the loss by more than beta, in order', async () => {
  // Stub loss: only tokens 20 and 40 matter (removing either costs 0.5); removing 30 lowers it by 0.3.
  const trigger = [10, 20, 30, 40, 50];
  const lossOf = async (ts: number[][]) => ts.map((t) => 1 + (t.includes(20) ? 0 : 0.5) + (t.includes(40) ? 0 : 0.5) - (t.includes(30) ? 0 : 0.3));
  const a = await anchor(trigger, 1, lossOf, 0.15);
  assert.deepEqual(a.tokens, [20, 40]);
  assert.deepEqual(a.leaveOneOut, [1, 1.5, 0.7, 1.5, 1]);
  assert.deepEqual((await anchor(trigger, 1, lossOf, 0.6)).tokens, []);
  assert.deepEqual((await anchor(trigger, 1, lossOf, 0.15, true)).tokens, [20, 30, 40], 'two-sided keeps 30');
  await assert.rejects(anchor(trigger, 1, lossOf, -1), /beta/);
});

test('anchoring with repeats keeps every copy of a token that matters only as a whole (GCG repeating the planted piece)', async () => {
  // Stub loss: 7 lowers the loss as long as one copy is left; 9 and 5 do nothing.
  const trigger = [7, 9, 7, 7, 5];
  const lossOf = async (ts: number[][]) => ts.map((t) => (t.includes(7) ? 1 : 2));
  const perPosition = await anchor(trigger, 1, lossOf, 0.15);
  assert.deepEqual(perPosition.tokens, [], 'the reference rule drops every copy');
  assert.deepEqual(perPosition.leaveTokenOut, [{ tokenId: 7, copies: 3, loss: 2, matters: true, kept: false }], 'and reports that 7 matters as a whole');
  const a = await anchor(trigger, 1, lossOf, 0.15, false, true);
  assert.deepEqual(a.tokens, [7, 7, 7]);
  assert.deepEqual(a.kept, [0, 2, 3]);
  assert.deepEqual(a.leaveOneOut, [1, 1, 1, 1, 1], 'the per-position losses are still reported');
  assert.deepEqual(a.leaveTokenOut, [{ tokenId: 7, copies: 3, loss: 2, matters: true, kept: true }]);
  // A repeated token that does not matter as a whole stays out; one already kept per position is not tested again.
  const flat = await anchor([4, 4, 6], 1, async (ts) => ts.map(() => 1.1), 0.15, false, true);
  assert.deepEqual(flat.tokens, []);
  assert.deepEqual(flat.leaveTokenOut, [{ tokenId: 4, copies: 2, loss: 1.1, matters: false, kept: false }]);
  const each = await anchor([4, 4], 1, async (ts) => ts.map((t) => 1 + 0.5 * (2 - t.length)), 0.15, false, true);
  assert.deepEqual(each.tokens, [4, 4]);
  assert.deepEqual(each.leaveTokenOut, [], 'its copies were already kept one by one');
});

test('same seed, same trigger; GCG keeps the global best and stops early on patience', async () => {
  const ck = loadCheckpoint(GOLDEN_DEFECT);
  const vocab = triggerVocabulary(ck.tokenizer).ids;
  const rows = readExamples(join(DEVIGN, 'train.jsonl'), 'defect').slice(0, 6);
  const samples = rows.map((r) => ({ where: r.where, code: r.code, ids: encodeIds(ck.tokenizer, r.code, 40), label: 1 }));
  const run = async (seed: number, patience = 0) => {
    const obj = new ClassificationObjective({ model: ck.model, vocabulary: vocab, samples, positions: samples.map(() => 4), target: 0, triggerLength: 3, pad: 1, sep: 2, options: { maxLength: 40 } });
    try {
      return await invert(obj, vocab, { topK: 8, candidates: 8, iterations: 6, seed, patience });
    } finally {
      obj.dispose();
    }
  };
  const a = await run(7);
  const b = await run(7);
  assert.deepEqual(a.best, b.best);
  assert.equal(a.bestLoss, b.bestLoss);
  assert.deepEqual(a.lossCurve, b.lossCurve);
  assert.equal(a.bestLoss, Math.min(a.initialLoss, ...a.lossCurve));
  assert.notDeepEqual((await run(8)).best, a.best);
  const p = await run(7, 1);
  assert.ok(p.iterations <= 6);
  if (p.stop === 'patience') assert.ok(p.iterations < 6);
  ck.model.dispose();
});
