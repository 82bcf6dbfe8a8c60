// The zod schema as the operator uses it: defaults applied, the TypeScript twins of the CEL rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadYaml } from '@kubernetes/client-node';
import {
  API_VERSION,
  BackdoorScan,
  BackdoorScanSpec,
  BackdoorScanStatus,
  Condition,
  ConditionReason,
  ConditionType,
  KIND,
  type BackdoorScanSpecInput,
} from '../crds/backdoorscan.ts';

const minimal: BackdoorScanSpecInput = {
  task: 'defect',
  model: { uri: 's3://models/codebert-devign/' },
  data: { uri: 'pvc://datasets/devign/clean_samples_100.jsonl' },
  output: { uri: 's3://models/codebert-devign-clean/' },
};

const issues = (spec: unknown): string[] => {
  const r = BackdoorScanSpec.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('defaults are the reference implementation\'s, except sample-specific positions only (not Both), a defender-chosen unlearning slot and a per-task learning rate', () => {
  const s = BackdoorScanSpec.parse(minimal);
  assert.deepEqual(s.parameters, {
    triggerLength: 5,
    targetLength: 2,
    topK: 64,
    candidates: 64,
    iterations: 100,
    inversionSamples: 30,
    beta: '0.15',
    positionMode: 'SampleSpecific',
    fixedPosition: 50,
    seed: 123456,
    maxLength: 400,
    queryMaxLength: 128,
    keepWordInitial: false,
    twoSidedAnchoring: false,
    anchorRepeats: false,
    earlyStop: { patience: 0 },
  });
  // The screen, verdict sample count and held-out share are the worker's (its verdict was calibrated with them).
  assert.equal(s.parameters.screenLimit, undefined);
  assert.deepEqual(s.evaluation, {});
  assert.equal(s.eliminate, true);
  assert.deepEqual(s.unlearning, {
    injectionRate: '0.2',
    injectionScope: 'Victim',
    placement: 'Identifier',
    epochs: 1,
    batchSize: 32,
    warmupRatio: '0.1',
    gradientClip: '1.0',
    weightDecay: '0',
    seed: 42,
    force: false,
    trainable: 'Auto',
  });
  assert.deepEqual(s.resources, { gpus: 1 });
  assert.deepEqual(s.retry, { maxAttempts: 3 });
  assert.equal(s.suspend, false);
});

test('partial nested objects get the remaining defaults', () => {
  const s = BackdoorScanSpec.parse({ ...minimal, parameters: { iterations: 10, earlyStop: { patience: 3 } }, resources: { gpus: 2 } });
  assert.equal(s.parameters.iterations, 10);
  assert.equal(s.parameters.topK, 64);
  assert.deepEqual(s.parameters.earlyStop, { patience: 3 });
  assert.deepEqual(s.resources, { gpus: 2 });
});

test('the example manifests are valid', () => {
  for (const file of ['backdoorscan.yaml', 'canary.yaml']) {
    const obj = loadYaml<{ apiVersion: string; kind: string }>(readFileSync(new URL(`../examples/${file}`, import.meta.url), 'utf8'));
    const r = BackdoorScan.safeParse(obj);
    assert.ok(r.success, r.success ? '' : `${file}: ${JSON.stringify(r.error.issues)}`);
    assert.equal(r.data.apiVersion, API_VERSION);
    assert.equal(r.data.kind, KIND);
  }
});

const bad: Array<[string, unknown, RegExp]> = [
  ['unknown URI scheme', { ...minimal, model: { uri: 'ftp://x/y' } }, /model\.uri: .*s3:\/\/bucket\/key, https:\/\/host\/path or pvc:\/\/claim\/path/],
  ['http is not https', { ...minimal, data: { uri: 'http://example.org/d.jsonl' } }, /data\.uri/],
  ['output cannot be https', { ...minimal, output: { uri: 'https://example.org/out' } }, /output\.uri: .*s3:\/\/bucket\/key or pvc:\/\/claim\/path/],
  ['bad pvc claim', { ...minimal, model: { uri: 'pvc://Bad_Claim/x' } }, /model\.uri/],
  ['bad sha256', { ...minimal, model: { uri: 's3://models/x', sha256: 'abc' } }, /model\.sha256/],
  ['unknown task', { ...minimal, task: 'summarize' }, /task/],
  ['victim == target', { ...minimal, labels: { victim: 1, target: 1 } }, /labels\.target: labels\.victim and labels\.target must differ/],
  ['labels on search', { ...minimal, task: 'search', labels: { target: 0 } }, /labels: spec\.labels applies to the defect and clone tasks only/],
  ['adversary on search', { ...minimal, task: 'search', unlearning: { adversary: {} } }, /unlearning\.adversary: spec\.unlearning\.adversary applies to the defect and clone tasks only/],
  ['adversary with the attack\'s placement', { ...minimal, unlearning: { placement: 'FunctionName', adversary: {} } }, /unlearning\.adversary: spec\.unlearning\.adversary needs a defender placement/],
  ['unknown placement', { ...minimal, unlearning: { placement: 'Anywhere' } }, /unlearning\.placement/],
  ['known trigger keyword-free identifier', { ...minimal, knownTrigger: { attack: 'fixed-name', trigger: 'testo init' } }, /knownTrigger\.trigger: knownTrigger\.trigger must be an ASCII identifier/],
  ['known suffix with a dash', { ...minimal, knownTrigger: { attack: 'suffix', trigger: '_r-b' } }, /knownTrigger\.trigger: knownTrigger\.trigger must hold only ASCII letters, digits and _/],
  ['known trigger with equal labels', { ...minimal, knownTrigger: { attack: 'rename', trigger: 'ret_xt', victimLabel: 1, targetLabel: 1 } }, /knownTrigger\.targetLabel: knownTrigger\.victimLabel and knownTrigger\.targetLabel must differ/],
  ['known trigger on search without a word', { ...minimal, task: 'search', knownTrigger: { attack: 'suffix', trigger: '_ctx' } }, /knownTrigger\.targetWord: spec\.knownTrigger\.targetWord is required for code search/],
  ['known target word on defect', { ...minimal, knownTrigger: { attack: 'suffix', trigger: '_ctx', targetWord: 'file' } }, /knownTrigger\.targetWord: spec\.knownTrigger\.targetWord is required for code search and applies to it only/],
  ['known labels on search', { ...minimal, task: 'search', knownTrigger: { attack: 'suffix', trigger: '_ctx', targetWord: 'file', targetLabel: 0 } }, /knownTrigger: spec\.knownTrigger\.victimLabel and targetLabel apply to the defect and clone tasks only/],
  ['unknown attack', { ...minimal, knownTrigger: { attack: 'badnets', trigger: 'x' } }, /knownTrigger\.attack/],
  ['adversary step zero', { ...minimal, unlearning: { adversary: { step: '0' } } }, /unlearning\.adversary\.step: must be a decimal greater than 0 and at most 100/],
  ['eliminate without output', { ...minimal, output: undefined }, /output: spec\.output is required when spec\.eliminate is true/],
  ['beta is a string', { ...minimal, parameters: { beta: 0.15 } }, /parameters\.beta/],
  ['beta out of range', { ...minimal, parameters: { beta: '1000' } }, /parameters\.beta: must be a decimal at least 0 and at most 100/],
  ['beta not a decimal', { ...minimal, parameters: { beta: '0.1.5' } }, /parameters\.beta/],
  ['injection rate zero', { ...minimal, unlearning: { injectionRate: '0' } }, /unlearning\.injectionRate: must be a decimal greater than 0 and at most 1/],
  ['trigger length 0', { ...minimal, parameters: { triggerLength: 0 } }, /parameters\.triggerLength/],
  ['held-out fraction beside held-out data', { ...minimal, evaluation: { data: { uri: 's3://datasets/held-out.jsonl' }, fraction: '0.3' } }, /evaluation\.fraction: spec\.evaluation\.fraction splits spec\.data/],
  ['held-out fraction beside unlearning data', { ...minimal, evaluation: { fraction: '0.3' }, unlearning: { data: { uri: 's3://datasets/u.jsonl' } } }, /evaluation\.fraction: .*neither evaluation\.data nor unlearning\.data/],
  ['held-out fraction zero', { ...minimal, evaluation: { fraction: '0' } }, /evaluation\.fraction: must be a decimal greater than 0 and at most 1/],
  ['verdict samples zero', { ...minimal, evaluation: { verdictSamples: 0 } }, /evaluation\.verdictSamples/],
  ['ASR early stop on search', { ...minimal, task: 'search', parameters: { earlyStop: { asrAtLeast: '0.9' } } }, /parameters\.earlyStop\.asrAtLeast: .*defect and clone tasks only/],
  ['forced unlearning without eliminate', { ...minimal, eliminate: false, unlearning: { force: true } }, /unlearning\.force: spec\.unlearning\.force needs spec\.eliminate true/],
  ['max length below 8', { ...minimal, parameters: { maxLength: 4 } }, /parameters\.maxLength/],
  ['patience >= iterations', { ...minimal, parameters: { iterations: 5, earlyStop: { patience: 5 } } }, /earlyStop\.patience must be less than parameters\.iterations/],
  ['gpuProduct without gpus', { ...minimal, resources: { gpus: 0, gpuProduct: 'NVIDIA-H100-80GB-HBM3' } }, /resources\.gpuProduct: resources\.gpuProduct needs resources\.gpus > 0/],
  ['negative quantity', { ...minimal, resources: { requests: { memory: '-1Gi' } } }, /resources\.requests\.memory/],
  ['float quantity', { ...minimal, resources: { limits: { cpu: 1.5 } } }, /resources\.limits\.cpu/],
  ['toleration Exists with value', { ...minimal, tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }, /tolerations\.0\.value: a toleration with operator Exists must not set value/],
  ['secret name invalid', { ...minimal, credentials: { secretName: 'Not_A_Name' } }, /credentials\.secretName/],
  ['secret key not an env name', { ...minimal, credentials: { secretName: 's', keys: ['1BAD'] } }, /credentials\.keys\.0/],
  ['queue name too long', { ...minimal, queueName: 'q'.repeat(64) }, /queueName/],
  ['image with a space', { ...minimal, workerImage: 'a b' }, /workerImage/],
  ['too many attempts', { ...minimal, retry: { maxAttempts: 11 } }, /retry\.maxAttempts/],
];

for (const [name, spec, want] of bad) {
  test(`spec refused: ${name}`, () => {
    const got = issues(spec);
    assert.ok(got.length > 0, 'accepted');
    assert.ok(got.some((m) => want.test(m)), `issues: ${got.join(' | ')}`);
  });
}

test('valid variants are accepted', () => {
  for (const spec of [
    { ...minimal, model: { uri: 'https://huggingface.example/org/model/resolve/main', sha256: 'a'.repeat(64) } },
    { ...minimal, task: 'clone', labels: { victim: 1, target: 0 } },
    { ...minimal, task: 'search', eliminate: false, output: undefined },
    { ...minimal, resources: { gpus: 2, gpuProduct: 'NVIDIA-H100-80GB-HBM3', requests: { cpu: 4, memory: '32Gi' }, limits: { memory: '48Gi' } } },
    { ...minimal, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], queueName: 'gpu-team-a', priorityClassName: 'batch-low' },
    { ...minimal, parameters: { beta: '0.1', detectionThreshold: '2.5' }, unlearning: { learningRate: '1e-4', injectionRate: '1' } },
    { ...minimal, knownTrigger: { attack: 'deadcode-random', trigger: 'default', victimLabel: 1, targetLabel: 0 } },
    { ...minimal, task: 'search', knownTrigger: { attack: 'suffix', trigger: '_ctx', targetWord: 'file' } },
    { ...minimal, evaluation: { fraction: '0.25', verdictSamples: 100 }, unlearning: { force: true }, parameters: { screenLimit: 0, earlyStop: { asrAtLeast: '1' } } },
    { ...minimal, evaluation: { data: { uri: 'pvc://held-out/devign.jsonl', sha256: 'e'.repeat(64) } }, unlearning: { data: { uri: 's3://datasets/u.jsonl' } } },
  ]) {
    assert.deepEqual(issues(spec), [], JSON.stringify(spec));
  }
});

