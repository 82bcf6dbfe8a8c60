// A real S3-compatible server for the storage tests: versitygw (posix backend) on 127.0.0.1 with a
// free port and a temporary root directory. scripts/s3/build.sh builds it from the Go module proxy
// into the cache; `npm test` runs that build first and exports ELIBADCODE_VERSITYGW.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '../../worker/storage/s3.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ObjectStore {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL_S3. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** The AWS_* variables a client needs to reach this server. */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  /** Kills the server and removes its root directory. */
  stop(): Promise<void>;
}

/** The binary scripts/s3/build.sh leaves in the cache (the version pinned there), or ELIBADCODE_VERSITYGW. */
export function versitygwBinary(): string | undefined {
  if (process.env.ELIBADCODE_VERSITYGW) return process.env.ELIBADCODE_VERSITYGW;
  const version = /^VERSITYGW_VERSION=(\S+)$/m.exec(readFileSync(join(root, 'scripts', 's3', 'build.sh'), 'utf8'))?.[1];
  const cache = process.env.ELIBADCODE_CACHE ?? join(homedir(), '.cache', 'elibadcode');
  const bin = join(cache, 'versitygw', version ?? 'unknown', 'bin', 'versitygw');
  return existsSync(bin) ? bin : undefined;
}

/** For `test(..., { skip })`: why the S3 tests cannot run here, or false when they can. */
export function objectStoreSkip(): string | false {
  return versitygwBinary() ? false : 'versitygw is not built: run `npm run s3:build` (npm test builds it) or set ELIBADCODE_VERSITYGW';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();
let exitHandler = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

/** Answers any HTTP request (an unsigned one gets 403): the server is up. */
async function answers(endpoint: string): Promise<boolean> {
  try {
    await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

export async function startObjectStore(o: { startTimeoutMs?: number } = {}): Promise<ObjectStore> {
  const bin = versitygwBinary();
  if (!bin) throw new Error(objectStoreSkip() as string);
  const dir = mkdtempSync(join(tmpdir(), 'objectstore-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const accessKey = `AK${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretKey = randomBytes(24).toString('base64url');
  const region = 'us-east-1';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const logFile = join(dir, 'versitygw.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // The secret goes by environment, not argv, so `ps` does not show it.
    child = spawn(bin, ['--port', `127.0.0.1:${port}`, '--region', region, '--quiet', 'posix', data], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { PATH: process.env.PATH ?? '', ROOT_ACCESS_KEY_ID: accessKey, ROOT_SECRET_ACCESS_KEY: secretKey },
    });
  } finally {
    closeSync(fd);
  }
  child.unref();
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  if (!exitHandler) {
    exitHandler = true;
    process.on('exit', () => {
      for (const c of children) killGroup(c, 'SIGKILL');
    });
  }
  const stop = async () => {
    if (children.has(child)) {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
  while (!(await answers(endpoint))) {
    if (!children.has(child) || Date.now() > deadline) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      await stop();
      throw new Error(`versitygw did not start on ${endpoint}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = { AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, AWS_REGION: region, AWS_ENDPOINT_URL_S3: endpoint };
  const admin = S3Client.fromEnv(env);
  return {
    endpoint,
    accessKey,
    secretKey,
    region,
    env,
    createBucket: (name) => admin.createBucket(name),
    stop,
  };
}

export interface ProxiedRequest {
  method: string;
  /** Decoded path: /bucket/key. */
  path: string;
  status: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT: an AWS_ENDPOINT_URL_S3 that reaches the server through this proxy. */
  endpoint: string;
  /** Every request, in arrival order, with the status it got. */
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * A proxy in front of the real server for fault injection: `fault` may answer a request itself
 * with an S3 error (status and code); every other request is forwarded unchanged (the Host header
 * included, so signatures still verify) and the server's answer is relayed.
 */
export async function startFaultProxy(target: string, fault: (r: { method: string; path: string; n: number }) => { status: number; code: string } | undefined = () => undefined): Promise<FaultProxy> {
  const t = new URL(target);
  const requests: ProxiedRequest[] = [];
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry: ProxiedRequest = { method: req.method ?? '', path, status: 0 };
    requests.push(entry);
    const f = fault({ method: entry.method, path, n: requests.length });
    if (f) {
      entry.status = f.status;
      req.resume();
      res.writeHead(f.status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${f.code}</Code><Message>injected by the test proxy</Message></Error>`);
      return;
    }
    const up = http.request({ hostname: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      entry.status = r.statusCode ?? 0;
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
