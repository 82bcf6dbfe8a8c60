// Live progress (operator/progress.ts) against a real kube-apiserver: tokens are minted with the
// TokenRequest API (serviceaccounts/<sa>/token, bound to the worker pod, audience
// elibadcode.dev/progress) and checked by the operator with a real TokenReview. The test plays the
// kubelet and the Job controller (no kube-controller-manager), as in operator.controller.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { completeJob, createJobPod, failJob, type ControlPlane } from './harness/controlplane.ts';
import { clients, cond, createScan, ensureNamespace, getScan, listJobs, raw, startClusterWithCrd, startTestOperator, summary, waitFor } from './operator.helpers.ts';
import type { OperatorHandle } from '../operator/main.ts';
import { PROGRESS_TOKEN_AUDIENCE, PROGRESS_TOKEN_DIR, PROGRESS_TOKEN_FILE } from '../operator/job.ts';
import { MAX_PROGRESS_BODY_BYTES } from '../operator/progress.ts';
import { DEVIGN } from './pipeline.helpers.ts';

let cp: ControlPlane;
let op: OperatorHandle;
const ns = 'progress';
const workerSA = 'elibadcode-worker';
const progressUrl = 'http://elibadcode-operator-progress.elibadcode-system.svc:8082/v1/progress';

before(async () => {
  cp = await startClusterWithCrd();
  await ensureNamespace(cp.kubeConfig, ns);
  for (const name of [workerSA, 'intruder']) {
    const r = await raw(cp, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name }, automountServiceAccountToken: false });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  op = await startTestOperator(cp, { watchdogMs: 60_000, progressPort: 0, progressUrl, workerServiceAccount: workerSA });
});

after(async () => {
  await op?.stop();
  await cp?.stop();
});

/** A running worker pod of a Job, as the Job controller and kubelet would make it (overrides for the attacks). */
async function runningPod(job: string, opts: { name?: string; serviceAccount?: string; labels?: Record<string, string> } = {}): Promise<V1Pod> {
  const { core, batch } = clients(cp.kubeConfig);
  const j = await batch.readNamespacedJob({ name: job, namespace: ns });
  const name = opts.name ?? `${job}-run`;
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name,
        labels: { ...j.spec!.template.metadata!.labels, 'batch.kubernetes.io/job-name': job, ...opts.labels },
        annotations: j.spec!.template.metadata!.annotations,
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job, uid: j.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...j.spec!.template.spec!, nodeName: 'gpu-node-1', ...(opts.serviceAccount ? { serviceAccountName: opts.serviceAccount } : {}) },
    },
  });
  pod.status = { phase: 'Running', startTime: new Date(), containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date() } } }] };
  return await core.replaceNamespacedPodStatus({ name, namespace: ns, body: pod });
}

/** What the kubelet puts in the projected volume: a TokenRequest bound to the pod. */
async function mintToken(pod: V1Pod, audiences = [PROGRESS_TOKEN_AUDIENCE]): Promise<string> {
  const sa = pod.spec!.serviceAccountName!;
  const r = await raw(cp, 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { audiences, expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name, uid: pod.metadata!.uid } },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.status.token;
}

async function post(token: string | undefined, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://127.0.0.1:${op.progress!.port}/v1/progress`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: r.status, body: parsed };
}

/** A scan with its attempt-1 Job and a running worker pod holding a progress token. */
async function runningScan(name: string, spec: Record<string, unknown> = {}) {
  await createScan(cp.kubeConfig, name, ns, spec);
  await waitFor(`Job ${name}-1`, async () => (await listJobs(cp.kubeConfig, ns, name))[0]);
  const pod = await runningPod(`${name}-1`);
  const scan = await waitFor(`${name} Running`, async () => {
    const s = await getScan(cp.kubeConfig, name, ns);
    return cond(s, 'Running')?.status === 'True' ? s : undefined;
  });
  return { pod, scan, uid: scan.metadata.uid as string, token: await mintToken(pod) };
}

const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x));
const reviews = () => op.requests.counts.get('create tokenreviews') ?? 0;

