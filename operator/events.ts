// Kubernetes Events (events.k8s.io/v1) for transitions. Reconcile collects them while it works and
// emits them only after the status write succeeded (JobSet's rule), so an event never announces a
// state the object does not show. Failures to emit are logged, never retried into a hot loop.
//
// Events are best effort and stay off the reconcile path:
// - they are queued and sent in the background (reconcile never waits for them);
// - while reconciles are waiting (`busy()`), queued events wait too, so a burst of new scans gets
//   its Jobs and status writes first; an event older than `maxDelayMs` is sent anyway, one at a
//   time, so a long burst cannot starve them;
// - an event identical to one still queued for the same object (type, reason, action, note) is
//   aggregated into it: one Event with series.count instead of two requests, as client-go's
//   EventRecorder does for repeats;
// - eventTime is when it happened, not when it was sent;
// - beyond `maxBacklog` queued events, new ones are dropped and counted.
import { randomBytes } from 'node:crypto';
import type { EventsV1Event } from '@kubernetes/client-node';
import { V1MicroTime } from '@kubernetes/client-node/dist/types.js';
import type { Logger } from 'pino';
import { describeError, type RequestCounter } from './kube.ts';
import { truncate } from './status.ts';

export interface PendingEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  /** What happened, CamelCase verb phrase (events.k8s.io "action"). */
  action: string;
  note: string;
  related?: { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string };
}

export interface Regarding {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
}

/** What reconcile needs of a recorder. */
export interface EventSink {
  emitInBackground(regarding: Regarding, events: readonly PendingEvent[]): void;
}

/** The one API call (KubeClient, or client-node's EventsV1Api). */
export interface EventWriter {
  createNamespacedEvent(r: { namespace: string; body: EventsV1Event }): Promise<unknown>;
}

/** The API server rejects notes of 1 KiB or more. */
export const MAX_NOTE = 1000;

export interface EventRecorderOptions {
  api: EventWriter;
  controller: string;
  instance: string;
  logger?: Logger;
  requests?: RequestCounter;
  /** True while higher-priority work (reconciles) is waiting: queued events wait too. */
  busy?: () => boolean;
  /** Requests in flight when not busy (default 4). */
  concurrency?: number;
  /** An event queued this long is sent even while busy (default 30 s). */
  maxDelayMs?: number;
  /** Queued events beyond this are dropped (default 10,000). */
  maxBacklog?: number;
  /** How often a busy recorder looks again (default 100 ms). */
  recheckMs?: number;
  now?: () => number;
}

interface Queued {
  /** Key of the regarding object in `queued`. */
  obj: string;
  regarding: Regarding;
  event: PendingEvent;
  /** First and last occurrence (ms since epoch). */
  first: number;
  last: number;
  count: number;
}

/** A flat copy of a string (a rope from concatenation is several heap objects). */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

