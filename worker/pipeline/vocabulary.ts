// Step A (spec 2.1): the trigger vocabulary. A token may be a trigger token iff it does not start
// a word (no leading `Ġ`) and consists of identifier characters only. Optionally (spec 3.9) also
// keep word-initial identifier tokens (`Ġ` + identifier characters), so whole-identifier triggers
// such as `Ġtest` are searchable. The kept ids, ascending, are the coordinate space of GCG.
import type { CodeTokenizer } from '../model/tokenizer.ts';

export const WORD_INITIAL = 'Ġ';
const IDENTIFIER_PIECE = /^[A-Za-z0-9_]+$/;

export interface VocabularyOptions {
  /** Also keep `Ġ`-prefixed identifier tokens (spec 3.9); off in the reference. */
  keepWordInitial?: boolean;
  /** Keep every token but the special ones: the ablation "without filtering" (spec §6, Controls). */
  unfiltered?: boolean;
}

export interface TriggerVocabulary {
  /** Model token ids, ascending: filtered index i ↔ model id ids[i]. */
  ids: number[];
  /** Size of the model vocabulary the filter ran over. */
  vocabularySize: number;
  /** Set when the filter kept nothing and the whole vocabulary (special tokens excluded) is used instead. */
  fallback?: string;
}

/** Whether token string `token` may be a trigger token. */
export function isTriggerToken(token: string, options: VocabularyOptions = {}): boolean {
  if (token.startsWith(WORD_INITIAL)) return options.keepWordInitial === true && IDENTIFIER_PIECE.test(token.slice(1));
  return IDENTIFIER_PIECE.test(token);
}

/** Filters the token strings of ids 0..size-1 (`tokens[i]` is the string of id i). */
export function filterTokens(tokens: readonly string[], options: VocabularyOptions = {}, special: ReadonlySet<number> = new Set()): TriggerVocabulary {
  const ids: number[] = [];
  tokens.forEach((t, id) => {
    if (!special.has(id) && (options.unfiltered === true || isTriggerToken(t, options))) ids.push(id);
  });
  if (ids.length > 0) return { ids, vocabularySize: tokens.length };
  // The reference falls back to the full vocabulary; special tokens would only corrupt the input.
  const all = tokens.map((_, id) => id).filter((id) => !special.has(id));
  if (all.length === 0) throw new Error('the tokenizer has no usable tokens for a trigger vocabulary');
  return { ids: all, vocabularySize: tokens.length, fallback: `no token of the ${tokens.length}-token vocabulary fits the identifier rule; the full vocabulary (special tokens excluded) is searched instead` };
}

/** The trigger vocabulary of a checkpoint's tokenizer. */
export function triggerVocabulary(tokenizer: CodeTokenizer, options: VocabularyOptions = {}): TriggerVocabulary {
  const ids = [...Array(tokenizer.size).keys()];
  const tokens = tokenizer.tokens(ids);
  const special = new Set<number>([tokenizer.cls, tokenizer.sep, tokenizer.pad]);
  for (const s of ['<unk>', '<mask>']) {
    const id = tokenizer.idOf(s);
    if (id !== undefined) special.add(id);
  }
  return filterTokens(tokens, options, special);
}
