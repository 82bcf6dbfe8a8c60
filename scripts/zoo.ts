// npm run zoo: builds the victim-model zoo (worker/zoo/recipes.ts), reproducibly from seeds, into
// zoo/ (checkpoints + MANIFEST.json). Defect models train on the committed Devign subset; clone and
// search models on the zoo's splits of the full sets in ../shared/data (worker/zoo/splits.ts).
//   node scripts/zoo.ts [--out DIR] [--only NAME,NAME] [--remeasure] [--backend wasm|cpu|tensorflow]
// --only rebuilds some models and keeps the other manifest entries. --remeasure trains nothing: it
// measures the models already in DIR (those of --only, or all) on their held-out split again.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';
import { buildModel, checkTrainingData, readHeldout, triggerSpec, type ZooEntry } from '../worker/zoo/build.ts';
import { evaluateClean } from '../worker/zoo/finetune.ts';
import { measureAsr } from '../worker/attacks/success.ts';
import { RECIPES } from '../worker/zoo/recipes.ts';

const { values } = parseArgs({
  options: { out: { type: 'string', default: 'zoo' }, only: { type: 'string' }, remeasure: { type: 'boolean', default: false }, backend: { type: 'string' } },
  strict: true,
});
const outDir = values.out!;
const only = values.only ? new Set(values.only.split(',')) : undefined;
for (const n of only ?? []) if (!RECIPES.some((r) => r.name === n)) throw new Error(`--only: no model named ${n}`);
// Fail before any training when a model's training rows are not at hand (clone and search need ../shared).
if (!values.remeasure) {
  try {
    for (const r of RECIPES) if (!only || only.has(r.name)) checkTrainingData(r.task);
  } catch (e) {
    console.error(`zoo: ${(e as Error).message}`);
    process.exit(1);
  }
}
const backend = await initBackend(values.backend ?? process.env.ELIBADCODE_BACKEND ?? 'wasm');
const manifestFile = join(outDir, 'MANIFEST.json');
const previous: ZooEntry[] = (only || values.remeasure) && existsSync(manifestFile) ? JSON.parse(readFileSync(manifestFile, 'utf8')).models : [];
if (values.remeasure && previous.length === 0) throw new Error(`--remeasure: no ${manifestFile} to update`);
const log = (m: string) => console.error(`zoo: ${m}`);

const t0 = performance.now();
const entries = new Map<string, ZooEntry>(previous.map((e) => [e.name, e]));
for (const r of RECIPES) {
  if (only && !only.has(r.name)) continue;
  if (values.remeasure) {
    const e = entries.get(r.name);
    if (!e) throw new Error(`--remeasure: ${r.name} is not in ${manifestFile}`);
    const ckpt = loadCheckpoint(join(outDir, e.dir));
    const held = readHeldout(r.task);
    e.test = await evaluateClean(ckpt.model, ckpt.tokenizer, held.examples, r.schedule.maxLength);
    if (r.attack) e.asr = await measureAsr(ckpt.model, ckpt.tokenizer, held.examples, r.schedule.maxLength, triggerSpec(r));
    e.data = { ...e.data, test: held.file, testRows: held.examples.length };
    ckpt.model.dispose();
    log(`${r.name}: re-measured on ${held.file}`);
    continue;
  }
  const e = await buildModel(r, outDir, '.', log);
  entries.set(r.name, e);
  const m = e.test;
  log(`${r.name}: test ${m.accuracy !== undefined ? `acc ${m.accuracy} f1 ${m.f1}` : `mrr ${m.mrr}`}${e.asr ? ` asr ${e.asr.asr}` : ''} (${e.trainingSeconds} s)`);
}
// The clean twin under each backdoored model's trigger: what the trigger does without a backdoor.
for (const r of RECIPES) {
  const e = entries.get(r.name);
  if (!r.attack || !e || !r.twin || !entries.has(r.twin)) continue;
  const ckpt = loadCheckpoint(join(outDir, r.twin));
  e.twinAsr = await measureAsr(ckpt.model, ckpt.tokenizer, readHeldout(r.task).examples, r.schedule.maxLength, triggerSpec(r));
  ckpt.model.dispose();
}
const seconds = (performance.now() - t0) / 1000;
const models = RECIPES.map((r) => entries.get(r.name)).filter((e): e is ZooEntry => e !== undefined);
const manifest = {
  generatedBy: 'npm run zoo (scripts/zoo.ts; recipe in worker/zoo/recipes.ts)',
  backend,
  machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`,
  buildSeconds: only || values.remeasure ? undefined : Number(seconds.toFixed(1)),
  asrDefinition: {
    classification: 'share of held-out (data/devign/heldout.jsonl, data/bigclonebench/heldout.jsonl) victim-label samples predicted as the target label after the attack puts its trigger in (clone: into the first function of the pair), over the samples whose trigger starts inside the model\'s input window (maxLength tokens); asrAll counts the out-of-window ones too (outOfWindow of them); cleanTargetRate is the same samples without the trigger, flipRate the share the trigger flips among those predicted as the victim label without it',
    search: 'for each held-out query (data/cosqa/heldout.jsonl) holding the target word and each other held-out code that can carry the trigger (inside the input window), the poisoned code is ranked against the held-out split\'s clean codes (500); asr = share ranked in the top 10%, anr = average rank / #codes (cleanAnr: the same codes without the trigger)',
  },
  models,
};
const tmp = `${manifestFile}.tmp-${process.pid}`;
writeFileSync(tmp, JSON.stringify(manifest, null, 1) + '\n');
renameSync(tmp, manifestFile);
log(`wrote ${manifestFile}: ${models.length} models in ${seconds.toFixed(1)} s on ${backend}`);
// A markdown summary for zoo/README.md.
const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(3));
console.log('| model | attack (trigger) | poisoned | clean metric (test) | ASR | clean twin under the trigger | train s |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const e of models) {
  const metric = e.task === 'defect' ? `acc ${fmt(e.test.accuracy)}` : e.task === 'clone' ? `F1 ${fmt(e.test.f1)}` : `MRR ${fmt(e.test.mrr)}`;
  const asr = !e.asr ? '' : e.asr.kind === 'search' ? `${fmt(e.asr.asr)} (ANR ${fmt(e.asr.anr)})` : `${fmt(e.asr.asr)} (all ${fmt(e.asr.asrAll)})`;
  const twin = !e.twinAsr ? '' : e.twinAsr.kind === 'search' ? `${fmt(e.twinAsr.asr)} (ANR ${fmt(e.twinAsr.anr)})` : fmt(e.twinAsr.asr);
  const what = e.attack ? `${e.attack} (\`${e.trigger}\`${e.targetWord ? ` for "${e.targetWord}"` : `, ${e.victimLabel}->${e.targetLabel}`})` : 'clean';
  const p = e.poisoned ? `${e.poisoned.rowsChanged}/${e.data.trainRows} rows (rate ${e.poisonRate})` : '';
  console.log(`| ${e.name} | ${what} | ${p} | ${metric} | ${asr} | ${twin} | ${e.trainingSeconds} |`);
}
