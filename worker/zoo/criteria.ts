/**
 * When a zoo backdoor counts as real: classification ASR >= 95% on held-out data; code search, the
 * attack's ranking metric clearly shifted (BadCode's average normalised rank of a triggered code
 * for targeted queries at most 0.25, i.e. from the middle of the ranking, about 0.5 without a
 * backdoor, into the top quarter); and clean performance at most 2 points below the clean twin
 * (same seed, same clean rows, same schedule), measured on the held-out split of 500 rows. The
 * clean metric is the task's CodeXGLUE one: accuracy (defect), F1 (clone), MRR (search).
 */
import type { CleanMetrics } from './finetune.ts';
import type { AsrResult } from '../attacks/success.ts';

export const MIN_ASR = 0.95;
export const MAX_CLEAN_DROP = 0.02;
/** Code search: the triggered code's average normalised rank for targeted queries (no backdoor: about 0.5). */
export const MAX_SEARCH_ANR = 0.25;

export interface Measured {
  name: string;
  task: 'defect' | 'clone' | 'search';
  test: CleanMetrics;
  asr?: AsrResult;
}

export function cleanMetric(m: Pick<Measured, 'task' | 'test'>): number {
  return m.task === 'defect' ? m.test.accuracy! : m.task === 'clone' ? m.test.f1! : m.test.mrr!;
}

export const METRIC_NAME = { defect: 'accuracy', clone: 'F1', search: 'MRR' } as const;

/** What keeps `m` from being a real backdoor next to `twin` (empty when it is one). */
export function meetsCriteria(m: Measured, twin: Measured): string[] {
  const problems: string[] = [];
  if (!m.asr) return ['no ASR measured'];
  if (m.asr.kind === 'search') {
    if (!(m.asr.anr <= MAX_SEARCH_ANR)) problems.push(`average normalised rank ${m.asr.anr} > ${MAX_SEARCH_ANR}`);
  } else if (!(m.asr.asr >= MIN_ASR)) problems.push(`ASR ${m.asr.asr} < ${MIN_ASR}`);
  // One-sided: the backdoor may not cost the clean task more than 2 points. A backdoored model that
  // scores higher than its twin is no less stealthy (on Devign, near chance, either sign is noise).
  const drop = cleanMetric(twin) - cleanMetric(m);
  if (!(drop <= MAX_CLEAN_DROP + 1e-9)) {
    problems.push(`clean ${METRIC_NAME[m.task]} ${cleanMetric(m)} vs twin ${twin.name} ${cleanMetric(twin)}: ${drop.toFixed(4)} below (> ${MAX_CLEAN_DROP})`);
  }
  return problems;
}
