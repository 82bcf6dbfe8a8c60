/**
 * The worker's result summary: compact JSON the worker writes to its container termination message
 * (/dev/termination-log) and the operator copies into BackdoorScan status. Kubernetes keeps at most
 * 4096 bytes of a container's termination message, so the summary must fit in MAX_SUMMARY_BYTES;
 * the full report goes beside the cleaned model (artifact.reportUri).
 *
 * Both sides import this file: the worker builds a summary with `serializeScanSummary` (which
 * shrinks optional detail to fit), the operator reads it with `parseScanSummary`.
 */
import { z } from 'zod';
import { Artifact, CAVEAT_MAX, Caveats, Durations, Metrics, PATTERNS, Triggers } from './backdoorscan.ts';

/** Kubernetes truncates a container's termination message at 4096 bytes. */
export const MAX_SUMMARY_BYTES = 4096;
export const SCAN_SUMMARY_SCHEMA_VERSION = 1;

/** Error reasons the worker reports; copied into the Failed condition's reason. */
export const WorkerErrorReason = {
  /** Arguments, data or labels the worker cannot use. Permanent. */
  InvalidInput: 'InvalidInput',
  /** The model cannot be loaded or does not fit the task. Permanent. */
  BadModel: 'BadModel',
  /** Downloaded content does not match spec sha256. Permanent. */
  DigestMismatch: 'DigestMismatch',
  /** A model/data URI could not be fetched (network, credentials, missing object). Retried. */
  InputUnavailable: 'InputUnavailable',
  /** Writing the cleaned model or the report failed. Retried. */
  UploadFailed: 'UploadFailed',
  /** GPU or host memory ran out. Not retried with the same resources. */
  OutOfMemory: 'OutOfMemory',
  /** Anything else (a bug). Retried. */
  Internal: 'Internal',
} as const;
export type WorkerErrorReason = (typeof WorkerErrorReason)[keyof typeof WorkerErrorReason];

const PERMANENT = new Set<string>([
  WorkerErrorReason.InvalidInput,
  WorkerErrorReason.BadModel,
  WorkerErrorReason.DigestMismatch,
  WorkerErrorReason.OutOfMemory,
]);

/** Whether another attempt can help. Unknown reasons are treated as retriable. */
export function isRetriableWorkerError(reason: string): boolean {
  return !PERMANENT.has(reason);
}

export const ScanError = z.object({
  /** CamelCase, so it can be a condition reason as it is. Known values: WorkerErrorReason. */
  reason: z.string().min(1).max(64).regex(new RegExp(PATTERNS.reason)),
  message: z.string().max(1024),
});
export type ScanError = z.infer<typeof ScanError>;

export const ScanSummary = z.object({
  schemaVersion: z.literal(SCAN_SUMMARY_SCHEMA_VERSION),
  task: z.enum(['defect', 'clone', 'search']).optional(),
  verdict: z.enum(['Backdoored', 'Clean', 'Unknown']),
  targetLabel: z.int().min(0).optional(),
  victimLabel: z.int().min(0).optional(),
  positionMode: z.enum(['SampleSpecific', 'Fixed', 'BodyStart']).optional(),
  triggers: Triggers.optional(),
  metrics: Metrics.optional(),
  /** Whether unlearning ran and the cleaned model was written. */
  eliminated: z.boolean().optional(),
  artifact: Artifact.optional(),
  durations: Durations.optional(),
  /** The report's fallbacks, the first few and shortened: what a user should know before trusting the result. */
  caveats: Caveats.optional(),
  /** Present when the run failed; the other fields hold what was learned before the failure. */
  error: ScanError.optional(),
});
export type ScanSummary = z.infer<typeof ScanSummary>;
export type ScanSummaryInput = z.input<typeof ScanSummary>;

export type ParseResult = { ok: true; summary: ScanSummary } | { ok: false; error: string };

/**
 * Parse a termination message. Never throws: a bad message yields `{ ok: false, error }` with a
 * one-line reason fit for a condition message (the operator then sets Failed/InvalidSummary).
 */
