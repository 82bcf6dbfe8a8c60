// A minimal S3 client: GetObject streamed to a file, PutObject streamed from a file, ListObjectsV2
// (paginated), DeleteObject, CreateBucket. Requests are signed with our SigV4 (sigv4.ts); there is
// no SDK. Configuration comes from the standard AWS environment variables.
//
// Secrets stay out of errors and logs: an error names the s3:// URI, the HTTP status and the S3
// error code, never a header, the secret key, the signature or the raw error body (AWS's
// SignatureDoesNotMatch body echoes the string to sign).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { EMPTY_SHA256, canonicalQuery, signRequest, uriEncode, type Credentials } from './sigv4.ts';

export interface S3Config {
  credentials: Credentials;
  region: string;
  /** A custom endpoint (MinIO, versitygw, R2, ...): path-style addressing. Absent: AWS, virtual-hosted. */
  endpoint?: URL;
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Delay before the second attempt; doubled each time, with jitter, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8000 };

/** What went wrong, in the terms a caller acts on. */
export type S3ErrorKind = 'forbidden' | 'not-found' | 'unavailable' | 'failed';

/**
 * Streams a 200 response into `part`, hashing as it goes, checks Content-Length and renames the
 * file into place; on any failure the partial file is removed.
 */
export async function saveResponse(res: http.IncomingMessage, part: string, file: string): Promise<Transfer> {
  const expected = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, tap, createWriteStream(part));
    if (expected !== undefined && bytes !== expected) throw new Error(`read ${bytes} of ${expected} bytes`);
    renameSync(part, file);
    return { bytes, sha256: hash.digest('hex') };
  } catch (e) {
    rmSync(part, { force: true });
    throw e;
  }
}

export class S3Error extends Error {
  override name = 'S3Error';
  readonly kind: S3ErrorKind;
  readonly status?: number;
  readonly code?: string;
  constructor(kind: S3ErrorKind, message: string, status?: number, code?: string) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

export interface S3Location {
  bucket: string;
  key: string;
}

/** s3://bucket/key/with/slashes -> { bucket, key } (key may be empty or end in '/'). */
export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1])) throw new Error(`${uri}: not an s3://bucket/key URI (bucket names are 3-63 lower-case letters, digits, dots and hyphens)`);
  return { bucket: m[1], key: m[2] ?? '' };
}

export const s3Uri = (bucket: string, key: string) => `s3://${bucket}/${key}`;

/**
 * Credentials, region and endpoint from the standard AWS variables: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or AWS_DEFAULT_REGION (us-east-1), and
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL.
 */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new S3Error('forbidden', 'no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (BackdoorScan spec.credentials passes a Secret\'s keys as these variables)');
  }
  const endpointText = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  let endpoint: URL | undefined;
  if (endpointText) {
    try {
      endpoint = new URL(endpointText);
    } catch {
      throw new S3Error('failed', `AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL "${endpointText}" is not a URL`);
    }
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new S3Error('failed', `S3 endpoint ${endpointText}: only http:// and https:// endpoints are supported`);
  }
  return {
    credentials: { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) },
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
  };
}

interface Target {
  protocol: 'http:' | 'https:';
  hostname: string;
  port?: number;
  /** The Host header (and signed host): hostname[:port]. */
  host: string;
  /** Raw (unencoded) path to sign and send. */
  path: string;
}

export interface ObjectSummary {
  key: string;
  size: number;
  etag?: string;
}

export interface Transfer {
  bytes: number;
  sha256: string;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A body sent from a file, re-opened on every attempt. */
interface FileBody {
  file: string;
  bytes: number;
  sha256: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The text of the first <tag>…</tag>, XML entities decoded. S3's responses are flat enough for this. */
function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? decodeXml(m[1]) : undefined;
}

function xmlBlocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]);
}

function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
    e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}

/** S3 error codes that mean "these credentials do not work", whatever the status (versitygw answers an unknown key with 404). */
const CREDENTIAL_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'XAdminUserNotFound']);

/** Whether another attempt may succeed: server errors, throttling and network failures. */
function retriable(e: unknown): boolean {
  return e instanceof S3Error ? e.kind === 'unavailable' : true;
}

