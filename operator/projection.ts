// What the informer caches keep of each object: a compact projection with exactly the fields the
// operator reads, built fresh (not the parsed API object with fields deleted, which V8 would keep
// in slow dictionary mode), with repeated content shared.
//
// Readers of the caches, and what they read:
// - reconcile.ts: scan metadata (name, namespace, uid, generation, resourceVersion,
//   creationTimestamp, deletionTimestamp), spec (all of it: validated and turned into the Job) and
//   status (all of it: the old status is the base of the merge patch); Job metadata (name,
//   namespace, labels attempt and queue name, creation and deletion timestamps), spec.suspend,
//   spec.activeDeadlineSeconds, status (conditions, start and completion time); Pod metadata (name,
//   deletionTimestamp), status (phase, reason, message, startTime, conditions, container states
//   with the worker's termination message);
// - main.ts: the owner reference of Jobs (kind, controller, name, uid: index and event mapping), the
//   job-name label and scan-name annotation of Pods;
// - progress.ts: uids, the scan-uid and attempt labels, owner references, Job conditions, scan
//   status.
// Not kept: managedFields (often half of an object), other labels and annotations (a
// kubectl.kubernetes.io/last-applied-configuration annotation repeats the whole spec), the Job's pod
// template and selector, the Pod's spec.
//
// Sharing: many scans are created from one template and reach the same states at the same second,
// so an Interner shares equal strings and equal frozen sub-objects (the spec's parameters, a
// condition) between cached objects. Its pools are bounded and simply start over when full:
// sharing is an optimisation, never needed for correctness.
import type { V1ContainerStatus, V1Job, V1ObjectMeta, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../crds/backdoorscan.ts';
import { SCAN_NAME_ANNOTATION } from './job.ts';
import type { ScanObject } from './reconcile.ts';

/** Strings longer than this are not worth a pool lookup (a termination message, a long note). */
const MAX_INTERNED_STRING = 256;
/** Sub-objects whose JSON is longer than this are not shared (the key would cost as much as the object). */
const MAX_SHARED_JSON = 512;

export class Interner {
  private strings = new Map<string, string>();
  private objects = new Map<string, object>();
  readonly maxStrings: number;
  readonly maxObjects: number;
  /** Counters for tests and debugging. */
  readonly stats = { stringHits: 0, objectHits: 0, resets: 0 };

  constructor(opts: { maxStrings?: number; maxObjects?: number } = {}) {
    this.maxStrings = opts.maxStrings ?? 10_000;
    this.maxObjects = opts.maxObjects ?? 2_000;
  }

  /** The pooled copy of an equal string (pools are bounded: when full they start over). */
  str<S extends string | undefined>(s: S): S {
    if (s === undefined || s.length > MAX_INTERNED_STRING) return s;
    const hit = this.strings.get(s);
    if (hit !== undefined) {
      this.stats.stringHits++;
      return hit as S;
    }
    if (this.strings.size >= this.maxStrings) {
      this.strings = new Map();
      this.stats.resets++;
    }
    this.strings.set(s, s);
    return s;
  }

  /**
   * A deep copy of a JSON value with strings interned and every object or array that is small
   * enough replaced by a shared, frozen, equal one. Key order is part of equality (the API server
   * serialises in a stable order). Callers must not mutate the result.
   */
  json<V>(v: V): V {
    return this.share(v).value as V;
  }

  private share(v: unknown): { value: unknown; key?: string } {
    if (typeof v === 'string') return { value: this.str(v), key: JSON.stringify(v) };
    if (v === null || typeof v !== 'object') return { value: v, key: JSON.stringify(v) };
    let key: string | undefined = '';
    let out: unknown;
    if (Array.isArray(v)) {
      const arr: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const c = this.share(v[i]);
        arr[i] = c.value;
        key = key !== undefined && c.key !== undefined ? `${key}${i ? ',' : ''}${c.key}` : undefined;
      }
      out = arr;
      if (key !== undefined) key = `[${key}]`;
    } else {
      const obj: Record<string, unknown> = {};
      let first = true;
      for (const k of Object.keys(v)) {
        const val = (v as Record<string, unknown>)[k];
        if (val === undefined) continue;
        const c = this.share(val);
        obj[k] = c.value;
        key = key !== undefined && c.key !== undefined ? `${key}${first ? '' : ','}${JSON.stringify(k)}:${c.key}` : undefined;
        first = false;
      }
      out = obj;
      if (key !== undefined) key = `{${key}}`;
    }
    if (key === undefined || key.length > MAX_SHARED_JSON) return { value: out };
    const hit = this.objects.get(key);
    if (hit !== undefined) {
      this.stats.objectHits++;
      return { value: hit, key };
    }
    if (this.objects.size >= this.maxObjects) {
      this.objects = new Map();
      this.stats.resets++;
    }
    Object.freeze(out);
    this.objects.set(key, out as object);
    return { value: out, key };
  }
}

type Meta = V1ObjectMeta;

/** Set a key only when the value is defined (no `undefined` properties in cached objects). */
function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined && v !== null) o[k] = v;
}

function time(t: unknown): string | undefined {
  if (t === undefined || t === null) return undefined;
  return t instanceof Date ? t.toISOString().replace(/\.\d{3}Z$/, 'Z') : String(t);
}

function keepLabels(labels: Record<string, string> | undefined, keys: readonly string[], it: Interner): Record<string, string> | undefined {
  if (!labels) return undefined;
  let out: Record<string, string> | undefined;
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined) (out ??= {})[k] = it.str(v);
  }
  return out;
}

