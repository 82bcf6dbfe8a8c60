// Conditions and the one status write per reconcile.
// - lastTransitionTime moves only when a condition's status flips (reason/message edits keep it);
// - some condition types are mutually exclusive: setting one True sets the others False;
// - the write is a JSON merge patch to /status, sent only when the status really changed, with the
//   resourceVersion we read as a precondition (a 409 means our cache was stale: requeue).

/** The status subresource as a JSON merge patch target (KubeClient; fakes in tests). */
export interface StatusPatcher {
  patchNamespacedCustomObjectStatus(r: { group: string; version: string; plural: string; namespace: string; name: string; body: unknown }): Promise<unknown>;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionLike {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message?: string;
}

/** Kubernetes timestamps (metav1.Time) have second precision. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function findCondition<C extends ConditionLike>(conds: readonly C[] | undefined, type: string): C | undefined {
  return conds?.find((c) => c.type === type);
}

export function isTrue(conds: readonly ConditionLike[] | undefined, type: string): boolean {
  return findCondition(conds, type)?.status === 'True';
}

/**
 * Returns a new list with `input` applied. Does not mutate `conds`. Order of existing conditions is
 * kept and new types are appended, so a no-op update produces a deep-equal list.
 */
export function setCondition(
  conds: readonly ConditionLike[] | undefined,
  input: ConditionInput,
  opts: { now: Date; generation?: number; exclusive?: readonly string[] },
): ConditionLike[] {
  const now = rfc3339(opts.now);
  const out: ConditionLike[] = (conds ?? []).map((c) => ({ ...c }));
  const apply = (next: ConditionInput) => {
    const i = out.findIndex((c) => c.type === next.type);
    const prev = i >= 0 ? out[i] : undefined;
    const c: ConditionLike = {
      type: next.type,
      status: next.status,
      reason: next.reason,
      message: truncate(next.message ?? '', 32768),
      lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now,
      ...(opts.generation !== undefined ? { observedGeneration: opts.generation } : {}),
    };
    if (i >= 0) out[i] = c;
    else out.push(c);
  };
  apply(input);
  if (input.status === 'True' && opts.exclusive?.includes(input.type)) {
    for (const other of opts.exclusive) {
      if (other === input.type) continue;
      const prev = out.find((c) => c.type === other);
      if (prev && prev.status === 'True') {
        apply({ type: other, status: 'False', reason: input.reason, message: prev.message });
      }
    }
  }
  return out;
}

export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max - 3)}...`;
}

/** Structural equality for JSON values (key order ignored, undefined properties ignored). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => deepEqual(ao[k], bo[k]));
}

/** An RFC 7386 merge patch turning `from` into `to`: changed keys recursively, vanished keys as null, arrays whole. */
export function statusMergePatch(from: Record<string, unknown> | undefined, to: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(to)) {
    if (v === undefined) continue;
    const prev = from?.[k];
    if (deepEqual(prev, v)) continue;
    if (isPlainObject(prev) && isPlainObject(v)) patch[k] = statusMergePatch(prev, v);
    else patch[k] = v;
  }
  for (const k of Object.keys(from ?? {})) if (to[k] === undefined && from?.[k] !== undefined) patch[k] = null;
  return patch;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface StatusTarget {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
  resourceVersion?: string;
}

/**
 * Writes `to` as the object's status with a merge patch on /status, if it differs from `from`.
 * Returns the updated object, or undefined when nothing needed writing.
 */
export async function writeStatus<T>(
  api: StatusPatcher,
  target: StatusTarget,
  from: Record<string, unknown> | undefined,
  to: Record<string, unknown>,
): Promise<T | undefined> {
  const patch = statusMergePatch(from, to);
  if (Object.keys(patch).length === 0) return undefined;
  const body: Record<string, unknown> = { status: patch };
  if (target.resourceVersion) body.metadata = { resourceVersion: target.resourceVersion };
  return (await api.patchNamespacedCustomObjectStatus({
    group: target.group,
    version: target.version,
    plural: target.plural,
    namespace: target.namespace,
    name: target.name,
    body,
  })) as T;
}
