// The scan pipeline, end to end: load, split the clean data, filter the vocabulary (A), choose
// positions (B), invert (C) and anchor (D) for every (victim, target, position mode) option, keep
// the lowest-loss option, decide a verdict, unlearn (E), verify, and write the cleaned model, the
// full report and the status summary.
import { join, resolve } from 'node:path';
import { numLabels } from '../model/config.ts';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../model/checkpoint.ts';
import { readExamples, maxModelLength, type Example } from '../model/tasks.ts';
import { backendDevice, initBackend } from '../model/backend.ts';
import { makeRng, pick, rng, shuffled } from '../rng.ts';
import { initParsers, isAttack, triggerProblem, type AttackName } from '../attacks/index.ts';
import { WorkerErrorReason } from '../../crds/scan-summary.ts';
import { triggerVocabulary } from './vocabulary.ts';
import { bodyStartPositions, encodeIds, languageOf, samplePositions, type PositionChoice, type Sample, type ScanTask } from './positions.ts';
import { ClassificationObjective, SearchObjective, targetLogProbs, type Objective } from './objective.ts';
import { invert } from './inversion.ts';
import { anchor } from './anchoring.ts';
import { CALIBRATED_POSITION_MODE, CALIBRATION, DEFAULT_THRESHOLDS, SINGLE_TOKEN_SCORE, decide } from './verdict.ts';
import { adversaryProblem, unlearn, type Placement, type Trainable, type UnlearnOptions } from './unlearning.ts';
import { cleanMetrics, knownSearchAsr, knownTriggerAsr, searchAsr, tokenTriggerAsr, type AsrResult, type KnownSearchAsr, type SearchAsr } from './verification.ts';
import { ScanReport, summaryOf, tokensThatMatterWhole, writeAtomically, type OptionReport } from './report.ts';
import { makeProgress, type Progress } from './progress.ts';


/** An error with the reason the operator reports (crds/scan-summary.ts WorkerErrorReason). */
export class ScanError extends Error {
  readonly reason: WorkerErrorReason;
  constructor(reason: WorkerErrorReason, message: string) {
    super(message);
    this.reason = reason;
    this.name = 'ScanError';
  }
}

export type PositionMode = 'SampleSpecific' | 'Fixed' | 'BodyStart';
/** What --position-mode accepts (and its help lists): a mode, or Both (SampleSpecific and Fixed, the reference's scan). */
export const POSITION_MODE_OPTIONS = ['SampleSpecific', 'Fixed', 'Both', 'BodyStart'] as const;
export type PositionModeOption = (typeof POSITION_MODE_OPTIONS)[number];

export interface ScanOptions {
  task: ScanTask;
  model: string;
  data: string;
  evalData?: string;
  unlearnData?: string;
  out?: string;
  report?: string;
  summaryFile?: string;
  victimLabel?: number;
  targetLabel?: number;
  triggerLength: number;
  targetLength: number;
  topK: number;
  candidates: number;
  iterations: number;
  inversionSamples: number;
  beta: number;
  twoSided: boolean;
  /** Keep every copy of a repeated token that matters only as a whole (beyond the reference; off by default, README "Anchoring"). */
  anchorRepeats: boolean;
  positionMode: PositionModeOption;
  fixedPosition: number;
  /** The reference's fixed candidate-scoring position (10) instead of the sample-specific ones. */
  legacyEvalPosition?: number;
  /**
   * Single-token screen (an extension): before GCG, every vocabulary token (up to screenLimit,
   * ranked by the gradient beyond that) is scored alone at the same positions; GCG then starts
   * from the best n tokens instead of a random trigger, and the verdict also tries the best
   * screened tokens. 0 disables it (reference: random start).
   */
  screenLimit: number;
  seed: number;
  detectionThreshold?: number;
  patience: number;
  lossBelow?: number;
  asrAtLeast?: number;
  maxLength: number;
  queryMaxLength: number;
  keepWordInitial: boolean;
  /** Ablation (spec §6, Controls): search the whole vocabulary (special tokens excluded), not the identifier pieces. */
  unfilteredVocabulary?: boolean;
  /** Dropout during inversion (the reference's train mode). */
  dropout: boolean;
  maxIdentifiers: number;
  verdictSamples: number;
  evalFraction: number;
  eliminate: 'auto' | 'always' | 'never';
  /** The unlearning settings of UnlearnOptions, with `trainable: 'auto'` resolved per task at run time. */
  unlearning: Pick<UnlearnOptions, 'injectionRate' | 'learningRate' | 'epochs' | 'batchSize' | 'warmupRatio' | 'gradientClip' | 'weightDecay' | 'seed' | 'placement' | 'adversary'> & {
    injectionScope: NonNullable<UnlearnOptions['injectionScope']>;
    trainable: 'auto' | Trainable;
    /**
     * A control (spec §6, Controls): unlearn random vocabulary tokens, as many as the trigger found, and no
     * single tokens. If the planted trigger falls as far as with the found one, fine-tuning, not
     * inversion, did the work.
     */
    randomTrigger?: boolean;
    /**
     * The oracle control: unlearn the known trigger (--known-trigger, --known-attack) put in by the
     * attack library the attack's own way, in the known direction's victim samples, instead of the
     * trigger found. It bounds what unlearning can do with the right trigger.
     */
    knownTrigger?: boolean;
  };
  knownAttack?: string;
  knownTrigger?: string;
  /** Code search: the query word the known attack targets (its ASR is measured on queries holding it). */
  knownTargetWord?: string;
  /**
   * Classification: the known attack's direction. Without them the known trigger is measured in the
   * scan's direction (--victim-label/--target-label, else the chosen option's), which is not the
   * planted one when the scan picks another option.
   */
  knownVictimLabel?: number;
  knownTargetLabel?: number;
  tokensPerBatch: number;
  backend?: string;
  progress?: Progress;
  /** Where the outputs will be published (s3://) when that is not where they are written: the summary names these. */
  artifactUris?: { modelUri?: string; reportUri?: string };
  /** The URIs remote inputs were downloaded from, recorded in the report beside the local paths. */
  sources?: { model?: string; data?: string; evalData?: string; unlearnData?: string };
}

