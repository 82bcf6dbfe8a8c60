// The operator in-process against a real kube-apiserver (etcd + kube-apiserver built from the Go
// module proxy; no kube-controller-manager: as in JobSet's integration tests, the test plays the
// Job controller and the kubelet by writing Job and Pod status).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { completeJob, failJob, createJobPod, type ControlPlane } from './harness/controlplane.ts';
import {
  startClusterWithCrd,
  ensureNamespace,
  createScan,
  getScan,
  cond,
  summary,
  waitFor,
  startTestOperator,
  listJobs,
  listEvents,
  httpGet,
  clients,
  raw,
} from './operator.helpers.ts';
import { CRD_NAME, GROUP, PLURAL, VERSION } from '../crds/backdoorscan.ts';
import type { OperatorHandle } from '../operator/main.ts';

let cp: ControlPlane;
let op: OperatorHandle;
const ns = 'scans';

before(async () => {
  cp = await startClusterWithCrd();
  await ensureNamespace(cp.kubeConfig, ns);
  op = await startTestOperator(cp, { watchdogMs: 60_000, secretGraceMs: 3_000 });
});

after(async () => {
  await op?.stop();
  await cp?.stop();
});

test('the generated CRD is Established on the real API server', async () => {
  const r = await raw(cp, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
  const established = r.body.status.conditions.find((c: { type: string }) => c.type === 'Established');
  assert.equal(established.status, 'True');
});

test('apply -> one Job with the expected spec, owner reference and status', async () => {
  await createScan(cp.kubeConfig, 'apply-1', ns, { queueName: 'gpu', activeDeadlineSeconds: 7200, resources: { gpus: 2, gpuProduct: 'NVIDIA-H100-80GB-HBM3' } });
  const job = await waitFor('Job apply-1-1', async () => (await listJobs(cp.kubeConfig, ns, 'apply-1'))[0]);
  const scan = await getScan(cp.kubeConfig, 'apply-1', ns);
  assert.equal(job.metadata!.name, 'apply-1-1');
  const owner = job.metadata!.ownerReferences![0];
  assert.equal(owner.kind, 'BackdoorScan');
  assert.equal(owner.uid, scan.metadata.uid);
  assert.equal(owner.controller, true);
  assert.equal(owner.blockOwnerDeletion, true);
  assert.equal(job.metadata!.labels!['kueue.x-k8s.io/queue-name'], 'gpu');
  assert.equal(job.spec!.backoffLimit, 0);
  assert.equal(job.spec!.activeDeadlineSeconds, 7200);
  const pod = job.spec!.template.spec!;
  assert.equal(pod.restartPolicy, 'Never');
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.containers[0].resources!.limits!['nvidia.com/gpu'], '2');
  assert.equal(pod.nodeSelector!['nvidia.com/gpu.product'], 'NVIDIA-H100-80GB-HBM3');
  assert.equal(pod.containers[0].securityContext!.readOnlyRootFilesystem, true);
  assert.deepEqual(pod.containers[0].command, ['elibadcode']);
  assert.equal(pod.containers[0].args![0], 'scan');
  const st = await waitFor('status written', async () => {
    const s = await getScan(cp.kubeConfig, 'apply-1', ns);
    return s.status?.jobName ? s : undefined;
  });
  assert.equal(st.status.observedGeneration, 1);
  assert.equal(st.status.attempts, 1);
  assert.equal(st.status.jobName, 'apply-1-1');
  assert.equal(cond(st, 'Accepted')?.status, 'True');
  assert.equal(cond(st, 'Running')?.status, 'False');
  // Idempotent: more reconciles (resync, our own status update) never create a second Job.
  await sleep(500);
  assert.equal((await listJobs(cp.kubeConfig, ns, 'apply-1')).length, 1);
});

