import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../worker/model/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../worker/model/safetensors.ts';

await initBackend();
const golden = new URL('./fixtures/golden/models/', import.meta.url).pathname;

function copyOf(head: string): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ckpt-')), head);
  cpSync(join(golden, head), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit(c);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
}

function editWeights(dir: string, edit: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): void {
  const file = join(dir, 'model.safetensors');
  const t = readSafetensors(readFileSync(file));
  edit(t);
  writeFileSync(file, writeSafetensors(t));
}

test('loads each golden head and reads its task from config.json', () => {
  for (const [head, task] of [['classify', 'classify'], ['defect', 'defect'], ['clone', 'clone'], ['search', 'search']]) {
    const ckpt = loadCheckpoint(join(golden, head));
    assert.equal(ckpt.task, task);
    assert.equal(ckpt.prefix, head === 'search' ? '' : 'roberta.');
    ckpt.model.dispose();
  }
});

test('a saved checkpoint reloads to the same outputs, keeps config, tokenizer and unused tensors, and is written atomically', async () => {
  const ckpt = loadCheckpoint(join(golden, 'search'));
  const out = join(mkdtempSync(join(tmpdir(), 'saved-')), 'cleaned');
  const saved = await saveCheckpoint(ckpt, out);
  assert.deepEqual(readdirSync(out).sort(), Object.keys(saved.files).sort());
  assert.ok(existsSync(join(out, 'tokenizer.json')));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')), ckpt.rawConfig);
  const names = (dir: string) => [...readSafetensors(readFileSync(join(dir, 'model.safetensors'))).keys()].sort();
  assert.deepEqual(names(out), names(join(golden, 'search')), 'same tensor names, pooler included');
  assert.match(saved.sha256, /^[0-9a-f]{64}$/);

  const again = loadCheckpoint(out);
  const inputs = { inputIds: tf.tensor2d([[0, 100, 200, 300, 2, 1]], undefined, 'int32'), attentionMask: tf.tensor2d([[1, 1, 1, 1, 1, 0]], undefined, 'int32') };
  const a = tf.tidy(() => ckpt.model.embed(inputs).arraySync());
  const b = tf.tidy(() => again.model.embed(inputs).arraySync());
  assert.deepEqual(a, b);
  // Same weights, same bytes: the digest is stable.
  assert.equal((await saveCheckpoint(again, out)).sha256, saved.sha256);
  assert.deepEqual(readdirSync(join(out, '..')), ['cleaned'], 'no temporary directories left behind');
  ckpt.model.dispose();
  again.model.dispose();
});

test('a save that fails leaves the previous model in place and no partial directory', async () => {
  const ckpt = loadCheckpoint(join(golden, 'defect'));
  const parent = mkdtempSync(join(tmpdir(), 'atomic-'));
  const out = join(parent, 'model');
  await saveCheckpoint(ckpt, out);
  const before = readFileSync(join(out, 'model.safetensors'));
  const broken = { ...ckpt, dir: ckpt.dir, extras: new Map([['bad', { shape: [3], data: new Float32Array(2) }]]) };
  await assert.rejects(saveCheckpoint(broken, out), /shape \[3\] does not match 2 values/);
  assert.deepEqual(readFileSync(join(out, 'model.safetensors')), before);
  assert.deepEqual(readdirSync(parent), ['model']);
  ckpt.model.dispose();
});

test('refuses pickle checkpoints, explaining why and how to convert', () => {
  const dir = copyOf('defect');
  rmSync(join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'pytorch_model.bin'), 'not loaded');
  assert.throws(() => loadCheckpoint(dir), (e: Error) => {
    assert.match(e.message, /pytorch_model\.bin: refusing to load a pickle checkpoint: unpickling runs arbitrary code/);
    assert.match(e.message, /save_pretrained\(.*safe_serialization=True\)/);
    return true;
  });
});

test('bad checkpoints fail with one error naming the file and the problem', () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['missing config', (d) => rmSync(join(d, 'config.json')), /config\.json: missing/],
    ['config not JSON', (d) => writeFileSync(join(d, 'config.json'), '{'), /config\.json: not valid JSON/],
    ['unsupported model_type', (d) => editConfig(d, (c) => { c.model_type = 'gpt2'; }), /config\.json: model_type "gpt2" is not supported/],
    ['bad field', (d) => editConfig(d, (c) => { c.hidden_size = 'wide'; }), /config\.json: field "hidden_size"/],
    ['heads do not divide hidden', (d) => editConfig(d, (c) => { c.num_attention_heads = 5; }), /hidden_size must be divisible by num_attention_heads/],
    ['unknown architecture', (d) => editConfig(d, (c) => { delete c.elibadcode_task; c.architectures = ['RobertaForQuestionAnswering']; }), /architecture "RobertaForQuestionAnswering" has no head/],
    ['missing tensor', (d) => editWeights(d, (t) => t.delete('roberta.encoder.layer.1.output.dense.weight')), /model\.safetensors: tensor "roberta\.encoder\.layer\.1\.output\.dense\.weight" is missing/],
    ['wrong shape', (d) => editConfig(d, (c) => { c.num_hidden_layers = 3; }), /tensor "roberta\.encoder\.layer\.2\..*" is missing/],
    ['wrong width', (d) => editConfig(d, (c) => { c.intermediate_size = 48; }), /tensor "encoder\.layer\.0\.intermediate\.dense\.weight" has shape \[64,32\] but config\.json implies \[48,32\]/],
    ['tokenizer larger than the vocabulary', (d) => {
      const file = join(d, 'tokenizer.json');
      const t = JSON.parse(readFileSync(file, 'utf8'));
      t.added_tokens.push({ id: 4999, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      writeFileSync(file, JSON.stringify(t));
    }, /tokenizer\.json: tokenizer has 5000 tokens but config\.json vocab_size is 1000/],
    ['no tokenizer', (d) => rmSync(join(d, 'tokenizer.json')), /tokenizer\.json: missing/],
    ['truncated weights', (d) => writeFileSync(join(d, 'model.safetensors'), readFileSync(join(d, 'model.safetensors')).subarray(0, 1000)), /model\.safetensors: truncated|out of range/],
    ['no weights', (d) => rmSync(join(d, 'model.safetensors')), /no model\.safetensors/],
  ];
  for (const [name, breakIt, message] of cases) {
    const dir = copyOf('defect');
    breakIt(dir);
    assert.throws(() => loadCheckpoint(dir), message, name);
  }
  assert.throws(() => loadCheckpoint('/nonexistent/model'), /\/nonexistent\/model: model directory does not exist/);
});
