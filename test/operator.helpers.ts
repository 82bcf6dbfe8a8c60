// Shared helpers of the operator's integration tests and benchmark: a real control plane with the
// generated CRD installed, scan manifests, polling, and an in-process operator with short timings.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, BatchV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { startControlPlane, type ControlPlane, type StartOptions } from './harness/controlplane.ts';
import { buildCrd } from '../crds/generate.ts';
import { API_VERSION, CRD_NAME, GROUP, KIND, PLURAL, VERSION } from '../crds/backdoorscan.ts';
import { startOperator, type OperatorConfig, type OperatorHandle } from '../operator/main.ts';

export interface RawResponse {
  status: number;
  body: any;
}

/** Plain JSON request with the admin token (client-node's typed serializer drops CRD extensions). */
export function raw(cp: ControlPlane, method: string, path: string, body?: unknown, contentType = 'application/json', accept = 'application/json'): Promise<RawResponse> {
  const ca = readFileSync(cp.caCertPath);
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${cp.server}${path}`,
      {
        method,
        ca,
        headers: {
          Authorization: `Bearer ${cp.adminToken}`,
          Accept: accept,
          ...(data ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(data) } : {}),
        },
      },
      (r) => {
        let b = '';
        r.setEncoding('utf8');
        r.on('data', (d) => (b += d));
        r.on('end', () => {
          let parsed: unknown = b;
          try {
            parsed = JSON.parse(b);
          } catch {
            /* text */
          }
          resolve({ status: r.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** Start etcd + kube-apiserver, install the generated CRD and wait until it is Established. */
export async function startClusterWithCrd(opts: StartOptions = {}): Promise<ControlPlane> {
  const cp = await startControlPlane(opts);
  // The object the committed YAML is generated from (a test keeps them identical); client-node's
  // loadYaml would map it onto typed models and drop x-kubernetes-* extensions.
  const crd = buildCrd();
  const r = await raw(cp, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (r.status !== 201) throw new Error(`creating the CRD: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  await waitFor('CRD Established', async () => {
    const g = await raw(cp, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
    return g.body?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True');
  });
  // Discovery of the new group may lag the Established condition a little.
  await waitFor('CRD served', async () => (await raw(cp, 'GET', `/apis/${GROUP}/${VERSION}/${PLURAL}`)).status === 200);
  return cp;
}

export async function ensureNamespace(kc: KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

export function scanManifest(name: string, namespace: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace },
    spec: {
      task: 'defect',
      model: { uri: 's3://models/codebert-defect' },
      data: { uri: 's3://data/devign-clean.jsonl' },
      output: { uri: 's3://cleaned/codebert-defect' },
      resources: { gpus: 1 },
      ...spec,
    },
  };
}

export function clients(kc: KubeConfig) {
  return { custom: kc.makeApiClient(CustomObjectsApi), batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api) };
}

export async function createScan(kc: KubeConfig, name: string, namespace: string, spec: Record<string, unknown> = {}) {
  return clients(kc).custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: scanManifest(name, namespace, spec) });
}

export async function getScan(kc: KubeConfig, name: string, namespace: string): Promise<any> {
  return clients(kc).custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
}

export function cond(scan: any, type: string): { status: string; reason: string; message: string; lastTransitionTime: string } | undefined {
  return scan?.status?.conditions?.find((c: { type: string }) => c.type === type);
}

/** A worker summary as the worker would write it into its termination message. */
export function summary(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schemaVersion: 1,
    task: 'defect',
    verdict: 'Backdoored',
    targetLabel: 0,
    victimLabel: 1,
    positionMode: 'SampleSpecific',
    triggers: {
      raw: { tokenIds: [1, 2, 3], tokens: ['Ġtest', 'o', 'Ġinit'], text: ' testo init' },
      anchored: { tokenIds: [1], tokens: ['Ġtest'], text: ' test' },
    },
    metrics: { bestLoss: 0.012, detectionScore: 0.97, detectionThreshold: 0.5, detectionScoreAfter: 0.1, asrBefore: 0.99, asrAfter: 0.02, accuracyBefore: 0.63, accuracyAfter: 0.625 },
    eliminated: true,
    artifact: { modelUri: 's3://cleaned/codebert-defect', sha256: 'b'.repeat(64), reportUri: 's3://cleaned/codebert-defect/report.json' },
    durations: { totalSeconds: 1234 },
    ...over,
  });
}

export const silentLogger = () => pino({ level: process.env.ELIBADCODE_TEST_LOG ?? 'silent' });

export function operatorConfig(cp: ControlPlane, over: Partial<OperatorConfig> = {}): OperatorConfig {
  return {
    kubeConfig: cp.kubeConfig,
    namespaces: [],
    workers: 4,
    workerImage: 'elibadcode/worker:test',
    workerServiceAccount: 'elibadcode-worker',
    leaderElection: false,
    leaseNamespace: 'default',
    leaseName: 'elibadcode-operator',
    httpPort: 0,
    httpHost: '127.0.0.1',
    logger: silentLogger(),
    ...over,
  };
}

export async function startTestOperator(cp: ControlPlane, over: Partial<OperatorConfig> = {}): Promise<OperatorHandle> {
  const op = await startOperator(operatorConfig(cp, over));
  await op.synced;
  return op;
}

export async function listJobs(kc: KubeConfig, namespace: string, scanName?: string) {
  const r = await clients(kc).batch.listNamespacedJob({ namespace, labelSelector: scanName ? `elibadcode.dev/scan-name=${scanName}` : undefined });
  return r.items;
}

export async function listEvents(cp: ControlPlane, namespace: string, name: string): Promise<Array<{ reason: string; note: string; type: string; eventTime: string }>> {
  const r = await raw(cp, 'GET', `/apis/events.k8s.io/v1/namespaces/${namespace}/events?fieldSelector=regarding.name=${name}`);
  return r.body.items ?? [];
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text() };
}
