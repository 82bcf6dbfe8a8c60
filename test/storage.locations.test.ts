// Inputs fetched from s3:// and outputs published to s3:// (worker/storage/locations.ts), against a
// real versitygw. The publish rule under test: the model files go first, SHA256SUMS (the commit
// marker) last; a failed publish removes what it uploaded, so no half-written model is ever marked
// complete.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkerErrorReason } from '../crds/scan-summary.ts';
import { MANIFEST, StorageError, materialize, modelFileName, outputUri, publish, publishFile } from '../worker/storage/locations.ts';
import { S3Client } from '../worker/storage/s3.ts';
import { objectStoreSkip, startFaultProxy, startObjectStore, type ObjectStore } from './harness/objectstore.ts';

const ZOO_MODEL = fileURLToPath(new URL('../zoo/defect-fixed-name', import.meta.url));
const TRAIN = fileURLToPath(new URL('../data/devign/train.jsonl', import.meta.url));
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const quick = { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } };

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof StorageError, `expected a StorageError, got ${String(e)}`);
  return e;
}

test('model file names: plain names are kept, the prefix marker and pickles are skipped, escaping names are refused', () => {
  assert.equal(modelFileName('m/', 'm/config.json', 'x'), 'config.json');
  assert.equal(modelFileName('m/', 'm/model-00001-of-00002.safetensors', 'x'), 'model-00001-of-00002.safetensors');
  assert.equal(modelFileName('m/', 'm/', 'x'), undefined, 'the "directory" object itself');
  for (const pickle of ['pytorch_model.bin', 'model.pt', 'weights.ckpt', 'x.pkl']) assert.equal(modelFileName('m/', `m/${pickle}`, 'x'), undefined, pickle);
  for (const bad of ['m/..', 'm/.', 'm/a\\b', 'm/a\u0000b']) assert.throws(() => modelFileName('m/', bad, '--model s3://b/m'), /--model s3:\/\/b\/m: refusing object .*not a plain file name/, bad);
  assert.throws(() => modelFileName('m/', 'other/x', 'x'), /not under the prefix/);
});

test('an output prefix names its model and report: outputUri', () => {
  assert.equal(outputUri('s3://results/runs/a', 'model/'), 's3://results/runs/a/model/');
  assert.equal(outputUri('s3://results/runs/a/', 'report.json'), 's3://results/runs/a/report.json');
  assert.equal(outputUri('s3://results', 'model/'), 's3://results/model/');
});

test('local paths pass through; schemes other than s3:// and https:// are refused as invalid input', async () => {
  assert.equal(await materialize('/data/x.jsonl', '/unused', 'data', { flag: '--data' }), '/data/x.jsonl');
  const e = await failure(materialize('http://example.com/x.jsonl', '/unused', 'data', { flag: '--data' }));
  assert.equal(e.reason, WorkerErrorReason.InvalidInput);
  assert.match(e.message, /^--data http:\/\/example\.com\/x\.jsonl: http:\/\/ is not fetched/);
});

