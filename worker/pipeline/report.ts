// The scan report: the full JSON (validated by ScanReport, written beside the cleaned model) and
// the ≤ 4 KiB summary for the Kubernetes status (crds/scan-summary.ts), written to the
// termination-message path.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ScanSummary, serializeScanSummary, shorten, SCAN_SUMMARY_SCHEMA_VERSION, type ScanSummaryInput } from '../../crds/scan-summary.ts';
import { MAX_CAVEATS } from '../../crds/backdoorscan.ts';

const TriggerReport = z.object({ tokenIds: z.array(z.int().min(0)), tokens: z.array(z.string()), text: z.string() });

const OptionReport = z.object({
  option: z.string(),
  victimLabel: z.int().optional(),
  targetLabel: z.int().optional(),
  positionMode: z.enum(['SampleSpecific', 'Fixed', 'BodyStart']),
  samples: z.int(),
  positions: z.array(z.object({ where: z.string(), position: z.int(), identifier: z.string().optional(), how: z.string() })),
  raw: TriggerReport,
  query: TriggerReport.optional(),
  anchored: TriggerReport,
  bestLoss: z.number(),
  bestAsr: z.number().optional(),
  initialLoss: z.number(),
  leaveOneOutLosses: z.array(z.number()),
  /** Repeated tokens that anchoring dropped, removed whole (every copy): the loss without them, whether that rose by more than beta, whether their copies were kept (--anchor-repeats). */
  leaveTokenOut: z.array(z.object({ token: z.string(), tokenId: z.int(), copies: z.int(), loss: z.number(), matters: z.boolean(), kept: z.boolean() })).optional(),
  iterations: z.int(),
  maxIterations: z.int(),
  stop: z.string(),
  bestIteration: z.int(),
  lossCurve: z.array(z.number()),
  candidatesScored: z.int(),
  sequencesScored: z.int(),
  seconds: z.object({ total: z.number(), gradient: z.number(), scoring: z.number(), positions: z.number(), anchoring: z.number() }),
  earlyStopSavedSeconds: z.number(),
  screen: z.object({ tokens: z.array(z.object({ id: z.int(), token: z.string(), loss: z.number() })), screened: z.int(), seconds: z.number() }).optional(),
});
export type OptionReport = z.infer<typeof OptionReport>;

/** Repeated tokens anchoring dropped although removing all their copies raises the loss by more than beta, as `tok xN`. */
export function tokensThatMatterWhole(option: Pick<OptionReport, 'leaveTokenOut'>): string[] {
  return (option.leaveTokenOut ?? []).filter((g) => g.matters).map((g) => `${g.token} x${g.copies}`);
}

const Asr = z.object({ asr: z.number(), flipRate: z.number(), baseRate: z.number(), meanTargetProbability: z.number(), samples: z.int(), skipped: z.int() });
const SearchAsrReport = z.object({ outrankRate: z.number(), baseRate: z.number(), lift: z.number(), queries: z.int() });
/** A known code-search attack: share of triggered codes in the top 10% for targeted queries (asr), average normalised rank (anr). */
const KnownSearchAsrReport = z.object({ asr: z.number(), anr: z.number(), cleanAnr: z.number(), top10pct: z.number(), queries: z.int(), pairs: z.int() });
const Clean = z.object({ samples: z.int(), accuracy: z.number().optional(), f1: z.number().optional(), mrr: z.number().optional() });