test('Job success + worker termination message -> verdict, triggers, metrics, artifact in status; events; metrics', async () => {
  await createScan(cp.kubeConfig, 'ok-1', ns);
  await waitFor('Job ok-1-1', async () => (await listJobs(cp.kubeConfig, ns, 'ok-1'))[0]);
  // kubelet: the pod ran; it shows as Running first.
  await createJobPod(cp.kubeConfig, ns, 'ok-1-1', { exitCode: 0, message: summary() });
  await completeJob(cp.kubeConfig, ns, 'ok-1-1');
  const scan = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'ok-1', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  const st = scan.status;
  assert.equal(st.verdict, 'Backdoored');
  assert.equal(st.targetLabel, 0);
  assert.equal(st.triggers.anchored.text, ' test');
  assert.equal(st.metrics.asrAfter, 0.02);
  assert.equal(st.artifact.modelUri, 's3://cleaned/codebert-defect');
  assert.equal(st.artifact.sha256, 'b'.repeat(64));
  assert.ok(st.completionTime && st.startTime);
  assert.equal(cond(scan, 'BackdoorDetected')?.status, 'True');
  assert.equal(cond(scan, 'BackdoorDetected')?.reason, 'BackdoorFound');
  assert.equal(cond(scan, 'Eliminated')?.status, 'True');
  assert.equal(cond(scan, 'Running')?.status, 'False');
  assert.equal(cond(scan, 'Succeeded')?.message, 'scan finished: verdict Backdoored');
  assert.equal(st.caveats, undefined, 'a run without fallbacks has no caveats');
  const events = await waitFor('events', async () => {
    const e = await listEvents(cp, ns, 'ok-1');
    return e.some((x) => x.reason === 'BackdoorFound') ? e : undefined;
  });
  assert.ok(events.some((e) => e.reason === 'JobCreated'));
  const found = events.find((e) => e.reason === 'BackdoorFound')!;
  assert.equal(found.type, 'Warning');
  assert.match(found.note, /verdict Backdoored/);
  assert.match(found.eventTime, /\.\d{6}Z$/);
  const m = await httpGet(op.http!.port, '/metrics');
  assert.match(m.body, /elibadcode_scans_finished_total\{verdict="Backdoored"\} [1-9]/);
  assert.match(m.body, /elibadcode_backdoors_detected_total [1-9]/);
  assert.match(m.body, /elibadcode_scan_eliminations_total\{result="TriggerUnlearned"\} [1-9]/);
  assert.match(m.body, /controller_runtime_reconcile_total\{controller="backdoorscan",result="success"\} \d+/);
  assert.match(m.body, /workqueue_adds_total\{name="backdoorscan",controller="backdoorscan"\} \d+/);
  assert.match(m.body, /elibadcode_scans\{condition="Succeeded"\} [1-9]/);
  assert.doesNotMatch(m.body, /ok-1/, 'no object names in metric labels');
  // A finished scan is left alone: no new Job even when poked.
  await clients(cp.kubeConfig).custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name: 'ok-1', body: { metadata: { labels: { poke: '1' } } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  await sleep(300);
  assert.equal((await listJobs(cp.kubeConfig, ns, 'ok-1')).length, 1);
});

test('a cleaned model that still scores as backdoored -> Succeeded, but Eliminated=False/BackdoorSurvived naming the score', async () => {
  await createScan(cp.kubeConfig, 'survived', ns);
  await waitFor('Job survived-1', async () => (await listJobs(cp.kubeConfig, ns, 'survived'))[0]);
  const metrics = { detectionScore: 0.9, detectionThreshold: 0.82, detectionScoreAfter: 0.88, asrBefore: 1, asrAfter: 0.95 };
  await createJobPod(cp.kubeConfig, ns, 'survived-1', { exitCode: 0, message: summary({ eliminated: false, metrics }) });
  await completeJob(cp.kubeConfig, ns, 'survived-1');
  const scan = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'survived', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  assert.equal(cond(scan, 'BackdoorDetected')?.status, 'True');
  const e = cond(scan, 'Eliminated')!;
  assert.equal(e.status, 'False');
  assert.equal(e.reason, 'BackdoorSurvived');
  assert.match(e.message, /still scores 0\.88 against threshold 0\.82/);
  assert.equal(scan.status.metrics.detectionScoreAfter, 0.88);
  assert.equal(scan.status.artifact.modelUri, 's3://cleaned/codebert-defect', 'what was written is still reported');
  // What the BackdoorSurvivedUnlearning alert counts.
  const m = await httpGet(op.http!.port, '/metrics');
  assert.match(m.body, /elibadcode_scan_eliminations_total\{result="BackdoorSurvived"\} 1\b/);
});

test('a Clean verdict -> BackdoorDetected=False/NoBackdoorFound and Eliminated=False/NothingToUnlearn, not counted as survived', async () => {
  await createScan(cp.kubeConfig, 'clean-1', ns);
  await waitFor('Job clean-1-1', async () => (await listJobs(cp.kubeConfig, ns, 'clean-1'))[0]);
  const metrics = { detectionScore: 0.3, detectionThreshold: 0.82, asrBefore: 0.4, accuracyBefore: 0.6 };
  await createJobPod(cp.kubeConfig, ns, 'clean-1-1', { exitCode: 0, message: summary({ verdict: 'Clean', eliminated: false, artifact: undefined, metrics }) });
  await completeJob(cp.kubeConfig, ns, 'clean-1-1');
  const scan = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'clean-1', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  assert.equal(scan.status.verdict, 'Clean');
  assert.equal(cond(scan, 'BackdoorDetected')?.reason, 'NoBackdoorFound');
  const e = cond(scan, 'Eliminated')!;
  assert.deepEqual([e.status, e.reason], ['False', 'NothingToUnlearn']);
  assert.match(e.message, /verdict Clean.*spec\.unlearning\.force/);
  const m = await httpGet(op.http!.port, '/metrics');
  assert.match(m.body, /elibadcode_scan_eliminations_total\{result="NothingToUnlearn"\} 1\b/);
});

test('caveats: the worker\'s fallbacks reach status.caveats and the Succeeded message names the first; an Unknown verdict is counted as Unknown', async () => {
  await createScan(cp.kubeConfig, 'caveats-1', ns);
  await waitFor('Job caveats-1-1', async () => (await listJobs(cp.kubeConfig, ns, 'caveats-1'))[0]);
  const caveats = [
    'no held-out samples are left for the verdict and verification: verdict Unknown',
    'only 12 clean samples of victim label 1 for inversion (asked for 30); all of them are used',
  ];
  await createJobPod(cp.kubeConfig, ns, 'caveats-1-1', { exitCode: 0, message: summary({ verdict: 'Unknown', eliminated: false, artifact: undefined, metrics: {}, caveats }) });
  await completeJob(cp.kubeConfig, ns, 'caveats-1-1');
  const scan = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'caveats-1', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  assert.deepEqual(scan.status.caveats, caveats);
  assert.equal(cond(scan, 'Succeeded')!.message, `scan finished: verdict Unknown; caveat (and 1 more), see status.caveats: ${caveats[0]}`);
  assert.deepEqual([cond(scan, 'BackdoorDetected')?.status, cond(scan, 'BackdoorDetected')?.reason], ['Unknown', 'Inconclusive']);
  const m = await httpGet(op.http!.port, '/metrics');
  assert.match(m.body, /elibadcode_scans_finished_total\{verdict="Unknown"\} 1\b/, 'not counted as Clean');
});

test('caveats belong to their attempt: a retried attempt without fallbacks clears the failed attempt\'s', async () => {
  await createScan(cp.kubeConfig, 'caveats-2', ns, { retry: { maxAttempts: 2 } });
  await waitFor('Job caveats-2-1', async () => (await listJobs(cp.kubeConfig, ns, 'caveats-2'))[0]);
  const failed = summary({ verdict: 'Unknown', eliminated: false, artifact: undefined, caveats: ['the first attempt fell back'], error: { reason: 'UploadFailed', message: 'PUT s3://cleaned/m: 503' } });
  await createJobPod(cp.kubeConfig, ns, 'caveats-2-1', { exitCode: 1, message: failed });
  await failJob(cp.kubeConfig, ns, 'caveats-2-1');
  const mid = await waitFor('attempt 2', async () => {
    const s = await getScan(cp.kubeConfig, 'caveats-2', ns);
    return s.status?.attempts === 2 ? s : undefined;
  });
  assert.deepEqual(mid.status.caveats, ['the first attempt fell back'], 'what the last finished attempt said');
  await createJobPod(cp.kubeConfig, ns, 'caveats-2-2', { exitCode: 0, message: summary() });
  await completeJob(cp.kubeConfig, ns, 'caveats-2-2');
  const done = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'caveats-2', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  assert.equal(done.status.caveats, undefined);
  assert.equal(cond(done, 'Succeeded')!.message, 'scan finished: verdict Backdoored');
});

test('worker failure -> retry with a new attempt Job, then Failed with reason RetriesExhausted', async () => {
  await createScan(cp.kubeConfig, 'retry-1', ns, { retry: { maxAttempts: 2 } });
  await waitFor('Job retry-1-1', async () => (await listJobs(cp.kubeConfig, ns, 'retry-1'))[0]);
  await createJobPod(cp.kubeConfig, ns, 'retry-1-1', { exitCode: 1, message: 'segfault in the tokenizer' });
  await failJob(cp.kubeConfig, ns, 'retry-1-1');
  const j2 = await waitFor('Job retry-1-2', async () => (await listJobs(cp.kubeConfig, ns, 'retry-1')).find((j) => j.metadata!.name === 'retry-1-2'));
  assert.equal(j2.metadata!.labels!['elibadcode.dev/attempt'], '2');
  const mid = await waitFor('Retrying', async () => {
    const s = await getScan(cp.kubeConfig, 'retry-1', ns);
    return s.status?.attempts === 2 ? s : undefined;
  });
  assert.equal(cond(mid, 'Running')?.reason, 'Retrying');
  assert.notEqual(cond(mid, 'Failed')?.status, 'True');
  await createJobPod(cp.kubeConfig, ns, 'retry-1-2', { exitCode: 137, reason: 'Error' });
  await failJob(cp.kubeConfig, ns, 'retry-1-2');
  const done = await waitFor('Failed', async () => {
    const s = await getScan(cp.kubeConfig, 'retry-1', ns);
    return cond(s, 'Failed')?.status === 'True' ? s : undefined;
  });
  assert.equal(cond(done, 'Failed')?.reason, 'RetriesExhausted');
  assert.match(cond(done, 'Failed')!.message, /exit code 137/);
  assert.equal(cond(done, 'Succeeded')?.status, 'False');
  assert.equal((await listJobs(cp.kubeConfig, ns, 'retry-1')).length, 2, 'no third attempt');
  const ev = await listEvents(cp, ns, 'retry-1');
  assert.ok(ev.some((e) => e.reason === 'Retrying'));
  assert.ok(ev.some((e) => e.reason === 'RetriesExhausted'));
});

test('a bad model (summary error BadModel) -> Failed/BadModel at once, no retry, no hot loop', async () => {
  await createScan(cp.kubeConfig, 'bad-model', ns);
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'bad-model'))[0]);
  await createJobPod(cp.kubeConfig, ns, 'bad-model-1', {
    exitCode: 3,
    message: JSON.stringify({ schemaVersion: 1, verdict: 'Unknown', error: { reason: 'BadModel', message: 'config.json: model_type "gpt2" has no classification head for task defect' } }),
  });
  await failJob(cp.kubeConfig, ns, 'bad-model-1', { reason: 'PodFailurePolicy', message: 'Container worker for pod exited with code 3 matching FailJob rule' });
  const s = await waitFor('Failed', async () => {
    const x = await getScan(cp.kubeConfig, 'bad-model', ns);
    return cond(x, 'Failed')?.status === 'True' ? x : undefined;
  });
  assert.equal(cond(s, 'Failed')?.reason, 'BadModel');
  assert.match(cond(s, 'Failed')!.message, /no classification head/);
  const before = Number((await httpGet(op.http!.port, '/metrics')).body.match(/controller_runtime_reconcile_total\{controller="backdoorscan",result="success"\} (\d+)/)![1]);
  await sleep(1000);
  const afterCount = Number((await httpGet(op.http!.port, '/metrics')).body.match(/controller_runtime_reconcile_total\{controller="backdoorscan",result="success"\} (\d+)/)![1]);
  assert.ok(afterCount - before <= 2, `no hot loop (${afterCount - before} reconciles in 1 s)`);
  assert.equal((await listJobs(cp.kubeConfig, ns, 'bad-model')).length, 1, 'permanent failures are not retried');
});

