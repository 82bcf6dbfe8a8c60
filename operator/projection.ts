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

  private templates = new Map<string, string>();

  /**
   * An object with these keys and values laid out as JSON.parse lays it out: all properties inside
   * the object. Adding properties one by one to {} puts those beyond the fourth in a separate
   * backing store (~40 bytes more per object); so the object is parsed from a cached template of
   * its keys, then filled in.
   */
  private object(keys: string[], values: unknown[]): Record<string, unknown> {
    if (keys.length <= 4) {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) o[keys[i]] = values[i];
      return o;
    }
    const names = keys.join('\0');
    let t = this.templates.get(names);
    if (t === undefined) {
      t = `{${keys.map((k) => `${JSON.stringify(k)}:null`).join(',')}}`;
      if (this.templates.size >= 256) this.templates = new Map();
      this.templates.set(names, t);
    }
    const o = JSON.parse(t) as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) o[keys[i]] = values[i];
    return o;
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
      const keys: string[] = [];
      const values: unknown[] = [];
      for (const k of Object.keys(v)) {
        const val = (v as Record<string, unknown>)[k];
        if (val === undefined) continue;
        const c = this.share(val);
        keys.push(k);
        values.push(c.value);
        key = key !== undefined && c.key !== undefined ? `${key}${keys.length > 1 ? ',' : ''}${JSON.stringify(k)}:${c.key}` : undefined;
      }
      out = this.object(keys, values);
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

function time(t: unknown): string | undefined {
  if (t === undefined || t === null) return undefined;
  return t instanceof Date ? t.toISOString().replace(/\.\d{3}Z$/, 'Z') : String(t);
}

/**
 * The labels in `keys` that are set. A value equal to the controlling owner's name or uid (a Job's
 * scan-name and scan-uid labels) is the owner reference's string, not a second copy.
 */
function keepLabels(labels: Record<string, string> | undefined, keys: readonly string[], it: Interner, owner?: V1OwnerReference): Record<string, string> | undefined {
  if (!labels) return undefined;
  let out: Record<string, string> | undefined;
  for (const k of keys) {
    const v = labels[k];
    if (v === undefined) continue;
    (out ??= {})[k] = v === owner?.uid ? owner.uid : v === owner?.name ? owner.name : it.str(v);
  }
  return out;
}

function controllerOwner(refs: V1OwnerReference[] | undefined, it: Interner): V1OwnerReference | undefined {
  const o = refs?.find((r) => r.controller);
  if (!o) return undefined;
  return { apiVersion: it.str(o.apiVersion), kind: it.str(o.kind), name: o.name, uid: o.uid, controller: true };
}

function ownedMeta(m: Meta | undefined, labelKeys: readonly string[], it: Interner, annotations?: Record<string, string>): Meta {
  const owner = controllerOwner(m?.ownerReferences, it);
  return {
    name: m?.name,
    namespace: it.str(m?.namespace),
    uid: m?.uid,
    resourceVersion: m?.resourceVersion,
    creationTimestamp: it.str(time(m?.creationTimestamp)) as unknown as Date,
    deletionTimestamp: it.str(time(m?.deletionTimestamp)) as unknown as Date,
    labels: keepLabels(m?.labels, labelKeys, it, owner),
    annotations,
    ownerReferences: owner && [owner],
  };
}

// Fixed shapes are object literals with every property present (possibly undefined): V8 then keeps
// them inside the object, and all cached objects of a kind share one hidden class. Readers treat an
// undefined property as absent (as JSON does).

/** A BackdoorScan: identity and timestamps, the whole spec and the whole status. */
export function projectScan(o: ScanObject, it: Interner): ScanObject {
  const m = o.metadata;
  return {
    metadata: {
      name: m?.name,
      namespace: it.str(m?.namespace),
      uid: m?.uid,
      resourceVersion: m?.resourceVersion,
      generation: m?.generation,
      creationTimestamp: it.str(time(m?.creationTimestamp)) as unknown as Date,
      deletionTimestamp: it.str(time(m?.deletionTimestamp)) as unknown as Date,
    },
    spec: o.spec === undefined ? undefined : it.json(o.spec),
    status: o.status === undefined || o.status === null ? undefined : it.json(o.status),
  };
}

export const JOB_LABELS = [LABELS.managedBy, LABELS.scanName, LABELS.scanUid, LABELS.attempt, LABELS.queueName] as const;
export const POD_LABELS = [...JOB_LABELS, 'batch.kubernetes.io/job-name', 'job-name'] as const;

/** A worker Job: identity, our labels, the controlling owner, suspend/deadline, status. */
export function projectJob(j: V1Job, it: Interner): V1Job {
  const st = j.status;
  return {
    metadata: ownedMeta(j.metadata, JOB_LABELS, it),
    spec: j.spec && ({ suspend: j.spec.suspend, activeDeadlineSeconds: j.spec.activeDeadlineSeconds } as unknown as V1Job['spec']),
    status: st && {
      conditions: st.conditions?.length
        ? (st.conditions.map((c) =>
            it.json({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: time(c.lastTransitionTime) }),
          ) as unknown as NonNullable<V1Job['status']>['conditions'])
        : undefined,
      startTime: it.str(time(st.startTime)) as unknown as Date,
      completionTime: it.str(time(st.completionTime)) as unknown as Date,
      active: st.active,
      succeeded: st.succeeded,
      failed: st.failed,
    },
  };
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
  const scanName = p.metadata?.annotations?.[SCAN_NAME_ANNOTATION];
  const st = p.status;
  return {
    metadata: ownedMeta(p.metadata, POD_LABELS, it, scanName === undefined ? undefined : { [SCAN_NAME_ANNOTATION]: scanName }),
    status: st && {
      phase: it.str(st.phase),
      reason: it.str(st.reason),
      message: st.message,
      startTime: it.str(time(st.startTime)) as unknown as Date,
      conditions: st.conditions?.length
        ? (st.conditions.map((c) => it.json({ type: c.type, status: c.status, reason: c.reason, message: c.message })) as NonNullable<V1Pod['status']>['conditions'])
        : undefined,
      containerStatuses: st.containerStatuses?.length ? st.containerStatuses.map((cs) => projectContainerStatus(cs, it)) : undefined,
    },
  };
}
