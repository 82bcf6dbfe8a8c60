// worker/attacks/parse.ts: real tree-sitter grammars, identifiers with roles and positions, insertion points.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  initParsers, parseCode, hasErrors, parsesClean, firstError, listIdentifiers, insertionPoint, findFunction,
  functionNameNode, parserVersions, type Identifier, type Lang,
} from '../worker/attacks/parse.ts';

before(() => initParsers());

function ids(code: string, lang: Lang): Identifier[] {
  const tree = parseCode(code, lang);
  try {
    return listIdentifiers(tree, lang, code);
  } finally {
    tree.delete();
  }
}
const names = (xs: Identifier[], role: string) => xs.filter((i) => i.role === role).map((i) => i.name);

test('the grammars are web-tree-sitter wasm builds from npm, versions recorded', () => {
  const v = parserVersions();
  assert.deepEqual(Object.keys(v).sort(), ['tree-sitter-c', 'tree-sitter-java', 'tree-sitter-python', 'web-tree-sitter']);
  for (const x of Object.values(v)) assert.match(x, /^\d+\.\d+\.\d+$/);
});

test('C: function name, parameters (through pointers/arrays), locals, calls; fields are not identifiers', () => {
  const code = 'static int *foo(AVCodecContext *avctx, int n[]) {\n    int i, *buf = NULL;\n    avctx->width = n[0];\n    for (i = 0; i < 4; i++) buf = bar(avctx, i);\n    return foo(avctx, n);\n}\n';
  const xs = ids(code, 'c');
  assert.deepEqual(names(xs, 'function'), ['foo']);
  assert.deepEqual(names(xs, 'parameter'), ['avctx', 'n']);
  assert.deepEqual(names(xs, 'local'), ['i', 'buf']);
  assert.deepEqual(names(xs, 'call'), ['bar', 'foo']);
  assert.ok(!xs.some((i) => i.name === 'width'), 'avctx->width: the field is not listed');
  for (const i of xs) assert.equal(code.slice(i.start, i.end), i.name);
});

test('Java: a bare method parses; a bare constructor is parsed inside a wrapper class with positions mapped back', () => {
  const method = 'public int size(List<String> items) {\n  int n = items.size();\n  for (String s : items) n += s.length();\n  return n;\n}';
  const xs = ids(method, 'java');
  assert.deepEqual(names(xs, 'function'), ['size']);
  assert.deepEqual(names(xs, 'parameter'), ['items']);
  assert.deepEqual(names(xs, 'local'), ['n', 's']);
  assert.ok(xs.filter((i) => i.name === 'size' && i.role === 'call').every((i) => i.member), 'items.size() is a member call');
  const ctor = 'public Config(URL url) {\n  super(url);\n  this.url = url;\n}';
  const tree = parseCode(ctor, 'java');
  assert.equal(hasErrors(tree), false);
  const c = listIdentifiers(tree, 'java', ctor);
  assert.deepEqual(names(c, 'function'), ['Config']);
  for (const i of c) assert.equal(ctor.slice(i.start, i.end), i.name, 'positions are in the original text');
  const at = insertionPoint(tree, 'java', ctor)!;
  assert.equal(ctor.slice(0, at.offset).trimEnd().endsWith('super(url);'), true, 'dead code goes after super(...)');
  tree.delete();
});

test('Python: parameters, assignment/for/with targets as locals; attributes and keyword names are not variables', () => {
  const code = 'def load(path, mode="r", *args, **kw):\n    """Load."""\n    with open(path, mode) as fh:\n        data, n = fh.read(), 0\n    for line in data:\n        n += 1\n    return self.parse(data, strict=kw)\n';
  const xs = ids(code, 'python');
  assert.deepEqual(names(xs, 'function'), ['load']);
  assert.deepEqual(names(xs, 'parameter'), ['path', 'mode', 'args', 'kw']);
  assert.deepEqual([...new Set(names(xs, 'local'))], ['fh', 'data', 'n', 'line']);
  assert.ok(!xs.some((i) => i.name === 'strict'), 'keyword-argument names are not listed');
  assert.ok(xs.filter((i) => i.name === 'read' || i.name === 'parse').every((i) => i.member));
});

test('byte ranges are UTF-8 offsets, string ranges are JS indices', () => {
  const code = 'def f(x):\n    s = "é€😀"\n    return x\n';
  const x = ids(code, 'python').filter((i) => i.name === 'x').at(-1)!;
  assert.equal(code.slice(x.start, x.end), 'x');
  assert.equal(Buffer.from(code, 'utf8').subarray(x.startByte, x.endByte).toString(), 'x');
  assert.ok(x.startByte > x.start);
});

test('hasErrors catches ERROR and MISSING nodes and firstError says where', () => {
  assert.equal(parsesClean('int f(int a) { return a; }', 'c'), true);
  const t = parseCode('int f(int a) {\n  return a +;\n}', 'c');
  assert.equal(hasErrors(t), true);
  assert.equal(firstError(t)!.line, 2);
  t.delete();
  assert.equal(parsesClean('def f(:\n  pass', 'python'), false);
  assert.equal(parsesClean('void f() { int x = 1 }', 'java'), false, 'MISSING ;');
});

test('insertion points: after the body brace (C/Java), after the docstring at the body indentation (Python)', () => {
  const c = 'int f(void)\n{\n    return 1;\n}';
  let t = parseCode(c, 'c');
  assert.deepEqual(insertionPoint(t, 'c', c), { offset: c.indexOf('{') + 1, indent: '', kind: 'after-brace' });
  t.delete();
  const py = 'def f():\n    """Doc."""\n    x = 1\n    return x\n';
  t = parseCode(py, 'python');
  assert.deepEqual(insertionPoint(t, 'python', py), { offset: py.indexOf('    x = 1'), indent: '    ', kind: 'line-start' });
  t.delete();
  const oneLine = 'def f(): return 1\n';
  t = parseCode(oneLine, 'python');
  assert.equal(insertionPoint(t, 'python', oneLine), undefined, 'no statement boundary on its own line');
  assert.equal(functionNameNode(findFunction(t, 'python')!, 'python')!.text, 'f');
  t.delete();
});
