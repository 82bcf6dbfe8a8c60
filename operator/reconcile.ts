// Reconcile one BackdoorScan: level-triggered and idempotent. It reads the scan, its Jobs and their
// Pods from the caches, decides what the world should look like, makes at most the API calls needed
// (create the attempt's Job, delete it on suspend), then writes status once (only if it changed)
// and, after that write succeeded, emits the events of the transitions it made.
import type { KubernetesObject, V1Job, V1Pod, V1ContainerStatus } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  API_VERSION,
  BackdoorScanSpec,
  ConditionReason as R,
  ConditionType as C,
  GROUP,
  KIND,
  LABELS,
  PLURAL,
  VERSION,
  type BackdoorScan,
  type BackdoorScanStatus,
  type ConditionReason,
} from '../crds/backdoorscan.ts';
import { formatIssues, isRetriableWorkerError, parseScanSummary, type ScanSummary } from '../crds/scan-summary.ts';
import type { EventSink, PendingEvent } from './events.ts';
import { buildJob, jobName, WORKER_CONTAINER, type JobConfig } from './job.ts';
import { describeError, isAlreadyExists, isConflict, isNotFound, type RequestCounter } from './kube.ts';
import type { Cache } from './listwatch.ts';
import type { OperatorMetrics, Verdict } from './metrics.ts';
import type { ProgressSource } from './progress.ts';
import { deepEqual, findCondition, isTrue, rfc3339, setCondition, writeStatus, type ConditionInput, type ConditionLike, type StatusPatcher } from './status.ts';

/** What the API server stores: spec as written (defaults applied by the CRD), status as we wrote it. */
export interface ScanObject extends KubernetesObject {
  spec?: unknown;
  status?: Record<string, unknown>;
}

export interface ReconcileOutcome {
  /** Reconcile again after this many ms (level-triggered polling for time-based decisions). */
  requeueAfterMs?: number;
  /** What happened, for the log line. */
  action?: string;
}

/** A stale read: the status write lost an optimistic-concurrency race. Requeue with backoff, not an error. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** The Job calls reconcile makes (KubeClient, or client-node's BatchV1Api). */
export interface JobWriter {
  createNamespacedJob(r: { namespace: string; body: V1Job }): Promise<unknown>;
  deleteNamespacedJob(r: { name: string; namespace: string; propagationPolicy?: string }): Promise<unknown>;
}

export interface ReconcilerDeps {
  scans: Cache<ScanObject>;
  jobs: Cache<V1Job>;
  pods: Cache<V1Pod>;
  batch: JobWriter;
  /** BackdoorScan status, written with a JSON merge patch. */
  custom: StatusPatcher;
  events: EventSink;
  metrics?: OperatorMetrics;
  jobConfig: JobConfig;
  logger?: Logger;
  requests?: RequestCounter;
  now?: () => Date;
  /** How long a Job may sit with a missing credentials Secret before the scan fails (default 5 min). */
  secretGraceMs?: number;
  /** How long to wait for the finished Job's pod to show up in the cache before failing (default 60 s). */
  podGraceMs?: number;
  /** Live progress reported by workers (operator/progress.ts); copied into status.progress while the attempt runs. */
  progress?: ProgressSource;
  /** How long a created Job may be missing from the cache before it is created again (default 5 min). */
  expectationTtlMs?: number;
}

/** Condition types of which at most one is True. */
const EXCLUSIVE = [C.Running, C.Succeeded, C.Failed, C.Suspended];

export const INDEX_OWNER = (obj: { metadata?: { ownerReferences?: Array<{ controller?: boolean; uid: string; kind: string }> } }): string[] =>
  (obj.metadata?.ownerReferences ?? []).filter((o) => o.controller && o.kind === KIND).map((o) => o.uid);

export const INDEX_JOB = (pod: V1Pod): string[] => {
  const l = pod.metadata?.labels ?? {};
  const name = l['batch.kubernetes.io/job-name'] ?? l['job-name'];
  return name ? [`${pod.metadata?.namespace}/${name}`] : [];
};

function toIso(t: string | Date | undefined): string | undefined {
  if (!t) return undefined;
  return rfc3339(t instanceof Date ? t : new Date(t));
}

function jobCondition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

function workerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((c) => c.name === WORKER_CONTAINER) ?? pod.status?.containerStatuses?.[0];
}

