// The informer caches keep compact projections (operator/projection.ts). Specification: reconcile
// decides exactly the same on the projection as on the object the API server sent, in every state
// a scan can be in; the projection drops what nobody reads; equal content is shared and frozen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { BackdoorScanSpec, LABELS, type BackdoorScan } from '../../crds/backdoorscan.ts';
import { buildJob, SCAN_NAME_ANNOTATION } from '../../operator/job.ts';
import { Interner, projectJob, projectPod, projectScan } from '../../operator/projection.ts';
import { INDEX_JOB, INDEX_OWNER, Reconciler, type ScanObject } from '../../operator/reconcile.ts';
import { summary } from '../operator.helpers.ts';

const NOW = new Date('2026-11-25T10:00:00Z');
const UID = '0b9f1a52-8d3e-4b8e-9a51-3f4c2a7d9e10';

/** What the API server would add to every object: managedFields, and kubectl's annotation. */
function serverMeta(name: string, over: Record<string, unknown> = {}) {
  return {
    name,
    namespace: 'team-a',
    uid: `${name}-uid`,
    resourceVersion: '4711',
    generation: 1,
    creationTimestamp: '2026-11-25T09:00:00Z',
    labels: { team: 'ml-sec', 'elibadcode.dev/attempt': '1' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ big: 'x'.repeat(2000) }) },
    managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: '2026-11-25T09:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:x': {} } } }],
    ...over,
  };
}

const specInput = {
  task: 'defect',
  model: { uri: 's3://models/codebert-defect' },
  data: { uri: 's3://data/devign-clean.jsonl' },
  output: { uri: 's3://cleaned/codebert-defect' },
  resources: { gpus: 1 },
};

function scan(over: { status?: Record<string, unknown>; spec?: Record<string, unknown>; meta?: Record<string, unknown> } = {}): ScanObject {
  // The API server stores the spec with the CRD's defaults applied, as zod would.
  const spec = JSON.parse(JSON.stringify(BackdoorScanSpec.parse({ ...specInput, ...over.spec })));
  return {
    apiVersion: 'elibadcode.dev/v1alpha1',
    kind: 'BackdoorScan',
    metadata: { ...serverMeta('scan-1', { uid: UID }), ...over.meta },
    spec,
    ...(over.status ? { status: over.status } : {}),
  } as unknown as ScanObject;
}

/** The Job the operator creates, as the API server returns it (defaults, managedFields, status). */
function job(attempt: number, status: Record<string, unknown> = {}, over: { queueName?: string; suspend?: boolean; deleting?: boolean } = {}): V1Job {
  const s = scan().spec as BackdoorScan['spec'];
  const b = buildJob({ apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', metadata: { name: 'scan-1', namespace: 'team-a', uid: UID }, spec: { ...s, ...(over.queueName ? { queueName: over.queueName } : {}) } } as BackdoorScan, attempt, {
    workerImage: 'w:1',
    workerServiceAccount: 'sa',
  });
  return {
    ...b,
    metadata: {
      ...b.metadata,
      uid: `job-${attempt}-uid`,
      resourceVersion: '5000',
      creationTimestamp: new Date('2026-11-25T09:00:01Z'),
      ...(over.deleting ? { deletionTimestamp: new Date('2026-11-25T09:59:00Z') } : {}),
      managedFields: serverMeta('x').managedFields as never,
    },
    spec: { ...b.spec!, selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': `job-${attempt}-uid` } }, suspend: over.suspend ?? false, completionMode: 'NonIndexed' },
    status: status as V1Job['status'],
  };
}

function pod(jobName: string, status: Record<string, unknown>, over: { deleting?: boolean } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(serverMeta(`${jobName}-abcde`) as object),
      labels: { 'batch.kubernetes.io/job-name': jobName, 'job-name': jobName, [LABELS.scanUid]: UID, [LABELS.attempt]: jobName.split('-').pop()!, 'batch.kubernetes.io/controller-uid': 'c' },
      annotations: { [SCAN_NAME_ANNOTATION]: 'scan-1', 'kubectl.kubernetes.io/default-container': 'worker' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: `job-${jobName.split('-').pop()}-uid`, controller: true, blockOwnerDeletion: true }],
      ...(over.deleting ? { deletionTimestamp: new Date('2026-11-25T09:59:30Z') } : {}),
    } as V1Pod['metadata'],
    spec: { containers: [{ name: 'worker', image: 'w:1' }], nodeName: 'gpu-1' },
    status: status as V1Pod['status'],
  };
}

