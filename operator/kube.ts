// Thin helpers around @kubernetes/client-node: error classification, a request counter, and the
// JSON REST client the operator makes its few API calls with.
//
// Only these parts of client-node are loaded at run time (deep imports): KubeConfig (auth, TLS,
// kubeconfig/in-cluster loading), Watch, the generic HTTP layer and ApiException. Its package
// index pulls in every generated API group (~7 MB of ObservableAPI source alone) and a serializer
// that walks type metadata for every request and response; the operator calls seven endpoints and
// needs plain JSON, so it does not load them (operator/start.ts also keeps KubeConfig from loading
// them; see there).
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';
import { RequestContext, type HttpMethod } from '@kubernetes/client-node/dist/gen/http/http.js';
import { IsomorphicFetchHttpLibrary } from '@kubernetes/client-node/dist/gen/http/isomorphic-fetch.js';
import type { EventsV1Event, V1Job, V1Lease } from '@kubernetes/client-node';

/** HTTP status of an error thrown by client-node (generated APIs throw ApiException; Watch throws Error with statusCode). */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isGone = (err: unknown): boolean => statusCode(err) === 410;

/** A 409 from a create means AlreadyExists; from an update it means a stale resourceVersion. Both are "requeue, not an error". */
export function isAlreadyExists(err: unknown): boolean {
  if (statusCode(err) !== 409) return false;
  const body = err instanceof ApiException ? err.body : undefined;
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  return !text.includes('"reason":"Conflict"');
}

/** Short, single-line description of an API error for logs and condition messages (never the whole body). */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    let msg = '';
    try {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      msg = (body as { message?: string })?.message ?? '';
    } catch {
      msg = String(err.body).slice(0, 200);
    }
    return `HTTP ${err.code}${msg ? `: ${msg}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Counts the API requests the operator makes, by verb and resource. Used by the benchmark
 * (requests per scan) and exported as a metric.
 */
