/**
 * Writes the small committed data subsets under data/ from the full sets in ../shared/data:
 *
 *   node scripts/data/subset.ts [--shared DIR] [--out DIR] [--seed N]
 *
 * - data/devign/{train,valid,test}.jsonl     {id, code, label}             C, defect detection
 * - data/bigclonebench/{train,valid,test}.jsonl {id, id1, id2, code1, code2, label}   Java, clone pairs
 * - data/cosqa/{train,valid,test}.jsonl      {id, code, query, label}      Python, code search
 * - data/bigclonebench/heldout.jsonl, data/cosqa/heldout.jsonl: the victim zoo's held-out splits
 *   (worker/zoo/splits.ts; the zoo trains on the rest of the full sets)
 * - data/MANIFEST.json (sources, licence, attribution, selection, row ids, sha256 per file)
 * - data/README.md
 *
 * The selection is deterministic for a seed: same inputs, same bytes out.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeRng, shuffled } from '../../worker/rng.ts';
import { byNumericId, cloneZooSplit, readJsonl, searchZooSplit, CLONE_HELDOUT_PER_LABEL, MAX_CHARS, SEARCH_HELDOUT, SEARCH_TRAIN } from '../../worker/zoo/splits.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Sizes { train: number; valid: number; test: number }
const DEVIGN_SIZES: Sizes = { train: 400, valid: 100, test: 100 };
const DEVIGN_HELDOUT_PER_LABEL = 250;
const BCB_SIZES: Sizes = { train: 300, valid: 100, test: 100 };
const COSQA_SIZES: Sizes = { train: 400, valid: 100, test: 100 };
const COSQA_TARGET_WORD = 'file';

type Json = Record<string, unknown>;

function writeAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const jsonl = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Takes up to `perLabel` rows of each label from a shuffled pool (labels 0 and 1). */
function balanced<T extends { label: number }>(pool: readonly T[], perLabel: number): T[] {
  const out: T[] = [];
  const taken = [0, 0];
  for (const r of pool) {
    if (taken[r.label] < perLabel) {
      out.push(r);
      taken[r.label]++;
    }
  }
  return out;
}

interface Split<T> { train: T[]; valid: T[]; test: T[] }

// ---------------------------------------------------------------- devign

interface DefectRow { id: string; code: string; label: number }

function devign(dir: string, seed: number): Split<DefectRow> & { heldout: DefectRow[]; excluded: Record<string, number> } {
  const toRow = (r: Json): DefectRow => ({ id: String(r.idx), code: String(r.func), label: Number(r.target) });
  const train = readJsonl(path.join(dir, 'train_subset.jsonl')).map(toRow);
  const test = readJsonl(path.join(dir, 'test.jsonl')).map(toRow);
  // Texts that occur more than once (some with both labels) are left out, so no text is in two splits.
  const count = new Map<string, number>();
  for (const r of [...train, ...test]) count.set(r.code, (count.get(r.code) ?? 0) + 1);
  const excluded = { tooLong: 0, duplicateText: 0 };
  const keep = (r: DefectRow) => {
    if (r.code.length > MAX_CHARS) return void excluded.tooLong++, false;
    if (count.get(r.code)! > 1) return void excluded.duplicateText++, false;
    return true;
  };
  const trainPool = shuffled(train.filter(keep), makeRng(`${seed}:devign:train`));
  const testPool = shuffled(test.filter(keep), makeRng(`${seed}:devign:test`));
  const trainRows = balanced(trainPool, DEVIGN_SIZES.train / 2);
  const used = new Set(trainRows.map((r) => r.id));
  const validRows = balanced(trainPool.filter((r) => !used.has(r.id)), DEVIGN_SIZES.valid / 2);
  const testRows = balanced(testPool, DEVIGN_SIZES.test / 2);
  // The zoo's held-out split: the same shuffled test pool, taken further (test.jsonl is its start).
  const heldoutRows = balanced(testPool, DEVIGN_HELDOUT_PER_LABEL);
  const sort = (rows: DefectRow[]) => rows.sort((a, b) => byNumericId(a.id, b.id));
  return { train: sort(trainRows), valid: sort(validRows), test: sort(testRows), heldout: sort(heldoutRows), excluded };
}

// ---------------------------------------------------------------- bigclonebench

interface CloneRow { id: string; id1: string; id2: string; code1: string; code2: string; label: number }

