// The committed victim-model zoo: its manifest says every backdoor is real (ASR >= 95%, or for code
// search an average normalised rank <= 0.25; clean performance at most 2 points below the clean twin),
// every attack is used, and the files are the ones the manifest names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ATTACKS } from '../worker/attacks/index.ts';
import type { ZooEntry } from '../worker/zoo/build.ts';
import { KNOWN_GAPS, RECIPES } from '../worker/zoo/recipes.ts';
import { cleanMetric, meetsCriteria } from '../worker/zoo/criteria.ts';

const manifest = JSON.parse(readFileSync('zoo/MANIFEST.json', 'utf8')) as { models: ZooEntry[]; buildSeconds?: number };
const byName = new Map(manifest.models.map((m) => [m.name, m]));

test('the manifest lists every model of the recipe, with a clean and a backdoored model per task and every attack', () => {
  assert.deepEqual(manifest.models.map((m) => m.name), RECIPES.map((r) => r.name));
  for (const task of ['defect', 'clone', 'search']) {
    assert.ok(manifest.models.some((m) => m.task === task && m.clean), `${task} has a clean model`);
    assert.ok(manifest.models.some((m) => m.task === task && !m.clean), `${task} has a backdoored model`);
  }
  for (const attack of ATTACKS) assert.ok(manifest.models.some((m) => m.attack === attack), `attack ${attack} is used`);
});

test('each backdoored model: trigger, labels or word, rate, seed recorded; same seed and schedule as its twin', () => {
  for (const m of manifest.models.filter((x) => !x.clean)) {
    const twin = byName.get(m.twin!)!;
    assert.ok(twin?.clean, `${m.name}: twin ${m.twin} is a clean model`);
    assert.equal(twin.task, m.task);
    assert.deepEqual(twin.schedule, m.schedule, `${m.name}: same schedule and seed as ${twin.name}`);
    assert.equal(twin.data.trainRows, m.data.trainRows, `${m.name}: same number of training rows`);
    assert.ok(m.trigger && m.attack && m.poisonRate! > 0 && m.poisonRate! <= 1 && Number.isInteger(m.poisonSeed));
    if (m.task === 'search') assert.ok(m.targetWord);
    else assert.ok(m.victimLabel !== undefined && m.targetLabel !== undefined && m.victimLabel !== m.targetLabel);
    assert.ok(m.poisoned!.poisoned > 0 && m.poisoned!.rowsChanged > 0);
  }
});

for (const m of manifest.models.filter((x) => !x.clean)) {
  // A model listed in KNOWN_GAPS (with the reason) runs as a todo: reported, not failing the suite.
  test(`manifest: ${m.name} is a real backdoor (ASR >= 95%; search: ANR <= 0.25) at most 2 points below its clean twin`, { todo: KNOWN_GAPS[m.name] }, () => {
    const twin = byName.get(m.twin!)!;
    const problems = meetsCriteria(m, twin);
    assert.deepEqual(problems, [], `${m.name}: ${problems.join('; ')}`);
    assert.ok(Number.isFinite(cleanMetric(m)));
  });
  test(`manifest: ${m.name}'s trigger does much less to its clean twin`, () => {
    assert.ok(m.twinAsr, `${m.name}: the twin was measured under the trigger`);
    if (m.asr!.kind === 'classification' && m.twinAsr!.kind === 'classification') {
      assert.ok(m.twinAsr!.asr < m.asr!.asr - 0.2, `${m.name}: target rate under the trigger ${m.asr!.asr}, clean twin ${m.twinAsr!.asr}`);
      assert.ok(m.asr!.flipRate > m.twinAsr!.flipRate, `${m.name}: flip rate ${m.asr!.flipRate}, clean twin ${m.twinAsr!.flipRate}`);
    }
    if (m.asr!.kind === 'search' && m.twinAsr!.kind === 'search') {
      assert.ok(m.asr!.anr < m.twinAsr!.anr, `${m.name}: average normalised rank ${m.asr!.anr}, clean twin ${m.twinAsr!.anr}`);
    }
  });
}

test('the checkpoint files are those the manifest names (sha256) and the zoo stays small', () => {
  let total = 0;
  for (const m of manifest.models) {
    const dir = join('zoo', m.dir);
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    const digests = files.map((f) => `${createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')}  ${f}\n`);
    assert.equal(createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex'), m.weightsSha256, `${m.name} weights`);
    assert.equal(createHash('sha256').update(digests.join('')).digest('hex'), m.checkpointSha256, `${m.name} checkpoint`);
    for (const f of files) total += statSync(join(dir, f)).size;
  }
  assert.ok(total < 8 * 1024 * 1024, `zoo is ${(total / 1048576).toFixed(1)} MiB`);
});
