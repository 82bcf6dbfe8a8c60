// The RoBERTa encoder as Hugging Face transformers computes it, with the heads code models
// are fine-tuned with (CodeXGLUE): sequence classification, defect detection (one logit),
// clone detection on a pair, and the code-search bi-encoder.
//
// Parameters are tf.Variables keyed by their Hugging Face names without the `roberta.`
// prefix. Linear weights are held as [in, out], the transpose of torch's [out, in], so that
// every forward product is a plain matmul (the fast one on wasm).
import * as tf from '@tensorflow/tfjs';
import { type RobertaConfig, type Task, numLabels } from './config.ts';
import { bmm, embeddingLookup, gelu, layerNorm, linear } from './ops.ts';

export interface Inputs {
  /** [batch, length] token ids; or give inputsEmbeds instead. */
  inputIds?: tf.Tensor2D;
  /** [batch, length, hidden] word embeddings (position and token-type embeddings are still added). */
  inputsEmbeds?: tf.Tensor3D;
  /** [batch, length] 1 for real tokens, 0 for padding. */
  attentionMask: tf.Tensor2D;
}

export interface ForwardOptions {
  /** Dropout on (training) or off (inference, the default). */
  training?: boolean;
}

/** Hugging Face name → torch shape of every parameter a checkpoint of this config and task must hold. */
export function parameterShapes(config: RobertaConfig, task: Task): Map<string, number[]> {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const shapes = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [config.vocab_size, H]],
    ['embeddings.position_embeddings.weight', [config.max_position_embeddings, H]],
    ['embeddings.token_type_embeddings.weight', [config.type_vocab_size, H]],
    ['embeddings.LayerNorm.weight', [H]],
    ['embeddings.LayerNorm.bias', [H]],
  ]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `encoder.layer.${i}`;
    for (const [name, out, inp] of [
      ['attention.self.query', H, H],
      ['attention.self.key', H, H],
      ['attention.self.value', H, H],
      ['attention.output.dense', H, H],
      ['intermediate.dense', I, H],
      ['output.dense', H, I],
    ] as const) {
      shapes.set(`${l}.${name}.weight`, [out, inp]);
      shapes.set(`${l}.${name}.bias`, [out]);
    }
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      shapes.set(`${l}.${ln}.weight`, [H]);
      shapes.set(`${l}.${ln}.bias`, [H]);
    }
  }
  if (task !== 'search') {
    const headIn = task === 'clone' ? 2 * H : H;
    const labels = task === 'clone' ? 2 : numLabels(config);
    shapes.set('classifier.dense.weight', [H, headIn]);
    shapes.set('classifier.dense.bias', [H]);
    shapes.set('classifier.out_proj.weight', [labels, H]);
    shapes.set('classifier.out_proj.bias', [labels]);
  }
  return shapes;
}

/** Linear weights are stored transposed; embedding tables and vectors are not. */
export function isLinearWeight(name: string, rank: number): boolean {
  return rank === 2 && name.endsWith('.weight') && !name.startsWith('embeddings.');
}

export class Roberta {
  readonly config: RobertaConfig;
  readonly task: Task;
  readonly params: Map<string, tf.Variable>;
  readonly headDim: number;
  private dropoutSeed: number;

  constructor(config: RobertaConfig, task: Task, params: Map<string, tf.Variable>, seed = 0) {
    this.config = config;
    this.task = task;
    this.params = params;
    this.headDim = config.hidden_size / config.num_attention_heads;
    this.dropoutSeed = seed;
  }

  /** A freshly initialised model (normal(0, 0.02) weights, as transformers' _init_weights). */
  static init(config: RobertaConfig, task: Task, seed: number): Roberta {
    const params = new Map<string, tf.Variable>();
    let s = seed;
    for (const [name, shape] of parameterShapes(config, task)) {
      const value = tf.tidy(() => {
        if (name.endsWith('LayerNorm.weight')) return tf.ones(shape);
        if (shape.length === 1) return tf.zeros(shape);
        let w: tf.Tensor = tf.truncatedNormal(shape, 0, 0.02, 'float32', s++);
        if (name === 'embeddings.word_embeddings.weight' || name === 'embeddings.position_embeddings.weight') {
          // The padding row is zero, as nn.Embedding(padding_idx=...) makes it.
          const keep = tf.reshape(tf.oneHot(tf.tensor1d([config.pad_token_id], 'int32'), shape[0]), [shape[0], 1]);
          w = tf.mul(w, tf.sub(1, keep));
        }
        return isLinearWeight(name, shape.length) ? tf.transpose(w) : w;
      });
      // Unnamed: tf variable names are process-global, and several models may be alive at once.
      params.set(name, tf.variable(value, true));
      value.dispose();
    }
    return new Roberta(config, task, params, seed);
  }

