// Step E (spec 2.6): trigger unlearning. A fraction rho of the victim-label samples of the clean
// unlearning set get the inverted trigger, keeping their true labels, and the model is fine-tuned
// briefly (AdamW, linear warm-up and decay, clipping). Placement is the defender's own (spec
// 3.11): the trigger token ids go in front of the first BPE piece of an identifier chosen at
// random per sample (tree-sitter), the same kind of slot inversion used, or at the function
// body's start (the BodyStart position mode's slot). The reference's
// function-name substitution (the attack's own placement, re-tokenising the decoded string) is a
// compatibility option. Head-only training (reference, classification) or all parameters.
//
// Adversarial unlearning (an extension, classification): the injected trigger becomes a continuous
// one. Its embedding rows start as the inverted trigger's and, before every training step, take
// normalised gradient steps towards the target label on that batch's triggered rows, projected
// back into a ball around where they started; the model then learns the true labels with that
// trigger in place. The inverted trigger is one point of the backdoor's neighbourhood; the
// adversary keeps finding the nearby points the model still answers, so more of the backdoor
// is unlearnt than the one trigger GCG happened to reach.
import * as tf from '@tensorflow/tfjs';
import { initParsers, type Lang } from '../attacks/parse.ts';
import { tryApplyTriggerSync, makeRng, type AttackName } from '../attacks/index.ts';
import { scalar } from '../model/read.ts';
import type { Roberta } from '../model/roberta.ts';
import type { CodeTokenizer } from '../model/tokenizer.ts';
import { AdamW, contrastiveLoss, nllLoss } from '../model/train.ts';
import { rng, shuffled } from '../rng.ts';
import { padBatch, selection, splice } from './objective.ts';
import { bodyStartIndex, clampPosition, encodeIds, identifierSlots, insertTokens, type Sample } from './positions.ts';

export type Placement = 'identifier' | 'body-start' | 'function-name';
export type Trainable = 'head' | 'all';

/** The adversary of adversarial unlearning; sizes are in units of the mean embedding-row norm. */
export interface Adversary {
  /** Length of each normalised gradient step. */
  step: number;
  /** Largest distance of each trigger row from its starting embedding. */
  radius: number;
  /** Gradient steps before each training step. */
  steps: number;
}

/** Default adversary (README "Adversarial unlearning": measured on the zoo's defect models). */
export const ADVERSARY_DEFAULTS: Adversary = { step: 0.3, radius: 3, steps: 1 };

export interface UnlearnOptions {
  trigger: number[];
  /** Adversarial unlearning (classification): the trigger's embeddings are re-optimised towards targetLabel throughout. */
  adversary?: Adversary;
  /** The label the backdoor answers (the adversary's aim). */
  targetLabel?: number;
  /**
   * An oracle control: every triggered sample is poisoned by the attack library with this known
   * trigger, the attack's own way, instead of carrying `trigger`. It bounds what unlearning can do
   * with the right trigger: if the planted trigger survives even this, no inverted one can remove it.
   */
  attack?: { name: AttackName; trigger: string };
  /** Further triggers (e.g. single tokens that flip held-out samples alone); each triggered sample gets one of trigger/extra at random. */
  extraTriggers?: number[][];
  /** Query-side target (search): inserted after the query's <s> of triggered rows. Unused by default. */
  victimLabel?: number;
  injectionRate: number;
  /**
   * Which samples may receive the trigger: `victim` (reference: victim-label samples only) or
   * `all` (every label, at the same rate, so the trigger carries no label information and the
   * model cannot learn it as a shortcut to the victim label).
   */
  injectionScope?: 'victim' | 'all';
  learningRate: number;
  epochs: number;
  batchSize: number;
  warmupRatio: number;
  gradientClip: number;
  weightDecay: number;
  seed: number;
  trainable: Trainable;
  placement: Placement;
  maxLength: number;
  queryMaxLength?: number;
  lang: Lang;
  onStep?: (step: number, total: number, loss: number) => void;
}

