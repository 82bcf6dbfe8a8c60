// Differentiable building blocks whose gradients avoid the slow paths of the wasm backend:
// its transposed matmuls run ~10x slower than plain ones and it lacks UnsortedSegmentSum
// (the built-in gradient of gather). Every backward product here transposes explicitly
// and then multiplies plainly; the embedding gradient scatter-adds.
import * as tf from '@tensorflow/tfjs';

type Backward = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
type Forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: Backward };

/** tf.customGrad with the inputs as an array and the save function apart. */
function differentiable(forward: Forward): (...inputs: tf.Tensor[]) => tf.Tensor {
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    return forward(args as tf.Tensor[], save);
  };
  return tf.customGrad(f as Parameters<typeof tf.customGrad>[0]);
}

const linearOp = differentiable(([x, w, b], save) => {
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
    gradFunc: (dy, [xs, ws]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(ws as tf.Tensor2D)),
      tf.matMul(tf.transpose(xs as tf.Tensor2D), dy as tf.Tensor2D),
      tf.sum(dy, 0),
    ],
  };
});

// wasm runs a batched product (batch > 1) through a plain blocked loop, not XNNPACK, whether
// or not an operand is transposed; slicing into batch-1 products costs more in per-op
// overhead than it saves. So attention products stay batched, with a backward of the same kind.
const bmmOp = differentiable(([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy, [as, bs]) => [
      tf.matMul(dy as tf.Tensor3D, bs as tf.Tensor3D, false, true),
      tf.matMul(as as tf.Tensor3D, dy as tf.Tensor3D, true, false),
    ],
  };
});

const embeddingOp = differentiable(([table, ids], save) => {
  // Saved so the ids outlive the forward's scope until the backward pass.
  save([ids]);
  const shape = table.shape as [number, number];
  return {
    value: tf.gather(table, ids as tf.Tensor1D),
    gradFunc: (dy, [savedIds]) => [tf.scatterND(tf.expandDims(savedIds, 1), dy, shape), tf.zerosLike(savedIds)],
  };
});

/** x [n, in] · w [in, out] + b [out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return linearOp(x, w, b) as tf.Tensor2D;
}

/** Batched a [n, p, q] · b [n, q, r] with a plain-product backward. */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return bmmOp(a, b) as tf.Tensor3D;
}

/** Rows of table [vocab, width] for ids [n]; the gradient scatter-adds into the rows used. */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  return embeddingOp(table, ids) as tf.Tensor2D;
}

/** LayerNorm over the last axis with a biased variance, as torch computes it. */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** The exact (erf) GELU of BERT/RoBERTa, not the tanh approximation. */
export function gelu(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}
