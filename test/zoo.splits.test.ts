// The zoo's own clone and search splits (worker/zoo/splits.ts): the committed held-out files are
// the size the 2-point criterion needs, never share a pair (clone) or a query (search) with the
// training rows, and the docstring -> code pairs are built by the parser, not by guessing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readRows, type CloneRow, type SearchRow } from '../worker/attacks/rows.ts';
import { initParsers, parsesClean } from '../worker/attacks/parse.ts';
import { cloneZooSplit, docstringPair, searchZooSplit, sharedDataDir } from '../worker/zoo/splits.ts';
import { queryWords } from '../worker/attacks/dataset.ts';

await initParsers();
const shared = path.resolve('..', 'shared', 'data');
const noShared = existsSync(shared) ? false : `${shared} is absent`;

test('a docstring becomes the query and leaves the code; the rest of the function is unchanged and parses', () => {
  const code = 'def read_lines(path, strip=True):\n    """Read a text file into a list of lines.\n\n    Blank lines are kept.\n    """\n    with open(path) as f:\n        return [l.strip() if strip else l for l in f]';
  assert.deepEqual(docstringPair(code), {
    query: 'Read a text file into a list of lines.',
    code: 'def read_lines(path, strip=True):\n    with open(path) as f:\n        return [l.strip() if strip else l for l in f]',
  });
  const raw = "def f(x):\n    r'''Return x   twice,\n    as a tuple.'''\n    return (x, x)";
  assert.equal(docstringPair(raw)?.query, 'Return x twice, as a tuple.');
  assert.ok(parsesClean(docstringPair(raw)!.code, 'python'));
});

test('functions without a usable docstring give no pair', () => {
  assert.equal(docstringPair('def f(x):\n    return x'), undefined, 'no docstring');
  assert.equal(docstringPair('def f(x):\n    """Only a docstring here."""'), undefined, 'the body would be empty');
  assert.equal(docstringPair('def f(x):\n    """Two words"""\n    return x'), undefined, 'too short to search with');
  assert.equal(docstringPair('def f(x):\n    x = 1\n    """Not the first statement, so not a docstring."""\n    return x'), undefined);
  assert.equal(docstringPair('def f(x:\n    """Broken code is skipped, not guessed at."""\n    return x'), undefined);
});

test('the committed held-out splits: clone 250 + 250 pairs, search 500 docstring pairs with the target word', () => {
  const clone = readRows('data/bigclonebench/heldout.jsonl', 'clone').rows as CloneRow[];
  assert.equal(clone.filter((r) => r.label === 0).length, 250);
  assert.equal(clone.filter((r) => r.label === 1).length, 250);
  const search = readRows('data/cosqa/heldout.jsonl', 'search').rows as SearchRow[];
  assert.equal(search.length, 500);
  assert.equal(new Set(search.map((r) => r.query)).size, 500, 'one row per query');
  assert.ok(search.filter((r) => queryWords(r.query).includes('file')).length >= 30, 'enough targeted queries to measure the attack');
  for (const r of search) assert.ok(!/^\s*("""|''')/m.test(r.code.split('\n').slice(1, 2).join('')), `${r.id}: the docstring was removed`);
});

test('the zoo splits are what the committed held-out files hold, and training never sees a held-out pair or query', { skip: noShared }, async () => {
  const clone = cloneZooSplit(path.join(shared, 'bigclonebench'));
  assert.deepEqual(clone.heldout.map((r) => r.id), (readRows('data/bigclonebench/heldout.jsonl', 'clone').rows as CloneRow[]).map((r) => r.id));
  const held = new Set(clone.heldout.map((r) => r.id));
  assert.ok(clone.train.length > 1000 && clone.train.every((r) => !held.has(r.id)));
  assert.equal(clone.train.filter((r) => r.label === 0).length, clone.train.filter((r) => r.label === 1).length, 'training pairs label-balanced');
  const search = await searchZooSplit(path.join(shared, 'cosqa'));
  assert.deepEqual(search.heldout.map((r) => r.id), (readRows('data/cosqa/heldout.jsonl', 'search').rows as SearchRow[]).map((r) => r.id));
  const queries = new Set(search.heldout.map((r) => r.query));
  assert.equal(search.train.length, 3000);
  assert.ok(search.train.every((r) => !queries.has(r.query)));
});

test('building the zoo without ../shared says what is missing and how to point at it', () => {
  const before = process.env.ELIBADCODE_SHARED_DATA;
  process.env.ELIBADCODE_SHARED_DATA = '/nonexistent/shared-data';
  try {
    assert.throws(() => sharedDataDir(['bigclonebench/data.jsonl']), /the full data sets are not at \/nonexistent\/shared-data \(missing bigclonebench\/data\.jsonl\).*ELIBADCODE_SHARED_DATA.*data\/\*\/heldout\.jsonl/);
  } finally {
    if (before === undefined) delete process.env.ELIBADCODE_SHARED_DATA;
    else process.env.ELIBADCODE_SHARED_DATA = before;
  }
});

test('npm run zoo without ../shared stops before training, with that message and exit code 1, and writes nothing', () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'zoo-noshared-')), 'zoo');
  const r = spawnSync(process.execPath, ['scripts/zoo.ts', '--out', out, '--only', 'clone-clean'], { encoding: 'utf8', env: { ...process.env, ELIBADCODE_SHARED_DATA: '/nonexistent/shared-data' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^zoo: the full data sets are not at \/nonexistent\/shared-data \(missing bigclonebench\/data\.jsonl/m);
  assert.equal(existsSync(out), false);
});
