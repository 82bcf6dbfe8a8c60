// The generated CRD against a real kube-apiserver: it becomes Established, the server's defaults
// equal zod's, invalid manifests are refused at admission with readable messages, immutable fields
// cannot change, and the status subresource and printer columns work.
// First run on a machine pays the cold build of the binaries (scripts/k8s/build.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { raw } from './operator.helpers.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadYaml } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './harness/controlplane.ts';
import { CRD_FILE } from '../crds/generate.ts';
import { API_VERSION, BackdoorScanSpec, BackdoorScanStatus, CRD_NAME, GROUP, KIND, PLURAL, VERSION } from '../crds/backdoorscan.ts';

let cp: ControlPlane;
const ns = 'crd-test';
const base = `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`;

interface Resp {
  status: number;
  body: any;
}

/**
 * Raw JSON requests: client-node's typed serializer maps wire names (x-kubernetes-validations) onto
 * model fields and would silently drop what it does not know, so the CRD is sent as plain JSON.
 */
function kube(method: string, path: string, body?: unknown, contentType = 'application/json', accept = 'application/json'): Promise<Resp> {
  return raw(cp, method, path, body, contentType, accept);
}

/** Plain-data view of a YAML document (loadYaml maps documents that have a kind onto client models). */
function parsePlain(text: string): any {
  const wrapped = 'doc:\n' + text.split('\n').map((l) => (l === '' || l.startsWith('#') ? l : `  ${l}`)).join('\n');
  return (loadYaml(wrapped) as { doc: unknown }).doc;
}

const example = (file = 'backdoorscan.yaml') => parsePlain(readFileSync(new URL(`../examples/${file}`, import.meta.url), 'utf8'));

function manifest(name: string, spec: Record<string, unknown>) {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace: ns }, spec };
}

const minimal = {
  task: 'defect',
  model: { uri: 's3://models/codebert-devign/' },
  data: { uri: 'pvc://datasets/devign/clean.jsonl' },
  output: { uri: 's3://models/codebert-devign-clean/' },
};

