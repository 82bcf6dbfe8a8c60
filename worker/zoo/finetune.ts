/**
 * Fine-tuning a fresh small RoBERTa on one of the three code tasks, and measuring it: the core of
 * `elibadcode train` and of the victim-model zoo (scripts/zoo.ts).
 *
 * - defect: one-logit sequence classifier (CodeXGLUE Defect-detection head), labels 0/1.
 * - clone: pair classifier over the two `<s>` vectors (CodeXGLUE BigCloneBench head), labels 0/1.
 * - search: bi-encoder, mean-pooled and L2-normalised, trained with the in-batch contrastive loss.
 *
 * Everything random is seeded: weight init (Roberta.init), dropout (the model's own seeded stream),
 * the batch order (mulberry32 over the seed and epoch). On the same backend the same seed gives
 * bit-identical weights.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { applyTriggerSync, initParsers, makeRng } from '../attacks/index.ts';
import { TASK_LANG } from '../attacks/rows.ts';
import { saveCheckpoint, type SavedCheckpoint } from '../model/checkpoint.ts';
import { parseConfig, type RobertaConfig } from '../model/config.ts';
import { accuracy, f1, mrr, round } from '../model/metrics.ts';
import { Roberta, type Inputs } from '../model/roberta.ts';
import { embeddings, predictLabels, type Example } from '../model/tasks.ts';
import { CodeTokenizer } from '../model/tokenizer.ts';
import { AdamW, contrastiveLoss, nllLoss } from '../model/train.ts';
import { rng, shuffled } from '../rng.ts';
import type { TriggerSpec } from '../attacks/success.ts';

export type ZooTask = 'defect' | 'clone' | 'search';
export const ZOO_TASKS: readonly ZooTask[] = ['defect', 'clone', 'search'];

/** Model shapes by name; a JSON file may give any of these fields instead. */
export const PRESETS: Record<string, ModelShape> = {
  // The zoo's size: small enough to commit (about 0.3 MB per model) and train in about a minute on wasm.
  tiny: { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 128 },
  small: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 256 },
  base: { hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 512 },
};

export interface ModelShape {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_dropout_prob?: number;
  attention_probs_dropout_prob?: number;
}

export interface TrainOptions {
  task: ZooTask;
  shape: ModelShape;
  /** Directory with tokenizer.json (and its companions). */
  tokenizerDir: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Tokens per input, <s> and </s> included. */
  maxLength: number;
  seed: number;
  weightDecay?: number;
  /** Fraction of the steps spent warming up. */
  warmupRatio?: number;
  /** Code search: the contrastive loss's cosine scale (inverse temperature; default 20). */
  contrastiveScale?: number;
  /** Called after each epoch with the mean training loss. */
  onEpoch?: (epoch: number, loss: number, seconds: number) => void;
}

export interface Trained {
  model: Roberta;
  tokenizer: CodeTokenizer;
  /** The config.json written with the checkpoint. */
  rawConfig: Record<string, unknown>;
  config: RobertaConfig;
  epochLosses: number[];
  steps: number;
  seconds: number;
}

const ARCH: Record<ZooTask, string> = {
  defect: 'RobertaForSequenceClassification',
  clone: 'RobertaForCloneDetection',
  search: 'RobertaModel',
};

export function modelConfig(task: ZooTask, shape: ModelShape, vocabSize: number, maxLength: number): Record<string, unknown> {
  return {
    model_type: 'roberta',
    architectures: [ARCH[task]],
    elibadcode_task: task,
    vocab_size: vocabSize,
    hidden_size: shape.hidden_size,
    num_hidden_layers: shape.num_hidden_layers,
    num_attention_heads: shape.num_attention_heads,
    intermediate_size: shape.intermediate_size,
    hidden_act: 'gelu',
    hidden_dropout_prob: shape.hidden_dropout_prob ?? 0.1,
    attention_probs_dropout_prob: shape.attention_probs_dropout_prob ?? 0.1,
    max_position_embeddings: maxLength + 2,
    type_vocab_size: 1,
    layer_norm_eps: 1e-5,
    pad_token_id: 1,
    bos_token_id: 0,
    eos_token_id: 2,
    ...(task === 'defect' ? { num_labels: 1 } : task === 'clone' ? { num_labels: 2 } : {}),
  };
}

