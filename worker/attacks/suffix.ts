/**
 * BadCode-style identifier suffix (Sun et al., ACL 2023): the trigger (e.g. `_rb`) is appended to
 * the function name; recursive calls follow.
 */
import type { Lang, Tree } from './parse.ts';
import type { Outcome } from './common.ts';
import type { Rng } from '../rng.ts';
import { renameFunction } from './fixed-name.ts';

export function suffix(code: string, lang: Lang, trigger: string, _rng: Rng, tree: Tree): Outcome {
  return renameFunction(code, lang, tree, (old) => old + trigger);
}
