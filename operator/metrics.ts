// Prometheus metrics on a private Registry: controller-runtime-compatible names so existing
// dashboards carry over, plus the domain metrics of BackdoorScans. No object names in labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ConditionReason as R } from '../crds/backdoorscan.ts';
import type { EventRecorder } from './events.ts';
import type { QueueMetrics, WorkQueue } from './workqueue.ts';

export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];
/** How a scan finished: its verdict, or Failed. */
export const FINISHED_VERDICTS = ['Backdoored', 'Clean', 'Unknown', 'Failed'] as const;
export type Verdict = (typeof FINISHED_VERDICTS)[number];
/** The Eliminated condition's reasons a finished scan that asked for unlearning can end with. */
export const ELIMINATION_RESULTS = [R.TriggerUnlearned, R.BackdoorSurvived, R.NothingToUnlearn, R.Inconclusive] as const;

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly controller: string;

  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly maxWorkers: Gauge<'controller'>;

  readonly wqDepth: Gauge<'name' | 'controller'>;
  readonly wqAdds: Counter<'name' | 'controller'>;
  readonly wqQueueDuration: Histogram<'name' | 'controller'>;
  readonly wqWorkDuration: Histogram<'name' | 'controller'>;
  readonly wqRetries: Counter<'name' | 'controller'>;
  readonly wqUnfinished: Gauge<'name' | 'controller'>;
  readonly wqLongest: Gauge<'name' | 'controller'>;

  readonly leaderStatus: Gauge<'name'>;

  readonly scans: Gauge<'condition'>;
  readonly scansFinished: Counter<'verdict'>;
  readonly backdoorsDetected: Counter;
  readonly eliminations: Counter<'result'>;
  readonly scanDuration: Histogram;
  readonly scanQueueWait: Histogram;
  readonly apiRequests: Counter<'verb' | 'resource'>;
  readonly eventsPending: Gauge;
  readonly events: Counter<'result'>;

  constructor(opts: { controller?: string; defaultMetrics?: boolean } = {}) {
    this.controller = opts.controller ?? 'backdoorscan';
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.maxWorkers = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });

    const wqLabels = ['name', 'controller'] as const;
    const exp = (start: number, factor: number, n: number) => Array.from({ length: n }, (_, i) => start * factor ** i);
    this.wqDepth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: wqLabels, registers });
    this.wqAdds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: wqLabels, registers });
    this.wqQueueDuration = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: wqLabels,
      buckets: exp(1e-8, 10, 11),
      registers,
    });
    this.wqWorkDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: wqLabels,
      buckets: exp(1e-8, 10, 11),
      registers,
    });
    this.wqRetries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: wqLabels, registers });
    this.wqUnfinished = new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'How many seconds of work has been done that is in progress and hasn\'t been observed by work_duration',
      labelNames: wqLabels,
      registers,
    });
    this.wqLongest = new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: wqLabels,
      registers,
    });

    this.leaderStatus = new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    });

    this.scans = new Gauge({
      name: 'elibadcode_scans',
      help: 'BackdoorScans by their current state (the condition that is True: Pending, Queued, Running, Succeeded, Failed, Suspended, Invalid)',
      labelNames: ['condition'],
      registers,
    });
    this.scansFinished = new Counter({
      name: 'elibadcode_scans_finished_total',
      help: 'BackdoorScans that reached a final state, by verdict (Backdoored, Clean, Unknown, Failed)',
      labelNames: ['verdict'],
      registers,
    });
    this.backdoorsDetected = new Counter({
      name: 'elibadcode_backdoors_detected_total',
      help: 'Scans that finished with verdict Backdoored',
      registers,
    });
    this.eliminations = new Counter({
      name: 'elibadcode_scan_eliminations_total',
      help: 'Finished scans that asked for unlearning, by outcome: the reason of the Eliminated condition (TriggerUnlearned, BackdoorSurvived, NothingToUnlearn for a Clean verdict, Inconclusive)',
      labelNames: ['result'],
      registers,
    });
    this.scanDuration = new Histogram({
      name: 'elibadcode_scan_duration_seconds',
      help: 'From the worker Job starting to the scan finishing',
      buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400],
      registers,
    });
    this.scanQueueWait = new Histogram({
      name: 'elibadcode_scan_queue_wait_seconds',
      help: 'From the scan being created to its worker Job starting (Kueue admission, scheduling, image pull)',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
      registers,
    });
    this.apiRequests = new Counter({
      name: 'elibadcode_operator_api_requests_total',
      help: 'Requests the operator made to the Kubernetes API server',
      labelNames: ['verb', 'resource'],
      registers,
    });
    this.eventsPending = new Gauge({
      name: 'elibadcode_operator_events_pending',
      help: 'Kubernetes Events queued and not yet sent (they wait while reconciles do)',
      registers,
    });
    this.events = new Counter({
      name: 'elibadcode_operator_events_total',
      help: 'Kubernetes Events by result: sent, aggregated (into a queued identical event, as series.count), dropped (backlog full), failed',
      labelNames: ['result'],
      registers,
    });

    // Every series an alert or dashboard selects on exists from the start, at 0: increase() sees no
    // increase in a series whose first sample is already 1, so without this the first failure or
    // surviving backdoor after an operator (re)start would never alert (controller-runtime does the
    // same for its reconcile results).
    for (const result of RECONCILE_RESULTS) this.reconcileTotal.inc({ controller: this.controller, result }, 0);
    this.reconcileErrors.inc({ controller: this.controller }, 0);
    for (const verdict of FINISHED_VERDICTS) this.scansFinished.inc({ verdict }, 0);
    for (const result of ELIMINATION_RESULTS) this.eliminations.inc({ result }, 0);
  }

  /** Refresh the event recorder's gauge and counters before each scrape. */
  trackEvents(recorder: Pick<EventRecorder, 'pending' | 'stats'>): void {
    const seen: Record<string, number> = {};
    this.collectHooks.push(() => {
      this.eventsPending.set(recorder.pending);
      for (const [result, n] of Object.entries(recorder.stats)) {
        const d = n - (seen[result] ?? 0);
        if (d > 0) this.events.inc({ result }, d);
        seen[result] = n;
      }
    });
  }

  /** QueueMetrics adapter for a WorkQueue named `name`. */
  queueMetrics(name: string): QueueMetrics {
    const l = { name, controller: this.controller };
    return {
      add: () => this.wqAdds.inc(l),
      depth: (n) => this.wqDepth.set(l, n),
      queued: (s) => this.wqQueueDuration.observe(l, s),
      worked: (s) => this.wqWorkDuration.observe(l, s),
      retry: () => this.wqRetries.inc(l),
    };
  }

  /** Refresh the gauges computed from a live queue (called before each scrape). */
  trackQueue(queue: WorkQueue): void {
    const l = { name: queue.name, controller: this.controller };
    const refresh = () => {
      const { unfinishedSeconds, longestSeconds } = queue.inFlight();
      this.wqUnfinished.set(l, unfinishedSeconds);
      this.wqLongest.set(l, longestSeconds);
      this.wqDepth.set(l, queue.len());
    };
    this.collectHooks.push(refresh);
  }

  private collectHooks: Array<() => void> = [];

  async render(): Promise<{ contentType: string; body: string }> {
    for (const h of this.collectHooks) h();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  onCollect(fn: () => void): void {
    this.collectHooks.push(fn);
  }
}
