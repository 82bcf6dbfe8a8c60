import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildJob, jobName, labelValue, workerArgs, PERMANENT_EXIT_CODES } from '../../operator/job.ts';
import { ATTACK_NAMES, BackdoorScanSpec, type BackdoorScan } from '../../crds/backdoorscan.ts';
import { ATTACKS } from '../../worker/attacks/index.ts';
import { parseScanArgs } from '../../worker/commands/scan.ts';
import { DEMO_DEFAULTS, SEARCH_UNLEARN_LEARNING_RATE } from '../../worker/pipeline/scan.ts';

function scan(name: string, spec: Record<string, unknown> = {}): BackdoorScan {
  return {
    apiVersion: 'elibadcode.dev/v1alpha1',
    kind: 'BackdoorScan',
    metadata: { name, namespace: 'team-a', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', generation: 1 },
    spec: BackdoorScanSpec.parse({
      task: 'defect',
      model: { uri: 's3://models/codebert-defect', sha256: 'a'.repeat(64) },
      data: { uri: 'pvc://datasets/devign/clean.jsonl' },
      output: { uri: 's3://cleaned/codebert-defect' },
      ...spec,
    }),
  } as BackdoorScan;
}
const cfg = { workerImage: 'elibadcode/worker:0.1.0', workerServiceAccount: 'elibadcode-worker' };

test('job: deterministic name <scan>-<attempt>, hash-truncated to 63 characters', () => {
  assert.equal(jobName('scan-a', 1), 'scan-a-1');
  const long = 'x'.repeat(70);
  const n1 = jobName(long, 3);
  assert.ok(n1.length <= 63, n1);
  assert.match(n1, /-[0-9a-f]{5}-3$/);
  assert.equal(jobName(long, 3), n1, 'deterministic');
  assert.notEqual(jobName(long + 'y', 3), n1, 'different scans do not collide');
  assert.ok(jobName('a'.repeat(61), 10).length <= 63);
  assert.equal(labelValue('short'), 'short');
  assert.ok(labelValue('y'.repeat(200)).length <= 63);
});

test('job: owner reference (controller, blockOwnerDeletion), labels and annotations link it to the scan', () => {
  const j = buildJob(scan('s1', { queueName: 'gpu-queue' }), 2, cfg);
  assert.equal(j.metadata!.name, 's1-2');
  assert.equal(j.metadata!.namespace, 'team-a');
  assert.deepEqual(j.metadata!.ownerReferences, [
    { apiVersion: 'elibadcode.dev/v1alpha1', kind: 'BackdoorScan', name: 's1', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', controller: true, blockOwnerDeletion: true },
  ]);
  const l = j.metadata!.labels!;
  assert.equal(l['elibadcode.dev/scan-name'], 's1');
  assert.equal(l['elibadcode.dev/scan-uid'], '1b4e28ba-2fa1-11d2-883f-0016d3cca427');
  assert.equal(l['elibadcode.dev/attempt'], '2');
  assert.equal(l['app.kubernetes.io/managed-by'], 'elibadcode-operator');
  assert.equal(l['kueue.x-k8s.io/queue-name'], 'gpu-queue');
  assert.equal(j.metadata!.annotations!['elibadcode.dev/scan-name'], 's1');
  const tl = j.spec!.template.metadata!.labels!;
  assert.equal(tl['elibadcode.dev/scan-uid'], l['elibadcode.dev/scan-uid'], 'pods carry the scan labels too');
  assert.equal(tl['kueue.x-k8s.io/queue-name'], undefined, 'queue label is on the Job only');
  assert.equal(j.spec!.template.metadata!.annotations!['elibadcode.dev/scan-name'], 's1');
});

test('job: attempts are the operator\'s (backoffLimit 0, restartPolicy Never) with a pod failure policy', () => {
  const j = buildJob(scan('s1', { activeDeadlineSeconds: 3600, ttlSecondsAfterFinished: 600 }), 1, cfg);
  assert.equal(j.spec!.backoffLimit, 0);
  assert.equal(j.spec!.template.spec!.restartPolicy, 'Never');
  assert.equal(j.spec!.activeDeadlineSeconds, 3600);
  assert.equal(j.spec!.ttlSecondsAfterFinished, 600);
  const rules = j.spec!.podFailurePolicy!.rules;
  assert.deepEqual(rules[0], { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] });
  assert.equal(rules[1].action, 'FailJob');
  assert.deepEqual(rules[1].onExitCodes, { containerName: 'worker', operator: 'In', values: PERMANENT_EXIT_CODES });
  assert.ok(buildJob(scan('s2'), 1, cfg).spec!.ttlSecondsAfterFinished! >= 86400, 'default TTL outlives an operator outage');
});

test('job: Restricted pod security, token-less worker service account, read-only root with emptyDir /tmp and /scratch', () => {
  const pod = buildJob(scan('s1'), 1, cfg).spec!.template.spec!;
  assert.equal(pod.serviceAccountName, 'elibadcode-worker');
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.securityContext!.runAsNonRoot, true);
  assert.deepEqual(pod.securityContext!.seccompProfile, { type: 'RuntimeDefault' });
  const c = pod.containers[0];
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  const mounts = Object.fromEntries(c.volumeMounts!.map((m) => [m.mountPath, m]));
  assert.ok(mounts['/tmp'] && mounts['/scratch']);
  const vols = Object.fromEntries(pod.volumes!.map((v) => [v.name, v]));
  assert.ok(vols.tmp.emptyDir && vols.scratch.emptyDir);
  assert.equal(c.terminationMessagePath, '/dev/termination-log');
  assert.equal(c.terminationMessagePolicy, 'File');
});

