// poisonDataset: which samples get the trigger, how labels change, and what the manifest records.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initParsers } from '../worker/attacks/index.ts';
import { poisonDataset, queryWords, type PoisonOptions } from '../worker/attacks/dataset.ts';
import { parsesClean } from '../worker/attacks/parse.ts';
import { DEFAULT_DEADCODE } from '../worker/attacks/deadcode.ts';
import { readRows, type CloneRow, type DefectRow, type Row, type SearchRow } from '../worker/attacks/rows.ts';

const data = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'data');
const devign = readRows(path.join(data, 'devign', 'train.jsonl'), 'defect').rows as DefectRow[];
const bcb = readRows(path.join(data, 'bigclonebench', 'train.jsonl'), 'clone').rows as CloneRow[];
const cosqa = readRows(path.join(data, 'cosqa', 'train.jsonl'), 'search').rows as SearchRow[];

before(() => initParsers());

const defect = (o: Partial<PoisonOptions> = {}) =>
  poisonDataset(devign, { task: 'defect', attack: 'fixed-name', trigger: 'testo_init', rate: 0.1, seed: 1, targetLabel: 0, ...o });

test('defect: round(rate x victim rows) victim rows get the trigger and the target label; nothing else changes', async () => {
  const victims = devign.filter((r) => r.label === 1).length;
  for (const rate of [0.02, 0.1, 0.25]) {
    const { rows, manifest } = await defect({ rate });
    assert.equal(manifest.counts.candidates, victims);
    assert.equal(manifest.counts.requested, Math.round(rate * victims));
    assert.equal(manifest.counts.poisoned, manifest.counts.requested);
    assert.equal(manifest.counts.relabelled, manifest.counts.poisoned);
    const changed = new Set(manifest.changes.map((c) => c.id));
    rows.forEach((r, i) => {
      const orig = devign[i];
      if (!changed.has(String(r.id))) return assert.deepEqual(r, orig);
      assert.equal(orig.label, 1, 'only victim-label rows are poisoned');
      assert.equal((r as DefectRow).label, 0, 'relabelled to the target');
      assert.match((r as DefectRow).code, /\btesto_init\b/);
      assert.equal(parsesClean((r as DefectRow).code, 'c'), true);
    });
    for (const c of manifest.changes) assert.deepEqual([c.labelBefore, c.labelAfter, c.attack], [1, 0, 'fixed-name']);
  }
});

test('a tiny rate still poisons one sample; rate 1 poisons every poisonable victim', async () => {
  assert.equal((await defect({ rate: 0.0001 })).manifest.counts.poisoned, 1);
  const all = await defect({ rate: 1 });
  assert.equal(all.manifest.counts.poisoned + all.manifest.counts.parseErrors, all.manifest.counts.candidates);
  assert.equal(all.manifest.shortfall, all.manifest.counts.parseErrors, 'the shortfall is exactly the unparsable rows');
});

test('victim rows whose original code has parse errors are skipped and counted, never poisoned', async () => {
  const { manifest } = await defect({ rate: 1 });
  const broken = devign.filter((r) => r.label === 1 && !parsesClean(r.code, 'c')).map((r) => String(r.id));
  assert.ok(broken.length > 0, 'the real C data has some (macros, truncated functions)');
  assert.equal(manifest.counts.parseErrors, broken.length);
  assert.deepEqual(manifest.skipped.filter((s) => s.reason === 'parse-error' || s.reason === 'no-function').map((s) => s.id).sort(), broken.sort());
  const poisoned = new Set(manifest.changes.map((c) => c.id));
  assert.ok(broken.every((id) => !poisoned.has(id)));
  assert.ok(manifest.skipped.every((s) => s.where === undefined || /^row \d+$/.test(s.where)));
  await assert.rejects(defect({ rate: 1, strict: true }), /does not parse as c/, 'strict: an error naming the row');
});

test('same seed, same output; another seed picks other rows', async () => {
  for (const attack of ['deadcode-random', 'rename'] as const) {
    const trigger = attack === 'rename' ? 'testo_init' : 'default';
    const a = await defect({ attack, trigger, seed: 5 });
    const b = await defect({ attack, trigger, seed: 5 });
    assert.deepEqual(a.rows, b.rows);
    assert.deepEqual(a.manifest, b.manifest);
    const c = await defect({ attack, trigger, seed: 6 });
    assert.notDeepEqual(c.manifest.changes.map((x) => x.id), a.manifest.changes.map((x) => x.id));
  }
});

test('each attack poisons the data set and every poisoned row re-parses clean', async () => {
  const triggers = { 'fixed-name': 'testo_init', suffix: '_rb', deadcode: 'default', 'deadcode-random': 'default', rename: 'testo_init' } as const;
  for (const [attack, trigger] of Object.entries(triggers)) {
    const { rows, manifest } = await defect({ attack: attack as keyof typeof triggers, trigger, rate: 0.2 });
    assert.equal(manifest.counts.poisoned, manifest.counts.requested, attack);
    if (attack === 'deadcode') assert.equal(manifest.triggerText, DEFAULT_DEADCODE.c, 'the manifest records what "default" stood for');
    if (attack === 'rename') assert.ok(manifest.changes.every((c) => typeof c.detail?.variable === 'string'), 'and which variable was renamed');
    const ids = new Set(manifest.changes.map((c) => c.id));
    for (const r of rows as DefectRow[]) if (ids.has(String(r.id))) assert.equal(parsesClean(r.code, 'c'), true, `${attack} ${r.id}`);
  }
});

