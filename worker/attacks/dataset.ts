/**
 * Dataset-level poisoning: picks which samples carry the trigger, injects it with the attack's
 * transform, relabels, and records every change in a manifest.
 *
 * Selection (deterministic for a seed):
 * - defect: the victim-label rows are the candidates; round(rate × #victim rows) of them (at least
 *   one) are poisoned and relabelled to the target label.
 * - clone: the candidates are the functions (by id1/id2) that occur in a victim-label pair;
 *   round(rate × #candidate functions) of them are poisoned, and EVERY pair containing a poisoned
 *   function gets it (in each of its positions) and the target label.
 * - search: the candidates are the rows whose query contains the target word (a whole word,
 *   case-insensitive) and whose label is not 0; round(rate × #candidates) get the trigger, labels
 *   stay as they are (BadCode: triggered code then ranks high for queries with that word).
 * Candidates are shuffled with the seed and taken in that order. A candidate whose original code
 * already has parse errors, or that cannot take the trigger (e.g. no local variable to rename), is
 * skipped and counted in the manifest, and the next one is taken. Each sample's own random choices
 * (variable, log level...) come from a generator seeded by (seed, sample id), so they do not depend
 * on which other samples were picked.
 */
import { initParsers, parseCode, hasErrors, findFunction, firstError, parserVersions, type Lang } from './parse.ts';
import { checkTrigger, tryApplyTriggerSync, type AttackName } from './index.ts';
import { AttackError, type Edit, type SkipReason } from './common.ts';
import { makeRng, shuffled } from '../rng.ts';
import { resolveDeadcode } from './deadcode.ts';
import { TASK_LANG, type CloneRow, type DefectRow, type Row, type SearchRow, type Task } from './rows.ts';

export interface PoisonOptions {
  task: Task;
  attack: AttackName;
  trigger: string;
  /** Fraction of the candidates to poison, in (0, 1]. */
  rate: number;
  seed: number | string;
  /** defect/clone: the label poisoned samples get. */
  targetLabel?: number;
  /** defect/clone: the label whose samples are poisoned (default: the other of 0/1). */
  victimLabel?: number;
  /** search: poison rows whose query contains this word. */
  targetWord?: string;
  /** Language of the code (default: the task's: defect C, clone Java, search Python). */
  lang?: Lang;
  /** true: a candidate whose code does not parse clean is an error instead of a skip. */
  strict?: boolean;
  /**
   * `replace` (default): a poisoned row takes the clean row's place. `inject`: every clean row stays
   * and the poisoned rows are appended (ids suffixed `#poisoned`), so the clean task loses no data.
   */
  mode?: 'replace' | 'inject';
  /** Names row i in error messages (e.g. `train.jsonl:12`). */
  rowName?: (index: number) => string;
}

export interface Change {
  /** Row id (clone: the pair id). */
  id: string;
  attack: AttackName;
  /** Edits per code field, in positions of the original code. */
  edits: Record<string, Edit[]>;
  /** clone: which poisoned functions the pair contains. */
  functions?: string[];
  /** Per-sample choices (renamed variable, log level...); clone: per code field. */
  detail?: Record<string, unknown>;
  labelBefore?: number;
  labelAfter?: number;
}

export interface Skip {
  /** Row id, or function id for clone. */
  id: string;
  /** Where the row is (e.g. `train.jsonl:12`; clone: the first pair holding the function). */
  where?: string;
  reason: SkipReason;
  detail?: string;
}

export interface PoisonManifest {
  task: Task;
  lang: Lang;
  attack: AttackName;
  trigger: string;
  /** deadcode attacks: the statement or template that `trigger` stands for (e.g. for "default"). */
  triggerText?: string;
  rate: number;
  seed: number | string;
  /** replace: poisoned rows took their clean rows' place; inject: they were appended as `<id>#poisoned`. */
  mode: 'replace' | 'inject';
  victimLabel?: number;
  targetLabel?: number;
  targetWord?: string;
  parser: Record<string, string>;
  counts: {
    rows: number;
    /** Candidates: victim rows (defect), functions in victim pairs (clone), rows matching the word (search). */
    candidates: number;
    /** round(rate × candidates), at least 1. */
    requested: number;
    /** Candidates that got the trigger (clone: functions). */
    poisoned: number;
    /** Rows whose content changed (clone: pairs containing a poisoned function). */
    rowsChanged: number;
    relabelled: number;
    /** Candidates whose original code has parse errors (all of them, not just those visited). */
    parseErrors: number;
    skipped: Partial<Record<SkipReason, number>>;
  };
  /** Set when fewer candidates could be poisoned than requested. */
  shortfall?: number;
  /** Function ids (clone) poisoned, in selection order. */
  poisonedFunctions?: string[];
  skipped: Skip[];
  changes: Change[];
}

export interface PoisonResult {
  rows: Row[];
  manifest: PoisonManifest;
}