/** Token ids of each text, cut to maxLength with <s> ... </s>, computed once. */
class IdCache {
  private readonly cache = new Map<string, number[]>();
  private readonly tokenizer: CodeTokenizer;
  private readonly maxLength: number;
  constructor(tokenizer: CodeTokenizer, maxLength: number) {
    this.tokenizer = tokenizer;
    this.maxLength = maxLength;
  }
  ids(text: string): number[] {
    let ids = this.cache.get(text);
    if (!ids) {
      const t = this.tokenizer;
      ids = [t.cls, ...t.pieces(text).slice(0, this.maxLength - 2), t.sep];
      this.cache.set(text, ids);
    }
    return ids;
  }
  /** Right-padded batch, as wide as its longest row. */
  inputs(texts: string[]): Inputs {
    const rows = texts.map((t) => this.ids(t));
    const width = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * width).fill(this.tokenizer.pad);
    const mask = new Int32Array(rows.length * width);
    rows.forEach((r, i) => {
      ids.set(r, i * width);
      mask.fill(1, i * width, i * width + r.length);
    });
    return { inputIds: tf.tensor2d(ids, [rows.length, width], 'int32'), attentionMask: tf.tensor2d(mask, [rows.length, width], 'int32') };
  }
}

function disposeInputs(...inputs: (Inputs | undefined)[]): void {
  for (const i of inputs) if (i) tf.dispose([i.inputIds!, i.attentionMask]);
}

/** Checks that every example has what training/evaluating the task needs; errors name file:line. */
export function checkExamples(examples: Example[], task: ZooTask, file: string, needLabel = true): void {
  if (examples.length === 0) throw new Error(`${file}: no rows`);
  for (const e of examples) {
    if (task === 'search') {
      if (e.query === undefined) throw new Error(`${e.where}: missing field "query" (code search rows are {"code", "query"})`);
      if (e.query.trim() === '') throw new Error(`${e.where}: field "query" is empty`);
    } else if (needLabel) {
      if (e.label === undefined) throw new Error(`${e.where}: missing field "label" (0 or 1)`);
      if (e.label !== 0 && e.label !== 1) throw new Error(`${e.where}: field "label" must be 0 or 1 for ${task}, got ${e.label}`);
    }
    if (e.code.trim() === '' || (task === 'clone' && e.code2!.trim() === '')) throw new Error(`${e.where}: code is empty`);
  }
}

export async function fineTune(train: Example[], o: TrainOptions): Promise<Trained> {
  const tokenizer = CodeTokenizer.fromDir(o.tokenizerDir);
  const rawConfig = modelConfig(o.task, o.shape, tokenizer.size, o.maxLength);
  const config = parseConfig(rawConfig);
  const model = Roberta.init(config, o.task, o.seed);
  const cache = new IdCache(tokenizer, o.maxLength);
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const optimizer = new AdamW(model.params, {
    learningRate: o.learningRate,
    weightDecay: o.weightDecay ?? 0.01,
    warmupSteps: Math.round((o.warmupRatio ?? 0.1) * totalSteps),
    totalSteps,
    maxGradNorm: 1,
  });
  const order = rng(o.seed ^ 0x5eed);
  const epochLosses: number[] = [];
  const t0 = performance.now();
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const e0 = performance.now();
    const batches = shuffled(train, order);
    let sum = 0;
    for (let i = 0; i < batches.length; i += o.batchSize) {
      const batch = batches.slice(i, i + o.batchSize);
      let a: Inputs, b: Inputs | undefined;
      let loss: () => tf.Scalar;
      if (o.task === 'search') {
        // A batch of one has no negatives: the contrastive loss is 0 and teaches nothing.
        if (batch.length < 2) continue;
        a = cache.inputs(batch.map((e) => e.query!));
        b = cache.inputs(batch.map((e) => e.code));
        loss = () => contrastiveLoss(model.embed(a, { training: true }), model.embed(b!, { training: true }), o.contrastiveScale ?? 20);
      } else {
        a = cache.inputs(batch.map((e) => e.code));
        b = o.task === 'clone' ? cache.inputs(batch.map((e) => e.code2!)) : undefined;
        const labels = batch.map((e) => e.label!);
        loss = () => nllLoss(model.logProbs(a, { training: true }, b), labels);
      }
      sum += (await optimizer.minimize(loss)).loss * batch.length;
      disposeInputs(a, b);
    }
    epochLosses.push(sum / train.length);
    o.onEpoch?.(epoch + 1, sum / train.length, (performance.now() - e0) / 1000);
  }
  optimizer.dispose();
  return { model, tokenizer, rawConfig, config, epochLosses, steps: totalSteps, seconds: (performance.now() - t0) / 1000 };
}

