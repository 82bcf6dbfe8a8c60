// A Hugging Face checkpoint directory: config.json, model.safetensors (or a sharded
// model.safetensors.index.json), tokenizer.json and its companions. Pickle formats are
// refused. Saving writes a sibling temporary directory and renames it into place, so a
// failed save never leaves a half-written model.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, mkdirSync, copyFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseConfig, taskOf, type RobertaConfig, type Task } from './config.ts';
import { Roberta, isLinearWeight, parameterShapes } from './roberta.ts';
import { CheckpointError, readSafetensors, writeSafetensors, type Tensor32 } from './safetensors.ts';
import { CodeTokenizer } from './tokenizer.ts';

const PICKLE_FILES = /\.(bin|pt|pth|ckpt|pkl|pickle)$/;
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];
/** Non-parameter buffers some checkpoints carry (integer position ids); safe to drop. */
const BUFFERS = /(^|\.)(position_ids|token_type_ids)$/;

export interface Checkpoint {
  dir: string;
  config: RobertaConfig;
  /** config.json exactly as read, written back unchanged. */
  rawConfig: Record<string, unknown>;
  task: Task;
  model: Roberta;
  tokenizer: CodeTokenizer;
  /** Name prefix of encoder tensors in the file (`roberta.` for heads, none for a bare RobertaModel). */
  prefix: string;
  /** Tensors the runtime does not use (pooler, LM head), kept to be written back as they were. */
  extras: Map<string, Tensor32>;
}

export function loadCheckpoint(dirArg: string): Checkpoint {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new Error(`${dir}: model directory does not exist`);
  const files = readdirSync(dir);
  const configFile = join(dir, 'config.json');
  if (!files.includes('config.json')) throw new Error(`${configFile}: missing; a checkpoint directory needs config.json`);
  let rawConfig: Record<string, unknown>;
  try {
    rawConfig = JSON.parse(readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new Error(`${configFile}: not valid JSON (${(e as Error).message})`);
  }
  const config = parseConfig(rawConfig, configFile);
  const task = taskOf(config, configFile);
  const tensors = readWeights(dir, files);

  const expected = parameterShapes(config, task);
  const prefix = [...tensors.keys()].some((n) => n.startsWith('roberta.')) ? 'roberta.' : '';
  const strip = (name: string) => (name.startsWith(prefix) && !name.startsWith('classifier.') ? name.slice(prefix.length) : name);
  const found = new Map<string, Tensor32>();
  const extras = new Map<string, Tensor32>();
  for (const [fileName, t] of tensors) {
    const name = legacyLayerNorm(strip(fileName));
    if (expected.has(name)) found.set(name, t);
    else extras.set(fileName, t);
  }
  const weightsFile = join(dir, files.includes('model.safetensors') ? 'model.safetensors' : 'model.safetensors.index.json');
  for (const [name, shape] of expected) {
    const t = found.get(name);
    if (!t) throw new CheckpointError(weightsFile, `tensor "${prefix && !name.startsWith('classifier.') ? prefix : ''}${name}" is missing (config.json describes a ${task} model with ${config.num_hidden_layers} layers)`);
    if (t.shape.join(',') !== shape.join(',')) {
      throw new CheckpointError(weightsFile, `tensor "${name}" has shape [${t.shape}] but config.json implies [${shape}]`);
    }
  }

  const tokenizer = CodeTokenizer.fromDir(dir);
  if (tokenizer.size > config.vocab_size) {
    throw new Error(`${join(dir, 'tokenizer.json')}: tokenizer has ${tokenizer.size} tokens but config.json vocab_size is ${config.vocab_size}; tokenizer and model do not match`);
  }

  const params = new Map<string, tf.Variable>();
  for (const [name, t] of found) {
    const value = tf.tidy(() => {
      const x = tf.tensor(t.data, t.shape, 'float32');
      return isLinearWeight(name, t.shape.length) ? tf.transpose(x) : x;
    });
    params.set(name, tf.variable(value, true));
    value.dispose();
  }
  return { dir, config, rawConfig, task, model: new Roberta(config, task, params), tokenizer, prefix, extras };
}

function legacyLayerNorm(name: string): string {
  return name.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
}

function readWeights(dir: string, files: string[]): Map<string, Tensor32> {
  const read = (file: string) => {
    const path = join(dir, file);
    return filterBuffers(readSafetensors(readFileSync(path), path));
  };
  if (files.includes('model.safetensors')) return read('model.safetensors');
  if (files.includes('model.safetensors.index.json')) {
    const indexFile = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> };
    if (!index.weight_map) throw new CheckpointError(indexFile, 'has no weight_map');
    const all = new Map<string, Tensor32>();
    for (const shard of new Set(Object.values(index.weight_map))) {
      if (basename(shard) !== shard) throw new CheckpointError(indexFile, `shard "${shard}" is outside the checkpoint directory`);
      for (const [n, t] of read(shard)) all.set(n, t);
    }
    return all;
  }
  const pickles = files.filter((f) => PICKLE_FILES.test(f));
  if (pickles.length > 0) {
    throw new Error(
      `${join(dir, pickles[0])}: refusing to load a pickle checkpoint: unpickling runs arbitrary code from the file. ` +
        `Convert it once, in a sandbox you trust, to safetensors: python -c "from transformers import AutoModelForSequenceClassification as M; ` +
        `M.from_pretrained('${dir}').save_pretrained('${dir}-safetensors', safe_serialization=True)" (and copy the tokenizer files).`,
    );
  }
  throw new Error(`${dir}: no model.safetensors (or model.safetensors.index.json) in the checkpoint directory`);
}