export class S3Client {
  readonly config: S3Config;
  readonly retry: RetryPolicy;
  /** Idle socket timeout: a stalled transfer fails (and is retried) instead of hanging the scan. */
  readonly timeoutMs: number;

  constructor(config: S3Config, o: { retry?: Partial<RetryPolicy>; timeoutMs?: number } = {}) {
    this.config = config;
    this.retry = { ...DEFAULT_RETRY, ...o.retry };
    this.timeoutMs = o.timeoutMs ?? 60_000;
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env, o: { retry?: Partial<RetryPolicy>; timeoutMs?: number } = {}): S3Client {
    return new S3Client(s3ConfigFromEnv(env), o);
  }

  private target(bucket: string, key?: string): Target {
    const ep = this.config.endpoint;
    if (ep) {
      const base = ep.pathname.replace(/\/+$/, '');
      const path = `${base}/${bucket}${key !== undefined ? `/${key}` : ''}`;
      return { protocol: ep.protocol as 'http:' | 'https:', hostname: ep.hostname, ...(ep.port ? { port: Number(ep.port) } : {}), host: ep.host, path };
    }
    const host = `${bucket}.s3.${this.config.region}.amazonaws.com`;
    return { protocol: 'https:', hostname: host, host, path: `/${key ?? ''}` };
  }

