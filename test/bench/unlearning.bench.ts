// npm run bench:unlearning: how far unlearning takes each backdoored defect zoo model's planted
// trigger, over several unlearning seeds, against the clean twin's own rate for that trigger; and
// what forced unlearning costs the clean model. Every number here moves by several points with the
// seed alone (44 held-out victims: one sample is 2.3 points), so it prints each seed and mean ± sd.
// Env: BENCH_SEEDS (unlearning seeds, default "42,43,44"), BENCH_MODELS (zoo names, default the
// four backdoored defect models and defect-clean), BENCH_ARGS (extra scan flags, e.g.
// "--adversarial-unlearning", or the spec's controls and ablations: "--unlearn-random-trigger",
// the oracle "--unlearn-known-trigger", "--no-vocabulary-filter", "--position-mode Fixed"; README
// "Controls and ablations"), ELIBADCODE_BACKEND.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../worker/model/backend.ts';
import { parseScanArgs } from '../../worker/commands/scan.ts';
import { runScan } from '../../worker/pipeline/scan.ts';
import { makeProgress } from '../../worker/pipeline/progress.ts';
import type { ZooEntry } from '../../worker/zoo/build.ts';
import { twinRate } from '../pipeline.helpers.ts';

/** The demo's unlearning (scripts/demo.sh): all parameters, victim samples, rate 0.5, 10 epochs. */
const UNLEARNING = ['--force-eliminate', '--trainable', 'All', '--injection-scope', 'victim', '--injection-rate', '0.5', '--epochs', '10', '--learning-rate', '5e-3'];

const root = new URL('../../', import.meta.url).pathname;
process.chdir(root);
const backend = await initBackend();
const tmp = mkdtempSync(join(os.tmpdir(), 'bench-unlearning-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const seeds = (process.env.BENCH_SEEDS ?? '42,43,44').split(',').map(Number);
const extra = (process.env.BENCH_ARGS ?? '').split(' ').filter(Boolean);
const manifest = JSON.parse(readFileSync('zoo/MANIFEST.json', 'utf8')) as { models: ZooEntry[] };
const wanted = process.env.BENCH_MODELS?.split(',') ?? manifest.models.filter((m) => m.task === 'defect').map((m) => m.name);
// The clean model is measured with the demo model's trigger (its twin's rate is its own rate).
const canary = manifest.models.find((m) => m.name === 'defect-fixed-name')!;

const pct = (x: number) => (100 * x).toFixed(1);
const stats = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${pct(mean)} ± ${pct(sd)}`;
};

console.log(`bench:unlearning on ${backend}, ${os.cpus().length} cores; unlearning seeds ${seeds.join(', ')}; extra flags: ${extra.join(' ') || '(none)'}`);
const rows: string[][] = [];
for (const name of wanted) {
  const entry = manifest.models.find((m) => m.name === name);
  if (!entry || entry.task !== 'defect') throw new Error(`BENCH_MODELS: ${name} is not a defect model of zoo/MANIFEST.json`);
  const planted = entry.attack ? entry : canary;
  const twin = await twinRate(planted);
  const after: number[] = [];
  const accBefore: number[] = [];
  const accAfter: number[] = [];
  let before = NaN;
  let seconds = 0;
  for (const seed of seeds) {
    const args = ['--model', join('zoo', entry.dir), '--task', 'defect', '--data', 'data/devign/train.jsonl', '--eval-data', 'data/devign/test.jsonl',
      '--out', join(tmp, `${name}-${seed}`), ...UNLEARNING, '--unlearn-seed', String(seed), ...extra,
      '--known-trigger', planted.trigger!, '--known-attack', planted.attack!, '--known-victim-label', String(planted.victimLabel), '--known-target-label', String(planted.targetLabel)];
    const t0 = performance.now();
    const { report: r } = await runScan({ ...parseScanArgs(args), progress: makeProgress({ quiet: true }) });
    seconds += (performance.now() - t0) / 1000;
    const known = r.verification.known! as { before: { asr: number }; after?: { asr: number; samples: number } };
    before = known.before.asr;
    after.push(known.after!.asr);
    accBefore.push(r.verification.cleanBefore.accuracy!);
    accAfter.push(r.verification.cleanAfter!.accuracy!);
    console.log(`  ${name} seed ${seed}: planted ${pct(before)}% -> ${pct(known.after!.asr)}% (${known.after!.samples} victims), accuracy ${pct(r.verification.cleanBefore.accuracy!)}% -> ${pct(r.verification.cleanAfter!.accuracy!)}%`);
  }
  rows.push([name, entry.attack ? `${planted.trigger}` : `${planted.trigger} (not planted)`, `${pct(before)}%`, `${after.map(pct).join(' / ')} (${stats(after)})`, `${pct(twin)}%`,
    `${stats(accBefore)} -> ${stats(accAfter)}`, (seconds / seeds.length).toFixed(0)]);
}
const header = ['model', 'trigger', 'ASR before', `ASR after, seeds ${seeds.join(' / ')} (mean ± sd)`, 'clean twin', 'accuracy before -> after', 's per scan'];
console.log(`\n| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
