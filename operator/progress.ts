// Live progress of running scans: the kubeflow/trainer v2 "status server" pattern.
//
// Worker pods POST {stage, option, iteration, ...} to `POST /v1/progress` on the operator with
// `Authorization: Bearer <token>`, where the token is a projected service-account token whose
// audience is `elibadcode.dev/progress` (not the API server's: it is no API credential, and the
// worker pod still has automountServiceAccountToken: false and no RBAC). The operator checks it:
//
//   1. TokenReview (authentication.k8s.io/v1) asking for that audience: authenticated, audience
//      matched, user `system:serviceaccount:<ns>:<worker SA>`, bound to a pod (pod-name/pod-uid in
//      user.extra). Successful reviews are cached by token hash until min(exp, 5 min).
//   2. The pod (informer cache, else a GET): same UID, labelled with a scan UID and attempt, and
//      controlled by a Job that the operator made for that scan and attempt (Job labels and
//      ownerReference agree with the pod's labels).
//   3. The scan: exists with that UID, not finished, and the pod's attempt is the current one.
//
// A report can therefore only move the progress of the scan whose UID the pod carries, and only
// for its current attempt. The body is validated with a zod schema derived from the CRD's
// `Progress`, capped at 4 KiB, and rate-limited per scan. The accepted report is kept in memory
// (`ProgressStore`) and the scan is enqueued: reconcile copies it into status.progress in its one
// status write (the operator stays the only writer of BackdoorScan status). Only the leader
// accepts reports (a standby answers 503, the worker retries on a new connection).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { KubeConfig, V1Job, V1Pod, V1TokenReview } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConditionType as C, KIND, LABELS, Progress } from '../crds/backdoorscan.ts';
// KubeClient, not client-node's generated API classes: importing those loads client-node's whole
// barrel (about 40 MB of RSS at 10,000 scans, bench:operator).
import { KubeClient, describeError, isNotFound, type RequestCounter } from './kube.ts';
import { PROGRESS_TOKEN_AUDIENCE } from './job.ts';
import type { Cache } from './listwatch.ts';
import type { ScanObject } from './reconcile.ts';
import { listen, type HttpServer } from './server.ts';

/** Audience of the projected token the worker presents; the operator asks TokenReview for exactly this one. */
export const PROGRESS_AUDIENCE = PROGRESS_TOKEN_AUDIENCE;
export const PROGRESS_PATH = '/v1/progress';
/** Largest accepted request body. */
export const MAX_PROGRESS_BODY_BYTES = 4096;
/** How long a successful TokenReview is trusted at most (also capped by the token's exp). */
export const REVIEW_CACHE_MS = 5 * 60_000;

const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';

/** What a worker sends: the CRD's Progress without updatedAt (the operator stamps it), plus optional cross-checks. */
export const ProgressReport = Progress.omit({ updatedAt: true })
  .extend({
    scanUid: z.string().min(1).max(64).optional().describe('The scan the worker believes it works for (ELIBADCODE_SCAN_UID); must match its pod.'),
    attempt: z.int().min(1).optional().describe('The attempt the worker believes it is (ELIBADCODE_ATTEMPT); must match its pod.'),
  })
  .strict();
export type ProgressReport = z.infer<typeof ProgressReport>;

// ---------------------------------------------------------------------------------------------
// The in-memory store reconcile reads.

/** What reconcile needs: the latest report of a scan's attempt, and forgetting a scan. */
export interface ProgressSource {
  latest(scanUid: string, attempt: number): Progress | undefined;
  forget(scanUid: string): void;
}

interface Entry {
  attempt: number;
  progress: Progress;
  at: number;
}

export class ProgressStore implements ProgressSource {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = 0;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(opts: { maxAgeMs?: number; now?: () => number } = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? 6 * 3600_000;
    this.now = opts.now ?? Date.now;
  }

