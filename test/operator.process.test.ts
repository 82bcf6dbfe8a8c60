// The operator as a process (`node operator/main.ts`, the container's entrypoint) against a real
// kube-apiserver: two replicas elect one leader on a Lease and the standby takes over when the
// leader is killed; SIGTERM releases the Lease; an operator killed mid-scan and restarted creates no
// duplicate Job and loses no result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { completeJob, createJobPod, type ControlPlane } from './harness/controlplane.ts';
import { startClusterWithCrd, ensureNamespace, createScan, getScan, cond, summary, waitFor, listJobs, httpGet, raw } from './operator.helpers.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let cp: ControlPlane;
const ns = 'proc';
const leaseNs = 'elibadcode-system';
const procs = new Set<ChildProcess>();

interface Op {
  name: string;
  child: ChildProcess;
  port: number;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

async function startProcess(name: string, leaseName: string): Promise<Op> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'operator', 'main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      KUBECONFIG: cp.kubeconfigPath,
      POD_NAME: name,
      ELIBADCODE_WORKER_IMAGE: 'elibadcode/worker:test',
      ELIBADCODE_HTTP_PORT: String(port),
      ELIBADCODE_LEADER_ELECT: 'true',
      ELIBADCODE_LEASE_NAMESPACE: leaseNs,
      ELIBADCODE_LEASE_NAME: leaseName,
      ELIBADCODE_WATCH_NAMESPACES: ns,
      ELIBADCODE_WORKERS: '2',
      // Short timings keep the test quick; the defaults are 15 s / 10 s / 2 s.
      ELIBADCODE_LEASE_DURATION_MS: '4000',
      ELIBADCODE_RENEW_DEADLINE_MS: '3000',
      ELIBADCODE_RETRY_PERIOD_MS: '500',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.add(child);
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      procs.delete(child);
      if (code && code !== 0 && err) process.stderr.write(`[${name}] ${err.slice(-2000)}\n`);
      resolve(code);
    }),
  );
  await waitFor(`${name} serving /healthz`, async () => (await httpGet(port, '/healthz').catch(() => ({ status: 0 }))).status === 200, 20_000);
  return { name, child, port, logs, exited };
}

async function lease(name: string) {
  try {
    return await cp.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace: leaseNs });
  } catch {
    return undefined;
  }
}

async function isMaster(op: Op, leaseName: string): Promise<boolean> {
  const m = await httpGet(op.port, '/metrics');
  return new RegExp(`leader_election_master_status\\{name="${leaseName}"\\} 1`).test(m.body);
}

before(async () => {
  cp = await startClusterWithCrd();
  await ensureNamespace(cp.kubeConfig, ns);
  await ensureNamespace(cp.kubeConfig, leaseNs);
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await cp?.stop();
});