describe('s3:// inputs and outputs against a real S3 server (versitygw)', { skip: objectStoreSkip() }, () => {
  let store: ObjectStore;
  let s3: S3Client;
  let dir: string;
  const zooFiles = readdirSync(ZOO_MODEL).sort();

  before(async () => {
    store = await startObjectStore();
    for (const b of ['models', 'data', 'results']) await store.createBucket(b);
    s3 = S3Client.fromEnv(store.env);
    dir = mkdtempSync(join(tmpdir(), 'storage-locations-'));
    for (const f of zooFiles) await s3.putObjectFromFile('models', `zoo/fixed-name/${f}`, join(ZOO_MODEL, f));
    // Beside the checkpoint: a pickle (never fetched), a "subdirectory" and a sibling prefix (not part of the model).
    writeFileSync(join(dir, 'decoy'), 'not a checkpoint file');
    for (const k of ['zoo/fixed-name/pytorch_model.bin', 'zoo/fixed-name/extra/notes.txt', 'zoo/fixed-name-v2/config.json']) await s3.putObjectFromFile('models', k, join(dir, 'decoy'));
    await s3.putObjectFromFile('data', 'devign/train.jsonl', TRAIN);
  });
  after(async () => {
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an s3:// model is every object directly under the prefix (with or without the trailing slash), byte for byte', async () => {
    for (const uri of ['s3://models/zoo/fixed-name', 's3://models/zoo/fixed-name/']) {
      const dest = join(dir, 'inputs', uri.endsWith('/') ? 'slash' : 'plain');
      assert.equal(await materialize(uri, dest, 'model', { flag: '--model', env: store.env }), dest);
      assert.deepEqual(readdirSync(dest).sort(), zooFiles, 'no pickle, no subdirectory, no sibling prefix');
      for (const f of zooFiles) assert.equal(sha256(readFileSync(join(dest, f))), sha256(readFileSync(join(ZOO_MODEL, f))), f);
    }
  });

  test('an s3:// data URI is one object, downloaded under its own name', async () => {
    const file = await materialize('s3://data/devign/train.jsonl', join(dir, 'inputs', 'data'), 'data', { flag: '--data', env: store.env });
    assert.equal(file, join(dir, 'inputs', 'data', 'train.jsonl'));
    assert.equal(sha256(readFileSync(file)), sha256(readFileSync(TRAIN)));
    const e = await failure(materialize('s3://data/devign/', join(dir, 'inputs', 'x'), 'data', { flag: '--data', env: store.env }));
    assert.equal(e.reason, WorkerErrorReason.InvalidInput);
    assert.match(e.message, /a data URI names one object, not a prefix/);
  });

  test('fetch failures are InputUnavailable and name the flag and the URI, never the secret', async () => {
    const dest = join(dir, 'inputs', 'fail');
    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ['missing prefix', () => materialize('s3://models/zoo/nothing-here', dest, 'model', { flag: '--model', env: store.env, ...quick }), /^--model s3:\/\/models\/zoo\/nothing-here: no objects under s3:\/\/models\/zoo\/nothing-here\//],
      ['missing object', () => materialize('s3://data/devign/nope.jsonl', dest, 'data', { flag: '--data', env: store.env, ...quick }), /^--data s3:\/\/data\/devign\/nope\.jsonl: read s3:\/\/data\/devign\/nope\.jsonl: object not found/],
      ['missing bucket', () => materialize('s3://nobucket/m', dest, 'model', { flag: '--model', env: store.env, ...quick }), /^--model s3:\/\/nobucket\/m: list s3:\/\/nobucket\/m\/: bucket not found/],
      ['wrong secret', () => materialize('s3://models/zoo/fixed-name', dest, 'model', { flag: '--model', env: { ...store.env, AWS_SECRET_ACCESS_KEY: 'wrong-secret-value' }, ...quick }), /^--model s3:\/\/models\/zoo\/fixed-name: list s3:\/\/models\/zoo\/fixed-name\/: access denied/],
      ['no credentials', () => materialize('s3://models/zoo/fixed-name', dest, 'model', { flag: '--model', env: { AWS_ENDPOINT_URL_S3: store.endpoint } }), /^--model s3:\/\/models\/zoo\/fixed-name: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
      ['unreachable endpoint', () => materialize('s3://models/zoo/fixed-name', dest, 'model', { flag: '--model', env: { ...store.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1' }, ...quick }), /^--model s3:\/\/models\/zoo\/fixed-name: list .*ECONNREFUSED/],
    ];
    for (const [what, attempt, message] of cases) {
      const e = await failure(attempt());
      assert.equal(e.reason, WorkerErrorReason.InputUnavailable, `${what}: ${e.message}`);
      assert.match(e.message, message, what);
      assert.ok(!e.message.includes(store.secretKey) && !e.message.includes('wrong-secret-value'), `${what}: the message shows a secret`);
    }
  });

  /** A local output directory as runScan leaves it. */
  function localOutput(name: string): string {
    const out = join(dir, name);
    mkdirSync(join(out, 'model'), { recursive: true });
    for (const f of zooFiles) writeFileSync(join(out, 'model', f), readFileSync(join(ZOO_MODEL, f)));
    writeFileSync(join(out, 'report.json'), '{"report":true}\n');
    writeFileSync(join(out, 'summary.json'), '{"summary":true}\n');
    return out;
  }

  test('publish: a stale SHA256SUMS goes first, then the model files, the rest, and a new SHA256SUMS last', async () => {
    await s3.putObjectFromFile('results', 'runs/ok/SHA256SUMS', join(dir, 'decoy')); // an earlier run's marker
    const proxy = await startFaultProxy(store.endpoint);
    const out = localOutput('out-ok');
    try {
      const r = await publish(out, 's3://results/runs/ok', { flag: '--out', env: { ...store.env, AWS_ENDPOINT_URL_S3: proxy.endpoint } });
      const writes = proxy.requests.filter((x) => x.method === 'PUT' || x.method === 'DELETE').map((x) => `${x.method} ${x.path.replace('/results/runs/ok/', '')}`);
      assert.deepEqual(writes, ['DELETE SHA256SUMS', ...zooFiles.map((f) => `PUT model/${f}`), 'PUT report.json', 'PUT summary.json', 'PUT SHA256SUMS']);
      assert.equal(r.uploaded.at(-1), 's3://results/runs/ok/SHA256SUMS');
    } finally {
      await proxy.close();
    }
    // The marker lists every file of the output with the sha256 of what is in the bucket.
    await s3.getObjectToFile('results', 'runs/ok/SHA256SUMS', join(dir, 'got-sums'));
    const lines = readFileSync(join(dir, 'got-sums'), 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => l.slice(66)).sort(), [...zooFiles.map((f) => `model/${f}`), 'report.json', 'summary.json'].sort());
    for (const l of lines) {
      const [hash, path] = [l.slice(0, 64), l.slice(66)];
      const got = await s3.getObjectToFile('results', `runs/ok/${path}`, join(dir, 'got-file'));
      assert.equal(got.sha256, hash, path);
      assert.equal(hash, sha256(readFileSync(join(out, path))), path);
    }
  });

  test('a failed publish removes everything it uploaded and leaves no SHA256SUMS: UploadFailed naming --out', async () => {
    // The bucket refuses the report (after the model files went up).
    const proxy = await startFaultProxy(store.endpoint, (r) => (r.method === 'PUT' && r.path.endsWith('/report.json') ? { status: 403, code: 'AccessDenied' } : undefined));
    try {
      const e = await failure(publish(localOutput('out-fail'), 's3://results/runs/fail', { flag: '--out', env: { ...store.env, AWS_ENDPOINT_URL_S3: proxy.endpoint }, ...quick }));
      assert.equal(e.reason, WorkerErrorReason.UploadFailed);
      assert.match(e.message, /^--out s3:\/\/results\/runs\/fail: write s3:\/\/results\/runs\/fail\/report\.json: access denied, HTTP 403 \(AccessDenied\)/);
      assert.match(e.message, new RegExp(`removed the ${zooFiles.length} object\\(s\\) this run had uploaded`));
      assert.ok(proxy.requests.some((x) => x.method === 'PUT' && x.path.endsWith('model/model.safetensors') && x.status === 200), 'the model had gone up before the failure');
    } finally {
      await proxy.close();
    }
    assert.deepEqual(await s3.listObjects('results', 'runs/fail/'), []);
  });

  test('publish into a missing bucket fails as UploadFailed before anything is written', async () => {
    const e = await failure(publish(localOutput('out-nobucket'), 's3://nobucket/runs/x', { flag: '--out', env: store.env, ...quick }));
    assert.equal(e.reason, WorkerErrorReason.UploadFailed);
    assert.match(e.message, /^--out s3:\/\/nobucket\/runs\/x: delete s3:\/\/nobucket\/runs\/x\/SHA256SUMS: bucket not found/);
  });

  test('a report URI elsewhere is uploaded with the output and listed in its SHA256SUMS by URI; alone, by publishFile', async () => {
    const out = localOutput('out-extra');
    const report = join(dir, 'elsewhere.json');
    writeFileSync(report, '{"elsewhere":true}\n');
    const r = await publish(out, 's3://results/runs/extra/', { flag: '--out', env: store.env, extra: [{ file: report, uri: 's3://results/reports/extra.json' }] });
    assert.match(r.manifest, new RegExp(`^${sha256(readFileSync(report))}  s3://results/reports/extra\\.json$`, 'm'));
    await publishFile(report, 's3://results/reports/alone.json', { flag: '--report', env: store.env });
    assert.deepEqual((await s3.listObjects('results', 'reports/')).map((o) => o.key), ['reports/alone.json', 'reports/extra.json']);
    assert.equal(MANIFEST, 'SHA256SUMS');
  });
});
