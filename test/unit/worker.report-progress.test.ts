// The worker's live-progress reporter (worker/pipeline/report-progress.ts) against a local HTTP
// server: token read from the file for every report (rotation), stage changes always sent,
// iterations throttled, ordering kept, 503 retried, and a server that is down never fails the scan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgressReporter, progressReporterFromEnv } from '../../worker/pipeline/report-progress.ts';
import { makeProgress } from '../../worker/pipeline/progress.ts';

interface Seen {
  auth: string | undefined;
  body: any;
  path: string;
}

async function server(answer: (req: IncomingMessage, n: number) => number = () => 202) {
  const seen: Seen[] = [];
  let n = 0;
  const s = createServer((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, body: JSON.parse(b), path: req.url ?? '' });
      const code = answer(req, n++);
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(code < 300 ? { accepted: true } : { error: `nope ${code}` }));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  return { seen, url: `http://127.0.0.1:${port}/v1/progress`, port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

function tokenFile(content: string) {
  const dir = mkdtempSync(join(tmpdir(), 'elibadcode-token-'));
  const file = join(dir, 'token');
  writeFileSync(file, content);
  return { file, dir };
}

function quietLog() {
  const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  return {
    lines,
    warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', msg, obj }),
    debug: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'debug', msg, obj }),
  };
}

