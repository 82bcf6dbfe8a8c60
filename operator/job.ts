// The worker Job of one scan attempt: a pure function of the scan, the attempt number and the
// operator's configuration. Same inputs, same Job (deterministic name: a 409 on create means the
// Job already exists, so duplicates are impossible).
import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1EnvFromSource, V1Job, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { API_VERSION, DEFAULT_GPU_RESOURCE_NAME, KIND, LABELS, type BackdoorScan, type BackdoorScanSpec, type Quantity } from '../crds/backdoorscan.ts';

export const MANAGED_BY = 'elibadcode-operator';
/** Pod-template annotation with the full scan name (label values stop at 63 characters). */
export const SCAN_NAME_ANNOTATION = `elibadcode.dev/scan-name`;
export const WORKER_CONTAINER = 'worker';
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';
/**
 * Worker exit codes that no retry can fix: the Job's podFailurePolicy fails the Job at once on them.
 * The worker's contract (worker/commands/scan.ts): 0 done, 1 failed (the summary's error.reason says
 * whether it is permanent; the operator reads it), 2 bad flags.
 */
export const PERMANENT_EXIT_CODES = [2];
const PVC_ROOT = '/mnt/pvc';
/** Live progress (operator/progress.ts): the projected token's audience, lifetime and where the worker reads it. */
export const PROGRESS_TOKEN_AUDIENCE = 'elibadcode.dev/progress';
export const PROGRESS_TOKEN_EXPIRATION_SECONDS = 3600;
export const PROGRESS_TOKEN_DIR = '/var/run/secrets/elibadcode';
export const PROGRESS_TOKEN_FILE = `${PROGRESS_TOKEN_DIR}/token`;

export interface JobConfig {
  workerImage: string;
  workerServiceAccount: string;
  gpuResourceName?: string;
  /** Applied when the scan does not set spec.ttlSecondsAfterFinished. Long enough that an operator outage does not lose results. */
  defaultTtlSecondsAfterFinished?: number;
  defaultRequests?: Record<string, string>;
  defaultLimits?: Record<string, string>;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Tolerations added to every worker pod besides spec.tolerations (e.g. the GPU node taint). */
  tolerations?: V1Toleration[];
  /** UID/GID the worker runs as (Restricted profile: non-root). */
  runAsUser?: number;
  scratchSizeLimit?: string;
  /**
   * Where workers POST live progress (e.g. http://elibadcode-operator-progress.<ns>.svc:8082/v1/progress).
   * Set: the pod gets a projected token for PROGRESS_TOKEN_AUDIENCE (not an API token) and the env
   * to use it. Unset: neither.
   */
  progressUrl?: string;
}

export const DEFAULT_JOB_CONFIG = {
  gpuResourceName: DEFAULT_GPU_RESOURCE_NAME,
  defaultTtlSecondsAfterFinished: 7 * 24 * 3600,
  defaultRequests: { cpu: '2', memory: '8Gi' },
  defaultLimits: { memory: '16Gi' },
  imagePullPolicy: 'IfNotPresent',
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] as V1Toleration[],
  runAsUser: 65532,
  scratchSizeLimit: '50Gi',
} as const;

function shortHash(s: string, n = 5): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** A valid label value (<= 63 characters, alphanumeric at both ends) that stays unique by hashing. */
export function labelValue(s: string): string {
  if (s.length <= 63) return s;
  return `${s.slice(0, 57).replace(/[-_.]+$/, '')}-${shortHash(s)}`;
}

/** `<scan>-<attempt>`, hash-truncated so it fits a DNS label (63), as Job names must (the job-name pod label). */
export function jobName(scanName: string, attempt: number): string {
  const suffix = `-${attempt}`;
  const plain = `${scanName}${suffix}`;
  if (plain.length <= 63) return plain;
  const keep = 63 - suffix.length - 6;
  return `${scanName.slice(0, keep).replace(/[-.]+$/, '')}-${shortHash(scanName)}${suffix}`;
}