export class EventRecorder implements EventSink {
  private readonly o: Required<Omit<EventRecorderOptions, 'logger' | 'requests' | 'busy'>> & Pick<EventRecorderOptions, 'logger' | 'requests' | 'busy'>;
  /** Queued events by regarding object (namespace/name/uid): usually one each. */
  private readonly queued = new Map<string, Queued | Queued[]>();
  private fifo: Queued[] = [];
  private head = 0;
  private running = 0;
  private flushing = false;
  private timer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];
  /** Counters: events sent (requests), aggregated into a queued one, dropped (backlog full), failed. */
  readonly stats = { sent: 0, aggregated: 0, dropped: 0, failed: 0 };

  constructor(opts: EventRecorderOptions) {
    this.o = { concurrency: 4, maxDelayMs: 30_000, maxBacklog: 10_000, recheckMs: 100, now: Date.now, ...opts };
  }

  /** Events queued and not yet sent. */
  get pending(): number {
    return this.fifo.length - this.head;
  }

  /** Queue without waiting; flush() waits until everything queued was sent (graceful shutdown). */
  emitInBackground(regarding: Regarding, events: readonly PendingEvent[]): void {
    if (events.length === 0) return;
    const now = this.o.now();
    const obj = `${regarding.namespace}/${regarding.name}/${regarding.uid ?? ''}`;
    for (const event of events) {
      const same = this.find(obj, event);
      if (same) {
        same.count++;
        same.last = now;
        same.regarding = regarding; // the newest resourceVersion
        this.stats.aggregated++;
        continue;
      }
      if (this.pending >= this.o.maxBacklog) {
        this.stats.dropped++;
        continue;
      }
      // Notes are template literals (V8 rope strings, several objects each): keep one flat copy.
      const q: Queued = { obj, regarding, event: { ...event, note: flat(event.note) }, first: now, last: now, count: 1 };
      const cur = this.queued.get(obj);
      this.queued.set(obj, cur === undefined ? q : Array.isArray(cur) ? [...cur, q] : [cur, q]);
      this.fifo.push(q);
    }
    this.pump();
  }

  private pump(): void {
    while (this.pending > 0) {
      const next = this.fifo[this.head];
      const overdue = this.o.now() - next.first >= this.o.maxDelayMs;
      const yielding = !this.flushing && (this.o.busy?.() ?? false);
      const limit = yielding ? (overdue ? 1 : 0) : this.o.concurrency;
      if (this.running >= limit) {
        if (yielding && !this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, this.o.recheckMs);
          this.timer.unref();
        }
        return;
      }
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.fifo.length) {
        this.fifo = this.fifo.slice(this.head);
        this.head = 0;
      }
      this.unqueue(next);
      this.running++;
      void this.send(next).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private find(obj: string, e: PendingEvent): Queued | undefined {
    const cur = this.queued.get(obj);
    if (cur === undefined) return undefined;
    const same = (q: Queued) => q.event.type === e.type && q.event.reason === e.reason && q.event.action === e.action && q.event.note === e.note;
    return Array.isArray(cur) ? cur.find(same) : same(cur) ? cur : undefined;
  }

  private unqueue(q: Queued): void {
    const cur = this.queued.get(q.obj);
    if (cur === q) this.queued.delete(q.obj);
    else if (Array.isArray(cur)) {
      const rest = cur.filter((x) => x !== q);
      if (rest.length === 0) this.queued.delete(q.obj);
      else this.queued.set(q.obj, rest.length === 1 ? rest[0] : rest);
    }
  }

  /** Send everything queued, busy or not; resolves when done or after timeoutMs. */
  async flush(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.flushing = true;
    try {
      if (this.running === 0 && this.pending === 0) return;
      this.pump();
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        if (opts.timeoutMs !== undefined) setTimeout(resolve, opts.timeoutMs).unref();
      });
    } finally {
      this.flushing = false;
    }
  }

  private async send(q: Queued): Promise<void> {
    const { regarding, event: e } = q;
    const name = `${regarding.name.slice(0, 200)}.${q.first.toString(16)}${randomBytes(4).toString('hex')}`;
    this.o.requests?.inc('create', 'events');
    const body: EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: regarding.namespace },
      eventTime: new V1MicroTime(q.first),
      reportingController: this.o.controller,
      reportingInstance: truncate(this.o.instance, 128),
      action: truncate(e.action, 128),
      reason: truncate(e.reason, 128),
      type: e.type,
      note: truncate(e.note, MAX_NOTE),
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: regarding.name,
        namespace: regarding.namespace,
        uid: regarding.uid,
        resourceVersion: regarding.resourceVersion,
      },
      ...(e.related ? { related: e.related } : {}),
      ...(q.count > 1 ? { series: { count: q.count, lastObservedTime: new V1MicroTime(q.last) } } : {}),
    };
    try {
      await this.o.api.createNamespacedEvent({ namespace: regarding.namespace, body });
      this.stats.sent++;
    } catch (err) {
      this.stats.failed++;
      this.o.logger?.warn({ err: describeError(err), reason: e.reason, object: `${regarding.namespace}/${regarding.name}` }, 'event not recorded');
    }
  }
}
