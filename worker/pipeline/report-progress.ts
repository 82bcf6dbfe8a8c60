// Live progress to the operator (operator/progress.ts): when the Job sets ELIBADCODE_PROGRESS_URL,
// the worker POSTs {stage, option, iteration, totalIterations, bestLoss} there at every stage change
// and at most every `intervalMs` during GCG iterations, with the projected service-account token
// from ELIBADCODE_PROGRESS_TOKEN_FILE (re-read for every report: the kubelet rotates it).
//
// Fire-and-forget: one request in flight at a time, the latest report waits behind it (so reports
// arrive in order and a slow operator never queues a backlog), a short timeout, sockets that never
// keep the process alive. Failures are logged once and never fail the scan.
//
// In the worker the reporter runs on its own thread (`startProgressThread`): the scan computes
// synchronously for tens of seconds at a time (wasm kernels between awaits that never reach the
// event loop), so requests made on the main thread would only leave when the scan is nearly done.
// postMessage enqueues at once; the thread's event loop sends.
import { readFileSync } from 'node:fs';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { log } from '../log.ts';

export interface ProgressReport {
  stage: string;
  option?: string;
  iteration?: number;
  totalIterations?: number;
  bestLoss?: number;
  scanUid?: string;
  attempt?: number;
}

export interface ReporterLog {
  warn(obj: Record<string, unknown>, msg: string): void;
  debug(obj: Record<string, unknown>, msg: string): void;
}

export interface ProgressReporterOptions {
  url: string;
  tokenFile: string;
  scanUid?: string;
  attempt?: number;
  /** Least time between two iteration reports (stage changes always go out), default 10 s. */
  intervalMs?: number;
  /** Per request, default 3 s. */
  timeoutMs?: number;
  /** Extra tries on 503 (a standby replica answered; a new connection may reach the leader), default 2. */
  retries?: number;
  logger?: ReporterLog;
  now?: () => number;
}

/** What the scan's progress calls feed (makeProgress tees into it). */
export interface ProgressSink {
  stage(stage: string, detail?: Record<string, unknown>): void;
  iteration(s: { option: string; iteration: number; iterations: number; bestLoss: number }): void;
  /** Resolves when nothing is in flight or waiting (tests; a worker need not wait). */
  flush(): Promise<void>;
}

export interface SendResult {
  status: number;
  body: string;
}

const STAGE_RE = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

export class ProgressReporter implements ProgressSink {
  private readonly o: Required<Omit<ProgressReporterOptions, 'scanUid' | 'attempt'>> & Pick<ProgressReporterOptions, 'scanUid' | 'attempt'>;
  private current: ProgressReport | undefined;
  private lastIterationSent = -Infinity;
  private inflight: Promise<void> | undefined;
  private pending: ProgressReport | undefined;
  private warned = false;
  /** Reports answered 2xx, and the others (tests, and a debug line). */
  sent = 0;
  failed = 0;

  constructor(o: ProgressReporterOptions) {
    this.o = { intervalMs: 10_000, timeoutMs: 3_000, retries: 2, logger: log, now: () => performance.now(), ...o };
  }

  stage(stage: string, detail: Record<string, unknown> = {}): void {
    const option = typeof detail.option === 'string' ? detail.option : undefined;
    this.current = { stage, ...(option ? { option } : {}) };
    this.enqueue({ ...this.current });
  }

  iteration(s: { option: string; iteration: number; iterations: number; bestLoss: number }): void {
    const now = this.o.now();
    const last = s.iteration >= s.iterations;
    if (!last && now - this.lastIterationSent < this.o.intervalMs) return;
    this.lastIterationSent = now;
    this.enqueue({
      stage: this.current?.stage ?? 'Inversion',
      option: s.option,
      iteration: s.iteration,
      totalIterations: s.iterations,
      ...(Number.isFinite(s.bestLoss) ? { bestLoss: s.bestLoss } : {}),
    });
  }

  /** Resolves when nothing is in flight or waiting (tests; a worker need not wait). */
  async flush(): Promise<void> {
    while (this.inflight) await this.inflight;
  }

  private enqueue(r: ProgressReport): void {
    if (!STAGE_RE.test(r.stage) || r.stage.length > 64) return; // the operator would refuse it
    if (r.option && r.option.length > 128) r.option = r.option.slice(0, 128);
    if (this.o.scanUid) r.scanUid = this.o.scanUid;
    if (this.o.attempt) r.attempt = this.o.attempt;
    if (this.inflight) {
      this.pending = r; // only the latest matters
      return;
    }
    this.inflight = this.drain(r);
  }

  private async drain(first: ProgressReport): Promise<void> {
    let next: ProgressReport | undefined = first;
    try {
      while (next) {
        await this.deliver(next);
        next = this.pending;
        this.pending = undefined;
      }
    } finally {
      this.inflight = undefined;
    }
  }