/** The finished pod whose termination message tells the outcome: the latest terminated worker. */
function terminatedPod(pods: V1Pod[], phase?: 'Succeeded' | 'Failed'): { pod: V1Pod; cs: V1ContainerStatus } | undefined {
  let best: { pod: V1Pod; cs: V1ContainerStatus; at: number } | undefined;
  for (const pod of pods) {
    if (phase && pod.status?.phase !== phase) continue;
    const cs = workerStatus(pod);
    const term = cs?.state?.terminated;
    if (!cs || !term) continue;
    const at = term.finishedAt ? new Date(term.finishedAt).getTime() : 0;
    if (!best || at >= best.at) best = { pod, cs, at };
  }
  return best && { pod: best.pod, cs: best.cs };
}

const pendingMessage = (job: string) => `Job ${job} created, waiting for the worker pod to start`;

/** Why an unfinished Job's pod is not running yet, if it says. */
function waitingReason(job: V1Job, pods: V1Pod[]): { running: boolean; reason: string; message: string; startedAt?: string } {
  if (job.spec?.suspend) {
    const q = job.metadata?.labels?.[LABELS.queueName];
    return {
      running: false,
      reason: R.WaitingForQuota,
      message: q ? `Job ${job.metadata?.name} is queued in Kueue LocalQueue ${q}, waiting for quota` : `Job ${job.metadata?.name} is suspended`,
    };
  }
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const cs = workerStatus(pod);
    if (cs?.state?.running) {
      return { running: true, reason: R.PodRunning, message: `worker pod ${pod.metadata?.name} is running`, startedAt: toIso(cs.state.running.startedAt ?? pod.status?.startTime) };
    }
    const waiting = cs?.state?.waiting;
    if (waiting?.reason && /ImagePull|ErrImage|InvalidImageName/.test(waiting.reason)) {
      return { running: false, reason: R.ImagePullFailed, message: `worker pod ${pod.metadata?.name}: ${waiting.reason}: ${waiting.message ?? ''}`.trim() };
    }
    if (waiting?.reason === 'CreateContainerConfigError' && /secret/i.test(waiting.message ?? '')) {
      return { running: false, reason: R.SecretNotFound, message: `worker pod ${pod.metadata?.name}: ${waiting.message ?? waiting.reason}` };
    }
    const sched = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (sched?.status === 'False' && sched.reason === 'Unschedulable') {
      return { running: false, reason: R.Unschedulable, message: `worker pod ${pod.metadata?.name} is unschedulable: ${sched.message ?? ''}`.trim() };
    }
  }
  return { running: false, reason: R.Pending, message: pendingMessage(job.metadata?.name ?? '') };
}

interface Failure {
  reason: string;
  message: string;
  retriable: boolean;
  summary?: ScanSummary;
}

/** Classify a failed Job from its condition, its pod and the worker's summary. */
function classifyFailure(job: V1Job, pods: V1Pod[]): Failure {
  const failed = jobCondition(job, 'Failed');
  const name = job.metadata?.name;
  const t = terminatedPod(pods, 'Failed') ?? terminatedPod(pods);
  const term = t?.cs.state?.terminated;
  const parsed = term?.message ? parseScanSummary(term.message) : undefined;
  const summary = parsed?.ok ? parsed.summary : undefined;
  if (summary?.error) {
    return {
      reason: summary.error.reason,
      message: `attempt Job ${name}: ${summary.error.message}`,
      retriable: isRetriableWorkerError(summary.error.reason),
      summary,
    };
  }
  if (failed?.reason === 'DeadlineExceeded') {
    return { reason: R.DeadlineExceeded, message: `Job ${name} ran longer than activeDeadlineSeconds=${job.spec?.activeDeadlineSeconds}: ${failed.message ?? ''}`.trim(), retriable: false };
  }
  if (term?.reason === 'OOMKilled') {
    return { reason: R.OutOfMemory, message: `worker of Job ${name} was killed for exceeding its memory limit`, retriable: false };
  }
  if (t?.pod.status?.reason === 'Evicted') {
    return { reason: R.Evicted, message: `worker pod ${t.pod.metadata?.name} was evicted: ${t.pod.status.message ?? ''}`.trim(), retriable: true };
  }
  const exit = term ? ` (exit code ${term.exitCode}${term.reason ? `, ${term.reason}` : ''})` : '';
  const detail = parsed && !parsed.ok && term?.message ? `; termination message unusable: ${parsed.error}` : '';
  if (failed?.reason === 'PodFailurePolicy') {
    return { reason: R.PodFailed, message: `worker of Job ${name} failed permanently${exit}: ${failed.message ?? ''}${detail}`.trim(), retriable: false };
  }
  return { reason: R.PodFailed, message: `worker of Job ${name} failed${exit}${failed?.message ? `: ${failed.message}` : ''}${detail}`, retriable: true };
}

