// A real control plane for integration tests, without Docker: etcd + kube-apiserver (and optionally
// kube-controller-manager) built from the Go module proxy by scripts/k8s/build.sh and cached by version.
// The same idea as controller-runtime's envtest, spawned from TypeScript.
//
//   const cp = await startControlPlane();
//   const core = cp.kubeConfig.makeApiClient(CoreV1Api);
//   ...
//   await cp.stop();
//
// Identity: the kubeconfig authenticates with a static bearer token as user "admin" in group
// system:masters. Authorization is RBAC, so other identities are really checked: use
// cp.userKubeConfig(user, groups) (client certificate) or impersonation to act as someone else.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { openSync, closeSync, readFileSync, writeFileSync, mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KubeConfig,
  BatchV1Api,
  CoreV1Api,
  type V1Job,
  type V1JobCondition,
  type V1Pod,
} from '@kubernetes/client-node';

const execFileP = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildScript = join(repoRoot, 'scripts', 'k8s', 'build.sh');

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  server: string;
  /** kubeconfig file (admin, system:masters) inside the control plane's temp dir. */
  kubeconfigPath: string;
  /** Admin KubeConfig loaded from kubeconfigPath. */
  kubeConfig: KubeConfig;
  /** Kills every process (SIGTERM, then SIGKILL after a grace period), waits, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Temp dir holding certs, etcd data, kubeconfig and the components' logs (<component>.log). */
  dir: string;
  /** CA certificate (PEM) that signs the serving certificate and the client certificates. */
  caCertPath: string;
  /** Bearer token of the admin user. */
  adminToken: string;
  /** PIDs (= process group ids) of the running components. */
  pids: Record<string, number>;
  /** Whether kube-controller-manager runs (job controller, garbage collector, namespace controller...). */
  controllerManager: boolean;
  /** A KubeConfig for an arbitrary identity, authenticated by a client certificate signed by the test CA. */
  userKubeConfig(user: string, groups?: string[]): Promise<KubeConfig>;
  /** The admin KubeConfig, impersonating `user` (service accounts get their groups added by the API server). */
  impersonate(user: string): KubeConfig;
  /** Last lines of a component's log. */
  logTail(component: 'etcd' | 'kube-apiserver' | 'kube-controller-manager', lines?: number): string;
}

