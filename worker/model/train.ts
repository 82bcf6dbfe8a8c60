// Fine-tuning: AdamW (decoupled weight decay, as torch.optim.AdamW) with linear warm-up and
// decay, gradient clipping by global norm, and named parameter groups (e.g. head only).
import * as tf from '@tensorflow/tfjs';

export interface OptimizerOptions {
  learningRate: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  warmupSteps?: number;
  /** Steps after which the learning rate has decayed linearly to zero. */
  totalSteps: number;
  /** Clip gradients to this global L2 norm (0 disables). */
  maxGradNorm?: number;
}

/** Biases and LayerNorm weights are not decayed (the CodeXGLUE fine-tuning convention). */
const NO_DECAY = /(\.bias|LayerNorm\.weight)$/;

export function linearSchedule(step: number, peak: number, warmup: number, total: number): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  return peak * Math.max(0, (total - step) / Math.max(1, total - warmup));
}

export class AdamW {
  readonly params: Map<string, tf.Variable>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly o: Required<OptimizerOptions>;
  step = 0;

  constructor(params: Map<string, tf.Variable>, options: OptimizerOptions) {
    this.params = params;
    this.o = { weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, warmupSteps: 0, maxGradNorm: 1, ...options };
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  get learningRate(): number {
    return linearSchedule(this.step, this.o.learningRate, this.o.warmupSteps, this.o.totalSteps);
  }

  /**
   * One update from the gradient of `loss` over this optimizer's parameters; resolves to the loss,
   * the pre-clip gradient norm and the clip factor. The norm is read back asynchronously (a GPU
   * backend has no synchronous read) and the clip factor is computed from it on the host, exactly
   * as before, so every backend takes the same steps it always took.
   */
  async minimize(loss: () => tf.Scalar): Promise<{ loss: number; gradNorm: number; clipScale: number }> {
    const names = [...this.params.keys()];
    const { beta1, beta2, epsilon, weightDecay, maxGradNorm } = this.o;
    const lr = this.learningRate;
    const t = this.step + 1;
    const { value, grads } = tf.variableGrads(loss, names.map((n) => this.params.get(n)!));
    const gradList = names.map((n) => grads[this.params.get(n)!.name]);
    // A chain of adds, not tf.addN: webgpu binds every addN input at once and refuses more than 8
    // (the same float32 sum, in the same order, as addN's on wasm and cpu).
    const norm = tf.tidy(() => tf.sqrt(gradList.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))));
    try {
      const [[lossValue], [normValue]] = await Promise.all([value.data(), norm.data()]);
      const clip = maxGradNorm > 0 && normValue > maxGradNorm ? maxGradNorm / (normValue + 1e-6) : 1;
      const stepSize = lr / (1 - beta1 ** t);
      const correction2 = 1 - beta2 ** t;
      tf.tidy(() => {
        names.forEach((name, i) => {
          const p = this.params.get(name)!;
          const g = clip === 1 ? gradList[i] : tf.mul(gradList[i], clip);
          const m = this.m.get(name)!;
          const v = this.v.get(name)!;
          m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
          v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
          const decayed = weightDecay > 0 && !NO_DECAY.test(name) ? tf.mul(p, 1 - lr * weightDecay) : p;
          const denom = tf.add(tf.sqrt(tf.div(v, correction2)), epsilon);
          p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        });
      });
      this.step++;
      return { loss: lossValue, gradNorm: normValue, clipScale: clip };
    } finally {
      tf.dispose([value, norm, ...gradList]);
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** Mean negative log-likelihood of `labels` under log-probabilities [batch, classes]. */
export function nllLoss(logProbs: tf.Tensor2D, labels: number[]): tf.Scalar {
  const picked = tf.mul(logProbs, tf.oneHot(tf.tensor1d(labels, 'int32'), logProbs.shape[1]));
  return tf.neg(tf.div(tf.sum(picked), labels.length)) as tf.Scalar;
}

/** In-batch contrastive loss of a bi-encoder: query i should rank code i first (scaled cosine, cross-entropy). */
export function contrastiveLoss(queries: tf.Tensor2D, codes: tf.Tensor2D, scale = 20): tf.Scalar {
  const scores = tf.mul(tf.matMul(queries, tf.transpose(codes)), scale) as tf.Tensor2D;
  return nllLoss(tf.logSoftmax(scores), [...Array(queries.shape[0]).keys()]);
}
