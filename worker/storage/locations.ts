// Where the worker's inputs come from and its outputs go: s3:// and https:// inputs are downloaded
// into the scratch directory (materialize), an s3:// output is uploaded from a local directory
// (publish). Local paths, pvc:// claims included (the operator mounts them), pass through.
//
// The commit rule of publish (README "Remote models and data"): the files go first, SHA256SUMS
// last. A consumer treats an output prefix as complete only once SHA256SUMS exists, and trusts
// only the files it lists (with their digests). A failed publish deletes what it uploaded.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { WorkerErrorReason } from '../../crds/scan-summary.ts';
import { HttpsError, httpsGetToFile, shown, type HttpsGetOptions } from './https.ts';
import { S3Client, S3Error, parseS3Uri, s3Uri, type RetryPolicy } from './s3.ts';

/** A storage failure with the worker error reason the operator reports (crds/scan-summary.ts). */
export class StorageError extends Error {
  override name = 'StorageError';
  readonly reason: WorkerErrorReason;
  constructor(reason: WorkerErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export type InputKind = 'model' | 'data';

/** The completion marker of a published output: "<sha256>  <path>" lines, written last. */
export const MANIFEST = 'SHA256SUMS';

/** Files of a Hugging Face checkpoint fetched over https besides the weights; the rest is optional. */
const MODEL_FILES_REQUIRED = ['config.json', 'tokenizer.json'];
const MODEL_FILES_OPTIONAL = ['tokenizer_config.json', 'special_tokens_map.json'];
/** Weights formats that unpickle (run code) when loaded: never downloaded. */
const PICKLE = /\.(bin|pt|pth|ckpt|pkl|pickle)$/i;
const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

export interface StorageOptions {
  env?: NodeJS.ProcessEnv;
  /** The flag the URI came with (--model, --out, ...), named in every error. */
  flag: string;
  /** Retry policy for S3 (tests shorten it). */
  retry?: Partial<RetryPolicy>;
  https?: Omit<HttpsGetOptions, 'token'>;
}

function scheme(uri: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1].toLowerCase();
}

/** `prefix/` for a non-empty key that lacks the slash: s3://b/m and s3://b/m/ name the same "directory". */
function asPrefix(key: string): string {
  return key === '' || key.endsWith('/') ? key : `${key}/`;
}

function client(o: StorageOptions, reason: WorkerErrorReason, uri: string): S3Client {
  try {
    return S3Client.fromEnv(o.env ?? process.env, { retry: o.retry });
  } catch (e) {
    throw new StorageError(reason, `${o.flag} ${uri}: ${(e as Error).message}`);
  }
}

function fetchFailure(e: unknown, o: StorageOptions, uri: string): StorageError {
  if (e instanceof StorageError) return e;
  const known = e instanceof S3Error || e instanceof HttpsError;
  return new StorageError(WorkerErrorReason.InputUnavailable, `${o.flag} ${uri}: ${known ? '' : 'fetch failed: '}${(e as Error).message}`);
}

/**
 * The local path of an input: `uri` itself when it is local; otherwise the input downloaded into
 * `destDir` (a model: the directory, filled with the checkpoint's files; data: the file in it).
 * Throws StorageError (InputUnavailable: credentials, missing objects, network; InvalidInput: a
 * URI or listing that cannot be used).
 */
export async function materialize(uri: string, destDir: string, kind: InputKind, o: StorageOptions): Promise<string> {
  const s = scheme(uri);
  if (s === undefined) return uri;
  try {
    if (s === 's3') return kind === 'model' ? await s3Model(uri, destDir, o) : await s3Data(uri, destDir, o);
    if (s === 'https') return kind === 'model' ? await httpsModel(uri, destDir, o) : await httpsData(uri, destDir, o);
  } catch (e) {
    throw fetchFailure(e, o, uri);
  }
  throw new StorageError(WorkerErrorReason.InvalidInput, `${o.flag} ${uri}: ${s}:// is not fetched by this worker (s3:// and https:// are; pvc:// is mounted by the operator)`);
}

function location(uri: string, o: StorageOptions): { bucket: string; key: string } {
  try {
    return parseS3Uri(uri);
  } catch (e) {
    throw new StorageError(WorkerErrorReason.InvalidInput, `${o.flag} ${(e as Error).message}`);
  }
}

/** Every file directly under the prefix (not "subdirectories"), each checked to stay inside destDir. */
async function s3Model(uri: string, destDir: string, o: StorageOptions): Promise<string> {
  const { bucket, key } = location(uri, o);
  const prefix = asPrefix(key);
  const s3 = client(o, WorkerErrorReason.InputUnavailable, uri);
  const objects = await s3.listObjects(bucket, prefix, { delimiter: '/' });
  const files = objects.map((x) => ({ key: x.key, name: modelFileName(prefix, x.key, `${o.flag} ${uri}`) })).filter((x): x is { key: string; name: string } => x.name !== undefined);
  if (files.length === 0) throw new StorageError(WorkerErrorReason.InputUnavailable, `${o.flag} ${uri}: no objects under s3://${bucket}/${prefix} (a model URI names a prefix holding config.json, model.safetensors, tokenizer.json)`);
  for (const f of files) await s3.getObjectToFile(bucket, f.key, join(destDir, f.name));
  return destDir;
}

/**
 * The local file name of a listed object of a model prefix, or undefined for one that is skipped
 * (the "directory" marker itself, pickle weights). S3 keys are arbitrary strings: a name such as
 * `..`, or one with a separator, would write outside the model directory and is refused.
 */
export function modelFileName(prefix: string, key: string, what: string): string | undefined {
  if (!key.startsWith(prefix)) throw new StorageError(WorkerErrorReason.InvalidInput, `${what}: the listing returned ${JSON.stringify(key)}, which is not under the prefix`);
  const name = key.slice(prefix.length);
  if (name === '' || PICKLE.test(name)) return undefined;
  if (name === '.' || name === '..' || /[/\\\0]/.test(name) || Buffer.byteLength(name) > 255) throw new StorageError(WorkerErrorReason.InvalidInput, `${what}: refusing object ${JSON.stringify(key)}: its name is not a plain file name inside the model directory`);
  return name;
}

async function s3Data(uri: string, destDir: string, o: StorageOptions): Promise<string> {
  const { bucket, key } = location(uri, o);
  if (key === '' || key.endsWith('/')) throw new StorageError(WorkerErrorReason.InvalidInput, `${o.flag} ${uri}: a data URI names one object, not a prefix`);
  const file = join(destDir, safeBaseName(basename(key), 'data.jsonl'));
  await client(o, WorkerErrorReason.InputUnavailable, uri).getObjectToFile(bucket, key, file);
  return file;
}

function safeBaseName(name: string, fallback: string): string {
  return SAFE_NAME.test(name) ? name : fallback;
}

function httpsOptions(o: StorageOptions): HttpsGetOptions {
  const token = (o.env ?? process.env).HF_TOKEN;
  return { ...o.https, ...(token ? { token } : {}) };
}

/** https://huggingface.co/ORG/NAME is the repository page; its files live under /resolve/main/. */
export function modelBaseUrl(uri: string): URL {
  const u = new URL(uri);
  if (u.hostname === 'huggingface.co' && u.pathname.replace(/^\/|\/$/g, '').split('/').length === 2) u.pathname = `${u.pathname.replace(/\/$/, '')}/resolve/main`;
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** config.json, tokenizer.json (and companions), then model.safetensors or the sharded index and its shards. */
async function httpsModel(uri: string, destDir: string, o: StorageOptions): Promise<string> {
  const base = modelBaseUrl(uri);
  const opts = httpsOptions(o);
  const get = (name: string) => httpsGetToFile(new URL(name, base).href, join(destDir, name), opts);
  for (const name of MODEL_FILES_REQUIRED) await get(name);
  for (const name of MODEL_FILES_OPTIONAL) {
    try {
      await get(name);
    } catch (e) {
      if (!(e instanceof HttpsError && e.kind === 'not-found')) throw e;
    }
  }
  try {
    await get('model.safetensors');
    return destDir;
  } catch (e) {
    if (!(e instanceof HttpsError && e.kind === 'not-found')) throw e;
  }
  const indexName = 'model.safetensors.index.json';
  try {
    await get(indexName);
  } catch (e) {
    if (e instanceof HttpsError && e.kind === 'not-found') {
      throw new StorageError(WorkerErrorReason.InputUnavailable, `${o.flag} ${uri}: neither model.safetensors nor ${indexName} under ${shown(base)} (pickle weights such as pytorch_model.bin are never fetched: they run code when loaded)`);
    }
    throw e;
  }
  for (const shard of shardsOf(join(destDir, indexName), uri, o)) await get(shard);
  return destDir;
}

function shardsOf(indexFile: string, uri: string, o: StorageOptions): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(readFileSync(indexFile, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new StorageError(WorkerErrorReason.BadModel, `${o.flag} ${uri}: model.safetensors.index.json is not JSON (${(e as Error).message})`);
  }
  if (!weightMap || typeof weightMap !== 'object') throw new StorageError(WorkerErrorReason.BadModel, `${o.flag} ${uri}: model.safetensors.index.json has no weight_map`);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const s of shards) {
    if (typeof s !== 'string' || !SAFE_NAME.test(s) || !s.endsWith('.safetensors')) {
      throw new StorageError(WorkerErrorReason.BadModel, `${o.flag} ${uri}: model.safetensors.index.json names shard ${JSON.stringify(s)}; shards must be .safetensors files beside the index`);
    }
  }
  return shards as string[];
}

async function httpsData(uri: string, destDir: string, o: StorageOptions): Promise<string> {
  const name = safeBaseName(basename(new URL(uri).pathname), 'data.jsonl');
  const file = join(destDir, name);
  await httpsGetToFile(uri, file, httpsOptions(o));
  return file;
}

// ---- outputs

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out;
}

