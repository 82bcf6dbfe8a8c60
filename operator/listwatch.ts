// A list-watch with an in-memory store, in the manner of client-go's reflector + informer:
// paginated list, watch from the list's resourceVersion with bookmarks and a randomised server
// timeout, relist on 410 Gone, restart with jittered backoff on any other error, a watchdog that
// relists when the stream goes silent, and a periodic resync that replays the store to handlers.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { Watch } from '@kubernetes/client-node/dist/watch.js';
import type { Logger } from 'pino';
import { describeError, isGone, jitter, sleep, statusCode, type RequestCounter } from './kube.ts';

export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export type ListFn<T> = (opts: { limit: number; continue?: string }) => Promise<ListPage<T>>;

export interface ListWatchOptions<T> {
  /** Name for logs and metrics, e.g. "backdoorscans". */
  name: string;
  kubeConfig: KubeConfig;
  /** Collection path for the watch, e.g. /apis/batch/v1/namespaces/ns/jobs or /apis/batch/v1/jobs. */
  path: string;
  list: ListFn<T>;
  labelSelector?: string;
  pageSize?: number;
  /** Server-side watch timeout is drawn uniformly from [min, 2*min) seconds (client-go: 5-10 min). */
  minWatchTimeoutSeconds?: number;
  /** Relist when no event or bookmark arrived for this long. */
  watchdogMs?: number;
  /** Replay every cached object to the update handlers this often (0: never). */
  resyncMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
  requests?: RequestCounter;
  /** Secondary index: the values an object is filed under (e.g. its controller owner's UID). */
  index?: (obj: T) => string[];
  /** Applied to every object before it is stored (e.g. drop managedFields to save memory). */
  transform?: (obj: T) => T;
}

export type Handler<T> = (obj: T, old?: T) => void;

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : (obj.metadata?.name ?? '');
}

export class ListWatch<T extends KubernetesObject> {
  readonly name: string;
  private readonly store = new Map<string, T>();
  // The secondary index, compact for the usual case of one object per value and one value per
  // object (a Job and its scan's UID): a plain string instead of a one-element Set or array.
  private readonly indexed = new Map<string, string | Set<string>>();
  private readonly indexOf = new Map<string, string | string[]>();
  private readonly opts: Required<Omit<ListWatchOptions<T>, 'labelSelector' | 'logger' | 'requests' | 'index' | 'transform'>> &
    Pick<ListWatchOptions<T>, 'labelSelector' | 'logger' | 'requests' | 'index' | 'transform'>;
  private readonly watcher: Watch;
  private addHandlers: Handler<T>[] = [];
  private updateHandlers: Handler<T>[] = [];
  private deleteHandlers: Handler<T>[] = [];
  private resourceVersion = '';
  private synced = false;
  private stopped = true;
  private stopController = new AbortController();
  private currentWatch?: AbortController;
  private loop?: Promise<void>;
  private resyncTimer?: NodeJS.Timeout;
  private syncWaiters: Array<() => void> = [];
  /** Counters for tests and the benchmark. */
  readonly stats = { lists: 0, listPages: 0, watches: 0, relists410: 0, watchdogRelists: 0, errors: 0 };

  constructor(opts: ListWatchOptions<T>) {
    this.name = opts.name;
    this.opts = {
      pageSize: 500,
      minWatchTimeoutSeconds: 300,
      watchdogMs: 5 * 60_000,
      resyncMs: 10 * 60_000,
      backoffInitialMs: 800,
      backoffMaxMs: 30_000,
      ...opts,
    };
    this.watcher = new Watch(opts.kubeConfig);
    // client-node's Watch aborts a stream after 30 s without bytes; our watchdog owns that decision.
    (this.watcher as unknown as { requestTimeoutMs: number }).requestTimeoutMs = this.opts.watchdogMs;
  }

