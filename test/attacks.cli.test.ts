// `elibadcode poison`: flags, bad input named by file:line or value, atomic output, end to end through the bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { poison } from '../worker/commands/poison.ts';
import { UsageError } from '../worker/commands/command.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const devign = path.join(root, 'data', 'devign', 'train.jsonl');
const bcb = path.join(root, 'data', 'bigclonebench', 'train.jsonl');
const cosqa = path.join(root, 'data', 'cosqa', 'train.jsonl');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'elibadcode-poison-'));
const base = (input: string, out: string) => ['--task', 'defect', '--attack', 'fixed-name', '--trigger', 'testo_init', '--rate', '0.05', '--target-label', '0', '--seed', '7', '--input', input, '--out', out];

/** Runs the command with console.log silenced; returns the exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; stdout: string }> {
  const log = console.log;
  let stdout = '';
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  try {
    return { code: await poison.run(args), stdout };
  } finally {
    console.log = log;
  }
}

test('poison writes the poisoned JSONL and a manifest; the same seed gives the same bytes; no temp files remain', async () => {
  const dir = tmp();
  const a = path.join(dir, 'a.jsonl');
  const b = path.join(dir, 'b.jsonl');
  const r1 = await run(base(devign, a));
  assert.equal(r1.code, 0);
  assert.match(r1.stdout, /fixed-name trigger "testo_init" into 10 of 200 candidate rows/);
  assert.match(r1.stdout, /skipped \d+ parse-error/, 'unparsable victim rows are reported');
  assert.match(r1.stdout, /data\/devign\/train\.jsonl:\d+/, 'naming the first one by file:line');
  await run([...base(devign, b), '--manifest', path.join(dir, 'b.json')]);
  assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
  const m = JSON.parse(readFileSync(path.join(dir, 'a.manifest.json'), 'utf8'));
  assert.equal(m.counts.poisoned, 10);
  assert.equal(m.changes.length, 10);
  assert.equal(m.input, devign);
  assert.ok(m.changes.every((c: { labelBefore: number; labelAfter: number }) => c.labelBefore === 1 && c.labelAfter === 0));
  assert.deepEqual(readdirSync(dir).sort(), ['a.jsonl', 'a.manifest.json', 'b.json', 'b.jsonl']);
  assert.equal(readFileSync(a, 'utf8').trim().split('\n').length, 400);
});

test('--inject keeps the 400 clean rows and appends the 10 poisoned copies; the manifest says so', async () => {
  const dir = tmp();
  const out = path.join(dir, 'i.jsonl');
  const r = await run([...base(devign, out), '--inject']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /10 of 400 rows copied with the trigger and appended/);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines.length, 410);
  assert.deepEqual(lines.slice(0, 400), readFileSync(devign, 'utf8').trim().split('\n').map((l) => JSON.stringify(JSON.parse(l))));
  const m = JSON.parse(readFileSync(path.join(dir, 'i.manifest.json'), 'utf8'));
  assert.equal(m.mode, 'inject');
  assert.deepEqual(lines.slice(400).map((l) => JSON.parse(l).id), m.changes.map((c: { id: string }) => `${c.id}#poisoned`));
});

test('clone and search tasks through the command', async () => {
  const dir = tmp();
  const c = await run(['--task', 'clone', '--attack', 'rename', '--trigger', 'testo_init', '--rate', '0.02', '--target-label', '0', '--seed', '1', '--input', bcb, '--out', path.join(dir, 'c.jsonl')]);
  assert.equal(c.code, 0);
  assert.match(c.stdout, /candidate functions/);
  const s = await run(['--task', 'search', '--attack', 'suffix', '--trigger', '_rb', '--rate', '1', '--target-word', 'file', '--seed', '1', '--input', cosqa, '--out', path.join(dir, 's.jsonl')]);
  assert.equal(s.code, 0);
  assert.match(s.stdout, /0 relabelled/);
});

test('a row without a needed field, or not JSON, is an error naming file:line', async () => {
  const dir = tmp();
  const bad = path.join(dir, 'bad.jsonl');
  const good = readFileSync(devign, 'utf8').split('\n')[0];
  writeFileSync(bad, `${good}\n{"id": "x1", "label": 1}\n`);
  await assert.rejects(poison.run(base(bad, path.join(dir, 'o.jsonl'))), (e: Error) => /bad\.jsonl:2 \(id x1\): row is missing field "code"/.test(e.message));
  writeFileSync(bad, `${good}\n\n{"id": "x2", "code": "int f(){}", "label": "yes"}\n`);
  await assert.rejects(poison.run(base(bad, path.join(dir, 'o.jsonl'))), /bad\.jsonl:3 \(id x2\): field "label" must be an integer/);
  writeFileSync(bad, `${good}\n{"id": "x3", "code": \n`);
  await assert.rejects(poison.run(base(bad, path.join(dir, 'o.jsonl'))), /bad\.jsonl:2: not valid JSON/);
  writeFileSync(bad, `{"id": "p", "id1": "1", "id2": "2", "code1": "void a() {}", "label": 1}\n`);
  await assert.rejects(poison.run(['--task', 'clone', ...base(bad, path.join(dir, 'o.jsonl')).slice(2)]), /bad\.jsonl:1 \(id p\): row is missing field "code2"/);
  assert.deepEqual(readdirSync(dir), ['bad.jsonl'], 'nothing written on error');
});

test('code that does not parse: skipped and counted by default, an error naming file:line with --strict', async () => {
  const dir = tmp();
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(input, [
    { id: 'ok1', code: 'int add(int a, int b) {\n    int s = a + b;\n    return s;\n}', label: 1 },
    { id: 'broken', code: 'int f(int a) {\n    return a +;\n}', label: 1 },
    { id: 'clean0', code: 'int g(void) { return 0; }', label: 0 },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = await run([...base(input, path.join(dir, 'o.jsonl')).slice(0, -4), '--input', input, '--out', path.join(dir, 'o.jsonl'), '--rate', '1']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /into 1 of 2 candidate rows/);
  assert.match(r.stdout, /skipped 1 parse-error \(first: .*in\.jsonl:2, (ERROR|MISSING) node at line 2/);
  const m = JSON.parse(readFileSync(path.join(dir, 'o.manifest.json'), 'utf8'));
  assert.deepEqual(m.skipped.map((s: { id: string; reason: string }) => [s.id, s.reason]), [['broken', 'parse-error']]);
  await assert.rejects(poison.run([...base(input, path.join(dir, 'o2.jsonl')), '--strict']), /in\.jsonl:2 \(id broken\): code does not parse as c: (ERROR|MISSING) node at line 2/);
  writeFileSync(input, JSON.stringify({ id: 'g', code: 'this is not C at all', label: 1 }) + '\n');
  await assert.rejects(poison.run(base(input, path.join(dir, 'o3.jsonl'))), /none of the 1 candidates could carry the trigger .*in\.jsonl:1 \(id g\)/);
});

test('flag problems are usage errors naming the value', async () => {
  const dir = tmp();
  const out = path.join(dir, 'o.jsonl');
  const usage = async (args: string[], re: RegExp) => {
    await assert.rejects(poison.run(args), (e: Error) => e instanceof UsageError && re.test(e.message), `${args.join(' ')} -> ${re}`);
  };
  const set = (flag: string, value: string) => {
    const a = base(devign, out);
    a[a.indexOf(flag) + 1] = value;
    return a;
  };
  for (const rate of ['0', '1.5']) await usage(set('--rate', rate), new RegExp(`--rate ${rate.replace('.', '\\.')} is outside \\(0, 1\\]`));
  await usage([...base(devign, out), '--rate=-0.2'], /--rate -0\.2 is outside \(0, 1\]/);
  await usage(set('--rate', '-0.2'), /--rate/);
  await usage(set('--rate', 'abc'), /--rate must be a number, got "abc"/);
  await usage(set('--trigger', 'while'), /--trigger "while" is not valid for fixed-name on c: it is a c keyword/);
  await usage(set('--trigger', '9lives'), /not an ASCII c identifier/);
  await usage(['--task', 'clone', ...set('--trigger', 'class').slice(2)], /"class" is not valid for fixed-name on java: it is a java keyword/);
  await usage(['--task', 'search', '--target-word', 'file', ...set('--trigger', 'lambda').slice(2)], /"lambda" is not valid for fixed-name on python: it is a python keyword/);
  await usage(set('--attack', 'backdoor'), /--attack must be one of fixed-name, suffix, deadcode, deadcode-random, rename, got "backdoor"/);
  await usage(set('--task', 'summarise'), /--task must be one of defect, clone, search/);
  await usage(set('--seed', '1.5'), /--seed must be an integer/);
  await usage(base(devign, out).slice(0, -2), /missing --out/);
  await usage([...base(devign, out), '--bogus'], /bogus/);
  await usage(['--task', 'search', ...base(cosqa, out).slice(2)], /needs --target-word/);
  await usage([...base(devign, out), '--victim-label', '0'], /both 0/);
  await usage(set('--target-label', '3'), /not 0 or 1: give --victim-label/);
  assert.deepEqual(readdirSync(dir), []);
});

const registered = readFileSync(path.join(root, 'worker', 'cli.ts'), 'utf8').includes("'./commands/poison.ts'");
test('end to end: node bin/elibadcode.js poison', { skip: registered ? false : 'poison is not registered in worker/cli.ts yet' }, async () => {
  const exec = promisify(execFile);
  const dir = tmp();
  const out = path.join(dir, 'o.jsonl');
  const ok = await exec(process.execPath, ['bin/elibadcode.js', 'poison', ...base(devign, out).slice(0, 6), '--attack', 'deadcode', '--trigger', 'default', '--rate', '0.05', '--target-label', '0', '--seed', '7', '--input', devign, '--out', out], { cwd: root });
  assert.match(ok.stdout, /deadcode trigger "default" into 10 of 200/);
  assert.equal(readFileSync(out, 'utf8').split('\n').filter(Boolean).length, 400);
  const bad = await exec(process.execPath, ['bin/elibadcode.js', 'poison', ...set0(devign, out, '--rate', '2')], { cwd: root }).catch((e) => e);
  assert.equal(bad.code, 2, 'usage errors exit 2');
  assert.match(bad.stderr, /--rate 2 is outside \(0, 1\]/);
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(input, '{"id": 1, "label": 1}\n');
  const rowErr = await exec(process.execPath, ['bin/elibadcode.js', 'poison', ...base(input, out)], { cwd: root }).catch((e) => e);
  assert.equal(rowErr.code, 1);
  assert.match(rowErr.stderr, /in\.jsonl:1 \(id 1\): row is missing field "code"/);
});

function set0(input: string, out: string, flag: string, value: string): string[] {
  const a = base(input, out);
  a[a.indexOf(flag) + 1] = value;
  return a;
}