function controllerOwner(refs: V1OwnerReference[] | undefined, it: Interner): V1OwnerReference[] | undefined {
  const o = refs?.find((r) => r.controller);
  if (!o) return undefined;
  return [{ apiVersion: it.str(o.apiVersion), kind: it.str(o.kind), name: o.name, uid: o.uid, controller: true }];
}

function baseMeta(m: Meta | undefined, it: Interner): Meta {
  const out: Meta = {};
  put(out, 'name', m?.name);
  put(out, 'namespace', it.str(m?.namespace));
  put(out, 'uid', m?.uid);
  put(out, 'resourceVersion', m?.resourceVersion);
  put(out, 'generation', m?.generation);
  put(out, 'creationTimestamp', it.str(time(m?.creationTimestamp)) as unknown as Date);
  put(out, 'deletionTimestamp', it.str(time(m?.deletionTimestamp)) as unknown as Date);
  return out;
}

/** A BackdoorScan: identity and timestamps, the whole spec and the whole status. */
export function projectScan(o: ScanObject, it: Interner): ScanObject {
  const out: ScanObject = { metadata: baseMeta(o.metadata, it) };
  if (o.spec !== undefined) out.spec = it.json(o.spec);
  if (o.status !== undefined) out.status = projectStatus(o.status, it);
  return out;
}

/** Status: a fresh top-level object (unique per scan: jobName, times) whose parts are shared. */
function projectStatus(s: Record<string, unknown>, it: Interner): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(s)) if (s[k] !== undefined && s[k] !== null) out[k] = it.json(s[k]);
  return out;
}

export const JOB_LABELS = [LABELS.managedBy, LABELS.scanName, LABELS.scanUid, LABELS.attempt, LABELS.queueName] as const;
export const POD_LABELS = [...JOB_LABELS, 'batch.kubernetes.io/job-name', 'job-name'] as const;

/** A worker Job: identity, our labels, the controlling owner, suspend/deadline, status. */
export function projectJob(j: V1Job, it: Interner): V1Job {
  const metadata = baseMeta(j.metadata, it);
  put(metadata, 'labels', keepLabels(j.metadata?.labels, JOB_LABELS, it));
  put(metadata, 'ownerReferences', controllerOwner(j.metadata?.ownerReferences, it));
  const out: V1Job = { metadata };
  if (j.spec) {
    const spec: Record<string, unknown> = {};
    put(spec, 'suspend', j.spec.suspend);
    put(spec, 'activeDeadlineSeconds', j.spec.activeDeadlineSeconds);
    out.spec = spec as unknown as V1Job['spec'];
  }
  if (j.status) {
    const st = j.status;
    const status: NonNullable<V1Job['status']> = {};
    if (st.conditions?.length) {
      status.conditions = st.conditions.map((c) =>
        it.json({
          type: c.type,
          status: c.status,
          reason: c.reason,
          message: c.message,
          lastTransitionTime: time(c.lastTransitionTime),
        }),
      ) as unknown as NonNullable<V1Job['status']>['conditions'];
    }
    put(status, 'startTime', it.str(time(st.startTime)) as unknown as Date);
    put(status, 'completionTime', it.str(time(st.completionTime)) as unknown as Date);
    put(status, 'active', st.active);
    put(status, 'succeeded', st.succeeded);
    put(status, 'failed', st.failed);
    out.status = status;
  }
  return out;
}

function projectContainerStatus(cs: V1ContainerStatus, it: Interner): V1ContainerStatus {
  const s = cs.state;
  const state: NonNullable<V1ContainerStatus['state']> = {};
  if (s?.waiting) state.waiting = it.json({ reason: s.waiting.reason, message: s.waiting.message });
  if (s?.running) state.running = { startedAt: time(s.running.startedAt) as unknown as Date };
  if (s?.terminated) {
    const t = s.terminated;
    state.terminated = {
      exitCode: t.exitCode,
      ...(t.reason !== undefined ? { reason: it.str(t.reason) } : {}),
      ...(t.message !== undefined ? { message: t.message } : {}),
      ...(t.startedAt !== undefined ? { startedAt: time(t.startedAt) as unknown as Date } : {}),
      ...(t.finishedAt !== undefined ? { finishedAt: time(t.finishedAt) as unknown as Date } : {}),
    };
  }
  return { name: it.str(cs.name), state } as V1ContainerStatus;
}

/** A worker Pod: identity, job-name and our labels, the scan-name annotation, owner, status. */
export function projectPod(p: V1Pod, it: Interner): V1Pod {
  const metadata = baseMeta(p.metadata, it);
  put(metadata, 'labels', keepLabels(p.metadata?.labels, POD_LABELS, it));
  const scanName = p.metadata?.annotations?.[SCAN_NAME_ANNOTATION];
  if (scanName !== undefined) metadata.annotations = { [SCAN_NAME_ANNOTATION]: scanName };
  put(metadata, 'ownerReferences', controllerOwner(p.metadata?.ownerReferences, it));
  const out: V1Pod = { metadata };
  const st = p.status;
  if (st) {
    const status: NonNullable<V1Pod['status']> = {};
    put(status, 'phase', it.str(st.phase));
    put(status, 'reason', it.str(st.reason));
    put(status, 'message', st.message);
    put(status, 'startTime', it.str(time(st.startTime)) as unknown as Date);
    if (st.conditions?.length) {
      status.conditions = st.conditions.map((c) => it.json({ type: c.type, status: c.status, reason: c.reason, message: c.message })) as NonNullable<V1Pod['status']>['conditions'];
    }
    if (st.containerStatuses?.length) status.containerStatuses = st.containerStatuses.map((cs) => projectContainerStatus(cs, it));
    out.status = status;
  }
  return out;
}
