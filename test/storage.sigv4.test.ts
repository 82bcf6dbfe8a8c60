// AWS Signature Version 4 for S3 (worker/storage/sigv4.ts) against the example signatures AWS
// publishes in "Examples: Signature Calculations in AWS Signature Version 4"
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html): one wrong
// byte in the canonical request, the string to sign or the key derivation changes the signature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EMPTY_SHA256, canonicalQuery, canonicalRequest, headersToSign, signRequest, uriEncode, type Credentials, type SignableRequest } from '../worker/storage/sigv4.ts';

// The documentation's example account and time (not a real key).
const credentials: Credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const now = new Date('2013-05-24T00:00:00Z');
const host = 'examplebucket.s3.amazonaws.com';

const signatureOf = (headers: Record<string, string>) => /Signature=([0-9a-f]{64})$/.exec(headers.authorization)?.[1];

test('GET Object with a Range header: the documented canonical request, its hash and signature f0e8bdb8…', () => {
  const r: SignableRequest = { method: 'GET', host, path: '/test.txt', headers: { Range: 'bytes=0-9' }, payloadSha256: EMPTY_SHA256 };
  const { text, signedHeaders } = canonicalRequest(r, headersToSign(r, credentials, now));
  assert.equal(
    text,
    ['GET', '/test.txt', '', 'host:examplebucket.s3.amazonaws.com', 'range:bytes=0-9', `x-amz-content-sha256:${EMPTY_SHA256}`, 'x-amz-date:20130524T000000Z', '', 'host;range;x-amz-content-sha256;x-amz-date', EMPTY_SHA256].join('\n'),
  );
  assert.equal(signedHeaders, 'host;range;x-amz-content-sha256;x-amz-date');
  // The hash the documentation shows on the last line of its StringToSign.
  assert.equal(createHash('sha256').update(text).digest('hex'), '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
  const h = signRequest(r, credentials, 'us-east-1', now);
  assert.equal(
    h.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
  assert.equal(h['x-amz-date'], '20130524T000000Z');
  assert.equal(h['x-amz-content-sha256'], EMPTY_SHA256);
});

test('PUT Object signs the payload sha256, a Date header and encodes `$` in the key (signature 98ad7217…)', () => {
  const body = 'Welcome to Amazon S3.';
  const payloadSha256 = createHash('sha256').update(body).digest('hex');
  assert.equal(payloadSha256, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
  const h = signRequest(
    { method: 'PUT', host, path: '/test$file.text', headers: { Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' }, payloadSha256 },
    credentials,
    'us-east-1',
    now,
  );
  assert.match(h.authorization, /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,/);
  assert.equal(signatureOf(h), '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
});

test('GET Bucket lifecycle: a query parameter without a value is signed as `lifecycle=` (signature fea454ca…)', () => {
  const h = signRequest({ method: 'GET', host, path: '/', query: [['lifecycle', '']], payloadSha256: EMPTY_SHA256 }, credentials, 'us-east-1', now);
  assert.equal(signatureOf(h), 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
});

test('GET Bucket (list objects): query parameters are sorted whatever order they come in (signature 34b48302…)', () => {
  for (const query of [[['max-keys', '2'], ['prefix', 'J']], [['prefix', 'J'], ['max-keys', '2']]] as Array<Array<[string, string]>>) {
    const h = signRequest({ method: 'GET', host, path: '/', query, payloadSha256: EMPTY_SHA256 }, credentials, 'us-east-1', now);
    assert.equal(signatureOf(h), '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
  }
});

test('the signature depends on the region, the secret and the time', () => {
  const r: SignableRequest = { method: 'GET', host, path: '/test.txt', payloadSha256: EMPTY_SHA256 };
  const base = signatureOf(signRequest(r, credentials, 'us-east-1', now));
  assert.notEqual(signatureOf(signRequest(r, credentials, 'eu-west-1', now)), base);
  assert.notEqual(signatureOf(signRequest(r, { ...credentials, secretAccessKey: 'x' + credentials.secretAccessKey.slice(1) }, 'us-east-1', now)), base);
  assert.notEqual(signatureOf(signRequest(r, credentials, 'us-east-1', new Date('2013-05-24T00:00:01Z'))), base);
});

test('a session token is sent as x-amz-security-token and signed', () => {
  const h = signRequest({ method: 'GET', host, path: '/k', payloadSha256: EMPTY_SHA256 }, { ...credentials, sessionToken: 'token/with+chars' }, 'us-east-1', now);
  assert.equal(h['x-amz-security-token'], 'token/with+chars');
  assert.match(h.authorization, /SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/);
});

test('URI encoding: unreserved characters stay, everything else is %XX of its UTF-8 bytes; `/` only stays in paths', () => {
  assert.equal(uriEncode('a-b_c.d~e', false), 'a-b_c.d~e');
  assert.equal(uriEncode('dir/a b+c=é$', true), 'dir/a%20b%2Bc%3D%C3%A9%24');
  assert.equal(uriEncode('dir/a', false), 'dir%2Fa');
  // The canonical query is also the query string that is sent: encoded once, sorted by name then value.
  assert.equal(canonicalQuery([['prefix', 'models/m 1/'], ['list-type', '2'], ['continuation-token', 'a+b=']]), 'continuation-token=a%2Bb%3D&list-type=2&prefix=models%2Fm%201%2F');
});

test('the canonical URI is not normalised: S3 keys may hold `//` and `.`', () => {
  const r: SignableRequest = { method: 'GET', host, path: '/b/a//./x', payloadSha256: EMPTY_SHA256 };
  assert.equal(canonicalRequest(r, headersToSign(r, credentials, now)).text.split('\n')[1], '/b/a//./x');
});
