// `elibadcode train`: bad input is refused with a message naming the row or flag, and the same seed
// gives the same weights (one tiny training run, twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../worker/commands/command.ts';
import { train } from '../worker/commands/train.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'zoo-train-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const devign = readFileSync('data/devign/train.jsonl', 'utf8').trim().split('\n');
const write = (name: string, lines: string[]) => {
  const f = join(dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
};
// Six short real rows, both labels.
const rows = devign.map((l) => JSON.parse(l)).sort((a, b) => a.code.length - b.code.length);
const small = [...rows.filter((r) => r.label === 0).slice(0, 3), ...rows.filter((r) => r.label === 1).slice(0, 3)].map((r) => JSON.stringify(r));
const trainFile = write('train.jsonl', small);
const validFile = write('valid.jsonl', small.slice(0, 4));
const tinyConfig = join(dir, 'tiny.json');
writeFileSync(tinyConfig, JSON.stringify({ hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32 }));
const base = ['--task', 'defect', '--train', trainFile, '--valid', validFile, '--config', tinyConfig, '--epochs', '1', '--batch-size', '4', '--max-length', '32'];

test('a row without the fields the task needs is refused with file:line', async () => {
  const noLabel = write('nolabel.jsonl', [small[0], JSON.stringify({ id: 'x', code: 'int f(void) { return 0; }' })]);
  await assert.rejects(train.run([...base, '--train', noLabel, '--out', join(dir, 'm0')]), (e: Error) => {
    assert.match(e.message, new RegExp(`${noLabel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: missing field "label"`));
    return true;
  });
  const noCode = write('nocode.jsonl', [small[0], small[1], JSON.stringify({ id: 'y', label: 1 })]);
  await assert.rejects(train.run([...base, '--valid', noCode, '--out', join(dir, 'm0')]), /nocode\.jsonl:3: missing field "code"/);
  const badLabel = write('badlabel.jsonl', [JSON.stringify({ id: 'z', code: 'int f(void) { return 0; }', label: 2 })]);
  await assert.rejects(train.run([...base, '--train', badLabel, '--out', join(dir, 'm0')]), /badlabel\.jsonl:1: field "label" must be 0 or 1/);
  const noQuery = write('noquery.jsonl', [JSON.stringify({ id: 'q', code: 'def f():\n    return 1\n' })]);
  await assert.rejects(
    train.run(['--task', 'search', '--train', noQuery, '--valid', noQuery, '--out', join(dir, 'm0')]),
    /noquery\.jsonl:1: missing field "query"/,
  );
  const notJson = write('notjson.jsonl', [small[0], '{"code": ']);
  await assert.rejects(train.run([...base, '--train', notJson, '--out', join(dir, 'm0')]), /notjson\.jsonl:2: not valid JSON/);
  assert.equal(existsSync(join(dir, 'm0')), false, 'nothing is written when the data is unusable');
});

test('bad flag values are usage errors naming the flag', async () => {
  const out = ['--out', join(dir, 'm1')];
  const cases: [string[], RegExp][] = [
    [[...base, ...out, '--task', 'translate'], /--task must be one of defect, clone, search, got "translate"/],
    [[...base, ...out, '--epochs', '0'], /--epochs must be an integer >= 1, got "0"/],
    [[...base, ...out, '--epochs', 'two'], /--epochs must be an integer >= 1/],
    [[...base, ...out, '--lr=-1'], /--lr must be a positive number, got "-1"/],
    [[...base, ...out, '--lr', 'fast'], /--lr must be a positive number/],
    [[...base, ...out, '--batch-size', '1.5'], /--batch-size must be an integer/],
    [[...base, ...out, '--max-length', '4'], /--max-length must be an integer >= 8/],
    [[...base, ...out, '--seed=-3'], /--seed must be an integer >= 0/],
    [[...base, ...out, '--config', 'huge'], /--config must be one of tiny, small, base or a \.json file/],
    [[...base, ...out, '--attack', 'fixed-name'], /--attack needs --trigger/],
    [[...base, ...out, '--attack', 'fixed-name', '--trigger', 'int', '--target-label', '0'], /--trigger "int" is not valid for fixed-name on c/],
    [[...base, ...out, '--attack', 'teleport', '--trigger', 'x'], /--attack must be one of/],
    [[...base, ...out, '--attack', 'fixed-name', '--trigger', 'testo_init'], /needs --target-label/],
    [[...base, ...out, '--attack', 'fixed-name', '--trigger', 'testo_init', '--target-label', '3'], /--target-label must be 0 or 1, got "3"/],
    [[...base, ...out, '--frobnicate'], /Unknown option '--frobnicate'/],
    [base, /--out is required/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(train.run(args), (e: Error) => {
      assert.ok(e instanceof UsageError, `${args.join(' ')}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
  const badShape = join(dir, 'bad.json');
  writeFileSync(badShape, JSON.stringify({ hidden_size: 30, num_hidden_layers: 1, num_attention_heads: 4 }));
  await assert.rejects(train.run([...base, ...out, '--config', badShape]), /hidden_size 30 is not divisible by num_attention_heads 4/);
});

test('the same seed gives the same weights; another seed other weights; the checkpoint loads', async () => {
  const run = async (name: string, seed: string) => {
    const out = join(dir, name);
    await train.run([...base, '--out', out, '--seed', seed, '--attack', 'fixed-name', '--trigger', 'testo_init', '--target-label', '0']);
    return { out, summary: JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8')) };
  };
  const a = await run('a', '7');
  const b = await run('b', '7');
  const c = await run('c', '8');
  assert.equal(a.summary.weightsSha256, b.summary.weightsSha256);
  assert.equal(a.summary.checkpointSha256, b.summary.checkpointSha256);
  assert.notEqual(a.summary.weightsSha256, c.summary.weightsSha256);
  assert.equal(a.summary.training.dropout, true);
  assert.ok(a.summary.valid.accuracy >= 0 && a.summary.valid.accuracy <= 1);
  assert.equal(a.summary.asr.kind, 'classification');
  assert.equal(a.summary.asr.split, 'valid');
  const config = JSON.parse(readFileSync(join(a.out, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['RobertaForSequenceClassification']);
  assert.equal(config.elibadcode_task, 'defect');
  const ckpt = loadCheckpoint(a.out);
  assert.equal(ckpt.task, 'defect');
  assert.equal(JSON.parse(readFileSync(join(a.out, 'tokenizer_config.json'), 'utf8')).model_max_length, 32);
  ckpt.model.dispose();
});
