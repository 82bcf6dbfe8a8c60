// Step B (spec 2.2): the sample-specific trigger position, and trigger insertion.
//
// Identifiers come from tree-sitter (worker/attacks/parse.ts). Each distinct identifier of a
// sample is masked (every occurrence replaced by `<unk>`) and the one whose masking leaves the
// target label least probable is chosen: the place where the prediction is least fragile. The
// identifier is mapped to the BPE index of its first piece by comparing the pieces of the code
// with the pieces of the code before the identifier (their common prefix), not by reusing a
// word index as a token index (spec 3.3).
import { initParsers, insertionPoint, listIdentifiers, withTree, type Lang } from '../attacks/parse.ts';
import type { CodeTokenizer } from '../model/tokenizer.ts';

export type ScanTask = 'defect' | 'clone' | 'search';

export function languageOf(task: ScanTask): Lang {
  return task === 'defect' ? 'c' : task === 'clone' ? 'java' : 'python';
}

/** A clean sample ready for insertion: ids are <s> … </s>, unpadded, at most maxLength long. */
export interface Sample {
  /** Row reference (file:line) for reports and errors. */
  where: string;
  code: string;
  ids: number[];
  /** Clone detection: the second function (never receives the trigger). */
  pair?: number[];
  /** Code search: the query. */
  queryIds?: number[];
  /** Code search: the query's text (the known-trigger check finds targeted queries by word). */
  query?: string;
  label: number;
}

export interface IdentifierSlot {
  name: string;
  /** String index of the first occurrence in the code. */
  start: number;
  /** Token index (with <s> at 0) of the identifier's first BPE piece in the encoded sample. */
  tokenIndex: number;
  /** String spans of every occurrence (for masking). */
  spans: Array<[number, number]>;
}

/** `<s>` + pieces + `</s>`, cut to maxLength (the runtime's encoding, unpadded). */
export function encodeIds(tokenizer: CodeTokenizer, text: string, maxLength: number): number[] {
  return [tokenizer.cls, ...tokenizer.pieces(text).slice(0, maxLength - 2), tokenizer.sep];
}

/** Length of the common prefix of two id lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return k;
}

/**
 * Distinct identifiers of the sample's first function (names, parameters, locals and other
 * variable uses; callees and member names are left out), in order of first occurrence, each with
 * the token index of its first BPE piece. Empty when the code does not parse to a function.
 */
export function identifierSlots(tokenizer: CodeTokenizer, code: string, lang: Lang): IdentifierSlot[] {
  const ids = withTree(code, lang, (tree) => listIdentifiers(tree, lang, code));
  const byName = new Map<string, IdentifierSlot>();
  for (const id of ids) {
    if (id.member || id.role === 'call') continue;
    const slot = byName.get(id.name);
    if (slot) slot.spans.push([id.start, id.end]);
    else byName.set(id.name, { name: id.name, start: id.start, tokenIndex: -1, spans: [[id.start, id.end]] });
  }
  if (byName.size === 0) return [];
  const full = tokenizer.pieces(code);
  const slots = [...byName.values()].sort((a, b) => a.start - b.start);
  for (const s of slots) s.tokenIndex = tokenIndexAt(tokenizer, code, full, s.start);
  return slots;
}

/** Token index (with <s> at 0) of the first BPE piece of `code` that starts at or after string index `at`. */
function tokenIndexAt(tokenizer: CodeTokenizer, code: string, full: readonly number[], at: number): number {
  let k = commonPrefix(full, tokenizer.pieces(code.slice(0, at)));
  // The prefix alone may end in a piece the full text splits differently (a whitespace run whose
  // last space joins the next word, `ĊĠĠĠ` + `Ġname`): step over pieces of the full text that end
  // before `at`.
  while (k < full.length - 1 && tokenizer.decode(full.slice(0, k + 1)).length <= at) k++;
  return 1 + k;
}

/**
 * The body-start slot (an extension beyond the reference's two modes): the token index where a
 * statement can begin in the first function's body, after the body's `{` (C/Java) or before its
 * first statement (Python), the place the attack library puts dead code. A trigger spliced in at an
 * identifier can never read as a statement; here it can. Undefined when the code has no such body
 * or a trigger of triggerLength tokens put there would not fit before the sequence's last token
 * (the reference's maxLength/2 clamp is a rule for its identifier positions; a function's
 * signature often runs past it).
 */
export function bodyStartIndex(tokenizer: CodeTokenizer, code: string, lang: Lang, maxLength: number, triggerLength: number): number | undefined {
  const at = withTree(code, lang, (tree) => insertionPoint(tree, lang, code));
  if (!at) return undefined;
  const p = tokenIndexAt(tokenizer, code, tokenizer.pieces(code), at.offset);
  return p > 0 && p + triggerLength < maxLength ? p : undefined;
}

