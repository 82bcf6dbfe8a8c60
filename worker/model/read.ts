// Reading a computed tensor back on any backend: the webgpu backend has no synchronous read
// (dataSync/arraySync), so values are computed inside tidy and read asynchronously.
import * as tf from '@tensorflow/tfjs';

/** Computes `f` (its intermediates are freed) and resolves to its result as nested arrays. */
export async function read<T = any>(f: () => tf.Tensor): Promise<T> {
  const t = tf.tidy(f);
  try {
    return (await t.array()) as T;
  } finally {
    t.dispose();
  }
}

/** The scalar `f` computes. */
export async function scalar(f: () => tf.Tensor): Promise<number> {
  return read<number>(() => tf.reshape(f(), []));
}
