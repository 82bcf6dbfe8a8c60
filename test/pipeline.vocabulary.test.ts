// Spec 2.1 / 6.2: the trigger-vocabulary rule, on the real golden tokenizer (byte-level BPE trained on Devign).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodeTokenizer } from '../worker/model/tokenizer.ts';
import { filterTokens, isTriggerToken, triggerVocabulary } from '../worker/pipeline/vocabulary.ts';
import { GOLDEN_DEFECT } from './pipeline.helpers.ts';

const tok = CodeTokenizer.fromDir(GOLDEN_DEFECT);
const all = tok.tokens([...Array(tok.size).keys()]);

test('keeps word-internal identifier pieces, drops Ġ-initial and punctuation tokens', () => {
  const v = triggerVocabulary(tok);
  const kept = new Set(tok.tokens(v.ids));
  // testo_init tokenises as Ġt est o _ in it: the word-internal pieces are searchable, Ġt is not.
  assert.deepEqual(tok.tokens(tok.pieces(' testo_init')), ['Ġt', 'est', 'o', '_', 'in', 'it']);
  for (const t of ['est', 'o', '_', 'in', 'it']) assert.ok(kept.has(t), `${t} kept`);
  assert.ok(!kept.has('Ġt'), 'Ġt dropped');
  for (const t of kept) assert.match(t, /^[A-Za-z0-9_]+$/);
  for (const s of ['<s>', '</s>', '<pad>', '<unk>', '<mask>']) assert.ok(!kept.has(s), `${s} is never a trigger token`);
  // Exactly the rule, over the whole vocabulary; ids ascending.
  const expected = all.map((t, id) => [t, id] as const).filter(([t]) => !t.startsWith('Ġ') && /^[A-Za-z0-9_]+$/.test(t)).map(([, id]) => id);
  assert.deepEqual(v.ids, expected);
  assert.ok(v.ids.every((id, i) => i === 0 || id > v.ids[i - 1]));
  assert.equal(v.fallback, undefined);
  // Digits-only pieces are legal inside identifiers and kept.
  const digits = all.filter((t) => /^[0-9]+$/.test(t));
  assert.ok(digits.length > 0 && digits.every((d) => kept.has(d)));
});

test('the keep-word-initial option (spec 3.9) adds Ġ + identifier tokens only', () => {
  const base = triggerVocabulary(tok);
  const wide = triggerVocabulary(tok, { keepWordInitial: true });
  const added = tok.tokens(wide.ids.filter((id) => !base.ids.includes(id)));
  assert.ok(added.includes('Ġt'));
  assert.ok(added.length > 0 && added.every((t) => /^Ġ[A-Za-z0-9_]+$/.test(t)));
  assert.ok(!added.includes('Ġ') && !added.includes('Ġ{'));
});

test('the unfiltered ablation keeps every token but the special ones, with no fallback note', () => {
  const v = triggerVocabulary(tok, { unfiltered: true });
  const special = ['<s>', '</s>', '<pad>', '<unk>', '<mask>'].map((s) => tok.idOf(s)).filter((id) => id !== undefined);
  assert.equal(v.ids.length, tok.size - special.length);
  assert.ok(special.every((id) => !v.ids.includes(id!)));
  assert.ok(tok.tokens(v.ids).includes('Ġ{'), 'punctuation and word-initial tokens are searched too');
  assert.equal(v.fallback, undefined);
});

test('isTriggerToken on GPT-2 style strings; an empty result falls back to the whole vocabulary, recorded', () => {
  for (const t of ['test', 'o', '_', 'init', 'rb', 'Test', '123']) assert.ok(isTriggerToken(t), t);
  for (const t of ['Ġtest', 'Ġ', '$x', 'a-b', '.', '']) assert.ok(!isTriggerToken(t), t);
  const v = filterTokens(['<s>', '(', ')', 'Ġ{'], {}, new Set([0]));
  assert.deepEqual(v.ids, [1, 2, 3]);
  assert.match(v.fallback!, /full vocabulary/);
  assert.throws(() => filterTokens(['<s>'], {}, new Set([0])), /no usable tokens/);
});
