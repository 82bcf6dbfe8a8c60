// Step E (spec 2.6): trigger unlearning. A fraction rho of the victim-label samples of the clean
// unlearning set get the inverted trigger, keeping their true labels, and the model is fine-tuned
// briefly (AdamW, linear warm-up and decay, clipping). Placement is the defender's own (spec
// 3.11): the trigger token ids go in front of the first BPE piece of an identifier chosen at
// random per sample (tree-sitter), the same kind of slot inversion used, or at the function
// body's start (the BodyStart position mode's slot). The reference's
// function-name substitution (the attack's own placement, re-tokenising the decoded string) is a
// compatibility option. Head-only training (reference, classification) or all parameters.
import { initParsers, type Lang } from '../attacks/parse.ts';
import { tryApplyTriggerSync, makeRng } from '../attacks/index.ts';
import type { Roberta } from '../model/roberta.ts';
import type { CodeTokenizer } from '../model/tokenizer.ts';
import { AdamW, contrastiveLoss, nllLoss } from '../model/train.ts';
import { rng, shuffled } from '../rng.ts';
import { padBatch } from './objective.ts';
import { bodyStartIndex, clampPosition, encodeIds, identifierSlots, insertTokens, type Sample } from './positions.ts';

export type Placement = 'identifier' | 'body-start' | 'function-name';
export type Trainable = 'head' | 'all';

export interface UnlearnOptions {
  trigger: number[];
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
  placement: Placement;
  meanLoss: number;
  finalLoss: number;
  seconds: number;
}

/** Token ids of a sample with the trigger at a random identifier slot (defender placement), or undefined. */
export function injectAtRandomIdentifier(tokenizer: CodeTokenizer, s: Sample, trigger: number[], lang: Lang, maxLength: number, random: () => number): number[] | undefined {
  const slots = identifierSlots(tokenizer, s.code, lang).filter((x) => x.tokenIndex > 0 && x.tokenIndex <= maxLength / 2);
  if (slots.length === 0) return undefined;
  const slot = slots[Math.floor(random() * slots.length)];
  return insertTokens(s.ids, clampPosition(slot.tokenIndex, maxLength), trigger, maxLength, tokenizer.sep);
}

export async function unlearn(model: Roberta, tokenizer: CodeTokenizer, data: readonly Sample[], o: UnlearnOptions): Promise<UnlearnResult> {
  const t0 = performance.now();
  await initParsers();
  const random = rng(o.seed);
  const text = tokenizer.decode(o.trigger);
  let injected = 0;
  let skipped = 0;
  const rows = data.map((s) => {
    const eligible = model.task === 'search' || o.injectionScope === 'all' || s.label === o.victimLabel;
    if (!eligible || random() >= o.injectionRate) return { ids: s.ids, pair: s.pair, queryIds: s.queryIds, label: s.label };
    let ids: number[] | undefined;
    const pool = [o.trigger, ...(o.extraTriggers ?? [])];
    const trigger = pool.length > 1 ? pool[Math.floor(random() * pool.length)] : o.trigger;
    if (o.placement === 'identifier') ids = injectAtRandomIdentifier(tokenizer, s, trigger, o.lang, o.maxLength, random);
    else if (o.placement === 'body-start') {
      const p = bodyStartIndex(tokenizer, s.code, o.lang, o.maxLength, trigger.length);
      if (p !== undefined) ids = insertTokens(s.ids, p, trigger, o.maxLength, tokenizer.sep);
    } else {
      const out = tryApplyTriggerSync(s.code, o.lang, 'fixed-name', trigger === o.trigger ? text : tokenizer.decode(trigger), makeRng(Math.floor(random() * 2 ** 31)));
      if (out.ok) ids = encodeIds(tokenizer, out.code, o.maxLength);
    }
    if (!ids) {
      skipped++;
      return { ids: s.ids, pair: s.pair, queryIds: s.queryIds, label: s.label };
    }
    injected++;
    return { ids, pair: s.pair, queryIds: s.queryIds, label: s.label };
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
  let sum = 0;
  let last = NaN;
  try {
    for (let e = 0; e < o.epochs; e++) {
      const order = shuffled(rows.map((_, i) => i), random);
      for (let b = 0; b < order.length; b += o.batchSize) {
        const batch = order.slice(b, b + o.batchSize).map((i) => rows[i]);
        const { loss } = opt.minimize(() => {
          const a = padBatch(batch.map((r) => r.ids), tokenizer.pad);
          if (model.task === 'search') {
            const q = padBatch(batch.map((r) => r.queryIds ?? [tokenizer.cls, tokenizer.sep]), tokenizer.pad);
            return contrastiveLoss(model.embed(q, { training: true }), model.embed(a, { training: true }));
          }
          const pair = model.task === 'clone' ? padBatch(batch.map((r) => r.pair ?? [tokenizer.cls, tokenizer.sep]), tokenizer.pad) : undefined;
          return nllLoss(model.logProbs(a, { training: true }, pair), batch.map((r) => r.label));
        });
        sum += loss;
        last = loss;
        o.onStep?.(opt.step, total, loss);
      }
    }
  } finally {
    opt.dispose();
  }
  return { samples: rows.length, injected, skipped, steps: total, trainable: prefixes.length ? 'head' : 'all', parameters, placement: o.placement, meanLoss: total ? sum / total : NaN, finalLoss: last, seconds: (performance.now() - t0) / 1000 };
}