  /** One signed request; the response body is buffered (for everything but GetObject). */
  private send(method: string, t: Target, o: { query?: Array<[string, string]>; body?: FileBody; headers?: Record<string, string> } = {}): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers = signRequest({ method, host: t.host, path: t.path, query: o.query, headers: { ...o.headers, ...(o.body ? { 'content-length': String(o.body.bytes) } : {}) }, payloadSha256: o.body?.sha256 ?? EMPTY_SHA256 }, this.config.credentials, this.config.region);
      const qs = canonicalQuery(o.query);
      const req = (t.protocol === 'https:' ? https : http).request(
        { method, hostname: t.hostname, port: t.port, path: uriEncode(t.path, true) + (qs ? `?${qs}` : ''), headers, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no response for ${this.timeoutMs} ms`)));
      req.on('error', reject);
      if (o.body) {
        const body = createReadStream(o.body.file);
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      } else {
        req.end();
      }
    });
  }

  /** Runs `attempt` until it succeeds, fails for good, or the attempts run out. */
  private async withRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    let delay = this.retry.baseDelayMs;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (!retriable(e) || n >= this.retry.attempts) {
          if (e instanceof S3Error) throw e;
          throw new S3Error('unavailable', `${what}: ${(e as Error).message} (after ${n} attempt${n === 1 ? '' : 's'})`);
        }
        await sleep(Math.min(this.retry.maxDelayMs, delay) * (0.5 + Math.random() / 2));
        delay *= 2;
      }
    }
  }

  /** An S3Error for a non-2xx response, classified; the message names the URI, status and S3 code only. */
  private failure(uri: string, status: number, body: Buffer, verb: string): S3Error {
    const xml = body.toString('utf8');
    const code = xmlText(xml, 'Code');
    const detail = code ? ` (${code})` : '';
    if (status === 403 || status === 401 || (code !== undefined && CREDENTIAL_CODES.has(code))) {
      return new S3Error('forbidden', `${verb} ${uri}: access denied, HTTP ${status}${detail}: the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) were rejected or may not ${verb} it`, status, code);
    }
    if (status === 404) {
      const what = code === 'NoSuchBucket' ? 'bucket not found' : 'object not found';
      return new S3Error('not-found', `${verb} ${uri}: ${what}, HTTP 404${detail}`, status, code);
    }
    if (status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout') {
      return new S3Error('unavailable', `${verb} ${uri}: server error, HTTP ${status}${detail}`, status, code);
    }
    return new S3Error('failed', `${verb} ${uri}: HTTP ${status}${detail}`, status, code);
  }

  /** Downloads an object to `file` (via a sibling temporary, renamed into place), hashing as it streams. */
  async getObjectToFile(bucket: string, key: string, file: string): Promise<Transfer> {
    const uri = s3Uri(bucket, key);
    mkdirSync(dirname(file), { recursive: true });
    return this.withRetry(`get ${uri}`, () => this.getOnce(uri, this.target(bucket, key), file));
  }

  private getOnce(uri: string, t: Target, file: string): Promise<Transfer> {
    const part = `${file}.part`;
    return new Promise<Transfer>((resolve, reject) => {
      const headers = signRequest({ method: 'GET', host: t.host, path: t.path, payloadSha256: EMPTY_SHA256 }, this.config.credentials, this.config.region);
      const req = (t.protocol === 'https:' ? https : http).request(
        { method: 'GET', hostname: t.hostname, port: t.port, path: uriEncode(t.path, true), headers, timeout: this.timeoutMs },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => reject(this.failure(uri, status, Buffer.concat(chunks), 'read')));
            res.on('error', reject);
            return;
          }
          saveResponse(res, part, file).then(resolve, reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no data for ${this.timeoutMs} ms`)));
      req.on('error', (e) => {
        rmSync(part, { force: true });
        reject(e);
      });
      req.end();
    });
  }

  /** Uploads a file; the payload is signed with its real sha256 (S3 then verifies what it received). */
  async putObjectFromFile(bucket: string, key: string, file: string): Promise<Transfer> {
    const uri = s3Uri(bucket, key);
    const bytes = statSync(file).size;
    const hash = createHash('sha256');
    await pipeline(createReadStream(file), hash);
    const sha256 = hash.digest('hex');
    await this.withRetry(`write ${uri}`, async () => {
      const r = await this.send('PUT', this.target(bucket, key), { body: { file, bytes, sha256 }, headers: { 'content-type': 'application/octet-stream' } });
      if (r.status !== 200) throw this.failure(uri, r.status, r.body, 'write');
    });
    return { bytes, sha256 };
  }

  /** Deletes an object; deleting one that does not exist succeeds (S3 semantics), in a missing bucket fails. */
  async deleteObject(bucket: string, key: string): Promise<void> {
    const uri = s3Uri(bucket, key);
    await this.withRetry(`delete ${uri}`, async () => {
      const r = await this.send('DELETE', this.target(bucket, key));
      if (r.status === 204 || r.status === 200) return;
      const e = this.failure(uri, r.status, r.body, 'delete');
      if (!(e.kind === 'not-found' && e.code !== 'NoSuchBucket')) throw e;
    });
  }

  async createBucket(bucket: string): Promise<void> {
    const uri = `s3://${bucket}`;
    await this.withRetry(`create ${uri}`, async () => {
      const r = await this.send('PUT', this.target(bucket));
      if (r.status !== 200) throw this.failure(uri, r.status, r.body, 'create');
    });
  }

  /**
   * Every object under `prefix` (ListObjectsV2, following continuation tokens). With delimiter '/',
   * only the objects directly under the prefix, not those in "subdirectories".
   */
  async listObjects(bucket: string, prefix: string, o: { delimiter?: string; maxKeys?: number } = {}): Promise<ObjectSummary[]> {
    const uri = s3Uri(bucket, prefix);
    const out: ObjectSummary[] = [];
    let token: string | undefined;
    for (let page = 0; ; page++) {
      const query: Array<[string, string]> = [['list-type', '2'], ['prefix', prefix]];
      if (o.delimiter) query.push(['delimiter', o.delimiter]);
      if (o.maxKeys) query.push(['max-keys', String(o.maxKeys)]);
      if (token) query.push(['continuation-token', token]);
      const xml = await this.withRetry(`list ${uri}`, async () => {
        const r = await this.send('GET', this.target(bucket), { query });
        if (r.status !== 200) throw this.failure(uri, r.status, r.body, 'list');
        return r.body.toString('utf8');
      });
      for (const c of xmlBlocks(xml, 'Contents')) {
        const key = xmlText(c, 'Key');
        if (key === undefined) continue;
        const etag = xmlText(c, 'ETag');
        out.push({ key, size: Number(xmlText(c, 'Size') ?? 0), ...(etag ? { etag: etag.replace(/"/g, '') } : {}) });
      }
      const truncated = xmlText(xml, 'IsTruncated') === 'true';
      token = xmlText(xml, 'NextContinuationToken');
      if (!truncated) return out;
      if (!token) throw new S3Error('failed', `list ${uri}: the listing is truncated but carries no continuation token`);
      if (page > 100_000) throw new S3Error('failed', `list ${uri}: more than 100,000 pages`);
    }
  }
}
