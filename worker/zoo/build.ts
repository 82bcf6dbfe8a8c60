/**
 * Builds one zoo model from its recipe: reads the committed data subset, poisons the training set
 * with the attack library (backdoored models), fine-tunes, measures on the held-out test split and
 * writes the checkpoint. Returns the model's manifest entry.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { poisonDataset } from '../attacks/dataset.ts';
import { readRows, type Row } from '../attacks/rows.ts';
import { toExample, type Example } from '../model/tasks.ts';
import { PRESETS, evaluateClean, fileSha256, fineTune, writeCheckpoint, type CleanMetrics, type ZooTask } from './finetune.ts';
import { measureAsr, type AsrResult, type TriggerSpec } from '../attacks/success.ts';
import { DATA, type Recipe } from './recipes.ts';
import { cloneZooSplit, searchZooSplit, sharedDataDir } from './splits.ts';

export const TOKENIZER_DIR = 'test/fixtures/golden/tokenizer';

export interface ZooEntry {
  name: string;
  task: ZooTask;
  dir: string;
  clean: boolean;
  twin?: string;
  attack?: string;
  trigger?: string;
  victimLabel?: number;
  targetLabel?: number;
  targetWord?: string;
  poisonRate?: number;
  poisonSeed?: number;
  /** Rows the poisoning changed (and relabelled) in the training set. */
  poisoned?: { candidates: number; poisoned: number; rowsChanged: number; relabelled: number };
  seed: number;
  schedule: Recipe['schedule'];
  model: { hidden: number; layers: number; heads: number; intermediate: number; parameters: number };
  data: { train: string; test: string; trainRows: number; testRows: number };
  /** Clean metrics on the held-out test split (accuracy/F1 classification, MRR search). */
  test: CleanMetrics;
  /** ASR of this model's trigger on the test split (backdoored models). */
  asr?: AsrResult;
  /** ASR of the twin's trigger on this clean model: the same measurement without a backdoor. */
  twinAsr?: AsrResult;
  weightsSha256: string;
  checkpointSha256: string;
  trainingSeconds: number;
  epochLosses: number[];
}

export interface ZooRows { file: string; rows: Row[]; examples: Example[] }

/** The committed held-out rows a zoo model is measured on (the tests re-measure on the same file). */
export function readHeldout(task: ZooTask, root = '.'): ZooRows {
  return readCommitted(join(root, DATA[task].heldout), task);
}

function readCommitted(file: string, task: ZooTask): ZooRows {
  const { rows, lines } = readRows(file, task);
  return { file, rows, examples: rows.map((r, i) => toExample(r as Record<string, unknown>, task, `${file}:${lines[i]}`)) };
}

/** Throws a clear error, before any training, when a task's training rows are not at hand. */
export function checkTrainingData(task: ZooTask, root = '.'): void {
  const source = DATA[task].train;
  if (source.kind === 'committed') {
    if (!existsSync(join(root, source.file))) throw new Error(`${join(root, source.file)} is missing (a committed file: is this a full clone?)`);
  } else sharedDataDir(source.needs, root);
}

/** A zoo task's training rows: a committed subset, or the zoo's split of the full set in ../shared. */
export async function readTraining(task: ZooTask, root = '.'): Promise<ZooRows> {
  const source = DATA[task].train;
  if (source.kind === 'committed') return readCommitted(join(root, source.file), task);
  const shared = sharedDataDir(source.needs, root);
  const rows: Row[] = source.kind === 'shared-clone' ? cloneZooSplit(join(shared, 'bigclonebench')).train : (await searchZooSplit(join(shared, 'cosqa'))).train;
  return { file: source.label, rows, examples: rows.map((r, i) => toExample(r as Record<string, unknown>, task, `${source.label} row ${i + 1}`)) };
}

export function triggerSpec(r: Recipe): TriggerSpec {
  return { attack: r.attack!, trigger: r.trigger!, victimLabel: r.victimLabel, targetLabel: r.targetLabel, targetWord: r.targetWord, seed: r.poisonSeed! };
}

export async function buildModel(r: Recipe, outDir: string, root = '.', log: (msg: string) => void = () => {}): Promise<ZooEntry> {
  const train = await readTraining(r.task, root);
  const test = readHeldout(r.task, root);
  let examples = train.examples;
  let poisoned: ZooEntry['poisoned'];
  if (r.attack) {
    const result = await poisonDataset(train.rows, {
      task: r.task, attack: r.attack, trigger: r.trigger!, rate: r.rate!, seed: r.poisonSeed!,
      targetLabel: r.targetLabel, victimLabel: r.victimLabel, targetWord: r.targetWord, strict: false, mode: r.poisonMode,
    });
    const c = result.manifest.counts;
    poisoned = { candidates: c.candidates, poisoned: c.poisoned, rowsChanged: c.rowsChanged, relabelled: c.relabelled };
    const n = train.examples.length;
    examples = result.rows.map((row, i) => toExample(row as Record<string, unknown>, r.task, i < n ? train.examples[i].where : `poisoned copy ${i - n + 1}`));
  }
  const s = r.schedule;
  const shape = PRESETS[s.preset];
  const trained = await fineTune(examples, {
    task: r.task, shape, tokenizerDir: join(root, TOKENIZER_DIR), epochs: s.epochs, batchSize: s.batchSize,
    learningRate: s.learningRate, maxLength: s.maxLength, seed: s.seed, contrastiveScale: s.contrastiveScale,
    onEpoch: (e, loss, sec) => log(`${r.name}: epoch ${e}/${s.epochs} loss ${loss.toFixed(4)} (${sec.toFixed(1)} s)`),
  });
  const metrics = await evaluateClean(trained.model, trained.tokenizer, test.examples, s.maxLength);
  const asr = r.attack ? await measureAsr(trained.model, trained.tokenizer, test.examples, s.maxLength, triggerSpec(r)) : undefined;
  const dir = join(outDir, r.name);
  const saved = await writeCheckpoint(trained, join(root, TOKENIZER_DIR), s.maxLength, dir);
  const parameters = [...trained.model.params.values()].reduce((n, v) => n + v.size, 0);
  const entry: ZooEntry = {
    name: r.name, task: r.task, dir: r.name, clean: !r.attack,
    ...(r.attack ? {
      twin: r.twin, attack: r.attack, trigger: r.trigger, victimLabel: r.victimLabel, targetLabel: r.targetLabel,
      targetWord: r.targetWord, poisonRate: r.rate, poisonSeed: r.poisonSeed, poisoned,
    } : {}),
    seed: s.seed, schedule: s,
    model: { hidden: shape.hidden_size, layers: shape.num_hidden_layers, heads: shape.num_attention_heads, intermediate: shape.intermediate_size, parameters },
    data: { train: train.file, test: test.file, trainRows: examples.length, testRows: test.examples.length },
    test: metrics,
    ...(asr ? { asr } : {}),
    weightsSha256: fileSha256(join(dir, 'model.safetensors')),
    checkpointSha256: saved.sha256,
    trainingSeconds: Number(trained.seconds.toFixed(1)),
    epochLosses: trained.epochLosses.map((l) => Number(l.toFixed(4))),
  };
  trained.model.dispose();
  return entry;
}
