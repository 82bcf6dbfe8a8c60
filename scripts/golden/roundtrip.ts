// Second golden direction, TypeScript half: load the golden defect checkpoint, change its
// weights with a few training steps, save it with this runtime, and record the logits this
// runtime computes for it. scripts/golden/generate.py then loads the saved checkpoint in
// transformers and checks it computes the same logits.
//   node scripts/golden/roundtrip.ts <fixturesDir> <outDir>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../worker/model/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../../worker/model/checkpoint.ts';
import { AdamW, nllLoss } from '../../worker/model/train.ts';

const [fixtures, outDir] = process.argv.slice(2);
if (!fixtures || !outDir) {
  console.error('usage: node scripts/golden/roundtrip.ts <fixturesDir> <outDir>');
  process.exit(2);
}
await initBackend();
const ckpt = loadCheckpoint(join(fixtures, 'models', 'defect'));
const expected = JSON.parse(readFileSync(join(fixtures, 'expected', 'defect.json'), 'utf8'));
const inputIds: number[][] = expected.input_ids;
const attentionMask: number[][] = expected.attention_mask;
const labels: number[] = inputIds.map((_, i) => i % 2);
const inputs = { inputIds: tf.tensor2d(inputIds, undefined, 'int32'), attentionMask: tf.tensor2d(attentionMask, undefined, 'int32') };

const optimizer = new AdamW(ckpt.model.params, { learningRate: 1e-2, totalSteps: 3, weightDecay: 0.01 });
for (let step = 0; step < 3; step++) await optimizer.minimize(() => nllLoss(ckpt.model.logProbs(inputs, { training: true }), labels));
const saved = await saveCheckpoint(ckpt, outDir);
const logits = tf.tidy(() => ckpt.model.logits(inputs)).arraySync();
writeFileSync(join(outDir, 'outputs.json'), JSON.stringify({ input_ids: inputIds, attention_mask: attentionMask, logits, sha256: saved.sha256 }) + '\n');
console.log(JSON.stringify({ outDir: saved.dir, sha256: saved.sha256 }));
