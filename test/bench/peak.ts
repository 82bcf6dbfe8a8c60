// The backend's plain-matmul throughput, the yardstick the benchmarks report fractions of. The
// products run back to back and only one element of the last is read: on a GPU, reading the whole
// result back would time the transfer (a 33 MB read dominated an H200's figure), not the product.
import * as tf from '@tensorflow/tfjs';

/** GFLOP/s of [m × k]·[k × n], over `reps` products after a warm-up (shader compilation, buffers). */
export async function matmulPeakGflops(m: number, k: number, n: number, reps = 20): Promise<number> {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const run = async (count: number) => {
    let last: tf.Tensor | undefined;
    for (let i = 0; i < count; i++) {
      last?.dispose();
      last = tf.matMul(a, b);
    }
    // Work on one device runs in order: when this element is back, every product is done.
    const corner = tf.slice(last!, [0, 0], [1, 1]);
    await corner.data();
    tf.dispose([corner, last!]);
  };
  try {
    await run(2);
    const t0 = performance.now();
    await run(reps);
    return (reps * 2 * m * k * n) / ((performance.now() - t0) / 1000) / 1e9;
  } finally {
    tf.dispose([a, b]);
  }
}