const cond = (type: string, reason?: string, message?: string) => ({ type, status: 'True', reason, message, lastTransitionTime: '2026-11-25T09:30:00Z', lastProbeTime: null });
const terminated = (exitCode: number, message?: string, reason?: string) => ({
  phase: exitCode === 0 ? 'Succeeded' : 'Failed',
  startTime: '2026-11-25T09:00:05Z',
  containerStatuses: [{ name: 'worker', image: 'w:1', imageID: 'sha', ready: false, restartCount: 0, state: { terminated: { exitCode, reason, message, startedAt: '2026-11-25T09:00:06Z', finishedAt: '2026-11-25T09:20:00Z', containerID: 'cri://1' } } }],
});
const pendingStatus = (s: { attempts: number; conds?: Array<[string, string, string]> }) => ({
  attempts: s.attempts,
  jobName: `scan-1-${s.attempts}`,
  observedGeneration: 1,
  conditions: (s.conds ?? [['Accepted', 'True', 'SpecValid'], ['Running', 'False', 'Pending'], ['Succeeded', 'Unknown', 'Pending'], ['BackdoorDetected', 'Unknown', 'Pending']]).map(([type, status, reason]) => ({
    type,
    status,
    reason,
    message: 'm',
    lastTransitionTime: '2026-11-25T09:00:00Z',
    observedGeneration: 1,
  })),
});

/** Every state reconcile distinguishes, as the API server would send the objects. */
const scenarios: Record<string, { scan: ScanObject; jobs?: V1Job[]; pods?: V1Pod[] }> = {
  'new scan': { scan: scan() },
  'Job created, no pod yet': { scan: scan({ status: pendingStatus({ attempts: 1 }) }), jobs: [job(1, { active: 1 })] },
  'queued by Kueue': { scan: scan({ status: pendingStatus({ attempts: 1 }), spec: { queueName: 'gpus' } }), jobs: [job(1, {}, { queueName: 'gpus', suspend: true })] },
  'image pull error': {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { active: 1 })],
    pods: [pod('scan-1-1', { phase: 'Pending', containerStatuses: [{ name: 'worker', image: 'w:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "w:1"' } } }] })],
  },
  unschedulable: {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { active: 1 })],
    pods: [pod('scan-1-1', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes have nvidia.com/gpu' }] })],
  },
  'secret missing (grace running)': {
    scan: scan({ status: pendingStatus({ attempts: 1 }), spec: { credentials: { secretName: 'aws' } } }),
    jobs: [job(1, { active: 1 })],
    pods: [pod('scan-1-1', { phase: 'Pending', containerStatuses: [{ name: 'worker', image: 'w:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "aws" not found' } } }] })],
  },
  running: {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { active: 1, startTime: '2026-11-25T09:00:02Z' })],
    pods: [
      pod('scan-1-1', { phase: 'Running', startTime: '2026-11-25T09:00:05Z', containerStatuses: [{ name: 'worker', image: 'w:1', imageID: 'sha', ready: true, restartCount: 0, state: { running: { startedAt: '2026-11-25T09:00:06Z' } } }] }),
      pod('scan-1-1', { phase: 'Running' }, { deleting: true }),
    ],
  },
  succeeded: {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { succeeded: 1, startTime: '2026-11-25T09:00:02Z', completionTime: '2026-11-25T09:20:01Z', conditions: [cond('SuccessCriteriaMet'), cond('Complete')] })],
    pods: [pod('scan-1-1', terminated(0, summary()))],
  },
  'succeeded, pod not seen yet': {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { succeeded: 1, completionTime: '2026-11-25T09:59:50Z', conditions: [cond('Complete')] })],
  },
  'failed, retriable (OOM is not; a crash is)': {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { failed: 1, conditions: [cond('FailureTarget'), cond('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit')] })],
    pods: [pod('scan-1-1', terminated(137, undefined, 'Error'))],
  },
  'failed, out of memory': {
    scan: scan({ status: pendingStatus({ attempts: 2 }) }),
    jobs: [job(1, { failed: 1, conditions: [cond('Failed', 'BackoffLimitExceeded')] }), job(2, { failed: 1, conditions: [cond('Failed', 'BackoffLimitExceeded')] })],
    pods: [pod('scan-1-2', terminated(137, undefined, 'OOMKilled'))],
  },
  'failed with a worker summary error': {
    scan: scan({ status: pendingStatus({ attempts: 1 }) }),
    jobs: [job(1, { failed: 1, conditions: [cond('Failed', 'PodFailurePolicy', 'Container worker exited with 1')] })],
    pods: [pod('scan-1-1', terminated(1, summary({ verdict: 'Inconclusive', error: { reason: 'BadModel', message: 'config.json missing' } })))],
  },
  'deadline exceeded': {
    scan: scan({ status: pendingStatus({ attempts: 1 }), spec: { activeDeadlineSeconds: 600 } }),
    jobs: [job(1, { failed: 1, conditions: [cond('Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline')] })],
  },
  'suspend with an active Job': { scan: scan({ status: pendingStatus({ attempts: 1 }), spec: { suspend: true } }), jobs: [job(1, { active: 1 })] },
  'Job being deleted': { scan: scan({ status: pendingStatus({ attempts: 1 }) }), jobs: [job(1, { active: 1 }, { deleting: true })] },
  'scan being deleted': { scan: scan({ meta: { deletionTimestamp: '2026-11-25T09:59:00Z', finalizers: ['x'] } }) },
};

