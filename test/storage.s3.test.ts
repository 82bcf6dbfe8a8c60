// The S3 client (worker/storage/s3.ts) against a real S3 server: versitygw, built from the Go module
// proxy (scripts/s3/build.sh), on loopback. Nothing here stands in for the server; a proxy in front
// of it answers 503 a few times to show that server errors are retried.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, S3Error, parseS3Uri, s3ConfigFromEnv } from '../worker/storage/s3.ts';
import { EMPTY_SHA256, signRequest } from '../worker/storage/sigv4.ts';
import { objectStoreSkip, startFaultProxy, startObjectStore, type ObjectStore } from './harness/objectstore.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** Retries kept short: the failure tests wait for every attempt. */
const quick = { retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 50 } };

test('configuration comes from the standard AWS variables', () => {
  const base = { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' };
  assert.equal(s3ConfigFromEnv(base).region, 'us-east-1', 'region defaults to us-east-1');
  assert.equal(s3ConfigFromEnv({ ...base, AWS_DEFAULT_REGION: 'eu-west-3' }).region, 'eu-west-3');
  assert.equal(s3ConfigFromEnv({ ...base, AWS_DEFAULT_REGION: 'eu-west-3', AWS_REGION: 'ap-south-1' }).region, 'ap-south-1', 'AWS_REGION wins');
  assert.equal(s3ConfigFromEnv(base).endpoint, undefined, 'no endpoint: AWS itself');
  assert.equal(s3ConfigFromEnv({ ...base, AWS_ENDPOINT_URL: 'http://a:1' }).endpoint?.host, 'a:1');
  assert.equal(s3ConfigFromEnv({ ...base, AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'https://s3.b:2' }).endpoint?.host, 's3.b:2', 'the S3-specific endpoint wins');
  assert.equal(s3ConfigFromEnv({ ...base, AWS_SESSION_TOKEN: 'T' }).credentials.sessionToken, 'T');
  assert.throws(() => s3ConfigFromEnv({ AWS_ACCESS_KEY_ID: 'AK' }), /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
});

test('s3:// URIs split into bucket and key; anything else is refused', () => {
  assert.deepEqual(parseS3Uri('s3://models/runs/a/model/'), { bucket: 'models', key: 'runs/a/model/' });
  assert.deepEqual(parseS3Uri('s3://models'), { bucket: 'models', key: '' });
  assert.throws(() => parseS3Uri('s3://Bad_Bucket/k'), /not an s3:\/\/bucket\/key URI/);
  assert.throws(() => parseS3Uri('https://models/k'), /not an s3:\/\/bucket\/key URI/);
});

describe('against a real S3 server (versitygw)', { skip: objectStoreSkip() }, () => {
  let store: ObjectStore;
  let s3: S3Client;
  let dir: string;

  before(async () => {
    store = await startObjectStore();
    await store.createBucket('models');
    s3 = S3Client.fromEnv(store.env, quick);
    dir = mkdtempSync(join(tmpdir(), 'storage-s3-'));
  });
  after(async () => {
    await store?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an object round-trips byte for byte; the sha256 is computed while streaming, in both directions', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17); // several chunks of a stream
    const src = join(dir, 'src.bin');
    writeFileSync(src, bytes);
    const put = await s3.putObjectFromFile('models', 'round/trip.bin', src);
    assert.deepEqual(put, { bytes: bytes.length, sha256: sha256(bytes) });
    const dst = join(dir, 'got', 'trip.bin');
    const got = await s3.getObjectToFile('models', 'round/trip.bin', dst);
    assert.deepEqual(got, { bytes: bytes.length, sha256: sha256(bytes) });
    assert.ok(readFileSync(dst).equals(bytes));
    assert.deepEqual(readdirSync(join(dir, 'got')), ['trip.bin'], 'no temporary left beside the download');
  });

  test('keys with spaces, `$`, `+`, `=` and non-ASCII characters are signed and addressed correctly', async () => {
    const src = join(dir, 'odd.txt');
    writeFileSync(src, 'odd key');
    for (const key of ['odd/a b.txt', 'odd/cost$1+2=3.txt', 'odd/é ü 漢.txt', 'odd/(paren)~tilde.json']) {
      await s3.putObjectFromFile('models', key, src);
      const got = await s3.getObjectToFile('models', key, join(dir, 'odd-got'));
      assert.equal(got.sha256, sha256('odd key'), key);
    }
    assert.deepEqual((await s3.listObjects('models', 'odd/')).map((o) => o.key).sort(), ['odd/(paren)~tilde.json', 'odd/a b.txt', 'odd/cost$1+2=3.txt', 'odd/é ü 漢.txt']);
  });

  test('listing follows continuation tokens: 7 objects with max-keys 2 come back whole, in key order', async () => {
    const src = join(dir, 'small.txt');
    writeFileSync(src, 'x');
    const keys = Array.from({ length: 7 }, (_, i) => `paged/file-${i}.txt`);
    for (const k of keys) await s3.putObjectFromFile('models', k, src);
    // The server does paginate at max-keys 2 (one raw signed request), so a complete answer means the client followed the tokens.
    const firstPage = await rawList(store, 'models', [['list-type', '2'], ['max-keys', '2'], ['prefix', 'paged/']]);
    assert.match(firstPage, /<IsTruncated>true<\/IsTruncated>/);
    assert.equal(firstPage.match(/<Contents>/g)?.length, 2);
    const listed = await s3.listObjects('models', 'paged/', { maxKeys: 2 });
    assert.deepEqual(listed.map((o) => o.key), keys);
    assert.ok(listed.every((o) => o.size === 1));
  });

  test('with delimiter `/`, a listing holds only the objects directly under the prefix', async () => {
    const src = join(dir, 'small.txt');
    writeFileSync(src, 'x');
    for (const k of ['tree/a.json', 'tree/b.json', 'tree/sub/c.json', 'treehouse.json']) await s3.putObjectFromFile('models', k, src);
    assert.deepEqual((await s3.listObjects('models', 'tree/', { delimiter: '/', maxKeys: 1 })).map((o) => o.key), ['tree/a.json', 'tree/b.json']);
  });

  test('a missing object is a clear not-found error naming its URI, and leaves no file behind', async () => {
    const dst = join(dir, 'missing', 'x.bin');
    const e = await s3.getObjectToFile('models', 'no/such/key.bin', dst).then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof S3Error);
    assert.equal(e.kind, 'not-found');
    assert.equal(e.status, 404);
    assert.match(e.message, /s3:\/\/models\/no\/such\/key\.bin: object not found/);
    assert.equal(existsSync(dst) || existsSync(`${dst}.part`), false);
    const bucket = await s3.listObjects('no-such-bucket', '').then(() => undefined, (x: unknown) => x);
    assert.ok(bucket instanceof S3Error && bucket.kind === 'not-found' && /bucket not found/.test(bucket.message), String(bucket));
  });

  test('rejected credentials are a clear access-denied error that names the URI and leaks neither secret nor signature', async () => {
    const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
    const cases = [
      { what: 'wrong secret', env: { ...store.env, AWS_SECRET_ACCESS_KEY: wrongSecret } },
      { what: 'unknown access key', env: { ...store.env, AWS_ACCESS_KEY_ID: 'AKUNKNOWNUNKNOWN' } },
    ];
    for (const c of cases) {
      const bad = S3Client.fromEnv(c.env, quick);
      for (const attempt of [() => bad.getObjectToFile('models', 'round/trip.bin', join(dir, 'denied.bin')), () => bad.listObjects('models', 'paged/'), () => bad.putObjectFromFile('models', 'denied.txt', join(dir, 'small.txt'))]) {
        const e = await attempt().then(() => undefined, (x: unknown) => x);
        assert.ok(e instanceof S3Error, c.what);
        assert.equal(e.kind, 'forbidden', `${c.what}: ${e.message}`);
        assert.match(e.message, /s3:\/\/models\/\S*: access denied/);
        assert.match(e.message, /credentials/);
        const text = `${e.message} ${e.stack} ${JSON.stringify(e)}`;
        for (const secret of [store.secretKey, wrongSecret]) assert.ok(!text.includes(secret), `${c.what}: the error shows a secret key`);
        assert.doesNotMatch(text, /Signature=|[0-9a-f]{64}/, `${c.what}: the error shows a signature`);
      }
    }
    assert.equal(existsSync(join(dir, 'denied.bin')), false);
  });

  test('delete removes an object; deleting a missing one succeeds', async () => {
    const src = join(dir, 'small.txt');
    writeFileSync(src, 'x');
    await s3.putObjectFromFile('models', 'gone/x.txt', src);
    await s3.deleteObject('models', 'gone/x.txt');
    assert.deepEqual(await s3.listObjects('models', 'gone/'), []);
    await s3.deleteObject('models', 'gone/x.txt');
  });

  test('server errors (503) are retried with backoff; the request then succeeds', async () => {
    const slowDown = (failures: number) => (r: { n: number }) => (r.n <= failures ? { status: 503, code: 'SlowDown' } : undefined);
    const proxy = await startFaultProxy(store.endpoint, slowDown(2));
    try {
      const via = S3Client.fromEnv({ ...store.env, AWS_ENDPOINT_URL_S3: proxy.endpoint }, quick);
      const got = await via.getObjectToFile('models', 'round/trip.bin', join(dir, 'retried.bin'));
      assert.equal(got.sha256, sha256(readFileSync(join(dir, 'src.bin'))));
      assert.deepEqual(proxy.requests.map((r) => r.status), [503, 503, 200], 'two 503 answers, then the real one');
    } finally {
      await proxy.close();
    }
    const tooFlaky = await startFaultProxy(store.endpoint, slowDown(10));
    try {
      const e = await S3Client.fromEnv({ ...store.env, AWS_ENDPOINT_URL_S3: tooFlaky.endpoint }, quick).listObjects('models', '').then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof S3Error && e.kind === 'unavailable' && /HTTP 503 \(SlowDown\)/.test(e.message), String(e));
      assert.equal(tooFlaky.requests.length, 3, 'bounded: as many attempts as the policy allows');
    } finally {
      await tooFlaky.close();
    }
  });

  test('an unreachable endpoint fails after the bounded retries with a network error', async () => {
    const closed = S3Client.fromEnv({ ...store.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1' }, quick);
    const e = await closed.getObjectToFile('models', 'round/trip.bin', join(dir, 'never.bin')).then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof S3Error && e.kind === 'unavailable', String(e));
    assert.match(e.message, /get s3:\/\/models\/round\/trip\.bin: .*ECONNREFUSED.*after 3 attempts/);
  });
});

/** One ListObjectsV2 request signed by hand, to see what the server itself answers. */
async function rawList(store: ObjectStore, bucket: string, query: Array<[string, string]>): Promise<string> {
  const u = new URL(store.endpoint);
  const headers = signRequest({ method: 'GET', host: u.host, path: `/${bucket}`, query, payloadSha256: EMPTY_SHA256 }, { accessKeyId: store.accessKey, secretAccessKey: store.secretKey }, store.region);
  const qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).sort().join('&');
  const r = await fetch(`${store.endpoint}/${bucket}?${qs}`, { headers });
  assert.equal(r.status, 200);
  return r.text();
}
