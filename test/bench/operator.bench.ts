// Operator scale benchmark against a real kube-apiserver (not a timed test):
//   node test/bench/operator.bench.ts [--scans 1000] [--hold 10000] [--workers N] [--concurrency 50]
//     [--node-flags "..."] [--progress]
// Phase 1: create N BackdoorScans; report create->Job latency (p50/p99, from the API server's
// watch as seen by this process), time to drain (every scan has its Job and status), API requests
// per scan (the operator's own request counter), and the operator's peak RSS.
// Phase 2: grow to H scans (and H Jobs) in total, let it settle, report the operator's RSS.
// The operator runs as a child process, as deployed (operator/runtime.ts: entrypoint and V8 flags),
// so its memory is its own and its numbers are the deployment's.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Job } from '@kubernetes/client-node';
import { ListWatch } from '../../operator/listwatch.ts';
import { startClusterWithCrd, ensureNamespace, scanManifest, httpGet, waitFor, clients } from '../operator.helpers.ts';
import { KubeClient } from '../../operator/kube.ts';
import { GROUP, PLURAL, VERSION } from '../../crds/backdoorscan.ts';
import { buildOperatorJs } from '../../operator/build.ts';
import { ENTRYPOINT, MALLOC_ARENA_MAX, NODE_ARGS, NODE_OPTIONS } from '../../operator/runtime.ts';

const { values } = parseArgs({
  options: {
    scans: { type: 'string', default: '1000' },
    hold: { type: 'string', default: '10000' },
    /** Operator workers; default: the operator's default (operator/main.ts DEFAULT_WORKERS, the chart's workers). */
    workers: { type: 'string', default: '' },
    concurrency: { type: 'string', default: '50' },
    /** Creations per second in phase 1 (0: as fast as the API server takes them). */
    rate: { type: 'string', default: '0' },
    /** V8 flags for the operator process (what NODE_OPTIONS sets); default: the deployment's (operator/runtime.ts). */
    'node-flags': { type: 'string', default: [NODE_OPTIONS, ...NODE_ARGS].join(' ') },
    /** Run the TypeScript sources (operator/start.ts) instead of the JavaScript build the image runs. */
    source: { type: 'boolean', default: false },
    /** Also start the live-progress endpoint, as the chart does by default (progress.enabled). */
    progress: { type: 'boolean', default: false },
  },
});
const N = Number(values.scans);
const HOLD = Number(values.hold);
const CONC = Number(values.concurrency);
const RATE = Number(values.rate);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ns = 'bench';

const t0 = Date.now();
const log = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function procMem(pid: number): { rssMB: number; hwmMB: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
}