export interface PublishResult {
  /** s3:// URIs written, the manifest last. */
  uploaded: string[];
  /** The manifest's text: "<sha256>  <path relative to the prefix, or an s3:// URI>" lines. */
  manifest: string;
}

/**
 * Uploads every file under `localDir` to the s3:// prefix `uri` (same relative paths), the model
 * directory first, then `extra` files to their own s3:// URIs (a --report elsewhere), then
 * SHA256SUMS. A SHA256SUMS left by an earlier run is deleted before anything else is written. On
 * failure, deletes what this call uploaded (best effort) and throws StorageError(UploadFailed).
 */
export async function publish(localDir: string, uri: string, o: StorageOptions & { extra?: Array<{ file: string; uri: string }> }): Promise<PublishResult> {
  const { bucket, key } = location(uri, o);
  const prefix = asPrefix(key);
  const extra = (o.extra ?? []).map((x) => ({ ...x, ...location(x.uri, o) }));
  const s3 = client(o, WorkerErrorReason.UploadFailed, uri);
  const rel = filesUnder(localDir).filter((f) => f !== MANIFEST);
  // The cleaned model first: its files are what a consumer waits for.
  const ordered = [...rel.filter((f) => f.startsWith('model/')), ...rel.filter((f) => !f.startsWith('model/'))];
  const uploaded: Array<{ bucket: string; key: string }> = [];
  const lines: string[] = [];
  const put = async (file: string, b: string, k: string) => {
    const t = await s3.putObjectFromFile(b, k, file);
    uploaded.push({ bucket: b, key: k });
    return t.sha256;
  };
  try {
    await s3.deleteObject(bucket, prefix + MANIFEST);
    for (const f of ordered) lines.push(`${await put(join(localDir, f), bucket, prefix + f)}  ${f}`);
    for (const x of extra) lines.push(`${await put(x.file, x.bucket, x.key)}  ${x.uri}`);
    const manifest = lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join('\n') + '\n';
    const manifestFile = join(localDir, MANIFEST);
    writeFileSync(manifestFile, manifest);
    await put(manifestFile, bucket, prefix + MANIFEST);
    return { uploaded: uploaded.map((u) => s3Uri(u.bucket, u.key)), manifest };
  } catch (e) {
    const left: string[] = [];
    for (const u of uploaded.reverse()) {
      try {
        await s3.deleteObject(u.bucket, u.key);
      } catch {
        left.push(s3Uri(u.bucket, u.key));
      }
    }
    const cleanup = uploaded.length === 0 ? '' : left.length === 0 ? `; removed the ${uploaded.length} object(s) this run had uploaded` : `; could not remove ${left.length} of the ${uploaded.length} object(s) this run had uploaded: ${left.slice(0, 5).join(', ')}`;
    const msg = e instanceof StorageError ? e.message : `${o.flag} ${uri}: ${(e as Error).message}`;
    throw new StorageError(WorkerErrorReason.UploadFailed, msg + cleanup);
  }
}

/** Uploads one file to an s3:// URI (a --report when --out is local). */
export async function publishFile(file: string, uri: string, o: StorageOptions): Promise<void> {
  const { bucket, key } = location(uri, o);
  if (key === '' || key.endsWith('/')) throw new StorageError(WorkerErrorReason.InvalidInput, `${o.flag} ${uri}: names a prefix; give the object's key`);
  try {
    await client(o, WorkerErrorReason.UploadFailed, uri).putObjectFromFile(bucket, key, file);
  } catch (e) {
    throw e instanceof StorageError ? e : new StorageError(WorkerErrorReason.UploadFailed, `${o.flag} ${uri}: ${(e as Error).message}`);
  }
}

/** The s3:// URI of a path under a published prefix: outputUri('s3://b/run', 'model/') = 's3://b/run/model/'. */
export function outputUri(uri: string, path: string): string {
  const { bucket, key } = parseS3Uri(uri);
  return s3Uri(bucket, asPrefix(key) + path);
}
