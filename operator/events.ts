// Kubernetes Events (events.k8s.io/v1) for transitions. Reconcile collects them while it works and
// emits them only after the status write succeeded (JobSet's rule), so an event never announces a
// state the object does not show. Failures to emit are logged, never retried into a hot loop.
import { randomBytes } from 'node:crypto';
import { V1MicroTime, type EventsV1Api } from '@kubernetes/client-node';
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

/** The API server rejects notes of 1 KiB or more. */
export const MAX_NOTE = 1000;

export class EventRecorder {
  private readonly api: EventsV1Api;
  private readonly controller: string;
  private readonly instance: string;
  private readonly logger?: Logger;
  private readonly requests?: RequestCounter;

  constructor(opts: { api: EventsV1Api; controller: string; instance: string; logger?: Logger; requests?: RequestCounter }) {
    this.api = opts.api;
    this.controller = opts.controller;
    this.instance = opts.instance;
    this.logger = opts.logger;
    this.requests = opts.requests;
  }

  private backlog: Array<{ regarding: Regarding; events: readonly PendingEvent[] }> = [];
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  /** Events are best effort: at most this many requests in flight, so a burst of transitions does
   * not compete with Job creation and status writes for the API server. Beyond maxBacklog, drop. */
  private readonly concurrency = 2;
  private readonly maxBacklog = 10_000;
  dropped = 0;

  /** Emit without waiting; flush() waits until everything queued was sent (graceful shutdown). */
  emitInBackground(regarding: Regarding, events: readonly PendingEvent[]): void {
    if (events.length === 0) return;
    if (this.backlog.length >= this.maxBacklog) {
      this.dropped += events.length;
      return;
    }
    this.backlog.push({ regarding, events });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.backlog.length) {
      const item = this.backlog.shift()!;
      this.running++;
      this.emit(item.regarding, item.events).finally(() => {
        this.running--;
        this.pump();
        if (this.running === 0 && this.backlog.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  async flush(): Promise<void> {
    if (this.running === 0 && this.backlog.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  async emit(regarding: Regarding, events: readonly PendingEvent[]): Promise<void> {
    for (const e of events) {
      const name = `${regarding.name.slice(0, 200)}.${Date.now().toString(16)}${randomBytes(4).toString('hex')}`;
      this.requests?.inc('create', 'events');
      try {
        await this.api.createNamespacedEvent({
          namespace: regarding.namespace,
          body: {
            apiVersion: 'events.k8s.io/v1',
            kind: 'Event',
            metadata: { name, namespace: regarding.namespace },
            eventTime: new V1MicroTime(),
            reportingController: this.controller,
            reportingInstance: truncate(this.instance, 128),
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
            related: e.related,
          },
        });
      } catch (err) {
        this.logger?.warn({ err: describeError(err), reason: e.reason, object: `${regarding.namespace}/${regarding.name}` }, 'event not recorded');
      }
    }
  }
}
