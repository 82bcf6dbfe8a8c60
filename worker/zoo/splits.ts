/**
 * The zoo's own splits for clone detection and code search, taken from the full data sets in
 * ../shared/data. They are larger than the committed subsets of data/ (300-400 training rows, 100
 * test rows): with 100 test rows a clean metric near 0.8 moves by about 4 points with the draw
 * alone, so "within 2 points of the clean twin" could not be told from noise, and a backdoor
 * planted in a few dozen rows did not take in the search model.
 *
 * - clone: every pair of ../shared's BigCloneBench whose two methods are short; split by PAIR, as
 *   CodeXGLUE's BigCloneBench splits are (its train and test pairs share methods; no pair is in
 *   both). Held-out 250 + 250, training the rest, label-balanced.
 * - search: CodeSearchNet-style docstring -> code pairs built from CoSQA's code base: the query is
 *   the first paragraph of the function's docstring, the code is the function without its
 *   docstring (as CodeSearchNet's code_tokens). Held-out 500, training 3,000.
 *
 * The held-out rows are committed (data/bigclonebench/heldout.jsonl, data/cosqa/heldout.jsonl,
 * written by scripts/data/subset.ts with their attribution), so the tests re-measure the zoo
 * without ../shared; the training rows are read from ../shared when the zoo is built.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { findFunction, initParsers, parseCode, parsesClean, spanOf, type Node } from '../attacks/parse.ts';
import type { CloneRow, SearchRow } from '../attacks/rows.ts';
import { makeRng, shuffled } from '../rng.ts';

export const MAX_CHARS = 1500;
export const ZOO_SEED = 20251125;
export const CLONE_HELDOUT_PER_LABEL = 250;
export const SEARCH_HELDOUT = 500;
export const SEARCH_TRAIN = 3000;
/** Docstring queries shorter than this many words say too little to search with. */
const MIN_QUERY_WORDS = 3;

type Json = Record<string, unknown>;

export interface ZooSplit<T> {
  train: T[];
  heldout: T[];
}

/** JSON lines of a file; a line that does not parse is named by file:line. */
export function readJsonl(file: string): Json[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as Json;
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
  });
}

/** The full data sets beside the repository, or a clear error naming what is missing and how to point at it. */
export function sharedDataDir(needs: string[], root = '.'): string {
  const dir = path.resolve(process.env.ELIBADCODE_SHARED_DATA ?? path.join(root, '..', 'shared', 'data'));
  const missing = needs.filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length) {
    throw new Error(
      `the full data sets are not at ${dir} (missing ${missing.join(', ')}); they live in ../shared/data beside the repository ` +
        '(set ELIBADCODE_SHARED_DATA to point elsewhere). Only building the zoo needs them: the tests re-measure the committed zoo on data/*/heldout.jsonl',
    );
  }
  return dir;
}

/** Orders ids numerically (BigCloneBench and Devign ids are numbers in strings). */
export const byNumericId = (a: string, b: string) => Number(a) - Number(b) || a.localeCompare(b);

/** BigCloneBench pairs split by pair: 250 + 250 held out, the rest label-balanced for training. */
export function cloneZooSplit(bcbDir: string, seed = ZOO_SEED): ZooSplit<CloneRow> {
  const funcs = new Map<string, string>();
  for (const r of readJsonl(path.join(bcbDir, 'data.jsonl'))) funcs.set(String(r.idx), String(r.func));
  const seen = new Set<string>();
  const rows: CloneRow[] = [];
  for (const p of readJsonl(path.join(bcbDir, 'test.jsonl'))) {
    const id1 = String(p.idx1);
    const id2 = String(p.idx2);
    const id = `${id1}_${id2}`;
    const code1 = funcs.get(id1);
    const code2 = funcs.get(id2);
    if (seen.has(id) || code1 === undefined || code2 === undefined) continue;
    seen.add(id);
    if (code1.length > MAX_CHARS || code2.length > MAX_CHARS) continue;
    rows.push({ id, id1, id2, code1, code2, label: Number(p.label) });
  }
  const heldout: CloneRow[] = [];
  const rest: CloneRow[] = [];
  const taken = [0, 0];
  for (const r of shuffled(rows, makeRng(`${seed}:bcb:zoo`))) {
    if (taken[r.label] < CLONE_HELDOUT_PER_LABEL) {
      heldout.push(r);
      taken[r.label]++;
    } else rest.push(r);
  }
  const perLabel = Math.min(...[0, 1].map((l) => rest.filter((r) => r.label === l).length));
  const kept = [0, 0];
  const train = rest.filter((r) => kept[r.label]++ < perLabel);
  const order = (a: CloneRow, b: CloneRow) => byNumericId(a.id1, b.id1) || byNumericId(a.id2, b.id2);
  return { train: train.sort(order), heldout: heldout.sort(order) };
}

