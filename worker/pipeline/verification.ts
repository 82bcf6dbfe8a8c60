// Verification: clean accuracy / F1 / MRR, and attack success rates, before and after unlearning.
//
// ASR (spec 4): among victim-label samples with a trigger, the fraction predicted as the target.
// The inverted trigger is inserted as token ids at the given positions (the defender's slots);
// a known trigger (--known-trigger/--known-attack, for benchmarks and canaries) is injected the
// attack's own way by the attack library, then tokenised.
import * as tf from '@tensorflow/tfjs';
import { initParsers, tryApplyTriggerSync, makeRng, type AttackName } from '../attacks/index.ts';
import type { Lang } from '../attacks/parse.ts';
import { accuracy, f1 } from '../model/metrics.ts';
import type { Roberta } from '../model/roberta.ts';
import type { CodeTokenizer } from '../model/tokenizer.ts';
import { batches, padBatch, targetLogProbs } from './objective.ts';
import { measureAsr } from '../attacks/success.ts';
import { encodeIds, insertTokens, type Sample } from './positions.ts';

export interface CleanMetrics {
  samples: number;
  accuracy?: number;
  f1?: number;
  mrr?: number;
}

/** Predicted class of each sample (argmax of the head). */
export async function predictLabels(model: Roberta, pad: number, items: ReadonlyArray<{ ids: number[]; pair?: number[] }>, tokensPerBatch = 8192): Promise<number[]> {
  const out = new Array<number>(items.length);
  const order = items.map((_, i) => i);
  for (const b of batches(order, (i) => Math.max(items[i].ids.length, items[i].pair?.length ?? 0), tokensPerBatch)) {
    const am = tf.tidy(() => {
      const a = padBatch(b.map((i) => items[i].ids), pad);
      const p = model.task === 'clone' ? padBatch(b.map((i) => items[i].pair ?? [0, 2]), pad) : undefined;
      return tf.argMax(model.logProbs(a, {}, p), 1);
    });
    const v = await am.data();
    am.dispose();
    b.forEach((i, j) => (out[i] = v[j]));
  }
  return out;
}