class Cache<T extends { metadata?: { name?: string; namespace?: string } }> {
  items: T[] = [];
  private readonly index: (o: T) => string[];
  constructor(index: (o: T) => string[] = () => []) {
    this.index = index;
  }
  get(k: string) {
    return this.items.find((o) => `${o.metadata?.namespace}/${o.metadata?.name}` === k);
  }
  byIndex(v: string) {
    return this.items.filter((o) => this.index(o).includes(v));
  }
  mutate() {}
  list() {
    return this.items;
  }
  hasSynced() {
    return true;
  }
}

/** Run one reconcile on the given cache contents and record every call it makes. */
async function decide(s: ScanObject, jobs: V1Job[], pods: V1Pod[]) {
  const calls: unknown[] = [];
  const scans = new Cache<ScanObject>();
  scans.items.push(s);
  const jc = new Cache<V1Job>(INDEX_OWNER);
  jc.items.push(...jobs);
  const pc = new Cache<V1Pod>(INDEX_JOB);
  pc.items.push(...pods);
  const r = new Reconciler({
    scans,
    jobs: jc,
    pods: pc,
    batch: {
      createNamespacedJob: async (x: unknown) => void calls.push(['create', x]),
      deleteNamespacedJob: async (x: unknown) => void calls.push(['delete', x]),
    },
    custom: { patchNamespacedCustomObjectStatus: async (x: unknown) => void calls.push(['patch', x]) },
    events: { emitInBackground: (reg: unknown, ev: unknown) => void calls.push(['events', reg, ev]) },
    jobConfig: { workerImage: 'w:1', workerServiceAccount: 'sa' },
    now: () => NOW,
  } as never);
  const outcome = await r.reconcile('team-a/scan-1');
  return { outcome, calls };
}

for (const [name, sc] of Object.entries(scenarios)) {
  test(`projection: reconcile decides the same on the projected objects (${name})`, async () => {
    const clone = <T>(x: T): T => structuredClone(x);
    const full = await decide(clone(sc.scan), clone(sc.jobs ?? []), clone(sc.pods ?? []));
    const it = new Interner();
    const projected = await decide(
      projectScan(clone(sc.scan), it),
      (sc.jobs ?? []).map((j) => projectJob(clone(j), it)),
      (sc.pods ?? []).map((p) => projectPod(clone(p), it)),
    );
    assert.deepEqual(projected, full);
  });
}

test('projection: the scenarios cover every path (each makes a different decision)', async () => {
  const seen = new Map<string, string>();
  for (const [name, sc] of Object.entries(scenarios)) {
    const key = JSON.stringify(await decide(sc.scan, sc.jobs ?? [], sc.pods ?? []));
    assert.equal(seen.get(key), undefined, `${name} decides as ${seen.get(key)} does`);
    seen.set(key, name);
  }
});

