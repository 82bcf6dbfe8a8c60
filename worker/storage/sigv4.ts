// AWS Signature Version 4 for S3 requests (header-based, signed payload), on node:crypto only.
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
// S3 differs from the generic SigV4 in two ways that matter here: the canonical URI is the path
// URI-encoded once (no normalisation of `.`/`..` or double slashes), and x-amz-content-sha256 is
// always sent and signed.
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignableRequest {
  method: string;
  host: string;
  /** The path as raw characters (an S3 key is not pre-encoded): '/bucket/dir/a b$.json'. */
  path: string;
  query?: ReadonlyArray<readonly [string, string]>;
  /** Extra headers to send and sign (range, date, x-amz-storage-class, ...). */
  headers?: Readonly<Record<string, string>>;
  /** Hex sha256 of the body (of the empty string for a bodiless request). */
  payloadSha256: string;
}

export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/** RFC 3986 percent-encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - _ . ~ (and '/' in paths). */
export function uriEncode(text: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** name=value pairs encoded and sorted by name, then value; this is also the query string to send. */
export function canonicalQuery(query: ReadonlyArray<readonly [string, string]> = []): string {
  return query
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** 20130524T000000Z */
export function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function hmac(key: Buffer | string, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** Every header that is sent and signed: the caller's, host, x-amz-date, x-amz-content-sha256 and the session token. */
export function headersToSign(r: SignableRequest, credentials: Credentials, now: Date): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) h[k.toLowerCase()] = v;
  h.host = r.host;
  h['x-amz-date'] = amzDate(now);
  h['x-amz-content-sha256'] = r.payloadSha256;
  if (credentials.sessionToken) h['x-amz-security-token'] = credentials.sessionToken;
  return h;
}

export function canonicalRequest(r: SignableRequest, headers: Record<string, string>): { text: string; signedHeaders: string } {
  const names = Object.keys(headers).map((k) => k.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names.map((n) => `${n}:${lower[n].trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const text = [r.method.toUpperCase(), uriEncode(r.path, true), canonicalQuery(r.query), canonicalHeaders, signedHeaders, r.payloadSha256].join('\n');
  return { text, signedHeaders };
}

export function credentialScope(now: Date, region: string, service = 's3'): string {
  return `${amzDate(now).slice(0, 8)}/${region}/${service}/aws4_request`;
}

export function stringToSign(canonicalRequestText: string, now: Date, region: string, service = 's3'): string {
  return ['AWS4-HMAC-SHA256', amzDate(now), credentialScope(now, region, service), sha256Hex(canonicalRequestText)].join('\n');
}

export function signingKey(secretAccessKey: string, now: Date, region: string, service = 's3'): Buffer {
  const day = hmac(`AWS4${secretAccessKey}`, amzDate(now).slice(0, 8));
  return hmac(hmac(hmac(day, region), service), 'aws4_request');
}

/**
 * Signs a request: returns every header to send with it (lower-case names), Authorization
 * included. The Authorization value carries the signature: never log it.
 */
export function signRequest(r: SignableRequest, credentials: Credentials, region: string, now: Date = new Date(), service = 's3'): Record<string, string> {
  const headers = headersToSign(r, credentials, now);
  const { text, signedHeaders } = canonicalRequest(r, headers);
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, now, region, service)).update(stringToSign(text, now, region, service), 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope(now, region, service)},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return headers;
}