export const ScanReport = z.object({
  schemaVersion: z.literal(1),
  tool: z.literal('elibadcode scan'),
  task: z.enum(['defect', 'clone', 'search']),
  /** Where remote inputs came from (s3://, https://) when `model.dir`/`data.file` are their downloads. */
  sources: z.object({ model: z.string().optional(), data: z.string().optional(), evalData: z.string().optional(), unlearnData: z.string().optional() }).optional(),
  model: z.object({ dir: z.string(), task: z.string(), hidden: z.int(), layers: z.int(), vocabulary: z.int(), maxPositions: z.int() }),
  data: z.object({ file: z.string(), rows: z.int(), inversion: z.int(), evaluation: z.int(), unlearning: z.int(), evalFile: z.string().optional(), unlearnFile: z.string().optional() }),
  parameters: z.record(z.string(), z.unknown()),
  backend: z.string(),
  /** The GPU the backend ran on (webgpu: the adapter Dawn chose; a software driver such as llvmpipe shows here). */
  device: z.string().optional(),
  vocabulary: z.object({ size: z.int(), kept: z.int(), keepWordInitial: z.boolean(), unfiltered: z.literal(true).optional(), fallback: z.string().optional() }),
  options: z.array(OptionReport),
  chosen: z.string(),
  verdict: z.object({
    verdict: z.enum(['Backdoored', 'Clean', 'Unknown']),
    score: z.number().nullable(),
    threshold: z.number(),
    thresholdSource: z.enum(['default', 'flag']),
    scoreDefinition: z.string(),
    calibration: z.string(),
    evidence: z.record(z.string(), z.unknown()),
  }),
  unlearning: z
    .object({
      ran: z.boolean(),
      why: z.string(),
      trigger: TriggerReport.optional(),
      samples: z.int().optional(),
      injected: z.int().optional(),
      skipped: z.int().optional(),
      steps: z.int().optional(),
      trainable: z.string().optional(),
      parameters: z.int().optional(),
      placement: z.string().optional(),
      /**
       * A control run: `random-trigger`, `trigger` is random vocabulary tokens (--unlearn-random-trigger);
       * `known-trigger`, the known trigger was unlearnt the attack's way and `trigger` is the one found, unused (--unlearn-known-trigger).
       */
      control: z.enum(['random-trigger', 'known-trigger']).optional(),
      /** Single tokens unlearned besides the trigger, each with its flip rate alone on held-out samples (the verdict's tokens at or above its threshold). */
      singleTokens: z.array(z.object({ token: z.string(), tokenId: z.int(), flipRate: z.number() })).optional(),
      /** Adversarial unlearning: its settings, the adversary's −log P(target) in the first and last epoch, and how far the trigger rows moved. */
      adversary: z.object({ step: z.number(), radius: z.number(), steps: z.int(), firstEpochLoss: z.number().nullable(), lastEpochLoss: z.number().nullable(), meanShift: z.number() }).optional(),
      meanLoss: z.number().nullable().optional(),
      finalLoss: z.number().nullable().optional(),
      seconds: z.number().optional(),
    }),
  verification: z.object({
    cleanBefore: Clean,
    cleanAfter: Clean.optional(),
    invertedBefore: z.union([Asr, SearchAsrReport]).optional(),
    invertedAfter: z.union([Asr, SearchAsrReport]).optional(),
    /** The verdict's score recomputed on the cleaned model (same trigger, tokens and held-out samples). */
    scoreAfter: z.number().nullable().optional(),
    /** Whether the cleaned model scores below the verdict threshold: the trigger the scan found no longer works (says nothing of a trigger it did not find). */
    foundTriggerRemoved: z.boolean().optional(),
    known: z.object({
      attack: z.string(), trigger: z.string(), targetWord: z.string().optional(),
      /** Classification: the direction it was measured in, `given` by --known-*-label or the `scan`'s own. */
      victimLabel: z.int().optional(), targetLabel: z.int().optional(), direction: z.enum(['given', 'scan']).optional(),
      before: z.union([Asr, KnownSearchAsrReport]), after: z.union([Asr, KnownSearchAsrReport]).optional() }).optional(),
  }),
  output: z.object({ modelDir: z.string().optional(), sha256: z.string().optional(), weightsSha256: z.string().optional(), reportFile: z.string() }).optional(),
  fallbacks: z.array(z.string()),
  durations: z.object({ totalSeconds: z.number(), scanSeconds: z.number(), eliminateSeconds: z.number(), evaluateSeconds: z.number(), uploadSeconds: z.number() }),
  startedAt: z.string(),
  finishedAt: z.string(),
});
export type ScanReport = z.infer<typeof ScanReport>;