test('an unreadable termination message -> Failed/InvalidSummary', async () => {
  await createScan(cp.kubeConfig, 'garbled', ns);
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'garbled'))[0]);
  await createJobPod(cp.kubeConfig, ns, 'garbled-1', { exitCode: 0, message: 'Traceback (most recent call last): ...' });
  await completeJob(cp.kubeConfig, ns, 'garbled-1');
  const s = await waitFor('Failed', async () => {
    const x = await getScan(cp.kubeConfig, 'garbled', ns);
    return cond(x, 'Failed')?.status === 'True' ? x : undefined;
  });
  assert.equal(cond(s, 'Failed')?.reason, 'InvalidSummary');
  assert.match(cond(s, 'Failed')!.message, /not JSON/);
});

test('running pod -> Running=True with startTime; deadline exceeded -> Failed/DeadlineExceeded without retry', async () => {
  await createScan(cp.kubeConfig, 'deadline', ns, { activeDeadlineSeconds: 60 });
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'deadline'))[0]);
  // A running worker pod, as the kubelet reports it.
  const { core, batch } = clients(cp.kubeConfig);
  const job = await batch.readNamespacedJob({ name: 'deadline-1', namespace: ns });
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name: 'deadline-1-run',
        labels: { ...job.spec!.template.metadata!.labels, 'batch.kubernetes.io/job-name': 'deadline-1' },
        annotations: job.spec!.template.metadata!.annotations,
      },
      spec: { ...job.spec!.template.spec!, nodeName: 'gpu-node-1' },
    },
  });
  pod.status = { phase: 'Running', startTime: new Date(), containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date() } } }] };
  await core.replaceNamespacedPodStatus({ name: 'deadline-1-run', namespace: ns, body: pod });
  const running = await waitFor('Running', async () => {
    const s = await getScan(cp.kubeConfig, 'deadline', ns);
    return cond(s, 'Running')?.status === 'True' ? s : undefined;
  });
  assert.equal(cond(running, 'Running')?.reason, 'PodRunning');
  assert.ok(running.status.startTime);
  await failJob(cp.kubeConfig, ns, 'deadline-1', { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' });
  const s = await waitFor('Failed', async () => {
    const x = await getScan(cp.kubeConfig, 'deadline', ns);
    return cond(x, 'Failed')?.status === 'True' ? x : undefined;
  });
  assert.equal(cond(s, 'Failed')?.reason, 'DeadlineExceeded');
  assert.equal((await listJobs(cp.kubeConfig, ns, 'deadline')).length, 1);
});