  on(event: 'add' | 'update' | 'delete', fn: Handler<T>): void {
    if (event === 'add') this.addHandlers.push(fn);
    else if (event === 'update') this.updateHandlers.push(fn);
    else this.deleteHandlers.push(fn);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  /** Objects filed under `value` by the index function. */
  byIndex(value: string): T[] {
    const keys = this.indexed.get(value);
    if (keys === undefined) return [];
    if (typeof keys === 'string') {
      const o = this.store.get(keys);
      return o ? [o] : [];
    }
    const out: T[] = [];
    for (const k of keys) {
      const o = this.store.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  /** Store an object as received (transformed here); returns what was stored. */
  private put(key: string, obj: T): T {
    if (this.opts.transform) obj = this.opts.transform(obj);
    this.store.set(key, obj);
    if (this.opts.index) this.reindex(key, this.opts.index(obj));
    return obj;
  }

  private reindex(key: string, values: string[]): void {
    const prev = this.indexOf.get(key);
    const prevValues = prev === undefined ? [] : typeof prev === 'string' ? [prev] : prev;
    if (prevValues.length === values.length && prevValues.every((v, i) => v === values[i])) return;
    this.unindex(key);
    for (const v of values) {
      const cur = this.indexed.get(v);
      if (cur === undefined) this.indexed.set(v, key);
      else if (typeof cur === 'string') {
        if (cur !== key) this.indexed.set(v, new Set([cur, key]));
      } else cur.add(key);
    }
    if (values.length) this.indexOf.set(key, values.length === 1 ? values[0] : values);
  }

  /** Store an object that already went through the transform (relist pages). */
  private putTransformed(key: string, obj: T): T {
    this.store.set(key, obj);
    if (this.opts.index) this.reindex(key, this.opts.index(obj));
    return obj;
  }

  private remove(key: string): void {
    this.store.delete(key);
    this.unindex(key);
  }

  private unindex(key: string): void {
    const prev = this.indexOf.get(key);
    if (prev === undefined) return;
    for (const v of typeof prev === 'string' ? [prev] : prev) {
      const cur = this.indexed.get(v);
      if (cur === undefined) continue;
      if (typeof cur === 'string') {
        if (cur === key) this.indexed.delete(v);
      } else {
        cur.delete(key);
        if (cur.size === 1) this.indexed.set(v, cur.values().next().value!);
        else if (cur.size === 0) this.indexed.delete(v);
      }
    }
    this.indexOf.delete(key);
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has been loaded into the store. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /**
   * Write-through after our own successful write, so the next reconcile does not act on a copy older
   * than what the server already returned to us. The watch event with the same object follows.
   */
  mutate(obj: T): void {
    const key = objectKey(obj);
    if (this.store.has(key)) this.put(key, obj);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopController = new AbortController();
    this.loop = this.run();
    if (this.opts.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort();
    this.currentWatch?.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.loop;
  }

  /** Test hook: drop the current watch connection as a network failure would. With expire, the next
   * watch starts from a resourceVersion the server has long compacted, so it must answer 410. */
  interruptWatch(opts: { expire?: boolean } = {}): void {
    if (opts.expire) this.resourceVersion = '1';
    this.forceExpiredRv = !!opts.expire;
    this.currentWatch?.abort();
  }
  private forceExpiredRv = false;

  private resync(): void {
    for (const obj of this.store.values()) for (const h of this.updateHandlers) h(obj, obj);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        const received = await this.watchOnce();
        if (received) failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          // The resourceVersion is too old (compacted): relist from the current state, right away.
          this.stats.relists410++;
          this.opts.logger?.info({ informer: this.name }, 'watch expired (410 Gone), relisting');
          this.resourceVersion = '';
          await sleep(jitter(50), this.stopController.signal);
          continue;
        }
        this.stats.errors++;
        failures++;
        const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** Math.min(failures - 1, 10));
        this.opts.logger?.warn(
          { informer: this.name, err: describeError(err), code: statusCode(err), retryInMs: Math.round(delay) },
          'list/watch failed, retrying',
        );
        await sleep(jitter(delay, 0.5), this.stopController.signal);
      }
    }
  }

  private async relist(): Promise<void> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    for (;;) {
      this.stats.listPages++;
      this.opts.requests?.inc('list', this.name);
      let page: ListPage<T>;
      try {
        page = await this.opts.list({ limit: this.opts.pageSize, continue: cont });
      } catch (err) {
        // An expired continue token: start the list again from the beginning.
        if (isGone(err) && cont) {
          fresh.clear();
          cont = undefined;
          continue;
        }
        throw err;
      }
      // Transformed as each page arrives: a relist of 10,000 objects never holds them all raw.
      const t = this.opts.transform;
      for (const item of page.items) fresh.set(objectKey(item), t ? t(item) : item);
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    // Replace the store and tell handlers what changed while we were not watching.
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.remove(key);
        for (const h of this.deleteHandlers) h(old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.store.get(key);
      const stored = this.putTransformed(key, obj);
      if (!old) for (const h of this.addHandlers) h(stored);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        for (const h of this.updateHandlers) h(stored, old);
    }
    this.resourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.opts.logger?.debug({ informer: this.name, items: fresh.size, resourceVersion: rv }, 'listed');
  }

  /** One watch request; resolves when it ends normally. Returns whether any event arrived. */
  private watchOnce(): Promise<boolean> {
    this.stats.watches++;
    this.opts.requests?.inc('watch', this.name);
    const min = this.opts.minWatchTimeoutSeconds;
    const timeoutSeconds = Math.floor(min + Math.random() * min);
    return new Promise<boolean>((resolve, reject) => {
      let received = false;
      let settled = false;
      let gone = false;
      let watchdog: NodeJS.Timeout | undefined;
      let silent = false;
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        if (watchdog) clearTimeout(watchdog);
        if (this.stopped) return resolve(received);
        if (gone) return reject(Object.assign(new Error('watch: resourceVersion expired'), { statusCode: 410 }));
        if (silent) {
          this.stats.watchdogRelists++;
          this.opts.logger?.warn({ informer: this.name }, 'watch silent too long, relisting');
          this.resourceVersion = '';
          return resolve(received);
        }
        if (this.forceExpiredRv) {
          this.forceExpiredRv = false;
          return resolve(received);
        }
        // A timeout from the client (no bytes for a long time) means a half-open connection.
        if (err && (err as Error).name === 'TimeoutError') {
          this.resourceVersion = '';
          return resolve(received);
        }
        if (err && (err as Error).name !== 'AbortError') return reject(err);
        resolve(received);
      };
      const armWatchdog = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          silent = true;
          this.currentWatch?.abort();
        }, this.opts.watchdogMs);
        watchdog.unref();
      };
      armWatchdog();
      const onEvent = (type: string, obj: T & { code?: number }) => {
        if (settled) return;
        armWatchdog();
        if (type === 'ERROR') {
          if (obj?.code === 410) gone = true;
          else this.opts.logger?.warn({ informer: this.name, status: obj }, 'watch error event');
          this.currentWatch?.abort();
          if (!gone) finish(Object.assign(new Error(`watch error event: ${JSON.stringify(obj).slice(0, 200)}`), { statusCode: obj?.code }));
          else finish(null);
          return;
        }
        const rv = obj?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (rv) this.resourceVersion = rv;
          return;
        }
        received = true;
        const key = objectKey(obj);
        const old = this.store.get(key);
        if (type === 'ADDED' || type === 'MODIFIED') {
          const stored = this.put(key, obj);
          if (!old) for (const h of this.addHandlers) h(stored);
          else for (const h of this.updateHandlers) h(stored, old);
        } else if (type === 'DELETED') {
          this.remove(key);
          for (const h of this.deleteHandlers) h(old ?? obj);
        }
        if (rv) this.resourceVersion = rv;
      };
      this.watcher
        .watch(
          this.opts.path,
          {
            allowWatchBookmarks: true,
            timeoutSeconds,
            resourceVersion: this.resourceVersion,
            labelSelector: this.opts.labelSelector,
          },
          onEvent,
          finish,
        )
        .then((controller) => {
          this.currentWatch = controller;
          if (this.stopped || settled) controller.abort();
        }, finish);
    });
  }
}

/** Read access to one or several list-watches of the same kind (one per watched namespace). */
export interface Cache<T extends KubernetesObject> {
  get(key: string): T | undefined;
  byIndex(value: string): T[];
  mutate(obj: T): void;
  list(): T[];
  hasSynced(): boolean;
}

export class CacheGroup<T extends KubernetesObject> implements Cache<T> {
  readonly members: ListWatch<T>[];
  constructor(members: ListWatch<T>[]) {
    this.members = members;
  }
  get(key: string): T | undefined {
    for (const m of this.members) {
      const o = m.get(key);
      if (o) return o;
    }
    return undefined;
  }
  byIndex(value: string): T[] {
    if (this.members.length === 1) return this.members[0].byIndex(value);
    return this.members.flatMap((m) => m.byIndex(value));
  }
  mutate(obj: T): void {
    for (const m of this.members) m.mutate(obj);
  }
  list(): T[] {
    return this.members.flatMap((m) => m.list());
  }
  hasSynced(): boolean {
    return this.members.every((m) => m.hasSynced());
  }
  get size(): number {
    return this.members.reduce((n, m) => n + m.size, 0);
  }
}
