// Cosine similarity of each code to its own query (code-search position selection).
import * as tf from '@tensorflow/tfjs';
import type { Roberta } from '../model/roberta.ts';
import { batches, padBatch } from './objective.ts';

export async function embeddings(model: Roberta, pad: number, codes: number[][], queries: number[][], tokensPerBatch: number): Promise<number[]> {
  const out = new Array<number>(codes.length);
  const order = codes.map((_, i) => i);
  for (const b of batches(order, (i) => Math.max(codes[i].length, queries[i].length), tokensPerBatch)) {
    const s = tf.tidy(() => {
      const c = model.embed(padBatch(b.map((i) => codes[i]), pad));
      const q = model.embed(padBatch(b.map((i) => queries[i]), pad));
      return tf.sum(tf.mul(c, q), 1);
    });
    const v = await s.data();
    s.dispose();
    b.forEach((i, j) => (out[i] = v[j]));
  }
  return out;
}