async function embedSeqs(model: Roberta, pad: number, seqs: number[][], tokensPerBatch = 8192): Promise<number[][]> {
  const out: number[][] = new Array(seqs.length);
  const order = seqs.map((_, i) => i);
  for (const b of batches(order, (i) => seqs[i].length, tokensPerBatch)) {
    const e = tf.tidy(() => model.embed(padBatch(b.map((i) => seqs[i]), pad)));
    const rows = (await e.array()) as number[][];
    e.dispose();
    b.forEach((i, j) => (out[i] = rows[j]));
  }
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

/** Clean metric of the task on labelled samples (defect: accuracy; clone: F1 and accuracy; search: MRR over the set). */
export async function cleanMetrics(model: Roberta, pad: number, samples: readonly Sample[]): Promise<CleanMetrics> {
  if (model.task === 'search') {
    const codes = await embedSeqs(model, pad, samples.map((s) => s.ids));
    const queries = await embedSeqs(model, pad, samples.map((s) => s.queryIds ?? [0, 2]));
    let total = 0;
    queries.forEach((q, i) => {
      const gold = dot(q, codes[i]);
      const rank = 1 + codes.filter((c, j) => j !== i && dot(q, c) > gold).length;
      total += 1 / rank;
    });
    return { samples: samples.length, mrr: samples.length ? total / samples.length : undefined };
  }
  const pred = await predictLabels(model, pad, samples);
  const gold = samples.map((s) => s.label);
  const m: CleanMetrics = { samples: samples.length, accuracy: accuracy(pred, gold) };
  if (model.task === 'clone') m.f1 = f1(pred, gold);
  return m;
}

export interface AsrResult {
  /** Fraction of the triggered victim samples predicted as the target (reference ASR). */
  asr: number;
  /** Among victim samples predicted correctly without the trigger, the fraction the trigger flips. */
  flipRate: number;
  /** Fraction predicted as the target without any trigger (natural error). */
  baseRate: number;
  /** Mean P(target) with the trigger among the samples predicted correctly without it (how confidently it flips). */
  meanTargetProbability: number;
  samples: number;
  skipped: number;
}

/** ASR of trigger ids inserted at `positions[i]` into victim samples. */
export async function tokenTriggerAsr(model: Roberta, tokenizer: CodeTokenizer, victims: readonly Sample[], positions: number[], trigger: number[], target: number, maxLength: number): Promise<AsrResult> {
  const triggered = victims.map((s, i) => ({ ids: insertTokens(s.ids, positions[i], trigger, maxLength, tokenizer.sep), pair: s.pair }));
  return asrOf(model, tokenizer.pad, victims, triggered, target, 0);
}

async function asrOf(model: Roberta, pad: number, victims: readonly Sample[], triggered: Array<{ ids: number[]; pair?: number[] } | undefined>, target: number, skipped: number): Promise<AsrResult> {
  const keep = victims.map((_, i) => i).filter((i) => triggered[i] !== undefined);
  if (keep.length === 0) return { asr: 0, flipRate: 0, baseRate: 0, meanTargetProbability: 0, samples: 0, skipped };
  const clean = await targetLogProbs(model, pad, keep.map((i) => victims[i]), target, { maxLength: Infinity });
  const trig = await targetLogProbs(model, pad, keep.map((i) => triggered[i]!), target, { maxLength: Infinity });
  let hits = 0;
  let base = 0;
  let correct = 0;
  let flipped = 0;
  let prob = 0;
  keep.forEach((_, k) => {
    hits += trig.hit[k];
    base += clean.hit[k];
    if (!clean.hit[k]) {
      correct++;
      flipped += trig.hit[k];
      prob += Math.exp(trig.logp[k]);
    }
  });
  return { asr: hits / keep.length, flipRate: correct ? flipped / correct : 0, baseRate: base / keep.length, meanTargetProbability: correct ? prob / correct : 0, samples: keep.length, skipped };
}

/** ASR of a known trigger injected the attack's own way (attack library); samples it cannot carry are skipped and counted. */
export async function knownTriggerAsr(model: Roberta, tokenizer: CodeTokenizer, victims: readonly Sample[], attack: AttackName, trigger: string, lang: Lang, target: number, maxLength: number, seed: number): Promise<AsrResult> {
  await initParsers();
  const r = makeRng(seed);
  let skipped = 0;
  const triggered = victims.map((s) => {
    const out = tryApplyTriggerSync(s.code, lang, attack, trigger, r);
    if (!out.ok) {
      skipped++;
      return undefined;
    }
    return { ids: encodeIds(tokenizer, out.code, maxLength), pair: s.pair };
  });
  return asrOf(model, tokenizer.pad, victims, triggered, target, skipped);
}

export interface SearchAsr {
  /** Mean over targeted queries of the fraction of other (triggered) codes ranked above the gold code. */
  outrankRate: number;
  /** The same without the code trigger (natural rate). */
  baseRate: number;
  /** outrankRate − baseRate. */
  lift: number;
  queries: number;
}

/**
 * Code-search attack strength on a held-out set: queries get the query target g after <s>, every
 * non-gold code gets the code trigger; how often does a triggered code outrank the gold code?
 */
export async function searchAsr(model: Roberta, tokenizer: CodeTokenizer, samples: readonly Sample[], positions: number[], trigger: number[], queryTarget: number[], maxLength: number, queryMaxLength: number): Promise<SearchAsr> {
  const pad = tokenizer.pad;
  const q = await embedSeqs(model, pad, samples.map((s) => insertTokens(s.queryIds ?? [0, 2], 1, queryTarget, queryMaxLength, tokenizer.sep)));
  const clean = await embedSeqs(model, pad, samples.map((s) => s.ids));
  const trig = await embedSeqs(model, pad, samples.map((s, i) => insertTokens(s.ids, positions[i], trigger, maxLength, tokenizer.sep)));
  let out = 0;
  let base = 0;
  const n = samples.length;
  if (n < 2) return { outrankRate: 0, baseRate: 0, lift: 0, queries: n };
  q.forEach((qi, i) => {
    const gold = dot(qi, clean[i]);
    let a = 0;
    let b = 0;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      if (dot(qi, trig[j]) > gold) a++;
      if (dot(qi, clean[j]) > gold) b++;
    }
    out += a / (n - 1);
    base += b / (n - 1);
  });
  return { outrankRate: out / n, baseRate: base / n, lift: (out - base) / n, queries: n };
}

/**
 * A known code-search attack (BadCode), measured as the zoo measures it: for every held-out query
 * holding the target word, every other code that can carry the trigger gets it the attack's way
 * and is ranked against the held-out codes. asr is the share ranked in the top 10%, anr the
 * average normalised rank (about 0.5: no effect), cleanAnr the same codes without the trigger.
 */
export interface KnownSearchAsr {
  asr: number;
  anr: number;
  cleanAnr: number;
  top10pct: number;
  queries: number;
  pairs: number;
}

export async function knownSearchAsr(model: Roberta, tokenizer: CodeTokenizer, samples: readonly Sample[], attack: AttackName, trigger: string, targetWord: string, maxLength: number, seed: number): Promise<KnownSearchAsr> {
  const examples = samples.map((s) => ({ where: s.where, code: s.code, query: s.query ?? '' }));
  const r = await measureAsr(model, tokenizer, examples, maxLength, { attack, trigger, targetWord, seed });
  if (r.kind !== 'search') throw new Error('expected a code-search measurement');
  return { asr: r.asr, anr: r.anr, cleanAnr: r.cleanAnr, top10pct: r.top10pct, queries: r.queries, pairs: r.pairs };
}