  private async deliver(r: ProgressReport): Promise<void> {
    let problem: string | undefined;
    try {
      const token = readFileSync(this.o.tokenFile, 'utf8').trim();
      if (!token) throw new Error(`token file ${this.o.tokenFile} is empty`);
      const body = JSON.stringify(r);
      let res = await this.post(body, token);
      for (let i = 0; res.status === 503 && i < this.o.retries; i++) res = await this.post(body, token);
      if (res.status >= 200 && res.status < 300) {
        this.sent++;
        return;
      }
      problem = `HTTP ${res.status}: ${errorOf(res.body)}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    this.failed++;
    const line = { url: this.o.url, stage: r.stage, reason: problem };
    if (!this.warned) {
      this.warned = true;
      this.o.logger.warn(line, 'live progress report failed; the scan goes on (further failures are logged at debug level)');
    } else {
      this.o.logger.debug(line, 'live progress report failed');
    }
  }

  /** One POST on a fresh connection (no keep-alive: a retry may reach another replica). */
  post(body: string, token: string): Promise<SendResult> {
    const url = new URL(this.o.url);
    const opts: RequestOptions = {
      method: 'POST',
      agent: false,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' },
    };
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 2048) text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      // Never hold the process open for a progress report.
      req.on('socket', (s) => s.unref());
      // The scan computes synchronously for seconds at a time (wasm kernels), so the event loop may
      // not even have connected yet when a plain timer fires. Count only time the loop was free:
      // a timer that fires late re-arms for a full window instead of failing the report.
      let timer: NodeJS.Timeout;
      const arm = () => {
        const due = performance.now() + this.o.timeoutMs;
        timer = setTimeout(() => {
          if (performance.now() - due > 250) return arm();
          req.destroy(new Error(`no answer from ${url.host} within ${this.o.timeoutMs} ms`));
        }, this.o.timeoutMs);
        timer.unref();
      };
      arm();
      req.on('close', () => clearTimeout(timer));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function errorOf(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    /* not JSON */
  }
  return body.slice(0, 300);
}

/** Options from the Job's environment (ELIBADCODE_PROGRESS_URL and _TOKEN_FILE), else undefined. */
export function progressOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ProgressReporterOptions | undefined {
  const url = env.ELIBADCODE_PROGRESS_URL;
  const tokenFile = env.ELIBADCODE_PROGRESS_TOKEN_FILE;
  if (!url || !tokenFile) return undefined;
  try {
    new URL(url);
  } catch {
    log.warn({ url }, 'ELIBADCODE_PROGRESS_URL is not a URL; live progress is off');
    return undefined;
  }
  const attempt = Number(env.ELIBADCODE_ATTEMPT);
  const interval = Number(env.ELIBADCODE_PROGRESS_INTERVAL_SECONDS);
  return {
    url,
    tokenFile,
    ...(env.ELIBADCODE_SCAN_UID ? { scanUid: env.ELIBADCODE_SCAN_UID } : {}),
    ...(Number.isInteger(attempt) && attempt > 0 ? { attempt } : {}),
    ...(interval > 0 ? { intervalMs: interval * 1000 } : {}),
  };
}

/** An in-thread reporter from the environment (tests), else undefined. */
export function progressReporterFromEnv(env: NodeJS.ProcessEnv = process.env, over: Partial<ProgressReporterOptions> = {}): ProgressReporter | undefined {
  const o = progressOptionsFromEnv(env);
  return o && new ProgressReporter({ ...o, ...over });
}

// ---------------------------------------------------------------------------------------------
// The reporter on its own thread.

const THREAD_TAG = 'elibadcode-progress-reporter';
type ThreadMessage =
  | { type: 'stage'; stage: string; detail: Record<string, unknown> }
  | { type: 'iteration'; s: { option: string; iteration: number; iterations: number; bestLoss: number } }
  | { type: 'flush'; id: number };

/** Runs a ProgressReporter on a worker thread; the calls only post a message. The thread never keeps the process alive. */
export function startProgressThread(options: Omit<ProgressReporterOptions, 'logger' | 'now'>): ProgressSink {
  const thread = new Worker(new URL(import.meta.url), { workerData: { [THREAD_TAG]: options } });
  let dead = false;
  thread.on('error', (err) => {
    dead = true;
    log.warn({ reason: err.message }, 'live progress reporter thread failed; the scan goes on without it');
  });
  thread.on('exit', () => (dead = true));
  const waiting = new Map<number, () => void>();
  let seq = 0;
  thread.on('message', (m: { type: string; id: number }) => {
    if (m.type === 'flushed') {
      waiting.get(m.id)?.();
      waiting.delete(m.id);
    }
  });
  // After the listeners: adding a 'message' listener refs the thread again.
  thread.unref();
  const send = (m: ThreadMessage) => {
    if (!dead) thread.postMessage(m);
  };
  return {
    stage: (stage, detail = {}) => send({ type: 'stage', stage, detail: typeof detail.option === 'string' ? { option: detail.option } : {} }),
    iteration: (s) => send({ type: 'iteration', s: { option: s.option, iteration: s.iteration, iterations: s.iterations, bestLoss: s.bestLoss } }),
    flush: () =>
      dead
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const id = ++seq;
            waiting.set(id, resolve);
            thread.ref(); // awaited: keep the process up until the answer
            send({ type: 'flush', id });
          }).finally(() => thread.unref()),
  };
}

/** A threaded reporter when the Job configured live progress, else undefined. */
export function progressSinkFromEnv(env: NodeJS.ProcessEnv = process.env): ProgressSink | undefined {
  const o = progressOptionsFromEnv(env);
  if (!o) return undefined;
  try {
    return startProgressThread(o);
  } catch (err) {
    log.warn({ reason: (err as Error).message }, 'cannot start the live progress reporter; the scan goes on without it');
    return undefined;
  }
}

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[THREAD_TAG]) {
  const port = parentPort;
  const reporter = new ProgressReporter((workerData as Record<string, ProgressReporterOptions>)[THREAD_TAG]);
  port.on('message', (m: ThreadMessage) => {
    if (m.type === 'stage') reporter.stage(m.stage, m.detail);
    else if (m.type === 'iteration') reporter.iteration(m.s);
    else if (m.type === 'flush') void reporter.flush().then(() => port.postMessage({ type: 'flushed', id: m.id }));
  });
}
