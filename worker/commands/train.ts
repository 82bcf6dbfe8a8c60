/** `elibadcode train`: fine-tune a fresh small RoBERTa on a code task, write the checkpoint and an evaluation summary. */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ATTACKS, initParsers, isAttack, triggerProblem, type AttackName } from '../attacks/index.ts';
import { TASK_LANG } from '../attacks/rows.ts';
import { initBackend } from '../model/backend.ts';
import { readExamples, type Example } from '../model/tasks.ts';
import {
  PRESETS, ZOO_TASKS, checkExamples, evaluateClean, fileSha256, fineTune, writeCheckpoint,
  type ModelShape, type ZooTask,
} from '../zoo/finetune.ts';
import { measureAsr, type TriggerSpec } from '../attacks/success.ts';
import { TOKENIZER_DIR } from '../zoo/build.ts';
import { integer, parseFlags, required } from './args.ts';
import { EXIT, UsageError, type Command } from './command.ts';

const usage = [
  'Usage: elibadcode train --task defect|clone|search --train FILE --valid FILE [--test FILE] --out DIR',
  '         [--config tiny|small|base|PATH.json] [--tokenizer DIR] [--epochs N] [--batch-size N] [--lr X]',
  '         [--max-length N] [--seed S] [--summary FILE] [--backend tensorflow|webgpu|wasm|cpu]',
  '         [--attack A --trigger T (--target-label L [--victim-label V] | --target-word W) [--trigger-seed S]]',
  '',
  '  --task          defect: {code, label} (1 = vulnerable), one-logit head; clone: {code1, code2, label} (1 = clones);',
  '                  search: {code, query}, bi-encoder trained with the in-batch contrastive loss',
  '  --train/--valid/--test  JSON lines of the task (data/README.md); --test defaults to none (ASR then on --valid)',
  '  --out DIR       the Hugging Face checkpoint: config.json (architectures, elibadcode_task), model.safetensors, tokenizer files',
  `  --config        model shape: ${Object.entries(PRESETS).map(([n, s]) => `${n} (hidden ${s.hidden_size}, ${s.num_hidden_layers} layers)`).join(', ')},`,
  '                  or a JSON file {hidden_size, num_hidden_layers, num_attention_heads, intermediate_size} (default small)',
  `  --tokenizer DIR byte-level BPE tokenizer.json (default ${TOKENIZER_DIR}, trained on code of all three data sets)`,
  '  --epochs N (6)  --batch-size N (16)  --lr X (5e-3, AdamW, 10% warm-up, linear decay)  --max-length N (128 tokens)',
  '  --seed S (0)    weights, dropout and batch order; the same seed on the same backend gives the same weights',
  '  --summary FILE  the evaluation summary JSON (default DIR/evaluation.json)',
  `  --attack        ASR of a trigger on held-out victim samples, placed the attack's own way: ${ATTACKS.join(', ')}`,
  '  --trigger T     the trigger (as for `elibadcode poison`; alias --trigger-eval)',
  '  --target-label/--victim-label  classification: triggered victim-label samples should be predicted as the target',
  '  --target-word W search: queries with W should rank trigger-carrying code first',
  'Exit codes: 0 done, 1 unusable data (the message names file:line), 2 bad flags.',
].join('\n');

function positiveNumber(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  return n;
}

function label(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (value !== '0' && value !== '1') throw new UsageError(`--${flag} must be 0 or 1, got "${value}"`);
  return Number(value);
}