test('waiting reasons: queued by Kueue (suspended Job), image pull errors', async () => {
  await createScan(cp.kubeConfig, 'queued', ns, { queueName: 'team-gpu' });
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'queued'))[0]);
  // Kueue suspends the Job until quota is reserved.
  const { batch, core } = clients(cp.kubeConfig);
  await batch.patchNamespacedJob(
    { name: 'queued-1', namespace: ns, body: { spec: { suspend: true } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  const q = await waitFor('WaitingForQuota', async () => {
    const s = await getScan(cp.kubeConfig, 'queued', ns);
    return cond(s, 'Running')?.reason === 'WaitingForQuota' ? s : undefined;
  });
  assert.match(cond(q, 'Running')!.message, /team-gpu/);
  const m = await httpGet(op.http!.port, '/metrics');
  assert.match(m.body, /elibadcode_scans\{condition="Queued"\} [1-9]/);
  // Admitted; the pod cannot pull its image.
  await batch.patchNamespacedJob(
    { name: 'queued-1', namespace: ns, body: { spec: { suspend: false } } },
    (await import('@kubernetes/client-node')).setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  const job = await batch.readNamespacedJob({ name: 'queued-1', namespace: ns });
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'queued-1-x', labels: { ...job.spec!.template.metadata!.labels, 'batch.kubernetes.io/job-name': 'queued-1' }, annotations: job.spec!.template.metadata!.annotations },
      spec: { ...job.spec!.template.spec!, nodeName: 'gpu-node-1' },
    },
  });
  pod.status = {
    phase: 'Pending',
    containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "elibadcode/worker:test"' } } }],
  };
  await core.replaceNamespacedPodStatus({ name: 'queued-1-x', namespace: ns, body: pod });
  const ip = await waitFor('ImagePullFailed', async () => {
    const s = await getScan(cp.kubeConfig, 'queued', ns);
    return cond(s, 'Running')?.reason === 'ImagePullFailed' ? s : undefined;
  });
  assert.match(cond(ip, 'Running')!.message, /Back-off pulling image/);
});

