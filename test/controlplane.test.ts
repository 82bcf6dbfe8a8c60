// Integration test of the control-plane harness itself: real etcd + kube-apiserver.
// First run on a machine pays the cold build of the binaries (scripts/k8s/build.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { BatchV1Api, CoreV1Api, AuthorizationV1Api, RbacAuthorizationV1Api, type V1Job } from '@kubernetes/client-node';
import { startControlPlane, startJob, completeJob, failJob, createJobPod, processAlive, isBuilt, type ControlPlane } from './harness/controlplane.ts';

let cp: ControlPlane;
const ns = 'harness-test';

function jobBody(name: string): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'worker', image: 'worker:test', terminationMessagePolicy: 'FallbackToLogsOnError' }],
        },
      },
    },
  };
}

function condTypes(job: V1Job): string[] {
  return (job.status?.conditions ?? []).filter((c) => c.status === 'True').map((c) => c.type);
}

before(async () => {
  const t0 = Date.now();
  cp = await startControlPlane({ log: (l) => console.log(`# ${l}`) });
  console.log(`# control plane up in ${Date.now() - t0} ms`);
}, { timeout: 40 * 60_000 });

after(async () => {
  await cp?.stop();
});

test('kube-apiserver is ready and the kubeconfig works', async () => {
  const r = await fetchReadyz(cp);
  assert.equal(r, 'ok');
  assert.ok(existsSync(cp.kubeconfigPath));
  assert.equal(cp.kubeConfig.getCurrentCluster()?.server, cp.server);
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const cm = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'hello' }, data: { greeting: 'hi' } },
  });
  assert.ok(cm.metadata?.uid);
  const back = await core.readNamespacedConfigMap({ name: 'hello', namespace: ns });
  assert.equal(back.data?.greeting, 'hi');
});

test('RBAC is enforced for other identities', async () => {
  // Impersonated service account: authenticated, but no RBAC grants.
  const sa = cp.impersonate(`system:serviceaccount:${ns}:nobody`).makeApiClient(CoreV1Api);
  await assert.rejects(sa.listNamespacedConfigMap({ namespace: ns }), (e: { code?: number }) => e.code === 403);
  // Client-certificate user: same.
  const certUser = (await cp.userKubeConfig('alice', ['team-a'])).makeApiClient(CoreV1Api);
  await assert.rejects(certUser.readNamespacedConfigMap({ name: 'hello', namespace: ns }), (e: { code?: number }) => e.code === 403);
  // SelfSubjectReview-style check through SubjectAccessReview as admin.
  const authz = cp.kubeConfig.makeApiClient(AuthorizationV1Api);
  const sar = await authz.createSubjectAccessReview({
    body: {
      spec: { user: 'alice', groups: ['team-a'], resourceAttributes: { namespace: ns, verb: 'get', resource: 'configmaps' } },
    },
  });
  assert.equal(sar.status?.allowed, false);
  // Grant via RBAC, and the client-cert user can read.
  const r = cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await r.createNamespacedRole({
    namespace: ns,
    body: { metadata: { name: 'cm-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
  });
  await r.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'team-a-cm-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'team-a' }],
    },
  });
  // RBAC authorizer reads from an informer: allow a moment to propagate.
  let ok = false;
  for (let i = 0; i < 50 && !ok; i++) {
    ok = await certUser.readNamespacedConfigMap({ name: 'hello', namespace: ns }).then(() => true, () => false);
    if (!ok) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(ok, 'alice (group team-a) can read configmaps after the RoleBinding');
});

test('completeJob and a worker pod with a termination message', async () => {
  const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
  await batch.createNamespacedJob({ namespace: ns, body: jobBody('scan-ok-1') });
  const summary = JSON.stringify({ backdoor: false, asr: 0.01 });
  const pod = await createJobPod(cp.kubeConfig, ns, 'scan-ok-1', { exitCode: 0, message: summary });
  assert.equal(pod.status?.phase, 'Succeeded');
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'batch.kubernetes.io/job-name=scan-ok-1' });
  assert.equal(pods.items.length, 1);
  const term = pods.items[0].status?.containerStatuses?.[0].state?.terminated;
  assert.equal(term?.exitCode, 0);
  assert.equal(term?.message, summary);
  assert.equal(pods.items[0].metadata?.ownerReferences?.[0].kind, 'Job');
  assert.equal(pods.items[0].metadata?.ownerReferences?.[0].controller, true);

  await completeJob(cp.kubeConfig, ns, 'scan-ok-1');
  const job = await batch.readNamespacedJobStatus({ name: 'scan-ok-1', namespace: ns });
  assert.deepEqual(condTypes(job).sort(), ['Complete', 'SuccessCriteriaMet']);
  assert.equal(job.status?.succeeded, 1);
  assert.ok(job.status?.startTime && job.status?.completionTime);
  await assert.rejects(failJob(cp.kubeConfig, ns, 'scan-ok-1'), /already Complete/);
});