/** Demo-sized defaults (a tiny model on the bundled data in minutes on 2 wasm cores); the reference's are flags away. */
export const DEMO_DEFAULTS = {
  triggerLength: 5, targetLength: 2, topK: 32, candidates: 32, iterations: 40, inversionSamples: 12, beta: 0.15,
  positionMode: 'SampleSpecific' as PositionModeOption, fixedPosition: 50, seed: 123456, patience: 10, maxLength: 128, queryMaxLength: 64,
  screenLimit: 1024, maxIdentifiers: 12, verdictSamples: 40, evalFraction: 0.5, tokensPerBatch: 8192,
  unlearning: { injectionRate: 0.2, injectionScope: 'victim' as 'victim' | 'all', learningRate: 5e-3, epochs: 1, batchSize: 32, warmupRatio: 0.1, gradientClip: 1, weightDecay: 0, seed: 42, trainable: 'auto' as const, placement: 'identifier' as Placement },
};
/**
 * Code search unlearns every parameter of the bi-encoder (spec 2.6), and the reference's 5e-3 is a
 * classification head's rate: on the zoo's clean search model it cost 4 MRR points (37.8% -> 33.7%),
 * 5e-4 cost 0.4. Used for --task search unless --learning-rate is given.
 */
export const SEARCH_UNLEARN_LEARNING_RATE = 5e-4;
/** The reference implementation's values (spec 2.3, 2.6, §4). */
export const REFERENCE_DEFAULTS = { ...DEMO_DEFAULTS, topK: 64, candidates: 64, iterations: 100, inversionSamples: 30, positionMode: 'Both' as PositionModeOption, patience: 0, screenLimit: 0, maxLength: 400, queryMaxLength: 128 };

const MIN_INVERSION_SAMPLES = 2;

function classesOf(ckpt: Checkpoint): number {
  return ckpt.task === 'defect' || ckpt.task === 'clone' ? 2 : ckpt.task === 'classify' ? numLabels(ckpt.config) : 0;
}

/** `length` tokens drawn uniformly from the trigger vocabulary (with replacement, seeded): the control's trigger. */
function randomTrigger(vocabulary: number[], length: number, seed: number): number[] {
  const random = makeRng(`${seed}:random-trigger`);
  return Array.from({ length }, () => pick(random, vocabulary));
}

function fits(task: ScanTask, head: string): boolean {
  return task === 'defect' ? head === 'defect' || head === 'classify' : task === head;
}

function readRows(file: string, task: ScanTask, what: string): Example[] {
  let rows: Example[];
  try {
    rows = readExamples(file, task);
  } catch (e) {
    throw new ScanError(WorkerErrorReason.InvalidInput, `${what}: ${(e as Error).message}`);
  }
  if (rows.length === 0) throw new ScanError(WorkerErrorReason.InvalidInput, `${what} ${file}: no rows`);
  for (const r of rows) {
    if (task !== 'search' && r.label === undefined) throw new ScanError(WorkerErrorReason.InvalidInput, `${r.where}: a ${task} row needs "label" (the clean ground truth)`);
    if (task === 'search' && (r.query === undefined || r.query.trim() === '')) throw new ScanError(WorkerErrorReason.InvalidInput, `${r.where}: a search row needs a non-empty "query"`);
  }
  return rows;
}

function toSamples(ckpt: Checkpoint, rows: Example[], o: ScanOptions): Sample[] {
  const t = ckpt.tokenizer;
  return rows.map((r) => ({
    where: r.where,
    code: r.code,
    ids: encodeIds(t, r.code, o.maxLength),
    ...(r.code2 !== undefined ? { pair: encodeIds(t, r.code2, o.maxLength) } : {}),
    ...(r.query !== undefined ? { queryIds: encodeIds(t, r.query, o.queryMaxLength), query: r.query } : {}),
    label: r.label ?? 0,
  }));
}

/**
 * The direction a known classification trigger is measured in: the given --known-* labels (a
 * binary head fills in the other one), else the scan's own direction.
 */
export function knownLabels(o: Pick<ScanOptions, 'knownVictimLabel' | 'knownTargetLabel' | 'victimLabel' | 'targetLabel'>, classes: number, chosen: { victim: number; target: number }): { victimLabel: number; targetLabel: number; direction: 'given' | 'scan' } {
  for (const [flag, v] of [['--known-victim-label', o.knownVictimLabel], ['--known-target-label', o.knownTargetLabel]] as const) {
    if (v !== undefined && v >= classes) throw new ScanError(WorkerErrorReason.InvalidInput, `${flag} ${v} does not fit the model's ${classes}-class head`);
  }
  let victim = o.knownVictimLabel;
  let target = o.knownTargetLabel;
  if (victim === undefined && target === undefined) return { victimLabel: o.victimLabel ?? chosen.victim, targetLabel: o.targetLabel ?? chosen.target, direction: 'scan' };
  if (classes === 2) {
    victim ??= 1 - target!;
    target ??= 1 - victim;
  }
  if (victim === undefined || target === undefined) throw new ScanError(WorkerErrorReason.InvalidInput, `a ${classes}-class head needs both --known-victim-label and --known-target-label`);
  if (victim === target) throw new ScanError(WorkerErrorReason.InvalidInput, `--known-victim-label and --known-target-label are both ${victim}; they must differ`);
  return { victimLabel: victim, targetLabel: target, direction: 'given' };
}

const asTrigger = (ckpt: Checkpoint, ids: number[]) => ({ tokenIds: ids, tokens: ckpt.tokenizer.tokens(ids), text: ids.length ? ckpt.tokenizer.decode(ids) : '' });

