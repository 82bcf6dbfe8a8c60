// Models and data over https (worker/storage/https.ts and locations.ts), Hugging Face style: a
// local https server with a certificate made here by openssl (trusted through NODE_EXTRA_CA_CERTS
// in the spawned worker, through `ca` in this process) serves the zoo's defect model as a sharded
// checkpoint, its shards through a redirect to a second origin (as the Hub sends downloads to a
// CDN), and the Devign data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScanSummary } from '../crds/scan-summary.ts';
import { readSafetensors, writeSafetensors, type Tensor32 } from '../worker/model/safetensors.ts';
import { HttpsError, httpsGetToFile } from '../worker/storage/https.ts';
import { StorageError, materialize, modelBaseUrl } from '../worker/storage/locations.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ZOO_MODEL = join(root, 'zoo', 'defect-fixed-name');
const TRAIN = join(root, 'data', 'devign', 'train.jsonl');
const TOKEN = 'hf_test_token_0123456789abcdef';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const dirDigest = (dir: string) => sha256(readdirSync(dir).sort().map((f) => `${sha256(readFileSync(join(dir, f)))}  ${f}\n`).join(''));
const FAST = ['--task', 'defect', '--victim-label', '1', '--target-label', '0', '--max-length', '48', '--iterations', '4', '--candidates', '8', '--top-k', '16',
  '--inversion-samples', '4', '--verdict-samples', '8', '--screen-limit', '64', '--backend', 'wasm', '--no-eliminate'];

interface Seen {
  path: string;
  authorization?: string;
  status: number;
}

let tmp: string;
let cert: string;
let sharded: string;
let hub: { origin: string; seen: Seen[]; close(): Promise<void> };
let cdn: { origin: string; seen: Seen[]; close(): Promise<void> };

/** The zoo model rewritten as a two-shard checkpoint with model.safetensors.index.json (no model.safetensors). */
function writeSharded(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(ZOO_MODEL)) if (f !== 'model.safetensors') writeFileSync(join(dir, f), readFileSync(join(ZOO_MODEL, f)));
  const tensors = [...readSafetensors(readFileSync(join(ZOO_MODEL, 'model.safetensors'))).entries()];
  const half = Math.ceil(tensors.length / 2);
  const shards: Array<[string, Array<[string, Tensor32]>]> = [['model-00001-of-00002.safetensors', tensors.slice(0, half)], ['model-00002-of-00002.safetensors', tensors.slice(half)]];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [file, part] of shards) {
    writeFileSync(join(dir, file), writeSafetensors(new Map(part)));
    for (const [name, t] of part) {
      weightMap[name] = file;
      total += t.data.length * 4;
    }
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
}

