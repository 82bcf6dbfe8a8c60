// Spec 2.2 / 3.3 / 6.1.4: identifiers from tree-sitter mapped to their first BPE piece, insertion semantics, selection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initParsers } from '../worker/attacks/parse.ts';
import { readExamples } from '../worker/model/tasks.ts';
import { CodeTokenizer } from '../worker/model/tokenizer.ts';
import { bodyStartIndex, bodyStartPositions, clampPosition, encodeIds, identifierSlots, insertTokens, maskIdentifier, samplePositions } from '../worker/pipeline/positions.ts';
import { DEVIGN, GOLDEN_DEFECT } from './pipeline.helpers.ts';

await initParsers();
const tok = CodeTokenizer.fromDir(GOLDEN_DEFECT);
const rows = readExamples(join(DEVIGN, 'train.jsonl'), 'defect').slice(0, 40);

test('every identifier maps to the BPE piece where it starts, on real Devign functions', () => {
  let checked = 0;
  for (const r of rows) {
    const ids = [tok.cls, ...tok.pieces(r.code), tok.sep];
    for (const slot of identifierSlots(tok, r.code, 'c')) {
      // Decoding the pieces before the slot gives exactly the code before the identifier, possibly
      // without the characters its first piece absorbed (a leading space, `(_`): never more.
      const before = tok.decode(ids.slice(1, slot.tokenIndex));
      const withFirst = tok.decode(ids.slice(1, slot.tokenIndex + 1));
      const start = slot.start;
      assert.ok(r.code.slice(0, start).startsWith(before), `${r.where} ${slot.name}: prefix`);
      assert.ok(withFirst.length > start, `${r.where} ${slot.name}: the first piece reaches into the identifier`);
      assert.equal(withFirst.slice(start, start + 1), slot.name[0], `${r.where} ${slot.name}`);
      checked++;
    }
  }
  assert.ok(checked > 200, `checked ${checked} identifiers`);
});

test('the function name of a C function is a slot, and its token index is not its word index', () => {
  const code = 'static int testo_init(int a, char *buf)\n{\n    int count = a + 1;\n    return count;\n}\n';
  const slots = identifierSlots(tok, code, 'c');
  const names = slots.map((s) => s.name);
  assert.deepEqual(names, ['testo_init', 'a', 'buf', 'count']);
  const ids = [tok.cls, ...tok.pieces(code), tok.sep];
  const fn = slots[0];
  assert.equal(tok.tokens([ids[fn.tokenIndex]])[0], 'Ġt');
  assert.equal(fn.spans.length, 1);
  assert.equal(slots[3].spans.length, 2);
  assert.equal(maskIdentifier(code, slots[3]), code.replaceAll('count', '<unk>'));
  assert.deepEqual(identifierSlots(tok, 'this is not C (', 'c'), []);
});

test('insertion keeps length ≤ L, ends in </s> when cut, leaves the rest unchanged', () => {
  const ids = [0, 10, 11, 12, 13, 2];
  assert.deepEqual(insertTokens(ids, 2, [90, 91], 16, 2), [0, 10, 90, 91, 11, 12, 13, 2]);
  assert.deepEqual(insertTokens(ids, 2, [90, 91], 6, 2), [0, 10, 90, 91, 11, 2]);
  assert.deepEqual(insertTokens(ids, 0, [90], 16, 2), [0, 90, 10, 11, 12, 13, 2], 'never before <s>');
  assert.deepEqual(insertTokens(ids, 99, [90], 16, 2), [0, 10, 11, 12, 13, 90, 2], 'never after </s>');
  assert.deepEqual(insertTokens(ids, 3, [], 16, 2), ids);
  assert.equal(clampPosition(0, 64), 1);
  assert.equal(clampPosition(33, 64), 1);
  assert.equal(clampPosition(32, 64), 32);
  const e = encodeIds(tok, rows[0].code, 20);
  assert.equal(e.length, 20);
  assert.equal(e[0], tok.cls);
  assert.equal(e[19], tok.sep);
});

test('selection picks the identifier whose masking leaves P(target) lowest; no identifier → position 1, reported', async () => {
  const code = 'int f(int alpha, int beta)\n{\n    return alpha * beta;\n}\n';
  const samples = [
    { where: 'a', code, ids: encodeIds(tok, code, 64), label: 1 },
    { where: 'b', code: '((( not code', ids: encodeIds(tok, '((( not code', 64), label: 1 },
  ];
  // A stub model: P(target) is low only when `beta` is masked.
  const choice = await samplePositions(tok, samples, async (masked) => masked.map((m) => (m.code.includes('beta') ? 0.9 : 0.1)), { maxLength: 64, lang: 'c' });
  assert.equal(choice[0].identifier, 'beta');
  assert.equal(choice[0].how, 'masking');
  const slot = identifierSlots(tok, code, 'c').find((s) => s.name === 'beta')!;
  assert.equal(choice[0].position, slot.tokenIndex);
  assert.deepEqual(choice[1], { position: 1, how: 'no-identifier' });
});

test('body start: the trigger goes right after the body\'s `{` (C, Java) or before the first statement (Python), where dead code goes', async () => {
  const c = 'static int f(int a)\n{\n    return a;\n}\n';
  const ids = encodeIds(tok, c, 64);
  const p = bodyStartIndex(tok, c, 'c', 64, 5)!;
  assert.equal(tok.decode(ids.slice(1, p)), 'static int f(int a)\n{', 'everything up to the brace comes before the slot');
  const java = 'class A {\n  public A(int x) {\n    super(x);\n    int y = x;\n  }\n}\n';
  const pj = bodyStartIndex(tok, java, 'java', 64, 5)!;
  assert.ok(tok.decode(encodeIds(tok, java, 64).slice(1, pj)).endsWith('super(x);'), 'a constructor keeps super(...) first');
  const py = 'def f(x):\n    """Doc."""\n    return x\n';
  const pp = bodyStartIndex(tok, py, 'python', 64, 5)!;
  assert.ok(tok.decode(encodeIds(tok, py, 64).slice(1, pp)).trimEnd().endsWith('"""Doc."""'), 'after the docstring');
  assert.equal(bodyStartIndex(tok, c, 'c', p + 6, 5), p, 'the trigger fits before the last token');
  assert.equal(bodyStartIndex(tok, c, 'c', p + 5, 5), undefined, 'a trigger that would not fit is out of reach');
  const choices = await bodyStartPositions(tok, [
    { where: 'a', code: c, ids, label: 1 },
    { where: 'b', code: '((( not code', ids: encodeIds(tok, '((( not code', 64), label: 1 },
  ], 'c', 64, 5);
  assert.deepEqual(choices, [{ position: p, how: 'body-start' }, { position: 1, how: 'no-body' }]);
});