export interface UnlearnResult {
  samples: number;
  injected: number;
  /** Victim samples the placement could not use (no identifier in reach, or the attack library refused). */
  skipped: number;
  steps: number;
  trainable: Trainable;
  parameters: number;
  /** The placement used: a Placement, or `attack:NAME` for the oracle control. */
  placement: string;
  meanLoss: number;
  finalLoss: number;
  /**
   * Adversarial unlearning: the adversary's −log P(target) on triggered rows after its steps, mean
   * over the first and the last epoch (rising: the model resists the neighbourhood it is shown).
   */
  adversary?: Adversary & { firstEpochLoss: number; lastEpochLoss: number; meanShift: number };
  seconds: number;
}

/** Why adversarial unlearning cannot run for this task and placement (a predicate: "… is for …"), or undefined when it can. */
export function adversaryProblem(task: string, placement: Placement): string | undefined {
  if (task === 'search') return 'is for classification (defect, clone); code search unlearns the discrete trigger';
  if (placement === 'function-name') return 'needs a defender placement (--unlearn-placement identifier or body-start): function-name substitution re-tokenises the trigger';
  return undefined;
}

/** A random identifier slot of the sample in reach (defender placement), or undefined. */
function randomIdentifierSlot(tokenizer: CodeTokenizer, s: Sample, lang: Lang, maxLength: number, random: () => number): number | undefined {
  const slots = identifierSlots(tokenizer, s.code, lang).filter((x) => x.tokenIndex > 0 && x.tokenIndex <= maxLength / 2);
  if (slots.length === 0) return undefined;
  return clampPosition(slots[Math.floor(random() * slots.length)].tokenIndex, maxLength);
}