function quantity(q: Quantity | undefined): string | undefined {
  return q === undefined ? undefined : String(q);
}

interface Mounts {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
}

/** pvc://claim/path becomes a mount of the claim and a local path; other URIs pass through for the worker to fetch. */
function location(uri: string, m: Mounts, writable: boolean): string {
  const match = /^pvc:\/\/([^/]+)(\/.*)?$/.exec(uri);
  if (!match) return uri;
  const claim = match[1];
  const vol = `pvc-${labelValue(claim).slice(0, 50)}`.replace(/\.+/g, '-');
  const existing = m.volumes.find((v) => v.name === vol);
  if (!existing) {
    m.volumes.push({ name: vol, persistentVolumeClaim: { claimName: claim, readOnly: !writable } });
    m.mounts.push({ name: vol, mountPath: `${PVC_ROOT}/${claim}`, readOnly: !writable });
  } else if (writable) {
    existing.persistentVolumeClaim!.readOnly = false;
    const mount = m.mounts.find((x) => x.name === vol);
    if (mount) mount.readOnly = false;
  }
  return `${PVC_ROOT}/${claim}${match[2] ?? ''}`;
}

const PLACEMENT_FLAG = { Identifier: 'identifier', BodyStart: 'body-start', FunctionName: 'function-name' } as const;

/** The `elibadcode scan` arguments for a spec (flags mirror the spec's parameters). */
export function workerArgs(spec: BackdoorScanSpec, m: Mounts = { volumes: [], mounts: [] }): string[] {
  const a: string[] = ['scan'];
  const p = spec.parameters;
  a.push('--task', spec.task);
  a.push('--model', location(spec.model.uri, m, false));
  if (spec.model.sha256) a.push('--model-sha256', spec.model.sha256);
  a.push('--data', location(spec.data.uri, m, false));
  if (spec.data.sha256) a.push('--data-sha256', spec.data.sha256);
  if (spec.output) {
    a.push('--out', location(spec.output.uri, m, true));
    if (spec.output.reportUri) a.push('--report', location(spec.output.reportUri, m, true));
  }
  if (spec.labels?.victim !== undefined) a.push('--victim-label', String(spec.labels.victim));
  if (spec.labels?.target !== undefined) a.push('--target-label', String(spec.labels.target));
  a.push('--trigger-length', String(p.triggerLength));
  if (spec.task === 'search') a.push('--target-length', String(p.targetLength));
  a.push('--top-k', String(p.topK), '--candidates', String(p.candidates), '--iterations', String(p.iterations));
  const opt = (flag: string, v: string | number | undefined) => {
    if (v !== undefined) a.push(flag, String(v));
  };
  a.push('--inversion-samples', String(p.inversionSamples));
  opt('--beta', p.beta);
  a.push('--position-mode', p.positionMode, '--fixed-position', String(p.fixedPosition), '--seed', String(p.seed));
  if (p.detectionThreshold !== undefined) a.push('--detection-threshold', p.detectionThreshold);
  // Always explicit: 0 means "off" to the worker too, whose own default (10) is demo-sized.
  a.push('--early-stop-patience', String(p.earlyStop.patience));
  // The worker caps the length to the model's positions and records that.
  a.push('--max-length', String(p.maxLength));
  if (spec.task === 'search') a.push('--query-max-length', String(p.queryMaxLength));
  opt('--early-stop-loss', p.earlyStop.lossBelow);
  opt('--early-stop-asr', p.earlyStop.asrAtLeast);
  opt('--screen-limit', p.screenLimit);
  if (p.keepWordInitial) a.push('--keep-word-initial');
  if (p.twoSidedAnchoring) a.push('--two-sided-anchoring');
  if (p.anchorRepeats) a.push('--anchor-repeats');
  const e = spec.evaluation;
  if (e.data) {
    a.push('--eval-data', location(e.data.uri, m, false));
    if (e.data.sha256) a.push('--eval-data-sha256', e.data.sha256);
  }
  opt('--eval-fraction', e.fraction);
  opt('--verdict-samples', e.verdictSamples);
  const k = spec.knownTrigger;
  if (k) {
    // `=`: a statement trigger may start with a dash (`--i;`), which parseArgs would take for a flag.
    a.push('--known-attack', k.attack, `--known-trigger=${k.trigger}`);
    opt('--known-victim-label', k.victimLabel);
    opt('--known-target-label', k.targetLabel);
    opt('--known-target-word', k.targetWord);
  }
  if (spec.eliminate) {
    const u = spec.unlearning;
    a.push(u.force ? '--force-eliminate' : '--eliminate');
    if (u.data) {
      a.push('--unlearn-data', location(u.data.uri, m, false));
      if (u.data.sha256) a.push('--unlearn-data-sha256', u.data.sha256);
    }
    opt('--injection-rate', u.injectionRate);
    opt('--injection-scope', u.injectionScope);
    a.push('--unlearn-placement', PLACEMENT_FLAG[u.placement]);
    opt('--learning-rate', u.learningRate);
    opt('--epochs', u.epochs);
    opt('--batch-size', u.batchSize);
    opt('--warmup-ratio', u.warmupRatio);
    opt('--gradient-clip', u.gradientClip);
    opt('--weight-decay', u.weightDecay);
    opt('--unlearn-seed', u.seed);
    opt('--trainable', u.trainable);
    if (u.adversary) {
      // Any adversary flag turns it on in the worker; its defaults fill the rest.
      a.push('--adversary-steps', String(u.adversary.steps));
      opt('--adversary-step', u.adversary.step);
      opt('--adversary-radius', u.adversary.radius);
    }
  } else {
    a.push('--no-eliminate');
  }
  a.push('--scratch', '/scratch', '--summary-file', TERMINATION_MESSAGE_PATH);
  return a;
}

