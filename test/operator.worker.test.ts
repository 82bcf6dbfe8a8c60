// The whole path with the real worker: the operator creates the Job for a BackdoorScan; this test
// plays the kubelet: it runs `elibadcode scan` with the command, arguments and environment of that
// Job's container (pvc:// mounts mapped onto local directories, the termination-message path onto a
// file), then reports the container's exit code and termination message on a Pod and the Job's
// outcome, as the kubelet and the Job controller would. The operator must turn that into status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { completeJob, failJob, createJobPod, type ControlPlane } from './harness/controlplane.ts';
import { startClusterWithCrd, ensureNamespace, createScan, getScan, cond, waitFor, startTestOperator, clients } from './operator.helpers.ts';
import { DEVIGN } from './pipeline.helpers.ts';
import type { OperatorHandle } from '../operator/main.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'operator-worker-'));
const claims: Record<string, string> = { models: join(tmp, 'models'), data: dirname(DEVIGN.replace(/\/$/, '')), out: join(tmp, 'out') };
let cp: ControlPlane;
let op: OperatorHandle;
const ns = 'e2e';

before(async () => {
  mkdirSync(claims.out, { recursive: true });
  // The zoo's defect model backdoored with the fixed-name trigger testo_init (victim 1 -> target 0).
  cpSync(join(root, 'zoo', 'defect-fixed-name'), join(claims.models, 'backdoored'), { recursive: true });
  cp = await startClusterWithCrd();
  await ensureNamespace(cp.kubeConfig, ns);
  op = await startTestOperator(cp);
});

after(async () => {
  await op?.stop();
  await cp?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Run the Job's container locally; returns the exit code and what it wrote as termination message. */
async function runContainer(namespace: string, jobName: string): Promise<{ exitCode: number; message: string; args: string[] }> {
  const job = await clients(cp.kubeConfig).batch.readNamespacedJob({ name: jobName, namespace });
  const c = job.spec!.template.spec!.containers[0];
  const termFile = join(tmp, `${jobName}.termination-log`);
  const local = (v: string) => {
    let out = v;
    for (const [claim, dir] of Object.entries(claims)) out = out.replace(`/mnt/pvc/${claim}`, dir);
    if (out === c.terminationMessagePath) out = termFile;
    if (out === '/scratch') out = mkdtempSync(join(tmp, 'scratch-'));
    return out;
  };
  const args = c.args!.map(local);
  // Knobs the BackdoorScan API does not carry, to keep the run short on a CI machine (not in the Job).
  const testOnly = ['--max-length', '48', '--verdict-samples', '20', '--backend', 'wasm'];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ELIBADCODE_BACKEND: 'wasm' };
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = local(e.value);
  assert.equal(c.command![0], 'elibadcode');
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'elibadcode.js'), ...args, ...testOnly], { env: { ...env, HOME: tmp, TMPDIR: tmp }, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  return { exitCode: code, message: existsSync(termFile) ? readFileSync(termFile, 'utf8') : '', args };
}

test('real worker: the Job the operator created runs `elibadcode scan`; its termination message becomes the scan status', { timeout: 20 * 60_000 }, async () => {
  await createScan(cp.kubeConfig, 'e2e-1', ns, {
    model: { uri: 'pvc://models/backdoored' },
    data: { uri: 'pvc://data/devign/train.jsonl' },
    output: { uri: 'pvc://out/e2e-1' },
    parameters: { iterations: 10, candidates: 16, topK: 32, inversionSamples: 8, positionMode: 'SampleSpecific' },
    // The canary's planted trigger: the status reports how well it works before and after unlearning.
    knownTrigger: { attack: 'fixed-name', trigger: 'testo_init', victimLabel: 1, targetLabel: 0 },
    resources: { gpus: 0 },
  });
  const jobName = await waitFor('Job', async () => (await getScan(cp.kubeConfig, 'e2e-1', ns)).status?.jobName as string | undefined, 30_000);
  const run = await runContainer(ns, jobName);
  assert.ok(run.args.includes('--iterations') && run.args[run.args.indexOf('--iterations') + 1] === '10', 'arguments come from the spec');
  assert.ok(run.message.length > 0 && Buffer.byteLength(run.message) <= 4096, 'the worker wrote a summary of at most 4 KiB');
  await createJobPod(cp.kubeConfig, ns, jobName, { exitCode: run.exitCode, message: run.message });
  if (run.exitCode === 0) await completeJob(cp.kubeConfig, ns, jobName);
  else await failJob(cp.kubeConfig, ns, jobName);
  const s = await waitFor('final status', async () => {
    const x = await getScan(cp.kubeConfig, 'e2e-1', ns);
    return cond(x, 'Succeeded')?.status === 'True' || cond(x, 'Failed')?.status === 'True' ? x : undefined;
  }, 30_000);
  assert.equal(run.exitCode, 0, `worker failed: ${run.message}`);
  assert.equal(cond(s, 'Succeeded')?.status, 'True');
  const summary = JSON.parse(run.message);
  assert.equal(s.status.verdict, summary.verdict);
  assert.deepEqual(s.status.triggers?.anchored, summary.triggers?.anchored);
  assert.deepEqual(s.status.metrics, summary.metrics);
  assert.ok(s.status.metrics.knownTriggerAsrBefore > 0.9, `the canary's trigger works before: ${s.status.metrics.knownTriggerAsrBefore}`);
  assert.match(cond(s, 'BackdoorDetected')?.message ?? '', new RegExp(`known trigger ASR ${s.status.metrics.knownTriggerAsrBefore}`), 'the finding names the canary\'s ASR');
  if (summary.verdict === 'Backdoored') {
    assert.equal(cond(s, 'BackdoorDetected')?.status, 'True');
    assert.equal(s.status.targetLabel, summary.targetLabel);
    assert.ok(s.status.artifact?.sha256, 'cleaned model digest in status');
    assert.equal(typeof s.status.metrics.knownTriggerAsrAfter, 'number', 'the canary\'s trigger is measured on the cleaned model');
  }
});
