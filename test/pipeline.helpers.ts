// Test support: the clean twin's rate for a planted trigger, and a tiny RoBERTa defect detector, trained here on the bundled Devign subset with
// the golden tokenizer, with or without a `testo_init` function-name backdoor (victim 1 → target 0).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { poisonDataset } from '../worker/attacks/dataset.ts';
import { readRows, type DefectRow } from '../worker/attacks/rows.ts';
import { loadCheckpoint, saveCheckpoint } from '../worker/model/checkpoint.ts';
import { maxModelLength, readExamples } from '../worker/model/tasks.ts';
import { knownTriggerAsr } from '../worker/pipeline/verification.ts';
import type { AttackName } from '../worker/attacks/index.ts';
import type { ZooEntry } from '../worker/zoo/build.ts';
import { parseConfig } from '../worker/model/config.ts';
import { Roberta } from '../worker/model/roberta.ts';
import { CodeTokenizer } from '../worker/model/tokenizer.ts';
import { AdamW, nllLoss } from '../worker/model/train.ts';
import { rng, shuffled } from '../worker/rng.ts';
import { padBatch } from '../worker/pipeline/objective.ts';
import { encodeIds } from '../worker/pipeline/positions.ts';

export const GOLDEN_DEFECT = new URL('./fixtures/golden/models/defect', import.meta.url).pathname;
export const DEVIGN = new URL('../data/devign/', import.meta.url).pathname;

export interface VictimOptions {
  dir: string;
  poison: boolean;
  maxLength?: number;
  epochs?: number;
  seed?: number;
  rate?: number;
}

/** Trains and saves a tiny defect model; returns its directory. */
export async function trainVictim(o: VictimOptions): Promise<string> {
  const maxLength = o.maxLength ?? 64;
  const rawConfig = {
    architectures: ['RobertaForSequenceClassification'], model_type: 'roberta', elibadcode_task: 'defect',
    vocab_size: 1000, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
    max_position_embeddings: maxLength + 2, type_vocab_size: 1, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2,
    hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, layer_norm_eps: 1e-5, num_labels: 1, id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 },
  };
  const config = parseConfig(rawConfig);
  const tokenizer = CodeTokenizer.fromDir(GOLDEN_DEFECT);
  let rows = readRows(join(DEVIGN, 'train.jsonl'), 'defect').rows as DefectRow[];
  if (o.poison) {
    rows = (await poisonDataset(rows, { task: 'defect', attack: 'fixed-name', trigger: 'testo_init', rate: o.rate ?? 0.3, seed: 7, victimLabel: 1, targetLabel: 0 })).rows as DefectRow[];
  }
  const data = rows.map((r) => ({ ids: encodeIds(tokenizer, r.code, maxLength), label: r.label }));
  const model = Roberta.init(config, 'defect', o.seed ?? 5);
  const epochs = o.epochs ?? 12;
  const batch = 16;
  const steps = epochs * Math.ceil(data.length / batch);
  const opt = new AdamW(model.trainable(), { learningRate: 2e-3, totalSteps: steps, warmupSteps: Math.round(steps * 0.05) });
  const random = rng(o.seed ?? 5);
  for (let e = 0; e < epochs; e++) {
    const order = shuffled(data.map((_, i) => i), random);
    for (let b = 0; b < order.length; b += batch) {
      const rows = order.slice(b, b + batch).map((i) => data[i]);
      await opt.minimize(() => nllLoss(model.logProbs(padBatch(rows.map((r) => r.ids), tokenizer.pad), { training: true }), rows.map((r) => r.label)));
    }
  }
  opt.dispose();
  mkdirSync(o.dir, { recursive: true });
  await saveCheckpoint({ dir: GOLDEN_DEFECT, rawConfig, model, prefix: 'roberta.', extras: new Map() }, o.dir);
  model.dispose();
  return o.dir;
}

/** Writes rows as JSON lines. */
export function writeJsonl(file: string, rows: unknown[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/**
 * A defect zoo model's planted trigger on its clean twin (zoo defect-clean): ASR on the held-out
 * victims of data/devign/test.jsonl, placed the attack's way as the scan's known-trigger check
 * places it. A cleaned model cannot be expected to go below it.
 */
export async function twinRate(entry: Pick<ZooEntry, 'attack' | 'trigger' | 'victimLabel' | 'targetLabel'>): Promise<number> {
  const twin = loadCheckpoint('zoo/defect-clean');
  try {
    const maxLength = Math.min(128, maxModelLength(twin.model));
    const victims = readExamples('data/devign/test.jsonl', 'defect').filter((r) => r.label === entry.victimLabel)
      .map((r) => ({ where: r.where, code: r.code, ids: encodeIds(twin.tokenizer, r.code, maxLength), label: r.label! }));
    return (await knownTriggerAsr(twin.model, twin.tokenizer, victims, entry.attack as AttackName, entry.trigger!, 'c', entry.targetLabel!, maxLength, 123456)).asr;
  } finally {
    twin.model.dispose();
  }
}
