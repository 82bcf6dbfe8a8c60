// The operator process: configuration, caches, workqueue and workers, leader election, HTTP
// endpoints, graceful shutdown. `startOperator(config)` runs it in-process (tests, benchmark);
// `node operator/main.ts` runs it as a process (the container's entrypoint).
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { V1Job, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { pino, type Logger } from 'pino';
import { GROUP, LABELS, PLURAL, VERSION } from '../crds/backdoorscan.ts';
import { EventRecorder } from './events.ts';
import { MANAGED_BY, SCAN_NAME_ANNOTATION, type JobConfig } from './job.ts';
import { describeError, KubeClient, RequestCounter, shareConnections } from './kube.ts';
import { defaultIdentity, KubeLeaseStore, LeaderElector } from './leader.ts';
import { CacheGroup, ListWatch, objectKey } from './listwatch.ts';
import { OperatorMetrics } from './metrics.ts';
import { Interner, projectJob, projectPod, projectScan } from './projection.ts';
import type { ProgressServer, ProgressStore } from './progress.ts';
import { ConflictError, INDEX_JOB, INDEX_OWNER, Reconciler, scanState, type ScanObject } from './reconcile.ts';
import { startHttpServer, type HttpServer } from './server.ts';
import { defaultControllerRateLimiter, WorkQueue, type RateLimiterOptions } from './workqueue.ts';

export const CONTROLLER_NAME = 'backdoorscan';
/**
 * Concurrent reconciles. A reconcile is I/O: at most a Job create and a status write, each waiting
 * on the API server and etcd, so workers are cheap and a burst of new scans needs many of them to
 * keep create-to-Job latency low (4 workers: ~30 scans/s at most with ~70 ms per write).
 */
export const DEFAULT_WORKERS = 32;
export const REPORTING_CONTROLLER = 'elibadcode.dev/operator';

export interface OperatorConfig {
  kubeConfig?: KubeConfig;
  /** Namespaces whose scans are reconciled; empty: all namespaces. */
  namespaces: string[];
  workers: number;
  /** Retry backoff and the overall retry bucket (workqueue.ts DEFAULT_RATE_LIMITER). */
  rateLimiter?: RateLimiterOptions;
  workerImage: string;
  workerServiceAccount: string;
  gpuResourceName?: string;
  workerImagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  workerResources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  workerTolerations?: V1Toleration[];
  jobTtlSeconds?: number;
  scratchSizeLimit?: string;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  identity?: string;
  /** 0 picks a free port; undefined: no HTTP server. */
  httpPort?: number;
  httpHost?: string;
  /** Live progress endpoint (POST /v1/progress, operator/progress.ts): 0 picks a free port; undefined: off. */
  progressPort?: number;
  /** The URL worker pods POST progress to; undefined: workers get no progress token and report nothing. */
  progressUrl?: string;
  logger?: Logger;
  logLevel?: string;
  /** Informer tuning (tests shorten these). */
  resyncMs?: number;
  watchdogMs?: number;
  minWatchTimeoutSeconds?: number;
  secretGraceMs?: number;
  /** Called when leadership is lost; the process default is to exit(1). */
  onLeadershipLost?: () => void;
}

export interface OperatorHandle {
  identity: string;
  metrics: OperatorMetrics;
  requests: RequestCounter;
  logger: Logger;
  http?: HttpServer;
  progress?: ProgressServer;
  informers: { scans: ListWatch<ScanObject>[]; jobs: ListWatch<V1Job>[]; pods: ListWatch<V1Pod>[] };
  queue: WorkQueue;
  leader?: LeaderElector;
  isLeader(): boolean;
  /** Resolves when the caches have synced. */
  synced: Promise<void>;
  /** Graceful: stop taking work, drain the workers, stop the informers, release the lease. */
  stop(): Promise<void>;
}

export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { component: 'elibadcode-operator' },
    redact: {
      paths: ['*.token', '*.password', '*.authorization', '*.Authorization', 'headers.authorization', 'kubeconfig', '*.users', 'user.token', '*.client-key-data'],
      censor: '[redacted]',
    },
  });
}

