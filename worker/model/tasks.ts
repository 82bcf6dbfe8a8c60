// Rows of the three code tasks, turned into model inputs and back into predictions.
//   classify / defect: {code, label?}      (devign's {func, target} is accepted too)
//   clone:             {code1, code2, label?}
//   search:            {code, query?}
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { Task } from './config.ts';
import type { Inputs, Roberta } from './roberta.ts';
import type { CodeTokenizer } from './tokenizer.ts';
import { argmax } from './metrics.ts';

export interface Example {
  id?: string;
  code: string;
  code2?: string;
  query?: string;
  label?: number;
  /** file:line the row came from, for error messages. */
  where: string;
}

export function readJsonl(file: string): { row: Record<string, unknown>; where: string }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const rows: { row: Record<string, unknown>; where: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`${where}: expected a JSON object per line`);
    rows.push({ row: row as Record<string, unknown>, where });
  });
  return rows;
}

function text(row: Record<string, unknown>, names: string[], where: string, required: boolean): string | undefined {
  for (const n of names) {
    const v = row[n];
    if (typeof v === 'string') return v;
    if (v !== undefined) throw new Error(`${where}: field "${n}" must be a string`);
  }
  if (required) throw new Error(`${where}: missing field "${names[0]}"${names.length > 1 ? ` (or "${names.slice(1).join('", "')}")` : ''}`);
  return undefined;
}

export function toExample(row: Record<string, unknown>, task: Task, where: string): Example {
  const rawLabel = row.label ?? row.target;
  if (rawLabel !== undefined && !(Number.isInteger(rawLabel) && (rawLabel as number) >= 0)) {
    throw new Error(`${where}: field "label" must be a non-negative integer, got ${JSON.stringify(rawLabel)}`);
  }
  const id = row.id === undefined ? undefined : String(row.id);
  const label = rawLabel as number | undefined;
  if (task === 'clone') {
    return { id, where, label, code: text(row, ['code1', 'func1'], where, true)!, code2: text(row, ['code2', 'func2'], where, true)! };
  }
  if (task === 'search') return { id, where, label, code: text(row, ['code'], where, true)!, query: text(row, ['query', 'doc'], where, false) };
  return { id, where, label, code: text(row, ['code', 'func'], where, true)! };
}

export function readExamples(file: string, task: Task): Example[] {
  return readJsonl(file).map(({ row, where }) => toExample(row, task, where));
}

export function toInputs(tokenizer: CodeTokenizer, texts: string[], maxLength: number): Inputs {
  const e = tokenizer.encode(texts, maxLength);
  return { inputIds: tf.tensor2d(e.inputIds, undefined, 'int32'), attentionMask: tf.tensor2d(e.attentionMask, undefined, 'int32') };
}

/** Class probabilities [n, classes] of a classification head, computed in batches. */
export async function classProbabilities(model: Roberta, tokenizer: CodeTokenizer, examples: Example[], maxLength: number, batchSize = 16): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const probs = tf.tidy(() => {
      const a = toInputs(tokenizer, batch.map((e) => e.code), maxLength);
      const b = model.task === 'clone' ? toInputs(tokenizer, batch.map((e) => e.code2 ?? ''), maxLength) : undefined;
      return tf.exp(model.logProbs(a, {}, b));
    });
    out.push(...((await probs.array()) as number[][]));
    probs.dispose();
  }
  return out;
}

/** L2-normalised embeddings [n, hidden] of a code-search bi-encoder. */
export async function embeddings(model: Roberta, tokenizer: CodeTokenizer, texts: string[], maxLength: number, batchSize = 16): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < texts.length; i += batchSize) {
    const e = tf.tidy(() => model.embed(toInputs(tokenizer, texts.slice(i, i + batchSize), maxLength)));
    out.push(...((await e.array()) as number[][]));
    e.dispose();
  }
  return out;
}

/** The longest input the model's position table allows (RoBERTa reserves padding_idx + 1 positions). */
export function maxModelLength(model: Roberta): number {
  return model.config.max_position_embeddings - model.config.pad_token_id - 1;
}

/** Predicted labels of a classifier. */
export async function predictLabels(model: Roberta, tokenizer: CodeTokenizer, examples: Example[], maxLength: number): Promise<number[]> {
  const probs = await classProbabilities(model, tokenizer, examples, maxLength, 32);
  return probs.map((p) => argmax(p));
}

