// `elibadcode scan` end to end with its model, data and output in S3 (a real versitygw): the worker
// process is spawned with the AWS_* variables the operator would pass from the credentials Secret.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScanSummary, type ScanSummary } from '../crds/scan-summary.ts';
import { ScanReport } from '../worker/pipeline/report.ts';
import { S3Client } from '../worker/storage/s3.ts';
import { objectStoreSkip, startObjectStore, type ObjectStore } from './harness/objectstore.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ZOO_MODEL = join(root, 'zoo', 'defect-fixed-name');
const TRAIN = join(root, 'data', 'devign', 'train.jsonl');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** The checkpoint digest saveCheckpoint reports: sha256 over "<sha256>  <file>\n" lines, sorted by name. */
const dirDigest = (dir: string) => sha256(readdirSync(dir).sort().map((f) => `${sha256(readFileSync(join(dir, f)))}  ${f}\n`).join(''));
// Demo-sized and then some: the point is where things come from and go, not the scan's quality.
const FAST = ['--task', 'defect', '--victim-label', '1', '--target-label', '0', '--max-length', '48', '--iterations', '4', '--candidates', '8', '--top-k', '16',
  '--inversion-samples', '4', '--verdict-samples', '8', '--screen-limit', '64', '--backend', 'wasm'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  summary?: ScanSummary;
  summaryText: string;
}

