// Leader election on a coordination.k8s.io/v1 Lease, following client-go's
// tools/leaderelection algorithm:
// - try to acquire every retryPeriod (jittered); once leader, renew every retryPeriod and give up
//   when a renewal round has not succeeded within renewDeadline;
// - whether another holder's lease has expired is judged by *our* clock: the time we last saw the
//   record change, plus its leaseDurationSeconds. Timestamps in the record are never compared with
//   our clock, which tolerates skew between replicas;
// - writes carry the resourceVersion we read (optimistic concurrency): of two contenders one wins;
// - renewTime/acquireTime are MicroTime (6 fractional digits: V1MicroTime);
// - on graceful shutdown the lease is released (empty holder, 1 s duration) so a standby takes over
//   at once. Losing the lease is fatal for the caller (main exits the process).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { V1Lease } from '@kubernetes/client-node';
import { V1MicroTime } from '@kubernetes/client-node/dist/types.js';
import type { Logger } from 'pino';
import { describeError, isConflict, isNotFound, type RequestCounter } from './kube.ts';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string | Date;
  renewTime?: string | Date;
  leaseTransitions?: number;
}

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/** Where the lease lives. update() must fail (throw) when resourceVersion is stale. */
export interface LeaseStore {
  get(): Promise<StoredLease | undefined>;
  create(record: LeaseRecord): Promise<StoredLease>;
  update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease>;
  describe(): string;
}

export interface ElectionClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock time written into the record. */
  wall(): Date;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realElectionClock: ElectionClock = {
  now: () => performance.now(),
  wall: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    }),
};

export interface LeaderElectorOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: ElectionClock;
  logger?: Logger;
  onStartedLeading?: () => void;
  /** Called once when leadership is lost (not on release). */
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  /** For metrics: called with true/false when leadership changes. */
  onStatus?: (leading: boolean) => void;
}

/** `<pod name>_<uuid>` like client-go's default identity. */
export function defaultIdentity(podName = process.env.POD_NAME || hostname()): string {
  return `${podName}_${randomUUID()}`;
}

const JITTER = 1.2;

export class LeaderElector {
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  private readonly store: LeaseStore;
  private readonly clock: ElectionClock;
  private readonly opts: LeaderElectorOptions;
  private observed?: StoredLease;
  private observedKey = '';
  private observedTime = 0;
  private leading = false;
  private lastRenew = 0;
  private reportedLeader = '';
  private abort = new AbortController();
  private loop?: Promise<void>;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.clock = opts.clock ?? realElectionClock;
    if (this.leaseDurationMs <= this.renewDeadlineMs) throw new Error('leaseDuration must be greater than renewDeadline');
    if (this.renewDeadlineMs <= JITTER * this.retryPeriodMs) throw new Error('renewDeadline must be greater than retryPeriod*1.2');
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Whether we hold the lease and renewed it within the lease duration (for /readyz). */
  holdsValidLease(): boolean {
    return this.leading && this.clock.now() - this.lastRenew < this.leaseDurationMs;
  }

  /** The holder we last observed (may be stale). */
  observedLeader(): string | undefined {
    return this.observed?.record.holderIdentity || undefined;
  }