/** Writes a file by rename from a sibling temporary, so readers never see half of it. */
export function writeAtomically(file: string, text: string): void {
  const path = resolve(file);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? undefined : Math.min(1, Math.max(0, x)));
const trig = (t: { tokenIds: number[]; tokens: string[]; text: string }) => ({ tokenIds: t.tokenIds.slice(0, 64), tokens: t.tokens.slice(0, 64).map((x) => x.slice(0, 128)), text: t.text.slice(0, 1024) });

/** The status summary of a report (schema crds/scan-summary.ts), serialised to at most 4 KiB. */
export function summaryOf(r: ScanReport, uris: { modelUri?: string; reportUri?: string } = {}): string {
  const chosen = r.options.find((o) => o.option === r.chosen);
  const v = r.verification;
  const asr = (x: unknown) => (x && typeof x === 'object' && 'asr' in x ? (x as { asr: number }).asr : undefined);
  const s: ScanSummaryInput = {
    schemaVersion: SCAN_SUMMARY_SCHEMA_VERSION,
    task: r.task,
    verdict: r.verdict.verdict,
    ...(chosen?.victimLabel !== undefined ? { victimLabel: chosen.victimLabel } : {}),
    ...(chosen?.targetLabel !== undefined ? { targetLabel: chosen.targetLabel } : {}),
    ...(chosen ? { positionMode: chosen.positionMode } : {}),
    ...(chosen ? { triggers: { raw: trig(chosen.raw), anchored: trig(chosen.anchored), ...(chosen.query ? { query: trig(chosen.query) } : {}) } } : {}),
    metrics: Object.fromEntries(
      Object.entries({
        bestLoss: chosen?.bestLoss,
        detectionScore: r.verdict.score ?? undefined,
        detectionThreshold: r.verdict.threshold,
        detectionScoreAfter: v.scoreAfter ?? undefined,
        asrBefore: ratio(asr(v.invertedBefore)),
        asrAfter: ratio(asr(v.invertedAfter)),
        knownTriggerAsrBefore: ratio(v.known?.before.asr),
        knownTriggerAsrAfter: ratio(v.known?.after?.asr),
        accuracyBefore: r.task === 'defect' ? ratio(v.cleanBefore.accuracy) : undefined,
        accuracyAfter: r.task === 'defect' ? ratio(v.cleanAfter?.accuracy) : undefined,
        f1Before: ratio(v.cleanBefore.f1),
        f1After: ratio(v.cleanAfter?.f1),
        mrrBefore: ratio(v.cleanBefore.mrr),
        mrrAfter: ratio(v.cleanAfter?.mrr),
      }).filter(([, x]) => x !== undefined && Number.isFinite(x)),
    ),
    // Eliminated: unlearning ran, the cleaned model was written, and the trigger the scan found no longer scores as a backdoor on it.
    eliminated: r.unlearning.ran && r.output?.modelDir !== undefined && v.foundTriggerRemoved === true,
    ...(r.output?.modelDir ? { artifact: { modelUri: uris.modelUri ?? r.output.modelDir, ...(r.output.sha256 ? { sha256: r.output.sha256 } : {}), reportUri: uris.reportUri ?? r.output.reportFile } } : {}),
    durations: { totalSeconds: r.durations.totalSeconds, scanSeconds: r.durations.scanSeconds, eliminateSeconds: r.durations.eliminateSeconds, evaluateSeconds: r.durations.evaluateSeconds, uploadSeconds: r.durations.uploadSeconds },
    ...(r.fallbacks.length ? { caveats: r.fallbacks.slice(0, MAX_CAVEATS).map((c) => shorten(c)) } : {}),
  };
  return serializeScanSummary(s);
}

/** A failure summary: what the operator needs to set Failed with a reason. */
export function errorSummary(reason: string, message: string, task?: 'defect' | 'clone' | 'search'): string {
  return serializeScanSummary({ schemaVersion: SCAN_SUMMARY_SCHEMA_VERSION, ...(task ? { task } : {}), verdict: 'Unknown', error: { reason, message: message.slice(0, 1024) } });
}

export { ScanSummary };