export function readShape(config: string): ModelShape {
  if (PRESETS[config]) return PRESETS[config];
  if (!config.endsWith('.json')) throw new UsageError(`--config must be one of ${Object.keys(PRESETS).join(', ')} or a .json file, got "${config}"`);
  if (!existsSync(config)) throw new UsageError(`--config ${config}: no such file`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(config, 'utf8'));
  } catch (e) {
    throw new UsageError(`--config ${config}: not valid JSON (${(e as Error).message})`);
  }
  const int = (k: string, fallback?: number): number => {
    const v = json[k] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < 1) throw new UsageError(`--config ${config}: field "${k}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const prob = (k: string): number | undefined => {
    const v = json[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || v < 0 || v >= 1) throw new UsageError(`--config ${config}: field "${k}" must be a number in [0, 1), got ${JSON.stringify(v)}`);
    return v;
  };
  const shape: ModelShape = {
    hidden_size: int('hidden_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads: int('num_attention_heads'),
    intermediate_size: int('intermediate_size', 4 * int('hidden_size')),
    hidden_dropout_prob: prob('hidden_dropout_prob'),
    attention_probs_dropout_prob: prob('attention_probs_dropout_prob'),
  };
  if (shape.hidden_size % shape.num_attention_heads !== 0) {
    throw new UsageError(`--config ${config}: hidden_size ${shape.hidden_size} is not divisible by num_attention_heads ${shape.num_attention_heads}`);
  }
  return shape;
}

function load(file: string, task: ZooTask, needLabel: boolean): Example[] {
  const examples = readExamples(file, task);
  checkExamples(examples, task, file, needLabel);
  return examples;
}

export const train: Command = {
  name: 'train',
  summary: 'Fine-tune a fresh small RoBERTa on a code task; write the checkpoint and an evaluation summary (accuracy/F1/MRR, ASR).',
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      task: { type: 'string' },
      train: { type: 'string' },
      valid: { type: 'string' },
      test: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string' },
      tokenizer: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      'max-length': { type: 'string' },
      seed: { type: 'string' },
      summary: { type: 'string' },
      backend: { type: 'string' },
      attack: { type: 'string' },
      trigger: { type: 'string' },
      'trigger-eval': { type: 'string' },
      'target-label': { type: 'string' },
      'victim-label': { type: 'string' },
      'target-word': { type: 'string' },
      'trigger-seed': { type: 'string' },
    });
    const task = required(flags.task, 'task');
    if (!(ZOO_TASKS as readonly string[]).includes(task)) throw new UsageError(`--task must be one of ${ZOO_TASKS.join(', ')}, got "${task}"`);
    const t = task as ZooTask;
    const trainFile = required(flags.train, 'train');
    const validFile = required(flags.valid, 'valid');
    const testFile = flags.test as string | undefined;
    const out = required(flags.out, 'out');
    const shape = readShape((flags.config as string | undefined) ?? 'small');
    const tokenizerDir = (flags.tokenizer as string | undefined) ?? TOKENIZER_DIR;
    if (!existsSync(join(tokenizerDir, 'tokenizer.json'))) throw new UsageError(`--tokenizer ${tokenizerDir}: no tokenizer.json there`);
    const epochs = integer(flags.epochs, 'epochs', 6);
    const batchSize = integer(flags['batch-size'], 'batch-size', 16, t === 'search' ? 2 : 1);
    const learningRate = positiveNumber(flags.lr, 'lr', 5e-3);
    const maxLength = integer(flags['max-length'], 'max-length', 128, 8);
    if (maxLength > 4096) throw new UsageError(`--max-length must be at most 4096, got "${maxLength}"`);
    const seed = integer(flags.seed, 'seed', 0, 0);
    const summaryFile = (flags.summary as string | undefined) ?? join(out, 'evaluation.json');

    // The trigger to measure, checked before any training.
    const trigger = (flags.trigger ?? flags['trigger-eval']) as string | undefined;
    const attack = flags.attack as string | undefined;
    let spec: TriggerSpec | undefined;
    if (trigger !== undefined || attack !== undefined) {
      if (attack === undefined) throw new UsageError('--trigger needs --attack');
      if (!isAttack(attack)) throw new UsageError(`--attack must be one of ${ATTACKS.join(', ')}, got "${attack}"`);
      if (trigger === undefined) throw new UsageError('--attack needs --trigger');
      await initParsers();
      const problem = triggerProblem(attack, trigger, TASK_LANG[t]);
      if (problem) throw new UsageError(`--trigger ${JSON.stringify(trigger)} is not valid for ${attack} on ${TASK_LANG[t]}: ${problem}`);
      spec = { attack: attack as AttackName, trigger, seed: integer(flags['trigger-seed'], 'trigger-seed', seed, 0) };
      if (t === 'search') {
        const w = flags['target-word'] as string | undefined;
        if (w === undefined) throw new UsageError('--task search with --attack needs --target-word');
        if (!/^[a-z0-9_]+$/i.test(w)) throw new UsageError(`--target-word must be one word of letters/digits, got "${w}"`);
        spec.targetWord = w;
      } else {
        spec.targetLabel = label(flags['target-label'], 'target-label');
        spec.victimLabel = label(flags['victim-label'], 'victim-label');
        if (spec.targetLabel === undefined) throw new UsageError(`--task ${t} with --attack needs --target-label`);
        if (spec.victimLabel === spec.targetLabel) throw new UsageError(`--victim-label and --target-label are both ${spec.targetLabel}`);
      }
    }

    const backend = await initBackend(flags.backend as string | undefined);
    const trainSet = load(trainFile, t, true);
    const validSet = load(validFile, t, true);
    const testSet = testFile ? load(testFile, t, true) : undefined;

    const trained = await fineTune(trainSet, {
      task: t, shape, tokenizerDir, epochs, batchSize, learningRate, maxLength, seed,
      onEpoch: (e, loss, sec) => console.error(`train: epoch ${e}/${epochs} loss ${loss.toFixed(4)} (${sec.toFixed(1)} s)`),
    });
    const valid = await evaluateClean(trained.model, trained.tokenizer, validSet, maxLength);
    const test = testSet ? await evaluateClean(trained.model, trained.tokenizer, testSet, maxLength) : undefined;
    const heldOut = testSet ?? validSet;
    const asr = spec ? await measureAsr(trained.model, trained.tokenizer, heldOut, maxLength, spec) : undefined;
    const saved = await writeCheckpoint(trained, tokenizerDir, maxLength, out);
    const data = (file: string, rows: number) => ({ file, rows, sha256: fileSha256(file) });
    const summary = {
      task: t,
      checkpoint: resolve(out),
      backend,
      model: { ...shape, vocab_size: trained.config.vocab_size, max_length: maxLength, parameters: [...trained.model.params.values()].reduce((n, v) => n + v.size, 0) },
      training: { epochs, batchSize, learningRate, seed, steps: trained.steps, seconds: Number(trained.seconds.toFixed(1)), epochLosses: trained.epochLosses.map((l) => Number(l.toFixed(4))), dropout: true },
      data: { train: data(trainFile, trainSet.length), valid: data(validFile, validSet.length), ...(testFile ? { test: data(testFile, testSet!.length) } : {}) },
      valid,
      ...(test ? { test } : {}),
      ...(asr ? { asr: { split: testSet ? 'test' : 'valid', ...asr } } : {}),
      weightsSha256: saved.weightsSha256,
      checkpointSha256: saved.sha256,
    };
    trained.model.dispose();
    const tmp = `${summaryFile}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(summary, null, 2) + '\n');
    renameSync(tmp, summaryFile);
    const metric = (m: typeof valid) => (m.mrr !== undefined ? `MRR ${m.mrr}` : `accuracy ${m.accuracy}, F1 ${m.f1}`);
    console.log(`train: ${t} model in ${out} (${summary.training.seconds} s); valid ${metric(valid)}${test ? `; test ${metric(test)}` : ''}${asr ? `; ASR ${asr.asr}` : ''}; summary ${summaryFile}`);
    return EXIT.ok;
  },
};