/** CPU seconds (user+system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** From the audit log: ms from each scan's create to its first Job's create, as the API server timed them. */
function auditLatencies(): { latencies: number[]; scans: number; jobs: number } {
  const scanAt = new Map<string, number>();
  const jobAt = new Map<string, number>();
  const text = existsSync(auditLog) ? readFileSync(auditLog, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as { stage?: string; verb?: string; stageTimestamp?: string; objectRef?: { resource?: string; name?: string }; responseStatus?: { code?: number } };
    if (e.stage !== 'ResponseComplete' || e.verb !== 'create' || (e.responseStatus?.code ?? 0) >= 300 || !e.objectRef?.name) continue;
    const at = Date.parse(e.stageTimestamp!);
    if (e.objectRef.resource === PLURAL) scanAt.set(e.objectRef.name, at);
    else if (e.objectRef.resource === 'jobs') {
      const scan = e.objectRef.name.replace(/-\d+$/, '');
      if (!jobAt.has(scan)) jobAt.set(scan, at);
    }
  }
  const latencies = [...scanAt].filter(([k]) => jobAt.has(k)).map(([k, at]) => jobAt.get(k)! - at);
  return { latencies, scans: scanAt.size, jobs: jobAt.size };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function operatorRequests(port: number): Promise<Record<string, number>> {
  const body = (await httpGet(port, '/metrics')).body;
  const out: Record<string, number> = {};
  for (const m of body.matchAll(/elibadcode_operator_api_requests_total\{verb="([^"]+)",resource="([^"]+)"\} (\d+)/g)) out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}

async function metric(port: number, re: RegExp): Promise<number> {
  const m = re.exec((await httpGet(port, '/metrics')).body);
  return m ? Number(m[1]) : NaN;
}

// The API server's audit log gives create->Job as the server saw it: from the scan's create to the
// Job's create (ResponseComplete, microseconds), without this process's watch delivery, which
// competes for the same two cores. Only those two creates in the bench namespace are logged.
const auditDir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
process.on('exit', () => rmSync(auditDir, { recursive: true, force: true }));
const auditLog = join(auditDir, 'audit.log');
writeFileSync(
  join(auditDir, 'policy.yaml'),
  `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted, Panic]
rules:
- level: Metadata
  verbs: [create]
  namespaces: [${ns}]
  resources:
  - {group: ${GROUP}, resources: [${PLURAL}]}
  - {group: batch, resources: [jobs]}
- level: None
`,
);
const cp = await startClusterWithCrd({
  log,
  apiServerArgs: [`--audit-policy-file=${join(auditDir, 'policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-mode=batch', '--audit-log-batch-max-wait=1s'],
});
log(`control plane up at ${cp.server}`);
await ensureNamespace(cp.kubeConfig, ns);
const port = await freePort();
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
// As in the image: the JavaScript build (operator/build.ts), inside node_modules so it resolves the dependencies.
const jsRoot = join(root, 'node_modules', '.cache', 'elibadcode-operator');
if (!values.source) buildOperatorJs(jsRoot);
const entry = values.source ? join(root, 'operator', 'start.ts') : join(jsRoot, ENTRYPOINT);
const op = spawn(process.execPath, [...nodeFlags, entry], {
  cwd: root,
  env: {
    ...process.env,
    MALLOC_ARENA_MAX,
    KUBECONFIG: cp.kubeconfigPath,
    POD_NAME: 'bench-op',
    ELIBADCODE_WORKER_IMAGE: 'elibadcode/worker:bench',
    ELIBADCODE_HTTP_PORT: String(port),
    ELIBADCODE_LEADER_ELECT: 'true',
    ELIBADCODE_LEASE_NAMESPACE: 'default',
    ...(values.workers ? { ELIBADCODE_WORKERS: values.workers } : {}),
    ...(values.progress ? { ELIBADCODE_PROGRESS_PORT: String(await freePort()), ELIBADCODE_PROGRESS_URL: 'http://elibadcode-operator-progress.default.svc:8082/v1/progress' } : {}),
    ELIBADCODE_LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
let peakMB = 0;
const sampler = setInterval(() => {
  try {
    peakMB = Math.max(peakMB, procMem(op.pid!).hwmMB);
  } catch {
    /* exited */
  }
}, 200);
await waitFor('operator ready', async () => (await httpGet(port, '/readyz').catch(() => ({ status: 0 }))).status === 200, 30_000);
await waitFor('operator leads', async () => (await metric(port, /leader_election_master_status\{name="elibadcode-operator"\} (\d)/)) === 1, 30_000);
log(`operator pid ${op.pid} ready and leading; idle RSS ${procMem(op.pid!).rssMB.toFixed(1)} MB`);

// Observe Jobs and scan status from this process.
const created = new Map<string, number>();
const jobSeen = new Map<string, number>();
const statusSeen = new Map<string, number>();
// The operator's own list-watch (reconnects, relists) so a dropped stream cannot stall the benchmark.
const { custom, batch } = clients(cp.kubeConfig);
const jobsLW = new ListWatch<V1Job>({
  name: 'bench-jobs',
  kubeConfig: cp.kubeConfig,
  path: `/apis/batch/v1/namespaces/${ns}/jobs`,
  list: async ({ limit, continue: c }) => {
    const r = await batch.listNamespacedJob({ namespace: ns, limit, _continue: c });
    return { items: r.items, metadata: { resourceVersion: r.metadata?.resourceVersion, continue: r.metadata?._continue } };
  },
  transform: (j) => ({ metadata: { name: j.metadata?.name, namespace: j.metadata?.namespace, ownerReferences: j.metadata?.ownerReferences } }) as V1Job,
});
jobsLW.on('add', (obj) => {
  const scan = obj.metadata?.ownerReferences?.[0]?.name;
  if (scan && !jobSeen.has(scan)) jobSeen.set(scan, Date.now());
});
type Scan = { metadata?: { name?: string; namespace?: string }; status?: { jobName?: string } };
const scansLW = new ListWatch<Scan>({
  name: 'bench-scans',
  kubeConfig: cp.kubeConfig,
  path: `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
  list: async ({ limit, continue: c }) =>
    (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, limit, _continue: c })) as never,
  transform: (o) => ({ metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace }, status: { jobName: o.status?.jobName } }),
});
const onScan = (obj: Scan) => {
  const name = obj.metadata?.name;
  if (name && obj.status?.jobName && !statusSeen.has(name)) statusSeen.set(name, Date.now());
};
scansLW.on('add', onScan);
scansLW.on('update', onScan);
jobsLW.start();
scansLW.start();
await Promise.all([jobsLW.waitForSync(), scansLW.waitForSync()]);
const progress = setInterval(() => log(`progress: created ${created.size}, jobs ${jobSeen.size}, statuses ${statusSeen.size}`), 10_000);

