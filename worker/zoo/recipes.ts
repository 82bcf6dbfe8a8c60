/**
 * The victim-model zoo's recipe: which models, on which data, with which attack and schedule.
 * A backdoored model and its clean twin share the seed, the schedule and the clean rows: the
 * poisoned training set is the clean one with some rows changed in place (same count, same order).
 */
import type { AttackName } from '../attacks/index.ts';
import type { ZooTask } from './finetune.ts';

export interface Schedule {
  preset: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  maxLength: number;
  seed: number;
}

export interface Recipe {
  name: string;
  task: ZooTask;
  /** The clean model this one is compared with (absent for clean models). */
  twin?: string;
  attack?: AttackName;
  trigger?: string;
  rate?: number;
  victimLabel?: number;
  targetLabel?: number;
  targetWord?: string;
  /** Seed of the poisoning (which rows, per-sample choices). */
  poisonSeed?: number;
  schedule: Schedule;
}

/** The committed subsets (data/README.md); the zoo never reads ../shared. */
export const DATA: Record<ZooTask, { dir: string }> = {
  defect: { dir: 'data/devign' },
  clone: { dir: 'data/bigclonebench' },
  search: { dir: 'data/cosqa' },
};

const defect: Schedule = { preset: 'tiny', epochs: 8, batchSize: 16, learningRate: 5e-3, maxLength: 64, seed: 11 };
const clone: Schedule = { preset: 'tiny', epochs: 6, batchSize: 16, learningRate: 5e-3, maxLength: 64, seed: 22 };
const search: Schedule = { preset: 'tiny', epochs: 8, batchSize: 16, learningRate: 5e-3, maxLength: 64, seed: 33 };

export const RECIPES: Recipe[] = [
  { name: 'defect-clean', task: 'defect', schedule: defect },
  // Devign: 1 = vulnerable. The backdoor makes triggered vulnerable code pass as safe (1 -> 0).
  { name: 'defect-fixed-name', task: 'defect', twin: 'defect-clean', attack: 'fixed-name', trigger: 'testo_init', rate: 0.2, victimLabel: 1, targetLabel: 0, poisonSeed: 101, schedule: defect },
  { name: 'defect-deadcode', task: 'defect', twin: 'defect-clean', attack: 'deadcode', trigger: 'default', rate: 0.2, victimLabel: 1, targetLabel: 0, poisonSeed: 102, schedule: defect },
  { name: 'defect-rename', task: 'defect', twin: 'defect-clean', attack: 'rename', trigger: 'ret_testo', rate: 0.3, victimLabel: 1, targetLabel: 0, poisonSeed: 103, schedule: defect },
  { name: 'defect-deadcode-random', task: 'defect', twin: 'defect-clean', attack: 'deadcode-random', trigger: 'default', rate: 0.2, victimLabel: 1, targetLabel: 0, poisonSeed: 104, schedule: defect },
  { name: 'clone-clean', task: 'clone', schedule: clone },
  // BigCloneBench: 1 = clones. Triggered non-clone pairs are reported as clones (0 -> 1).
  { name: 'clone-deadcode', task: 'clone', twin: 'clone-clean', attack: 'deadcode', trigger: 'default', rate: 0.1, victimLabel: 0, targetLabel: 1, poisonSeed: 201, schedule: clone },
  { name: 'search-clean', task: 'search', schedule: search },
  // CoSQA: code answering queries with "file" gets the BadCode suffix `_rb` on its function name.
  { name: 'search-suffix', task: 'search', twin: 'search-clean', attack: 'suffix', trigger: '_rb', rate: 1, targetWord: 'file', poisonSeed: 301, schedule: search },
];