  start(): void {
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  /** Stop campaigning/renewing; if we are the leader, release the lease. */
  async stop(opts: { release?: boolean } = { release: true }): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.leading && opts.release !== false) await this.release();
    this.setLeading(false);
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    this.opts.onStatus?.(v);
  }

  private async run(signal: AbortSignal): Promise<void> {
    // Acquire.
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal)) break;
      await this.clock.sleep(this.retryPeriodMs * (1 + Math.random() * (JITTER - 1 + 1e-9)), signal);
    }
    if (signal.aborted) return;
    this.opts.logger?.info({ identity: this.identity, lease: this.store.describe() }, 'acquired lease');
    this.setLeading(true);
    this.opts.onStartedLeading?.();
    // Renew.
    while (!signal.aborted) {
      const roundStart = this.clock.now();
      let ok = false;
      while (!signal.aborted) {
        ok = await this.tryAcquireOrRenew(signal, roundStart + this.renewDeadlineMs);
        if (ok || this.clock.now() >= roundStart + this.renewDeadlineMs) break;
        await this.clock.sleep(this.retryPeriodMs, signal);
      }
      if (signal.aborted) return;
      if (!ok) {
        this.opts.logger?.error({ identity: this.identity, lease: this.store.describe() }, 'failed to renew lease within the renew deadline; leadership lost');
        this.setLeading(false);
        this.opts.onStoppedLeading?.();
        return;
      }
      await this.clock.sleep(this.retryPeriodMs, signal);
    }
  }

  /** One step of client-go's tryAcquireOrRenew. Exposed for tests. */
  async tryAcquireOrRenew(signal?: AbortSignal, deadline?: number): Promise<boolean> {
    if (deadline !== undefined && deadline <= this.clock.now()) return false;
    try {
      return await this.withDeadline(this.tryAcquireOrRenewInner(), deadline, signal);
    } catch (err) {
      this.opts.logger?.warn({ identity: this.identity, err: describeError(err) }, 'lease acquire/renew failed');
      return false;
    }
  }

  private async tryAcquireOrRenewInner(): Promise<boolean> {
    const wall = this.clock.wall();
    const mine: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: new V1MicroTime(wall.getTime()),
      renewTime: new V1MicroTime(wall.getTime()),
      leaseTransitions: 0,
    };
    const current = await this.store.get();
    if (!current) {
      const created = await this.store.create(mine);
      this.observe(created);
      this.lastRenew = this.clock.now();
      return true;
    }
    const key = recordKey(current.record);
    if (key !== this.observedKey) {
      this.observe(current);
    } else {
      this.observed = current;
    }
    const holder = current.record.holderIdentity ?? '';
    const durationMs = (current.record.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    const valid = this.observedTime + durationMs > this.clock.now();
    if (holder && holder !== this.identity && valid) return false;
    if (holder === this.identity) {
      mine.acquireTime = current.record.acquireTime ?? mine.acquireTime;
      mine.leaseTransitions = current.record.leaseTransitions ?? 0;
    } else {
      mine.leaseTransitions = (current.record.leaseTransitions ?? 0) + 1;
    }
    try {
      const updated = await this.store.update(mine, current.resourceVersion);
      this.observe(updated);
      this.lastRenew = this.clock.now();
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private observe(lease: StoredLease): void {
    this.observed = lease;
    this.observedKey = recordKey(lease.record);
    this.observedTime = this.clock.now();
    const holder = lease.record.holderIdentity ?? '';
    if (holder && holder !== this.reportedLeader) {
      this.reportedLeader = holder;
      this.opts.onNewLeader?.(holder);
    }
  }

  private async release(): Promise<void> {
    try {
      const current = await this.store.get();
      if (!current || current.record.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(this.clock.wall().getTime());
      await this.store.update(
        { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: current.record.leaseTransitions ?? 0 },
        current.resourceVersion,
      );
      this.opts.logger?.info({ identity: this.identity }, 'released lease');
    } catch (err) {
      this.opts.logger?.warn({ identity: this.identity, err: describeError(err) }, 'failed to release lease');
    }
  }

  private withDeadline<T>(p: Promise<T>, deadline: number | undefined, signal?: AbortSignal): Promise<T> {
    if (deadline === undefined) return p;
    const left = Math.max(1, deadline - this.clock.now());
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeout = this.clock.sleep(left, ac.signal).then(() => {
      throw new Error('lease request timed out');
    });
    return Promise.race([p, timeout]).finally(() => {
      ac.abort();
      signal?.removeEventListener('abort', onAbort);
    });
  }
}

function recordKey(r: LeaseRecord): string {
  const t = (v: string | Date | undefined) => (v instanceof Date ? v.toISOString() : (v ?? ''));
  return JSON.stringify([r.holderIdentity ?? '', r.leaseDurationSeconds ?? 0, t(r.acquireTime), t(r.renewTime), r.leaseTransitions ?? 0]);
}

/** The Lease calls (KubeClient, or client-node's CoordinationV1Api). */
export interface LeaseApi {
  readNamespacedLease(r: { name: string; namespace: string }): Promise<V1Lease>;
  createNamespacedLease(r: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(r: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease>;
}

/** A LeaseStore on the API server. */
export class KubeLeaseStore implements LeaseStore {
  private readonly api: LeaseApi;
  private readonly namespace: string;
  private readonly name: string;
  private readonly requests?: RequestCounter;

  constructor(api: LeaseApi, namespace: string, name: string, requests?: RequestCounter) {
    this.api = api;
    this.namespace = namespace;
    this.name = name;
    this.requests = requests;
  }

  describe(): string {
    return `${this.namespace}/${this.name}`;
  }

  async get(): Promise<StoredLease | undefined> {
    this.requests?.inc('get', 'leases');
    try {
      const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
      return { record: { ...(lease.spec ?? {}) } as LeaseRecord, resourceVersion: lease.metadata?.resourceVersion ?? '' };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<StoredLease> {
    this.requests?.inc('create', 'leases');
    const lease = await this.api.createNamespacedLease({
      namespace: this.namespace,
      body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: record as never },
    });
    return { record: { ...(lease.spec ?? {}) } as LeaseRecord, resourceVersion: lease.metadata?.resourceVersion ?? '' };
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    this.requests?.inc('update', 'leases');
    const lease = await this.api.replaceNamespacedLease({
      name: this.name,
      namespace: this.namespace,
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, namespace: this.namespace, resourceVersion },
        spec: record as never,
      },
    });
    return { record: { ...(lease.spec ?? {}) } as LeaseRecord, resourceVersion: lease.metadata?.resourceVersion ?? '' };
  }
}