export interface CleanMetrics {
  rows: number;
  accuracy?: number;
  f1?: number;
  mrr?: number;
}

/** Clean accuracy and F1 (classification) or MRR over the split's own codes (search). */
export async function evaluateClean(model: Roberta, tokenizer: CodeTokenizer, examples: Example[], maxLength: number): Promise<CleanMetrics> {
  if (model.task === 'search') {
    const q = await embeddings(model, tokenizer, examples.map((e) => e.query!), maxLength, 32);
    const c = await embeddings(model, tokenizer, examples.map((e) => e.code), maxLength, 32);
    return { rows: examples.length, mrr: round(mrr(similarities(q, c))) };
  }
  const predicted = await predictLabels(model, tokenizer, examples, maxLength);
  const gold = examples.map((e) => e.label!);
  return { rows: examples.length, accuracy: round(accuracy(predicted, gold)), f1: round(f1(predicted, gold)) };
}

function similarities(q: number[][], c: number[][]): number[][] {
  return q.map((qi) => c.map((cj) => qi.reduce((s, x, k) => s + x * cj[k], 0)));
}


/** Checks that the trigger can be placed at all (fails fast, before training). */
export async function checkTriggerUsable(task: ZooTask, spec: Pick<TriggerSpec, 'attack' | 'trigger'>, sample: string): Promise<void> {
  await initParsers();
  applyTriggerSync(sample, TASK_LANG[task], spec.attack, spec.trigger, makeRng(0));
}

/**
 * Writes the Hugging Face checkpoint: config.json, model.safetensors and the tokenizer files
 * (tokenizer_config.json's model_max_length set to the training length).
 */
export async function writeCheckpoint(t: Trained, tokenizerDir: string, maxLength: number, outDir: string, extraConfig: Record<string, unknown> = {}): Promise<SavedCheckpoint> {
  const staging = `${outDir}.tokenizer-${process.pid}`;
  mkdirSync(staging, { recursive: true });
  try {
    for (const f of ['tokenizer.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt']) {
      if (existsSync(join(tokenizerDir, f))) copyFileSync(join(tokenizerDir, f), join(staging, f));
    }
    const configFile = join(tokenizerDir, 'tokenizer_config.json');
    const tokConfig = existsSync(configFile) ? JSON.parse(readFileSync(configFile, 'utf8')) : {};
    writeFileSync(join(staging, 'tokenizer_config.json'), JSON.stringify({ ...tokConfig, model_max_length: maxLength }, null, 2) + '\n');
    const prefix = t.model.task === 'search' ? '' : 'roberta.';
    return await saveCheckpoint({ dir: staging, rawConfig: { ...t.rawConfig, ...extraConfig }, model: t.model, prefix, extras: new Map() }, outDir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** sha256 of a file's bytes. */
export function fileSha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}