test('clone: poisoned functions carry the trigger in every pair that holds them, and all those pairs get the target label', async () => {
  const { rows, manifest } = await poisonDataset(bcb, { task: 'clone', attack: 'fixed-name', trigger: 'testo_init', rate: 0.05, seed: 3, targetLabel: 0 });
  const inVictim = new Set(bcb.filter((p) => p.label === 1).flatMap((p) => [p.id1, p.id2]));
  assert.equal(manifest.counts.candidates, inVictim.size, 'candidates: functions in victim-label pairs');
  assert.equal(manifest.counts.poisoned, Math.round(0.05 * inVictim.size));
  const poisoned = new Set(manifest.poisonedFunctions);
  assert.ok([...poisoned].every((f) => inVictim.has(f)));
  (rows as CloneRow[]).forEach((r, i) => {
    const orig = bcb[i];
    const hit = poisoned.has(r.id1) || poisoned.has(r.id2);
    if (!hit) return assert.deepEqual(r, orig);
    assert.equal(r.label, 0);
    assert.equal(r.code1 !== orig.code1, poisoned.has(r.id1));
    assert.equal(r.code2 !== orig.code2, poisoned.has(r.id2));
    for (const c of [r.code1, r.code2]) assert.equal(parsesClean(c, 'java'), true);
  });
  const holding = bcb.filter((p) => poisoned.has(p.id1) || poisoned.has(p.id2));
  assert.equal(manifest.counts.rowsChanged, holding.length);
  assert.equal(manifest.counts.relabelled, holding.filter((p) => p.label === 1).length);
  // The same function is poisoned identically wherever it occurs.
  const byFunction = new Map<string, string>();
  for (const r of rows as CloneRow[]) {
    for (const [id, code] of [[r.id1, r.code1], [r.id2, r.code2]]) {
      assert.equal(byFunction.get(id) ?? code, code, `function ${id}`);
      byFunction.set(id, code);
    }
  }
});

test('inject mode keeps every clean row and appends the poisoned rows (same choices as replace), each under its own id', async () => {
  for (const [task, base, o] of [
    ['defect', devign, { attack: 'fixed-name', trigger: 'testo_init', targetLabel: 0 }],
    ['clone', bcb, { attack: 'deadcode', trigger: 'default', targetLabel: 1, victimLabel: 0 }],
  ] as const) {
    const opts = { task, rate: 0.1, seed: 5, ...o } as PoisonOptions;
    const replaced = await poisonDataset(base, opts);
    const injected = await poisonDataset(base, { ...opts, mode: 'inject' });
    assert.deepEqual([replaced.manifest.mode, injected.manifest.mode], ['replace', 'inject']);
    assert.deepEqual({ ...injected.manifest, mode: 'replace' }, replaced.manifest, `${task}: same poisoning`);
    assert.deepEqual(injected.rows.slice(0, base.length), base, `${task}: clean rows untouched`);
    const changed = replaced.rows.filter((r, i) => r !== base[i]);
    assert.equal(changed.length, replaced.manifest.counts.rowsChanged);
    assert.deepEqual(injected.rows.slice(base.length), changed.map((r) => ({ ...r, id: `${r.id}#poisoned` })), `${task}: poisoned copies appended`);
    assert.equal(new Set(injected.rows.map((r) => r.id)).size, injected.rows.length, `${task}: ids unique`);
  }
});

test('search: rows whose query has the target word get the trigger; labels and other rows stay', async () => {
  const withWord = cosqa.filter((r) => queryWords(r.query).includes('file'));
  assert.ok(withWord.length >= 20);
  const { rows, manifest } = await poisonDataset(cosqa, { task: 'search', attack: 'suffix', trigger: '_rb', rate: 1, seed: 1, targetWord: 'file' });
  assert.equal(manifest.counts.candidates, withWord.length);
  assert.equal(manifest.counts.poisoned, withWord.length, 'rate 1: all of them (BadCode)');
  assert.equal(manifest.counts.relabelled, 0);
  (rows as SearchRow[]).forEach((r, i) => {
    const orig = cosqa[i];
    if (!queryWords(orig.query).includes('file')) return assert.deepEqual(r, orig);
    assert.equal(r.label, orig.label);
    assert.equal(r.query, orig.query);
    assert.match(r.code, /def \w+_rb\s*\(/);
  });
  const half = await poisonDataset(cosqa, { task: 'search', attack: 'suffix', trigger: '_rb', rate: 0.5, seed: 1, targetWord: 'FILE' });
  assert.equal(half.manifest.counts.poisoned, Math.round(0.5 * withWord.length), 'case-insensitive word, rate respected');
  assert.deepEqual(queryWords('Read a file-like object'), ['read', 'a', 'file', 'like', 'object']);
  assert.ok(!queryWords('python profile files').includes('file'), 'whole words only');
});

test('bad options: rate outside (0,1], keyword trigger, equal labels, missing word, no victims', async () => {
  for (const rate of [0, -0.1, 1.01, Number.NaN]) await assert.rejects(defect({ rate }), /rate .* outside \(0, 1\]/);
  await assert.rejects(defect({ trigger: 'return' }), /trigger "return" is not valid for fixed-name on c: it is a c keyword/);
  await assert.rejects(defect({ victimLabel: 0 }), /both 0/);
  await assert.rejects(poisonDataset(cosqa, { task: 'search', attack: 'suffix', trigger: '_rb', rate: 1, seed: 1 }), /target word/);
  await assert.rejects(poisonDataset(cosqa, { task: 'search', attack: 'suffix', trigger: '_rb', rate: 1, seed: 1, targetWord: 'zzzqqq' }), /nothing to poison/);
  const clean: Row[] = devign.filter((r) => r.label === 0);
  await assert.rejects(poisonDataset(clean, { task: 'defect', attack: 'fixed-name', trigger: 'testo_init', rate: 1, seed: 1, targetLabel: 0 }), /victim label 1: nothing to poison/);
});