export function parseScanSummary(text: string | undefined | null): ParseResult {
  if (text === undefined || text === null || text.trim() === '') {
    return { ok: false, error: 'the worker left no summary (empty termination message)' };
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SUMMARY_BYTES) {
    return { ok: false, error: `summary is ${bytes} bytes, over the ${MAX_SUMMARY_BYTES}-byte limit of a termination message` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const head = text.trim().slice(0, 80).replace(/\s+/g, ' ');
    return { ok: false, error: `summary is not JSON (${(err as Error).message}); it starts with: ${JSON.stringify(head)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'summary must be a JSON object' };
  }
  const v = (value as { schemaVersion?: unknown }).schemaVersion;
  if (v !== SCAN_SUMMARY_SCHEMA_VERSION) {
    return { ok: false, error: `summary schemaVersion ${JSON.stringify(v)} is not supported (expected ${SCAN_SUMMARY_SCHEMA_VERSION})` };
  }
  const r = ScanSummary.safeParse(value);
  if (!r.success) return { ok: false, error: `invalid summary: ${formatIssues(r.error.issues)}` };
  return { ok: true, summary: r.data };
}

/** `path: message; path: message` for up to three issues. */
export function formatIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  const shown = issues.slice(0, 3).map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`);
  const more = issues.length > 3 ? `; and ${issues.length - 3} more` : '';
  return shown.join('; ') + more;
}

/** `text` cut to at most `max` UTF-16 units (zod's string length), an ellipsis marking the cut; never splits a code point. */
export function shorten(text: string, max = CAVEAT_MAX): string {
  if (text.length <= max) return text;
  let kept = '';
  for (const ch of text) {
    if (kept.length + ch.length > max - 1) break;
    kept += ch;
  }
  return kept + '…';
}

/**
 * Validate and serialize a summary to compact JSON that fits in MAX_SUMMARY_BYTES. When too large,
 * detail is dropped in this order until it fits: token strings, token ids of the raw trigger, the
 * raw trigger, the query trigger, durations; then the caveats are shortened and only the first is
 * kept; finally the error message is shortened. Throws if the summary is invalid or cannot be made
 * to fit.
 */
export function serializeScanSummary(summary: ScanSummaryInput): string {
  const parsed = ScanSummary.parse(summary);
  let s: ScanSummary = structuredClone(parsed);
  const fits = (x: ScanSummary) => Buffer.byteLength(JSON.stringify(x), 'utf8') <= MAX_SUMMARY_BYTES;
  const steps: Array<(x: ScanSummary) => void> = [
    (x) => {
      for (const t of [x.triggers?.raw, x.triggers?.anchored, x.triggers?.query]) if (t) t.tokens = [];
    },
    (x) => {
      if (x.triggers?.raw) x.triggers.raw.tokenIds = [];
    },
    (x) => {
      if (x.triggers) delete x.triggers.raw;
    },
    (x) => {
      if (x.triggers) delete x.triggers.query;
    },
    (x) => {
      delete x.durations;
    },
    // Caveats go last of the detail: shortened first, then only the first kept.
    (x) => {
      if (x.caveats) x.caveats = x.caveats.map((c) => shorten(c, 96));
    },
    (x) => {
      if (x.caveats) x.caveats = x.caveats.slice(0, 1);
    },
  ];
  for (const step of steps) {
    if (fits(s)) break;
    step(s);
  }
  if (!fits(s) && s.error) {
    // Shorten the message by code points until it fits (multi-byte characters make bytes approximate).
    const chars = [...s.error.message];
    const over = Buffer.byteLength(JSON.stringify(s), 'utf8') - MAX_SUMMARY_BYTES;
    for (let keep = Math.max(0, chars.length - over - 1); keep >= 0; keep = keep > 16 ? keep - 16 : keep - 1) {
      s = { ...s, error: { ...s.error!, message: chars.slice(0, keep).join('') + '…' } };
      if (fits(s)) break;
    }
  }
  const text = JSON.stringify(s);
  if (Buffer.byteLength(text, 'utf8') > MAX_SUMMARY_BYTES) {
    throw new Error(`scan summary does not fit in ${MAX_SUMMARY_BYTES} bytes even after dropping detail (${Buffer.byteLength(text, 'utf8')} bytes)`);
  }
  return text;
}