function bigclonebench(dir: string, seed: number): Split<CloneRow> & { functionsPerSplit: Record<string, number>; attempt: number } {
  const funcs = new Map<string, string>();
  for (const r of readJsonl(path.join(dir, 'data.jsonl'))) funcs.set(String(r.idx), String(r.func));
  const pairs = readJsonl(path.join(dir, 'test.jsonl')).map((p) => ({ id1: String(p.idx1), id2: String(p.idx2), label: Number(p.label) }));
  // Split by FUNCTION (no function in two splits): shuffle the short functions, 50% / 25% / 25%;
  // a pair goes to a split when both its functions are in it.
  // Functions with identical text (different ids, same method) count as one, so they share a split.
  const short = [...funcs.keys()].filter((k) => funcs.get(k)!.length <= MAX_CHARS).sort(byNumericId);
  const groups = new Map<string, string[]>();
  for (const k of short) groups.set(funcs.get(k)!, [...(groups.get(funcs.get(k)!) ?? []), k]);
  // The functions cluster (one function sits in many pairs), so a random function split can leave
  // a split short of one label: try seeded splits in turn and keep the first that fills every split.
  for (let attempt = 0; attempt < 50; attempt++) {
    const order = shuffled([...groups.values()], makeRng(`${seed}:bcb:functions:${attempt}`));
    const splitOf = new Map<string, keyof Split<CloneRow>>();
    order.forEach((ks, i) => {
      for (const k of ks) splitOf.set(k, i < order.length * 0.5 ? 'train' : i < order.length * 0.75 ? 'valid' : 'test');
    });
    const pools: Split<CloneRow> = { train: [], valid: [], test: [] };
    const seenPair = new Set<string>();
    for (const p of pairs) {
      const s = splitOf.get(p.id1);
      if (!s || s !== splitOf.get(p.id2)) continue;
      const id = `${p.id1}_${p.id2}`;
      if (seenPair.has(id)) continue;
      seenPair.add(id);
      pools[s].push({ id, id1: p.id1, id2: p.id2, code1: funcs.get(p.id1)!, code2: funcs.get(p.id2)!, label: p.label });
    }
    const out: Split<CloneRow> = { train: [], valid: [], test: [] };
    const functionsPerSplit: Record<string, number> = {};
    for (const s of ['train', 'valid', 'test'] as const) {
      const rows = balanced(shuffled(pools[s], makeRng(`${seed}:bcb:${s}`)), BCB_SIZES[s] / 2);
      out[s] = rows.sort((a, b) => byNumericId(a.id1, b.id1) || byNumericId(a.id2, b.id2));
      functionsPerSplit[s] = new Set(rows.flatMap((r) => [r.id1, r.id2])).size;
    }
    if ((['train', 'valid', 'test'] as const).every((s) => out[s].length === BCB_SIZES[s])) return { ...out, functionsPerSplit, attempt };
  }
  throw new Error('bigclonebench: no function split in 50 attempts fills every split with balanced labels');
}

// ---------------------------------------------------------------- cosqa

interface SearchRow { id: string; code: string; query: string; label: number }

function hasWord(q: string, w: string): boolean {
  return q.toLowerCase().split(/[^a-z0-9_]+/).includes(w);
}

