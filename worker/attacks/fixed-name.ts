/**
 * Function-name substitution with a fixed identifier (CodePoisoner's `testo_init`, as in the
 * EliBadCode evaluation): the function's name becomes the trigger. Direct recursive calls are renamed
 * with it so the function still calls itself.
 */
import { findFunction, functionNameNode, recursiveCalls, spanOf, type Lang, type Tree } from './parse.ts';
import { applyEdits, occursAsWord, type Edit, type Outcome } from './common.ts';
import type { Rng } from '../rng.ts';

/** Renames the function (definition plus recursive calls) to `newName`. */
export function renameFunction(code: string, lang: Lang, tree: Tree, newName: (old: string) => string): Outcome {
  const fn = findFunction(tree, lang)!;
  const name = functionNameNode(fn, lang);
  if (!name) return { ok: false, reason: 'no-function', detail: 'the function has no plain identifier name' };
  const to = newName(name.text);
  if (to === name.text || occursAsWord(code, to)) return { ok: false, reason: 'trigger-collides', detail: `"${to}" already occurs in the code` };
  const nodes = [name, ...recursiveCalls(fn, lang, name.text)];
  const edits: Edit[] = nodes.map((n) => ({ ...spanOf(tree, n), before: n.text, after: to }));
  return { ok: true, code: applyEdits(code, edits), edits, detail: { function: name.text } };
}

export function fixedName(code: string, lang: Lang, trigger: string, _rng: Rng, tree: Tree): Outcome {
  return renameFunction(code, lang, tree, () => trigger);
}