/** Copy what a summary carries into status fields. */
function applySummary(status: Record<string, unknown>, s: ScanSummary): void {
  const set = (k: string, v: unknown) => {
    if (v !== undefined) status[k] = v;
  };
  set('verdict', s.verdict);
  set('targetLabel', s.targetLabel);
  set('victimLabel', s.victimLabel);
  set('positionMode', s.positionMode);
  set('triggers', s.triggers);
  set('metrics', s.metrics);
  set('artifact', s.artifact);
  set('durations', s.durations);
  // Caveats belong to the attempt that wrote them: an earlier attempt's must not outlive it.
  if (s.caveats?.length) status.caveats = s.caveats;
  else delete status.caveats;
}

/** The Succeeded condition's message: the verdict, and the first caveat when there are any. */
function finishedMessage(s: ScanSummary): string {
  const c = s.caveats ?? [];
  if (!c.length) return `scan finished: verdict ${s.verdict}`;
  const more = c.length > 1 ? ` (and ${c.length - 1} more)` : '';
  return `scan finished: verdict ${s.verdict}; caveat${more}, see status.caveats: ${c[0]}`;
}

/**
 * Jobs this process created that its cache has not shown yet (client-go's ControllerExpectations):
 * a reconcile that runs before the Job's watch event (our status write triggers one at once) must
 * not send the same create again only to be told 409. An expectation ends when the cache shows the
 * Job, when we delete it, or after `ttlMs` (then a create is tried again: 409 is still harmless).
 */
export class JobExpectations {
  private readonly created = new Map<string, number>();
  /** Events of a creating reconcile that did not write status, by scan UID (see Reconciler). */
  private readonly unannounced = new Map<string, { at: number; events: PendingEvent[] }>();
  readonly ttlMs: number;
  constructor(ttlMs = 5 * 60_000) {
    this.ttlMs = ttlMs;
  }
  expect(scanUid: string, job: string, nowMs: number): void {
    if (this.created.size >= 1024) for (const [k, at] of this.created) if (nowMs - at >= this.ttlMs) this.created.delete(k);
    this.created.set(`${scanUid}/${job}`, nowMs);
  }
  pending(scanUid: string, job: string, nowMs: number): boolean {
    const at = this.created.get(`${scanUid}/${job}`);
    return at !== undefined && nowMs - at < this.ttlMs;
  }
  observed(scanUid: string, job: string): void {
    this.created.delete(`${scanUid}/${job}`);
  }
  /** Keep events for the reconcile that writes the status they describe. */
  carry(scanUid: string, events: PendingEvent[], nowMs: number): void {
    if (events.length === 0) return;
    if (this.unannounced.size >= 1024) for (const [k, e] of this.unannounced) if (nowMs - e.at >= this.ttlMs) this.unannounced.delete(k);
    this.unannounced.set(scanUid, { at: nowMs, events });
  }
  carried(scanUid: string): PendingEvent[] {
    return this.unannounced.get(scanUid)?.events ?? [];
  }
  /** After the status write that emitted them. */
  announced(scanUid: string): void {
    this.unannounced.delete(scanUid);
  }
  get size(): number {
    return this.created.size;
  }
}

export class Reconciler {
  private readonly d: ReconcilerDeps;
  private readonly now: () => Date;
  readonly expectations: JobExpectations;

