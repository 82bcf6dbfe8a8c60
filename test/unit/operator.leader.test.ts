import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderElector, defaultIdentity, type LeaseRecord, type LeaseStore, type StoredLease, type ElectionClock } from '../../operator/leader.ts';

/** In-memory Lease with resourceVersion preconditions, like the API server. */
class FakeLeaseStore implements LeaseStore {
  lease?: StoredLease;
  rv = 0;
  failUpdates = false;
  writes: LeaseRecord[] = [];
  describe() {
    return 'fake/lease';
  }
  async get() {
    return this.lease ? structuredClone(this.lease) : undefined;
  }
  async create(record: LeaseRecord) {
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    return this.put(record);
  }
  async update(record: LeaseRecord, resourceVersion: string) {
    if (this.failUpdates) throw Object.assign(new Error('server unavailable'), { code: 503 });
    if (!this.lease || this.lease.resourceVersion !== resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
    return this.put(record);
  }
  private put(record: LeaseRecord) {
    const serial = JSON.parse(JSON.stringify(record)) as LeaseRecord; // Dates become strings, as on the wire
    this.writes.push(serial);
    this.lease = { record: serial, resourceVersion: String(++this.rv) };
    return structuredClone(this.lease);
  }
}

/**
 * A fake clock with a timer list: sleep() registers a timer, and step() (driven by the test) jumps
 * to the earliest timer once the event loop is idle. Timeouts thus fire only if nothing else happens.
 */
function fakeClock(start = 1_000_000) {
  const timers: Array<{ at: number; resolve: () => void; signal: AbortSignal }> = [];
  const c = {
    t: start,
    now: () => c.t,
    // A wall clock far off from the other replica's: must not matter.
    wall: () => new Date(Date.UTC(2030, 0, 1) + c.t),
    advance(ms: number) {
      c.t += ms;
    },
    sleep(ms: number, signal: AbortSignal): Promise<void> {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve();
        const timer = { at: c.t + ms, resolve, signal };
        timers.push(timer);
        signal.addEventListener('abort', () => {
          const i = timers.indexOf(timer);
          if (i >= 0) timers.splice(i, 1);
          resolve();
        }, { once: true });
      });
    },
    /** Let pending promises settle, then fire the earliest timer. */
    async step(): Promise<void> {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      timers.sort((x, y) => x.at - y.at);
      const next = timers.shift();
      if (next) {
        c.t = Math.max(c.t, next.at);
        next.resolve();
      }
    },
  };
  return c satisfies ElectionClock;
}

test('leader: first candidate creates the Lease; MicroTime fields carry 6 fractional digits', async () => {
  const store = new FakeLeaseStore();
  const clock = fakeClock();
  const a = new LeaderElector({ store, identity: 'a_1', clock });
  assert.equal(await a.tryAcquireOrRenew(), true);
  const w = store.writes[0];
  assert.equal(w.holderIdentity, 'a_1');
  assert.equal(w.leaseDurationSeconds, 15);
  assert.match(String(w.renewTime), /\.\d{6}Z$/);
  assert.match(String(w.acquireTime), /\.\d{6}Z$/);
  assert.equal(w.leaseTransitions, 0);
});

test('leader: a held lease is respected until it is unchanged for leaseDuration by the local clock', async () => {
  const store = new FakeLeaseStore();
  const ca = fakeClock(0);
  const cb = fakeClock(987_654_321); // a different monotonic origin and a skewed wall clock
  const a = new LeaderElector({ store, identity: 'a_1', clock: ca });
  const b = new LeaderElector({ store, identity: 'b_2', clock: cb });
  assert.equal(await a.tryAcquireOrRenew(), true);
  assert.equal(await b.tryAcquireOrRenew(), false, 'b observes a fresh record');
  cb.advance(10_000);
  ca.advance(10_000);
  assert.equal(await a.tryAcquireOrRenew(), true, 'a renews');
  cb.advance(10_000);
  assert.equal(await b.tryAcquireOrRenew(), false, 'the record changed since b last looked: b restarts its timer');
  cb.advance(14_000);
  assert.equal(await b.tryAcquireOrRenew(), false, '14 s after the last observed change: still valid');
  cb.advance(1_500);
  assert.equal(await b.tryAcquireOrRenew(), true, 'unchanged for > 15 s: b takes over');
  const rec = store.lease!.record;
  assert.equal(rec.holderIdentity, 'b_2');
  assert.equal(rec.leaseTransitions, 1, 'takeover counts a transition');
  assert.equal(a.isLeader(), false);
  assert.equal(await a.tryAcquireOrRenew(), false, 'a sees b as a fresh holder and backs off');
});