export class RequestCounter {
  readonly counts = new Map<string, number>();
  private listeners: Array<(verb: string, resource: string) => void> = [];
  inc(verb: string, resource: string): void {
    const k = `${verb} ${resource}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    for (const l of this.listeners) l(verb, resource);
  }
  onRequest(fn: (verb: string, resource: string) => void): void {
    this.listeners.push(fn);
  }
  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort());
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A uniformly jittered duration in [ms, ms*(1+factor)). */
export function jitter(ms: number, factor = 1): number {
  return ms + Math.random() * ms * factor;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
  /** The caller does not read the response: consume it without parsing (a created Job is ~7 kB of JSON). */
  discardBody?: boolean;
}

/** A page of a list call, as the API server sends it. */
export interface ListResponse<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export const USER_AGENT = 'elibadcode-operator/0.1.0';

/**
 * JSON over client-node's HTTP layer: the request is authenticated by the KubeConfig (token, client
 * certificate, exec plugin; TLS via its pooled dispatcher) exactly as the generated clients do, and
 * non-2xx answers throw client-node's ApiException with the parsed Status as body, so error
 * handling (statusCode, isConflict, describeError) is the same as with the generated clients.
 *
 * The method names and request shapes are client-node's (BatchV1Api.createNamespacedJob etc.), so
 * the reconciler's dependencies can be either this or a generated client.
 */
export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly server: string;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('no active cluster in the kubeconfig');
    this.kubeConfig = kc;
    this.server = cluster.server.replace(/\/+$/, '');
  }

  async request<T>(method: `${HttpMethod}`, path: string, opts: RequestOptions = {}): Promise<T> {
    const ctx = new RequestContext(this.server + path, method as HttpMethod);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') ctx.setQueryParam(k, String(v));
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setHeaderParam('User-Agent', USER_AGENT);
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    await this.kubeConfig.applySecurityAuthentication(ctx);
    const res = await this.http.send(ctx).toPromise();
    const text = await res.body.text();
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      const reason = (body as { reason?: string } | undefined)?.reason;
      throw new ApiException(res.httpStatusCode, reason ?? `${method} ${path}`, body, res.headers);
    }
    if (opts.discardBody || !text) return undefined as T;
    return JSON.parse(text) as T;
  }

  /** GET a collection page (`limit`/`continue`, optionally a label selector). */
  list<T>(path: string, query: { labelSelector?: string; limit?: number; continue?: string }): Promise<ListResponse<T>> {
    return this.request('GET', path, { query });
  }

  // --- The calls the operator makes, with client-node's names and request shapes. The callers
  // count them (RequestCounter), so fakes in tests are counted the same way.

  async createNamespacedJob(r: { namespace: string; body: V1Job }): Promise<void> {
    await this.request('POST', `/apis/batch/v1/namespaces/${enc(r.namespace)}/jobs`, { body: r.body, discardBody: true });
  }

  async deleteNamespacedJob(r: { name: string; namespace: string; propagationPolicy?: string }): Promise<void> {
    await this.request('DELETE', `/apis/batch/v1/namespaces/${enc(r.namespace)}/jobs/${enc(r.name)}`, {
      query: { propagationPolicy: r.propagationPolicy },
      discardBody: true,
    });
  }

  /** Always a JSON merge patch (RFC 7386) of the status subresource; returns the updated object. */
  patchNamespacedCustomObjectStatus<T = unknown>(r: { group: string; version: string; plural: string; namespace: string; name: string; body: unknown }): Promise<T> {
    return this.request('PATCH', `/apis/${r.group}/${r.version}/namespaces/${enc(r.namespace)}/${r.plural}/${enc(r.name)}/status`, {
      body: r.body,
      contentType: 'application/merge-patch+json',
    });
  }

  async createNamespacedEvent(r: { namespace: string; body: EventsV1Event }): Promise<void> {
    await this.request('POST', `/apis/events.k8s.io/v1/namespaces/${enc(r.namespace)}/events`, { body: r.body, discardBody: true });
  }

  readNamespacedLease(r: { name: string; namespace: string }): Promise<V1Lease> {
    return this.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${enc(r.namespace)}/leases/${enc(r.name)}`);
  }

  createNamespacedLease(r: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${enc(r.namespace)}/leases`, { body: r.body });
  }

  replaceNamespacedLease(r: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/${enc(r.namespace)}/leases/${enc(r.name)}`, { body: r.body });
  }
}

const enc = encodeURIComponent;

/**
 * client-node 2.0.1 builds a new undici Agent for every request (KubeConfig.createDispatcher is
 * not cached), so every API call opens a new TLS connection and the idle keep-alive sockets of
 * the discarded agents pile up. Share one Agent per KubeConfig: requests then reuse pooled
 * connections. Returns the same KubeConfig for chaining.
 */
export function shareConnections<K extends object>(kc: K): K {
  const target = kc as unknown as { createDispatcher?: (cluster: unknown, opts: unknown) => unknown; __sharedDispatchers?: Map<string, unknown> };
  const orig = target.createDispatcher?.bind(kc);
  if (!orig || target.__sharedDispatchers) return kc;
  const cache = new Map<string, unknown>();
  target.__sharedDispatchers = cache;
  target.createDispatcher = (cluster: unknown, opts: unknown) => {
    const key = dispatcherKey((cluster as { server?: string } | undefined)?.server ?? '', opts);
    let d = cache.get(key);
    if (d === undefined) {
      d = orig(cluster, opts);
      cache.set(key, d);
    }
    return d;
  };
  return kc;
}

/** Server plus a digest of the TLS options (CA, client certificate and key are re-read as new Buffers per request; JSON of a Buffer is an array of numbers). */
function dispatcherKey(server: string, opts: unknown): string {
  const h = createHash('sha256');
  for (const [k, v] of Object.entries((opts ?? {}) as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (v === undefined) continue;
    h.update(`${k}=`);
    if (Buffer.isBuffer(v) || typeof v === 'string') h.update(v);
    else h.update(JSON.stringify(v) ?? '');
    h.update('\0');
  }
  return `${server}|${h.digest('base64')}`;
}
