// npm run bench:model: forward and training-step throughput of the RoBERTa runtime on the
// active backend, against the backend's own plain-matmul peak measured in the same run.
// Options (env): BENCH_BATCH (8), BENCH_LENGTH (128), BENCH_REPEAT (5), ELIBADCODE_BACKEND, and
// BENCH_PROFILE=1: also the kernels of one forward pass and one training step per configuration
// (count and backend-reported time per kernel name), to see where a training step's time goes.
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../worker/model/backend.ts';
import { parseConfig } from '../../worker/model/config.ts';
import { Roberta } from '../../worker/model/roberta.ts';
import { AdamW, nllLoss } from '../../worker/model/train.ts';
import { matmulPeakGflops } from './peak.ts';

const batch = Number(process.env.BENCH_BATCH ?? 8);
const length = Number(process.env.BENCH_LENGTH ?? 128);
const repeat = Number(process.env.BENCH_REPEAT ?? 5);
const backend = await initBackend();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: () => tf.Tensor | number | Promise<number>, n = repeat): Promise<number> {
  const warm = await fn();
  if (typeof warm !== 'number') { await warm.data(); warm.dispose(); }
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const out = await fn();
    if (typeof out !== 'number') { await out.data(); out.dispose(); }
    times.push(performance.now() - t0);
  }
  return median(times);
}

// Peak: the plain product at the shapes a forward pass multiplies most ([tokens × H]·[H × 4H]).
const peak = await matmulPeakGflops(batch * length, 256, 1024);

const configs = [
  { name: 'tiny', hidden: 128, layers: 2 },
  { name: 'small', hidden: 256, layers: 4 },
  { name: 'base-width', hidden: 768, layers: 1 },
];
const rows: Record<string, string | number>[] = [];

/** Kernels run by `f`, grouped by name, most time first: "name count×, ms". */
async function kernels(f: () => Promise<unknown> | tf.TensorContainer): Promise<{ total: number; ms: number; top: string[] }> {
  const info = await tf.profile(async () => {
    const out = await f();
    if (out instanceof tf.Tensor) { await out.data(); out.dispose(); }
  });
  const byName = new Map<string, { n: number; ms: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byName.set(k.name, e);
  }
  const sorted = [...byName].sort((a, b) => b[1].ms - a[1].ms || b[1].n - a[1].n);
  return {
    total: info.kernels.length,
    ms: Number(sorted.reduce((s, [, e]) => s + e.ms, 0).toFixed(1)),
    top: sorted.slice(0, 12).map(([name, e]) => `${name} ${e.n}x ${e.ms.toFixed(1)} ms`),
  };
}
for (const c of configs) {
  const config = parseConfig({
    model_type: 'roberta', vocab_size: 5000, hidden_size: c.hidden, num_hidden_layers: c.layers,
    num_attention_heads: c.hidden / 64 >= 2 ? c.hidden / 64 : 2, intermediate_size: 4 * c.hidden,
    max_position_embeddings: length + 2, architectures: ['RobertaForSequenceClassification'], num_labels: 2,
  });
  const model = Roberta.init(config, 'classify', 0);
  const ids = tf.randomUniform([batch, length], 5, 5000, 'int32') as tf.Tensor2D;
  const mask = tf.ones([batch, length], 'int32') as tf.Tensor2D;
  const inputs = { inputIds: ids, attentionMask: mask };
  const labels = Array.from({ length: batch }, (_, i) => i % 2);
  const forwardMs = await time(() => tf.tidy(() => model.logits(inputs)));
  const optimizer = new AdamW(model.params, { learningRate: 1e-5, totalSteps: 1000 });
  const trainMs = await time(async () => (await optimizer.minimize(() => nllLoss(model.logProbs(inputs, { training: true }), labels))).loss);
  const H = c.hidden, N = batch * length;
  const flops = c.layers * (2 * N * (4 * H * H + 2 * H * 4 * H) + 4 * batch * length * length * H);
  rows.push({
    config: `${c.name} (H=${H}, L=${c.layers})`,
    'forward ms': forwardMs.toFixed(1),
    'forward tok/s': Math.round(N / (forwardMs / 1000)),
    'forward GFLOP/s': (flops / (forwardMs / 1000) / 1e9).toFixed(1),
    'of peak': `${((100 * flops) / (forwardMs / 1000) / 1e9 / peak).toFixed(0)}%`,
    'train-step ms': trainMs.toFixed(1),
    'train tok/s': Math.round(N / (trainMs / 1000)),
    'train/forward': (trainMs / forwardMs).toFixed(2),
  });
  // Each row as it is measured too, so that a run stopped by a time limit keeps what it measured.
  console.error(JSON.stringify(rows.at(-1)));
  if (process.env.BENCH_PROFILE === '1') {
    const forward = await kernels(() => tf.tidy(() => model.logits(inputs)));
    const train = await kernels(() => optimizer.minimize(() => nllLoss(model.logProbs(inputs, { training: true }), labels)));
    console.error(JSON.stringify({ config: c.name, kernels: { forward, train } }));
  }
  optimizer.dispose();
  model.dispose();
  tf.dispose([ids, mask]);
}
console.log(`backend ${backend}; node ${process.version}; ${os.cpus().length} cpus (${os.cpus()[0]?.model}); batch ${batch} x ${length} tokens; median of ${repeat}`);
console.log(`matmul peak [${batch * length}x256]·[256x1024]: ${peak.toFixed(1)} GFLOP/s`);
console.table(rows);