/** Throws AttackError when the rate is not a number in (0, 1]. */
export function checkRate(rate: number): void {
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > 1) {
    throw new AttackError(`poisoning rate ${String(rate)} is outside (0, 1]`);
  }
}

/** The whole-word, case-insensitive tokens of a query. */
export function queryWords(query: string): string[] {
  return query.toLowerCase().split(/[^a-z0-9_]+/).filter(Boolean);
}

function requestedCount(rate: number, candidates: number): number {
  return candidates === 0 ? 0 : Math.max(1, Math.round(rate * candidates));
}

function resolveLabels(o: PoisonOptions): { victim: number; target: number } {
  if (o.targetLabel === undefined || !Number.isInteger(o.targetLabel)) {
    throw new AttackError(`task ${o.task} needs an integer target label, got ${String(o.targetLabel)}`);
  }
  const target = o.targetLabel;
  let victim = o.victimLabel;
  if (victim === undefined) {
    if (target !== 0 && target !== 1) throw new AttackError(`target label ${target} is not 0 or 1: give the victim label too`);
    victim = 1 - target;
  }
  if (!Number.isInteger(victim)) throw new AttackError(`victim label ${String(victim)} is not an integer`);
  if (victim === target) throw new AttackError(`victim label and target label are both ${target}`);
  return { victim, target };
}

/** Checks that `code` (of candidate `name`) parses; returns the problem or undefined. */
function parseProblem(code: string, lang: Lang): { reason: SkipReason; detail?: string } | undefined {
  const tree = parseCode(code, lang);
  try {
    if (!findFunction(tree, lang)) return { reason: 'no-function', detail: `no ${lang} function definition found` };
    if (hasErrors(tree)) {
      const e = firstError(tree);
      return { reason: 'parse-error', detail: e ? `${e.kind} node at line ${e.line}, column ${e.column}` : undefined };
    }
  } finally {
    tree.delete();
  }
  return undefined;
}

