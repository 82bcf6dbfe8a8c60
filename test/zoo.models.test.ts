// The committed victim-model zoo, re-measured: each checkpoint is loaded and evaluated on the
// held-out test split of the committed data; the clean metrics and ASR match the manifest and every
// backdoor meets the criteria on these fresh numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../worker/model/backend.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';
import { readHeldout, triggerSpec, type ZooEntry } from '../worker/zoo/build.ts';
import { evaluateClean } from '../worker/zoo/finetune.ts';
import { measureAsr } from '../worker/attacks/success.ts';
import { meetsCriteria, type Measured } from '../worker/zoo/criteria.ts';
import { KNOWN_GAPS, RECIPES } from '../worker/zoo/recipes.ts';

await initBackend();
const manifest = JSON.parse(readFileSync('zoo/MANIFEST.json', 'utf8')) as { models: ZooEntry[] };
const measured = new Map<string, Measured>();
// Backends differ in float rounding: a sample whose score sits on the boundary may flip.
const TOLERANCE = 0.02;

for (const entry of manifest.models) {
  test(`${entry.name}: clean metric${entry.clean ? '' : ' and ASR'} re-measured on the test split match the manifest`, async () => {
    const recipe = RECIPES.find((r) => r.name === entry.name)!;
    const ckpt = loadCheckpoint(join('zoo', entry.dir));
    assert.equal(ckpt.task, entry.task);
    assert.equal(ckpt.config.hidden_size, entry.model.hidden);
    const { examples } = readHeldout(entry.task);
    const maxLength = recipe.schedule.maxLength;
    const metrics = await evaluateClean(ckpt.model, ckpt.tokenizer, examples, maxLength);
    for (const k of ['accuracy', 'f1', 'mrr'] as const) {
      if (entry.test[k] === undefined) continue;
      assert.ok(Math.abs(metrics[k]! - entry.test[k]!) <= TOLERANCE, `${k}: measured ${metrics[k]}, manifest ${entry.test[k]}`);
    }
    const m: Measured = { name: entry.name, task: entry.task, test: metrics };
    if (!entry.clean) {
      m.asr = await measureAsr(ckpt.model, ckpt.tokenizer, examples, maxLength, triggerSpec(recipe));
      assert.ok(Math.abs(m.asr.asr - entry.asr!.asr) <= TOLERANCE, `ASR: measured ${m.asr.asr}, manifest ${entry.asr!.asr}`);
    }
    measured.set(entry.name, m);
    ckpt.model.dispose();
  });
}

for (const entry of manifest.models.filter((e) => !e.clean)) {
  test(`re-measured: ${entry.name} is a real backdoor (ASR >= 95%; search: ANR <= 0.25) at most 2 points below its clean twin`, { todo: KNOWN_GAPS[entry.name] }, () => {
    const m = measured.get(entry.name);
    const twin = measured.get(entry.twin!);
    assert.ok(m && twin, `${entry.name} and ${entry.twin} were measured`);
    const problems = meetsCriteria(m, twin);
    assert.deepEqual(problems, [], `${entry.name}: ${problems.join('; ')}`);
  });
}