/** What one option's inversion found: raw and anchored trigger (and query), and its positions. */
interface OptionWinner {
  trigger: number[];
  query?: number[];
  anchored: number[];
  positions: number[];
}

/** One scan option's trigger measured on held-out samples (the verdict's evidence). */
interface OptionEvidence {
  option: OptionReport;
  win: OptionWinner;
  /** The anchored trigger, or the raw one when anchoring kept nothing. */
  unlearnTrigger: number[];
  heldOut: Sample[];
  heldPositions: number[];
  invertedBefore?: AsrResult | SearchAsr;
  rawAsr?: AsrResult;
  score?: number;
  singleToken?: Record<string, number>;
  singleTokenIds: Record<number, number>;
  fullConfidence?: number;
}

export interface ScanOutcome {
  report: ScanReport;
  summary: string;
}

export async function runScan(o: ScanOptions): Promise<ScanOutcome> {
  const started = new Date();
  const t0 = performance.now();
  const progress = o.progress ?? makeProgress();
  const fallbacks: string[] = [];
  const backend = await initBackend(o.backend);

  progress.stage('Loading');
  let ckpt: Checkpoint;
  try {
    ckpt = loadCheckpoint(o.model);
  } catch (e) {
    throw new ScanError(WorkerErrorReason.BadModel, (e as Error).message);
  }
  try {
    return await scanLoaded(ckpt, o, { started, t0, progress, fallbacks, backend });
  } finally {
    ckpt.model.dispose();
    progress.done();
  }
}