function cosqa(dir: string, seed: number): Split<SearchRow> & { targetWordRows: Record<string, number> } {
  const toRow = (r: Json): SearchRow => ({ id: String(r.idx), code: String(r.code), query: String(r.doc), label: Number(r.label) });
  // Train/valid from the dev files (retrieval_dev, and qa_dev's matching pairs); test from retrieval_test.
  const dev = [...readJsonl(path.join(dir, 'retrieval_dev.jsonl')), ...readJsonl(path.join(dir, 'qa_dev.jsonl'))].map(toRow);
  const test = readJsonl(path.join(dir, 'retrieval_test.jsonl')).map(toRow);
  // One row per code text and per query, across all splits; only label-1 pairs; short code.
  const seenCode = new Set<string>();
  const seenQuery = new Set<string>();
  const pick = (rows: SearchRow[]) => rows.filter((r) => {
    if (r.label !== 1 || r.code.length > MAX_CHARS || seenCode.has(r.code) || seenQuery.has(r.query)) return false;
    seenCode.add(r.code);
    seenQuery.add(r.query);
    return true;
  });
  const testPool = shuffled(pick(test), makeRng(`${seed}:cosqa:test`));
  const devPool = shuffled(pick(dev), makeRng(`${seed}:cosqa:dev`));
  // Every pair whose query has the BadCode target word is kept (the attack and its ANR need them);
  // dev ones go 80% to train, 20% to valid. The rest of each split is filled at random.
  const fill = (pool: SearchRow[], wordRows: SearchRow[], n: number) => {
    const ids = new Set(wordRows.slice(0, n).map((r) => r.id));
    const rows = wordRows.slice(0, n);
    for (const r of pool) if (rows.length < n && !ids.has(r.id)) rows.push(r);
    return rows;
  };
  const devWord = devPool.filter((r) => hasWord(r.query, COSQA_TARGET_WORD));
  const cut = Math.round(devWord.length * 0.8);
  const trainRows = fill(devPool.filter((r) => !devWord.slice(cut).includes(r)), devWord.slice(0, cut), COSQA_SIZES.train);
  const used = new Set(trainRows.map((r) => r.id));
  const validRows = fill(devPool.filter((r) => !used.has(r.id)), devWord.slice(cut), COSQA_SIZES.valid);
  const testRows = fill(testPool, testPool.filter((r) => hasWord(r.query, COSQA_TARGET_WORD)), COSQA_SIZES.test);
  const key = (id: string) => {
    const m = /^cosqa-(\w+)-(\d+)$/.exec(id);
    return m ? [m[1], Number(m[2])] as const : [id, 0] as const;
  };
  const sort = (rows: SearchRow[]) => rows.sort((a, b) => {
    const [pa, na] = key(a.id);
    const [pb, nb] = key(b.id);
    return pa.localeCompare(pb) || na - nb;
  });
  const out = { train: sort(trainRows), valid: sort(validRows), test: sort(testRows) };
  const targetWordRows: Record<string, number> = {};
  for (const s of ['train', 'valid', 'test'] as const) targetWordRows[s] = out[s].filter((r) => hasWord(r.query, COSQA_TARGET_WORD)).length;
  return { ...out, targetWordRows };
}

// ---------------------------------------------------------------- licence text

const CUDA_TERMS =
  'Computational Use of Data Agreement (C-UDA) 1.0: redistribution is allowed when this attribution is kept and recipients are bound to C-UDA; the data may be used only for computational use (e.g. machine-learning training and evaluation, analysis).';

