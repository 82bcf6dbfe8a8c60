import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = new URL('../bin/elibadcode.js', import.meta.url).pathname;
const models = new URL('./fixtures/golden/models/', import.meta.url).pathname;
const data = new URL('../data/', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'cli-'));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ELIBADCODE_LOG_LEVEL: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function jsonl(name: string, rows: unknown[]): string {
  const file = join(work, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

const devign = readFileSync(join(data, 'devign/test.jsonl'), 'utf8').trim().split('\n').slice(0, 4).map((l) => JSON.parse(l));

test('help lists the commands and exits 0; no command or an unknown one exits 2', () => {
  const help = run('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /predict/);
  assert.equal(run().code, 2);
  const unknown = run('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const sub = run('predict', '--help');
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--model DIR/);
});

test('predict classifies real C functions: one JSON line each, label = argmax of probabilities that sum to 1', () => {
  const input = jsonl('devign.jsonl', devign);
  const r = run('predict', '--model', join(models, 'defect'), '--input', input);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, devign.length);
  lines.forEach((p, i) => {
    assert.equal(p.line, i + 1);
    assert.equal(p.id, devign[i].id);
    assert.equal(p.probabilities.length, 2);
    assert.ok(Math.abs(p.probabilities[0] + p.probabilities[1] - 1) < 1e-5);
    assert.equal(p.label, p.probabilities[1] > p.probabilities[0] ? 1 : 0);
  });
});

test('predict on a code-search model prints embedding norms and code-query similarity', () => {
  const input = jsonl('search.jsonl', [{ code: 'def read_file(path):\n    return open(path).read()', query: 'read a file' }, { code: 'def add(a, b):\n    return a + b' }]);
  const r = run('predict', '--model', join(models, 'search'), '--input', input);
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(first.embeddingNorm > 0);
  assert.ok(first.similarity >= -1 && first.similarity <= 1);
  assert.ok(second.embeddingNorm > 0);
  assert.equal(second.similarity, undefined);
});

test('predict on a clone model reads pairs', () => {
  const input = jsonl('pairs.jsonl', [{ code1: 'int f(int a) { return a; }', code2: 'int g(int b) { return b; }' }]);
  const r = run('predict', '--model', join(models, 'clone'), '--input', input);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).probabilities.length, 2);
});

test('mistakes get one actionable message: flags exit 2, unusable files exit 1, never a bare stack trace', () => {
  const missing = run('predict', '--input', 'x.jsonl');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--model is required/);
  const badFlag = run('predict', '--model', 'm', '--input', 'x', '--batch-size', 'lots');
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--batch-size must be an integer >= 1, got "lots"/);
  const unknownFlag = run('predict', '--modle', 'm');
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /--modle/);

  const noModel = run('predict', '--model', join(work, 'nope'), '--input', jsonl('ok.jsonl', devign));
  assert.equal(noModel.code, 1);
  assert.match(noModel.stderr, /nope: model directory does not exist/);
  assert.doesNotMatch(noModel.stderr, /\n\s+at /);

  const badRow = run('predict', '--model', join(models, 'defect'), '--input', jsonl('bad.jsonl', [devign[0], { func_name: 'x' }]));
  assert.equal(badRow.code, 1);
  assert.match(badRow.stderr, /bad\.jsonl:2: missing field "code"/);
  const notJson = join(work, 'broken.jsonl');
  writeFileSync(notJson, '{"code": "int x;"}\n{oops\n');
  const broken = run('predict', '--model', join(models, 'defect'), '--input', notJson);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /broken\.jsonl:2: not valid JSON/);
  const clonePairs = run('predict', '--model', join(models, 'clone'), '--input', jsonl('single.jsonl', [{ code: 'int f;' }]));
  assert.equal(clonePairs.code, 1);
  assert.match(clonePairs.stderr, /single\.jsonl:1: missing field "code1"/);
  const badBackend = run('predict', '--model', join(models, 'defect'), '--input', jsonl('ok2.jsonl', devign), '--backend', 'tpu');
  assert.equal(badBackend.code, 1);
  assert.match(badBackend.stderr, /unknown backend "tpu"/);
});

test('scan checks a known dead-code trigger by parsing it, in a fresh process, before any inversion', () => {
  const rows = readFileSync(join(data, 'devign/train.jsonl'), 'utf8').trim().split('\n').slice(0, 40).map((l) => JSON.parse(l));
  const args = ['scan', '--model', new URL('../zoo/defect-deadcode-random', import.meta.url).pathname, '--data', jsonl('scan.jsonl', rows), '--task', 'defect', '--no-eliminate'];
  const bad = run(...args, '--known-attack', 'deadcode', '--known-trigger', 'if (');
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /--known-trigger "if \(" is not valid for deadcode on c: it does not parse as a c statement/);
  assert.doesNotMatch(bad.stderr, /grammars are not loaded|\n\s+at /);
});