describe('elibadcode scan with s3:// model, data and output (versitygw)', { skip: objectStoreSkip() }, () => {
  let store: ObjectStore;
  let s3: S3Client;
  let tmp: string;

  before(async () => {
    store = await startObjectStore();
    for (const b of ['models', 'data', 'results']) await store.createBucket(b);
    s3 = S3Client.fromEnv(store.env);
    for (const f of readdirSync(ZOO_MODEL)) await s3.putObjectFromFile('models', `zoo/defect-fixed-name/${f}`, join(ZOO_MODEL, f));
    await s3.putObjectFromFile('data', 'devign/train.jsonl', TRAIN);
    tmp = mkdtempSync(join(tmpdir(), 'storage-scan-'));
  });
  after(async () => {
    await store?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs the worker as the Job's container would: its own TMPDIR, the credentials in the environment. */
  async function worker(name: string, args: string[], env: Record<string, string> = store.env): Promise<Run & { workerTmp: string }> {
    const workerTmp = join(tmp, `${name}-tmp`);
    mkdirSync(workerTmp, { recursive: true });
    const summaryFile = join(tmp, `${name}.termination-log`);
    const child = spawn(process.execPath, [join(root, 'bin', 'elibadcode.js'), 'scan', ...args, '--summary-file', summaryFile], {
      env: { PATH: process.env.PATH ?? '', HOME: workerTmp, TMPDIR: workerTmp, ELIBADCODE_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    let summaryText = '';
    try {
      summaryText = readFileSync(summaryFile, 'utf8');
    } catch {
      /* no summary: asserted by the caller */
    }
    const parsed = parseScanSummary(summaryText);
    return { code, stdout, stderr, summaryText, workerTmp, ...(parsed.ok ? { summary: parsed.summary } : {}) };
  }

  test('model and data are fetched from S3, digests checked on the download; the cleaned model and report land under the s3:// output, SHA256SUMS last', { timeout: 10 * 60_000 }, async () => {
    const run = await worker('ok', [
      '--model', 's3://models/zoo/defect-fixed-name', '--model-sha256', dirDigest(ZOO_MODEL),
      '--data', 's3://data/devign/train.jsonl', '--data-sha256', sha256(readFileSync(TRAIN)),
      '--out', 's3://results/runs/scan-1', '--force-eliminate', '--epochs', '1', ...FAST,
    ]);
    assert.equal(run.code, 0, `worker failed: ${run.stderr}\n${run.summaryText}`);
    const summary = run.summary!;
    assert.ok(summary, `no valid summary: ${run.summaryText}`);
    assert.equal(summary.error, undefined);
    assert.equal(typeof summary.eliminated, 'boolean', 'elimination was judged (the verdict score recomputed on the cleaned model)');
    // The status points at S3, not at the worker's scratch directory.
    assert.equal(summary.artifact?.modelUri, 's3://results/runs/scan-1/model/');
    assert.equal(summary.artifact?.reportUri, 's3://results/runs/scan-1/report.json');
    assert.match(run.stdout, /cleaned model: s3:\/\/results\/runs\/scan-1\/model\/ \(sha256 [0-9a-f]{64}\)/);

    const keys = (await s3.listObjects('results', 'runs/scan-1/')).map((o) => o.key.slice('runs/scan-1/'.length)).sort();
    const modelFiles = keys.filter((k) => k.startsWith('model/')).map((k) => k.slice('model/'.length));
    assert.deepEqual(keys.filter((k) => !k.startsWith('model/')), ['SHA256SUMS', 'report.json', 'summary.json']);
    assert.deepEqual(modelFiles, readdirSync(ZOO_MODEL).sort(), 'the cleaned checkpoint has the layout it was loaded with');

    // The digest in the status is the digest of what is in the bucket.
    const got = join(tmp, 'got-model');
    for (const f of modelFiles) await s3.getObjectToFile('results', `runs/scan-1/model/${f}`, join(got, f));
    assert.equal(summary.artifact?.sha256, dirDigest(got));
    assert.notEqual(sha256(readFileSync(join(got, 'model.safetensors'))), sha256(readFileSync(join(ZOO_MODEL, 'model.safetensors'))), 'unlearning changed the weights');

    // SHA256SUMS lists every file with its digest.
    await s3.getObjectToFile('results', 'runs/scan-1/SHA256SUMS', join(tmp, 'SHA256SUMS'));
    const sums = new Map(readFileSync(join(tmp, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => [l.slice(66), l.slice(0, 64)] as const));
    assert.deepEqual([...sums.keys()].sort(), keys.filter((k) => k !== 'SHA256SUMS'));
    for (const f of modelFiles) assert.equal(sums.get(`model/${f}`), sha256(readFileSync(join(got, f))), f);

    // The uploaded report is the full report; the uploaded summary is the termination message.
    await s3.getObjectToFile('results', 'runs/scan-1/report.json', join(tmp, 'report.json'));
    const report = ScanReport.parse(JSON.parse(readFileSync(join(tmp, 'report.json'), 'utf8')));
    assert.equal(report.output?.sha256, summary.artifact?.sha256);
    assert.deepEqual(report.sources, { model: 's3://models/zoo/defect-fixed-name', data: 's3://data/devign/train.jsonl' }, 'the report names where its inputs came from');
    assert.equal(sums.get('report.json'), sha256(readFileSync(join(tmp, 'report.json'))));
    await s3.getObjectToFile('results', 'runs/scan-1/summary.json', join(tmp, 'summary.json'));
    assert.equal(readFileSync(join(tmp, 'summary.json'), 'utf8').trim(), run.summaryText.trim());

    // The temporary scratch directory (no --scratch given) is gone.
    assert.deepEqual(readdirSync(run.workerTmp).filter((f) => f.startsWith('elibadcode-scan-')), []);
  });

  test('a wrong --model-sha256 on an s3:// model: exit 1, DigestMismatch naming the URI, nothing uploaded', { timeout: 5 * 60_000 }, async () => {
    const run = await worker('digest', ['--model', 's3://models/zoo/defect-fixed-name', '--model-sha256', '0'.repeat(64), '--data', 's3://data/devign/train.jsonl', '--out', 's3://results/runs/bad-digest', ...FAST]);
    assert.equal(run.code, 1);
    assert.equal(run.summary?.error?.reason, 'DigestMismatch', run.summaryText);
    assert.match(run.summary!.error!.message, /^--model s3:\/\/models\/zoo\/defect-fixed-name: sha256 does not match --model-sha256 0{64}/);
    assert.deepEqual(await s3.listObjects('results', 'runs/bad-digest/'), []);
  });

  test('an s3:// output without credentials fails before the scan starts: UploadFailed naming --out', { timeout: 5 * 60_000 }, async () => {
    const run = await worker('nocreds', ['--model', ZOO_MODEL, '--data', TRAIN, '--out', 's3://results/runs/nocreds', ...FAST], { AWS_ENDPOINT_URL_S3: store.endpoint });
    assert.equal(run.code, 1);
    assert.equal(run.summary?.error?.reason, 'UploadFailed', run.summaryText);
    assert.match(run.summary!.error!.message, /^--out s3:\/\/results\/runs\/nocreds: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    assert.equal(run.stdout, '', 'no scan ran');
  });

  test('unusable inputs fail fast with InputUnavailable naming the flag and URI, and never show the secret', { timeout: 5 * 60_000 }, async () => {
    const missing = await worker('missing', ['--model', 's3://models/zoo/no-such-model', '--data', 's3://data/devign/train.jsonl', '--out', 's3://results/runs/missing', ...FAST]);
    assert.equal(missing.code, 1);
    assert.equal(missing.summary?.error?.reason, 'InputUnavailable', missing.summaryText);
    assert.match(missing.summary!.error!.message, /^--model s3:\/\/models\/zoo\/no-such-model: no objects under/);

    const wrongSecret = 'not-the-secret-0123456789';
    const denied = await worker('denied', ['--model', 's3://models/zoo/defect-fixed-name', '--data', 's3://data/devign/train.jsonl', '--out', 's3://results/runs/denied', ...FAST], { ...store.env, AWS_SECRET_ACCESS_KEY: wrongSecret });
    assert.equal(denied.code, 1);
    assert.equal(denied.summary?.error?.reason, 'InputUnavailable', denied.summaryText);
    assert.match(denied.summary!.error!.message, /^--model s3:\/\/models\/zoo\/defect-fixed-name: list s3:\/\/models\/zoo\/defect-fixed-name\/: access denied/);
    for (const text of [denied.stdout, denied.stderr, denied.summaryText]) {
      assert.ok(!text.includes(wrongSecret) && !text.includes(store.secretKey), 'a secret key was printed');
      assert.doesNotMatch(text, /Signature=/);
    }
    for (const run of ['missing', 'denied']) assert.deepEqual(await s3.listObjects('results', `runs/${run}/`), [], `${run}: a failed run uploads nothing`);
  });
});