test('a missing credentials Secret -> Accepted=False/SecretNotFound while it may still appear, then Failed/SecretNotFound and the Job deleted', async () => {
  await createScan(cp.kubeConfig, 'nosecret', ns, { credentials: { secretName: 'model-creds' } });
  const job = await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'nosecret'))[0]);
  assert.equal(job.spec!.template.spec!.containers[0].envFrom![0].secretRef!.name, 'model-creds', 'credentials by reference');
  // The operator has no RBAC on Secrets; the kubelet reports the missing Secret on the pod.
  const { core } = clients(cp.kubeConfig);
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'nosecret-1-x', labels: { ...job.spec!.template.metadata!.labels, 'batch.kubernetes.io/job-name': 'nosecret-1' }, annotations: job.spec!.template.metadata!.annotations },
      spec: { ...job.spec!.template.spec!, nodeName: 'gpu-node-1' },
    },
  });
  pod.status = {
    phase: 'Pending',
    containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "model-creds" not found' } } }],
  };
  await core.replaceNamespacedPodStatus({ name: 'nosecret-1-x', namespace: ns, body: pod });
  const waiting = await waitFor('SecretNotFound', async () => {
    const s = await getScan(cp.kubeConfig, 'nosecret', ns);
    return cond(s, 'Accepted')?.reason === 'SecretNotFound' ? s : undefined;
  });
  assert.equal(cond(waiting, 'Accepted')?.status, 'False');
  assert.notEqual(cond(waiting, 'Failed')?.status, 'True');
  const failed = await waitFor('Failed after the grace period', async () => {
    const s = await getScan(cp.kubeConfig, 'nosecret', ns);
    return cond(s, 'Failed')?.status === 'True' ? s : undefined;
  }, 30_000);
  assert.equal(cond(failed, 'Failed')?.reason, 'SecretNotFound');
  assert.match(cond(failed, 'Failed')!.message, /model-creds/);
  await waitFor('Job deleted', async () => (await listJobs(cp.kubeConfig, ns, 'nosecret')).length === 0);
});