export interface StartOptions {
  /** Also run kube-controller-manager (real Job controller and garbage collection). Default false. */
  controllerManager?: boolean;
  /** Progress lines (build, start, readiness). */
  log?: (line: string) => void;
  /** How long to wait for readiness, default 90 s (ELIBADCODE_CONTROLPLANE_START_TIMEOUT_MS overrides). */
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags (e.g. ['--feature-gates=...']). */
  apiServerArgs?: string[];
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every child lives in its own process group; they are killed when this
// process exits (normally, on a signal, or — via a watchdog holding a pipe to us — even on SIGKILL).

interface Tracked {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  exitInfo?: { code: number | null; signal: NodeJS.Signals | null };
}

const live = new Set<Tracked>();
/** SIGTERM grace before SIGKILL in stop(); the data is thrown away, so there is no point in waiting long. */
const stopGraceMs = 3000;
const liveDirs = new Set<string>();
let handlersInstalled = false;

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanupSync = () => {
    for (const t of live) if (!t.exitInfo) killGroup(t.child.pid, 'SIGKILL');
    live.clear();
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    liveDirs.clear();
  };
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      cleanupSync();
      // Keep the default behaviour (terminate) when nobody else handles the signal.
      if (process.listenerCount(sig) <= 1) process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

function spawnComponent(name: string, bin: string, args: string[], logPath: string): Tracked {
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const t: Tracked = { name, child, exited: Promise.resolve() };
  t.exited = new Promise((res) => {
    child.once('exit', (code, signal) => {
      t.exitInfo = { code, signal };
      live.delete(t);
      res();
    });
    child.once('error', (err) => {
      writeFileSync(logPath, `\nspawn error: ${err.message}\n`, { flag: 'a' });
      t.exitInfo = { code: -1, signal: null };
      live.delete(t);
      res();
    });
  });
  // A forgotten stop() must not keep the test process alive; the exit handler then kills it.
  child.unref();
  live.add(t);
  return t;
}

/** A watchdog that SIGKILLs the given process groups and removes the dir once our stdin pipe closes (we died). */
function startWatchdog(dir: string): { add(pid: number): void; disarm(): void } {
  const script =
    'pg=""; while read -r l; do [ "$l" = disarm ] && exit 0; pg="$pg $l"; done; ' +
    'for g in $pg; do kill -KILL -- "-$g" 2>/dev/null; done; rm -rf -- "$1"';
  const w = spawn('bash', ['-c', script, 'watchdog', dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  w.unref();
  const stdin = w.stdin!;
  stdin.on('error', () => {});
  (stdin as unknown as { unref?: () => void }).unref?.();
  return {
    add(pid) {
      stdin.write(`${pid}\n`);
    },
    disarm() {
      stdin.end('disarm\n');
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** The versioned cache dir build.sh fills (from scripts/k8s/versions.env), whether or not it exists yet. */
export function cachedBinDir(): string {
  if (process.env.ELIBADCODE_K8S_BIN_DIR) return process.env.ELIBADCODE_K8S_BIN_DIR;
  const env = Object.fromEntries(
    readFileSync(join(repoRoot, 'scripts', 'k8s', 'versions.env'), 'utf8')
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(\S+)/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1], m[2]]),
  );
  const cache = process.env.ELIBADCODE_CACHE || join(homedir(), '.cache', 'elibadcode');
  return join(cache, 'k8s', `${env.K8S_VERSION}-etcd-${env.ETCD_VERSION}`, 'bin');
}

/** Whether a component's binary is already built (so using it costs no build time). */
export function isBuilt(component: 'kube-apiserver' | 'etcd' | 'kube-controller-manager'): boolean {
  return existsSync(join(cachedBinDir(), component));
}

/** Runs scripts/k8s/build.sh (a no-op when cached) and returns the bin dir. */
export async function ensureBinaries(opts: { controllerManager?: boolean; log?: (line: string) => void } = {}): Promise<string> {
  const components = ['kube-apiserver', 'etcd', ...(opts.controllerManager ? ['kube-controller-manager'] : [])];
  // Escape hatch: prebuilt binaries elsewhere (like envtest's KUBEBUILDER_ASSETS).
  const override = process.env.ELIBADCODE_K8S_BIN_DIR;
  if (override) {
    const absent = components.filter((c) => !existsSync(join(override, c)));
    if (absent.length) throw new Error(`ELIBADCODE_K8S_BIN_DIR=${override} lacks ${absent.join(', ')}`);
    return override;
  }
  return await new Promise<string>((res, rej) => {
    const p = spawn('bash', [buildScript, '--print-bin-dir', ...components], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    p.stdout.on('data', (d) => (out += d));
    let partial = '';
    p.stderr.on('data', (d: Buffer) => {
      const s = partial + d.toString();
      const lines = s.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        errTail = (errTail + l + '\n').slice(-4000);
        if (l.startsWith('build.sh')) opts.log?.(l);
      }
    });
    p.on('error', rej);
    p.on('exit', (code) => {
      if (code === 0) res(out.trim().split('\n').pop()!);
      else rej(new Error(`scripts/k8s/build.sh failed (exit ${code}):\n${errTail}${partial}`));
    });
  });
}

async function freePort(): Promise<number> {
  return await new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr || err.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCA(pki: string): Promise<void> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=elibadcode-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature'],
    pki,
  );
}

/** Issues a leaf certificate signed by pki/ca.{crt,key}; returns [certPath, keyPath]. */
async function issueCert(pki: string, base: string, subj: string, ext: string[]): Promise<[string, string]> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '7', '-subj', subj,
      '-CA', 'ca.crt', '-CAkey', 'ca.key', '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment', ...ext.flatMap((e) => ['-addext', e])],
    pki,
  );
  return [join(pki, `${base}.crt`), join(pki, `${base}.key`)];
}