test('projection: what nobody reads is dropped (managedFields, other labels and annotations, the pod template, the pod spec)', () => {
  const it = new Interner();
  // Projections may carry undefined properties (fixed shapes); what they hold is their JSON.
  const json = (o: unknown) => JSON.parse(JSON.stringify(o));
  const s = json(projectScan(scan({ status: pendingStatus({ attempts: 1 }) }), it));
  assert.deepEqual(Object.keys(s), ['metadata', 'spec', 'status']);
  assert.deepEqual(Object.keys(s.metadata).sort(), ['creationTimestamp', 'generation', 'name', 'namespace', 'resourceVersion', 'uid']);
  const full = job(1, { active: 1, startTime: '2026-11-25T09:00:02Z', ready: 0, uncountedTerminatedPods: {} });
  const j = json(projectJob(full, it));
  assert.deepEqual(j.spec, { suspend: false });
  assert.deepEqual(j.status, { active: 1, startTime: '2026-11-25T09:00:02Z' });
  assert.deepEqual(Object.keys(j.metadata).sort(), ['creationTimestamp', 'labels', 'name', 'namespace', 'ownerReferences', 'resourceVersion', 'uid']);
  assert.deepEqual(Object.keys(j.metadata.labels).sort(), [LABELS.managedBy, LABELS.attempt, LABELS.scanName, LABELS.scanUid].sort());
  assert.deepEqual(j.metadata.ownerReferences, [{ apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', name: 'scan-1', uid: UID, controller: true }]);
  const p = json(projectPod(pod('scan-1-1', { phase: 'Running', qosClass: 'Burstable', podIPs: [{ ip: '10.0.0.1' }] }), it));
  assert.equal(p.spec, undefined);
  assert.deepEqual(p.metadata.annotations, { [SCAN_NAME_ANNOTATION]: 'scan-1' });
  assert.equal(p.metadata.labels['batch.kubernetes.io/controller-uid'], undefined);
  assert.deepEqual(p.status, { phase: 'Running' });
  // Far smaller than what the API server sent.
  const size = (o: unknown) => JSON.stringify(o).length;
  assert.ok(size(j) * 4 < size(full), `${size(j)} vs ${size(full)}`);
});

test('projection: what live progress reads is kept (uids, scan-uid and attempt labels, controller owners, Job conditions, scan status)', () => {
  const it = new Interner();
  const p = projectPod(pod('scan-1-2', {}), it);
  assert.equal(p.metadata!.uid, 'scan-1-2-abcde-uid');
  assert.equal(p.metadata!.labels![LABELS.scanUid], UID);
  assert.equal(p.metadata!.labels![LABELS.attempt], '2');
  assert.deepEqual(p.metadata!.ownerReferences, [{ apiVersion: 'batch/v1', kind: 'Job', name: 'scan-1-2', uid: 'job-2-uid', controller: true }]);
  const j = projectJob(job(2, { conditions: [cond('Complete')] }), it);
  assert.equal(j.metadata!.uid, 'job-2-uid');
  assert.equal(j.metadata!.labels![LABELS.scanUid], UID);
  assert.equal(j.status!.conditions![0].type, 'Complete');
  const s = projectScan(scan({ status: pendingStatus({ attempts: 2 }) }), it);
  assert.equal(s.metadata!.uid, UID);
  assert.equal(s.status!.attempts, 2);
});

test('projection: equal content is shared between objects, frozen, and a Date from a typed client becomes the API string', () => {
  const it = new Interner();
  const a = projectScan(scan({ meta: { name: 'a' }, status: pendingStatus({ attempts: 1 }) }), it);
  const b = projectScan(scan({ meta: { name: 'b' }, status: pendingStatus({ attempts: 1 }) }), it);
  const sa = a.spec as Record<string, unknown>;
  const sb = b.spec as Record<string, unknown>;
  assert.notEqual(a.metadata, b.metadata);
  assert.equal(sa.parameters, sb.parameters, 'the defaulted parameters are one object');
  assert.equal((a.status!.conditions as unknown[])[0], (b.status!.conditions as unknown[])[0], 'equal conditions are one object');
  assert.ok(Object.isFrozen(sa.parameters));
  assert.throws(() => {
    (sa.parameters as Record<string, unknown>).topK = 1;
  }, TypeError);
  assert.ok(it.stats.objectHits > 0 && it.stats.stringHits > 0);
  const j = projectJob({ metadata: { name: 'j', creationTimestamp: new Date('2026-11-25T09:00:01.250Z') }, status: { startTime: new Date('2026-11-25T09:00:02Z') } }, it);
  assert.equal(j.metadata!.creationTimestamp as unknown, '2026-11-25T09:00:01Z');
  assert.equal(j.status!.startTime as unknown, '2026-11-25T09:00:02Z');
});

test('interner: pools are bounded and start over when full; sharing never changes a value', () => {
  const it = new Interner({ maxStrings: 3, maxObjects: 2 });
  const values = ['a', 'b', 'c', 'd', 'a'];
  assert.deepEqual(values.map((v) => it.str(v)), values);
  assert.equal(it.stats.resets, 1);
  const objs = [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 1 }].map((o) => it.json(o));
  assert.deepEqual(objs, [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 1 }]);
  assert.ok(it.stats.resets >= 2);
  // Long strings and big objects are copied, not pooled.
  const long = 'y'.repeat(1000);
  assert.equal(it.str(long), long);
  const big = { text: 'z'.repeat(600) };
  assert.notEqual(it.json(big), it.json(big));
  assert.deepEqual(it.json(big), big);
  assert.deepEqual(it.json({ a: [1, 'x', null, { b: undefined, c: true }] }), { a: [1, 'x', null, { c: true }] });
});