before(async () => {
  const t0 = Date.now();
  cp = await startControlPlane({ log: (l) => console.log(`# ${l}`) });
  console.log(`# control plane up in ${Date.now() - t0} ms`);
  const crd = parsePlain(readFileSync(CRD_FILE, 'utf8'));
  const r = await kube('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  assert.equal(r.status, 201, `creating the CRD: ${JSON.stringify(r.body)}`);
  const n = await kube('POST', '/api/v1/namespaces', { metadata: { name: ns } });
  assert.equal(n.status, 201, JSON.stringify(n.body));
}, { timeout: 40 * 60_000 });

after(async () => {
  await cp?.stop();
});

test('the CRD becomes Established with its names accepted', async () => {
  let conds: Array<{ type: string; status: string; reason?: string; message?: string }> = [];
  for (let i = 0; i < 100; i++) {
    const r = await kube('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`);
    conds = r.body.status?.conditions ?? [];
    const est = conds.find((c) => c.type === 'Established');
    if (est?.status === 'True') break;
    await sleep(100);
  }
  const byType = Object.fromEntries(conds.map((c) => [c.type, c]));
  assert.equal(byType.Established?.status, 'True', JSON.stringify(conds));
  assert.equal(byType.NamesAccepted?.status, 'True', JSON.stringify(conds));
  assert.notEqual(byType.NonStructuralSchema?.status, 'True', JSON.stringify(conds));
  // Discovery serves the short name and category (kubectl get bds / kubectl get elibadcode).
  let res: any;
  for (let i = 0; i < 50; i++) {
    const d = await kube('GET', `/apis/${GROUP}/${VERSION}`);
    res = d.body.resources?.find((x: { name: string }) => x.name === PLURAL);
    if (res) break;
    await sleep(100);
  }
  assert.deepEqual(res.shortNames, ['bds']);
  assert.deepEqual(res.categories, ['elibadcode']);
  assert.ok((res.verbs as string[]).includes('patch'));
});

test('the example manifests are accepted and the server applies the same defaults as zod', async () => {
  const m = example();
  m.metadata.namespace = ns;
  const r = await kube('POST', base, m);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const min = await kube('POST', base, manifest('minimal', minimal));
  assert.equal(min.status, 201, JSON.stringify(min.body));
  const canary = example('canary.yaml');
  canary.metadata.namespace = ns;
  const c = await kube('POST', base, canary);
  assert.equal(c.status, 201, JSON.stringify(c.body));
  for (const [obj, input] of [
    [r.body, m.spec],
    [min.body, minimal],
    [c.body, canary.spec],
  ]) {
    assert.deepEqual(obj.spec, BackdoorScanSpec.parse(input), 'server-side defaults differ from the zod defaults');
  }
  assert.equal(min.body.spec.parameters.beta, '0.15');
  assert.deepEqual(min.body.spec.resources, { gpus: 1 });
});

const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
  ['ftp model URI', { ...minimal, model: { uri: 'ftp://host/model' } }, /spec\.model\.uri: Invalid value: "ftp:\/\/host\/model": must be a URI of the form s3:\/\/bucket\/key, https:\/\/host\/path or pvc:\/\/claim\/path/],
  ['http data URI', { ...minimal, data: { uri: 'http://example.org/d.jsonl' } }, /spec\.data\.uri: .*must be a URI/],
  ['https output URI', { ...minimal, output: { uri: 'https://example.org/out' } }, /spec\.output\.uri: .*s3:\/\/bucket\/key or pvc:\/\/claim\/path/],
  ['bad sha256', { ...minimal, model: { uri: 's3://models/x', sha256: 'xyz' } }, /spec\.model\.sha256/],
  ['unknown task', { ...minimal, task: 'summarize' }, /spec\.task: Unsupported value: "summarize": supported values: "defect", "clone", "search"/],
  ['missing model', { task: 'defect', data: minimal.data, output: minimal.output }, /spec\.model: Required value/],
  ['victim == target', { ...minimal, labels: { victim: 1, target: 1 } }, /spec\.labels\.target: Invalid value: .*labels\.victim and labels\.target must differ/],
  ['labels on search', { ...minimal, task: 'search', labels: { victim: 1 } }, /spec\.labels: .*spec\.labels applies to the defect and clone tasks only/],
  ['adversary on search', { ...minimal, task: 'search', unlearning: { adversary: { steps: 2 } } }, /spec\.unlearning\.adversary: .*applies to the defect and clone tasks only/],
  ['adversary with the attack\'s placement', { ...minimal, unlearning: { placement: 'FunctionName', adversary: {} } }, /spec\.unlearning\.adversary: .*needs a defender placement/],
  ['unknown injection scope', { ...minimal, unlearning: { injectionScope: 'Some' } }, /spec\.unlearning\.injectionScope: Unsupported value: "Some"/],
  ['known rename trigger not an identifier', { ...minimal, knownTrigger: { attack: 'rename', trigger: 'ret xt' } }, /spec\.knownTrigger\.trigger: .*must be an ASCII identifier for the fixed-name and rename attacks/],
  ['known trigger on search without a word', { ...minimal, task: 'search', knownTrigger: { attack: 'suffix', trigger: '_ctx' } }, /spec\.knownTrigger\.targetWord: .*required for code search/],
  ['eliminate without output', { task: 'defect', model: minimal.model, data: minimal.data }, /spec\.output: Required value: spec\.output is required when spec\.eliminate is true/],
  ['beta as a float', { ...minimal, parameters: { beta: 0.15 } }, /spec\.parameters\.beta: Invalid value: "number": spec\.parameters\.beta in body must be of type string/],
  ['beta out of range', { ...minimal, parameters: { beta: '250' } }, /spec\.parameters\.beta: Invalid value: "250": must be a decimal at least 0 and at most 100/],
  ['beta malformed', { ...minimal, parameters: { beta: '0.1.5' } }, /spec\.parameters\.beta in body should match/],
  ['injection rate 0', { ...minimal, unlearning: { injectionRate: '0' } }, /spec\.unlearning\.injectionRate: .*must be a decimal greater than 0 and at most 1/],
  ['trigger length 0', { ...minimal, parameters: { triggerLength: 0 } }, /spec\.parameters\.triggerLength: Invalid value: 0: spec\.parameters\.triggerLength in body should be greater than or equal to 1/],
  ['held-out fraction with held-out data', { ...minimal, evaluation: { data: { uri: 's3://datasets/held-out.jsonl' }, fraction: '0.3' } }, /spec\.evaluation\.fraction: .*applies only when neither evaluation\.data nor unlearning\.data is given/],
  ['held-out fraction with unlearning data', { ...minimal, evaluation: { fraction: '0.3' }, unlearning: { data: { uri: 's3://datasets/unlearn.jsonl' } } }, /spec\.evaluation\.fraction: .*applies only when/],
  ['ASR early stop on search', { ...minimal, task: 'search', parameters: { earlyStop: { asrAtLeast: '0.9' } } }, /spec\.parameters\.earlyStop\.asrAtLeast: .*applies to the defect and clone tasks only/],
  ['ASR early stop above 1', { ...minimal, parameters: { earlyStop: { asrAtLeast: '1.5' } } }, /spec\.parameters\.earlyStop\.asrAtLeast: .*must be a decimal greater than 0 and at most 1/],
  ['forced unlearning without eliminate', { task: 'defect', model: minimal.model, data: minimal.data, eliminate: false, unlearning: { force: true } }, /spec\.unlearning\.force: .*needs spec\.eliminate true/],
  ['patience >= iterations', { ...minimal, parameters: { iterations: 10, earlyStop: { patience: 10 } } }, /earlyStop\.patience must be less than parameters\.iterations/],
  ['gpuProduct with 0 GPUs', { ...minimal, resources: { gpus: 0, gpuProduct: 'NVIDIA-H100-80GB-HBM3' } }, /resources\.gpuProduct needs resources\.gpus > 0/],
  ['negative memory', { ...minimal, resources: { requests: { memory: '-1Gi' } } }, /spec\.resources\.requests\.memory/],
  ['toleration Exists with value', { ...minimal, tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }, /spec\.tolerations\[0\]\.value: .*a toleration with operator Exists must not set value/],
  ['queue name not a label value', { ...minimal, queueName: 'bad queue' }, /spec\.queueName in body should match/],
  ['too many attempts', { ...minimal, retry: { maxAttempts: 50 } }, /spec\.retry\.maxAttempts: Invalid value: 50/],
  ['secret name invalid', { ...minimal, credentials: { secretName: 'Bad_Name' } }, /spec\.credentials\.secretName in body should match/],
];

test('invalid manifests are refused at admission with readable messages', async (t) => {
  for (const [i, [name, spec, want]] of invalid.entries()) {
    await t.test(name, async () => {
      const r = await kube('POST', base, manifest(`bad-${i}`, spec));
      assert.equal(r.status, 422, `accepted (${r.status}): ${JSON.stringify(r.body).slice(0, 300)}`);
      const msg = String(r.body.message);
      console.log(`# ${name}: ${msg}`);
      assert.match(msg, want);
    });
  }
});

test('immutable fields cannot change; scheduling fields can', async (t) => {
  const name = 'immutable';
  const created = await kube('POST', base, manifest(name, { ...minimal, labels: { victim: 1 } }));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const patch = (spec: unknown) => kube('PATCH', `${base}/${name}`, { spec }, 'application/merge-patch+json');
  const refused: Array<[string, unknown, RegExp]> = [
    ['model.uri', { model: { uri: 's3://models/other/' } }, /spec\.model: Forbidden: spec\.model is immutable; create a new BackdoorScan instead/],
    ['model.sha256 added', { model: { sha256: 'a'.repeat(64) } }, /spec\.model is immutable/],
    ['data', { data: { uri: 's3://datasets/other.jsonl' } }, /^[^[]*spec\.data: Forbidden: spec\.data is immutable/],
    ['task', { task: 'clone' }, /spec\.task is immutable/],
    ['labels changed', { labels: { victim: 0 } }, /spec\.labels is immutable/],
    ['labels removed', { labels: null }, /spec\.labels cannot be added or removed after creation/],
    ['parameters.topK', { parameters: { topK: 8 } }, /spec\.parameters is immutable/],
    ['parameters.beta', { parameters: { beta: '0.3' } }, /spec\.parameters is immutable/],
    ['eliminate', { eliminate: false }, /spec\.eliminate is immutable/],
    ['unlearning', { unlearning: { epochs: 3 } }, /spec\.unlearning is immutable/],
    ['evaluation', { evaluation: { verdictSamples: 10 } }, /spec\.evaluation is immutable/],
    ['output', { output: { uri: 's3://outputs/elsewhere/' } }, /^[^[]*spec\.output: Forbidden: spec\.output is immutable/],
    ['knownTrigger added', { knownTrigger: { attack: 'fixed-name', trigger: 'testo_init' } }, /spec\.knownTrigger cannot be added or removed after creation/],
  ];
  for (const [what, spec, want] of refused) {
    await t.test(`refused: ${what}`, async () => {
      const r = await patch(spec);
      assert.equal(r.status, 422, `accepted: ${JSON.stringify(r.body?.spec ?? r.body).slice(0, 300)}`);
      console.log(`# ${what}: ${r.body.message}`);
      assert.match(String(r.body.message), want);
    });
  }
  const allowed: Array<[string, unknown]> = [
    ['suspend', { suspend: true }],
    ['resources', { resources: { gpus: 2, requests: { memory: '64Gi' } } }],
    ['tolerations', { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }],
    ['queueName', { queueName: 'other-queue' }],
    ['workerImage', { workerImage: 'registry.example/elibadcode-worker:0.1.1' }],
    ['activeDeadlineSeconds', { activeDeadlineSeconds: 3600 }],
    ['retry', { retry: { maxAttempts: 5 } }],
  ];
  for (const [what, spec] of allowed) {
    await t.test(`allowed: ${what}`, async () => {
      const r = await patch(spec);
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 400));
    });
  }
  const after = await kube('GET', `${base}/${name}`);
  assert.equal(after.body.spec.suspend, true);
  assert.equal(after.body.metadata.generation, 1 + allowed.length);
});

test('status is a subresource: written only via /status, validated, shown in printer columns', async () => {
  const name = 'with-status';
  const c = await kube('POST', base, { ...manifest(name, minimal), status: { verdict: 'Backdoored' } });
  assert.equal(c.status, 201);
  assert.equal(c.body.status, undefined, 'status on create must be ignored');
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const status = {
    observedGeneration: 1,
    verdict: 'Backdoored',
    targetLabel: 0,
    victimLabel: 1,
    triggers: { anchored: { tokenIds: [34603, 139], tokens: ['Test', 'o'], text: 'Testo' } },
    metrics: { asrBefore: 0.9976, asrAfter: 0.0264, bestLoss: 0.012 },
    conditions: [{ type: 'Succeeded', status: 'True', reason: 'BackdoorFound', message: 'done', lastTransitionTime: now, observedGeneration: 1 }],
    attempts: 1,
    jobName: 'with-status-1',
  };
  const s = await kube('PATCH', `${base}/${name}/status`, { status }, 'application/merge-patch+json');
  assert.equal(s.status, 200, JSON.stringify(s.body).slice(0, 400));
  assert.equal(s.body.metadata.generation, 1, 'status writes do not bump generation');
  const bad = await kube('PATCH', `${base}/${name}/status`, { status: { verdict: 'Maybe' } }, 'application/merge-patch+json');
  assert.equal(bad.status, 422);
  assert.match(String(bad.body.message), /status\.verdict: Unsupported value: "Maybe"/);
  const badCond = await kube('PATCH', `${base}/${name}/status`, { status: { conditions: [{ type: 'Failed', status: 'Yes', reason: 'x y', message: '', lastTransitionTime: 'yesterday' }] } }, 'application/merge-patch+json');
  assert.equal(badCond.status, 422);
  console.log(`# bad condition: ${badCond.body.message}`);
  const table = await kube('GET', `${base}/${name}`, undefined, 'application/json', 'application/json;as=Table;v=v1;g=meta.k8s.io');
  assert.equal(table.status, 200);
  const cols = table.body.columnDefinitions.map((d: { name: string }) => d.name);
  assert.deepEqual(cols.filter((_: string, i: number) => table.body.columnDefinitions[i].priority === 0), ['Name', 'Verdict', 'Trigger', 'ASR-After', 'Succeeded', 'Age']);
  const row = Object.fromEntries(cols.map((n: string, i: number) => [n, table.body.rows[0].cells[i]]));
  assert.equal(row.Verdict, 'Backdoored');
  assert.equal(row.Trigger, 'Testo');
  assert.equal(row['ASR-After'], 0.0264);
  assert.equal(row.Succeeded, 'True');
  assert.equal(row.Target, 0);
});

test('no field is pruned: a spec and a status that set every field round-trip unchanged', async () => {
  const hex = (c: string) => c.repeat(64);
  const trig = (text: string) => ({ tokenIds: [34603, 139], tokens: ['Test', 'o'], text });
  const spec = {
    task: 'clone',
    model: { uri: 'https://models.example/org/m/resolve/main', sha256: hex('a') },
    data: { uri: 's3://datasets/bcb/clean.jsonl', sha256: hex('b') },
    labels: { victim: 1, target: 0 },
    parameters: {
      triggerLength: 4, targetLength: 2, topK: 32, candidates: 16, iterations: 50, inversionSamples: 20, beta: '0.2',
      positionMode: 'Fixed', fixedPosition: 10, seed: 7, maxLength: 256, queryMaxLength: 64, keepWordInitial: true, screenLimit: 0,
      twoSidedAnchoring: true, anchorRepeats: true, detectionThreshold: '2.5', earlyStop: { patience: 5, lossBelow: '0.01', asrAtLeast: '0.95' },
    },
    eliminate: true,
    unlearning: {
      data: { uri: 'pvc://datasets/bcb/unlearn.jsonl', sha256: hex('c') }, injectionRate: '0.3', injectionScope: 'All', placement: 'BodyStart', learningRate: '1e-4', epochs: 2,
      batchSize: 16, warmupRatio: '0.05', gradientClip: '0.5', weightDecay: '0.01', seed: 1, force: true, trainable: 'All',
      adversary: { step: '0.2', radius: '1.5', steps: 2 },
    },
    evaluation: { data: { uri: 'https://data.example/bcb/held-out.jsonl', sha256: hex('e') }, verdictSamples: 60 },
    knownTrigger: { attack: 'deadcode-random', trigger: 'default', victimLabel: 0, targetLabel: 1 },
    output: { uri: 'pvc://outputs/bcb-clean', reportUri: 's3://reports/bcb.json' },
    credentials: { secretName: 'creds', keys: ['AWS_ACCESS_KEY_ID', 'HF_TOKEN'] },
    resources: {
      gpus: 2, gpuResourceName: 'amd.com/gpu', gpuProduct: 'MI300X',
      requests: { cpu: '3500m', memory: '24Gi', 'ephemeral-storage': '50Gi' }, limits: { cpu: 8, memory: '32Gi', 'ephemeral-storage': '60Gi' },
    },
    nodeSelector: { 'topology.kubernetes.io/zone': 'eu-west-1a' },
    tolerations: [{ key: 'amd.com/gpu', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 60 }],
    priorityClassName: 'batch-low',
    queueName: 'team-a',
    activeDeadlineSeconds: 7200,
    retry: { maxAttempts: 2 },
    suspend: true,
    workerImage: 'registry.example/elibadcode/worker@sha256:' + hex('d'),
    ttlSecondsAfterFinished: 600,
  };
  const parsedSpec = BackdoorScanSpec.parse(spec);
  assert.deepEqual(parsedSpec, spec, 'the fixture must set every field already (no zod defaults added)');
  const c = await kube('POST', base, manifest('everything', spec));
  assert.equal(c.status, 201, JSON.stringify(c.body).slice(0, 500));
  assert.deepEqual(c.body.spec, spec);

  const t = '2026-11-25T09:00:00Z';
  const status = {
    observedGeneration: 1,
    conditions: [
      { type: 'Accepted', status: 'True', reason: 'SpecValid', message: '', lastTransitionTime: t, observedGeneration: 1 },
      { type: 'Succeeded', status: 'True', reason: 'BackdoorFound', message: 'ok', lastTransitionTime: '2026-11-25T10:00:00.123456Z', observedGeneration: 1 },
    ],
    verdict: 'Backdoored',
    targetLabel: 0,
    victimLabel: 1,
    positionMode: 'SampleSpecific',
    triggers: { raw: trig('Testo'), anchored: trig('Testo'), query: trig('file') },
    metrics: {
      bestLoss: 0.0123, detectionScore: 4.5, detectionThreshold: 2.5, asrBefore: 0.9976, asrAfter: 0.0264, knownTriggerAsrBefore: 1,
      knownTriggerAsrAfter: 0, accuracyBefore: 0.63, accuracyAfter: 0.6299, f1Before: 0.9, f1After: 0.89, mrrBefore: 0.3, mrrAfter: 0.29,
    },
    artifact: { modelUri: 'pvc://outputs/bcb-clean', sha256: hex('e'), reportUri: 's3://reports/bcb.json' },
    durations: { totalSeconds: 3600.5, downloadSeconds: 10, scanSeconds: 3000, eliminateSeconds: 500, evaluateSeconds: 80, uploadSeconds: 10.5 },
    startTime: t,
    completionTime: t,
    attempts: 1,
    jobName: 'everything-1',
    progress: { stage: 'Done', option: '1->0 SampleSpecific', iteration: 50, totalIterations: 50, bestLoss: 0.0123, updatedAt: t },
  };
  assert.deepEqual(BackdoorScanStatus.parse(status), status);
  const s = await kube('PATCH', `${base}/everything/status`, { status }, 'application/merge-patch+json');
  assert.equal(s.status, 200, JSON.stringify(s.body).slice(0, 500));
  assert.deepEqual(s.body.status, status);
});