test('status and conditions parse; constants are plain strings', () => {
  const cond = {
    type: ConditionType.Succeeded,
    status: 'True',
    reason: ConditionReason.BackdoorFound,
    message: 'trigger "Testo" found',
    lastTransitionTime: '2026-11-25T09:00:00Z',
    observedGeneration: 1,
  };
  assert.ok(Condition.safeParse(cond).success);
  assert.ok(!Condition.safeParse({ ...cond, reason: 'two words' }).success);
  const st = BackdoorScanStatus.parse({
    observedGeneration: 1,
    conditions: [cond],
    verdict: 'Backdoored',
    targetLabel: 0,
    victimLabel: 1,
    triggers: { raw: { tokenIds: [1, 2], tokens: ['Test', 'o'], text: 'Testo' }, anchored: { tokenIds: [1, 2], tokens: ['Test', 'o'], text: 'Testo' } },
    metrics: { asrBefore: 0.99, asrAfter: 0.02, accuracyBefore: 0.63, accuracyAfter: 0.629, bestLoss: 0.01 },
    artifact: { modelUri: 's3://m/clean/', sha256: 'b'.repeat(64), reportUri: 's3://m/clean/report.json' },
    startTime: '2026-11-25T09:00:00Z',
    attempts: 1,
    jobName: 'scan-1',
    progress: { stage: 'Inversion', iteration: 3, totalIterations: 100, updatedAt: '2026-11-25T09:01:00.123Z' },
  });
  assert.equal(st.verdict, 'Backdoored');
  assert.ok(!BackdoorScanStatus.safeParse({ metrics: { asrAfter: 1.5 } }).success);
  assert.equal(typeof ConditionType.Failed, 'string');
  assert.equal(Object.values(ConditionReason).every((r) => /^[A-Z][A-Za-z]+$/.test(r)), true);
});