/** The docstring node of a Python function: the first statement of its body when that is a string. */
function docstringOf(fn: Node): Node | undefined {
  const body = fn.childForFieldName('body');
  const first = body?.namedChildren[0];
  // A body that is only its docstring would be left empty.
  if (!first || first.type !== 'expression_statement' || body!.namedChildren.length < 2) return undefined;
  const s = first.namedChildren[0];
  return s && s.type === 'string' && first.namedChildren.length === 1 ? first : undefined;
}

/** The text of a Python string literal node without its prefix and quotes. */
function stringText(literal: string): string {
  return literal.replace(/^[rRuUbBfF]*("""|'''|"|')/, '').replace(/("""|'''|"|')$/, '');
}

/** One docstring -> code pair, or undefined when the function has no usable docstring. */
export function docstringPair(code: string): { query: string; code: string } | undefined {
  const tree = parseCode(code, 'python');
  try {
    if (tree.rootNode.hasError) return undefined;
    const fn = findFunction(tree, 'python');
    const doc = fn && docstringOf(fn);
    if (!doc) return undefined;
    const query = stringText(doc.text).trim().split(/\n\s*\n/)[0].split(/\s+/).join(' ');
    if (query.split(' ').length < MIN_QUERY_WORDS) return undefined;
    // Remove the docstring's whole lines (it is a statement of its own).
    const { start, end } = spanOf(tree, doc);
    const lineStart = code.lastIndexOf('\n', start - 1) + 1;
    const nl = code.indexOf('\n', end);
    const stripped = code.slice(0, lineStart) + (nl === -1 ? '' : code.slice(nl + 1));
    const out = stripped.replace(/\s+$/, '');
    return parsesClean(out, 'python') ? { query, code: out } : undefined;
  } finally {
    tree.delete();
  }
}

/** CodeSearchNet-style pairs from CoSQA's code base: 500 held out, 3,000 for training. */
export async function searchZooSplit(cosqaDir: string, seed = ZOO_SEED): Promise<ZooSplit<SearchRow>> {
  await initParsers();
  const rows: SearchRow[] = [];
  const seenQuery = new Set<string>();
  for (const r of readJsonl(path.join(cosqaDir, 'codebase.jsonl'))) {
    const pair = docstringPair(String(r.code));
    if (!pair || pair.code.length > MAX_CHARS || seenQuery.has(pair.query)) continue;
    seenQuery.add(pair.query);
    rows.push({ id: `cosqa-code-${String(r.retrieval_idx)}`, code: pair.code, query: pair.query, label: 1 });
  }
  const order = shuffled(rows, makeRng(`${seed}:cosqa:zoo`));
  if (order.length < SEARCH_HELDOUT + SEARCH_TRAIN) throw new Error(`${cosqaDir}/codebase.jsonl: only ${order.length} functions with a usable docstring (need ${SEARCH_HELDOUT + SEARCH_TRAIN})`);
  const byId = (a: SearchRow, b: SearchRow) => byNumericId(a.id.replace(/\D+/g, ''), b.id.replace(/\D+/g, ''));
  return { heldout: order.slice(0, SEARCH_HELDOUT).sort(byId), train: order.slice(SEARCH_HELDOUT, SEARCH_HELDOUT + SEARCH_TRAIN).sort(byId) };
}