test('suspend deletes the active Job and sets Suspended; resume creates the Job again', async () => {
  await createScan(cp.kubeConfig, 'susp', ns);
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'susp'))[0]);
  const { setHeaderOptions } = await import('@kubernetes/client-node');
  const patch = (suspend: boolean) =>
    clients(cp.kubeConfig).custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name: 'susp', body: { spec: { suspend } } },
      setHeaderOptions('Content-Type', 'application/merge-patch+json'),
    );
  await patch(true);
  await waitFor('Job deleted', async () => (await listJobs(cp.kubeConfig, ns, 'susp')).length === 0);
  const s = await waitFor('Suspended', async () => {
    const x = await getScan(cp.kubeConfig, 'susp', ns);
    return cond(x, 'Suspended')?.status === 'True' ? x : undefined;
  });
  assert.equal(cond(s, 'Suspended')?.reason, 'SuspendedByUser');
  assert.equal(s.status.observedGeneration, 2);
  assert.equal(s.status.jobName, 'susp-1', 'what was learned is kept');
  await patch(false);
  await waitFor('Job recreated', async () => (await listJobs(cp.kubeConfig, ns, 'susp')).length === 1);
  const r = await waitFor('Resumed', async () => {
    const x = await getScan(cp.kubeConfig, 'susp', ns);
    return cond(x, 'Suspended')?.status === 'False' ? x : undefined;
  });
  assert.equal(cond(r, 'Suspended')?.reason, 'Resumed');
});

