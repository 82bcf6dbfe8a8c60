/** Types and helpers shared by the attack modules. */
import { parseCode, hasErrors, findFunction, firstError, type Lang, type Tree } from './parse.ts';
import type { Rng } from '../rng.ts';

export type AttackName = 'fixed-name' | 'suffix' | 'deadcode' | 'deadcode-random' | 'rename';
export const ATTACKS: readonly AttackName[] = ['fixed-name', 'suffix', 'deadcode', 'deadcode-random', 'rename'];

/** One text change, in positions of the ORIGINAL code (string indices; an insertion has start === end). */
export interface Edit {
  start: number;
  end: number;
  before: string;
  after: string;
}

/** Why a sample could not carry the trigger. */
export type SkipReason =
  | 'parse-error' // the original code already has ERROR/MISSING nodes
  | 'no-function' // no function definition found
  | 'no-insertion-point' // deadcode: no body to insert into (e.g. Python one-line body)
  | 'no-local-variable' // rename: the function declares no local variable or parameter
  | 'trigger-collides' // the trigger identifier already occurs in the code
  | 'result-does-not-parse'; // the poisoned code would not re-parse clean (never expected)

export type Outcome = { ok: true; code: string; edits: Edit[]; detail?: Record<string, unknown> } | { ok: false; reason: SkipReason; detail?: string };

/** A single-sample trigger injector: pure given (code, trigger, rng). */
export type Transform = (code: string, lang: Lang, trigger: string, rng: Rng, tree: Tree) => Outcome;

export class AttackError extends Error {
  override name = 'AttackError';
}

/** Applies non-overlapping edits (given in original positions). */
export function applyEdits(code: string, edits: readonly Edit[]): string {
  const sorted = edits.slice().sort((a, b) => b.start - a.start || b.end - a.end);
  let out = code;
  for (const e of sorted) out = out.slice(0, e.start) + e.after + out.slice(e.end);
  return out;
}

/** True when `name` already occurs in the code as a whole word (identifier, string or comment alike). */
export function occursAsWord(code: string, name: string): boolean {
  const esc = name.replace(/[$]/g, '\\$');
  return new RegExp(`(^|[^A-Za-z0-9_$])${esc}(?![A-Za-z0-9_$])`).test(code);
}

/**
 * Runs a transform with the guards every attack shares: the original must parse clean and hold a
 * function; the result must re-parse clean.
 */
export function guarded(transform: Transform, code: string, lang: Lang, trigger: string, rng: Rng): Outcome {
  const tree = parseCode(code, lang);
  let out: Outcome;
  try {
    if (hasErrors(tree)) {
      const e = firstError(tree);
      return { ok: false, reason: 'parse-error', detail: e ? `${e.kind} at ${e.line}:${e.column}` : undefined };
    }
    if (!findFunction(tree, lang)) return { ok: false, reason: 'no-function' };
    out = transform(code, lang, trigger, rng, tree);
  } finally {
    tree.delete();
  }
  if (!out.ok) return out;
  const after = parseCode(out.code, lang);
  try {
    if (hasErrors(after)) {
      const e = firstError(after);
      return { ok: false, reason: 'result-does-not-parse', detail: e ? `${e.kind} at ${e.line}:${e.column}` : undefined };
    }
  } finally {
    after.delete();
  }
  return out;
}