test('posts stage and throttled iterations with the token from the file, re-read each time', async () => {
  const srv = await server();
  const tf = tokenFile('token-one\n');
  let clock = 0;
  const logger = quietLog();
  try {
    const r = new ProgressReporter({ url: srv.url, tokenFile: tf.file, scanUid: 'uid-a', attempt: 2, intervalMs: 10_000, now: () => clock, logger });
    r.stage('Inversion', { option: '1->0 SampleSpecific' });
    await r.flush();
    r.iteration({ option: '1->0 SampleSpecific', iteration: 1, iterations: 100, bestLoss: 0.5 });
    await r.flush();
    clock = 5_000; // inside the interval: not sent
    r.iteration({ option: '1->0 SampleSpecific', iteration: 2, iterations: 100, bestLoss: 0.4 });
    await r.flush();
    writeFileSync(tf.file, 'token-two'); // the kubelet rotated it
    clock = 11_000;
    r.iteration({ option: '1->0 SampleSpecific', iteration: 3, iterations: 100, bestLoss: Infinity });
    await r.flush();
    clock = 11_001; // the last iteration always goes out
    r.iteration({ option: '1->0 SampleSpecific', iteration: 100, iterations: 100, bestLoss: 0.01 });
    await r.flush();
    assert.equal(srv.seen.length, 4, JSON.stringify(srv.seen));
    assert.equal(srv.seen[0].path, '/v1/progress');
    assert.equal(srv.seen[0].auth, 'Bearer token-one');
    assert.deepEqual(srv.seen[0].body, { stage: 'Inversion', option: '1->0 SampleSpecific', scanUid: 'uid-a', attempt: 2 });
    assert.deepEqual(srv.seen[1].body, { stage: 'Inversion', option: '1->0 SampleSpecific', iteration: 1, totalIterations: 100, bestLoss: 0.5, scanUid: 'uid-a', attempt: 2 });
    assert.equal(srv.seen[2].auth, 'Bearer token-two');
    assert.equal(srv.seen[2].body.iteration, 3);
    assert.equal('bestLoss' in srv.seen[2].body, false, 'a non-finite loss is left out (JSON has no Infinity)');
    assert.equal(srv.seen[3].body.iteration, 100);
    assert.equal(r.sent, 4);
    assert.equal(logger.lines.length, 0);
  } finally {
    await srv.close();
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('one request in flight: reports made meanwhile collapse to the latest, in order', async () => {
  const srv = await server();
  const tf = tokenFile('t');
  try {
    const r = new ProgressReporter({ url: srv.url, tokenFile: tf.file, logger: quietLog() });
    r.stage('Loading');
    r.stage('Data');
    r.stage('Vocabulary');
    r.stage('Positions', { option: '1->0 Fixed' });
    await r.flush();
    assert.deepEqual(srv.seen.map((s) => s.body.stage), ['Loading', 'Positions']);
    assert.equal(srv.seen[1].body.option, '1->0 Fixed');
  } finally {
    await srv.close();
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('503 (a standby replica) is retried on a new connection', async () => {
  const srv = await server((_req, n) => (n < 2 ? 503 : 202));
  const tf = tokenFile('t');
  try {
    const r = new ProgressReporter({ url: srv.url, tokenFile: tf.file, logger: quietLog() });
    r.stage('Screen');
    await r.flush();
    assert.equal(srv.seen.length, 3);
    assert.equal(r.sent, 1);
    assert.equal(r.failed, 0);
  } finally {
    await srv.close();
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('server down, refusing, or the token missing: no throw, one warning, then debug lines', async () => {
  const srv = await server(() => 403);
  const tf = tokenFile('t');
  const logger = quietLog();
  try {
    const r = new ProgressReporter({ url: srv.url, tokenFile: tf.file, logger, timeoutMs: 500 });
    r.stage('Inversion');
    await r.flush();
    await srv.close(); // now nobody listens
    r.stage('Anchoring');
    await r.flush();
    rmSync(tf.file);
    r.stage('Evaluating');
    await r.flush();
    assert.equal(r.failed, 3);
    assert.equal(r.sent, 0);
    assert.deepEqual(logger.lines.map((l) => l.level), ['warn', 'debug', 'debug']);
    assert.match(String(logger.lines[0].obj.reason), /HTTP 403: nope 403/);
    assert.match(String(logger.lines[1].obj.reason), /ECONNREFUSED/);
    assert.match(String(logger.lines[2].obj.reason), /ENOENT/);
    assert.ok(!JSON.stringify(logger.lines).includes('Bearer'), 'the token is never logged');
  } finally {
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('a server that never answers costs at most the timeout', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const s = createServer(() => {
    /* never answers */
  });
  s.on('connection', (c) => sockets.add(c));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const tf = tokenFile('t');
  try {
    const logger = quietLog();
    const r = new ProgressReporter({ url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/v1/progress`, tokenFile: tf.file, logger, timeoutMs: 300, retries: 0 });
    const t0 = performance.now();
    r.stage('Unlearning');
    await r.flush();
    assert.ok(performance.now() - t0 < 2_000);
    assert.equal(r.failed, 1);
    assert.match(String(logger.lines[0].obj.reason), /within 300 ms/);
  } finally {
    for (const c of sockets) c.destroy();
    await new Promise<void>((r) => s.close(() => r()));
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('from the environment: only when the Job set the URL and token file; makeProgress tees into it', async () => {
  assert.equal(progressReporterFromEnv({}), undefined);
  assert.equal(progressReporterFromEnv({ ELIBADCODE_PROGRESS_URL: 'http://x/v1/progress' }), undefined);
  const srv = await server();
  const tf = tokenFile('t');
  try {
    const r = progressReporterFromEnv(
      { ELIBADCODE_PROGRESS_URL: srv.url, ELIBADCODE_PROGRESS_TOKEN_FILE: tf.file, ELIBADCODE_SCAN_UID: 'u1', ELIBADCODE_ATTEMPT: '3' },
      { logger: quietLog() },
    )!;
    assert.ok(r);
    const p = makeProgress({ quiet: true, reporter: r });
    p.stage('Vocabulary');
    await r.flush();
    p.iteration({ option: 'o', iteration: 1, iterations: 2, bestLoss: 1, loss: 1, seconds: 0.1 });
    await r.flush();
    p.done();
    assert.deepEqual(srv.seen.map((x) => x.body), [
      { stage: 'Vocabulary', scanUid: 'u1', attempt: 3 },
      { stage: 'Vocabulary', option: 'o', iteration: 1, totalIterations: 2, bestLoss: 1, scanUid: 'u1', attempt: 3 },
    ]);
  } finally {
    await srv.close();
    rmSync(tf.dir, { recursive: true, force: true });
  }
});

test('on its own thread: reports leave while the main thread computes synchronously, and the thread never holds the process', async () => {
  // The server runs in a child process: this thread is about to block.
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:http').createServer((req, res) => {
      let b = ''; req.on('data', (d) => (b += d));
      req.on('end', () => { process.stdout.write(JSON.stringify({ at: Date.now(), auth: req.headers.authorization, body: JSON.parse(b) }) + '\\n'); res.writeHead(202); res.end('{}'); });
    });
    s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: any[] = [];
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const tf = tokenFile('thread-token');
  try {
    const { port } = await waitForLine(lines, (l) => l.port);
    const { startProgressThread } = await import('../../worker/pipeline/report-progress.ts');
    const sink = startProgressThread({ url: `http://127.0.0.1:${port}/v1/progress`, tokenFile: tf.file, scanUid: 'u', attempt: 1 });
    await sink.flush(); // the thread is up
    sink.stage('Inversion', { option: 'o', ignored: 1 });
    const start = Date.now();
    while (Date.now() - start < 1500) {
      /* a wasm kernel: no event loop here */
    }
    const end = Date.now();
    await sink.flush();
    const got = await waitForLine(lines, (l) => l.body);
    assert.deepEqual(got.body, { stage: 'Inversion', option: 'o', scanUid: 'u', attempt: 1 });
    assert.equal(got.auth, 'Bearer thread-token');
    assert.ok(got.at < end - 500, `the report arrived during the block (${got.at - start} ms after it began, block ${end - start} ms)`);
  } finally {
    child.kill();
    rmSync(tf.dir, { recursive: true, force: true });
  }
  // A process that only started the thread exits at once.
  const { spawnSync } = await import('node:child_process');
  const mod = new URL('../../worker/pipeline/report-progress.ts', import.meta.url).pathname;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const { startProgressThread } = await import(${JSON.stringify(mod)}); startProgressThread({ url: 'http://127.0.0.1:9/v1/progress', tokenFile: '/nonexistent' }).stage('Loading');`], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.now() - t0 < 10_000);
});

async function waitForLine(lines: any[], pick: (l: any) => unknown, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = lines.find((x) => pick(x));
    if (l) return l;
    if (Date.now() > deadline) throw new Error(`no such line in ${JSON.stringify(lines)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