export async function unlearn(model: Roberta, tokenizer: CodeTokenizer, data: readonly Sample[], o: UnlearnOptions): Promise<UnlearnResult> {
  const t0 = performance.now();
  await initParsers();
  const random = rng(o.seed);
  const text = tokenizer.decode(o.trigger);
  let injected = 0;
  let skipped = 0;
  if (o.adversary) {
    const problem = adversaryProblem(model.task, o.placement);
    if (problem) throw new Error(`adversarial unlearning ${problem}`);
    if (o.targetLabel === undefined) throw new Error('adversarial unlearning needs the target label');
    if (o.attack) throw new Error('adversarial unlearning moves token embeddings; the known-attack control rewrites the code');
  }
  const rows = data.map((s) => {
    const eligible = model.task === 'search' || o.injectionScope === 'all' || s.label === o.victimLabel;
    const clean = { ids: s.ids, pair: s.pair, queryIds: s.queryIds, label: s.label, start: -1 };
    if (!eligible || random() >= o.injectionRate) return clean;
    let ids: number[] | undefined;
    let start = -1;
    const pool = [o.trigger, ...(o.extraTriggers ?? [])];
    const trigger = pool.length > 1 ? pool[Math.floor(random() * pool.length)] : o.trigger;
    // The attack library rewrites the code: the oracle's known attack, or the reference's function-name substitution.
    const rewrite = o.attack ?? (o.placement === 'function-name' ? { name: 'fixed-name' as const, trigger: trigger === o.trigger ? text : tokenizer.decode(trigger) } : undefined);
    if (rewrite) {
      const out = tryApplyTriggerSync(s.code, o.lang, rewrite.name, rewrite.trigger, makeRng(Math.floor(random() * 2 ** 31)));
      if (out.ok) ids = encodeIds(tokenizer, out.code, o.maxLength);
    } else {
      const slot = o.placement === 'identifier'
        ? randomIdentifierSlot(tokenizer, s, o.lang, o.maxLength, random)
        : bodyStartIndex(tokenizer, s.code, o.lang, o.maxLength, trigger.length);
      if (slot !== undefined) {
        ids = insertTokens(s.ids, slot, trigger, o.maxLength, tokenizer.sep);
        start = slot;
      }
    }
    if (!ids) {
      skipped++;
      return clean;
    }
    injected++;
    // Only the main trigger's rows take the adversary's embeddings (extra triggers differ in length).
    return { ids, pair: s.pair, queryIds: s.queryIds, label: s.label, start: trigger === o.trigger ? start : -1 };
  });

  const prefixes = o.trainable === 'head' && model.task !== 'search' ? ['classifier.'] : [];
  const params = model.trainable(prefixes);
  const parameters = [...params.values()].reduce((n, v) => n + v.size, 0);
  const stepsPerEpoch = Math.ceil(rows.length / o.batchSize);
  const total = stepsPerEpoch * o.epochs;
  const opt = new AdamW(params, {
    learningRate: o.learningRate,
    weightDecay: o.weightDecay,
    warmupSteps: Math.round(total * o.warmupRatio),
    totalSteps: total,
    maxGradNorm: o.gradientClip,
  });
  const adversary = o.adversary ? await SoftTrigger.create(model, o.trigger, o.adversary, o.targetLabel!) : undefined;
  const epochLosses: number[] = [];
  let adversaryReport: UnlearnResult['adversary'];
  let sum = 0;
  let last = NaN;
  try {
    for (let e = 0; e < o.epochs; e++) {
      const order = shuffled(rows.map((_, i) => i), random);
      let advSum = 0;
      let advBatches = 0;
      for (let b = 0; b < order.length; b += o.batchSize) {
        const batch = order.slice(b, b + o.batchSize).map((i) => rows[i]);
        const a = padBatch(batch.map((r) => r.ids), tokenizer.pad);
        const pair = model.task === 'clone' ? padBatch(batch.map((r) => r.pair ?? [tokenizer.cls, tokenizer.sep]), tokenizer.pad) : undefined;
        const W = a.inputIds.shape[1];
        const starts = batch.map((r) => (r.start >= 0 ? r.start : W));
        const soft = adversary && starts.some((s) => s < W) ? await adversary.attack(a, pair, starts) : undefined;
        if (soft) {
          advSum += soft.loss;
          advBatches++;
        }
        try {
          const { loss } = await opt.minimize(() => {
            if (model.task === 'search') {
              const q = padBatch(batch.map((r) => r.queryIds ?? [tokenizer.cls, tokenizer.sep]), tokenizer.pad);
              return contrastiveLoss(model.embed(q, { training: true }), model.embed(a, { training: true }));
            }
            const inputs = soft ? { inputsEmbeds: adversary!.spliced(a.inputIds, starts, soft.rows), attentionMask: a.attentionMask } : a;
            return nllLoss(model.logProbs(inputs, { training: true }, pair), batch.map((r) => r.label));
          });
          sum += loss;
          last = loss;
          o.onStep?.(opt.step, total, loss);
        } finally {
          tf.dispose([a.inputIds, a.attentionMask, ...(pair ? [pair.inputIds, pair.attentionMask] : []), ...(soft ? [soft.rows] : [])]);
        }
      }
      if (advBatches) epochLosses.push(advSum / advBatches);
    }
    adversaryReport = adversary && o.adversary
      ? { ...o.adversary, firstEpochLoss: epochLosses[0] ?? NaN, lastEpochLoss: epochLosses.at(-1) ?? NaN, meanShift: await adversary.meanShift() }
      : undefined;
  } finally {
    opt.dispose();
    adversary?.dispose();
  }
  return {
    samples: rows.length, injected, skipped, steps: total, trainable: prefixes.length ? 'head' : 'all', parameters, placement: o.attack ? `attack:${o.attack.name}` : o.placement,
    meanLoss: total ? sum / total : NaN, finalLoss: last, ...(adversaryReport ? { adversary: adversaryReport } : {}), seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The adversary's continuous trigger: n embedding rows, started at the trigger's own, moved by
 * normalised gradient steps that raise P(target) on a batch's triggered rows, and kept within
 * `radius` (per row, L2) of where they started. Sizes scale with the mean embedding-row norm.
 */
class SoftTrigger {
  private readonly model: Roberta;
  private readonly o: Adversary;
  private readonly target: number;
  private readonly origin: tf.Tensor2D;
  private readonly current: tf.Variable<tf.Rank.R2>;
  private readonly unit: number;

  private constructor(model: Roberta, trigger: number[], o: Adversary, target: number, unit: number) {
    this.model = model;
    this.o = o;
    this.target = target;
    const table = model.p('embeddings.word_embeddings.weight');
    this.origin = tf.tidy(() => tf.gather(table, tf.tensor1d(trigger, 'int32')) as tf.Tensor2D);
    this.current = tf.variable(this.origin.clone(), false);
    this.unit = unit;
  }

  /** The adversary at the trigger's own rows; sizes are in units of the mean embedding-row norm, read back once here. */
  static async create(model: Roberta, trigger: number[], o: Adversary, target: number): Promise<SoftTrigger> {
    const unit = await scalar(() => tf.mean(tf.norm(model.p('embeddings.word_embeddings.weight'), 'euclidean', 1)));
    return new SoftTrigger(model, trigger, o, target, unit);
  }

  /** Word embeddings of the batch with the continuous trigger in place of the trigger tokens at `starts` (≥ width: none). */
  spliced(inputIds: tf.Tensor2D, starts: number[], rows: tf.Tensor2D): tf.Tensor3D {
    const [B, W] = inputIds.shape;
    const { select, keep } = selection(B, W, rows.shape[0], starts);
    return splice(this.model.wordEmbeddings(inputIds), keep, select, rows);
  }

  /** Moves the trigger against the model as it is now; returns a copy of the rows and −log P(target) after the last step. */
  async attack(a: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D }, pair: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } | undefined, starts: number[]): Promise<{ rows: tf.Tensor2D; loss: number }> {
    const [B, W] = a.inputIds.shape;
    const triggered = starts.filter((s) => s < W).length;
    // The batch's word embeddings, the splice and the mask do not change while the rows move: built once.
    const fixed = tf.tidy(() => ({
      base: this.model.wordEmbeddings(a.inputIds),
      ...selection(B, W, this.origin.shape[0], starts),
      mask: tf.tensor1d(starts.map((s) => (s < W ? 1 : 0))),
    }));
    const lossOf = (e: tf.Tensor2D) => tf.tidy(() => {
      const lp = this.model.logProbs({ inputsEmbeds: splice(fixed.base, fixed.keep, fixed.select, e), attentionMask: a.attentionMask }, { training: false }, pair);
      const picked = tf.sum(tf.mul(lp, tf.oneHot(tf.fill([B], this.target, 'int32') as tf.Tensor1D, lp.shape[1])), 1);
      return tf.neg(tf.div(tf.sum(tf.mul(picked, fixed.mask)), triggered)) as tf.Scalar;
    });
    try {
      return await this.move(lossOf);
    } finally {
      tf.dispose([fixed.base, fixed.select, fixed.keep, fixed.mask]);
    }
  }

  /** The adversary's steps on `lossOf`, projected back into the radius; a copy of the rows and the loss after the last step. */
  private async move(lossOf: (e: tf.Tensor2D) => tf.Scalar): Promise<{ rows: tf.Tensor2D; loss: number }> {
    for (let k = 0; k < this.o.steps; k++) {
      tf.tidy(() => {
        const g = tf.grad((e: tf.Tensor) => lossOf(e as tf.Tensor2D))(this.current) as tf.Tensor2D;
        const moved = tf.sub(this.current, tf.mul(tf.div(g, tf.add(tf.norm(g, 'euclidean', 1, true), 1e-8)), this.o.step * this.unit));
        const offset = tf.sub(moved, this.origin);
        const scale = tf.minimum(1, tf.div(this.o.radius * this.unit, tf.add(tf.norm(offset, 'euclidean', 1, true), 1e-8)));
        this.current.assign(tf.add(this.origin, tf.mul(offset, scale)) as tf.Tensor2D);
      });
    }
    const loss = await scalar(() => lossOf(this.current));
    return { rows: this.current.clone(), loss };
  }

  /** Mean distance of the rows from where they started, in mean-row-norm units. */
  async meanShift(): Promise<number> {
    return (await scalar(() => tf.mean(tf.norm(tf.sub(this.current, this.origin), 'euclidean', 1)))) / this.unit;
  }

  dispose(): void {
    tf.dispose([this.origin, this.current]);
  }
}
