// GET over https, streamed to a file with its sha256, following redirects (bounded), with an
// optional `Authorization: Bearer` token (Hugging Face style, HF_TOKEN). The token goes only to the
// origin it was meant for: a redirect to another origin (the Hub sends downloads to a CDN with a
// signed URL) is followed without it, as huggingface_hub and requests do.
import { mkdirSync, rmSync } from 'node:fs';
import https from 'node:https';
import { dirname } from 'node:path';
import { saveResponse, type Transfer } from './s3.ts';

export type HttpsErrorKind = 'forbidden' | 'not-found' | 'unavailable' | 'failed';

export class HttpsError extends Error {
  override name = 'HttpsError';
  readonly kind: HttpsErrorKind;
  readonly status?: number;
  constructor(kind: HttpsErrorKind, message: string, status?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export interface HttpsGetOptions {
  /** Sent as `Authorization: Bearer <token>` to the URL's origin only. */
  token?: string;
  maxRedirects?: number;
  /** Attempts in all for server errors and network failures. */
  attempts?: number;
  baseDelayMs?: number;
  timeoutMs?: number;
  /** Extra trusted CA certificates (PEM); NODE_EXTRA_CA_CERTS does the same for a whole process. */
  ca?: string | Buffer;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The URL without its query (signed CDN URLs carry credentials there): what errors may show. */
export function shown(url: string | URL): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** Downloads `url` into `file` (via a sibling temporary, renamed into place); returns size and sha256. */
export async function httpsGetToFile(url: string, file: string, o: HttpsGetOptions = {}): Promise<Transfer> {
  const attempts = o.attempts ?? 4;
  let delay = o.baseDelayMs ?? 250;
  mkdirSync(dirname(file), { recursive: true });
  for (let n = 1; ; n++) {
    try {
      return await followRedirects(new URL(url), file, o);
    } catch (e) {
      const again = !(e instanceof HttpsError) || e.kind === 'unavailable';
      if (!again || n >= attempts) {
        if (e instanceof HttpsError) throw e;
        throw new HttpsError('unavailable', `${shown(url)}: ${(e as Error).message} (after ${n} attempt${n === 1 ? '' : 's'})`);
      }
      await sleep(delay * (0.5 + Math.random() / 2));
      delay *= 2;
    }
  }
}

async function followRedirects(start: URL, file: string, o: HttpsGetOptions): Promise<Transfer> {
  const maxRedirects = o.maxRedirects ?? 5;
  let url = start;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'https:') throw new HttpsError('failed', `${shown(start)}: refusing ${url.protocol}// (only https is fetched)`);
    const token = o.token && url.origin === start.origin ? o.token : undefined;
    const r = await getOnce(url, file, token, o);
    if (r.redirect === undefined) return r.transfer!;
    if (hop >= maxRedirects) throw new HttpsError('failed', `${shown(start)}: more than ${maxRedirects} redirects`);
    url = new URL(r.redirect, url);
  }
}

function getOnce(url: URL, file: string, token: string | undefined, o: HttpsGetOptions): Promise<{ redirect?: string; transfer?: Transfer }> {
  const part = `${file}.part`;
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const req = https.get(url, { headers: { 'user-agent': 'elibadcode-worker', ...(token ? { authorization: `Bearer ${token}` } : {}) }, timeout: timeoutMs, ...(o.ca ? { ca: o.ca } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        const location = res.headers.location;
        if (!location) return reject(new HttpsError('failed', `${shown(url)}: HTTP ${status} redirect without a Location`, status));
        return resolve({ redirect: location });
      }
      if (status !== 200) {
        res.resume();
        const where = shown(url);
        if (status === 401 || status === 403) return reject(new HttpsError('forbidden', `${where}: access denied, HTTP ${status}${token ? ' (the HF_TOKEN bearer token was rejected or lacks access)' : ' (no HF_TOKEN was set; a gated or private repository needs one)'}`, status));
        if (status === 404) return reject(new HttpsError('not-found', `${where}: not found, HTTP 404`, status));
        if (status >= 500 || status === 429) return reject(new HttpsError('unavailable', `${where}: server error, HTTP ${status}`, status));
        return reject(new HttpsError('failed', `${where}: HTTP ${status}`, status));
      }
      saveResponse(res, part, file).then((transfer) => resolve({ transfer }), reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no data for ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      rmSync(part, { force: true });
      // An untrusted certificate will not become trusted on the next attempt.
      if (e.code && TLS_TRUST_ERRORS.has(e.code)) reject(new HttpsError('failed', `${shown(url)}: TLS certificate not trusted (${e.code}); NODE_EXTRA_CA_CERTS adds a CA`));
      else reject(e);
    });
  });
}

const TLS_TRUST_ERRORS = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);
