// The inversion objective L(t) of spec 2.3 (classification) and Algorithm 2 (code search), with
// its gradient with respect to the trigger embeddings and batched scoring of candidate triggers.
//
// Gradient: the one-hot gradient G = ∂L/∂O equals (∂L/∂e_t)·E_fᵀ (spec 2.3, TF.js tip), so the
// forward pass takes input embeddings where the trigger rows come from a [n, hidden] tensor e_t
// spliced in by a 0/1 selection matrix, and E_fᵀ is transposed once, explicitly, so the product is
// a plain matmul (wasm's transposed products are slow, tfjs-wasm.md).
import * as tf from '@tensorflow/tfjs';
import { read } from '../model/read.ts';
import type { Roberta } from '../model/roberta.ts';
import { insertTokens, type Sample } from './positions.ts';

export interface CandidateScore {
  loss: number;
  /** Fraction of samples predicted as the target with this trigger (classification only). */
  asr?: number;
}

/**
 * A GCG objective over one or two trigger "sides" (classification: the code trigger; search: the
 * code trigger and the query target). Triggers are model token ids.
 */
export interface Objective {
  /** Trigger length per side. */
  readonly sides: number[];
  /** Indices into `vocabulary` of the k tokens with the most negative one-hot gradient, per side and position. */
  topK(trigger: number[][], k: number): Promise<number[][][]>;
  /** Scores every combination of the per-side candidates; index = a·|B| + b for two sides. */
  score(candidates: number[][][]): Promise<CandidateScore[]>;
  /** Sequences passed through the model by the last score() call. */
  lastSequences: number;
  dispose(): void;
}

export interface BatchOptions {
  maxLength: number;
  /** Tokens per forward batch (sequences × padded length); bounds memory and keeps products large. */
  tokensPerBatch?: number;
  /** Dropout during inversion (the reference's train mode; off by default). */
  training?: boolean;
}

export function padBatch(seqs: readonly number[][], pad: number): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  const width = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * width).fill(pad);
  const mask = new Int32Array(seqs.length * width);
  seqs.forEach((s, i) => {
    ids.set(s, i * width);
    mask.fill(1, i * width, i * width + s.length);
  });
  return { inputIds: tf.tensor2d(ids, [seqs.length, width], 'int32'), attentionMask: tf.tensor2d(mask, [seqs.length, width], 'int32') };
}