export function buildJob(scan: BackdoorScan, attempt: number, config: JobConfig): V1Job {
  const cfg = { ...DEFAULT_JOB_CONFIG, ...config };
  const spec = scan.spec;
  const name = jobName(scan.metadata.name!, attempt);
  const scanName = scan.metadata.name!;
  const uid = scan.metadata.uid!;
  const labels: Record<string, string> = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.scanName]: labelValue(scanName),
    [LABELS.scanUid]: uid,
    [LABELS.attempt]: String(attempt),
  };
  const annotations: Record<string, string> = {
    [SCAN_NAME_ANNOTATION]: scanName,
    [LABELS.scanUid]: uid,
    [LABELS.attempt]: String(attempt),
  };
  const jobLabels = { ...labels };
  if (spec.queueName) jobLabels[LABELS.queueName] = spec.queueName;

  const m: Mounts = {
    volumes: [
      { name: 'tmp', emptyDir: {} },
      { name: 'scratch', emptyDir: { sizeLimit: cfg.scratchSizeLimit } },
    ],
    mounts: [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'scratch', mountPath: '/scratch' },
    ],
  };
  const args = workerArgs(spec, m);

  const gpuName = spec.resources.gpuResourceName ?? cfg.gpuResourceName;
  const requests: Record<string, string> = { ...cfg.defaultRequests };
  const limits: Record<string, string> = { ...cfg.defaultLimits };
  for (const [k, v] of Object.entries(spec.resources.requests ?? {})) {
    const q = quantity(v as Quantity | undefined);
    if (q !== undefined) requests[k] = q;
  }
  for (const [k, v] of Object.entries(spec.resources.limits ?? {})) {
    const q = quantity(v as Quantity | undefined);
    if (q !== undefined) limits[k] = q;
  }
  // The scan sets a limit but no request: the operator's default request could exceed it, so the
  // request follows the limit (what Kubernetes does when requests are omitted).
  const specReq = (spec.resources.requests ?? {}) as Record<string, unknown>;
  const specLim = (spec.resources.limits ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(requests)) if (specLim[k] !== undefined && specReq[k] === undefined) requests[k] = limits[k];
  if (spec.resources.gpus > 0) limits[gpuName] = String(spec.resources.gpus); // extended resources: limits only

  const env: V1EnvVar[] = [
    { name: 'ELIBADCODE_SCAN_NAME', value: scanName },
    { name: 'ELIBADCODE_SCAN_NAMESPACE', value: scan.metadata.namespace },
    { name: 'ELIBADCODE_SCAN_UID', value: uid },
    { name: 'ELIBADCODE_ATTEMPT', value: String(attempt) },
    { name: 'HOME', value: '/scratch' },
    { name: 'TMPDIR', value: '/tmp' },
  ];
  const envFrom: V1EnvFromSource[] = [];
  const cred = spec.credentials;
  if (cred) {
    if (cred.keys?.length) {
      for (const key of cred.keys) env.push({ name: key, valueFrom: { secretKeyRef: { name: cred.secretName, key } } });
    } else {
      envFrom.push({ secretRef: { name: cred.secretName } });
    }
  }

  if (cfg.progressUrl) {
    // Not an API credential: its audience is the operator's, so the API server refuses it.
    m.volumes.push({
      name: 'progress-token',
      projected: { sources: [{ serviceAccountToken: { audience: PROGRESS_TOKEN_AUDIENCE, expirationSeconds: PROGRESS_TOKEN_EXPIRATION_SECONDS, path: 'token' } }] },
    });
    m.mounts.push({ name: 'progress-token', mountPath: PROGRESS_TOKEN_DIR, readOnly: true });
    env.push({ name: 'ELIBADCODE_PROGRESS_URL', value: cfg.progressUrl }, { name: 'ELIBADCODE_PROGRESS_TOKEN_FILE', value: PROGRESS_TOKEN_FILE });
  }

  const container: V1Container = {
    name: WORKER_CONTAINER,
    image: spec.workerImage ?? cfg.workerImage,
    imagePullPolicy: cfg.imagePullPolicy,
    command: ['elibadcode'],
    args: args.slice(0),
    env,
    ...(envFrom.length ? { envFrom } : {}),
    resources: { requests, limits },
    volumeMounts: m.mounts,
    terminationMessagePath: TERMINATION_MESSAGE_PATH,
    terminationMessagePolicy: 'File',
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };

  const tolerations: V1Toleration[] = (spec.tolerations ?? []).map((t) => {
    const out: V1Toleration = { operator: t.operator };
    if (t.key !== undefined) out.key = t.key;
    if (t.value !== undefined) out.value = t.value;
    if (t.effect !== undefined) out.effect = t.effect;
    if (t.tolerationSeconds !== undefined) out.tolerationSeconds = t.tolerationSeconds;
    return out;
  });
  for (const t of cfg.tolerations) {
    if (!tolerations.some((x) => x.key === t.key && x.effect === t.effect && x.operator === t.operator && x.value === t.value)) tolerations.push({ ...t });
  }
  const nodeSelector: Record<string, string> = { ...(spec.nodeSelector ?? {}) };
  if (spec.resources.gpuProduct) nodeSelector[LABELS.gpuProduct] = spec.resources.gpuProduct;

  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: scan.metadata.namespace,
      labels: jobLabels,
      annotations,
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: scanName, uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 0,
      podFailurePolicy: {
        rules: [
          // Node drain, preemption, eviction: not the worker's fault, the Job controller replaces the pod.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          { action: 'FailJob', onExitCodes: { containerName: WORKER_CONTAINER, operator: 'In', values: PERMANENT_EXIT_CODES } },
        ],
      },
      ttlSecondsAfterFinished: spec.ttlSecondsAfterFinished ?? cfg.defaultTtlSecondsAfterFinished,
      ...(spec.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: spec.activeDeadlineSeconds } : {}),
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: cfg.workerServiceAccount,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
          ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
          ...(tolerations.length ? { tolerations } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: cfg.runAsUser,
            runAsGroup: cfg.runAsUser,
            fsGroup: cfg.runAsUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [container],
          volumes: m.volumes,
        },
      },
    },
  };
  return job;
}