  put(scanUid: string, attempt: number, progress: Progress): void {
    const now = this.now();
    this.entries.set(scanUid, { attempt, progress, at: now });
    // Scans deleted while running never reach reconcile's forget: drop what nobody refreshed for hours.
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now;
      for (const [k, e] of this.entries) if (now - e.at > this.maxAgeMs) this.entries.delete(k);
    }
  }

  latest(scanUid: string, attempt: number): Progress | undefined {
    const e = this.entries.get(scanUid);
    return e && e.attempt === attempt ? e.progress : undefined;
  }

  forget(scanUid: string): void {
    this.entries.delete(scanUid);
  }

  get size(): number {
    return this.entries.size;
  }
}

// ---------------------------------------------------------------------------------------------
// Authentication: TokenReview, cached.

export interface WorkerIdentity {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
}

export type AuthResult = { ok: true; identity: WorkerIdentity } | { ok: false; status: 401 | 403 | 503; error: string };

export type TokenReviewer = (token: string, audiences: string[]) => Promise<V1TokenReview>;

/** TokenReview through the API server (needs `create` on tokenreviews.authentication.k8s.io). */
export function kubeTokenReviewer(kc: KubeConfig, requests?: RequestCounter): TokenReviewer {
  const client = new KubeClient(kc);
  return async (token, audiences) => {
    requests?.inc('create', 'tokenreviews');
    return await client.request<V1TokenReview>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } } });
  };
}

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** The token's exp claim in ms, read without verification (only after TokenReview vouched for the token). */
function expiryMs(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class TokenAuthenticator {
  private readonly cache = new Map<string, { identity: WorkerIdentity; until: number }>();
  private readonly inflight = new Map<string, Promise<AuthResult>>();
  private readonly review: TokenReviewer;
  private readonly serviceAccount: string;
  private readonly namespaces: Set<string> | undefined;
  private readonly now: () => number;
  private readonly maxInflight: number;
  /** TokenReviews sent (tests and the log look at it). */
  reviews = 0;

  constructor(opts: { review: TokenReviewer; workerServiceAccount: string; namespaces?: string[]; now?: () => number; maxInflight?: number }) {
    this.review = opts.review;
    this.serviceAccount = opts.workerServiceAccount;
    this.namespaces = opts.namespaces?.length ? new Set(opts.namespaces) : undefined;
    this.now = opts.now ?? Date.now;
    this.maxInflight = opts.maxInflight ?? 16;
  }

  async authenticate(token: string): Promise<AuthResult> {
    const key = tokenHash(token);
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return { ok: true, identity: hit.identity };
    if (hit) this.cache.delete(key);
    const pending = this.inflight.get(key);
    if (pending) return await pending;
    // Invalid tokens are not cached: bound the TokenReviews one can cause instead.
    if (this.inflight.size >= this.maxInflight) return { ok: false, status: 503, error: 'too many token reviews in flight, retry later' };
    const p = this.check(token, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return await p;
  }

  /** Drop a cached identity (its pod is gone). */
  evict(token: string): void {
    this.cache.delete(tokenHash(token));
  }

  private async check(token: string, key: string): Promise<AuthResult> {
    let review: V1TokenReview;
    try {
      this.reviews++;
      review = await this.review(token, [PROGRESS_AUDIENCE]);
    } catch (err) {
      return { ok: false, status: 503, error: `cannot verify the token now (TokenReview failed: ${describeError(err)})` };
    }
    const st = review.status;
    if (!st?.authenticated) return { ok: false, status: 401, error: `token not authenticated${st?.error ? `: ${redactTokenish(st.error)}` : ''}` };
    if (!st.audiences?.includes(PROGRESS_AUDIENCE)) return { ok: false, status: 401, error: `token is not valid for audience ${PROGRESS_AUDIENCE}` };
    const username = st.user?.username ?? '';
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!m) return { ok: false, status: 403, error: `${username || 'this identity'} is not a service account` };
    const [, namespace, serviceAccount] = m;
    if (serviceAccount !== this.serviceAccount) return { ok: false, status: 403, error: `service account ${namespace}/${serviceAccount} is not the worker service account ${this.serviceAccount}` };
    if (this.namespaces && !this.namespaces.has(namespace)) return { ok: false, status: 403, error: `namespace ${namespace} is not watched by this operator` };
    const podName = st.user?.extra?.[EXTRA_POD_NAME]?.[0];
    const podUid = st.user?.extra?.[EXTRA_POD_UID]?.[0];
    if (!podName || !podUid) return { ok: false, status: 403, error: 'the token is not bound to a pod (use the projected token of the worker pod)' };
    const identity: WorkerIdentity = { namespace, serviceAccount, podName, podUid };
    const exp = expiryMs(token);
    const until = Math.min(this.now() + REVIEW_CACHE_MS, exp ?? Infinity);
    if (until > this.now()) {
      this.cache.set(key, { identity, until });
      if (this.cache.size > 10_000) {
        const now = this.now();
        for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
      }
    }
    return { ok: true, identity };
  }
}

/** TokenReview errors quote audiences, not the token; still never echo anything that looks like a JWT. */
function redactTokenish(s: string): string {
  return s.replace(/[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]+/g, '[token]');
}

// ---------------------------------------------------------------------------------------------
// Authorization: pod -> Job -> scan, current attempt.

export type ScanTarget = { ok: true; key: string; scanUid: string; attempt: number } | { ok: false; status: 403 | 409; error: string; podGone?: boolean };

export interface ResolveDeps {
  scans: Cache<ScanObject>;
  jobs: Cache<V1Job>;
  pods: Cache<V1Pod>;
  /** A pod the cache does not have (yet); undefined when it does not exist. */
  readPod(namespace: string, name: string): Promise<V1Pod | undefined>;
}

const attemptLabel = (labels: Record<string, string> | undefined) => Number(labels?.[LABELS.attempt] ?? '0') || 0;
const isTrueCond = (obj: ScanObject, type: string) =>
  ((obj.status?.conditions as Array<{ type: string; status: string }> | undefined) ?? []).some((c) => c.type === type && c.status === 'True');

/** Which scan and attempt a worker identity may report for, or why none. */
export async function resolveTarget(d: ResolveDeps, id: WorkerIdentity, claimed: { scanUid?: string; attempt?: number }): Promise<ScanTarget> {
  const podRef = `pod ${id.namespace}/${id.podName}`;
  const pod = d.pods.get(`${id.namespace}/${id.podName}`) ?? (await d.readPod(id.namespace, id.podName));
  if (!pod || pod.metadata?.uid !== id.podUid) return { ok: false, status: 403, error: `${podRef} (uid ${id.podUid}) no longer exists`, podGone: true };
  const labels = pod.metadata?.labels ?? {};
  const scanUid = labels[LABELS.scanUid];
  const attempt = attemptLabel(labels);
  if (!scanUid || !attempt) return { ok: false, status: 403, error: `${podRef} is not a BackdoorScan worker (no ${LABELS.scanUid}/${LABELS.attempt} labels)` };
  // The pod's labels must be those of a Job the operator made for that scan and attempt.
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Job');
  const job = owner ? d.jobs.get(`${id.namespace}/${owner.name}`) : undefined;
  const jobScan = job?.metadata?.ownerReferences?.find((o) => o.controller && o.kind === KIND);
  if (!owner || !job || job.metadata?.uid !== owner.uid || jobScan?.uid !== scanUid || job.metadata?.labels?.[LABELS.scanUid] !== scanUid || attemptLabel(job.metadata?.labels) !== attempt) {
    return { ok: false, status: 403, error: `${podRef} is not controlled by the worker Job of scan ${scanUid} attempt ${attempt}` };
  }
  if (claimed.scanUid !== undefined && claimed.scanUid !== scanUid) return { ok: false, status: 403, error: `${podRef} works for scan ${scanUid}, not ${claimed.scanUid}` };
  if (claimed.attempt !== undefined && claimed.attempt !== attempt) return { ok: false, status: 403, error: `${podRef} runs attempt ${attempt}, not ${claimed.attempt}` };
  const key = `${id.namespace}/${jobScan.name}`;
  const scan = d.scans.get(key);
  if (!scan || scan.metadata?.uid !== scanUid) return { ok: false, status: 403, error: `scan ${key} (uid ${scanUid}) no longer exists` };
  if (isTrueCond(scan, C.Succeeded) || isTrueCond(scan, C.Failed)) return { ok: false, status: 409, error: `scan ${key} has finished; progress is no longer accepted` };
  const current = Math.max((scan.status?.attempts as number | undefined) ?? 0, ...d.jobs.byIndex(scanUid).map((j) => attemptLabel(j.metadata?.labels)));
  if (attempt !== current) return { ok: false, status: 409, error: `attempt ${attempt} of scan ${key} is not the current attempt (${current}); report ignored` };
  const done = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  if (done) return { ok: false, status: 409, error: `Job ${job.metadata?.name} has ${done.type === 'Complete' ? 'completed' : 'failed'}; report ignored` };
  return { ok: true, key, scanUid, attempt };
}

// ---------------------------------------------------------------------------------------------
// Rate limiting per scan: a token bucket.

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly now: () => number;

  constructor(opts: { burst?: number; perSecond?: number; now?: () => number } = {}) {
    this.burst = opts.burst ?? 10;
    this.perSecond = opts.perSecond ?? 1;
    this.now = opts.now ?? Date.now;
  }

  /** 0 when allowed (and counted), else the ms until one more report is allowed. */
  take(key: string): number {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) for (const [k, v] of this.buckets) if (v.tokens >= this.burst - 1e-9 && k !== key) this.buckets.delete(k);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP server.

export interface ProgressServerOptions extends ResolveDeps {
  port: number;
  host?: string;
  logger: Logger;
  authenticator: TokenAuthenticator;
  store: ProgressStore;
  /** Enqueue the scan's key (after `delayMs`, when given). */
  enqueue(key: string, delayMs?: number): void;
  /** Whether this replica may accept reports now: it leads and its caches are synced. */
  accepting(): { ok: boolean; detail?: string };
  /** Per-scan token bucket (default burst 10, 1 report/s). */
  rate?: { burst?: number; perSecond?: number };
  /** At most one progress-triggered reconcile per scan per this many ms (default 1000). */
  minWriteIntervalMs?: number;
  now?: () => number;
}

export type ProgressServer = HttpServer;

class HttpError extends Error {
  readonly status: number;
  readonly extra: Record<string, unknown>;
  constructor(status: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new HttpError(413, `body is ${declared} bytes; at most ${limit} are accepted`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the limit the rest is discarded (not buffered); node drains it after the 413 is sent.
    req.on('data', (c: Buffer) => {
      if (size > limit) return;
      size += c.length;
      if (size > limit) return reject(new HttpError(413, `body exceeds ${limit} bytes`));
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function issuesText(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}

export async function startProgressServer(o: ProgressServerOptions): Promise<ProgressServer> {
  const now = o.now ?? Date.now;
  const limiter = new RateLimiter({ ...o.rate, now });
  const minWrite = o.minWriteIntervalMs ?? 1000;
  const nextWrite = new Map<string, number>();
  const log = o.logger.child({ component: 'progress' });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<{ status: number; body: Record<string, unknown> }> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== PROGRESS_PATH) throw new HttpError(404, `not found; POST ${PROGRESS_PATH}`);
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      throw new HttpError(405, 'method not allowed; use POST');
    }
    const accepting = o.accepting();
    if (!accepting.ok) {
      res.setHeader('Retry-After', '1');
      throw new HttpError(503, `not accepting progress: ${accepting.detail ?? 'not ready'}`);
    }
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!auth) {
      res.setHeader('WWW-Authenticate', `Bearer realm="elibadcode", audience="${PROGRESS_AUDIENCE}"`);
      throw new HttpError(401, 'missing Authorization: Bearer <projected service-account token>');
    }
    const token = auth[1];
    const a = await o.authenticator.authenticate(token);
    if (!a.ok) {
      if (a.status === 401) res.setHeader('WWW-Authenticate', `Bearer realm="elibadcode", error="invalid_token"`);
      if (a.status === 503) res.setHeader('Retry-After', '2');
      throw new HttpError(a.status, a.error);
    }
    const id = a.identity;
    const text = await readBody(req, MAX_PROGRESS_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, `body is not JSON: ${(err as Error).message}`);
    }
    const parsed = ProgressReport.safeParse(json);
    if (!parsed.success) throw new HttpError(400, `invalid progress report: ${issuesText(parsed.error.issues)}`, { fields: parsed.error.issues.map((i) => i.path.join('.')) });
    const report = parsed.data;
    let target: ScanTarget;
    try {
      target = await resolveTarget(o, id, { scanUid: report.scanUid, attempt: report.attempt });
    } catch (err) {
      res.setHeader('Retry-After', '2');
      throw new HttpError(503, `cannot look up pod ${id.namespace}/${id.podName} now: ${describeError(err)}`);
    }
    if (!target.ok) {
      if (target.podGone) o.authenticator.evict(token);
      throw new HttpError(target.status, target.error);
    }
    const wait = limiter.take(target.scanUid);
    if (wait > 0) {
      res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
      throw new HttpError(429, `too many progress reports for scan ${target.key}; retry in ${wait} ms`);
    }
    const { scanUid: _u, attempt: _a, ...fields } = report;
    const t = now();
    const progress: Progress = { ...fields, updatedAt: new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z') };
    o.store.put(target.scanUid, target.attempt, progress);
    // Coalesce status writes: at most one progress-triggered reconcile per scan per minWrite.
    const at = nextWrite.get(target.scanUid) ?? 0;
    if (t >= at) {
      nextWrite.set(target.scanUid, t + minWrite);
      o.enqueue(target.key);
    } else {
      o.enqueue(target.key, at - t);
    }
    if (nextWrite.size > 10_000) for (const [k, v] of nextWrite) if (v < t) nextWrite.delete(k);
    log.debug({ scan: target.key, attempt: target.attempt, pod: id.podName, stage: progress.stage, iteration: progress.iteration }, 'progress accepted');
    return { status: 202, body: { accepted: true, scan: target.key, attempt: target.attempt } };
  };

  const server = createServer((req, res) => {
    const reply = (status: number, body: Record<string, unknown>) => {
      if (res.headersSent) return;
      const data = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(data) });
      res.end(data);
    };
    handle(req, res).then(
      (r) => reply(r.status, r.body),
      (err) => {
        if (err instanceof HttpError) {
          // Never the token or the body: who, what path, why.
          const level = err.status >= 500 ? 'warn' : err.status === 401 || err.status === 403 ? 'info' : 'debug';
          log[level]({ status: err.status, remote: req.socket.remoteAddress, reason: err.message }, 'progress report refused');
          reply(err.status, { error: err.message, code: err.status, ...err.extra });
        } else {
          log.error({ err: describeError(err) }, 'progress handler failed');
          reply(500, { error: 'internal error', code: 500 });
        }
      },
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  return listen(server, o.port, o.host);
}

/** A pod GET for resolveTarget's cache misses (needs `get` on pods, which the operator has). */
export function kubePodReader(kc: KubeConfig, requests?: RequestCounter): ResolveDeps['readPod'] {
  const client = new KubeClient(kc);
  return async (namespace, name) => {
    requests?.inc('get', 'pods');
    try {
      return await client.request<V1Pod>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
}