test('the Job carries a projected progress token (not an API token) and still automountServiceAccountToken=false', async () => {
  await createScan(cp.kubeConfig, 'job-shape', ns);
  const job = await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'job-shape'))[0]);
  const pod = job.spec!.template.spec!;
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.serviceAccountName, workerSA);
  const vol = pod.volumes!.find((v) => v.name === 'progress-token');
  assert.deepEqual(plain(vol?.projected?.sources), [{ serviceAccountToken: { audience: PROGRESS_TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }]);
  const c = pod.containers[0];
  assert.deepEqual(plain(c.volumeMounts!.find((m) => m.name === 'progress-token')), { name: 'progress-token', mountPath: PROGRESS_TOKEN_DIR, readOnly: true });
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value]));
  assert.equal(env.ELIBADCODE_PROGRESS_URL, progressUrl);
  assert.equal(env.ELIBADCODE_PROGRESS_TOKEN_FILE, PROGRESS_TOKEN_FILE);
  // The pod, projected token volume included, is admitted under Pod Security "restricted".
  const restricted = 'progress-restricted';
  const nsr = await raw(cp, 'POST', '/api/v1/namespaces', { metadata: { name: restricted, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } } });
  assert.equal(nsr.status, 201, JSON.stringify(nsr.body));
  const admitted = await raw(cp, 'POST', `/api/v1/namespaces/${restricted}/pods`, { metadata: { name: 'worker' }, spec: plain(pod) });
  assert.equal(admitted.status, 201, JSON.stringify(admitted.body).slice(0, 600));
  // The token such a volume holds is no API credential: the API server refuses it.
  const running = await runningPod('job-shape-1');
  const token = await mintToken(running);
  const r = await new Promise<number>((resolve, reject) => {
    const req = request(`${cp.server}/api/v1/namespaces/${ns}/pods`, { ca: readFileSync(cp.caCertPath), headers: { Authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(r, 401, 'a token for audience elibadcode.dev/progress does not authenticate to the API server');
});

test('a valid pod-bound token updates status.progress; the review is cached', async () => {
  const { uid, token } = await runningScan('live');
  const before = reviews();
  const r = await post(token, { stage: 'Inversion', option: '1->0 SampleSpecific', iteration: 7, totalIterations: 100, bestLoss: 0.25, scanUid: uid, attempt: 1 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.deepEqual(r.body, { accepted: true, scan: `${ns}/live`, attempt: 1 });
  const s = await waitFor('status.progress', async () => {
    const x = await getScan(cp.kubeConfig, 'live', ns);
    return x.status?.progress?.iteration === 7 ? x : undefined;
  });
  assert.equal(s.status.progress.stage, 'Inversion');
  assert.equal(s.status.progress.option, '1->0 SampleSpecific');
  assert.equal(s.status.progress.totalIterations, 100);
  assert.equal(s.status.progress.bestLoss, 0.25);
  assert.ok(Math.abs(Date.parse(s.status.progress.updatedAt) - Date.now()) < 60_000);
  assert.equal(cond(s, 'Running')?.status, 'True');
  // A later report (rate limit: burst 10) replaces it; the second report needed no new TokenReview.
  await sleep(1100);
  const r2 = await post(token, { stage: 'Inversion', option: '1->0 SampleSpecific', iteration: 20, totalIterations: 100, bestLoss: 0.125 });
  assert.equal(r2.status, 202, JSON.stringify(r2.body));
  await waitFor('iteration 20', async () => (await getScan(cp.kubeConfig, 'live', ns)).status?.progress?.iteration === 20);
  assert.equal(reviews() - before, 1, 'one TokenReview for two reports with the same token');
});

test('a token with the wrong audience -> 401 and no status change', async () => {
  const { pod } = await runningScan('wrong-aud');
  const apiToken = await mintToken(pod, [cp.server]); // an API-server audience token
  const r = await post(apiToken, { stage: 'Inversion', iteration: 1 });
  assert.equal(r.status, 401, JSON.stringify(r.body));
  assert.match(r.body.error, /not authenticated|audience/);
  assert.ok(!JSON.stringify(r.body).includes(apiToken), 'the token is never echoed');
  const none = await post(undefined, { stage: 'Inversion' });
  assert.equal(none.status, 401);
  assert.match(none.body.error, /Bearer/);
  const garbage = await post('not-a-jwt', { stage: 'Inversion' });
  assert.equal(garbage.status, 401);
  await sleep(500);
  assert.equal((await getScan(cp.kubeConfig, 'wrong-aud', ns)).status?.progress, undefined);
});

test('a token of another service account -> 403', async () => {
  await createScan(cp.kubeConfig, 'other-sa', ns);
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'other-sa'))[0]);
  // A pod that looks like the worker in every label but runs as another service account.
  const pod = await runningPod('other-sa-1', { name: 'other-sa-1-intruder', serviceAccount: 'intruder' });
  const r = await post(await mintToken(pod), { stage: 'Inversion', iteration: 3 });
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.match(r.body.error, /intruder is not the worker service account elibadcode-worker/);
  await sleep(300);
  assert.equal((await getScan(cp.kubeConfig, 'other-sa', ns)).status?.progress, undefined);
});

test('a pod of scan A cannot update scan B', async () => {
  const a = await runningScan('scan-a');
  await createScan(cp.kubeConfig, 'scan-b', ns);
  await waitFor('Job scan-b-1', async () => (await listJobs(cp.kubeConfig, ns, 'scan-b'))[0]);
  const b = await getScan(cp.kubeConfig, 'scan-b', ns);
  // Claiming scan B in the body.
  const r1 = await post(a.token, { stage: 'Unlearning', scanUid: b.metadata.uid });
  assert.equal(r1.status, 403, JSON.stringify(r1.body));
  assert.match(r1.body.error, /works for scan .* not /);
  // A pod of Job A relabelled to say scan B: the labels no longer match the Job that controls it.
  const forged = await runningPod('scan-a-1', { name: 'scan-a-1-forged', labels: { 'elibadcode.dev/scan-uid': b.metadata.uid } });
  const r2 = await post(await mintToken(forged), { stage: 'Unlearning' });
  assert.equal(r2.status, 403, JSON.stringify(r2.body));
  assert.match(r2.body.error, /not controlled by the worker Job of scan/);
  // A's own report lands on A only.
  assert.equal((await post(a.token, { stage: 'Anchoring' })).status, 202);
  await waitFor('A progress', async () => (await getScan(cp.kubeConfig, 'scan-a', ns)).status?.progress?.stage === 'Anchoring');
  assert.equal((await getScan(cp.kubeConfig, 'scan-b', ns)).status?.progress, undefined);
});

test('a report for an old attempt is ignored (409), the new attempt reports', async () => {
  const first = await runningScan('attempts', { retry: { maxAttempts: 2 } });
  assert.equal((await post(first.token, { stage: 'Inversion', iteration: 5 })).status, 202);
  await waitFor('attempt 1 progress', async () => (await getScan(cp.kubeConfig, 'attempts', ns)).status?.progress?.iteration === 5);
  await failJob(cp.kubeConfig, ns, 'attempts-1');
  const mid = await waitFor('attempt 2', async () => {
    const s = await getScan(cp.kubeConfig, 'attempts', ns);
    return s.status?.attempts === 2 ? s : undefined;
  });
  assert.equal(mid.status.progress, undefined, 'the failed attempt took its progress with it');
  const stale = await post(first.token, { stage: 'Inversion', iteration: 99 });
  assert.equal(stale.status, 409, JSON.stringify(stale.body));
  assert.match(stale.body.error, /attempt 1 .* is not the current attempt \(2\)|has failed/);
  const pod2 = await runningPod('attempts-2');
  const wrongClaim = await post(await mintToken(pod2), { stage: 'Vocabulary', attempt: 1 });
  assert.equal(wrongClaim.status, 403, JSON.stringify(wrongClaim.body));
  assert.equal((await post(await mintToken(pod2), { stage: 'Vocabulary', attempt: 2 })).status, 202);
  const s = await waitFor('attempt 2 progress', async () => {
    const x = await getScan(cp.kubeConfig, 'attempts', ns);
    return x.status?.progress?.stage === 'Vocabulary' ? x : undefined;
  });
  assert.equal(s.status.progress.iteration, undefined);
});

test('malformed bodies -> 400 naming the field; oversized -> 413; flooding -> 429', async () => {
  const { token } = await runningScan('bad-body');
  const cases: Array<[unknown, RegExp]> = [
    [{ stage: 'Inversion', iteration: -1 }, /iteration/],
    [{ stage: 'Inversion', iteration: 1.5 }, /iteration/],
    [{ iteration: 3 }, /stage/],
    [{ stage: 'not a stage!' }, /stage/],
    [{ stage: 'Inversion', bestLoss: 'low' }, /bestLoss/],
    [{ stage: 'Inversion', updatedAt: '2020-01-01T00:00:00Z' }, /updatedAt|Unrecognized/],
    [{ stage: 'Inversion', verdict: 'Clean' }, /verdict|Unrecognized/],
    ['{not json', /not JSON/],
  ];
  for (const [body, field] of cases) {
    const r = await post(token, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, field, JSON.stringify(r.body));
  }
  const big = await post(token, { stage: 'Inversion', option: 'x'.repeat(MAX_PROGRESS_BODY_BYTES) });
  assert.equal(big.status, 413, JSON.stringify(big.body));
  assert.equal((await getScan(cp.kubeConfig, 'bad-body', ns)).status?.progress, undefined);
  const codes: number[] = [];
  for (let i = 0; i < 14; i++) codes.push((await post(token, { stage: 'Inversion', iteration: i })).status);
  assert.ok(codes.filter((c) => c === 202).length >= 10, codes.join(','));
  assert.ok(codes.includes(429), codes.join(','));
  // Wrong method and path.
  const get = await fetch(`http://127.0.0.1:${op.progress!.port}/v1/progress`);
  assert.equal(get.status, 405);
  const other = await fetch(`http://127.0.0.1:${op.progress!.port}/v1/status`, { method: 'POST' });
  assert.equal(other.status, 404);
});

test('progress disappears when the scan succeeds; later reports are refused', async () => {
  const { token } = await runningScan('finishes');
  assert.equal((await post(token, { stage: 'Evaluating' })).status, 202);
  await waitFor('progress', async () => (await getScan(cp.kubeConfig, 'finishes', ns)).status?.progress?.stage === 'Evaluating');
  await createJobPod(cp.kubeConfig, ns, 'finishes-1', { message: summary() });
  await completeJob(cp.kubeConfig, ns, 'finishes-1');
  const done = await waitFor('Succeeded', async () => {
    const s = await getScan(cp.kubeConfig, 'finishes', ns);
    return cond(s, 'Succeeded')?.status === 'True' ? s : undefined;
  });
  assert.equal(done.status.progress, undefined);
  assert.equal(done.status.verdict, 'Backdoored');
  const late = await post(token, { stage: 'Uploading' });
  assert.equal(late.status, 409, JSON.stringify(late.body));
  await sleep(500);
  assert.equal((await getScan(cp.kubeConfig, 'finishes', ns)).status?.progress, undefined);
});

test('a deleted worker pod\'s token stops working at once, despite the review cache', async () => {
  const { pod, token } = await runningScan('pod-gone');
  assert.equal((await post(token, { stage: 'Inversion' })).status, 202);
  await clients(cp.kubeConfig).core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: ns, gracePeriodSeconds: 0 });
  const r = await waitFor('refused', async () => {
    const x = await post(token, { stage: 'Inversion', iteration: 2 });
    return x.status !== 202 ? x : undefined;
  });
  assert.ok(r.status === 401 || r.status === 403, JSON.stringify(r.body));
});