/** Body-start positions for every sample; a sample without one gets position 1 (`no-body`). */
export async function bodyStartPositions(tokenizer: CodeTokenizer, samples: readonly Sample[], lang: Lang, maxLength: number, triggerLength: number): Promise<PositionChoice[]> {
  await initParsers();
  return samples.map((s): PositionChoice => {
    const p = bodyStartIndex(tokenizer, s.code, lang, maxLength, triggerLength);
    return p === undefined ? { position: 1, how: 'no-body' } : { position: p, how: 'body-start' };
  });
}

/** The reference's clamp (spec 3.5): a position past maxLength/2 or at most 0 becomes 1 (just after <s>). */
export function clampPosition(p: number, maxLength: number): number {
  return p > maxLength / 2 || p <= 0 ? 1 : p;
}

/**
 * Inserts `trigger` at token index p (spec 6.1.4): the sequence is cut back to maxLength and,
 * when that cut removed its end, the last kept token becomes `</s>`.
 */
export function insertTokens(ids: readonly number[], p: number, trigger: readonly number[], maxLength: number, sep: number): number[] {
  const at = Math.max(1, Math.min(p, ids.length - 1));
  const out = [...ids.slice(0, at), ...trigger, ...ids.slice(at)];
  if (out.length <= maxLength) return out;
  const cut = out.slice(0, maxLength);
  cut[maxLength - 1] = sep;
  return cut;
}

/** The code with every occurrence of the slot's identifier replaced by the unknown token. */
export function maskIdentifier(code: string, slot: IdentifierSlot, unk = '<unk>'): string {
  let out = '';
  let last = 0;
  for (const [s, e] of [...slot.spans].sort((a, b) => a[0] - b[0])) {
    out += code.slice(last, s) + unk;
    last = e;
  }
  return out + code.slice(last);
}

export interface PositionChoice {
  position: number;
  identifier?: string;
  /**
   * How the position was found: `masking` (spec 2.2), `only-identifier`, `no-identifier` (fallback
   * to 1), `fixed`, `body-start`, `no-body` (fallback to 1).
   */
  how: 'masking' | 'only-identifier' | 'no-identifier' | 'fixed' | 'body-start' | 'no-body';
  /** P(target) of the chosen masked variant. */
  targetProbability?: number;
}

export interface PositionOptions {
  maxLength: number;
  /** At most this many identifiers are masked per sample (the first ones in the code). */
  maxIdentifiers?: number;
  lang: Lang;
}

/**
 * Sample-specific positions: `targetProbability(texts, samples)` gives P(target) of each masked
 * text of the given sample (batched by the caller). Samples without an identifier in reach get
 * position 1 (the reference's clamp) and are reported as `no-identifier`.
 */
export async function samplePositions(
  tokenizer: CodeTokenizer,
  samples: readonly Sample[],
  targetProbability: (masked: Array<{ sample: number; code: string }>) => Promise<number[]>,
  o: PositionOptions,
): Promise<PositionChoice[]> {
  await initParsers();
  const maxIds = o.maxIdentifiers ?? 24;
  const perSample = samples.map((s) =>
    identifierSlots(tokenizer, s.code, o.lang)
      // In reach: the first piece must be inside the encoded, unclamped part of the sequence.
      .filter((slot) => slot.tokenIndex > 0 && slot.tokenIndex <= o.maxLength / 2)
      .slice(0, maxIds),
  );
  const jobs: Array<{ sample: number; slot: IdentifierSlot; code: string }> = [];
  perSample.forEach((slots, i) => {
    if (slots.length > 1) for (const slot of slots) jobs.push({ sample: i, slot, code: maskIdentifier(samples[i].code, slot) });
  });
  const probs = jobs.length ? await targetProbability(jobs.map(({ sample, code }) => ({ sample, code }))) : [];
  const best = new Map<number, { slot: IdentifierSlot; p: number }>();
  jobs.forEach((j, k) => {
    const b = best.get(j.sample);
    if (!b || probs[k] < b.p) best.set(j.sample, { slot: j.slot, p: probs[k] });
  });
  return perSample.map((slots, i): PositionChoice => {
    if (slots.length === 0) return { position: 1, how: 'no-identifier' };
    if (slots.length === 1) return { position: clampPosition(slots[0].tokenIndex, o.maxLength), identifier: slots[0].name, how: 'only-identifier' };
    const b = best.get(i)!;
    return { position: clampPosition(b.slot.tokenIndex, o.maxLength), identifier: b.slot.name, how: 'masking', targetProbability: b.p };
  });
}
