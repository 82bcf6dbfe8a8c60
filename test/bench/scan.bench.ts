// npm run bench:scan: the scan per option on a model (default: the zoo's defect-fixed-name, else
// a tiny model trained here): seconds per GCG iteration, candidate sequences scored per second,
// the fraction of the backend's measured matmul peak candidate scoring reaches, total scan time,
// unlearning time, peak memory, and the time early stopping saved.
// Env: BENCH_MODEL (dir), BENCH_DATA (devign train), BENCH_EVAL (devign test), BENCH_ARGS (extra
// scan flags, e.g. "--reference --max-length 64"), ELIBADCODE_BACKEND.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../worker/model/backend.ts';
import { loadCheckpoint } from '../../worker/model/checkpoint.ts';
import { parseScanArgs } from '../../worker/commands/scan.ts';
import { runScan } from '../../worker/pipeline/scan.ts';
import { makeProgress } from '../../worker/pipeline/progress.ts';
import { trainVictim } from '../pipeline.helpers.ts';
import { matmulPeakGflops } from './peak.ts';

const root = new URL('../../', import.meta.url).pathname;
const backend = await initBackend();
const tmp = mkdtempSync(join(os.tmpdir(), 'bench-scan-'));
let model = process.env.BENCH_MODEL ?? join(root, 'zoo/defect-fixed-name');
if (!existsSync(join(model, 'config.json'))) {
  console.error(`${model}: no model; training a tiny backdoored one`);
  model = await trainVictim({ dir: join(tmp, 'victim'), poison: true, epochs: 6, maxLength: 64 });
}

// Plain-matmul peak at the shapes of the model's largest products ([tokens × H]·[H × I]); an upper
// bound for scoring, whose FLOPs below count sequences at full length (padding included).
const ck = loadCheckpoint(model);
const H = ck.config.hidden_size;
const I = ck.config.intermediate_size;
const layers = ck.config.num_hidden_layers;
ck.model.dispose();
const peakGflops = await matmulPeakGflops(4096, H, I);

const args = ['--model', model, '--data', process.env.BENCH_DATA ?? join(root, 'data/devign/train.jsonl'), '--eval-data', process.env.BENCH_EVAL ?? join(root, 'data/devign/test.jsonl'),
  '--task', 'defect', '--out', join(tmp, 'out'), '--force-eliminate', ...(process.env.BENCH_ARGS ?? '').split(' ').filter(Boolean)];
const o = parseScanArgs(args);
let peakRss = process.memoryUsage().rss;
const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
const t0 = performance.now();
const { report } = await runScan({ ...o, progress: makeProgress({ quiet: true }) });
const total = (performance.now() - t0) / 1000;
clearInterval(timer);

// FLOPs of one forward of a sequence of length n (dense products only; attention's two bmm included).
const flops = (n: number) => layers * (2 * n * H * (4 * H + 2 * I) + 4 * n * n * H) + 2 * H * H;
const rows = report.options.map((x) => {
  const seqLen = Math.min(o.maxLength, report.model.maxPositions) + o.triggerLength;
  const seqPerSec = x.sequencesScored / x.seconds.scoring;
  return {
    option: x.option,
    iterations: `${x.iterations}/${x.maxIterations} (${x.stop})`,
    secondsPerIteration: Number((x.seconds.total / Math.max(1, x.iterations)).toFixed(3)),
    candidatesPerSecond: Number((x.candidatesScored / x.seconds.scoring).toFixed(1)),
    sequencesPerSecond: Number(seqPerSec.toFixed(1)),
    scoringGflops: Number(((seqPerSec * flops(seqLen)) / 1e9).toFixed(2)),
    fractionOfPeak: Number(((seqPerSec * flops(seqLen)) / 1e9 / peakGflops).toFixed(3)),
    screenSeconds: x.screen?.seconds ?? 0,
    optionSeconds: Number(x.seconds.total.toFixed(1)),
    earlyStopSavedSeconds: Number(x.earlyStopSavedSeconds.toFixed(1)),
    bestLoss: Number(x.bestLoss.toFixed(4)),
  };
});
console.log(JSON.stringify({
  backend, cpus: os.cpus().length, model, hidden: H, layers, maxLength: Math.min(o.maxLength, report.model.maxPositions),
  parameters: { topK: o.topK, candidates: o.candidates, iterations: o.iterations, inversionSamples: o.inversionSamples, patience: o.patience, screenLimit: o.screenLimit },
  peakMatmulGflops: Number(peakGflops.toFixed(2)),
  options: rows,
  scanSeconds: Number(report.durations.scanSeconds.toFixed(1)),
  unlearningSeconds: Number(report.durations.eliminateSeconds.toFixed(1)),
  evaluateSeconds: Number(report.durations.evaluateSeconds.toFixed(1)),
  totalSeconds: Number(total.toFixed(1)),
  peakRssMiB: Math.round(peakRss / 2 ** 20),
  verdict: report.verdict.verdict,
  score: report.verdict.score,
}, null, 2));
rmSync(tmp, { recursive: true, force: true });