  constructor(deps: ReconcilerDeps) {
    this.d = deps;
    this.now = deps.now ?? (() => new Date());
    this.expectations = new JobExpectations(deps.expectationTtlMs);
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const obj = this.d.scans.get(key);
    if (!obj) return { action: 'gone' }; // deleted: Jobs go with it (ownerReferences)
    if (obj.metadata?.deletionTimestamp) return { action: 'deleting' };
    const md = obj.metadata!;
    const generation = md.generation ?? 0;
    const oldStatus = (obj.status ?? {}) as Record<string, unknown>;
    const status: Record<string, unknown> = structuredClone(oldStatus);
    let conds = ((oldStatus.conditions as ConditionLike[] | undefined) ?? []).map((c) => ({ ...c }));
    const events: PendingEvent[] = [];
    const now = this.now();
    const set = (c: ConditionInput) => {
      conds = setCondition(conds, c, { now, generation, exclusive: EXCLUSIVE });
    };
    const ensure = (c: ConditionInput) => {
      if (!findCondition(conds, c.type)) set(c);
    };
    const transitioned = (type: string, statusValue: string, before: ConditionLike[]) =>
      findCondition(conds, type)?.status === statusValue && findCondition(before, type)?.status !== statusValue;
    const before = conds.map((c) => ({ ...c }));
    let outcome: ReconcileOutcome = {};

    // Completed scans are left alone: their result is final.
    if (isTrue(conds, C.Succeeded) || isTrue(conds, C.Failed)) return { action: 'finished' };

    // Validate the spec only: the API server already checked it against the CRD; this catches what
    // got through an older CRD version, and applies the defaults the zod schema knows.
    const parsed = BackdoorScanSpec.safeParse(obj.spec);
    if (!parsed.success) {
      set({ type: C.Accepted, status: 'False', reason: R.InvalidSpec, message: `spec is invalid: ${formatIssues(parsed.error.issues)}` });
      ensure({ type: C.Running, status: 'False', reason: R.Pending, message: 'not started: the spec is invalid' });
      if (transitioned(C.Accepted, 'False', before) || findCondition(before, C.Accepted)?.reason !== R.InvalidSpec) {
        events.push({ type: 'Warning', reason: R.InvalidSpec, action: 'Validate', note: findCondition(conds, C.Accepted)!.message });
      }
      status.observedGeneration = generation;
      status.conditions = conds;
      await this.commit(obj, oldStatus, status, events);
      // No requeue: a spec change is a new event. No hot loop.
      return { action: 'invalid' };
    }
    const spec = parsed.data;
    const scan = { apiVersion: API_VERSION, kind: KIND, metadata: md, spec } as unknown as BackdoorScan;
    const maxAttempts = spec.retry.maxAttempts;

    // Accepted is decided at the end (a missing Secret, seen on the pod, makes it False).
    let accepted: ConditionInput = { type: C.Accepted, status: 'True', reason: R.SpecValid, message: 'spec is valid' };
    ensure(accepted);
    let queueWait: number | undefined;
    ensure({ type: C.Running, status: 'False', reason: R.Pending, message: 'waiting for the worker Job' });
    ensure({ type: C.Succeeded, status: 'Unknown', reason: R.Pending, message: 'the scan has not finished' });
    ensure({ type: C.BackdoorDetected, status: 'Unknown', reason: R.Pending, message: 'the scan has not finished' });

    const owned = this.d.jobs.byIndex(md.uid!);
    const attemptOf = (j: V1Job) => Number(j.metadata?.labels?.[LABELS.attempt] ?? '0') || 0;
    let attempt = Math.max((status.attempts as number | undefined) ?? 0, ...owned.map(attemptOf));
    const current = attempt > 0 ? owned.find((j) => attemptOf(j) === attempt) : undefined;
    const podsOf = (j: V1Job) => this.d.pods.byIndex(`${j.metadata?.namespace}/${j.metadata?.name}`);

    // Announcements a creating reconcile left for this one (emitted only after its status write).
    const carried = this.expectations.carried(md.uid!);
    events.push(...carried);

    // Suspend: delete the running Job, keep everything learned so far.
    if (spec.suspend) {
      for (const j of owned) {
        if (j.metadata?.deletionTimestamp || jobCondition(j, 'Complete') || jobCondition(j, 'Failed')) continue;
        await this.deleteJob(j);
        outcome.action = 'suspended';
      }
      // A Job this process created moments ago that the cache does not show yet: delete it by its
      // deterministic name now instead of waiting for its watch event (which a slow or restarting
      // Job watch can hold back for seconds).
      const unseen = jobName(md.name!, Math.max(attempt, 1));
      if (!owned.some((j) => j.metadata?.name === unseen) && this.expectations.pending(md.uid!, unseen, now.getTime())) {
        await this.deleteJobNamed(md.namespace!, unseen, md.uid!);
        attempt = Math.max(attempt, 1);
        outcome.action = 'suspended';
      }
      if (attempt > 0) {
        status.attempts = attempt;
        status.jobName = jobName(md.name!, attempt);
      }
      if (!isTrue(conds, C.Suspended)) {
        set({ type: C.Suspended, status: 'True', reason: R.SuspendedByUser, message: 'spec.suspend is true: the worker Job was deleted; set it to false to resume' });
        set({ type: C.Running, status: 'False', reason: R.SuspendedByUser, message: 'suspended' });
        events.push({ type: 'Normal', reason: R.SuspendedByUser, action: 'Suspend', note: `Suspended; deleted the worker Job of attempt ${attempt}` });
      }
      set(accepted);
      delete status.progress;
      status.observedGeneration = generation;
      status.conditions = conds;
      await this.commit(obj, oldStatus, status, events);
      if (carried.length) this.expectations.announced(md.uid!);
      return outcome;
    }
    if (isTrue(conds, C.Suspended)) {
      set({ type: C.Suspended, status: 'False', reason: R.Resumed, message: 'spec.suspend is false' });
      events.push({ type: 'Normal', reason: R.Resumed, action: 'Resume', note: `Resumed at attempt ${Math.max(attempt, 1)}` });
    }

    /** Returns whether a create request was sent. */
    const createAttempt = async (n: number, why: string, opts: { defer?: boolean } = {}): Promise<boolean> => {
      const name = jobName(md.name!, n);
      status.attempts = n;
      status.jobName = name;
      // Created (or found existing) moments ago and not in the cache yet: the watch lags our write.
      if (this.expectations.pending(md.uid!, name, now.getTime())) {
        outcome.action = `awaiting ${name} in the cache`;
        return false;
      }
      const job = buildJob(scan, n, this.d.jobConfig);
      this.d.requests?.inc('create', 'jobs');
      const created: PendingEvent[] = [];
      try {
        await this.d.batch.createNamespacedJob({ namespace: md.namespace!, body: job });
        created.push({ type: 'Normal', reason: R.JobCreated, action: 'CreateJob', note: `Created Job ${name} (attempt ${n}/${maxAttempts})${why ? `: ${why}` : ''}` });
        outcome.action = `created ${name}`;
      } catch (err) {
        // Deterministic name: it exists, so this attempt already has its Job (our cache lags).
        if (!isAlreadyExists(err)) throw err;
        outcome.action = `exists ${name}`;
      }
      this.expectations.expect(md.uid!, name, now.getTime());
      if (opts.defer) this.expectations.carry(md.uid!, created, now.getTime());
      else events.push(...created);
      return true;
    };
    if (current) this.expectations.observed(md.uid!, current.metadata!.name!);

    let liveAttempt: number | undefined; // set while the current attempt's Job is active
    if (attempt === 0 || !current) {
      const first = attempt === 0;
      attempt = Math.max(attempt, 1);
      // A new scan's first Job is what its user waits for: the reconcile that creates it ends
      // there, and the next one (queued at once, at normal priority, behind the Jobs of other new
      // scans) writes the status showing it and announces it; the expectation covers the Job
      // until the cache has it. Under a burst of new scans this halves the requests each new scan
      // waits for. (Retries and resumes keep one reconcile: their status says why.)
      if (first && (await createAttempt(attempt, '', { defer: true }))) {
        outcome.requeueAfterMs = 0;
        return outcome;
      }
      if (!first) await createAttempt(attempt, '');
      // The same words the next reconcile will find (waitingReason), so it has nothing to write.
      const r = findCondition(conds, C.Running);
      if (r?.status !== 'True' && r?.reason !== R.Retrying) set({ type: C.Running, status: 'False', reason: R.Pending, message: pendingMessage(jobName(md.name!, attempt)) });
    } else if (current.metadata?.deletionTimestamp) {
      outcome.action = 'waiting for Job deletion';
    } else if (jobCondition(current, 'Complete')) {
      const pods = podsOf(current);
      const t = terminatedPod(pods, 'Succeeded') ?? terminatedPod(pods);
      const completion = toIso(current.status?.completionTime) ?? rfc3339(now);
      status.startTime ??= toIso(current.status?.startTime);
      if (!t) {
        const since = current.status?.completionTime ? now.getTime() - new Date(current.status.completionTime).getTime() : 0;
        const grace = this.d.podGraceMs ?? 60_000;
        if (since < grace) {
          outcome = { action: 'waiting for the worker pod', requeueAfterMs: Math.min(5_000, grace - since) };
        } else {
          this.fail(set, events, R.InvalidSummary, `Job ${current.metadata?.name} completed but its worker pod is gone: no summary to read`, completion, status);
        }
      } else {
        const parsedSummary = parseScanSummary(t.cs.state?.terminated?.message);
        if (!parsedSummary.ok) {
          this.fail(set, events, R.InvalidSummary, `worker of Job ${current.metadata?.name} succeeded but ${parsedSummary.error}`, completion, status);
        } else if (parsedSummary.summary.error) {
          const s = parsedSummary.summary;
          applySummary(status, s);
          this.fail(set, events, s.error!.reason, `attempt Job ${current.metadata?.name}: ${s.error!.message}`, completion, status);
        } else {
          const s = parsedSummary.summary;
          applySummary(status, s);
          status.completionTime = completion;
          set({ type: C.Succeeded, status: 'True', reason: R.ScanCompleted, message: finishedMessage(s) });
          set({ type: C.Running, status: 'False', reason: R.Finished, message: `Job ${current.metadata?.name} completed` });
          if (s.verdict === 'Backdoored') {
            set({ type: C.BackdoorDetected, status: 'True', reason: R.BackdoorFound, message: describeFinding(s) });
          } else if (s.verdict === 'Clean') {
            set({ type: C.BackdoorDetected, status: 'False', reason: R.NoBackdoorFound, message: describeFinding(s) });
          } else {
            set({ type: C.BackdoorDetected, status: 'Unknown', reason: R.Inconclusive, message: describeFinding(s) });
          }
          set(eliminatedCondition(spec, s));
          events.push({
            type: s.verdict === 'Backdoored' ? 'Warning' : 'Normal',
            reason: s.verdict === 'Backdoored' ? R.BackdoorFound : R.ScanCompleted,
            action: 'Complete',
            note: describeFinding(s),
          });
        }
      }
    } else if (jobCondition(current, 'Failed')) {
      const pods = podsOf(current);
      const f = classifyFailure(current, pods);
      if (f.summary) applySummary(status, f.summary);
      status.startTime ??= toIso(current.status?.startTime);
      if (f.retriable && attempt < maxAttempts) {
        const next = attempt + 1;
        set({ type: C.Running, status: 'False', reason: R.Retrying, message: `attempt ${attempt} failed (${f.reason}: ${f.message}); starting attempt ${next}/${maxAttempts}` });
        events.push({ type: 'Warning', reason: R.Retrying, action: 'Retry', note: `Attempt ${attempt}/${maxAttempts} failed: ${f.reason}: ${f.message}` });
        await createAttempt(next, `retry after ${f.reason}`);
      } else {
        const reason = f.retriable ? R.RetriesExhausted : f.reason;
        const message = f.retriable ? `${maxAttempts} attempt(s) failed; last: ${f.reason}: ${f.message}` : f.message;
        this.fail(set, events, reason, message, toIso(jobCondition(current, 'Failed')?.lastTransitionTime) ?? rfc3339(now), status);
      }
    } else {
      // Active (or queued) Job.
      liveAttempt = attempt;
      const pods = podsOf(current);
      const w = waitingReason(current, pods);
      if (w.running) {
        if (!isTrue(conds, C.Running)) {
          set({ type: C.Running, status: 'True', reason: R.PodRunning, message: w.message });
          events.push({ type: 'Normal', reason: R.PodRunning, action: 'Start', note: `Attempt ${attempt}/${maxAttempts}: ${w.message}` });
        }
        if (!status.startTime) {
          status.startTime = w.startedAt ?? rfc3339(now);
          const created = md.creationTimestamp ? new Date(md.creationTimestamp).getTime() : undefined;
          if (created) queueWait = Math.max(0, (new Date(status.startTime as string).getTime() - created) / 1000);
        }
      } else {
        const prev = findCondition(conds, C.Running);
        const secretWaitedMs = now.getTime() - new Date(current.metadata?.creationTimestamp ?? now).getTime();
        const secretGraceMs = this.d.secretGraceMs ?? 300_000;
        const secretTooLong = w.reason === R.SecretNotFound && secretWaitedMs > secretGraceMs;
        if (secretTooLong) {
          accepted = { type: C.Accepted, status: 'False', reason: R.SecretNotFound, message: w.message };
          await this.deleteJob(current);
          this.fail(set, events, R.SecretNotFound, w.message, rfc3339(now), status);
        } else if (!(w.reason === R.Pending && prev?.reason === R.Retrying && prev.status === 'False')) {
          // (A retry keeps saying Retrying until the new attempt's pod does something.)
          if (prev?.reason !== w.reason || prev?.message !== w.message || prev?.status !== 'False') {
            set({ type: C.Running, status: 'False', reason: w.reason, message: w.message });
            if (prev?.reason !== w.reason && (w.reason === R.ImagePullFailed || w.reason === R.Unschedulable || w.reason === R.SecretNotFound)) {
              events.push({ type: 'Warning', reason: w.reason, action: 'Wait', note: w.message });
            }
          }
          if (w.reason === R.SecretNotFound) {
            accepted = { type: C.Accepted, status: 'False', reason: R.SecretNotFound, message: w.message };
            // Look again when the grace period is over (or sooner, the Secret may appear).
            outcome.requeueAfterMs = Math.max(500, Math.min(15_000, secretGraceMs - secretWaitedMs + 100));
          }
        }
      }
      status.jobName = current.metadata?.name;
      status.attempts = attempt;
    }

    // Live progress belongs to the running attempt only: the latest report, else what status has.
    if (liveAttempt !== undefined && !isTrue(conds, C.Failed)) {
      const p = this.d.progress?.latest(md.uid!, liveAttempt);
      if (p) status.progress = p;
    } else {
      delete status.progress;
      if (isTrue(conds, C.Succeeded) || isTrue(conds, C.Failed)) this.d.progress?.forget(md.uid!);
    }
    set(accepted);
    status.observedGeneration = generation;
    status.conditions = conds;
    await this.commit(obj, oldStatus, status, events, queueWait);
    if (carried.length) this.expectations.announced(md.uid!);
    return outcome;
  }

