// A rate-limited, deduplicating work queue with the semantics of client-go's workqueue:
// - a key that is already waiting is not queued twice (dirty set);
// - a key being processed is never handed to a second worker; if it is added meanwhile it is
//   queued again when the first worker calls done() (processing set);
// - retries (addRateLimited: an error, a conflict) wait for the max of a per-key exponential backoff
//   (5 ms doubling up to 1000 s, as client-go) and an overall token bucket shared by all keys. The
//   bucket bounds how fast retries as a whole hit the API server; client-go's 10 qps / burst 100
//   would take 17 minutes to retry 10,000 scans after an API-server outage, so the default here is
//   sized for an API server instead (DEFAULT_RATE_LIMITER). New work (add) is never rate limited;
//   the number of workers bounds it;
// - two priorities (controller-runtime's priority queue has the same idea): keys added `high` are
//   handed out before `normal` ones, except that every `highPerNormal`-th hand-out goes to a waiting
//   normal key, so neither starves (default 16: under a burst of new scans their Job creates take
//   the API server's capacity and status writes follow; 4 left create->Job p99 at 2.1-2.4 s on the
//   2-core bench, 16 gave 1.2-2.1 s). A key added again at a higher priority while it waits moves up;
// - addAfter for requeueAfter; shutdown with optional drain of in-flight work.

export interface Clock {
  now(): number;
}
export const realClock: Clock = { now: () => performance.now() };

export interface RateLimiter {
  /** Delay in ms before the key may be retried; records one more failure of the key. */
  when(key: string): number;
  forget(key: string): void;
  numRequeues(key: string): number;
}

export class ItemExponentialRateLimiter implements RateLimiter {
  private failures = new Map<string, number>();
  readonly baseMs: number;
  readonly maxMs: number;
  constructor(baseMs = 5, maxMs = 1000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const d = this.baseMs * 2 ** n;
    return Number.isFinite(d) ? Math.min(d, this.maxMs) : this.maxMs;
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Token bucket shared by all keys: reserves a token and returns how long to wait for it. */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;
  readonly qps: number;
  readonly burst: number;
  private readonly clock: Clock;
  constructor(qps = 10, burst = 100, clock: Clock = realClock) {
    this.qps = qps;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }
  when(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
  forget(): void {}
  numRequeues(): number {
    return 0;
  }
}

export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    let d = 0;
    for (const l of this.limiters) d = Math.max(d, l.when(key));
    return d;
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: string): number {
    let n = 0;
    for (const l of this.limiters) n = Math.max(n, l.numRequeues(key));
    return n;
  }
}

export interface RateLimiterOptions {
  /** Per-key exponential backoff: the first retry delay and the cap (ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall token bucket over all keys' retries. */
  qps?: number;
  burst?: number;
}

/**
 * Retries as a whole: 50 per second sustained, 500 at once. Each retry is a reconcile of at most two
 * writes, so this stays far below kube-apiserver's default 200 mutating requests in flight, and a
 * backlog of 10,000 failed scans is retried within about 3 minutes.
 */
export const DEFAULT_RATE_LIMITER: Required<RateLimiterOptions> = { baseDelayMs: 5, maxDelayMs: 1000_000, qps: 50, burst: 500 };

export function defaultControllerRateLimiter(opts: RateLimiterOptions = {}, clock: Clock = realClock): RateLimiter {
  const o = { ...DEFAULT_RATE_LIMITER, ...opts };
  return new MaxOfRateLimiter(new ItemExponentialRateLimiter(o.baseDelayMs, o.maxDelayMs), new BucketRateLimiter(o.qps, o.burst, clock));
}

/** Hooks for workqueue_* metrics. */
export interface QueueMetrics {
  add(): void;
  depth(n: number): void;
  /** Seconds the key waited between add and get. */
  queued(seconds: number): void;
  /** Seconds a worker held the key. */
  worked(seconds: number): void;
  retry(): void;
}

export type Priority = 'high' | 'normal';

/** A FIFO of keys with a moving head; entries can be stale (the key moved to the other level). */
class Fifo {
  items: string[] = [];
  head = 0;
  push(k: string): void {
    this.items.push(k);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const k = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return k;
  }
  peek(): string | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }
}