/**
 * The same cluster and credentials with a connection of its own: watches stream continuously, and on
 * the connection that carries the requests they would share HTTP/2 flow control and the server's
 * write scheduling with bursts of responses, and fall behind (the API server then closes them as
 * unresponsive).
 */
function watchKubeConfig(kc: KubeConfig): KubeConfig {
  const w = new KubeConfig();
  w.loadFromOptions({ clusters: kc.clusters, contexts: kc.contexts, users: kc.users, currentContext: kc.currentContext });
  return shareConnections(w);
}

export async function startOperator(config: OperatorConfig): Promise<OperatorHandle> {
  const kc = shareConnections(
    config.kubeConfig ??
      (() => {
        const k = new KubeConfig();
        k.loadFromDefault();
        return k;
      })(),
  );
  const logger = config.logger ?? createLogger(config.logLevel);
  const identity = config.identity ?? defaultIdentity();
  const metrics = new OperatorMetrics({ controller: CONTROLLER_NAME });
  const requests = new RequestCounter();
  requests.onRequest((verb, resource) => metrics.apiRequests.inc({ verb, resource }));
  metrics.maxWorkers.set({ controller: CONTROLLER_NAME }, config.workers);

  const api = new KubeClient(kc);
  const interner = new Interner();

  const namespaces = config.namespaces.length ? config.namespaces : [undefined];
  const lwOpts = {
    kubeConfig: watchKubeConfig(kc),
    logger,
    requests,
    resyncMs: config.resyncMs,
    watchdogMs: config.watchdogMs,
    minWatchTimeoutSeconds: config.minWatchTimeoutSeconds,
  };
  const clean = <T>(o: Partial<typeof lwOpts> & T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const collection = (prefix: string, plural: string, ns: string | undefined) => (ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`);
  const jobSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
  const podSelector = LABELS.scanUid;

  const scanInformers = namespaces.map(
    (ns) =>
      new ListWatch<ScanObject>(
        clean({
          ...lwOpts,
          name: `backdoorscans${ns ? `@${ns}` : ''}`,
          path: collection(`/apis/${GROUP}/${VERSION}`, PLURAL, ns),
          transform: (o: ScanObject) => projectScan(o, interner),
          list: ({ limit, continue: c }) => api.list<ScanObject>(collection(`/apis/${GROUP}/${VERSION}`, PLURAL, ns), { limit, continue: c }),
        }),
      ),
  );
  const jobInformers = namespaces.map(
    (ns) =>
      new ListWatch<V1Job>(
        clean({
          ...lwOpts,
          name: `jobs${ns ? `@${ns}` : ''}`,
          path: collection('/apis/batch/v1', 'jobs', ns),
          labelSelector: jobSelector,
          index: INDEX_OWNER,
          transform: (j: V1Job) => projectJob(j, interner),
          list: ({ limit, continue: c }) => api.list<V1Job>(collection('/apis/batch/v1', 'jobs', ns), { labelSelector: jobSelector, limit, continue: c }),
        }),
      ),
  );
  const podInformers = namespaces.map(
    (ns) =>
      new ListWatch<V1Pod>(
        clean({
          ...lwOpts,
          name: `pods${ns ? `@${ns}` : ''}`,
          path: collection('/api/v1', 'pods', ns),
          labelSelector: podSelector,
          index: INDEX_JOB,
          transform: (p: V1Pod) => projectPod(p, interner),
          list: ({ limit, continue: c }) => api.list<V1Pod>(collection('/api/v1', 'pods', ns), { labelSelector: podSelector, limit, continue: c }),
        }),
      ),
  );
  const scans = new CacheGroup(scanInformers);
  const jobs = new CacheGroup(jobInformers);
  const pods = new CacheGroup(podInformers);

  const queue = new WorkQueue(CONTROLLER_NAME, { metrics: metrics.queueMetrics(CONTROLLER_NAME), rateLimiter: defaultControllerRateLimiter(config.rateLimiter) });
  metrics.trackQueue(queue);
  metrics.onCollect(() => {
    const counts: Record<string, number> = { Pending: 0, Queued: 0, Running: 0, Succeeded: 0, Failed: 0, Suspended: 0, Invalid: 0 };
    for (const s of scans.list()) counts[scanState(s)] = (counts[scanState(s)] ?? 0) + 1;
    for (const [condition, n] of Object.entries(counts)) metrics.scans.set({ condition }, n);
  });

  // Event handlers: map every change to the key of the scan it concerns.
  for (const inf of scanInformers) {
    // A scan we have not seen: its Job comes before status refreshes of others (workqueue priority).
    inf.on('add', (o) => queue.add(objectKey(o), 'high'));
    inf.on('update', (o) => queue.add(objectKey(o)));
    inf.on('delete', (o) => {
      queue.forget(objectKey(o));
      queue.add(objectKey(o));
    });
  }
  const jobToScan = (j: V1Job) => {
    const owner = j.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'BackdoorScan');
    if (owner) queue.add(`${j.metadata?.namespace}/${owner.name}`);
  };
  for (const inf of jobInformers) for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, jobToScan);
  const podToScan = (p: V1Pod) => {
    const name = p.metadata?.annotations?.[SCAN_NAME_ANNOTATION];
    if (name) queue.add(`${p.metadata?.namespace}/${name}`);
  };
  for (const inf of podInformers) for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, podToScan);

  const jobConfig: JobConfig = {
    workerImage: config.workerImage,
    workerServiceAccount: config.workerServiceAccount,
    ...(config.gpuResourceName ? { gpuResourceName: config.gpuResourceName } : {}),
    ...(config.workerImagePullPolicy ? { imagePullPolicy: config.workerImagePullPolicy } : {}),
    ...(config.workerResources?.requests ? { defaultRequests: config.workerResources.requests } : {}),
    ...(config.workerResources?.limits ? { defaultLimits: config.workerResources.limits } : {}),
    ...(config.workerTolerations ? { tolerations: config.workerTolerations } : {}),
    ...(config.jobTtlSeconds !== undefined ? { defaultTtlSecondsAfterFinished: config.jobTtlSeconds } : {}),
    ...(config.scratchSizeLimit ? { scratchSizeLimit: config.scratchSizeLimit } : {}),
    ...(config.progressUrl ? { progressUrl: config.progressUrl } : {}),
  };
  // Loaded only when the endpoint is on: progress.ts imports client-node's package index (all the
  // generated API groups, ~30 MB resident), which the rest of the operator avoids (start.ts).
  const progressModule = config.progressPort !== undefined ? await import('./progress.ts') : undefined;
  const progressStore: ProgressStore | undefined = progressModule ? new progressModule.ProgressStore() : undefined;
  // Events wait while reconciles do (a burst of new scans gets its Jobs first), see events.ts.
  const recorder = new EventRecorder({ api, controller: REPORTING_CONTROLLER, instance: identity, logger, requests, busy: () => queue.len() > 0 });
  metrics.trackEvents(recorder);
  const reconciler = new Reconciler({
    scans,
    jobs,
    pods,
    batch: api,
    custom: api,
    events: recorder,
    metrics,
    jobConfig,
    logger,
    requests,
    ...(progressStore ? { progress: progressStore } : {}),
    ...(config.secretGraceMs !== undefined ? { secretGraceMs: config.secretGraceMs } : {}),
  });

  // Workers.
  let active = 0;
  const workerLoops: Promise<void>[] = [];
  const runWorker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      active++;
      metrics.activeWorkers.set({ controller: CONTROLLER_NAME }, active);
      const started = performance.now();
      const reconcileID = randomUUID();
      const queuedMs = queue.queuedFor(key);
      const obj = scans.get(key);
      const [namespace, name] = key.split('/');
      let result: 'success' | 'error' | 'requeue' | 'requeue_after' = 'success';
      let action: string | undefined;
      let error: string | undefined;
      try {
        const out = await reconciler.reconcile(key);
        action = out.action;
        if (out.requeueAfterMs !== undefined) {
          result = 'requeue_after';
          queue.forget(key);
          queue.addAfter(key, out.requeueAfterMs);
        } else {
          queue.forget(key);
        }
      } catch (err) {
        if (err instanceof ConflictError) {
          result = 'requeue';
          queue.addRateLimited(key);
        } else {
          result = 'error';
          error = describeError(err);
          metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
          queue.addRateLimited(key);
        }
      } finally {
        const seconds = (performance.now() - started) / 1000;
        metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result });
        metrics.reconcileTime.observe({ controller: CONTROLLER_NAME }, seconds);
        const line = {
          controller: CONTROLLER_NAME,
          namespace,
          name,
          reconcileID,
          generation: obj?.metadata?.generation,
          resourceVersion: obj?.metadata?.resourceVersion,
          durationMs: Math.round(seconds * 1000 * 10) / 10,
          queuedMs: Math.round(queuedMs ?? 0),
          result,
          ...(action ? { action } : {}),
          ...(error ? { err: error } : {}),
        };
        if (result === 'error') logger.error(line, 'reconcile failed');
        else logger.info(line, 'reconciled');
        queue.done(key);
        active--;
        metrics.activeWorkers.set({ controller: CONTROLLER_NAME }, active);
      }
    }
  };
  let workersStarted = false;
  const startWorkers = () => {
    if (workersStarted) return;
    workersStarted = true;
    for (let i = 0; i < config.workers; i++) workerLoops.push(runWorker());
  };

  // Caches start at once on every replica (a standby stays warm); workers only on the leader.
  for (const inf of [...scanInformers, ...jobInformers, ...podInformers]) inf.start();
  const synced = Promise.all([...scanInformers, ...jobInformers, ...podInformers].map((i) => i.waitForSync())).then(() => {
    logger.info({ scans: scans.size, jobs: jobs.size, pods: pods.size }, 'caches synced');
  });

  let leader: LeaderElector | undefined;
  let stopping = false;
  if (config.leaderElection) {
    metrics.leaderStatus.set({ name: config.leaseName }, 0);
    leader = new LeaderElector({
      store: new KubeLeaseStore(api, config.leaseNamespace, config.leaseName, requests),
      identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      logger,
      onStatus: (leading) => metrics.leaderStatus.set({ name: config.leaseName }, leading ? 1 : 0),
      onNewLeader: (id) => logger.info({ leader: id, me: identity }, 'new leader observed'),
      onStartedLeading: () => {
        synced.then(() => {
          if (!stopping) startWorkers();
        });
      },
      onStoppedLeading: () => {
        logger.error({ identity }, 'leadership lost: stopping');
        // Stop writing immediately: no more work is handed out.
        void queue.shutdown();
        (config.onLeadershipLost ?? (() => process.exit(1)))();
      },
    });
    leader.start();
  } else {
    synced.then(() => {
      if (!stopping) startWorkers();
    });
  }

  let http: HttpServer | undefined;
  if (config.httpPort !== undefined) {
    http = await startHttpServer({
      port: config.httpPort,
      host: config.httpHost,
      metrics,
      probes: {
        healthy: () => ({ ok: !stopping || true }),
        ready: () => {
          const cachesSynced = scans.hasSynced() && jobs.hasSynced() && pods.hasSynced();
          if (!cachesSynced) return { ok: false, detail: 'caches not synced' };
          if (stopping) return { ok: false, detail: 'shutting down' };
          if (leader?.isLeader() && !leader.holdsValidLease()) return { ok: false, detail: 'lease not renewed' };
          return { ok: true, detail: leader ? (leader.isLeader() ? 'leader' : 'standby') : undefined };
        },
      },
    });
  }

  let progress: ProgressServer | undefined;
  if (progressModule && progressStore && config.progressPort !== undefined) {
    const { startProgressServer, TokenAuthenticator, kubeTokenReviewer, kubePodReader } = progressModule;
    progress = await startProgressServer({
      port: config.progressPort,
      host: config.httpHost,
      logger,
      authenticator: new TokenAuthenticator({ review: kubeTokenReviewer(kc, requests), workerServiceAccount: config.workerServiceAccount, namespaces: config.namespaces }),
      store: progressStore,
      scans,
      jobs,
      pods,
      readPod: kubePodReader(kc, requests),
      enqueue: (key, delayMs) => (delayMs ? queue.addAfter(key, delayMs) : queue.add(key)),
      accepting: () => {
        if (stopping) return { ok: false, detail: 'shutting down' };
        if (leader && !leader.isLeader()) return { ok: false, detail: 'not the leader' };
        if (!(scans.hasSynced() && jobs.hasSynced() && pods.hasSynced())) return { ok: false, detail: 'caches not synced' };
        return { ok: true };
      },
    });
  }
  if (!config.progressUrl !== (progress === undefined)) {
    logger.warn({ progressUrl: config.progressUrl, progressPort: progress?.port }, 'live progress half configured: set both the progress port and the URL workers use');
  }

  logger.info(
    { identity, namespaces: config.namespaces.length ? config.namespaces : 'all', workers: config.workers, leaderElection: config.leaderElection, httpPort: http?.port, progressPort: progress?.port },
    'operator started',
  );

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      logger.info({ identity }, 'shutting down: draining workers');
      await queue.shutdown({ drain: true, timeoutMs: 25_000 });
      await Promise.all(workerLoops);
      await recorder.flush({ timeoutMs: 5_000 });
      await Promise.all([...scanInformers, ...jobInformers, ...podInformers].map((i) => i.stop()));
      // Release only after the workers are done, so the next leader never overlaps with our writes.
      if (leader) await leader.stop({ release: true });
      if (http) await http.close();
      if (progress) await progress.close();
      logger.info({ identity }, 'stopped');
    })());

  return {
    identity,
    metrics,
    requests,
    logger,
    http,
    progress,
    informers: { scans: scanInformers, jobs: jobInformers, pods: podInformers },
    queue,
    leader,
    isLeader: () => (leader ? leader.isLeader() : true),
    synced,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Process entry point.

function envBool(v: string | undefined, def: boolean): boolean {
  if (v === undefined || v === '') return def;
  return /^(1|true|yes|on)$/i.test(v);
}

function envJson<T>(name: string, v: string | undefined): T | undefined {
  if (!v || v === 'null') return undefined;
  try {
    return JSON.parse(v) as T;
  } catch (err) {
    throw new Error(`${name} is not valid JSON: ${(err as Error).message}`);
  }
}

const USAGE = `Usage: node operator/main.ts [options]
  --namespaces a,b          namespaces to watch (default: all)         ELIBADCODE_WATCH_NAMESPACES
  --workers N               concurrent reconciles (default 32)          ELIBADCODE_WORKERS
  --worker-image IMAGE      worker image                                ELIBADCODE_WORKER_IMAGE
  --worker-service-account  worker ServiceAccount (elibadcode-worker)   ELIBADCODE_WORKER_SERVICE_ACCOUNT
  --leader-elect BOOL       Lease-based leader election (default true)  ELIBADCODE_LEADER_ELECT
  --lease-namespace NS      (default: POD_NAMESPACE or default)         ELIBADCODE_LEASE_NAMESPACE
  --lease-name NAME         (default elibadcode-operator)               ELIBADCODE_LEASE_NAME
  --http-port PORT          /metrics /healthz /readyz (default 8080)    ELIBADCODE_HTTP_PORT
  --progress-port PORT      POST /v1/progress from workers (default off) ELIBADCODE_PROGRESS_PORT
  --progress-url URL        what workers POST to, e.g.                  ELIBADCODE_PROGRESS_URL
                            http://elibadcode-operator-progress.<ns>.svc:8082/v1/progress
  --log-level LEVEL         (default info)                              ELIBADCODE_LOG_LEVEL
Also: ELIBADCODE_GPU_RESOURCE_NAME, ELIBADCODE_WORKER_IMAGE_PULL_POLICY, ELIBADCODE_WORKER_RESOURCES (JSON),
ELIBADCODE_WORKER_TOLERATIONS (JSON), ELIBADCODE_JOB_TTL_SECONDS, ELIBADCODE_WORKER_SCRATCH_SIZE; KUBECONFIG or in-cluster config.`;

export function configFromEnv(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespaces: { type: 'string' },
      workers: { type: 'string' },
      'worker-image': { type: 'string' },
      'worker-service-account': { type: 'string' },
      'leader-elect': { type: 'string' },
      'lease-namespace': { type: 'string' },
      'lease-name': { type: 'string' },
      'http-port': { type: 'string' },
      'progress-port': { type: 'string' },
      'progress-url': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const ns = (values.namespaces ?? env.ELIBADCODE_WATCH_NAMESPACES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const workers = Number(values.workers ?? env.ELIBADCODE_WORKERS ?? DEFAULT_WORKERS);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${values.workers ?? env.ELIBADCODE_WORKERS}`);
  const workerImage = values['worker-image'] ?? env.ELIBADCODE_WORKER_IMAGE;
  if (!workerImage) throw new Error('the worker image is required (--worker-image or ELIBADCODE_WORKER_IMAGE)');
  const ttl = env.ELIBADCODE_JOB_TTL_SECONDS;
  const progressPort = values['progress-port'] ?? env.ELIBADCODE_PROGRESS_PORT;
  if (progressPort && !/^\d+$/.test(progressPort)) throw new Error(`progress port must be a port number, got ${progressPort}`);
  const progressUrl = values['progress-url'] ?? env.ELIBADCODE_PROGRESS_URL;
  if (progressUrl && !/^https?:\/\/[^/\s]+\/\S*$/.test(progressUrl)) throw new Error(`progress URL must be http(s)://host[:port]/path, got ${progressUrl}`);
  const pullPolicy = env.ELIBADCODE_WORKER_IMAGE_PULL_POLICY;
  return {
    namespaces: ns,
    workers,
    workerImage,
    workerServiceAccount: values['worker-service-account'] ?? env.ELIBADCODE_WORKER_SERVICE_ACCOUNT ?? 'elibadcode-worker',
    gpuResourceName: env.ELIBADCODE_GPU_RESOURCE_NAME || undefined,
    workerImagePullPolicy: pullPolicy === 'Always' || pullPolicy === 'Never' || pullPolicy === 'IfNotPresent' ? pullPolicy : undefined,
    workerResources: envJson('ELIBADCODE_WORKER_RESOURCES', env.ELIBADCODE_WORKER_RESOURCES),
    workerTolerations: envJson('ELIBADCODE_WORKER_TOLERATIONS', env.ELIBADCODE_WORKER_TOLERATIONS),
    jobTtlSeconds: ttl ? Number(ttl) : undefined,
    scratchSizeLimit: env.ELIBADCODE_WORKER_SCRATCH_SIZE || undefined,
    leaderElection: envBool(values['leader-elect'] ?? env.ELIBADCODE_LEADER_ELECT, true),
    leaseNamespace: values['lease-namespace'] ?? env.ELIBADCODE_LEASE_NAMESPACE ?? env.POD_NAMESPACE ?? 'default',
    leaseName: values['lease-name'] ?? env.ELIBADCODE_LEASE_NAME ?? 'elibadcode-operator',
    httpPort: Number(values['http-port'] ?? env.ELIBADCODE_HTTP_PORT ?? 8080),
    progressPort: progressPort ? Number(progressPort) : undefined,
    progressUrl: progressUrl || undefined,
    logLevel: values['log-level'] ?? env.ELIBADCODE_LOG_LEVEL ?? 'info',
    leaseDurationMs: env.ELIBADCODE_LEASE_DURATION_MS ? Number(env.ELIBADCODE_LEASE_DURATION_MS) : undefined,
    renewDeadlineMs: env.ELIBADCODE_RENEW_DEADLINE_MS ? Number(env.ELIBADCODE_RENEW_DEADLINE_MS) : undefined,
    retryPeriodMs: env.ELIBADCODE_RETRY_PERIOD_MS ? Number(env.ELIBADCODE_RETRY_PERIOD_MS) : undefined,
  };
}

export async function main(argv: string[]): Promise<void> {
  let config: OperatorConfig;
  try {
    config = configFromEnv(argv);
  } catch (err) {
    console.error(`elibadcode-operator: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const handle = await startOperator({ ...config, logger });
  let signalled = false;
  const onSignal = (sig: string) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal: sig }, 'signal received');
    const hard = setTimeout(() => {
      logger.error('shutdown took too long, exiting');
      process.exit(1);
    }, 28_000);
    hard.unref();
    handle.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err: describeError(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

if (import.meta.main) {
  await main(process.argv.slice(2));
}