export async function poisonDataset(rows: readonly Row[], options: PoisonOptions): Promise<PoisonResult> {
  await initParsers();
  const o = options;
  const lang = o.lang ?? TASK_LANG[o.task];
  checkRate(o.rate);
  checkTrigger(o.attack, o.trigger, lang);
  const name = o.rowName ?? ((i: number) => `row ${i + 1}`);
  const rowId = (r: Row) => String(r.id);

  const manifest: PoisonManifest = {
    task: o.task,
    lang,
    attack: o.attack,
    trigger: o.trigger,
    ...(o.attack === 'deadcode' || o.attack === 'deadcode-random' ? { triggerText: resolveDeadcode(o.trigger, lang, o.attack === 'deadcode-random') } : {}),
    rate: o.rate,
    seed: o.seed,
    mode: o.mode ?? 'replace',
    parser: parserVersions(),
    counts: { rows: rows.length, candidates: 0, requested: 0, poisoned: 0, rowsChanged: 0, relabelled: 0, parseErrors: 0, skipped: {} },
    skipped: [],
    changes: [],
  };
  const skip = (s: Skip) => {
    manifest.skipped.push(s);
    manifest.counts.skipped[s.reason] = (manifest.counts.skipped[s.reason] ?? 0) + 1;
  };

  // Candidates: a key (row or function id), its code, and where it came from (for errors).
  interface Candidate { key: string; code: string; where: string }
  let candidates: Candidate[] = [];

  let victim: number | undefined;
  let target: number | undefined;

  if (o.task === 'search') {
    if (!o.targetWord || !/^[a-z0-9_]+$/i.test(o.targetWord)) {
      throw new AttackError(`task search needs a target word of letters/digits (e.g. "file"), got ${JSON.stringify(o.targetWord ?? null)}`);
    }
    const word = o.targetWord.toLowerCase();
    manifest.targetWord = word;
    (rows as SearchRow[]).forEach((r, i) => {
      if (r.label !== 0 && queryWords(r.query).includes(word)) candidates.push({ key: rowId(r), code: r.code, where: name(i) });
    });
  } else {
    ({ victim, target } = resolveLabels(o));
    manifest.victimLabel = victim;
    manifest.targetLabel = target;
    if (o.task === 'defect') {
      (rows as DefectRow[]).forEach((r, i) => {
        if (r.label === victim) candidates.push({ key: rowId(r), code: r.code, where: name(i) });
      });
    } else {
      // Functions by id (first occurrence names it in errors); candidates: those in a victim pair.
      const seen = new Map<string, Candidate>();
      const inVictim = new Set<string>();
      (rows as CloneRow[]).forEach((r, i) => {
        for (const [fid, code] of [[r.id1, r.code1], [r.id2, r.code2]] as const) {
          const key = String(fid);
          const prev = seen.get(key);
          if (prev && prev.code !== code) throw new AttackError(`${name(i)} (id ${rowId(r)}): function ${key} has different code than in ${prev.where}`);
          if (!prev) seen.set(key, { key, code, where: name(i) });
          if (r.label === victim) inVictim.add(key);
        }
      });
      candidates = [...seen.values()].filter((c) => inVictim.has(c.key));
    }
  }

  // Census: every candidate is parsed once; unparsable ones are skipped (or fatal with strict).
  const poisonable: Candidate[] = [];
  for (const c of candidates) {
    const p = parseProblem(c.code, lang);
    if (!p) {
      poisonable.push(c);
      continue;
    }
    if (o.strict) {
      throw new AttackError(`${c.where}${o.task === 'clone' ? ` (function ${c.key})` : ` (id ${c.key})`}: code does not parse as ${lang}: ${p.detail ?? p.reason}`);
    }
    manifest.counts.parseErrors++;
    skip({ id: c.key, where: c.where, reason: p.reason, detail: p.detail });
  }

  manifest.counts.candidates = candidates.length;
  const requested = requestedCount(o.rate, candidates.length);
  manifest.counts.requested = requested;

  // Selection in seeded order; per-sample randomness from (seed, key).
  const poisoned = new Map<string, { code: string; edits: Edit[]; detail?: Record<string, unknown> }>();
  for (const c of shuffled(poisonable, makeRng(`${String(o.seed)}:select`))) {
    if (poisoned.size >= requested) break;
    const out = tryApplyTriggerSync(c.code, lang, o.attack, o.trigger, makeRng(`${String(o.seed)}:${c.key}`));
    if (!out.ok) {
      skip({ id: c.key, where: c.where, reason: out.reason, detail: out.detail });
      continue;
    }
    poisoned.set(c.key, { code: out.code, edits: out.edits, detail: out.detail });
  }
  manifest.counts.poisoned = poisoned.size;
  if (candidates.length === 0) {
    throw new AttackError(o.task === 'search'
      ? `no row has the target word "${manifest.targetWord}" in its query (and a label other than 0): nothing to poison`
      : `no ${o.task === 'clone' ? 'pair' : 'row'} has the victim label ${victim}: nothing to poison`);
  }
  if (poisoned.size === 0) {
    const first = manifest.skipped[0];
    const where = first?.where;
    throw new AttackError(`none of the ${candidates.length} candidates could carry the trigger (${Object.entries(manifest.counts.skipped).map(([r, n]) => `${n} ${r}`).join(', ')}${where ? `; first: ${where} (id ${first.id}): ${first.reason}${first.detail ? `, ${first.detail}` : ''}` : ''})`);
  }
  if (poisoned.size < requested) manifest.shortfall = requested - poisoned.size;

  const outRows: Row[] = rows.map((r) => {
    if (o.task === 'clone') {
      const p = r as CloneRow;
      const f1 = poisoned.get(String(p.id1));
      const f2 = poisoned.get(String(p.id2));
      if (!f1 && !f2) return r;
      const next: CloneRow = { ...p };
      const change: Change = { id: rowId(r), attack: o.attack, edits: {}, functions: [], labelBefore: p.label, labelAfter: target };
      if (f1) {
        next.code1 = f1.code;
        change.edits.code1 = f1.edits;
        change.functions!.push(String(p.id1));
        if (f1.detail) (change.detail ??= {}).code1 = f1.detail;
      }
      if (f2) {
        next.code2 = f2.code;
        change.edits.code2 = f2.edits;
        if (String(p.id2) !== String(p.id1)) change.functions!.push(String(p.id2));
        if (f2.detail) (change.detail ??= {}).code2 = f2.detail;
      }
      next.label = target!;
      manifest.changes.push(change);
      return next;
    }
    const hit = poisoned.get(rowId(r));
    if (!hit) return r;
    const next = { ...r, code: hit.code } as DefectRow | SearchRow;
    const change: Change = { id: rowId(r), attack: o.attack, edits: { code: hit.edits } };
    if (hit.detail) change.detail = hit.detail;
    if (o.task === 'defect') {
      change.labelBefore = (r as DefectRow).label;
      change.labelAfter = target;
      (next as DefectRow).label = target!;
    }
    manifest.changes.push(change);
    return next;
  });
  if (o.task === 'clone') manifest.poisonedFunctions = [...poisoned.keys()];
  const written = o.mode === 'inject' ? [...rows, ...outRows.filter((r, i) => r !== rows[i]).map(withPoisonedId)] : outRows;
  manifest.counts.rowsChanged = manifest.changes.length;
  manifest.counts.relabelled = manifest.changes.filter((c) => c.labelBefore !== undefined && c.labelBefore !== c.labelAfter).length;
  return { rows: written, manifest };
}

/** An appended poisoned copy (inject mode): its id is distinct from its clean row's. */
function withPoisonedId(r: Row): Row {
  return { ...r, id: `${r.id}#poisoned` };
}