test('job: GPU limit, tolerations, node selector with the GPU product, priority class', () => {
  const j = buildJob(
    scan('s1', {
      resources: { gpus: 2, gpuProduct: 'NVIDIA-H100-80GB-HBM3', limits: { memory: '64Gi' } },
      nodeSelector: { pool: 'gpu' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
      priorityClassName: 'scans',
    }),
    1,
    cfg,
  );
  const pod = j.spec!.template.spec!;
  const c = pod.containers[0];
  assert.equal(c.resources!.limits!['nvidia.com/gpu'], '2');
  assert.equal(c.resources!.requests!['nvidia.com/gpu'], undefined, 'extended resources: limits only');
  assert.equal(c.resources!.limits!.memory, '64Gi');
  assert.equal(c.resources!.requests!.memory, '64Gi', 'a request never exceeds the scan\'s limit');
  assert.deepEqual(pod.nodeSelector, { pool: 'gpu', 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' });
  assert.ok(pod.tolerations!.some((t) => t.key === 'dedicated' && t.value === 'ml'));
  assert.ok(pod.tolerations!.some((t) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists'));
  assert.equal(pod.priorityClassName, 'scans');
  const amd = buildJob(scan('s2', { resources: { gpus: 1, gpuResourceName: 'amd.com/gpu' } }), 1, cfg);
  assert.equal(amd.spec!.template.spec!.containers[0].resources!.limits!['amd.com/gpu'], '1');
});

test('job: credentials only by Secret reference (envFrom, or secretKeyRef per key), never inlined', () => {
  const all = buildJob(scan('s1', { credentials: { secretName: 'model-creds' } }), 1, cfg).spec!.template.spec!.containers[0];
  assert.deepEqual(all.envFrom, [{ secretRef: { name: 'model-creds' } }]);
  const some = buildJob(scan('s1', { credentials: { secretName: 'model-creds', keys: ['HF_TOKEN'] } }), 1, cfg).spec!.template.spec!.containers[0];
  assert.deepEqual(
    some.env!.find((e) => e.name === 'HF_TOKEN'),
    { name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: 'model-creds', key: 'HF_TOKEN' } } },
  );
  assert.ok(!JSON.stringify(some).includes('"value":"hf_'), 'no secret values');
});

test('job: command `elibadcode scan` with arguments from the spec; pvc:// locations are mounted', () => {
  const j = buildJob(scan('s1', { labels: { victim: 1, target: 0 }, parameters: { iterations: 50, beta: '0.2' } }), 1, cfg);
  const c = j.spec!.template.spec!.containers[0];
  assert.deepEqual(c.command, ['elibadcode']);
  const a = c.args!;
  assert.equal(a[0], 'scan');
  const flag = (f: string) => a[a.indexOf(f) + 1];
  assert.equal(flag('--task'), 'defect');
  assert.equal(flag('--model'), 's3://models/codebert-defect');
  assert.equal(flag('--model-sha256'), 'a'.repeat(64));
  assert.equal(flag('--data'), '/mnt/pvc/datasets/devign/clean.jsonl');
  assert.equal(flag('--iterations'), '50');
  assert.equal(flag('--beta'), '0.2');
  assert.equal(flag('--victim-label'), '1');
  assert.equal(flag('--target-label'), '0');
  assert.ok(a.includes('--eliminate'));
  const pod = j.spec!.template.spec!;
  const pvc = pod.volumes!.find((v) => v.persistentVolumeClaim)!;
  assert.deepEqual(pvc.persistentVolumeClaim, { claimName: 'datasets', readOnly: true });
  assert.ok(c.volumeMounts!.some((m) => m.mountPath === '/mnt/pvc/datasets' && m.readOnly));
  assert.ok(!a.some((x) => x.startsWith('--adversary')), 'discrete unlearning unless spec.unlearning.adversary asks');
  const adv = workerArgs(BackdoorScanSpec.parse({ task: 'defect', model: { uri: 'https://h/m' }, data: { uri: 'https://h/d' }, output: { uri: 's3://out/model' }, unlearning: { trainable: 'All', adversary: { radius: '2' } } }));
  const advFlag = (f: string) => adv[adv.indexOf(f) + 1];
  assert.deepEqual([advFlag('--adversary-step'), advFlag('--adversary-radius'), advFlag('--adversary-steps'), advFlag('--trainable')], ['0.3', '2', '1', 'All']);
  const noElim = workerArgs(BackdoorScanSpec.parse({ task: 'search', model: { uri: 'https://h/m' }, data: { uri: 'https://h/d' }, eliminate: false }));
  assert.ok(noElim.includes('--no-eliminate'));
  assert.ok(noElim.includes('--target-length'));
});

test('job: the worker\'s own parser reads the Job\'s arguments as the spec\'s settings', () => {
  const base = { model: { uri: 'https://h/m' }, data: { uri: 'https://h/d' }, output: { uri: 's3://out/model' } };
  const parsed = (spec: object) => parseScanArgs(workerArgs(BackdoorScanSpec.parse(spec)).slice(1));
  // An omitted learning rate is the worker's per-task default: search trains the whole bi-encoder at 5e-4, not a head's 5e-3.
  assert.equal(parsed({ ...base, task: 'search' }).unlearning.learningRate, SEARCH_UNLEARN_LEARNING_RATE);
  assert.equal(parsed({ ...base, task: 'defect' }).unlearning.learningRate, DEMO_DEFAULTS.unlearning.learningRate);
  const d = parsed({ ...base, task: 'defect' }).unlearning;
  assert.deepEqual([d.injectionScope, d.placement, d.trainable, d.adversary], ['victim', 'identifier', 'auto', undefined]);
  const o = parsed({
    ...base, task: 'clone', labels: { victim: 0, target: 1 }, parameters: { triggerLength: 7, positionMode: 'BodyStart', beta: '0.2' },
    unlearning: { injectionRate: '0.5', injectionScope: 'All', placement: 'BodyStart', learningRate: '1e-4', epochs: 10, trainable: 'All', seed: 7, adversary: { radius: '2' } },
  });
  assert.deepEqual(
    [o.task, o.victimLabel, o.targetLabel, o.triggerLength, o.positionMode, o.beta, o.eliminate],
    ['clone', 0, 1, 7, 'BodyStart', 0.2, 'auto'],
  );
  const u = o.unlearning;
  assert.deepEqual(
    [u.injectionRate, u.injectionScope, u.placement, u.learningRate, u.epochs, u.trainable, u.seed, u.adversary],
    [0.5, 'all', 'body-start', 1e-4, 10, 'all', 7, { step: 0.3, radius: 2, steps: 1 }],
  );
  assert.equal(parsed({ ...base, task: 'defect', unlearning: { placement: 'FunctionName' } }).unlearning.placement, 'function-name');
  // A canary's planted trigger, measured before and after unlearning; a statement may start with a dash.
  const k = parsed({ ...base, task: 'defect', knownTrigger: { attack: 'deadcode', trigger: '--i;', victimLabel: 1, targetLabel: 0 } });
  assert.deepEqual([k.knownAttack, k.knownTrigger, k.knownVictimLabel, k.knownTargetLabel, k.knownTargetWord], ['deadcode', '--i;', 1, 0, undefined]);
  const w = parsed({ ...base, task: 'search', knownTrigger: { attack: 'suffix', trigger: '_ctx', targetWord: 'file' } });
  assert.deepEqual([w.knownAttack, w.knownTrigger, w.knownTargetWord, w.knownVictimLabel], ['suffix', '_ctx', 'file', undefined]);
  assert.equal(parsed({ ...base, task: 'defect' }).knownTrigger, undefined);
});

test('job: inversion, evaluation and forced-unlearning settings reach the worker as the spec means them', () => {
  const base = { model: { uri: 'https://h/m' }, data: { uri: 'https://h/d' }, output: { uri: 's3://out/model' } };
  const parsed = (spec: object) => parseScanArgs(workerArgs(BackdoorScanSpec.parse(spec)).slice(1));
  // Omitted: the reference's lengths, no word-initial tokens, one-sided anchoring, and the worker's own
  // screen, verdict sample count and held-out share (the verdict's threshold was calibrated with them).
  const d = parsed({ ...base, task: 'search' });
  assert.deepEqual(
    [d.maxLength, d.queryMaxLength, d.keepWordInitial, d.twoSided, d.anchorRepeats, d.asrAtLeast, d.eliminate],
    [400, 128, false, false, false, undefined, 'auto'],
  );
  assert.deepEqual([d.screenLimit, d.verdictSamples, d.evalFraction, d.evalData], [DEMO_DEFAULTS.screenLimit, DEMO_DEFAULTS.verdictSamples, DEMO_DEFAULTS.evalFraction, undefined]);
  const o = parsed({
    ...base, task: 'defect',
    parameters: { maxLength: 256, keepWordInitial: true, screenLimit: 0, twoSidedAnchoring: true, anchorRepeats: true, earlyStop: { asrAtLeast: '0.9' } },
    evaluation: { fraction: '0.25', verdictSamples: 80 },
    unlearning: { force: true },
  });
  assert.deepEqual(
    [o.maxLength, o.keepWordInitial, o.screenLimit, o.twoSided, o.anchorRepeats, o.asrAtLeast, o.evalFraction, o.verdictSamples, o.eliminate],
    [256, true, 0, true, true, 0.9, 0.25, 80, 'always'],
  );
  const e = parsed({ ...base, task: 'defect', evaluation: { data: { uri: 'pvc://held-out/devign.jsonl', sha256: 'c'.repeat(64) } } });
  assert.deepEqual([e.evalData, e.evalDataSha256], ['/mnt/pvc/held-out/devign.jsonl', 'c'.repeat(64)]);
});

test('the CRD offers exactly the attack library\'s attacks for spec.knownTrigger', () => {
  assert.deepEqual([...ATTACK_NAMES], [...ATTACKS]);
});

test('job: same scan, same attempt, same Job (pure)', () => {
  assert.deepEqual(buildJob(scan('s1'), 4, cfg), buildJob(scan('s1'), 4, cfg));
});