// The creating client stands in for kubectl or a GitOps controller on another machine: it shares
// the two cores with the system under test, so it uses the operator's lean JSON client (and skips
// parsing the answers) to take as little of them as it can.
const creator = new KubeClient(cp.kubeConfig);
const createScan = (name: string) =>
  creator.request('POST', `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, { body: scanManifest(name, ns), discardBody: true });

async function createMany(from: number, to: number, rate = 0): Promise<void> {
  let next = from;
  const start = Date.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= to) return;
      if (rate > 0) {
        const due = start + ((i - from) / rate) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      const name = `scan-${String(i).padStart(5, '0')}`;
      for (let attempt = 0; ; attempt++) {
        try {
          await createScan(name);
          created.set(name, Date.now());
          break;
        } catch (err) {
          if (attempt > 5) throw err;
          await sleep(100 * (attempt + 1));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
}

// Phase 1.
const reqBefore = await operatorRequests(port);
const cpuOp0 = cpuSeconds(op.pid!);
const apiPid = cp.pids['kube-apiserver'];
const cpuApi0 = apiPid ? cpuSeconds(apiPid) : 0;
const cpuSelf0 = process.cpuUsage();
const load0 = loadavg();
const p1Start = Date.now();
await createMany(0, N, RATE);
const createdAllMs = Date.now() - p1Start;
await waitFor(`${N} Jobs and statuses`, () => jobSeen.size >= N && statusSeen.size >= N, 600_000, 200);
const drainMs = Math.max(...[...statusSeen.values()]) - p1Start;
// Events wait while reconciles do; count them once they are all out.
await waitFor('events sent', async () => (await metric(port, /elibadcode_operator_events_pending (\d+)/)) === 0, 120_000, 200);
const eventsOutMs = Date.now() - p1Start;
const audit = await waitFor('the audit log to hold every create', () => {
  const a = auditLatencies();
  return a.latencies.length >= N ? a : undefined;
}, 60_000, 500);
await sleep(1000);
const depth = await metric(port, /workqueue_depth\{name="backdoorscan",controller="backdoorscan"\} (\d+)/);
const reqAfter = await operatorRequests(port);
const lat = [...created.keys()].map((k) => jobSeen.get(k)! - created.get(k)!);
const perScan: Record<string, number> = {};
let total = 0;
for (const [k, v] of Object.entries(reqAfter)) {
  const d = v - (reqBefore[k] ?? 0);
  if (d > 0) perScan[k] = d / N;
  if (!k.startsWith('get leases') && !k.startsWith('update leases')) total += d;
}
const rss1 = procMem(op.pid!).rssMB;
const cpu = {
  operator: Number((cpuSeconds(op.pid!) - cpuOp0).toFixed(2)),
  kubeApiserver: apiPid ? Number((cpuSeconds(apiPid) - cpuApi0).toFixed(2)) : undefined,
  benchClient: Number(((process.cpuUsage(cpuSelf0).user + process.cpuUsage(cpuSelf0).system) / 1e6).toFixed(2)),
};
const mtext = (await httpGet(port, '/metrics')).body;
const reconciles = Object.fromEntries([...mtext.matchAll(/controller_runtime_reconcile_total\{controller="backdoorscan",result="([^"]+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])]));
const rtSum = Number(/controller_runtime_reconcile_time_seconds_sum\{controller="backdoorscan"\} ([\d.e+-]+)/.exec(mtext)?.[1]);
const rtCount = Number(/controller_runtime_reconcile_time_seconds_count\{controller="backdoorscan"\} (\d+)/.exec(mtext)?.[1]);
const result1 = {
  scans: N,
  createConcurrency: CONC,
  createRatePerSecond: RATE || 'unlimited',
  operatorWorkers: await metric(port, /controller_runtime_max_concurrent_reconciles\{controller="backdoorscan"\} (\d+)/),
  liveProgress: values.progress,
  operatorNodeFlags: nodeFlags.join(' ') || '(none)',
  operatorEntrypoint: relative(root, entry),
  loadAverageBefore: load0.map((x) => Number(x.toFixed(2))),
  loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  createAllSeconds: createdAllMs / 1000,
  /** As the API server timed them (audit log): the scan's create to its Job's create. */
  createToJobMs: { p50: pct(audit.latencies, 50), p90: pct(audit.latencies, 90), p99: pct(audit.latencies, 99), max: Math.max(...audit.latencies) },
  /** As this process saw them: the create call returning to the Job's watch event reaching this process. */
  createToJobSeenMs: { p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99), max: Math.max(...lat) },
  drainSeconds: drainMs / 1000,
  eventsSentSeconds: eventsOutMs / 1000,
  queueDepthAfter: depth,
  reconciles,
  cpuSecondsDuringPhase1: cpu,
  meanReconcileMs: Number(((rtSum / rtCount) * 1000).toFixed(2)),
  apiRequestsPerScan: Number((total / N).toFixed(3)),
  apiRequestsPerScanByVerb: Object.fromEntries(Object.entries(perScan).map(([k, v]) => [k, Number(v.toFixed(3))])),
  operatorPeakRssMB: Number(peakMB.toFixed(1)),
  operatorRssMB: Number(rss1.toFixed(1)),
  operatorHeapUsedMB: Number(((await metric(port, /nodejs_heap_size_used_bytes ([\d.e+]+)/)) / 1048576).toFixed(1)),
};
log(`phase 1: ${JSON.stringify(result1, null, 2)}`);

// Phase 2: hold HOLD scans.
if (HOLD > N) {
  const p2Start = Date.now();
  await createMany(N, HOLD);
  await waitFor(`${HOLD} statuses`, () => statusSeen.size >= HOLD, 1_800_000, 500);
  log(`phase 2: ${HOLD} scans and Jobs created and reconciled in ${((Date.now() - p2Start) / 1000).toFixed(1)} s; settling`);
  await sleep(15_000);
  const m = procMem(op.pid!);
  const cached = await metric(port, /elibadcode_scans\{condition="Pending"\} (\d+)/);
  const heap = await metric(port, /nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)/);
  const result2 = {
    heldScans: HOLD,
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
    heldJobs: jobSeen.size,
    scansPendingInCache: cached,
    operatorRssMB: Number(m.rssMB.toFixed(1)),
    operatorPeakRssMB: Number(Math.max(peakMB, m.hwmMB).toFixed(1)),
    operatorHeapUsedMB: Number((heap / 1048576).toFixed(1)),
  };
  log(`phase 2: ${JSON.stringify(result2, null, 2)}`);
}

clearInterval(sampler);
clearInterval(progress);
await jobsLW.stop();
await scansLW.stop();
op.kill('SIGTERM');
await new Promise((r) => op.on('exit', r));
await cp.stop();
process.exit(0);