test('leader: renewing keeps acquireTime and transitions; takeover changes acquireTime', async () => {
  const store = new FakeLeaseStore();
  const clock = fakeClock();
  const a = new LeaderElector({ store, identity: 'a_1', clock });
  await a.tryAcquireOrRenew();
  const acquired = store.lease!.record.acquireTime;
  clock.advance(2000);
  await a.tryAcquireOrRenew();
  assert.equal(store.lease!.record.acquireTime, acquired);
  assert.notEqual(store.lease!.record.renewTime, acquired);
  assert.equal(store.lease!.record.leaseTransitions, 0);
});

test('leader: optimistic concurrency — of two racing writers on the same resourceVersion only one wins', async () => {
  const store = new FakeLeaseStore();
  await store.create({ holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 3 });
  const ca = fakeClock();
  const cb = fakeClock();
  const a = new LeaderElector({ store, identity: 'a', clock: ca });
  const b = new LeaderElector({ store, identity: 'b', clock: cb });
  await a.tryAcquireOrRenew();
  await b.tryAcquireOrRenew();
  ca.advance(16_000);
  cb.advance(16_000);
  const [ra, rb] = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]);
  assert.equal(Number(ra) + Number(rb), 1, `exactly one wins (a=${ra}, b=${rb})`);
  assert.equal(store.lease!.record.leaseTransitions, 4);
});

test('leader: an empty holder (released lease) is taken at once', async () => {
  const store = new FakeLeaseStore();
  await store.create({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 2 });
  const b = new LeaderElector({ store, identity: 'b', clock: fakeClock() });
  assert.equal(await b.tryAcquireOrRenew(), true);
});

test('leader: run() acquires, renews every retryPeriod, and reports loss once renewals fail for renewDeadline', async () => {
  const store = new FakeLeaseStore();
  const clock = fakeClock();
  let started = 0;
  let stopped = 0;
  let lostAt = 0;
  const statuses: boolean[] = [];
  const renewTimes: number[] = [];
  const origUpdate = store.update.bind(store);
  store.update = async (r, rv) => {
    const out = await origUpdate(r, rv);
    renewTimes.push(clock.now());
    return out;
  };
  const a = new LeaderElector({
    store,
    identity: 'a',
    clock,
    onStartedLeading: () => started++,
    onStoppedLeading: () => {
      stopped++;
      lostAt = clock.now();
    },
    onStatus: (s) => statuses.push(s),
  });
  a.start();
  while (!a.isLeader()) await clock.step();
  assert.equal(started, 1);
  // let it renew a few times
  const before = store.writes.length;
  const t0 = clock.now();
  while (clock.now() - t0 < 9_000) await clock.step();
  assert.ok(store.writes.length - before >= 3, `renewed ${store.writes.length - before} times in ~9 s`);
  store.failUpdates = true;
  const failedFrom = clock.now();
  const lastRenewAt = renewTimes.at(-1)!;
  while (stopped === 0) await clock.step();
  const took = lostAt - failedFrom;
  assert.ok(took >= 8_000 && took <= 14_000, `lost after ${took} ms of failed renewals (renewDeadline 10 s)`);
  assert.ok(lostAt - lastRenewAt < 15_000, 'leadership is given up before the lease can expire for the others');
  assert.equal(a.isLeader(), false);
  assert.deepEqual(statuses, [true, false]);
  await a.stop();
});

test('leader: stop() releases a held lease so a standby acquires without waiting', async () => {
  const store = new FakeLeaseStore();
  const clock = fakeClock();
  const a = new LeaderElector({ store, identity: 'a', clock });
  a.start();
  while (!a.isLeader()) await clock.step();
  await a.stop();
  assert.equal(store.lease!.record.holderIdentity, '');
  assert.equal(store.lease!.record.leaseDurationSeconds, 1);
  const b = new LeaderElector({ store, identity: 'b', clock: fakeClock() });
  assert.equal(await b.tryAcquireOrRenew(), true);
});

test('leader: identity is <pod>_<uuid>; timing constraints are enforced', () => {
  assert.match(defaultIdentity('op-7f9c'), /^op-7f9c_[0-9a-f-]{36}$/);
  const store = new FakeLeaseStore();
  assert.throws(() => new LeaderElector({ store, identity: 'x', leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }));
  assert.throws(() => new LeaderElector({ store, identity: 'x', renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }));
});
