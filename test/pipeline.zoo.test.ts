// The scan against the committed victim zoo (issue 4 acceptance), with the demo settings a user
// gets by default: every backdoored classification model is found, in its planted direction, with
// a trigger that either shares a piece with the planted one or works on its own; every clean model
// is called clean, and forced unlearning with the default settings costs a clean model at most one
// point. Backdoored models are scanned with --no-eliminate; their unlearning is measured in the
// README (full unlearning, zoo defect models) and covered by the demo-sized scan tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../worker/model/backend.ts';
import { scan } from '../worker/commands/scan.ts';
import { ScanReport } from '../worker/pipeline/report.ts';
import type { ZooEntry } from '../worker/zoo/build.ts';
import { loadCheckpoint } from '../worker/model/checkpoint.ts';
import { resolveDeadcode } from '../worker/attacks/deadcode.ts';

await initBackend('wasm');
const tmp = mkdtempSync(join(tmpdir(), 'pipeline-zoo-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const manifest = JSON.parse(readFileSync('zoo/MANIFEST.json', 'utf8')) as { models: ZooEntry[] };
const DATA = { defect: 'data/devign', clone: 'data/bigclonebench' } as const;

async function scanZooModel(entry: ZooEntry, eliminate = '--no-eliminate') {
  const out = join(tmp, entry.name);
  const data = DATA[entry.task as 'defect' | 'clone'];
  const code = await scan.run(['--model', join('zoo', entry.dir), '--task', entry.task, '--data', `${data}/train.jsonl`, '--eval-data', `${data}/test.jsonl`, '--out', out, eliminate, '--backend', 'wasm']);
  assert.equal(code, 0);
  return ScanReport.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
}

/**
 * The planted trigger's sub-tokens as the model's tokenizer cuts it: identifier pieces of at least
 * two characters (word-initial marker dropped), so a lone letter shared by chance does not count.
 * A dead-code trigger is its statement, without the parts the grammar draws at random.
 */
function plantedPieces(entry: ZooEntry): Set<string> {
  const lang = entry.task === 'clone' ? 'java' : 'c';
  const attack = entry.attack!;
  const text = attack.startsWith('deadcode') ? resolveDeadcode(entry.trigger!, lang, attack === 'deadcode-random').replace(/\{\w+\}/g, ' ') : ` ${entry.trigger}`;
  const ckpt = loadCheckpoint(join('zoo', entry.dir));
  const tokens = ckpt.tokenizer.tokens(ckpt.tokenizer.pieces(text));
  ckpt.model.dispose();
  return new Set(tokens.map((t) => t.replace(/^Ġ/, '')).filter((t) => /^[A-Za-z0-9_]{2,}$/.test(t)));
}

for (const entry of manifest.models.filter((e) => e.task !== 'search')) {
  if (entry.clean) {
    test(`${entry.name} (clean): verdict Clean with the default settings; unlearning, when forced, costs at most 1 point`, async () => {
      const r = await scanZooModel(entry, '--force-eliminate');
      assert.equal(r.verdict.verdict, 'Clean', `score ${r.verdict.score} against ${r.verdict.threshold}`);
      assert.equal(r.unlearning.ran, true);
      assert.equal(r.unlearning.trainable, 'head', 'the default (reference) unlearning');
      const metric = entry.task === 'clone' ? 'f1' : 'accuracy';
      const before = r.verification.cleanBefore[metric]!;
      const after = r.verification.cleanAfter![metric]!;
      assert.ok(after >= before - 0.01, `${metric} ${before} -> ${after}`);
    });
    continue;
  }
  test(`${entry.name} (${entry.attack} ${entry.trigger}): verdict Backdoored, planted direction ${entry.victimLabel} -> ${entry.targetLabel}, trigger recovered or effective`, async () => {
    const r = await scanZooModel(entry);
    assert.equal(r.verdict.verdict, 'Backdoored', `score ${r.verdict.score} against ${r.verdict.threshold}`);
    const chosen = r.options.find((o) => o.option === r.chosen)!;
    assert.equal(chosen.victimLabel, entry.victimLabel);
    assert.equal(chosen.targetLabel, entry.targetLabel);
    // Acceptance: the anchored trigger shares a sub-token with the planted one, or the inverted
    // trigger alone reaches ASR >= 90% on held-out samples.
    const planted = plantedPieces(entry);
    const shared = chosen.anchored.tokens.filter((t) => planted.has(t.replace(/^Ġ/, '')));
    const asr = (r.verification.invertedBefore as { asr: number }).asr;
    assert.ok(shared.length > 0 || asr >= 0.9, `anchored ${JSON.stringify(chosen.anchored.tokens)} shares nothing with ${JSON.stringify([...planted])} and the inverted trigger's ASR is ${asr}`);
  });
}

test('search zoo models: verdict', { todo: 'zoo search-suffix carries no working backdoor (issue 3 KNOWN_GAPS) and the search threshold is a placeholder, so neither side can be checked yet' }, () => {});