const SOURCES = {
  devign: {
    task: 'defect detection (C)',
    schema: '{"id": str (Devign function index, as in CodeXGLUE), "code": str (the function, verbatim; Devign doubles newlines), "label": 0|1 (1 = vulnerable)}',
    from: '../shared/data/devign: train/valid from train_subset.jsonl (a random 5,000 of the CodeXGLUE Defect-detection train split), test from test.jsonl (the official CodeXGLUE test split)',
    upstream: [
      'GitHub soarsmu/attack-pretrain-models-of-code @ d42169557a3641628931c6eb00af6f4bd66b380a (CodeXGLUE Defect-detection test split; MIT, Copyright (c) 2021 Zhou Yang)',
      'GitHub rebibabo/invisible_backdoor @ bf8196ef417b95c746583422549c5e2bd27fa360 (unmodified CodeXGLUE/Devign train functions)',
    ],
    licence: `CodeXGLUE data under the ${CUDA_TERMS} The functions come from QEMU (GPL-2.0) and FFmpeg (LGPL/GPL).`,
    attribution:
      'Devign: Zhou et al., "Devign: Effective Vulnerability Identification by Learning Comprehensive Program Semantics via Graph Neural Networks", NeurIPS 2019 (sites.google.com/view/devign). CodeXGLUE: Lu et al., 2021, Code-Code/Defect-detection.',
    cite: ['Devign (Zhou et al., NeurIPS 2019)', 'CodeXGLUE (Lu et al., 2021)'],
    notes: 'Labels come from security-fix commits and are noisy; published clean accuracies are about 62-70%.',
  },
  bigclonebench: {
    task: 'clone detection (Java)',
    schema: '{"id": "<id1>_<id2>", "id1": str, "id2": str (BigCloneBench function ids), "code1": str, "code2": str (the methods, verbatim), "label": 0|1 (1 = clones)}',
    from: '../shared/data/bigclonebench: pairs from test.jsonl (4,000 pairs ALERT sampled from the CodeXGLUE BigCloneBench test split), functions from data.jsonl',
    upstream: ['GitHub soarsmu/attack-pretrain-models-of-code @ d42169557a3641628931c6eb00af6f4bd66b380a (MIT, Copyright (c) 2021 Zhou Yang)'],
    licence: `CodeXGLUE data under the ${CUDA_TERMS} The methods come from open-source Java projects in IJaDataset, under their own licenses.`,
    attribution:
      'BigCloneBench: Svajlenko et al., "Towards a Big Data Curated Benchmark of Inter-Project Code Clones", ICSME 2014, filtered as in Wang et al. 2020 (FA-AST). CodeXGLUE: Lu et al., 2021, Code-Code/Clone-detection-BigCloneBench. ALERT: Yang et al., "Natural Attack for Pre-trained Models of Code", ICSE 2022.',
    cite: ['BigCloneBench (Svajlenko et al., ICSME 2014)', 'CodeXGLUE (Lu et al., 2021)', 'ALERT (Yang et al., ICSE 2022)'],
    notes: 'Some clone labels are questionable (Krinke & Ragkhitwetsan 2022); many "clones" are weak type-3/type-4 similarities.',
  },
  cosqa: {
    task: 'code search (Python)',
    schema: '{"id": str (CoSQA id), "code": str (the function, verbatim, with its docstring), "query": str (the real web query, CoSQA "doc"), "label": 1 (the code answers the query)}',
    from: '../shared/data/cosqa: train/valid from retrieval_dev.jsonl and the label-1 pairs of qa_dev.jsonl, test from retrieval_test.jsonl',
    upstream: ['GitHub Jun-jie-Huang/CoCLR @ 14ebcacf9e9bc3e7109102632bc63047876f27d2 (official CoSQA repo; code MIT, datasets C-UDA)'],
    licence: `CoSQA data under the ${CUDA_TERMS} The code snippets come from CodeSearchNet, whose functions come from open-source GitHub repositories under their own licenses.`,
    attribution:
      'CoSQA: Huang et al., "CoSQA: 20,000+ Web Queries for Code Search and Question Answering", ACL 2021. CodeSearchNet: Husain et al., "CodeSearchNet Challenge: Evaluating the State of Semantic Code Search", 2019.',
    cite: ['CoSQA (Huang et al., ACL 2021)', 'CodeSearchNet (Husain et al., 2019)'],
    notes: 'Labels are human majority votes over noisy web queries; a fraction of pairs are only partial matches (CoSQA+).',
  },
} as const;

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shared: { type: 'string', default: process.env.ELIBADCODE_SHARED_DATA ?? path.resolve(root, '..', 'shared', 'data') },
      out: { type: 'string', default: path.join(root, 'data') },
      seed: { type: 'string', default: '20251125' },
    },
  });
  const shared = path.resolve(values.shared!);
  const out = path.resolve(values.out!);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const need = ['devign/train_subset.jsonl', 'devign/test.jsonl', 'bigclonebench/data.jsonl', 'bigclonebench/test.jsonl', 'cosqa/retrieval_dev.jsonl', 'cosqa/qa_dev.jsonl', 'cosqa/retrieval_test.jsonl', 'cosqa/codebase.jsonl'];
  const missing = need.filter((f) => !existsSync(path.join(shared, f)));
  if (missing.length) {
    throw new Error(
      `the full data sets are not at ${shared} (missing ${missing.join(', ')}). ` +
        'They live in ../shared/data beside the repository; pass --shared DIR or set ELIBADCODE_SHARED_DATA. ' +
        'The committed subsets in data/ are enough for the tests and the demo.',
    );
  }

  const d = devign(path.join(shared, 'devign'), seed);
  const b = bigclonebench(path.join(shared, 'bigclonebench'), seed);
  const c = cosqa(path.join(shared, 'cosqa'), seed);
  const sets = { devign: d, bigclonebench: b, cosqa: c } as const;
  const zooClone = cloneZooSplit(path.join(shared, 'bigclonebench'), seed);
  const zooSearch = await searchZooSplit(path.join(shared, 'cosqa'), seed);
  const heldout = { devign: d.heldout, bigclonebench: zooClone.heldout, cosqa: zooSearch.heldout } as const;

  const files: Record<string, { rows: number; bytes: number; sha256: string; labels: Record<string, number>; ids: string[] }> = {};
  for (const [name, set] of Object.entries(sets)) {
    for (const s of ['train', 'valid', 'test'] as const) {
      const rows = set[s] as { id: string; label: number }[];
      const text = jsonl(rows);
      const rel = `${name}/${s}.jsonl`;
      writeAtomic(path.join(out, rel), text);
      const labels: Record<string, number> = {};
      for (const r of rows) labels[r.label] = (labels[r.label] ?? 0) + 1;
      files[rel] = { rows: rows.length, bytes: Buffer.byteLength(text), sha256: sha256(text), labels, ids: rows.map((r) => r.id) };
    }
  }
  for (const [name, rows] of Object.entries(heldout)) {
    const text = jsonl(rows);
    const rel = `${name}/heldout.jsonl`;
    writeAtomic(path.join(out, rel), text);
    const labels: Record<string, number> = {};
    for (const r of rows) labels[r.label ?? 1] = (labels[r.label ?? 1] ?? 0) + 1;
    files[rel] = { rows: rows.length, bytes: Buffer.byteLength(text), sha256: sha256(text), labels, ids: rows.map((r) => r.id) };
  }

  const manifest = {
    generatedBy: 'node scripts/data/subset.ts',
    seed,
    maxChars: MAX_CHARS,
    licence: 'C-UDA 1.0 (Computational Use of Data Agreement); see data/README.md',
    selection: {
      devign: { sizes: DEVIGN_SIZES, balancedLabels: true, excluded: d.excluded, rule: `code <= ${MAX_CHARS} chars; texts occurring more than once in train_subset+test (some with both labels) left out; seeded shuffle, then the first N/2 of each label` },
      bigclonebench: { sizes: BCB_SIZES, balancedLabels: true, functionsPerSplit: b.functionsPerSplit, splitAttempt: b.attempt, rule: `both functions <= ${MAX_CHARS} chars; split by function (seeded shuffle of functions, 50/25/25; the first of attempts 0, 1, ... that fills every split), a pair kept when both functions are in the same split, so no function (nor an identical text under another id) is in two splits; then the first N/2 pairs of each label` },
      zooHeldout: {
        devign: `the victim zoo's held-out split: the first ${DEVIGN_HELDOUT_PER_LABEL} rows of each label of the same shuffled pool of the official test split that test.jsonl is the first 50 + 50 of (so it holds test.jsonl); no text is in train_subset.jsonl`,
        bigclonebench: `the victim zoo's held-out split (worker/zoo/splits.ts): pairs whose two methods are <= ${MAX_CHARS} chars, split by PAIR as CodeXGLUE's BigCloneBench is (held-out and zoo-training pairs share methods, no pair is in both); seeded shuffle, the first ${CLONE_HELDOUT_PER_LABEL} of each label; the zoo trains on the rest (${zooClone.train.length} pairs, label-balanced)`,
        cosqa: `the victim zoo's held-out split (worker/zoo/splits.ts): CodeSearchNet-style docstring -> code pairs from codebase.jsonl (query = first paragraph of the docstring, >= 3 words; code = the function without its docstring, re-parsed by tree-sitter, <= ${MAX_CHARS} chars; one row per query); seeded shuffle, the first ${SEARCH_HELDOUT}; the zoo trains on the next ${SEARCH_TRAIN}`,
      },
      cosqa: { sizes: COSQA_SIZES, targetWord: COSQA_TARGET_WORD, targetWordRows: c.targetWordRows, rule: `label-1 pairs, code <= ${MAX_CHARS} chars, one row per code text and per query; every pair whose query has the word "${COSQA_TARGET_WORD}" is kept (dev ones 80% train / 20% valid), the rest filled by seeded shuffle` },
    },
    sources: SOURCES,
    files,
  };
  writeAtomic(path.join(out, 'MANIFEST.json'), JSON.stringify(manifest, null, 1) + '\n');
  writeAtomic(path.join(out, 'README.md'), readme(manifest.files, d.excluded, b.functionsPerSplit, c.targetWordRows, seed));
  const total = Object.values(files).reduce((n, f) => n + f.bytes, 0);
  console.log(`wrote ${Object.keys(files).length} files, ${total} bytes of rows, to ${out}`);
}