export class WorkQueue {
  private readonly queues: Record<Priority, Fifo> = { high: new Fifo(), normal: new Fifo() };
  /** Waiting keys (dirty, not being processed) and the level each waits at. */
  private readonly level = new Map<string, Priority>();
  private highStreak = 0;
  readonly highPerNormal: number;
  private dirty = new Set<string>();
  private processing = new Set<string>();
  private addedAt = new Map<string, number>();
  private startedAt = new Map<string, number>();
  private waitedMs = new Map<string, number>();
  private waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private getters: Array<(key: string | undefined) => void> = [];
  private drainWaiters: Array<() => void> = [];
  private shuttingDown = false;
  readonly name: string;
  readonly rateLimiter: RateLimiter;
  private readonly metrics?: QueueMetrics;
  private readonly clock: Clock;

  /** Priority of keys that were added while being processed, by key (they wait until done()). */
  private readonly later = new Map<string, Priority>();

  constructor(name: string, opts: { rateLimiter?: RateLimiter; metrics?: QueueMetrics; clock?: Clock; highPerNormal?: number } = {}) {
    this.name = name;
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter({}, this.clock);
    this.metrics = opts.metrics;
    this.highPerNormal = opts.highPerNormal ?? 16;
  }

  add(key: string, priority: Priority = 'normal'): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (priority !== 'high') return;
      if (this.processing.has(key)) this.later.set(key, 'high');
      else if (this.level.get(key) === 'normal') {
        // Move up: the entry in the normal FIFO goes stale.
        this.level.set(key, 'high');
        this.queues.high.push(key);
      }
      return;
    }
    this.metrics?.add();
    this.dirty.add(key);
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) {
      this.later.set(key, priority);
      return;
    }
    this.push(key, priority);
  }

  /** Add the key after a delay; an earlier pending addAfter for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const prev = this.waiting.get(key);
    if (prev && prev.at <= at) return;
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.metrics?.retry();
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** The next key, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.len() > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    this.waitedMs.delete(key);
    if (started !== undefined) this.metrics?.worked((this.clock.now() - started) / 1000);
    if (this.dirty.has(key)) this.push(key, this.later.get(key) ?? 'normal');
    this.later.delete(key);
    if (this.processing.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Keys waiting to be handed out. */
  len(): number {
    return this.level.size;
  }

  /** How long the key waited in the queue before the worker that holds it now got it (ms). */
  queuedFor(key: string): number | undefined {
    return this.waitedMs.get(key);
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  get shuttingDownNow(): boolean {
    return this.shuttingDown;
  }

  /** Seconds of work in progress that has not called done(), and the longest such item. */
  inFlight(): { unfinishedSeconds: number; longestSeconds: number } {
    const now = this.clock.now();
    let total = 0;
    let longest = 0;
    for (const t of this.startedAt.values()) {
      const s = (now - t) / 1000;
      total += s;
      longest = Math.max(longest, s);
    }
    return { unfinishedSeconds: total, longestSeconds: longest };
  }

  /** Stop handing out keys; waiting get() calls resolve undefined. With drain, wait until in-flight keys are done. */
  async shutdown(opts: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
    if (opts.drain && this.processing.size > 0) {
      await new Promise<void>((resolve) => {
        this.drainWaiters.push(resolve);
        if (opts.timeoutMs) setTimeout(resolve, opts.timeoutMs).unref();
      });
    }
  }

  private push(key: string, priority: Priority): void {
    this.level.set(key, priority);
    this.queues[priority].push(key);
    const getter = this.getters.shift();
    // A waiting worker means nothing else waits: hand the key over directly.
    if (getter) getter(this.take());
    else this.metrics?.depth(this.len());
  }

  /** The next valid key of a level (skipping entries of keys that moved up). */
  private peek(p: Priority): string | undefined {
    const q = this.queues[p];
    for (let k = q.peek(); k !== undefined; k = q.peek()) {
      if (this.level.get(k) === p) return k;
      q.shift();
    }
    return undefined;
  }

  private take(): string {
    const high = this.peek('high');
    const normal = this.peek('normal');
    const p: Priority = high !== undefined && (normal === undefined || this.highStreak < this.highPerNormal) ? 'high' : 'normal';
    this.highStreak = p === 'high' ? this.highStreak + 1 : 0;
    const key = this.queues[p].shift()!;
    this.level.delete(key);
    this.processing.add(key);
    this.dirty.delete(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    const now = this.clock.now();
    if (added !== undefined) {
      this.metrics?.queued((now - added) / 1000);
      this.waitedMs.set(key, now - added);
    }
    this.startedAt.set(key, now);
    this.metrics?.depth(this.len());
    return key;
  }
}