function subjectFor(user: string, groups: string[]): string {
  const esc = (s: string) => s.replace(/[\\/=+,]/g, (c) => `\\${c}`);
  return `/CN=${esc(user)}${groups.map((g) => `/O=${esc(g)}`).join('')}`;
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function httpsGet(url: string, ca: string | undefined, token: string | undefined, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return await new Promise((res, rej) => {
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const tls = ca ? { ca } : { rejectUnauthorized: false };
    const req = httpsRequest(url, { ...tls, headers, timeout: timeoutMs }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (body += d));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

function kubeconfigJSON(server: string, caPem: string, user: Record<string, string>, userName: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'elibadcode-test', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: userName, user }],
      contexts: [{ name: userName, context: { cluster: 'elibadcode-test', user: userName, namespace: 'default' } }],
      'current-context': userName,
    },
    null,
    2,
  );
}

class StartError extends Error {
  portInUse: boolean;
  constructor(msg: string, portInUse: boolean) {
    super(msg);
    this.portInUse = portInUse;
  }
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const withKCM = !!opts.controllerManager;
  const t0 = Date.now();
  const bin = await ensureBinaries({ controllerManager: withKCM, log });
  if (Date.now() - t0 > 2000) log(`binaries ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  // Ports are picked by binding to :0 and releasing, so another process may grab one in between: retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(bin, withKCM, opts, log);
    } catch (e) {
      if (e instanceof StartError && e.portInUse && attempt < 3) {
        log(`port collision, retrying (${e.message.split('\n')[0]})`);
        continue;
      }
      throw e;
    }
  }
}

async function startOnce(bin: string, withKCM: boolean, opts: StartOptions, log: (l: string) => void): Promise<ControlPlane> {
  installExitHandlers();
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'elibadcode-cp-'));
  liveDirs.add(dir);
  const pki = join(dir, 'pki');
  const procs: Tracked[] = [];
  // Debugging aid: keep certs, kubeconfig and logs after stop() (and after a failed start).
  const keepDir = !!process.env.ELIBADCODE_KEEP_CONTROLPLANE_DIR;
  if (keepDir) liveDirs.delete(dir);
  const watchdog = startWatchdog(keepDir ? '/nonexistent-elibadcode-keep' : dir);
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The children are unref'd; keep the event loop alive until they are reaped.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      // Controller manager first (it talks to the API server), then the API server, then etcd.
      for (const t of [...procs].reverse()) {
        if (t.exitInfo) continue;
        killGroup(t.child.pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(t.child.pid, 'SIGKILL'), stopGraceMs);
        await t.exited;
        clearTimeout(timer);
        killGroup(t.child.pid, 'SIGKILL'); // anything left in the group
      }
    } finally {
      clearInterval(keepAlive);
    }
    watchdog.disarm();
    liveDirs.delete(dir);
    if (keepDir) log(`keeping ${dir} (ELIBADCODE_KEEP_CONTROLPLANE_DIR)`);
    else rmSync(dir, { recursive: true, force: true });
  };

  try {
    const timeoutMs = opts.startTimeoutMs ?? (Number(process.env.ELIBADCODE_CONTROLPLANE_START_TIMEOUT_MS) || 90_000);
    const [etcdClient, etcdPeer, apiPort, kcmPort] = await freePorts(4);
    const server = `https://127.0.0.1:${apiPort}`;
    const token = randomBytes(24).toString('hex');

    // --- certificates and keys
    mkdirSync(pki);
    await makeCA(pki);
    const [servingCrt, servingKey] = await issueCert(pki, 'apiserver', '/CN=kube-apiserver', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1',
      'extendedKeyUsage=serverAuth',
    ]);
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const saKey = join(pki, 'sa.key');
    const saPub = join(pki, 'sa.pub');
    writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
    const tokens = join(pki, 'tokens.csv');
    writeFileSync(tokens, `${token},admin,admin,system:masters\n`, { mode: 0o600 });
    const caCertPath = join(pki, 'ca.crt');
    const caPem = readFileSync(caCertPath, 'utf8');

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigJSON(server, caPem, { token }, 'admin'), { mode: 0o600 });

    // --- etcd
    const logs = {
      etcd: join(dir, 'etcd.log'),
      'kube-apiserver': join(dir, 'kube-apiserver.log'),
      'kube-controller-manager': join(dir, 'kube-controller-manager.log'),
    };
    const etcd = spawnComponent('etcd', join(bin, 'etcd'), [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ], logs.etcd);
    procs.push(etcd);
    watchdog.add(etcd.child.pid!);

    // --- kube-apiserver (it retries etcd on its own, so no need to wait for etcd first)
    const apiserver = spawnComponent('kube-apiserver', join(bin, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      `--tls-cert-file=${servingCrt}`,
      `--tls-private-key-file=${servingKey}`,
      `--client-ca-file=${caCertPath}`,
      `--token-auth-file=${tokens}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      ...(opts.apiServerArgs ?? []),
    ], logs['kube-apiserver']);
    procs.push(apiserver);
    watchdog.add(apiserver.child.pid!);

    const failIfExited = () => {
      for (const t of procs) {
        if (t.exitInfo) {
          const logPath = logs[t.name as keyof typeof logs];
          const text = tail(logPath);
          throw new StartError(
            `${t.name} exited during start-up (code ${t.exitInfo.code}, signal ${t.exitInfo.signal}); last lines of ${logPath}:\n${text}`,
            /address already in use/i.test(text),
          );
        }
      }
    };

    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      failIfExited();
      try {
        const r = await httpsGet(`${server}/readyz`, caPem, token);
        if (r.status === 200) break;
        last = `HTTP ${r.status}: ${r.body.slice(0, 500)}`;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline) {
        throw new StartError(
          `kube-apiserver not ready after ${timeoutMs} ms (last /readyz: ${last}); last lines of its log:\n` +
            `${tail(logs['kube-apiserver'])}\n--- etcd log:\n${tail(logs.etcd, 15)}`,
          /address already in use/i.test(tail(logs['kube-apiserver']) + tail(logs.etcd)),
        );
      }
      await sleep(150);
    }
    log(`kube-apiserver ready at ${server} in ${((Date.now() - t0) / 1000).toFixed(1)}s (dir ${dir})`);

    // --- kube-controller-manager (optional)
    if (withKCM) {
      const kcm = spawnComponent('kube-controller-manager', join(bin, 'kube-controller-manager'), [
        `--kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'kcm-certs')}`,
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${caCertPath}`,
        '--use-service-account-credentials=false',
        '--controllers=*,-nodeipam,-nodelifecycle,-route,-service,-cloud-node-lifecycle,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-pv-protection,-pvc-protection',
        '--concurrent-gc-syncs=5',
      ], logs['kube-controller-manager']);
      procs.push(kcm);
      watchdog.add(kcm.child.pid!);
      for (;;) {
        failIfExited();
        try {
          // Its serving certificate is self-signed (in --cert-dir); /healthz is always allowed.
          const r = await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, undefined, undefined);
          if (r.status === 200) break;
          last = `HTTP ${r.status}`;
        } catch (e) {
          last = (e as Error).message;
        }
        if (Date.now() > deadline) {
          throw new StartError(
            `kube-controller-manager not healthy after ${timeoutMs} ms (${last}); last lines of its log:\n${tail(logs['kube-controller-manager'])}`,
            /address already in use/i.test(tail(logs['kube-controller-manager'])),
          );
        }
        await sleep(200);
      }
      log(`kube-controller-manager healthy in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);

    const pids: Record<string, number> = {};
    for (const t of procs) pids[t.name] = t.child.pid!;

    let certSeq = 0;
    return {
      server,
      kubeconfigPath,
      kubeConfig,
      stop,
      dir,
      caCertPath,
      adminToken: token,
      pids,
      controllerManager: withKCM,
      async userKubeConfig(user: string, groups: string[] = []) {
        const base = `user-${++certSeq}`;
        const [crt, key] = await issueCert(pki, base, subjectFor(user, groups), ['extendedKeyUsage=clientAuth']);
        const kc = new KubeConfig();
        kc.loadFromString(
          kubeconfigJSON(server, caPem, {
            'client-certificate-data': readFileSync(crt).toString('base64'),
            'client-key-data': readFileSync(key).toString('base64'),
          }, user),
        );
        return kc;
      },
      impersonate(user: string) {
        const kc = new KubeConfig();
        kc.loadFromString(kubeconfigJSON(server, caPem, { token, as: user }, 'admin'));
        return kc;
      },
      logTail(component, lines = 40) {
        return tail(logs[component], lines);
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Job / Pod status helpers. Without kube-controller-manager nothing ever moves a Job; tests write
// the status the Job controller would write. Recent API servers validate Job status transitions
// (pkg/apis/batch/validation): a Complete condition needs SuccessCriteriaMet, completionTime and
// startTime; Failed needs FailureTarget and startTime; a finished job has no active pods.

export interface FinishJobOptions {
  /** Condition reason, default "CompletionsReached" (complete) / "BackoffLimitExceeded" (fail). */
  reason?: string;
  message?: string;
  /** Defaults to the Job's existing startTime, else now minus 1 s. */
  startTime?: Date;
  /** Defaults to now. */
  finishTime?: Date;
  /** Pods counted as succeeded (complete: default spec.completions ?? 1) / failed (fail: default backoffLimit+1, at least 1). */
  count?: number;
}

function isConflict(e: unknown): boolean {
  return (e as { code?: number }).code === 409;
}

async function updateJobStatus(kc: KubeConfig, namespace: string, name: string, mutate: (job: V1Job) => void): Promise<V1Job> {
  const batch = kc.makeApiClient(BatchV1Api);
  for (let i = 0; ; i++) {
    const job = await batch.readNamespacedJob({ name, namespace });
    mutate(job);
    try {
      return await batch.replaceNamespacedJobStatus({ name, namespace, body: job });
    } catch (e) {
      if (isConflict(e) && i < 5) continue;
      throw e;
    }
  }
}

function cond(type: string, reason: string, message: string, at: Date): V1JobCondition {
  return { type, status: 'True', reason, message, lastProbeTime: at, lastTransitionTime: at };
}

function finishedAlready(job: V1Job): string | undefined {
  return job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type;
}

/** Marks a Job running the way the Job controller does once its Pod is up: startTime, active, ready. */
export async function startJob(kc: KubeConfig, namespace: string, name: string, opts: { active?: number; ready?: number; startTime?: Date } = {}): Promise<V1Job> {
  return await updateJobStatus(kc, namespace, name, (job) => {
    const done = finishedAlready(job);
    if (done) throw new Error(`job ${namespace}/${name} is already ${done}`);
    const st = (job.status ??= {});
    st.startTime ??= opts.startTime ?? new Date();
    st.active = opts.active ?? 1;
    st.ready = Math.min(opts.ready ?? st.active, st.active);
    st.uncountedTerminatedPods ??= {};
  });
}

/**
 * Ends a Job the way the Job controller does: the interim condition (SuccessCriteriaMet or
 * FailureTarget) first, then the final one, with start time and counters the API server's
 * status-transition validation expects.
 */
function finishJob(kc: KubeConfig, namespace: string, name: string, opts: FinishJobOptions, outcome: 'Complete' | 'Failed'): Promise<V1Job> {
  const [interim, reasonDefault, messageDefault] =
    outcome === 'Complete'
      ? ['SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods']
      : ['FailureTarget', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'];
  return updateJobStatus(kc, namespace, name, (job) => {
    const done = finishedAlready(job);
    if (done) throw new Error(`job ${namespace}/${name} is already ${done}`);
    const now = opts.finishTime ?? new Date();
    const st = (job.status ??= {});
    st.startTime ??= opts.startTime ?? new Date(now.getTime() - 1000);
    const reason = opts.reason ?? reasonDefault;
    const message = opts.message ?? messageDefault;
    st.conditions = [
      ...(st.conditions ?? []).filter((c) => c.type !== interim && c.type !== outcome),
      cond(interim, reason, message, now),
      cond(outcome, reason, message, now),
    ];
    if (outcome === 'Complete') {
      st.completionTime = now;
      st.succeeded = opts.count ?? job.spec?.completions ?? 1;
      if (job.spec?.completionMode === 'Indexed' && st.succeeded > 0) {
        st.completedIndexes = st.succeeded === 1 ? '0' : `0-${st.succeeded - 1}`;
      }
    } else {
      st.failed = opts.count ?? Math.max(1, (job.spec?.backoffLimit ?? 0) + 1);
      delete st.completionTime;
    }
    st.active = 0;
    st.ready = 0;
    st.terminating = 0;
    st.uncountedTerminatedPods = {};
  });
}

/** Marks a Job Complete the way the Job controller does (SuccessCriteriaMet, then Complete). */
export function completeJob(kc: KubeConfig, namespace: string, name: string, opts: FinishJobOptions = {}): Promise<V1Job> {
  return finishJob(kc, namespace, name, opts, 'Complete');
}

/** Marks a Job Failed the way the Job controller does (FailureTarget, then Failed). */
export function failJob(kc: KubeConfig, namespace: string, name: string, opts: FinishJobOptions = {}): Promise<V1Job> {
  return finishJob(kc, namespace, name, opts, 'Failed');
}

export interface JobPodOptions {
  /** Container exit code; 0 makes the Pod Succeeded, anything else Failed. Default 0. */
  exitCode?: number;
  /** Termination message (what the container wrote to /dev/termination-log, ≤4096 bytes in a real kubelet). */
  message?: string;
  /** Terminated reason, default "Completed" (exit 0) or "Error". */
  reason?: string;
  /** Pod name, default `<job>-<random>`. */
  name?: string;
  /** Container name, default the Job template's first container, else "worker". */
  containerName?: string;
  /** Node name to put in spec.nodeName (so the pod looks scheduled), default "fake-node". */
  nodeName?: string;
}

/**
 * Creates a Pod owned by the Job (ownerReference controller=true, the Job controller's labels), from
 * the Job's pod template, and writes a terminated container status carrying `message` and `exitCode`
 * — what a kubelet reports after the worker exits. Returns the Pod as stored.
 */
export async function createJobPod(kc: KubeConfig, namespace: string, jobName: string, opts: JobPodOptions = {}): Promise<V1Pod> {
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const job = await batch.readNamespacedJob({ name: jobName, namespace });
  const uid = job.metadata!.uid!;
  const tmpl = structuredClone(job.spec?.template ?? {});
  const spec = tmpl.spec ?? { containers: [] };
  if (!spec.containers?.length) spec.containers = [{ name: opts.containerName ?? 'worker', image: 'worker:test' }];
  const containerName = opts.containerName ?? spec.containers[0].name;
  if (!spec.containers.some((c) => c.name === containerName)) {
    throw new Error(`job ${namespace}/${jobName} has no container named ${containerName}`);
  }
  spec.restartPolicy ??= 'Never';
  spec.nodeName = opts.nodeName ?? 'fake-node';
  const exitCode = opts.exitCode ?? 0;
  const name = opts.name ?? `${jobName.slice(0, 57)}-${randomBytes(3).toString('hex').slice(0, 5)}`;
  const pod = await core.createNamespacedPod({
    namespace,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels: {
          ...(tmpl.metadata?.labels ?? {}),
          'batch.kubernetes.io/controller-uid': uid,
          'batch.kubernetes.io/job-name': jobName,
          'controller-uid': uid,
          'job-name': jobName,
        },
        annotations: tmpl.metadata?.annotations,
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid, controller: true, blockOwnerDeletion: true },
        ],
      },
      spec,
    },
  });
  const started = new Date(Date.now() - 1000);
  const finished = new Date();
  pod.status = {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    startTime: started,
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: started },
      { type: 'Initialized', status: 'True', lastTransitionTime: started },
      { type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: finished },
      { type: 'ContainersReady', status: 'False', reason: 'PodCompleted', lastTransitionTime: finished },
    ],
    containerStatuses: spec.containers.map((c) => ({
      name: c.name,
      image: c.image ?? 'worker:test',
      imageID: '',
      ready: false,
      started: false,
      restartCount: 0,
      state: {
        terminated: {
          exitCode: c.name === containerName ? exitCode : 0,
          reason: c.name === containerName ? (opts.reason ?? (exitCode === 0 ? 'Completed' : 'Error')) : 'Completed',
          message: c.name === containerName ? opts.message : undefined,
          startedAt: started,
          finishedAt: finished,
        },
      },
    })),
  };
  for (let i = 0; ; i++) {
    try {
      return await core.replaceNamespacedPodStatus({ name, namespace, body: pod });
    } catch (e) {
      if (isConflict(e) && i < 5) {
        const fresh = await core.readNamespacedPod({ name, namespace });
        pod.metadata = fresh.metadata;
        continue;
      }
      throw e;
    }
  }
}

/** Whether a process (group leader) is still alive. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