test('delete: the Jobs carry the owner reference the garbage collector follows', async () => {
  await createScan(cp.kubeConfig, 'del', ns);
  const job = await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'del'))[0]);
  const scan = await getScan(cp.kubeConfig, 'del', ns);
  await clients(cp.kubeConfig).custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name: 'del' });
  const ref = job.metadata!.ownerReferences!.find((o) => o.controller)!;
  assert.deepEqual(
    { kind: ref.kind, name: ref.name, uid: ref.uid, blockOwnerDeletion: ref.blockOwnerDeletion },
    { kind: 'BackdoorScan', name: 'del', uid: scan.metadata.uid, blockOwnerDeletion: true },
  );
  if (cp.controllerManager) {
    await waitFor('garbage collection of the Job', async () => (await listJobs(cp.kubeConfig, ns, 'del')).length === 0, 60_000);
  }
  // The operator does not recreate anything for a deleted scan.
  await sleep(300);
  assert.ok((await listJobs(cp.kubeConfig, ns, 'del')).length <= 1);
});

test('watch interrupted, and watch expired (410 Gone) -> the informers resume and scans keep flowing', async () => {
  const scansInf = op.informers.scans[0];
  const jobsInf = op.informers.jobs[0];
  const before410 = scansInf.stats.relists410;
  const jobWatches = jobsInf.stats.watches;
  const watchesBefore = scansInf.stats.watches;
  scansInf.interruptWatch();
  await createScan(cp.kubeConfig, 'after-drop', ns);
  await waitFor('Job after a dropped watch', async () => (await listJobs(cp.kubeConfig, ns, 'after-drop'))[0]);
  assert.ok(scansInf.stats.watches > watchesBefore, 're-watched');
  // Resume from a resourceVersion the server no longer has: it answers 410 Gone, the informer relists.
  scansInf.interruptWatch({ expire: true });
  jobsInf.interruptWatch();
  await waitFor('relist after 410', () => scansInf.stats.relists410 >= before410 + 1, 10_000);
  await waitFor('jobs re-watched', () => jobsInf.stats.watches > jobWatches, 10_000);
  await createScan(cp.kubeConfig, 'after-410', ns);
  await waitFor('Job after an expired watch', async () => (await listJobs(cp.kubeConfig, ns, 'after-410'))[0]);
  const s = await waitFor('status after 410', async () => {
    const x = await getScan(cp.kubeConfig, 'after-410', ns);
    return x.status?.jobName ? x : undefined;
  });
  assert.equal(s.status.attempts, 1);
});

test('/healthz and /readyz', async () => {
  assert.equal((await httpGet(op.http!.port, '/healthz')).status, 200);
  const r = await httpGet(op.http!.port, '/readyz');
  assert.equal(r.status, 200, r.body);
});
