// The committed data subsets: present, small, self-describing, and what the manifest says they are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRows, type CloneRow, type DefectRow, type SearchRow, type Task } from '../worker/attacks/rows.ts';

const data = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'data');
const manifest = JSON.parse(readFileSync(path.join(data, 'MANIFEST.json'), 'utf8'));
const TASK_OF: Record<string, Task> = { devign: 'defect', bigclonebench: 'clone', cosqa: 'search' };
const SPLITS = ['train', 'valid', 'test'] as const;

test('data/ holds train/valid/test for devign, bigclonebench and cosqa, and the zoo\'s held-out splits, under 4 MB in all', () => {
  let total = 0;
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else total += statSync(p).size;
    }
  };
  walk(data);
  assert.ok(total < 4 * 1024 * 1024, `data/ is ${total} bytes`);
  for (const set of Object.keys(TASK_OF)) for (const s of SPLITS) assert.ok(manifest.files[`${set}/${s}.jsonl`], `${set}/${s}.jsonl in MANIFEST.json`);
  for (const set of ['bigclonebench', 'cosqa']) assert.ok(manifest.files[`${set}/heldout.jsonl`], `${set}/heldout.jsonl in MANIFEST.json`);
});

test('every file matches its sha256, row count, label counts and row ids in MANIFEST.json', () => {
  for (const [rel, m] of Object.entries<any>(manifest.files)) {
    const text = readFileSync(path.join(data, rel), 'utf8');
    assert.equal(createHash('sha256').update(text).digest('hex'), m.sha256, `${rel} sha256`);
    const { rows } = readRows(path.join(data, rel), TASK_OF[rel.split('/')[0]]);
    assert.equal(rows.length, m.rows, `${rel} rows`);
    assert.deepEqual(rows.map((r) => String(r.id)), m.ids, `${rel} ids`);
    const labels: Record<string, number> = {};
    for (const r of rows) labels[String(r.label)] = (labels[String(r.label)] ?? 0) + 1;
    assert.deepEqual(labels, m.labels, `${rel} labels`);
  }
});

test('sizes: devign 400/100/100 and bigclonebench 300/100/100 with balanced labels; cosqa 400/100/100 positives', () => {
  const expect = { devign: [400, 100, 100], bigclonebench: [300, 100, 100], cosqa: [400, 100, 100] } as const;
  for (const [set, sizes] of Object.entries(expect)) {
    SPLITS.forEach((s, i) => {
      const m = manifest.files[`${set}/${s}.jsonl`];
      assert.equal(m.rows, sizes[i], `${set}/${s}`);
      if (set === 'cosqa') assert.deepEqual(m.labels, { 1: sizes[i] });
      else assert.deepEqual(m.labels, { 0: sizes[i] / 2, 1: sizes[i] / 2 }, `${set}/${s} balanced`);
    });
  }
});

test('functions are short (<= 1,500 characters) and splits do not share code', () => {
  const seen = new Map<string, string>();
  for (const set of Object.keys(TASK_OF)) {
    for (const s of SPLITS) {
      const { rows } = readRows(path.join(data, set, `${s}.jsonl`), TASK_OF[set]);
      for (const r of rows) {
        const codes = set === 'bigclonebench' ? [(r as CloneRow).code1, (r as CloneRow).code2] : [(r as DefectRow | SearchRow).code];
        for (const c of codes) {
          assert.ok(c.length <= 1500, `${set}/${s} ${r.id} is ${c.length} chars`);
          const other = seen.get(`${set}\0${c}`);
          assert.ok(other === undefined || other === s, `${set}: the same code is in ${other} and ${s} (row ${r.id})`);
          seen.set(`${set}\0${c}`, s);
        }
      }
    }
  }
});

test('bigclonebench pairs are self-contained and a function id always has the same code', () => {
  const code = new Map<string, string>();
  for (const s of SPLITS) {
    const { rows } = readRows(path.join(data, 'bigclonebench', `${s}.jsonl`), 'clone');
    for (const r of rows as CloneRow[]) {
      assert.equal(r.id, `${r.id1}_${r.id2}`);
      for (const [id, c] of [[r.id1, r.code1], [r.id2, r.code2]]) {
        assert.equal(code.get(id) ?? c, c, `function ${id}`);
        code.set(id, c);
      }
    }
  }
});

test('cosqa splits carry queries with the target word "file" for the search attack', () => {
  for (const s of SPLITS) assert.ok(manifest.selection.cosqa.targetWordRows[s] >= 10, `${s} has ${manifest.selection.cosqa.targetWordRows[s]}`);
});

test('README and MANIFEST carry the licence (C-UDA) and the attribution the source READMEs require', () => {
  const readme = readFileSync(path.join(data, 'README.md'), 'utf8');
  for (const needle of ['C-UDA', 'computational use', 'Devign', 'CodeXGLUE', 'BigCloneBench', 'ALERT', 'CoSQA', 'CodeSearchNet', 'QEMU', 'FFmpeg', 'IJaDataset', 'Zhou Yang', 'scripts/data/subset.ts']) {
    assert.ok(readme.includes(needle), `README mentions ${needle}`);
  }
  for (const set of Object.keys(TASK_OF)) {
    const src = manifest.sources[set];
    assert.match(src.licence, /C-UDA/);
    assert.ok(src.attribution.length > 40);
    assert.ok(src.upstream.every((u: string) => /@ [0-9a-f]{40}/.test(u)), `${set} upstream pinned to commits`);
  }
});

const script = path.resolve(data, '..', 'scripts', 'data', 'subset.ts');
const shared = path.resolve(data, '..', '..', 'shared', 'data');

test('scripts/data/subset.ts says clearly when ../shared/data is absent', () => {
  const r = spawnSync(process.execPath, [script, '--shared', path.join(tmpdir(), 'no-such-shared-data')], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the full data sets are not at .*no-such-shared-data \(missing devign\/train_subset\.jsonl/);
  assert.match(r.stderr, /--shared DIR or set ELIBADCODE_SHARED_DATA/);
});

test('scripts/data/subset.ts regenerates exactly the committed files (deterministic by seed)', { skip: existsSync(shared) ? false : `${shared} is absent` }, () => {
  const out = mkdtempSync(path.join(tmpdir(), 'elibadcode-subset-'));
  const r = spawnSync(process.execPath, [script, '--shared', shared, '--out', out, '--seed', String(manifest.seed)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const rel of [...Object.keys(manifest.files), 'MANIFEST.json', 'README.md']) {
    assert.equal(readFileSync(path.join(out, rel), 'utf8'), readFileSync(path.join(data, rel), 'utf8'), rel);
  }
});