test('real worker: `elibadcode scan` with the Job\'s environment reports its stages into status.progress', { timeout: 10 * 60_000 }, async () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const tmp = mkdtempSync(join(tmpdir(), 'operator-progress-'));
  try {
    const claims: Record<string, string> = { models: join(tmp, 'models'), data: dirname(DEVIGN.replace(/\/$/, '')), out: join(tmp, 'out') };
    mkdirSync(claims.out, { recursive: true });
    cpSync(join(root, 'zoo', 'defect-fixed-name'), join(claims.models, 'backdoored'), { recursive: true });
    await createScan(cp.kubeConfig, 'real', ns, {
      model: { uri: 'pvc://models/backdoored' },
      data: { uri: 'pvc://data/devign/train.jsonl' },
      output: { uri: 'pvc://out/real' },
      parameters: { iterations: 10, candidates: 16, topK: 32, inversionSamples: 8, positionMode: 'SampleSpecific' },
      resources: { gpus: 0 },
    });
    await waitFor('Job real-1', async () => (await listJobs(cp.kubeConfig, ns, 'real'))[0]);
    const pod = await runningPod('real-1');
    // The kubelet's part: the projected token in the file the Job names, the pvc mounts as local dirs.
    const tokenFile = join(tmp, 'token');
    writeFileSync(tokenFile, await mintToken(pod));
    const job = await clients(cp.kubeConfig).batch.readNamespacedJob({ name: 'real-1', namespace: ns });
    const c = job.spec!.template.spec!.containers[0];
    const termFile = join(tmp, 'termination-log');
    const local = (v: string) => {
      let out = v;
      for (const [claim, dir] of Object.entries(claims)) out = out.replace(`/mnt/pvc/${claim}`, dir);
      if (out === c.terminationMessagePath) out = termFile;
      if (out === '/scratch') out = mkdtempSync(join(tmp, 'scratch-'));
      if (out === PROGRESS_TOKEN_FILE) out = tokenFile;
      if (out === progressUrl) out = `http://127.0.0.1:${op.progress!.port}/v1/progress`;
      return out;
    };
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', ELIBADCODE_BACKEND: 'wasm', HOME: tmp, TMPDIR: tmp, ELIBADCODE_LOG_LEVEL: 'debug' };
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = local(e.value);
    assert.equal(env.ELIBADCODE_PROGRESS_TOKEN_FILE, tokenFile);
    const seen = new Map<string, number>();
    let stderr = '';
    let exited = false;
    const code = new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [join(root, 'bin', 'elibadcode.js'), ...c.args!.map(local), '--max-length', '48', '--verdict-samples', '20', '--backend', 'wasm'], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('exit', (x) => {
        exited = true;
        resolve(x ?? 1);
      });
    });
    while (!exited) {
      const p = (await getScan(cp.kubeConfig, 'real', ns)).status?.progress;
      if (p) seen.set(`${p.stage}${p.iteration !== undefined ? `#${p.iteration}/${p.totalIterations}` : ''}`, 1);
      await sleep(150);
    }
    assert.equal(await code, 0, stderr.slice(-2000));
    const failures = stderr.split('\n').filter((l) => /live progress report failed/.test(l));
    console.log(`# progress seen in status while running: ${[...seen.keys()].join(', ')}`);
    assert.deepEqual(failures, []);
    const stages = [...seen.keys()];
    assert.ok(stages.length >= 2, `progress seen in status while the worker ran: ${stages.join(', ')}`);
    assert.ok(stages.some((x) => /^(Inversion|Anchoring|Evaluating|Unlearning|Uploading)/.test(x)), stages.join(', '));
    // Finishing clears it.
    await createJobPod(cp.kubeConfig, ns, 'real-1', { message: readFileSync(termFile, 'utf8') });
    await completeJob(cp.kubeConfig, ns, 'real-1');
    const done = await waitFor('Succeeded', async () => {
      const x = await getScan(cp.kubeConfig, 'real', ns);
      return cond(x, 'Succeeded')?.status === 'True' ? x : undefined;
    }, 30_000);
    assert.equal(done.status.progress, undefined);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