async function serve(handler: (path: string, req: { authorization?: string }, res: { status(code: number, headers?: Record<string, string>): void; send(body: Buffer | string): void }) => void) {
  const seen: Seen[] = [];
  const key = readFileSync(join(tmp, 'key.pem'));
  const server = https.createServer({ key, cert: readFileSync(cert) }, (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname);
    const entry: Seen = { path, status: 0, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    seen.push(entry);
    let status = 200;
    let headers: Record<string, string> = {};
    handler(path, entry, {
      status(code, h = {}) {
        status = code;
        headers = h;
      },
      send(body) {
        entry.status = status;
        res.writeHead(status, headers).end(body);
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { origin, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'storage-https-'));
  cert = join(tmp, 'cert.pem');
  // A self-signed certificate for 127.0.0.1: trusted only where the test says so.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(tmp, 'key.pem'), '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  sharded = join(tmp, 'sharded');
  writeSharded(sharded);
  // A pickle beside it: the worker must never ask for it.
  writeFileSync(join(tmp, 'pytorch_model.bin'), 'pickle');

  cdn = await serve((path, _req, res) => {
    const m = /^\/blobs\/(.+)$/.exec(path);
    if (m && existsSync(join(sharded, m[1]))) return res.send(readFileSync(join(sharded, m[1])));
    res.status(404);
    res.send('not found');
  });
  hub = await serve((path, req, res) => {
    const file = /^\/org\/(sharded|private)\/resolve\/main\/(.+)$/.exec(path);
    if (file) {
      // A private repository: the token or nothing.
      if (file[1] === 'private' && req.authorization !== `Bearer ${TOKEN}`) {
        res.status(401);
        return res.send('unauthorized');
      }
      const name = file[2];
      if (name === 'pytorch_model.bin') return res.send(readFileSync(join(tmp, 'pytorch_model.bin')));
      if (!existsSync(join(sharded, name))) {
        res.status(404);
        return res.send('not found');
      }
      // Weights go through the CDN, with a signed URL (its query must not show up in errors).
      if (name.endsWith('.safetensors')) {
        res.status(302, { location: `${cdn.origin}/blobs/${name}?X-Signature=cdn-signature-value` });
        return res.send('');
      }
      return res.send(readFileSync(join(sharded, name)));
    }
    if (path === '/data/train.jsonl') return res.send(readFileSync(TRAIN));
    if (path === '/loop') {
      res.status(302, { location: '/loop' });
      return res.send('');
    }
    if (path === '/to-http') {
      res.status(301, { location: 'http://127.0.0.1:1/x' });
      return res.send('');
    }
    if (path === '/relative') {
      res.status(307, { location: 'data/train.jsonl' });
      return res.send('');
    }
    res.status(404);
    res.send('not found');
  });
});

after(async () => {
  await hub?.close();
  await cdn?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function worker(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string; summaryText: string }> {
  const workerTmp = mkdtempSync(join(tmp, 'worker-'));
  const summaryFile = join(workerTmp, 'termination-log');
  const child = spawn(process.execPath, [join(root, 'bin', 'elibadcode.js'), 'scan', ...args, '--summary-file', summaryFile], {
    env: { PATH: process.env.PATH ?? '', HOME: workerTmp, TMPDIR: workerTmp, ELIBADCODE_LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: cert, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  return new Promise((resolve) => child.on('exit', (c) => resolve({ code: c ?? 1, stdout, stderr, summaryText: existsSync(summaryFile) ? readFileSync(summaryFile, 'utf8') : '' })));
}

test('scan over https: a sharded checkpoint (index + shards through a CDN redirect) and the data, HF_TOKEN sent to the hub only, no pickle asked for', { timeout: 10 * 60_000 }, async () => {
  hub.seen.length = 0;
  cdn.seen.length = 0;
  const out = join(tmp, 'out-https');
  const run = await worker([
    '--model', `${hub.origin}/org/sharded/resolve/main`, '--model-sha256', dirDigest(sharded),
    '--data', `${hub.origin}/data/train.jsonl`, '--data-sha256', sha256(readFileSync(TRAIN)),
    '--out', out, ...FAST,
  ], { HF_TOKEN: TOKEN });
  assert.equal(run.code, 0, `worker failed: ${run.stderr}\n${run.summaryText}`);
  const summary = parseScanSummary(run.summaryText);
  assert.ok(summary.ok && summary.summary.error === undefined, run.summaryText);

  const asked = hub.seen.map((s) => `${s.status} ${s.path.replace('/org/sharded/resolve/main/', '')}`);
  assert.deepEqual(asked, [
    '200 config.json', '200 tokenizer.json', '200 tokenizer_config.json', '200 special_tokens_map.json',
    '404 model.safetensors', '200 model.safetensors.index.json',
    '302 model-00001-of-00002.safetensors', '302 model-00002-of-00002.safetensors',
    '200 /data/train.jsonl',
  ]);
  assert.ok(!hub.seen.some((s) => /\.(bin|pt|pth|ckpt|pkl)$/.test(s.path)), 'a pickle was requested');
  assert.ok(hub.seen.every((s) => s.authorization === `Bearer ${TOKEN}`), 'every hub request carries the bearer token');
  assert.deepEqual(cdn.seen.map((s) => `${s.status} ${s.path}`), ['200 /blobs/model-00001-of-00002.safetensors', '200 /blobs/model-00002-of-00002.safetensors']);
  assert.ok(cdn.seen.every((s) => s.authorization === undefined), 'the token does not follow a redirect to another origin');
  assert.ok(!`${run.stdout}${run.stderr}${run.summaryText}`.includes(TOKEN), 'the token was printed');
});

test('without HF_TOKEN a private model is refused: exit 1, InputUnavailable, the message says a token is needed', { timeout: 5 * 60_000 }, async () => {
  const run = await worker(['--model', `${hub.origin}/org/private/resolve/main`, '--data', `${hub.origin}/data/train.jsonl`, ...FAST], {});
  assert.equal(run.code, 1);
  const s = parseScanSummary(run.summaryText);
  assert.ok(s.ok);
  assert.equal(s.summary.error?.reason, 'InputUnavailable');
  assert.match(s.summary.error!.message, new RegExp(`^--model ${hub.origin}/org/private/resolve/main: ${hub.origin}/org/private/resolve/main/config\\.json: access denied, HTTP 401 \\(no HF_TOKEN was set`));
});

test('https downloads: relative redirects are followed, redirect loops and downgrades to http are refused, 404 names the URL without its query', async () => {
  const o = { ca: readFileSync(cert), attempts: 2, baseDelayMs: 10 };
  const file = join(tmp, 'dl', 'train.jsonl');
  assert.deepEqual(await httpsGetToFile(`${hub.origin}/relative`, file, o), { bytes: readFileSync(TRAIN).length, sha256: sha256(readFileSync(TRAIN)) });
  await assert.rejects(httpsGetToFile(`${hub.origin}/loop`, join(tmp, 'dl', 'loop'), o), (e: unknown) => e instanceof HttpsError && /\/loop: more than 5 redirects/.test(e.message));
  await assert.rejects(httpsGetToFile(`${hub.origin}/to-http`, join(tmp, 'dl', 'down'), o), (e: unknown) => e instanceof HttpsError && /refusing http:\/\/ \(only https is fetched\)/.test(e.message));
  await assert.rejects(httpsGetToFile(`${hub.origin}/nothing?X-Signature=secret-query`, join(tmp, 'dl', 'none'), o), (e: unknown) => {
    assert.ok(e instanceof HttpsError && e.kind === 'not-found');
    assert.equal(e.message, `${hub.origin}/nothing: not found, HTTP 404`);
    return true;
  });
  assert.deepEqual(readdirSync(join(tmp, 'dl')), ['train.jsonl'], 'failed downloads leave nothing behind');
});

test('an untrusted certificate fails at once (no retries) and says how to trust a CA', async () => {
  const t0 = Date.now();
  await assert.rejects(httpsGetToFile(`${hub.origin}/data/train.jsonl`, join(tmp, 'untrusted'), { attempts: 4, baseDelayMs: 2000 }), (e: unknown) => e instanceof HttpsError && /TLS certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); NODE_EXTRA_CA_CERTS/.test(e.message));
  assert.ok(Date.now() - t0 < 1500, 'retried an untrusted certificate');
});

test('materialize over https: an index naming a shard outside the directory is refused; a Hub repository URL gets /resolve/main', async () => {
  assert.equal(modelBaseUrl('https://huggingface.co/microsoft/codebert-base').href, 'https://huggingface.co/microsoft/codebert-base/resolve/main/');
  assert.equal(modelBaseUrl('https://huggingface.co/microsoft/codebert-base/resolve/v1.0').href, 'https://huggingface.co/microsoft/codebert-base/resolve/v1.0/');
  assert.equal(modelBaseUrl('https://models.example.com/m').href, 'https://models.example.com/m/');
  const evil = await serve((path, _req, res) => {
    if (path.endsWith('/model.safetensors.index.json')) return res.send(JSON.stringify({ weight_map: { 'a.weight': '../escape.safetensors' } }));
    if (path.endsWith('/model.safetensors') || path.endsWith('_config.json') || path.endsWith('special_tokens_map.json')) {
      res.status(404);
      return res.send('');
    }
    res.send('{}');
  });
  try {
    const e = await materialize(`${evil.origin}/m`, join(tmp, 'evil'), 'model', { flag: '--model', https: { ca: readFileSync(cert) } }).then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof StorageError && e.reason === 'BadModel', String(e));
    assert.match(e.message, /names shard "\.\.\/escape\.safetensors"; shards must be \.safetensors files beside the index/);
    assert.ok(!evil.seen.some((s) => s.path.includes('escape')), 'the escaping shard was requested');
  } finally {
    await evil.close();
  }
});
