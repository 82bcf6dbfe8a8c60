// Thin helpers around @kubernetes/client-node: error classification and a request counter.
import { ApiException } from '@kubernetes/client-node';

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
    const key = JSON.stringify([(cluster as { server?: string } | undefined)?.server ?? '', opts]);
    let d = cache.get(key);
    if (d === undefined) {
      d = orig(cluster, opts);
      cache.set(key, d);
    }
    return d;
  };
  return kc;
}