/** Splits work items into batches of at most `tokens` padded tokens, keeping order. */
export function batches<T>(items: readonly T[], length: (x: T) => number, tokens: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let width = 0;
  for (const x of items) {
    const w = Math.max(width, length(x));
    if (cur.length > 0 && w * (cur.length + 1) > tokens) {
      out.push(cur);
      cur = [];
      width = 0;
    }
    cur.push(x);
    width = Math.max(width, length(x));
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Log-probabilities of `target` (and whether it is the argmax) for classifier inputs, batched. */
export async function targetLogProbs(
  model: Roberta,
  pad: number,
  items: ReadonlyArray<{ ids: number[]; pair?: number[] }>,
  target: number,
  o: BatchOptions,
): Promise<{ logp: Float32Array; hit: Uint8Array }> {
  const logp = new Float32Array(items.length);
  const hit = new Uint8Array(items.length);
  const order = items.map((_, i) => i);
  const len = (i: number) => Math.max(items[i].ids.length, items[i].pair?.length ?? 0);
  let done = 0;
  for (const batch of batches(order, len, o.tokensPerBatch ?? 8192)) {
    const out = tf.tidy(() => {
      const a = padBatch(batch.map((i) => items[i].ids), pad);
      const b = model.task === 'clone' ? padBatch(batch.map((i) => items[i].pair ?? [0, 2]), pad) : undefined;
      const lp = model.logProbs(a, { training: o.training ?? false }, b);
      const t = tf.reshape(tf.slice(lp, [0, target], [-1, 1]), [-1]);
      const isMax = tf.greaterEqual(t, tf.max(lp, 1));
      return [t, isMax];
    });
    const [t, isMax] = (await Promise.all(out.map((x) => x.data()))) as [Float32Array, Uint8Array];
    tf.dispose(out);
    batch.forEach((i, j) => {
      logp[i] = t[j];
      hit[i] = isMax[j] ? 1 : 0;
    });
    done += batch.length;
  }
  return { logp, hit };
}

/** Transposed embedding rows of the vocabulary, [hidden, |V_f|], for the gradient product. */
function transposedRows(model: Roberta, vocabulary: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => tf.transpose(tf.gather(model.p('embeddings.word_embeddings.weight'), tf.tensor1d(vocabulary as number[], 'int32'))) as tf.Tensor2D);
}

function topKIndices(grad: tf.Tensor2D, rowsT: tf.Tensor2D, k: number): Promise<number[][]> {
  return read<number[][]>(() => {
    const g = tf.matMul(grad, rowsT); // [n, |V_f|] = ∂L/∂O
    return tf.topk(tf.neg(g), Math.min(k, rowsT.shape[1])).indices;
  });
}

/** Inputs embeddings with the trigger rows replaced by `e` ([n, H]) at the given (row, column) slots. */
export function splice(base: tf.Tensor3D, keep: tf.Tensor3D, select: tf.Tensor2D, e: tf.Tensor2D): tf.Tensor3D {
  const [B, W, H] = base.shape;
  return tf.add(tf.mul(base, keep), tf.reshape(tf.matMul(select, e), [B, W, H])) as tf.Tensor3D;
}

/** Selection matrix [B·W, n] and keep mask [B, W, 1] for triggers of length n starting at starts[b] (a start ≥ W selects nothing in that row). */
export function selection(B: number, W: number, n: number, starts: number[]): { select: tf.Tensor2D; keep: tf.Tensor3D } {
  const sel = new Float32Array(B * W * n);
  const keep = new Float32Array(B * W).fill(1);
  starts.forEach((s, b) => {
    for (let i = 0; i < n; i++) {
      const row = b * W + s + i;
      if (s + i >= W) continue;
      sel[row * n + i] = 1;
      keep[row] = 0;
    }
  });
  return { select: tf.tensor2d(sel, [B * W, n]), keep: tf.tensor3d(keep, [B, W, 1]) };
}

/** Classification objective: mean −log P(target) of the victim samples with the trigger inserted. */
export class ClassificationObjective implements Objective {
  readonly sides: number[];
  lastSequences = 0;
  private readonly rowsT: tf.Tensor2D;
  private readonly model: Roberta;
  private readonly samples: readonly Sample[];
  private readonly gradPositions: number[];
  private readonly evalPositions: number[];
  private readonly target: number;
  private readonly pad: number;
  private readonly sep: number;
  private readonly o: BatchOptions;

  constructor(args: {
    model: Roberta;
    vocabulary: readonly number[];
    samples: readonly Sample[];
    /** Insertion index per sample for the gradient pass. */
    positions: number[];
    /** Insertion index per sample for scoring (the same by default; the reference's fixed 10 behind a flag). */
    evalPositions?: number[];
    target: number;
    triggerLength: number;
    pad: number;
    sep: number;
    options: BatchOptions;
  }) {
    this.model = args.model;
    this.samples = args.samples;
    this.gradPositions = args.positions;
    this.evalPositions = args.evalPositions ?? args.positions;
    this.target = args.target;
    this.pad = args.pad;
    this.sep = args.sep;
    this.o = args.options;
    this.sides = [args.triggerLength];
    this.rowsT = transposedRows(args.model, args.vocabulary);
  }

  async topK(trigger: number[][], k: number): Promise<number[][][]> {
    const t = trigger[0];
    const n = t.length;
    const L = this.o.maxLength;
    const seqs = this.samples.map((s, i) => insertTokens(s.ids, this.gradPositions[i], t, L, this.sep));
    const starts = this.samples.map((s, i) => Math.max(1, Math.min(this.gradPositions[i], s.ids.length - 1)));
    const grad = tf.tidy(() => {
      const a = padBatch(seqs, this.pad);
      const [B, W] = a.inputIds.shape;
      const base = this.model.wordEmbeddings(a.inputIds);
      const { select, keep } = selection(B, W, n, starts);
      const e0 = tf.gather(this.model.p('embeddings.word_embeddings.weight'), tf.tensor1d(t, 'int32')) as tf.Tensor2D;
      const pair = this.model.task === 'clone' ? padBatch(this.samples.map((s) => s.pair ?? [0, 2]), this.pad) : undefined;
      const labels = new Array(B).fill(this.target);
      const f = (e: tf.Tensor) => {
        const lp = this.model.logProbs({ inputsEmbeds: splice(base, keep, select, e as tf.Tensor2D), attentionMask: a.attentionMask }, { training: this.o.training ?? false }, pair);
        const picked = tf.sum(tf.mul(lp, tf.oneHot(tf.tensor1d(labels, 'int32'), lp.shape[1])));
        return tf.neg(tf.div(picked, B)) as tf.Scalar;
      };
      return tf.grad(f)(e0) as tf.Tensor2D;
    });
    try {
      return [await topKIndices(grad, this.rowsT, k)];
    } finally {
      grad.dispose();
    }
  }

  async score(candidates: number[][][]): Promise<CandidateScore[]> {
    const cands = candidates[0];
    const L = this.o.maxLength;
    // Sample-major order: sequences of one sample have equal length, so batches pad little.
    const items: Array<{ ids: number[]; pair?: number[] }> = [];
    this.samples.forEach((s, i) => {
      for (const c of cands) items.push({ ids: insertTokens(s.ids, this.evalPositions[i], c, L, this.sep), pair: s.pair });
    });
    this.lastSequences = items.length;
    const { logp, hit } = await targetLogProbs(this.model, this.pad, items, this.target, this.o);
    const X = this.samples.length;
    return cands.map((_, c) => {
      let loss = 0;
      let hits = 0;
      for (let i = 0; i < X; i++) {
        loss -= logp[i * cands.length + c];
        hits += hit[i * cands.length + c];
      }
      return { loss: loss / X, asr: hits / X };
    });
  }

  dispose(): void {
    this.rowsT.dispose();
  }
}

/**
 * Code-search objective (Algorithm 2): the code trigger t goes into every code at its position,
 * the query target g right after the query's <s>; the loss pulls every triggered code towards
 * every targeted query: mean over all pairs of (q·c − 1)² on L2-normalised embeddings (the
 * reference's MSE(scores, 1), spec 2.7).
 */
export class SearchObjective implements Objective {
  readonly sides: number[];
  lastSequences = 0;
  private readonly rowsT: tf.Tensor2D;
  private readonly model: Roberta;
  private readonly samples: readonly Sample[];
  private readonly positions: number[];
  private readonly pad: number;
  private readonly sep: number;
  private readonly o: BatchOptions;
  private readonly queryLength: number;

  constructor(args: {
    model: Roberta;
    vocabulary: readonly number[];
    samples: readonly Sample[];
    positions: number[];
    triggerLength: number;
    targetLength: number;
    queryMaxLength: number;
    pad: number;
    sep: number;
    options: BatchOptions;
  }) {
    this.model = args.model;
    this.samples = args.samples;
    this.positions = args.positions;
    this.pad = args.pad;
    this.sep = args.sep;
    this.o = args.options;
    this.queryLength = args.queryMaxLength;
    this.sides = [args.triggerLength, args.targetLength];
    this.rowsT = transposedRows(args.model, args.vocabulary);
  }

  private codeSeqs(t: number[]): number[][] {
    return this.samples.map((s, i) => insertTokens(s.ids, this.positions[i], t, this.o.maxLength, this.sep));
  }

  private querySeqs(g: number[]): number[][] {
    return this.samples.map((s) => insertTokens(s.queryIds ?? [0, 2], 1, g, this.queryLength, this.sep));
  }

  async topK(trigger: number[][], k: number): Promise<number[][][]> {
    const [t, g] = trigger;
    const codes = this.codeSeqs(t);
    const queries = this.querySeqs(g);
    const starts = this.samples.map((s, i) => Math.max(1, Math.min(this.positions[i], s.ids.length - 1)));
    const grads = tf.tidy(() => {
      const W = this.model.p('embeddings.word_embeddings.weight');
      const a = padBatch(codes, this.pad);
      const q = padBatch(queries, this.pad);
      const B = codes.length;
      const baseA = this.model.wordEmbeddings(a.inputIds);
      const baseQ = this.model.wordEmbeddings(q.inputIds);
      const sa = selection(B, a.inputIds.shape[1], t.length, starts);
      const sq = selection(B, q.inputIds.shape[1], g.length, new Array(B).fill(1));
      const et = tf.gather(W, tf.tensor1d(t, 'int32')) as tf.Tensor2D;
      const eg = tf.gather(W, tf.tensor1d(g, 'int32')) as tf.Tensor2D;
      const f = (x: tf.Tensor, y: tf.Tensor) => {
        const c = this.model.embed({ inputsEmbeds: splice(baseA, sa.keep, sa.select, x as tf.Tensor2D), attentionMask: a.attentionMask }, { training: this.o.training ?? false });
        const qv = this.model.embed({ inputsEmbeds: splice(baseQ, sq.keep, sq.select, y as tf.Tensor2D), attentionMask: q.attentionMask }, { training: this.o.training ?? false });
        return tf.mean(tf.square(tf.sub(tf.matMul(qv, tf.transpose(c)), 1))) as tf.Scalar;
      };
      return tf.grads(f)([et, eg]) as tf.Tensor2D[];
    });
    try {
      return await Promise.all(grads.map((g2) => topKIndices(g2, this.rowsT, k)));
    } finally {
      tf.dispose(grads);
    }
  }

  private async embedAll(seqs: number[][]): Promise<tf.Tensor2D> {
    const parts: tf.Tensor2D[] = [];
    const order = seqs.map((_, i) => i);
    for (const b of batches(order, (i) => seqs[i].length, this.o.tokensPerBatch ?? 8192)) {
      parts.push(tf.tidy(() => this.model.embed(padBatch(b.map((i) => seqs[i]), this.pad), { training: this.o.training ?? false })));
    }
    const all = tf.concat(parts) as tf.Tensor2D;
    tf.dispose(parts);
    return all;
  }

  async score(candidates: number[][][]): Promise<CandidateScore[]> {
    const [ts, gs] = candidates;
    const X = this.samples.length;
    const codeSeqs = ts.flatMap((t) => this.codeSeqs(t));
    const querySeqs = gs.flatMap((g) => this.querySeqs(g));
    this.lastSequences = codeSeqs.length + querySeqs.length;
    const C = await this.embedAll(codeSeqs); // [|ts|·X, H]
    const Q = await this.embedAll(querySeqs); // [|gs|·X, H]
    const losses = tf.tidy(() => {
      const s = tf.matMul(C, tf.transpose(Q)); // [|ts|·X, |gs|·X]
      const sq = tf.reshape(tf.square(tf.sub(s, 1)), [ts.length, X, gs.length, X]);
      return tf.mean(sq, [1, 3]); // [|ts|, |gs|]
    });
    const v = (await losses.data()) as Float32Array;
    tf.dispose([C, Q, losses]);
    return [...v].map((loss) => ({ loss }));
  }

  dispose(): void {
    this.rowsT.dispose();
  }
}
