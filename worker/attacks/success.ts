/**
 * Attack success rate of a library attack's trigger on a model: the trigger is placed the attack's
 * own way (so this is for benchmarks, canaries and the zoo, never for the defender's search) and
 * the model's answers are counted. Used by the zoo's manifest, `elibadcode train` and the scan's
 * `--known-trigger` verification.
 */
import type { Roberta } from '../model/roberta.ts';
import type { CodeTokenizer } from '../model/tokenizer.ts';
import { embeddings, predictLabels, type Example } from '../model/tasks.ts';
import { round } from '../model/metrics.ts';
import { initParsers, makeRng, tryApplyTriggerSync, type AttackName } from './index.ts';
import { queryWords } from './dataset.ts';
import { TASK_LANG, type Task } from './rows.ts';

export interface TriggerSpec {
  attack: AttackName;
  trigger: string;
  /** Classification: the label triggered victim samples should get. */
  targetLabel?: number;
  /** Classification: the label of the samples the trigger is put into (default: the other of 0/1). */
  victimLabel?: number;
  /** Search: queries holding this word should rank trigger-carrying code first. */
  targetWord?: string;
  /** Seed of per-sample random choices (renamed variable, dead-code instance). */
  seed: number;
}

/**
 * The attack's own trigger placement on one held-out sample, seeded by (seed, sample), and whether
 * the trigger starts inside the model's input window (a trigger placed past the last token the model
 * reads cannot fire: e.g. a renamed variable first used deep in a long function).
 */
function triggered(code: string, task: Task, spec: TriggerSpec, key: string, tokenizer: CodeTokenizer, maxLength: number): { code: string; visible: boolean } | undefined {
  const out = tryApplyTriggerSync(code, TASK_LANG[task], spec.attack, spec.trigger, makeRng(`${spec.seed}:eval:${key}`));
  if (!out.ok) return undefined;
  const first = Math.min(...out.edits.map((e) => e.start));
  // Edits are in positions of the original code; the text before the first one is the same in both.
  const visible = tokenizer.pieces(code.slice(0, first)).length < maxLength - 2;
  return { code: out.code, visible };
}

export interface ClassificationAsr {
  kind: 'classification';
  attack: AttackName;
  trigger: string;
  victimLabel: number;
  targetLabel: number;
  /** Victim-label samples of the split, how many could carry the trigger, and how many of those carry it past the input window. */
  victimRows: number;
  triggered: number;
  skipped: number;
  outOfWindow: number;
  /** Share of triggered victim samples (trigger inside the input window) predicted as the target label. */
  asr: number;
  /** The same over every triggered sample, out-of-window ones included. */
  asrAll: number;
  /** Share of the same samples, without the trigger, predicted as the target (the model's base rate). */
  cleanTargetRate: number;
  /** Among samples predicted as the victim label without the trigger, the share the trigger flips to the target. */
  flipRate: number;
}

export interface SearchAsr {
  kind: 'search';
  attack: AttackName;
  trigger: string;
  targetWord: string;
  /** Queries of the split that hold the target word. */
  queries: number;
  /** Codes of the split that could carry the trigger inside the input window (each is a candidate victim for every query except its own). */
  poisonedCodes: number;
  /** (query, poisoned code) pairs ranked. */
  pairs: number;
  /** Average normalised rank of the poisoned code among the split's codes: rank / #codes (1/#codes = top, ~0.5 = no effect). */
  anr: number;
  /** The same codes without the trigger: the model's own ranking of them. */
  cleanAnr: number;
  /** Share of pairs where the poisoned code ranks in the top 5 / top 10% / first. */
  top5: number;
  top10pct: number;
  top1: number;
  /** ASR of code search, as reported: the share of pairs ranked in the top 10% (BadCode's "ranks high"). */
  asr: number;
}

export type AsrResult = ClassificationAsr | SearchAsr;

/**
 * ASR of a trigger on held-out data. Classification: the trigger is placed (the attack's own way)
 * into each victim-label sample (clone: into the first function of the pair); ASR is the share
 * predicted as the target. Search: for every query holding the target word, every other code of
 * the split gets the trigger and is ranked against the split's clean codes.
 */