function filterBuffers(tensors: Map<string, Tensor32>): Map<string, Tensor32> {
  for (const name of [...tensors.keys()]) if (BUFFERS.test(name)) tensors.delete(name);
  return tensors;
}

export interface SavedCheckpoint {
  dir: string;
  /** sha256 of model.safetensors. */
  weightsSha256: string;
  /** sha256 over "<sha256>  <file>\n" lines of every file, sorted by name: the digest of the whole checkpoint. */
  sha256: string;
  files: Record<string, string>;
}

/**
 * Writes the model in the layout it was loaded with (same tensor names, config.json and
 * tokenizer files), atomically: into a temporary sibling directory, then renamed over `outDir`.
 */
export async function saveCheckpoint(source: Pick<Checkpoint, 'dir' | 'rawConfig' | 'model' | 'prefix' | 'extras'>, outDir: string): Promise<SavedCheckpoint> {
  const target = resolve(outDir);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp);
  try {
    const tensors = new Map<string, Tensor32>(source.extras);
    for (const [name, v] of source.model.params) {
      const t = isLinearWeight(name, v.rank) ? tf.transpose(v) : v;
      const data = (await t.data()) as Float32Array;
      const shape = [...t.shape];
      if (t !== v) t.dispose();
      const fileName = name.startsWith('classifier.') ? name : source.prefix + name;
      tensors.set(fileName, { shape, data });
    }
    writeDurably(join(tmp, 'model.safetensors'), writeSafetensors(tensors));
    writeDurably(join(tmp, 'config.json'), JSON.stringify(source.rawConfig, null, 2) + '\n');
    for (const f of TOKENIZER_FILES) {
      if (existsSync(join(source.dir, f))) copyFileSync(join(source.dir, f), join(tmp, f));
    }
    const files: Record<string, string> = {};
    for (const f of readdirSync(tmp).sort()) files[f] = sha256(readFileSync(join(tmp, f)));
    const old = existsSync(target) ? `${tmp}.old` : null;
    if (old) renameSync(target, old);
    renameSync(tmp, target);
    if (old) rmSync(old, { recursive: true, force: true });
    const listing = Object.entries(files).map(([f, h]) => `${h}  ${f}\n`).join('');
    return { dir: target, weightsSha256: files['model.safetensors'], sha256: sha256(Buffer.from(listing)), files };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function writeDurably(path: string, data: Uint8Array | string): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