  private fail(
    set: (c: ConditionInput) => void,
    events: PendingEvent[],
    reason: string,
    message: string,
    completion: string,
    status: Record<string, unknown>,
  ): void {
    set({ type: C.Failed, status: 'True', reason, message });
    set({ type: C.Succeeded, status: 'False', reason, message: 'the scan failed' });
    set({ type: C.Running, status: 'False', reason: R.Finished, message: 'the scan failed' });
    status.completionTime = completion;
    events.push({ type: 'Warning', reason, action: 'Fail', note: message });
  }

  private deleteJob(job: V1Job): Promise<void> {
    return this.deleteJobNamed(job.metadata!.namespace!, job.metadata!.name!, INDEX_OWNER(job)[0]);
  }

  /** Delete a Job (404 is fine) and end the create expectation of its owner, if any. */
  private async deleteJobNamed(namespace: string, name: string, ownerUid: string | undefined): Promise<void> {
    if (ownerUid) this.expectations.observed(ownerUid, name);
    this.d.requests?.inc('delete', 'jobs');
    try {
      await this.d.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The one status write of this reconcile, then the events, then the metrics of what changed. */
  private async commit(obj: ScanObject, from: Record<string, unknown>, to: Record<string, unknown>, events: PendingEvent[], queueWait?: number): Promise<void> {
    if (deepEqual(from, to)) return;
    const md = obj.metadata!;
    this.d.requests?.inc('patch', 'backdoorscans/status');
    let updated: ScanObject | undefined;
    try {
      updated = await writeStatus<ScanObject>(
        this.d.custom,
        { group: GROUP, version: VERSION, plural: PLURAL, namespace: md.namespace!, name: md.name!, resourceVersion: md.resourceVersion },
        from,
        to,
      );
    } catch (err) {
      if (isConflict(err)) throw new ConflictError(`status of ${md.namespace}/${md.name} changed since it was read`);
      if (isNotFound(err)) return; // deleted meanwhile
      throw err;
    }
    if (updated) this.d.scans.mutate(updated);
    // Emitted after the write succeeded, without holding the worker: events are best effort.
    this.d.events.emitInBackground(
      { apiVersion: API_VERSION, kind: KIND, name: md.name!, namespace: md.namespace!, uid: md.uid, resourceVersion: updated?.metadata?.resourceVersion },
      events,
    );
    const m = this.d.metrics;
    if (!m) return;
    if (queueWait !== undefined) m.scanQueueWait.observe(queueWait);
    const fromConds = (from.conditions as ConditionLike[] | undefined) ?? [];
    const toConds = (to.conditions as ConditionLike[] | undefined) ?? [];
    const became = (type: string) => isTrue(toConds, type) && !isTrue(fromConds, type);
    if (became(C.Succeeded) || became(C.Failed)) {
      const verdict: Verdict = became(C.Failed) ? 'Failed' : to.verdict === 'Backdoored' || to.verdict === 'Clean' ? to.verdict : 'Unknown';
      m.scansFinished.inc({ verdict });
      if (verdict === 'Backdoored') m.backdoorsDetected.inc();
      const eliminated = findCondition(toConds, C.Eliminated);
      if (became(C.Succeeded) && eliminated && eliminated.reason !== R.EliminationDisabled) m.eliminations.inc({ result: eliminated.reason });
      if (to.startTime && to.completionTime) {
        const d = (new Date(to.completionTime as string).getTime() - new Date(to.startTime as string).getTime()) / 1000;
        if (d >= 0) m.scanDuration.observe(d);
      }
    }
  }
}

/** The Eliminated condition of a finished scan: what unlearning did, or why it did not run. */
function eliminatedCondition(spec: BackdoorScan['spec'], s: ScanSummary): ConditionInput {
  const no = (reason: ConditionReason, message: string): ConditionInput => ({ type: C.Eliminated, status: 'False', reason, message });
  if (!spec.eliminate) return no(R.EliminationDisabled, 'spec.eliminate is false');
  const after = s.metrics?.detectionScoreAfter;
  if (s.eliminated ?? !!s.artifact?.modelUri) {
    const score = after !== undefined ? `; the trigger found scores ${after} on it (threshold ${s.metrics?.detectionThreshold})` : '';
    return { type: C.Eliminated, status: 'True', reason: R.TriggerUnlearned, message: `cleaned model written to ${s.artifact?.modelUri ?? spec.output?.uri}${score}` };
  }
  if (s.artifact?.modelUri) {
    return no(
      R.BackdoorSurvived,
      `unlearning ran and wrote ${s.artifact.modelUri}, but the cleaned model still scores ${after ?? 'unknown'} against threshold ${s.metrics?.detectionThreshold}: do not deploy it; rescan with stronger unlearning (spec.unlearning: trainable All, more epochs)`,
    );
  }
  if (s.verdict !== 'Backdoored' && !spec.unlearning.force) {
    return no(s.verdict === 'Clean' ? R.NothingToUnlearn : R.Inconclusive, `verdict ${s.verdict}: no trigger was unlearned and no model written (spec.unlearning.force unlearns anyway)`);
  }
  return no(R.Inconclusive, 'the worker did not write a cleaned model');
}

function describeFinding(s: ScanSummary): string {
  const parts = [`verdict ${s.verdict}`];
  if (s.targetLabel !== undefined) parts.push(`target label ${s.targetLabel}`);
  const trig = s.triggers?.anchored?.text ?? s.triggers?.raw?.text;
  if (trig !== undefined) parts.push(`trigger ${JSON.stringify(trig)}`);
  if (s.metrics?.detectionScore !== undefined) parts.push(`score ${s.metrics.detectionScore}${s.metrics.detectionThreshold !== undefined ? ` (threshold ${s.metrics.detectionThreshold})` : ''}`);
  if (s.metrics?.asrBefore !== undefined) parts.push(`ASR ${s.metrics.asrBefore}${s.metrics.asrAfter !== undefined ? ` -> ${s.metrics.asrAfter}` : ''}`);
  const known = s.metrics?.knownTriggerAsrBefore;
  if (known !== undefined) parts.push(`known trigger ASR ${known}${s.metrics?.knownTriggerAsrAfter !== undefined ? ` -> ${s.metrics.knownTriggerAsrAfter}` : ''}`);
  if (s.artifact?.modelUri) parts.push(`cleaned model ${s.artifact.modelUri}`);
  return parts.join(', ');
}

/** The state a scan is in, for the elibadcode_scans{condition} gauge. */
export function scanState(obj: ScanObject): string {
  const conds = (obj.status?.conditions as ConditionLike[] | undefined) ?? [];
  if (isTrue(conds, C.Succeeded)) return 'Succeeded';
  if (isTrue(conds, C.Failed)) return 'Failed';
  if (isTrue(conds, C.Suspended)) return 'Suspended';
  if (findCondition(conds, C.Accepted)?.status === 'False') return findCondition(conds, C.Accepted)?.reason === R.InvalidSpec ? 'Invalid' : 'Pending';
  if (isTrue(conds, C.Running)) return 'Running';
  if (findCondition(conds, C.Running)?.reason === R.WaitingForQuota) return 'Queued';
  return 'Pending';
}

export type { BackdoorScanStatus };
export { describeError };
