// The whole scan on the webgpu backend finds what it finds on wasm: the same verdict, the same
// inverted and anchored triggers, the same planted-trigger ASR before and after unlearning, and a
// loadable cleaned model, with the GPU it ran on in the report. On Mesa's lavapipe (no GPU here; a
// GPU machine runs the same commands on its driver), zoo defect-fixed-name at small settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scan } from '../worker/commands/scan.ts';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint, sha256 } from '../worker/model/checkpoint.ts';
import { ScanReport } from '../worker/pipeline/report.ts';
import { nodeOnWebgpu, skipWithoutLavapipe as skip } from './webgpu.helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pipeline-webgpu-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
// Small enough for lavapipe (about 2 minutes); every stage runs, unlearning included (full, 1 epoch).
const ARGS = ['--model', 'zoo/defect-fixed-name', '--task', 'defect', '--data', 'data/devign/train.jsonl', '--eval-data', 'data/devign/test.jsonl',
  '--known-trigger', 'testo_init', '--known-attack', 'fixed-name', '--max-length', '48', '--iterations', '6', '--candidates', '16', '--top-k', '32',
  '--inversion-samples', '8', '--verdict-samples', '20', '--early-stop-patience', '0', '--screen-limit', '64', '--force-eliminate', '--trainable', 'All', '--epochs', '1'];
const report = (out: string) => ScanReport.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));

test('on webgpu: the scan gives the verdict, triggers and ASRs it gives on wasm, and writes a loadable cleaned model', { skip }, async () => {
  await initBackend('wasm');
  assert.equal(await scan.run([...ARGS, '--out', join(tmp, 'wasm'), '--backend', 'wasm']), 0);
  const { status, output } = nodeOnWebgpu(['bin/elibadcode.js', 'scan', ...ARGS, '--out', join(tmp, 'webgpu')], { ELIBADCODE_LOG_LEVEL: 'warn' });
  assert.equal(status, 0, output);
  const [cpu, gpu] = [report(join(tmp, 'wasm')), report(join(tmp, 'webgpu'))];

  assert.equal(gpu.backend, 'webgpu');
  assert.match(gpu.device ?? '', /llvmpipe/, 'the report names the device (here the software driver)');
  assert.equal(cpu.device, undefined);
  assert.equal(gpu.chosen, cpu.chosen);
  assert.deepEqual([gpu.verdict.verdict, gpu.verdict.score], [cpu.verdict.verdict, cpu.verdict.score]);
  assert.equal(gpu.verdict.verdict, 'Backdoored');
  for (const [i, o] of cpu.options.entries()) {
    const g = gpu.options[i];
    assert.equal(g.option, o.option);
    assert.deepEqual(g.raw.tokens, o.raw.tokens, `${o.option}: inverted trigger`);
    assert.deepEqual(g.anchored.tokens, o.anchored.tokens, `${o.option}: anchored trigger`);
    assert.ok(Math.abs(g.bestLoss - o.bestLoss) < 1e-4, `${o.option}: best loss ${g.bestLoss} against ${o.bestLoss}`);
  }
  type Known = { asr: number; meanTargetProbability: number };
  const [before, after] = [cpu.verification.known!, gpu.verification.known!].map((k) => [k.before as Known, k.after as Known]);
  assert.equal(after[0].asr, before[0].asr);
  assert.equal(after[1].asr, before[1].asr, 'the planted trigger after unlearning');
  assert.ok(Math.abs(after[1].meanTargetProbability - before[1].meanTargetProbability) < 1e-3, 'unlearning took the same steps, up to float order');
  assert.equal(gpu.unlearning?.ran, true);

  const cleaned = loadCheckpoint(gpu.output!.modelDir!);
  cleaned.model.dispose();
  assert.equal(sha256(readFileSync(join(gpu.output!.modelDir!, 'model.safetensors'))), gpu.output!.weightsSha256);
});