test('failJob and a failed worker pod', async () => {
  const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
  await batch.createNamespacedJob({ namespace: ns, body: jobBody('scan-bad-1') });
  const pod = await createJobPod(cp.kubeConfig, ns, 'scan-bad-1', { exitCode: 3, message: 'model checkpoint not found' });
  assert.equal(pod.status?.phase, 'Failed');
  const term = pod.status?.containerStatuses?.[0].state?.terminated;
  assert.equal(term?.exitCode, 3);
  assert.equal(term?.reason, 'Error');
  assert.equal(term?.message, 'model checkpoint not found');

  const running = await startJob(cp.kubeConfig, ns, 'scan-bad-1');
  assert.equal(running.status?.active, 1);
  assert.ok(running.status?.startTime);
  await failJob(cp.kubeConfig, ns, 'scan-bad-1', { message: 'worker exited 3' });
  const job = await batch.readNamespacedJobStatus({ name: 'scan-bad-1', namespace: ns });
  assert.deepEqual(condTypes(job).sort(), ['Failed', 'FailureTarget']);
  assert.equal(job.status?.failed, 1);
  assert.equal(job.status?.completionTime, undefined);
  assert.equal(job.status?.conditions?.find((c) => c.type === 'Failed')?.message, 'worker exited 3');
});

test('the API server itself rejects Complete without SuccessCriteriaMet (why the helpers exist)', async () => {
  const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
  const job = await batch.createNamespacedJob({ namespace: ns, body: jobBody('scan-naive-1') });
  const now = new Date();
  job.status = {
    startTime: now,
    completionTime: now,
    succeeded: 1,
    conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: now, lastProbeTime: now }],
  };
  await assert.rejects(
    batch.replaceNamespacedJobStatus({ name: 'scan-naive-1', namespace: ns, body: job }),
    (e: { code?: number }) => e.code === 422,
  );
});

test('stop() kills the processes and removes the temp dir', async () => {
  const pids = Object.values(cp.pids);
  assert.ok(pids.length >= 2);
  for (const pid of pids) assert.ok(processAlive(pid));
  const dir = cp.dir;
  await cp.stop();
  for (const pid of pids) assert.equal(processAlive(pid), false, `pid ${pid} is gone`);
  assert.equal(existsSync(dir), false);
  await cp.stop(); // idempotent
});

test('a failed start throws with the tail of the failing component\'s log and leaves nothing behind', async () => {
  let dir = '';
  await assert.rejects(startControlPlane({ apiServerArgs: ['--no-such-flag=1'] }), (e: Error) => {
    assert.match(e.message, /kube-apiserver exited during start-up/);
    assert.match(e.message, /unknown flag: --no-such-flag/);
    dir = /(\S*elibadcode-cp-[^/\s]+)/.exec(e.message)?.[1] ?? '';
    return true;
  });
  assert.ok(dir, 'the error names the control plane dir');
  assert.equal(existsSync(dir), false);
});

// kube-controller-manager costs ~6 more minutes of cold build, so this runs when it is already built
// or when asked for (ELIBADCODE_TEST_KCM=1 builds it).
const kcmWanted = process.env.ELIBADCODE_TEST_KCM === '1' || isBuilt('kube-controller-manager');
test('with kube-controller-manager: the Job controller creates Pods and the garbage collector removes them', {
  skip: kcmWanted ? false : 'kube-controller-manager not built (ELIBADCODE_TEST_KCM=1 to build and run)',
  timeout: 20 * 60_000,
}, async () => {
  const kcp = await startControlPlane({ controllerManager: true });
  try {
    const core = kcp.kubeConfig.makeApiClient(CoreV1Api);
    const batch = kcp.kubeConfig.makeApiClient(BatchV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await batch.createNamespacedJob({ namespace: ns, body: jobBody('scan-real-1') });
    const list = () => core.listNamespacedPod({ namespace: ns, labelSelector: 'batch.kubernetes.io/job-name=scan-real-1' });
    let pods = await list();
    for (let i = 0; i < 150 && pods.items.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      pods = await list();
    }
    assert.equal(pods.items.length, 1, 'the Job controller created a Pod');
    await batch.deleteNamespacedJob({ name: 'scan-real-1', namespace: ns, propagationPolicy: 'Background' });
    for (let i = 0; i < 150 && pods.items.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      pods = await list();
    }
    assert.equal(pods.items.length, 0, 'the garbage collector deleted the orphaned Pod');
    assert.ok(processAlive(kcp.pids['kube-controller-manager']));
  } finally {
    await kcp.stop();
  }
  for (const pid of Object.values(kcp.pids)) assert.equal(processAlive(pid), false);
});

async function fetchReadyz(c: ControlPlane): Promise<string> {
  const { request } = await import('node:https');
  return await new Promise((res, rej) => {
    const req = request(
      `${c.server}/readyz`,
      { ca: readFileSync(c.caCertPath), headers: { Authorization: `Bearer ${c.adminToken}` } },
      (r) => {
        let b = '';
        r.on('data', (d) => (b += d));
        r.on('end', () => res(b));
      },
    );
    req.on('error', rej);
    req.end();
  });
}
