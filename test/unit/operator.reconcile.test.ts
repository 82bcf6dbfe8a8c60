// Reconcile decisions with in-memory caches and fake API clients (the real-server behaviour is in
// test/operator.controller.test.ts); here: what cannot reach a real server because admission refuses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reconciler, ConflictError, type ScanObject } from '../../operator/reconcile.ts';

class FakeCache<T extends { metadata?: { name?: string; namespace?: string } }> {
  items = new Map<string, T>();
  index: (o: T) => string[];
  constructor(index: (o: T) => string[] = () => []) {
    this.index = index;
  }
  put(o: T) {
    this.items.set(`${o.metadata?.namespace}/${o.metadata?.name}`, o);
  }
  get(k: string) {
    return this.items.get(k);
  }
  byIndex(v: string) {
    return [...this.items.values()].filter((o) => this.index(o).includes(v));
  }
  mutate(o: T) {
    this.put(o);
  }
  list() {
    return [...this.items.values()];
  }
  hasSynced() {
    return true;
  }
}

function setup(spec: unknown, opts: { conflict?: boolean } = {}) {
  const scans = new FakeCache<ScanObject>();
  scans.put({ apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', metadata: { name: 's', namespace: 'n', uid: 'u1', generation: 1, resourceVersion: '10' }, spec });
  const jobs = new FakeCache<any>((j) => (j.metadata?.ownerReferences ?? []).map((o: any) => o.uid));
  const pods = new FakeCache<any>();
  const calls = { patches: [] as any[], creates: [] as any[], deletes: [] as string[], events: [] as any[] };
  const deps = {
    scans,
    jobs,
    pods,
    batch: {
      createNamespacedJob: async (r: any) => {
        calls.creates.push(r.body);
        return r.body;
      },
      deleteNamespacedJob: async (r: any) => {
        calls.deletes.push(r.name);
        return {};
      },
    },
    custom: {
      patchNamespacedCustomObjectStatus: async (r: any) => {
        if (opts.conflict) throw Object.assign(new Error('conflict'), { code: 409 });
        calls.patches.push(r.body);
        const cur = scans.get('n/s')!;
        return { ...cur, metadata: { ...cur.metadata, resourceVersion: String(Number(cur.metadata!.resourceVersion) + 1) }, status: { ...(cur.status ?? {}), ...r.body.status } };
      },
    },
    events: { emitInBackground: (_r: unknown, ev: unknown[]) => calls.events.push(...ev) },
    jobConfig: { workerImage: 'w:1', workerServiceAccount: 'sa' },
    now: () => new Date('2026-11-25T10:00:00Z'),
  };
  return { r: new Reconciler(deps as never), scans, jobs, calls };
}

const valid = { task: 'defect', model: { uri: 's3://models/m' }, data: { uri: 's3://data/d' }, output: { uri: 's3://out/o' } };

test('reconcile: a spec the schema refuses -> Accepted=False/InvalidSpec, one write, one event, no Job, no requeue', async () => {
  // Got past an older CRD: eliminate (default true) without output.
  const { r, calls, scans } = setup({ task: 'defect', model: { uri: 's3://models/m' }, data: { uri: 's3://data/d' } });
  const out = await r.reconcile('n/s');
  assert.equal(out.requeueAfterMs, undefined, 'no requeue: a spec change is a new event');
  assert.equal(calls.creates.length, 0);
  assert.equal(calls.patches.length, 1);
  const acc = calls.patches[0].status.conditions.find((c: any) => c.type === 'Accepted');
  assert.equal(acc.status, 'False');
  assert.equal(acc.reason, 'InvalidSpec');
  assert.match(acc.message, /spec.output is required/);
  assert.equal(calls.patches[0].metadata.resourceVersion, '10', 'optimistic concurrency on the status write');
  assert.equal(calls.events.length, 1);
  // Level-triggered: reconciling the same state again writes nothing and says nothing.
  await r.reconcile('n/s');
  assert.equal(calls.patches.length, 1);
  assert.equal(calls.events.length, 1);
  assert.equal(scans.get('n/s')!.status!.observedGeneration, 1);
});

test('reconcile: a new scan gets its Job first; the next reconcile (requeued at once) writes the status once and then announces JobCreated', async () => {
  const { r, calls } = setup(valid);
  const first = await r.reconcile('n/s');
  assert.equal(calls.creates.length, 1);
  assert.equal(calls.creates[0].metadata.name, 's-1');
  assert.equal(calls.patches.length, 0, 'the creating reconcile ends with the create');
  assert.equal(first.requeueAfterMs, 0, 'and queues the scan again at once');
  assert.equal(calls.events.length, 0, 'no event before a status shows the Job');
  // The Job's watch event has not arrived yet: the expectation stands in for it.
  const second = await r.reconcile('n/s');
  assert.equal(calls.creates.length, 1, 'no second create');
  assert.equal(second.requeueAfterMs, undefined);
  assert.equal(calls.patches.length, 1);
  const st = calls.patches[0].status;
  assert.equal(st.attempts, 1);
  assert.equal(st.jobName, 's-1');
  assert.deepEqual(st.conditions.map((c: any) => `${c.type}=${c.status}`), ['Accepted=True', 'Running=False', 'Succeeded=Unknown', 'BackdoorDetected=Unknown']);
  assert.deepEqual(calls.events.map((e: any) => e.reason), ['JobCreated'], 'announced after the write that shows it');
  // Level-triggered: nothing more to do, write or say.
  await r.reconcile('n/s');
  assert.equal(calls.patches.length, 1);
  assert.equal(calls.events.length, 1);
  // The Jobs cache has not seen s-1 and the create is answered 409 (it exists): the same status, no JobCreated.
  const { r: r2, calls: c2 } = setup(valid);
  (r2 as any).d.batch.createNamespacedJob = async () => {
    throw Object.assign(new Error('exists'), { code: 409, body: '{"reason":"AlreadyExists"}' });
  };
  await r2.reconcile('n/s');
  await r2.reconcile('n/s');
  assert.equal(c2.patches[0].status.jobName, 's-1');
  assert.equal(c2.events.length, 0);
});

test('reconcile: a reconcile before the created Job reaches the cache sends no second create (expectations); once seen, or after the TTL, it may', async () => {
  let now = new Date('2026-11-25T10:00:00Z');
  const { r, calls, jobs } = setup(valid);
  (r as any).now = () => now;
  await r.reconcile('n/s');
  await r.reconcile('n/s');
  assert.equal(calls.creates.length, 1);
  // Our own status write triggers the next reconcile at once; the Job's watch event has not arrived.
  const out = await r.reconcile('n/s');
  assert.equal(calls.creates.length, 1, 'no second POST for the same Job');
  assert.match(out.action!, /awaiting s-1/);
  assert.equal(calls.patches.length, 1, 'and nothing to write: the status already says so');
  // The cache shows the Job: the expectation is met.
  jobs.put({ ...calls.creates[0], metadata: { ...calls.creates[0].metadata, uid: 'j1' }, status: { active: 1 } });
  await r.reconcile('n/s');
  assert.equal(r.expectations.size, 0);
  // An expectation never met (the Job vanished unseen) lapses after its TTL: then a create is sent again.
  jobs.items.clear();
  const { r: r2, calls: c2 } = setup(valid);
  (r2 as any).now = () => now;
  await r2.reconcile('n/s');
  await r2.reconcile('n/s');
  assert.equal(c2.creates.length, 1);
  now = new Date(now.getTime() + r2.expectations.ttlMs);
  await r2.reconcile('n/s');
  assert.equal(c2.creates.length, 2);
});

test('reconcile: suspend right after the create, before the cache shows the Job, deletes the Job by its name and keeps the attempt', async () => {
  const { r, calls, scans } = setup(valid);
  await r.reconcile('n/s');
  assert.equal(calls.creates.length, 1);
  // The user suspends before the Job's watch event (and before the status naming it) has arrived.
  const cur = scans.get('n/s')!;
  scans.put({ ...cur, metadata: { ...cur.metadata, generation: 2 }, spec: { ...valid, suspend: true } });
  const out = await r.reconcile('n/s');
  assert.equal(out.action, 'suspended');
  assert.deepEqual(calls.deletes, ['s-1'], 'deleted without waiting for the Job watch');
  assert.equal(calls.creates.length, 1);
  const status = calls.patches.at(-1).status;
  assert.equal(status.jobName, 's-1');
  assert.equal(status.attempts, 1);
  assert.equal(status.conditions.find((c: any) => c.type === 'Suspended').status, 'True');
  // Once deleted, the expectation is gone: a later suspended reconcile sends nothing more.
  await r.reconcile('n/s');
  assert.deepEqual(calls.deletes, ['s-1']);
});

test('reconcile: a stale status write (409) is a ConflictError for a rate-limited requeue, and emits no event', async () => {
  const { r, calls } = setup(valid, { conflict: true });
  await r.reconcile('n/s'); // creates the Job
  await assert.rejects(r.reconcile('n/s'), ConflictError);
  assert.equal(calls.events.length, 0, 'events only after a successful write');
  assert.deepEqual(r.expectations.carried('u1').map((e) => e.reason), ['JobCreated'], 'kept for the retry');
});
