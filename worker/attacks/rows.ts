/**
 * The JSONL row schemas the attacks read and write, one per task (data/README.md documents them):
 *
 * - defect (C, Devign):          {"id": str, "code": str, "label": 0|1}          label 1 = vulnerable
 * - clone (Java, BigCloneBench): {"id": str, "id1": str, "id2": str, "code1": str, "code2": str, "label": 0|1}
 *                                label 1 = clones; id1/id2 name the functions, so a function that
 *                                occurs in several pairs is poisoned the same way in each
 * - search (Python, CoSQA):      {"id": str, "code": str, "query": str, "label"?: 0|1}
 *                                label 1 (or absent) = the code answers the query
 *
 * Other fields are kept as they are.
 */
import { readFileSync } from 'node:fs';
import type { Lang } from './parse.ts';

export type Task = 'defect' | 'clone' | 'search';
export const TASKS: readonly Task[] = ['defect', 'clone', 'search'];
export const TASK_LANG: Record<Task, Lang> = { defect: 'c', clone: 'java', search: 'python' };

export interface DefectRow { id: string; code: string; label: number; [k: string]: unknown }
export interface CloneRow { id: string; id1: string; id2: string; code1: string; code2: string; label: number; [k: string]: unknown }
export interface SearchRow { id: string; code: string; query: string; label?: number; [k: string]: unknown }
export type Row = DefectRow | CloneRow | SearchRow;

export class RowError extends Error {
  override name = 'RowError';
}

const REQUIRED: Record<Task, Record<string, 'string' | 'label' | 'label?'>> = {
  defect: { id: 'string', code: 'string', label: 'label' },
  clone: { id: 'string', id1: 'string', id2: 'string', code1: 'string', code2: 'string', label: 'label' },
  search: { id: 'string', code: 'string', query: 'string', label: 'label?' },
};

export function isTask(s: string): s is Task {
  return (TASKS as readonly string[]).includes(s);
}

/** Checks one parsed row against its task's schema; `where` names it in errors (e.g. `train.jsonl:12`). */
export function validateRow(value: unknown, task: Task, where: string): Row {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RowError(`${where}: a row must be a JSON object`);
  const row = value as Record<string, unknown>;
  const idText = typeof row.id === 'string' || typeof row.id === 'number' ? ` (id ${row.id})` : '';
  for (const [field, kind] of Object.entries(REQUIRED[task])) {
    const v = row[field];
    if (v === undefined || v === null) {
      if (kind === 'label?') continue;
      throw new RowError(`${where}${idText}: row is missing field "${field}" needed by task ${task} (fields: ${Object.keys(REQUIRED[task]).join(', ')})`);
    }
    if (kind === 'string') {
      if (field === 'id' && typeof v === 'number') continue; // numeric ids are accepted as they are
      if (typeof v !== 'string') throw new RowError(`${where}${idText}: field "${field}" must be a string, got ${JSON.stringify(v)?.slice(0, 40)}`);
      if (field.startsWith('code') && v.trim() === '') throw new RowError(`${where}${idText}: field "${field}" is empty`);
    } else if (!Number.isInteger(v)) {
      throw new RowError(`${where}${idText}: field "${field}" must be an integer label, got ${JSON.stringify(v)?.slice(0, 40)}`);
    }
  }
  return row as Row;
}

export interface ReadRows {
  rows: Row[];
  /** 1-based line of each row in the file. */
  lines: number[];
}

/** Reads and validates a JSONL file; blank lines are skipped; errors name `file:line`. */
export function readRows(file: string, task: Task): ReadRows {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RowError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const rows: Row[] = [];
  const lines: number[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new RowError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const row = validateRow(value, task, where);
    const id = String(row.id);
    const dup = seen.get(id);
    if (dup !== undefined) throw new RowError(`${where}: id ${id} repeats the row at line ${dup}`);
    seen.set(id, i + 1);
    rows.push(row);
    lines.push(i + 1);
  });
  if (rows.length === 0) throw new RowError(`${file}: no rows`);
  return { rows, lines };
}

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
}