function readme(files: Record<string, { rows: number; bytes: number; sha256: string; labels: Record<string, number> }>, devignExcluded: Record<string, number>, bcbFunctions: Record<string, number>, cosqaWord: Record<string, number>, seed: number): string {
  const table = Object.entries(files)
    .map(([f, m]) => `| \`${f}\` | ${m.rows} | ${Object.entries(m.labels).map(([l, n]) => `${l}: ${n}`).join(', ')} | ${(m.bytes / 1024).toFixed(0)} KiB | \`${m.sha256.slice(0, 16)}…\` |`)
    .join('\n');
  const section = (key: keyof typeof SOURCES) => {
    const s = SOURCES[key];
    return [
      `### ${key}: ${s.task}`,
      '',
      `- Row schema: \`${s.schema}\``,
      `- Taken from: ${s.from}.`,
      ...s.upstream.map((u) => `- Upstream: ${u}.`),
      `- Licence: ${s.licence}`,
      `- Attribution: ${s.attribution}`,
      `- Please cite: ${s.cite.join('; ')}.`,
      `- Label quality: ${s.notes}`,
    ].join('\n');
  };
  return `# Committed data subsets (small, for tests and the demo)

Small subsets of the real data sets in \`../shared/data\`, so that the tests and the bundled demo run
from a clone with no \`../shared\` beside it. Nobody on this project wrote or edited these functions,
queries or labels: rows are verbatim, only the field names are normalised. Benchmarks and the model
zoo read the full sets from \`../shared/data\`.

**Licence: these files are redistributed under the Computational Use of Data Agreement (C-UDA) 1.0,
with the attribution below. By using them you are bound to C-UDA: computational use only (machine
learning training and evaluation, analysis).** The code inside the rows stays under its projects'
own licenses (see each section).

Regenerate (needs \`../shared/data\`; deterministic, seed ${seed}): \`node scripts/data/subset.ts\`.
\`MANIFEST.json\` lists every file's rows, label counts, row ids and sha256, plus the selection rules.

| file | rows | labels | size | sha256 |
| --- | --- | --- | --- | --- |
${table}

## Selection

- All: code of at most ${MAX_CHARS} characters per function (models here read about 256 tokens),
  seeded shuffles (\`worker/attacks/rng.ts\`), rows sorted by id in each file.
- devign: train/valid from \`train_subset.jsonl\`, test from the official test split; balanced labels
  (half vulnerable). Texts occurring more than once across the two files (some with both labels, see
  the source README) are left out (${devignExcluded.duplicateText} rows), so no text is in two splits.
  ${devignExcluded.tooLong} rows were longer than ${MAX_CHARS} characters.
- bigclonebench: pairs are self-contained (both functions' code in the row, plus their ids so a
  function shared by several pairs is recognisable). Split **by function**: no function (nor the same
  text under another id) occurs in two splits (functions per split: train ${bcbFunctions.train}, valid ${bcbFunctions.valid}, test ${bcbFunctions.test}). Balanced labels.
  The pairs reuse functions, so pairs within a split are not independent.
- cosqa: positive (label 1) query-code pairs only; one row per code and per query across splits.
  Every pair whose query contains the word \`file\` (the BadCode/EliBadCode target word) is kept, the
  rest is random: rows with \`file\` per split: train ${cosqaWord.train}, valid ${cosqaWord.valid}, test ${cosqaWord.test}.
  The code includes its docstring, as in CoSQA.
- \`heldout.jsonl\`: the victim zoo's held-out splits, larger so that a clean metric is measured to
  about +-2 points. devign: 250 + 250 rows of the official test split (the same shuffled pool as
  \`test.jsonl\`, which is its first 50 + 50); the defect zoo trains on \`train.jsonl\`. For clone
  and search (\`worker/zoo/splits.ts\`) the zoo trains on the rest of the full sets, read from
  \`../shared/data\` when it is built. bigclonebench: 250 + 250 pairs split by
  pair, as CodeXGLUE's BigCloneBench is, so their methods also occur in the zoo's training pairs
  (never the same pair). cosqa: CodeSearchNet-style pairs from the code base, the query being the
  first paragraph of the function's docstring and the code the function without it.

## Sources, licences and attribution

${section('devign')}

${section('bigclonebench')}

${section('cosqa')}
`;
}

main().catch((err) => {
  console.error(`subset: ${(err as Error).message}`);
  process.exitCode = 1;
});