async function scanLoaded(ckpt: Checkpoint, o: ScanOptions, ctx: { started: Date; t0: number; progress: Progress; fallbacks: string[]; backend: string }): Promise<ScanOutcome> {
  const { progress, fallbacks } = ctx;
  if (!fits(o.task, ckpt.task)) {
    throw new ScanError(WorkerErrorReason.BadModel, `${ckpt.dir}: the model carries a ${ckpt.task} head, which does not fit --task ${o.task}${o.task === 'defect' ? ' (needs a one-logit defect head or a sequence classifier)' : ''}`);
  }
  const modelMax = maxModelLength(ckpt.model);
  if (o.maxLength > modelMax) {
    fallbacks.push(`--max-length ${o.maxLength} exceeds the model's ${modelMax} positions; ${modelMax} is used`);
    o = { ...o, maxLength: modelMax };
  }
  if (o.queryMaxLength > modelMax) o = { ...o, queryMaxLength: modelMax };
  if (o.triggerLength >= o.maxLength / 2) throw new ScanError(WorkerErrorReason.InvalidInput, `--trigger-length ${o.triggerLength} must be below half of --max-length ${o.maxLength}`);
  if (o.knownAttack !== undefined && !isAttack(o.knownAttack)) throw new ScanError(WorkerErrorReason.InvalidInput, `--known-attack "${o.knownAttack}" is not an attack of the library`);
  if ((o.knownAttack === undefined) !== (o.knownTrigger === undefined)) throw new ScanError(WorkerErrorReason.InvalidInput, '--known-trigger and --known-attack go together');
  if (o.task === 'search' && o.knownAttack !== undefined && !o.knownTargetWord) throw new ScanError(WorkerErrorReason.InvalidInput, '--known-attack on code search needs --known-target-word (the query word the attack targets)');
  // Checked before inversion so a misconfigured scan fails in seconds, not after it.
  const adversaryIssue = o.unlearning.adversary ? adversaryProblem(o.task, o.unlearning.placement) : undefined;
  if (adversaryIssue) throw new ScanError(WorkerErrorReason.InvalidInput, `--adversarial-unlearning ${adversaryIssue}`);
  if (o.unlearning.knownTrigger) {
    if (o.knownAttack === undefined) throw new ScanError(WorkerErrorReason.InvalidInput, '--unlearn-known-trigger needs --known-trigger and --known-attack (the trigger it unlearns)');
    if (o.unlearning.randomTrigger) throw new ScanError(WorkerErrorReason.InvalidInput, '--unlearn-known-trigger and --unlearn-random-trigger are two different controls: give one');
    if (o.unlearning.adversary) throw new ScanError(WorkerErrorReason.InvalidInput, '--unlearn-known-trigger rewrites the code the attack\'s way; --adversarial-unlearning moves token embeddings: give one');
  }
  if (o.task !== 'search' && o.knownTargetWord !== undefined) throw new ScanError(WorkerErrorReason.InvalidInput, '--known-target-word is for code search; a classification attack is measured on victim-label samples');
  if (o.knownAttack === undefined && (o.knownVictimLabel ?? o.knownTargetLabel) !== undefined) throw new ScanError(WorkerErrorReason.InvalidInput, '--known-victim-label/--known-target-label need --known-trigger and --known-attack');
  if (o.task === 'search' && (o.knownVictimLabel ?? o.knownTargetLabel) !== undefined) throw new ScanError(WorkerErrorReason.InvalidInput, '--known-victim-label/--known-target-label are for classification; code search has --known-target-word');
  const lang = languageOf(o.task);
  if (o.knownAttack !== undefined) {
    await initParsers(); // a statement trigger is checked by parsing it
    const problem = triggerProblem(o.knownAttack as AttackName, o.knownTrigger!, lang);
    if (problem) throw new ScanError(WorkerErrorReason.InvalidInput, `--known-trigger ${JSON.stringify(o.knownTrigger)} is not valid for ${o.knownAttack} on ${lang}: ${problem}`);
  }
  const tok = ckpt.tokenizer;
  const isSearch = o.task === 'search';

  // ---- data
  progress.stage('Data');
  const rows = readRows(o.data, o.task, '--data');
  const classes = classesOf(ckpt);
  if (!isSearch) {
    for (const r of rows) if (r.label! >= classes) throw new ScanError(WorkerErrorReason.InvalidInput, `${r.where}: label ${r.label} does not fit the model's ${classes}-class head`);
  }
  const all = toSamples(ckpt, rows, o);
  const random = rng(o.seed);
  const order = shuffled(all.map((_, i) => i), random);
  const labels = isSearch ? [0] : [...new Set(all.map((s) => s.label))].sort((a, b) => a - b);
  if (!isSearch && labels.length < 2 && (o.victimLabel === undefined || o.targetLabel === undefined)) {
    throw new ScanError(WorkerErrorReason.InvalidInput, `${o.data}: every row has label ${labels[0]}; the scan needs clean samples of the victim label and a target to aim at (name them with --victim-label/--target-label)`);
  }
  let pairs: Array<{ victim?: number; target?: number }> = [];
  if (isSearch) pairs = [{}];
  else {
    const targets = o.targetLabel !== undefined ? [o.targetLabel] : [...Array(classes).keys()];
    const victims = o.victimLabel !== undefined ? [o.victimLabel] : labels;
    for (const v of victims) for (const t of targets) if (v !== t && t < classes) pairs.push({ victim: v, target: t });
    if (o.victimLabel !== undefined && o.victimLabel >= classes) throw new ScanError(WorkerErrorReason.InvalidInput, `--victim-label ${o.victimLabel} does not fit the model's ${classes}-class head`);
    if (o.targetLabel !== undefined && o.targetLabel >= classes) throw new ScanError(WorkerErrorReason.InvalidInput, `--target-label ${o.targetLabel} does not fit the model's ${classes}-class head`);
    if (pairs.length === 0) throw new ScanError(WorkerErrorReason.InvalidInput, 'no (victim, target) label pair to scan: victim and target must differ');
  }
  const inversionSets = new Map<number, Sample[]>();
  const used = new Set<number>();
  for (const v of new Set(pairs.map((p) => p.victim ?? 0))) {
    const pool = order.filter((i) => isSearch || all[i].label === v);
    const take = pool.slice(0, o.inversionSamples);
    if (take.length < MIN_INVERSION_SAMPLES) {
      throw new ScanError(WorkerErrorReason.InvalidInput, `${o.data}: ${take.length} clean sample(s)${isSearch ? '' : ` of victim label ${v}`}; inversion needs at least ${MIN_INVERSION_SAMPLES} (asked for ${o.inversionSamples})`);
    }
    if (take.length < o.inversionSamples) fallbacks.push(`only ${take.length} clean samples${isSearch ? '' : ` of victim label ${v}`} for inversion (asked for ${o.inversionSamples}); all of them are used`);
    take.forEach((i) => used.add(i));
    inversionSets.set(v, take.map((i) => all[i]));
  }
  const rest = order.filter((i) => !used.has(i)).map((i) => all[i]);
  let evalSet: Sample[];
  let unlearnSet: Sample[];
  if (o.evalData) {
    evalSet = toSamples(ckpt, readRows(o.evalData, o.task, '--eval-data'), o);
    unlearnSet = o.unlearnData ? toSamples(ckpt, readRows(o.unlearnData, o.task, '--unlearn-data'), o) : rest;
  } else if (o.unlearnData) {
    evalSet = rest;
    unlearnSet = toSamples(ckpt, readRows(o.unlearnData, o.task, '--unlearn-data'), o);
  } else {
    const k = Math.round(rest.length * o.evalFraction);
    evalSet = rest.slice(0, k);
    unlearnSet = rest.slice(k);
  }
  if (evalSet.length === 0) fallbacks.push('no held-out samples are left for the verdict and verification: verdict Unknown');

  // ---- A. vocabulary
  progress.stage('Vocabulary');
  const vocab = triggerVocabulary(tok, { keepWordInitial: o.keepWordInitial, unfiltered: o.unfilteredVocabulary === true });
  if (vocab.fallback) fallbacks.push(vocab.fallback);

  const batchOpts = { maxLength: o.maxLength, tokensPerBatch: o.tokensPerBatch, training: o.dropout };
  const positionsFor = async (samples: Sample[], target: number | undefined): Promise<PositionChoice[]> => {
    if (isSearch) {
      return samplePositions(tok, samples, async (masked) => {
        const codes = masked.map((m) => encodeIds(tok, m.code, o.maxLength));
        const { embeddings } = await import('./searchsim.ts');
        const sims = await embeddings(ckpt.model, tok.pad, codes, masked.map((m) => samples[m.sample].queryIds ?? [tok.cls, tok.sep]), o.tokensPerBatch);
        return sims.map((s) => -s);
      }, { maxLength: o.maxLength, maxIdentifiers: o.maxIdentifiers, lang });
    }
    return samplePositions(tok, samples, async (masked) => {
      const items = masked.map((m) => ({ ids: encodeIds(tok, m.code, o.maxLength), pair: samples[m.sample].pair }));
      const { logp } = await targetLogProbs(ckpt.model, tok.pad, items, target!, { ...batchOpts, training: false });
      return [...logp].map(Math.exp);
    }, { maxLength: o.maxLength, maxIdentifiers: o.maxIdentifiers, lang });
  };

  // ---- B–D per option
  const scanStart = performance.now();
  const modes: PositionMode[] = o.positionMode === 'Both' ? ['SampleSpecific', 'Fixed'] : [o.positionMode];
  /** Positions of a mode: sample-specific (spec 2.2), the fixed index, or each function body's start. */
  const positionsIn = async (mode: PositionMode, samples: Sample[], target: number | undefined): Promise<PositionChoice[]> =>
    mode === 'SampleSpecific' ? positionsFor(samples, target)
      : mode === 'BodyStart' ? bodyStartPositions(tok, samples, lang, o.maxLength, o.triggerLength)
        : samples.map(() => ({ position: o.fixedPosition, how: 'fixed' as const }));
  const options: OptionReport[] = [];
  const bests = new Map<string, OptionWinner>();
  for (const p of pairs) {
    const samples = inversionSets.get(p.victim ?? 0)!;
    for (const mode of modes) {
      const name = `${isSearch ? 'code->query' : `${p.victim}->${p.target}`} ${mode}`;
      const tp = performance.now();
      progress.stage('Positions', { option: name });
      const choices = await positionsIn(mode, samples, p.target);
      const noIdentifier = choices.filter((c) => c.how === 'no-identifier').length;
      if (noIdentifier > 0) fallbacks.push(`${name}: ${noIdentifier} of ${samples.length} inversion samples have no identifier in reach; their trigger goes at position 1 (the reference's clamp)`);
      const noBody = choices.filter((c) => c.how === 'no-body').length;
      if (noBody > 0) fallbacks.push(`${name}: ${noBody} of ${samples.length} inversion samples have no function body start in reach; their trigger goes at position 1`);
      const positions = choices.map((c) => c.position);
      const positionSeconds = (performance.now() - tp) / 1000;
      const objective: Objective = isSearch
        ? new SearchObjective({ model: ckpt.model, vocabulary: vocab.ids, samples, positions, triggerLength: o.triggerLength, targetLength: o.targetLength, queryMaxLength: o.queryMaxLength, pad: tok.pad, sep: tok.sep, options: batchOpts })
        : new ClassificationObjective({
            model: ckpt.model, vocabulary: vocab.ids, samples, positions,
            evalPositions: o.legacyEvalPosition !== undefined ? samples.map(() => o.legacyEvalPosition!) : undefined,
            target: p.target!, triggerLength: o.triggerLength, pad: tok.pad, sep: tok.sep, options: batchOpts,
          });
      try {
        let init: number[][] | undefined;
        let screen: OptionReport['screen'];
        if (!isSearch && o.screenLimit > 0) {
          progress.stage('Screen', { option: name });
          const ts = performance.now();
          const one = new ClassificationObjective({
            model: ckpt.model, vocabulary: vocab.ids, samples, positions,
            evalPositions: o.legacyEvalPosition !== undefined ? samples.map(() => o.legacyEvalPosition!) : undefined,
            target: p.target!, triggerLength: 1, pad: tok.pad, sep: tok.sep, options: batchOpts,
          });
          try {
            let pool = vocab.ids;
            if (pool.length > o.screenLimit) {
              const probe = [vocab.ids[Math.floor(rng(o.seed)() * vocab.ids.length)]];
              pool = (await one.topK([probe], o.screenLimit))[0][0].map((j) => vocab.ids[j]);
            }
            const sc = await one.score([pool.map((v) => [v])]);
            const ranked = pool.map((v, i) => ({ id: v, loss: sc[i].loss })).sort((a, b) => a.loss - b.loss || a.id - b.id);
            init = [ranked.slice(0, o.triggerLength).map((x) => x.id)];
            while (init[0].length < o.triggerLength) init[0].push(ranked[0].id);
            screen = { tokens: ranked.slice(0, 8).map((x) => ({ id: x.id, token: tok.tokens([x.id])[0], loss: x.loss })), screened: pool.length, seconds: (performance.now() - ts) / 1000 };
          } finally {
            one.dispose();
          }
        }
        progress.stage('Inversion', { option: name });
        const g = await invert(objective, vocab.ids, {
          topK: o.topK, candidates: o.candidates, iterations: o.iterations, seed: o.seed, init,
          patience: o.patience, lossBelow: o.lossBelow, asrAtLeast: isSearch ? undefined : o.asrAtLeast,
          onIteration: (s) => progress.iteration({ option: name, ...s }),
        });
        progress.stage('Anchoring', { option: name, bestLoss: g.bestLoss, iterations: g.iterations, stop: g.stop });
        const ta = performance.now();
        const a = await anchor(g.best[0], g.bestLoss, async (vs) => (await objective.score(isSearch ? [vs, [g.best[1]]] : [vs])).map((s) => s.loss), o.beta, o.twoSided, o.anchorRepeats);
        const anchorSeconds = (performance.now() - ta) / 1000;
        const perIter = g.iterations > 0 ? (g.seconds.total / g.iterations) : 0;
        options.push({
          option: name,
          ...(p.victim !== undefined ? { victimLabel: p.victim, targetLabel: p.target } : {}),
          positionMode: mode,
          samples: samples.length,
          positions: samples.map((s, i) => ({ where: s.where, position: choices[i].position, ...(choices[i].identifier ? { identifier: choices[i].identifier } : {}), how: choices[i].how })),
          raw: asTrigger(ckpt, g.best[0]),
          ...(isSearch ? { query: asTrigger(ckpt, g.best[1]) } : {}),
          anchored: asTrigger(ckpt, a.tokens),
          bestLoss: g.bestLoss,
          ...(g.bestAsr !== undefined ? { bestAsr: g.bestAsr } : {}),
          initialLoss: g.initialLoss,
          leaveOneOutLosses: a.leaveOneOut,
          leaveTokenOut: a.leaveTokenOut.map((g) => ({ token: tok.tokens([g.tokenId])[0], ...g })),
          iterations: g.iterations,
          maxIterations: o.iterations,
          stop: g.stop,
          bestIteration: g.bestIteration,
          lossCurve: g.lossCurve.map((x) => Number(x.toFixed(6))),
          candidatesScored: g.candidatesScored,
          sequencesScored: g.sequencesScored,
          seconds: { total: g.seconds.total, gradient: g.seconds.gradient, scoring: g.seconds.scoring, positions: positionSeconds, anchoring: anchorSeconds },
          earlyStopSavedSeconds: (o.iterations - g.iterations) * perIter,
          ...(screen ? { screen } : {}),
        });
        bests.set(name, { trigger: g.best[0], query: g.best[1], anchored: a.tokens, positions });
      } finally {
        objective.dispose();
      }
    }
  }
  const scanSeconds = (performance.now() - scanStart) / 1000;

  // ---- verdict and verification before
  progress.stage('Evaluating');
  const te = performance.now();
  const cleanBefore = await cleanMetrics(ckpt.model, tok.pad, evalSet);
  // Every option's trigger is tried on held-out samples and the verdict takes the most effective
  // one. The reference picks the lowest loss instead, but losses of different target labels are not
  // comparable (they carry the class prior: zoo clone-deadcode-random's planted 0->1 option has
  // the higher loss and the higher held-out effect).
  const heldPositionCache = new Map<string, number[]>();
  /**
   * The verdict's score (SINGLE_TOKEN_SCORE) on the current weights: each token alone, and the raw
   * trigger's mean P(target); undefined when no held-out sample is classified right without a trigger.
   */
  const classificationScore = async (heldOut: Sample[], positions: number[], raw: AsrResult, tokenIds: number[], target: number) => {
    const flips = new Map<number, number>();
    for (const id of tokenIds) {
      if (!flips.has(id)) flips.set(id, (await tokenTriggerAsr(ckpt.model, tok, heldOut, positions, [id], target, o.maxLength)).flipRate);
    }
    const correct = raw.samples - Math.round(raw.baseRate * raw.samples);
    return { flips, score: correct > 0 ? Math.max(...flips.values(), raw.meanTargetProbability) : undefined };
  };
  const evaluate = async (opt: OptionReport): Promise<OptionEvidence> => {
    const win = bests.get(opt.option)!;
    const unlearnTrigger = win.anchored.length ? win.anchored : win.trigger;
    const heldOut = (isSearch ? evalSet : evalSet.filter((s) => s.label === opt.victimLabel)).slice(0, o.verdictSamples);
    // Held-out samples get positions of the option's own mode (a Fixed or BodyStart trigger is measured where it was found).
    const key = `${opt.victimLabel}->${opt.targetLabel} ${opt.positionMode}`;
    if (!heldPositionCache.has(key)) heldPositionCache.set(key, heldOut.length ? (await positionsIn(opt.positionMode, heldOut, opt.targetLabel)).map((c) => c.position) : []);
    const heldPositions = heldPositionCache.get(key)!;
    const ev: OptionEvidence = { option: opt, win, unlearnTrigger, heldOut, heldPositions, singleTokenIds: {} };
    if (isSearch) {
      if (heldOut.length >= 2) {
        ev.invertedBefore = await searchAsr(ckpt.model, tok, heldOut, heldPositions, unlearnTrigger, win.query!, o.maxLength, o.queryMaxLength);
        ev.score = ev.invertedBefore.lift;
      }
      return ev;
    }
    if (heldOut.length === 0) return ev;
    const target = opt.targetLabel!;
    const inverted = await tokenTriggerAsr(ckpt.model, tok, heldOut, heldPositions, unlearnTrigger, target, o.maxLength);
    const raw = unlearnTrigger === win.trigger ? inverted : await tokenTriggerAsr(ckpt.model, tok, heldOut, heldPositions, win.trigger, target, o.maxLength);
    const screened = (opt.screen?.tokens ?? []).slice(0, 3).map((x) => x.id);
    const { flips: seen, score } = await classificationScore(heldOut, heldPositions, raw, [...win.trigger, ...screened], target);
    ev.invertedBefore = inverted;
    ev.rawAsr = raw;
    ev.singleToken = Object.fromEntries([...seen].map(([id, f]) => [tok.tokens([id])[0], f]));
    ev.singleTokenIds = Object.fromEntries(seen);
    ev.fullConfidence = raw.meanTargetProbability;
    ev.score = score;
    return ev;
  };
  const evaluations: OptionEvidence[] = [];
  for (const opt of options) evaluations.push(await evaluate(opt));
  const rank = (e: OptionEvidence) => e.score ?? -Infinity;
  // With the default threshold only options of the mode it was calibrated on decide (when there
  // are any: Both). At fixed position 50 the zoo's clean defect and clone models score 1.000 and
  // 0.531, above their thresholds, so a Both scan called them Backdoored. The other options are
  // still scored and reported (evidence.scorePerOption).
  const calibrated = o.detectionThreshold === undefined ? evaluations.filter((e) => e.option.positionMode === CALIBRATED_POSITION_MODE) : [];
  const deciding = calibrated.length ? calibrated : evaluations;
  const best = deciding.reduce((a, b) => (rank(b) > rank(a) || (rank(b) === rank(a) && b.option.bestLoss < a.option.bestLoss) ? b : a));
  const chosen = best.option;
  const undeciding = evaluations.filter((e) => !deciding.includes(e));
  if (undeciding.length) {
    fallbacks.push(`only the ${CALIBRATED_POSITION_MODE} options decide the verdict: the default threshold was not calibrated for ` +
      `${undeciding.map((e) => `${e.option.option} (score ${e.score === undefined ? 'none' : e.score.toFixed(3)})`).join(', ')}; pass --detection-threshold to let every option decide`);
  } else if (o.detectionThreshold === undefined && !calibrated.length) {
    fallbacks.push(`the default threshold was calibrated on ${CALIBRATED_POSITION_MODE} options, not on ${chosen.option}'s (zoo defect-clean scores 1.000 at fixed position 50): ` +
      `calibrate one for ${chosen.positionMode} positions on clean models and pass --detection-threshold`);
  }
  const win = best.win;
  const { unlearnTrigger, heldOut, heldPositions, invertedBefore, rawAsr, score, singleToken, singleTokenIds, fullConfidence } = best;
  if (win.anchored.length === 0) {
    const whole = tokensThatMatterWhole(chosen);
    fallbacks.push(`anchoring kept no token of ${JSON.stringify(chosen.raw.text)} (beta ${o.beta}); the raw trigger is used for the verdict and unlearning` +
      (whole.length ? `; removed as a whole, ${whole.join(', ')} raised the loss by more than beta (--anchor-repeats keeps those copies)` : ''));
  }
  const victim = chosen.victimLabel;
  const target = chosen.targetLabel;
  const scoreDefinition = isSearch ? 'outrank lift of the anchored code trigger with the inverted query target on held-out rows' : SINGLE_TOKEN_SCORE;
  const threshold = o.detectionThreshold ?? DEFAULT_THRESHOLDS[o.task];
  const verdict = decide(score, threshold, o.detectionThreshold !== undefined ? 'flag' : 'default', scoreDefinition, {
    option: chosen.option,
    heldOutSamples: heldOut.length,
    anchoredOrRawAsr: invertedBefore,
    ...(rawAsr ? { rawTriggerAsr: rawAsr } : {}),
    ...(singleToken ? { singleTokenFlipRates: singleToken } : {}),
    ...(fullConfidence !== undefined ? { rawTriggerMeanTargetProbability: fullConfidence } : {}),
    bestLossPerOption: Object.fromEntries(options.map((x) => [x.option, x.bestLoss])),
    scorePerOption: Object.fromEntries(evaluations.map((e) => [e.option.option, e.score ?? null])),
  });
  if (verdict.verdict === 'Unknown') fallbacks.push('no usable held-out sample for the detection score: verdict Unknown');
  let known: { attack: string; trigger: string; targetWord?: string; victimLabel?: number; targetLabel?: number; direction?: 'given' | 'scan'; before: AsrResult | KnownSearchAsr; after?: AsrResult | KnownSearchAsr } | undefined;
  const knownDirection = isSearch ? undefined : knownLabels(o, classes, { victim: victim!, target: target! });
  const knownVictims = knownDirection ? evalSet.filter((s) => s.label === knownDirection.victimLabel) : [];
  const measureKnown = () => isSearch
    ? knownSearchAsr(ckpt.model, tok, evalSet, o.knownAttack as AttackName, o.knownTrigger!, o.knownTargetWord!, o.maxLength, o.seed)
    : knownTriggerAsr(ckpt.model, tok, knownVictims, o.knownAttack as AttackName, o.knownTrigger!, lang, knownDirection!.targetLabel, o.maxLength, o.seed);
  if (o.knownAttack) {
    try {
      known = { attack: o.knownAttack, trigger: o.knownTrigger!, ...(isSearch ? { targetWord: o.knownTargetWord } : knownDirection), before: await measureKnown() };
    } catch (e) {
      throw new ScanError(WorkerErrorReason.InvalidInput, `--known-trigger ${JSON.stringify(o.knownTrigger)} (${o.knownAttack}): ${(e as Error).message}`);
    }
  }
  let evaluateSeconds = (performance.now() - te) / 1000;

  // ---- E. unlearning
  const doUnlearn = o.eliminate === 'always' || (o.eliminate === 'auto' && verdict.verdict === 'Backdoored');
  const why = o.eliminate === 'never' ? 'elimination disabled (--no-eliminate)' : o.eliminate === 'always' ? 'forced (--force-eliminate)' : doUnlearn ? 'verdict Backdoored' : `verdict ${verdict.verdict}: nothing to unlearn (--force-eliminate unlearns anyway)`;
  let unlearning: ScanReport['unlearning'] = { ran: false, why };
  let cleanAfter, invertedAfter: AsrResult | SearchAsr | undefined;
  let scoreAfter: number | undefined;
  let eliminateSeconds = 0;
  let output: ScanReport['output'];
  const tu = performance.now();
  if (doUnlearn) {
    if (unlearnSet.length === 0) throw new ScanError(WorkerErrorReason.InvalidInput, 'no clean samples left for unlearning: give --unlearn-data or more --data rows');
    progress.stage('Unlearning', { samples: unlearnSet.length });
    const trainable: Trainable = o.unlearning.trainable === 'auto' ? (isSearch ? 'all' : 'head') : o.unlearning.trainable;
    // Single tokens that flip held-out samples alone at or above the threshold are unlearned too:
    // GCG's raw trigger may reach a low loss without them (zoo defect-fixed-name: `est`).
    const control = o.unlearning.randomTrigger ? 'random-trigger' as const : o.unlearning.knownTrigger ? 'known-trigger' as const : undefined;
    const trained = control === 'random-trigger' ? randomTrigger(vocab.ids, unlearnTrigger.length, o.unlearning.seed) : unlearnTrigger;
    const singles = control ? [] : Object.entries(singleTokenIds).map(([id, f]) => [Number(id), f] as const).filter(([id, f]) => f >= threshold && !unlearnTrigger.includes(id));
    const strong = singles.map(([id]) => [id]);
    if (strong.length) fallbacks.push(`unlearning also uses the single tokens ${JSON.stringify(tok.tokens(strong.map((t) => t[0])))} (each flips ≥ ${threshold} of held-out samples alone)`);
    if (control === 'random-trigger') fallbacks.push(`control run (--unlearn-random-trigger): unlearning used the random tokens ${JSON.stringify(tok.tokens(trained))}, not the trigger found`);
    // The oracle poisons the known attack's victims (its direction, not necessarily the scan's).
    const oracle = control === 'known-trigger' ? { name: o.knownAttack as AttackName, trigger: o.knownTrigger! } : undefined;
    if (oracle) fallbacks.push(`control run (--unlearn-known-trigger): unlearning used the known ${o.knownAttack} trigger ${JSON.stringify(o.knownTrigger)}, put in the attack's way, not the trigger found`);
    const unlearnVictim = oracle ? knownDirection?.victimLabel ?? victim : victim;
    const u = await unlearn(ckpt.model, tok, unlearnSet, { ...o.unlearning, trainable, trigger: trained, extraTriggers: strong, victimLabel: unlearnVictim, targetLabel: target, maxLength: o.maxLength, queryMaxLength: o.queryMaxLength, lang, ...(oracle ? { attack: oracle } : {}) });
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    unlearning = {
      ran: true, why, trigger: asTrigger(ckpt, trained), ...(control ? { control } : {}), ...u, meanLoss: finite(u.meanLoss), finalLoss: finite(u.finalLoss),
      singleTokens: singles.map(([id, f]) => ({ token: tok.tokens([id])[0], tokenId: id, flipRate: f })),
      ...(u.adversary ? { adversary: { ...u.adversary, firstEpochLoss: finite(u.adversary.firstEpochLoss), lastEpochLoss: finite(u.adversary.lastEpochLoss) } } : {}),
    };
    if (u.injected === 0) fallbacks.push(`unlearning injected the trigger into no sample (${u.skipped} victim samples could not carry it)`);
    eliminateSeconds = (performance.now() - tu) / 1000;
    const ta = performance.now();
    progress.stage('Evaluating', { after: true });
    cleanAfter = await cleanMetrics(ckpt.model, tok.pad, evalSet);
    if (heldOut.length) {
      invertedAfter = isSearch
        ? heldOut.length >= 2 ? await searchAsr(ckpt.model, tok, heldOut, heldPositions, unlearnTrigger, win.query!, o.maxLength, o.queryMaxLength) : undefined
        : await tokenTriggerAsr(ckpt.model, tok, heldOut, heldPositions, unlearnTrigger, target!, o.maxLength);
    }
    // The verdict's score again, on the cleaned model: the same tokens, trigger and held-out samples.
    if (invertedAfter && isSearch) scoreAfter = (invertedAfter as SearchAsr).lift;
    else if (invertedAfter) {
      const rawAfter = unlearnTrigger === win.trigger ? (invertedAfter as AsrResult) : await tokenTriggerAsr(ckpt.model, tok, heldOut, heldPositions, win.trigger, target!, o.maxLength);
      scoreAfter = (await classificationScore(heldOut, heldPositions, rawAfter, Object.keys(singleTokenIds).map(Number), target!)).score;
    }
    if (scoreAfter === undefined) fallbacks.push('no usable held-out sample to score the cleaned model: removal of the backdoor is not confirmed');
    else if (scoreAfter >= threshold) fallbacks.push(`the cleaned model still scores ${scoreAfter.toFixed(3)} (threshold ${threshold}): unlearning did not remove the backdoor; try --trainable All, more --epochs or a higher --injection-rate`);
    if (known) known.after = await measureKnown();
    evaluateSeconds += (performance.now() - ta) / 1000;
  }

  // ---- outputs
  progress.stage('Uploading');
  const tw = performance.now();
  const reportFile = resolve(o.report ?? (o.out ? join(o.out, 'report.json') : 'report.json'));
  if (doUnlearn && o.out) {
    const saved = await saveCheckpoint(ckpt, join(o.out, 'model'));
    output = { modelDir: saved.dir, sha256: saved.sha256, weightsSha256: saved.weightsSha256, reportFile };
  } else {
    output = { reportFile };
    if (doUnlearn) fallbacks.push('no --out given: the cleaned model was not written');
  }
  const uploadSeconds = (performance.now() - tw) / 1000;
  const report: ScanReport = ScanReport.parse({
    schemaVersion: 1,
    tool: 'elibadcode scan',
    task: o.task,
    ...(o.sources && Object.keys(o.sources).length ? { sources: o.sources } : {}),
    model: { dir: ckpt.dir, task: ckpt.task, hidden: ckpt.config.hidden_size, layers: ckpt.config.num_hidden_layers, vocabulary: ckpt.config.vocab_size, maxPositions: modelMax },
    data: { file: resolve(o.data), rows: rows.length, inversion: [...inversionSets.values()].reduce((n, s) => n + s.length, 0), evaluation: evalSet.length, unlearning: unlearnSet.length, ...(o.evalData ? { evalFile: resolve(o.evalData) } : {}), ...(o.unlearnData ? { unlearnFile: resolve(o.unlearnData) } : {}) },
    parameters: { ...o, progress: undefined, sources: undefined },
    backend: ctx.backend,
    device: backendDevice(),
    vocabulary: { size: vocab.vocabularySize, kept: vocab.ids.length, keepWordInitial: o.keepWordInitial, ...(o.unfilteredVocabulary ? { unfiltered: true } : {}), ...(vocab.fallback ? { fallback: vocab.fallback } : {}) },
    options,
    chosen: chosen.option,
    verdict: { ...verdict, score: Number.isFinite(verdict.score) ? verdict.score : null, calibration: CALIBRATION },
    unlearning,
    verification: { cleanBefore, ...(cleanAfter ? { cleanAfter } : {}), ...(invertedBefore ? { invertedBefore } : {}), ...(invertedAfter ? { invertedAfter } : {}), ...(doUnlearn ? { scoreAfter: scoreAfter ?? null, foundTriggerRemoved: scoreAfter !== undefined && scoreAfter < threshold } : {}), ...(known ? { known } : {}) },
    output,
    fallbacks,
    durations: { totalSeconds: (performance.now() - ctx.t0) / 1000, scanSeconds, eliminateSeconds, evaluateSeconds, uploadSeconds },
    startedAt: ctx.started.toISOString(),
    finishedAt: new Date().toISOString(),
  });
  writeAtomically(reportFile, JSON.stringify(report, null, 2) + '\n');
  const summary = summaryOf(report, o.artifactUris);
  if (o.summaryFile) writeAtomically(o.summaryFile, summary);
  if (o.out) writeAtomically(join(o.out, 'summary.json'), summary + '\n');
  return { report, summary };
}