test('two replicas: exactly one leader; SIGKILL of the leader -> the standby takes over; SIGTERM releases the Lease', async () => {
  const leaseName = 'op-failover';
  const a = await startProcess('op-a', leaseName);
  const b = await startProcess('op-b', leaseName);
  const first = await waitFor('a leader', async () => {
    const l = await lease(leaseName);
    return l?.spec?.holderIdentity || undefined;
  });
  assert.match(first, /^op-[ab]_[0-9a-f-]{36}$/, 'identity is <pod>_<uuid>');
  const [leader, standby] = first.startsWith('op-a_') ? [a, b] : [b, a];
  await waitFor('leader gauge', () => isMaster(leader, leaseName), 5_000);
  assert.equal(await isMaster(standby, leaseName), false, 'only one leader');
  assert.equal((await httpGet(standby.port, '/readyz')).status, 200, 'a warm standby is ready');
  const l1 = (await lease(leaseName))!;
  const rawLease = (await raw(cp, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${leaseNs}/leases/${leaseName}`)).body;
  assert.match(rawLease.spec.renewTime, /\.\d{6}Z$/, 'MicroTime with 6 fractional digits');
  assert.equal(rawLease.spec.leaseDurationSeconds, 4);

  await createScan(cp.kubeConfig, 'lead-1', ns);
  await waitFor('Job from the leader', async () => (await listJobs(cp.kubeConfig, ns, 'lead-1'))[0]);
  // The log line follows the status write and the events: wait for it.
  await waitFor('the leader logs its reconcile', () => leader.logs.some((l) => l.msg === 'reconciled' && l.name === 'lead-1'), 5_000);
  assert.ok(!standby.logs.some((l) => l.msg === 'reconciled'), 'the standby never reconciles');

  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  await leader.exited;
  const next = await waitFor('failover', async () => {
    const h = (await lease(leaseName))?.spec?.holderIdentity;
    return h && h !== first ? h : undefined;
  }, 20_000);
  const failoverMs = Date.now() - killedAt;
  assert.ok(next.startsWith(`${standby.name}_`));
  assert.ok(failoverMs < 4000 + 3000, `failover took ${failoverMs} ms (lease 4 s)`);
  console.log(`# failover after SIGKILL of the leader: ${failoverMs} ms (leaseDuration 4 s, retry 0.5 s)`);
  const l2 = (await lease(leaseName))!;
  assert.equal(l2.spec!.leaseTransitions, (l1.spec!.leaseTransitions ?? 0) + 1);
  await createScan(cp.kubeConfig, 'lead-2', ns);
  await waitFor('Job from the new leader', async () => (await listJobs(cp.kubeConfig, ns, 'lead-2'))[0]);
  assert.equal((await listJobs(cp.kubeConfig, ns, 'lead-1')).length, 1, 'no duplicate after failover');

  standby.child.kill('SIGTERM');
  assert.equal(await standby.exited, 0, 'graceful exit');
  const released = (await lease(leaseName))!;
  assert.equal(released.spec!.holderIdentity ?? '', '', 'the Lease is released on SIGTERM');
});

test('operator killed mid-scan and restarted: no duplicate Job, no lost result', async () => {
  const leaseName = 'op-restart';
  const a = await startProcess('op-r1', leaseName);
  await createScan(cp.kubeConfig, 'restart-1', ns);
  await waitFor('Job', async () => (await listJobs(cp.kubeConfig, ns, 'restart-1'))[0]);
  await waitFor('status', async () => (await getScan(cp.kubeConfig, 'restart-1', ns)).status?.jobName);
  a.child.kill('SIGKILL');
  await a.exited;

  // A new replica starts while the scan is still running: it adopts the existing Job.
  const b = await startProcess('op-r2', leaseName);
  await waitFor('b leads and reconciles restart-1', () => b.logs.some((l) => l.msg === 'reconciled' && l.name === 'restart-1'), 20_000);
  const jobs = await listJobs(cp.kubeConfig, ns, 'restart-1');
  assert.deepEqual(jobs.map((j) => j.metadata!.name), ['restart-1-1'], 'no duplicate Job');
  b.child.kill('SIGKILL');
  await b.exited;

  // The worker finishes while no operator runs.
  await createJobPod(cp.kubeConfig, ns, 'restart-1-1', { exitCode: 0, message: summary({ verdict: 'Clean', targetLabel: undefined }) });
  await completeJob(cp.kubeConfig, ns, 'restart-1-1');

  const c = await startProcess('op-r3', leaseName);
  const s = await waitFor('result picked up after restart', async () => {
    const x = await getScan(cp.kubeConfig, 'restart-1', ns);
    return cond(x, 'Succeeded')?.status === 'True' ? x : undefined;
  }, 30_000);
  assert.equal(s.status.verdict, 'Clean');
  assert.equal(cond(s, 'BackdoorDetected')?.status, 'False');
  assert.equal(s.status.attempts, 1);
  assert.equal((await listJobs(cp.kubeConfig, ns, 'restart-1')).length, 1);
  const line = await waitFor('reconcile log line', () => c.logs.find((l) => l.msg === 'reconciled' && l.name === 'restart-1'), 5_000);
  for (const k of ['controller', 'namespace', 'name', 'reconcileID', 'generation', 'resourceVersion', 'durationMs', 'result']) {
    assert.ok(k in line, `reconcile log line has ${k}`);
  }
  c.child.kill('SIGTERM');
  assert.equal(await c.exited, 0);
});