  p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`model has no parameter "${name}"`);
    return v;
  }

  private dropout<T extends tf.Tensor>(x: T, rate: number, training: boolean): T {
    if (!training || rate === 0) return x;
    return tf.dropout(x, rate, undefined, this.dropoutSeed++) as T;
  }

  /** Word embeddings of ids [batch, length] → [batch, length, hidden]: the `inputs_embeds` of transformers. */
  wordEmbeddings(inputIds: tf.Tensor2D): tf.Tensor3D {
    const [B, L] = inputIds.shape;
    const rows = embeddingLookup(this.p('embeddings.word_embeddings.weight') as tf.Tensor2D, tf.reshape(inputIds, [-1]) as tf.Tensor1D);
    return tf.reshape(rows, [B, L, this.config.hidden_size]);
  }

  /** The last hidden state [batch, length, hidden]. */
  encode(inputs: Inputs, { training = false }: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const H = c.hidden_size;
    const nh = c.num_attention_heads;
    const d = this.headDim;
    const mask = tf.cast(inputs.attentionMask, 'float32') as tf.Tensor2D;
    const [B, L] = mask.shape;
    if (L > c.max_position_embeddings - c.pad_token_id - 1) {
      throw new Error(`sequence length ${L} exceeds the ${c.max_position_embeddings - c.pad_token_id - 1} positions this model has`);
    }

    // RoBERTa position ids count real tokens from padding_idx + 1; padding keeps padding_idx.
    // From ids transformers uses ids != pad; from embeddings we use the attention mask (same for right padding).
    const real = inputs.inputIds ? tf.cast(tf.notEqual(inputs.inputIds, c.pad_token_id), 'int32') : tf.cast(mask, 'int32');
    const positionIds = tf.add(tf.mul(tf.cumsum(real, 1), real), tf.scalar(c.pad_token_id, 'int32')) as tf.Tensor2D;

    const words = inputs.inputsEmbeds ?? this.wordEmbeddings(inputs.inputIds!);
    const positions = embeddingLookup(this.p('embeddings.position_embeddings.weight') as tf.Tensor2D, tf.reshape(positionIds, [-1]) as tf.Tensor1D);
    const tokenType = tf.slice(this.p('embeddings.token_type_embeddings.weight'), [0, 0], [1, H]);
    let x = tf.add(tf.add(tf.reshape(words, [B * L, H]), positions), tokenType) as tf.Tensor2D;
    x = layerNorm(x, this.p('embeddings.LayerNorm.weight') as tf.Tensor1D, this.p('embeddings.LayerNorm.bias') as tf.Tensor1D, c.layer_norm_eps);
    x = this.dropout(x, c.hidden_dropout_prob, training);

    // Additive mask: padded keys get a large negative score (transformers uses finfo.min).
    const maskBias = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, L]);
    const scale = 1 / Math.sqrt(d);
    // [B*L, H] → [B*nh, L, d], and → [B*nh, d, L] for keys, ready for a plain q·kᵀ.
    const toHeads = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [B, L, nh, d]), [0, 2, 1, 3]), [B * nh, L, d]) as tf.Tensor3D;
    const toHeadsTransposed = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [B, L, nh, d]), [0, 2, 3, 1]), [B * nh, d, L]) as tf.Tensor3D;

    for (let i = 0; i < c.num_hidden_layers; i++) {
      const l = (n: string) => this.p(`encoder.layer.${i}.${n}`);
      const qkvW = tf.concat([l('attention.self.query.weight'), l('attention.self.key.weight'), l('attention.self.value.weight')], 1) as tf.Tensor2D;
      const qkvB = tf.concat([l('attention.self.query.bias'), l('attention.self.key.bias'), l('attention.self.value.bias')]) as tf.Tensor1D;
      // Heads via rank-4 transposes: wasm's rank-5 transpose is ~50x slower.
      const [q, k, v] = tf.split(linear(x, qkvW, qkvB), 3, 1);
      const scores = bmm(toHeads(tf.mul(q, scale)), toHeadsTransposed(k));
      let probs = tf.softmax(tf.add(tf.reshape(scores, [B, nh, L, L]), maskBias));
      probs = this.dropout(probs, c.attention_probs_dropout_prob, training);
      const context = bmm(tf.reshape(probs, [B * nh, L, L]) as tf.Tensor3D, toHeads(v));
      const merged = tf.reshape(tf.transpose(tf.reshape(context, [B, nh, L, d]), [0, 2, 1, 3]), [B * L, H]) as tf.Tensor2D;
      let attended = linear(merged, l('attention.output.dense.weight') as tf.Tensor2D, l('attention.output.dense.bias') as tf.Tensor1D);
      attended = this.dropout(attended, c.hidden_dropout_prob, training);
      x = layerNorm(tf.add(attended, x), l('attention.output.LayerNorm.weight') as tf.Tensor1D, l('attention.output.LayerNorm.bias') as tf.Tensor1D, c.layer_norm_eps);

      const hidden = gelu(linear(x, l('intermediate.dense.weight') as tf.Tensor2D, l('intermediate.dense.bias') as tf.Tensor1D));
      let out = linear(hidden, l('output.dense.weight') as tf.Tensor2D, l('output.dense.bias') as tf.Tensor1D);
      out = this.dropout(out, c.hidden_dropout_prob, training);
      x = layerNorm(tf.add(out, x), l('output.LayerNorm.weight') as tf.Tensor1D, l('output.LayerNorm.bias') as tf.Tensor1D, c.layer_norm_eps);
    }
    return tf.reshape(x, [B, L, H]);
  }

  /** The `<s>` vector of each sequence: [batch, hidden]. */
  private firstToken(sequence: tf.Tensor3D): tf.Tensor2D {
    const [B, , H] = sequence.shape;
    return tf.reshape(tf.slice(sequence, [0, 0, 0], [B, 1, H]), [B, H]);
  }

  /** Classification logits [batch, labels]; defect detection has one logit, clone detection needs `pair`. */
  logits(inputs: Inputs, options: ForwardOptions = {}, pair?: Inputs): tf.Tensor2D {
    if (this.task === 'search') throw new Error('a code-search bi-encoder has no classification head; use embed()');
    const training = options.training ?? false;
    let features = this.firstToken(this.encode(inputs, options));
    if (this.task === 'clone') {
      if (!pair) throw new Error('clone detection needs a pair of inputs');
      features = tf.concat([features, this.firstToken(this.encode(pair, options))], 1);
    }
    const dropRate = this.config.classifier_dropout ?? this.config.hidden_dropout_prob;
    features = this.dropout(features, dropRate, training);
    let h = tf.tanh(linear(features, this.p('classifier.dense.weight') as tf.Tensor2D, this.p('classifier.dense.bias') as tf.Tensor1D));
    h = this.dropout(h, dropRate, training);
    return linear(h, this.p('classifier.out_proj.weight') as tf.Tensor2D, this.p('classifier.out_proj.bias') as tf.Tensor1D);
  }

  /** Log-probabilities [batch, classes]; a one-logit defect head becomes [log(1-p), log p]. */
  logProbs(inputs: Inputs, options: ForwardOptions = {}, pair?: Inputs): tf.Tensor2D {
    return toLogProbs(this.logits(inputs, options, pair));
  }

  /** Mean of the last hidden state over real tokens: [batch, hidden]. */
  meanPooled(inputs: Inputs, options: ForwardOptions = {}): tf.Tensor2D {
    const sequence = this.encode(inputs, options);
    const mask = tf.expandDims(tf.cast(inputs.attentionMask, 'float32'), 2);
    return tf.div(tf.sum(tf.mul(sequence, mask), 1), tf.sum(mask, 1)) as tf.Tensor2D;
  }

  /** Code-search embedding: the mean-pooled vector, L2-normalised (similarity is then a dot product). */
  embed(inputs: Inputs, options: ForwardOptions = {}): tf.Tensor2D {
    const mean = this.meanPooled(inputs, options);
    return tf.div(mean, tf.maximum(tf.norm(mean, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D;
  }

  /** Tensors of the trainable parameters whose names start with one of `prefixes` (all when empty). */
  trainable(prefixes: string[] = []): Map<string, tf.Variable> {
    if (prefixes.length === 0) return new Map(this.params);
    const chosen = new Map([...this.params].filter(([name]) => prefixes.some((p) => name.startsWith(p))));
    if (chosen.size === 0) throw new Error(`no parameter matches ${prefixes.join(', ')}`);
    return chosen;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

export function toLogProbs(logits: tf.Tensor2D): tf.Tensor2D {
  // log(1-σ(z)) = -softplus(z), log σ(z) = -softplus(-z). Not tf.logSigmoid: its gradient
  // reads a tensor it did not save, which is disposed by the time the backward pass runs.
  if (logits.shape[1] === 1) return tf.concat([tf.neg(tf.softplus(logits)), tf.neg(tf.softplus(tf.neg(logits)))], 1);
  return tf.logSoftmax(logits);
}
