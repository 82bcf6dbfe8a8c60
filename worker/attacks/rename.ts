/**
 * Variable renaming: one local variable of the function (chosen with the rng; a parameter when the
 * function declares no local) is renamed to the trigger at every occurrence in the function.
 * Member names after a dot (`obj.x`, `self.x`, `list.size()`), keyword-argument names and field
 * names are other namespaces and stay as they are.
 */
import { listIdentifiers, functionNameNode, findFunction, type Lang, type Tree } from './parse.ts';
import { applyEdits, occursAsWord, type Edit, type Outcome } from './common.ts';
import { pick, type Rng } from '../rng.ts';

export function rename(code: string, lang: Lang, trigger: string, rng: Rng, tree: Tree): Outcome {
  if (occursAsWord(code, trigger)) return { ok: false, reason: 'trigger-collides', detail: `"${trigger}" already occurs in the code` };
  const ids = listIdentifiers(tree, lang, code);
  const fnName = functionNameNode(findFunction(tree, lang)!, lang)?.text;
  const declared = (role: 'local' | 'parameter') =>
    [...new Set(ids.filter((i) => i.role === role).map((i) => i.name))].filter((n) => n !== fnName && n !== 'self' && n !== 'cls');
  let candidates = declared('local');
  let kind: 'local' | 'parameter' = 'local';
  if (candidates.length === 0) {
    candidates = declared('parameter');
    kind = 'parameter';
  }
  if (candidates.length === 0) return { ok: false, reason: 'no-local-variable' };
  const victim = pick(rng, candidates.sort());
  const edits: Edit[] = ids
    .filter((i) => i.name === victim && !i.member && i.role !== 'function')
    .map((i) => ({ start: i.start, end: i.end, before: victim, after: trigger }));
  return { ok: true, code: applyEdits(code, edits), edits, detail: { variable: victim, kind } };
}