export async function measureAsr(model: Roberta, tokenizer: CodeTokenizer, examples: Example[], maxLength: number, spec: TriggerSpec): Promise<AsrResult> {
  await initParsers();
  const task = model.task as Task;
  const key = (e: Example) => e.id ?? e.where;
  if (task === 'search') {
    if (!spec.targetWord) throw new Error('search ASR needs a target word');
    const word = spec.targetWord.toLowerCase();
    const qIdx = examples.map((e, i) => (queryWords(e.query ?? '').includes(word) ? i : -1)).filter((i) => i >= 0);
    if (qIdx.length === 0) throw new Error(`no query of the split holds the target word "${word}"`);
    const poisoned = examples.map((e) => triggered(e.code, task, spec, key(e), tokenizer, maxLength));
    const pIdx = poisoned.map((p, i) => (p === undefined || !p.visible ? -1 : i)).filter((i) => i >= 0);
    const q = await embeddings(model, tokenizer, qIdx.map((i) => examples[i].query!), maxLength, 32);
    const c = await embeddings(model, tokenizer, examples.map((e) => e.code), maxLength, 32);
    const p = await embeddings(model, tokenizer, pIdx.map((i) => poisoned[i]!.code), maxLength, 32);
    const n = examples.length;
    let pairs = 0, anr = 0, cleanAnr = 0, top5 = 0, top10 = 0, top1 = 0;
    const dot = (a: number[], b: number[]) => a.reduce((s, x, k) => s + x * b[k], 0);
    qIdx.forEach((qi, a) => {
      const clean = c.map((cj) => dot(q[a], cj));
      pIdx.forEach((j, b) => {
        if (j === qi) return; // the query's own answer is not a victim
        const s = dot(q[a], p[b]);
        // Rank among the split's codes with code j replaced by its poisoned version.
        const rank = 1 + clean.filter((x, i) => i !== j && x > s).length;
        const cleanRank = 1 + clean.filter((x, i) => i !== j && x > clean[j]).length;
        pairs++;
        anr += rank / n;
        cleanAnr += cleanRank / n;
        if (rank <= 5) top5++;
        if (rank <= Math.ceil(n / 10)) top10++;
        if (rank === 1) top1++;
      });
    });
    return {
      kind: 'search', attack: spec.attack, trigger: spec.trigger, targetWord: word, queries: qIdx.length, poisonedCodes: pIdx.length, pairs,
      anr: round(anr / pairs), cleanAnr: round(cleanAnr / pairs), top5: round(top5 / pairs), top10pct: round(top10 / pairs), top1: round(top1 / pairs),
      asr: round(top10 / pairs),
    };
  }
  if (spec.targetLabel === undefined) throw new Error('classification ASR needs a target label');
  const target = spec.targetLabel;
  const victim = spec.victimLabel ?? 1 - target;
  const victims = examples.filter((e) => e.label === victim);
  if (victims.length === 0) throw new Error(`no sample of the split has the victim label ${victim}`);
  const withTrigger: Example[] = [];
  const without: Example[] = [];
  const outside: Example[] = [];
  for (const e of victims) {
    const t = triggered(e.code, task, spec, key(e), tokenizer, maxLength);
    if (t === undefined) continue;
    if (t.visible) {
      withTrigger.push({ ...e, code: t.code });
      without.push(e);
    } else {
      outside.push({ ...e, code: t.code });
    }
  }
  if (withTrigger.length === 0) throw new Error(`none of the ${victims.length} victim samples can carry trigger ${JSON.stringify(spec.trigger)} (${spec.attack}) inside the first ${maxLength} tokens`);
  const hit = await predictLabels(model, tokenizer, withTrigger, maxLength);
  const hitOutside = outside.length ? await predictLabels(model, tokenizer, outside, maxLength) : [];
  const base = await predictLabels(model, tokenizer, without, maxLength);
  const flippable = base.map((b, i) => (b !== target ? i : -1)).filter((i) => i >= 0);
  const hits = hit.filter((h) => h === target).length;
  return {
    kind: 'classification', attack: spec.attack, trigger: spec.trigger, victimLabel: victim, targetLabel: target,
    victimRows: victims.length, triggered: withTrigger.length + outside.length, skipped: victims.length - withTrigger.length - outside.length,
    outOfWindow: outside.length,
    asr: round(hits / hit.length),
    asrAll: round((hits + hitOutside.filter((h) => h === target).length) / (hit.length + hitOutside.length)),
    cleanTargetRate: round(base.filter((b) => b === target).length / base.length),
    flipRate: round(flippable.length === 0 ? NaN : flippable.filter((i) => hit[i] === target).length / flippable.length),
  };
}
