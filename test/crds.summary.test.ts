// The worker's termination-message summary: parse good, bad and oversized input; serialize to fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_SUMMARY_BYTES,
  isRetriableWorkerError,
  parseScanSummary,
  serializeScanSummary,
  shorten,
  WorkerErrorReason,
  type ScanSummaryInput,
} from '../crds/scan-summary.ts';

const trig = (text: string, n = 2) => ({ tokenIds: Array.from({ length: n }, (_, i) => 1000 + i), tokens: Array.from({ length: n }, (_, i) => `t${i}`), text });

const good: ScanSummaryInput = {
  schemaVersion: 1,
  task: 'defect',
  verdict: 'Backdoored',
  targetLabel: 0,
  victimLabel: 1,
  positionMode: 'SampleSpecific',
  triggers: { raw: trig('Testo_x', 5), anchored: trig('Testo') },
  metrics: { bestLoss: 0.0123, detectionScore: 4.2, detectionThreshold: 2, asrBefore: 0.9976, asrAfter: 0.0264, accuracyBefore: 0.634, accuracyAfter: 0.6339 },
  eliminated: true,
  artifact: { modelUri: 's3://models/clean/', sha256: 'c'.repeat(64), reportUri: 's3://models/clean/report.json' },
  durations: { totalSeconds: 1234.5, scanSeconds: 1000, eliminateSeconds: 200 },
};

test('a good summary parses', () => {
  const r = parseScanSummary(JSON.stringify(good));
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.summary.verdict, 'Backdoored');
  assert.equal(r.summary.triggers?.anchored?.text, 'Testo');
  assert.equal(r.summary.metrics?.asrAfter, 0.0264);
});

test('a failure summary parses with its error', () => {
  const r = parseScanSummary(JSON.stringify({ schemaVersion: 1, verdict: 'Unknown', error: { reason: 'BadModel', message: 'config.json: unknown architecture "gpt2"' } }));
  assert.ok(r.ok);
  assert.equal(r.summary.error?.reason, WorkerErrorReason.BadModel);
  assert.equal(isRetriableWorkerError(r.summary.error!.reason), false);
  assert.equal(isRetriableWorkerError(WorkerErrorReason.InputUnavailable), true);
  assert.equal(isRetriableWorkerError('SomethingNew'), true);
});

const badInputs: Array<[string, string | undefined, RegExp]> = [
  ['empty', '', /left no summary/],
  ['undefined', undefined, /left no summary/],
  ['log tail (FallbackToLogsOnError)', 'Error: CUDA out of memory\n    at foo (bar.js:1:1)', /not JSON .*starts with: "Error: CUDA out of memory at foo/],
  ['truncated JSON', JSON.stringify(good).slice(0, 100), /not JSON/],
  ['an array', '[1,2]', /must be a JSON object/],
  ['no schemaVersion', JSON.stringify({ verdict: 'Clean' }), /schemaVersion undefined is not supported/],
  ['future schemaVersion', JSON.stringify({ ...good, schemaVersion: 2 }), /schemaVersion 2 is not supported \(expected 1\)/],
  ['bad verdict', JSON.stringify({ ...good, verdict: 'Maybe' }), /invalid summary: verdict: /],
  ['ASR above 1', JSON.stringify({ ...good, metrics: { asrAfter: 3 } }), /invalid summary: metrics\.asrAfter: /],
  ['reason not CamelCase', JSON.stringify({ schemaVersion: 1, verdict: 'Unknown', error: { reason: 'bad reason!', message: '' } }), /error\.reason/],
];

for (const [name, text, want] of badInputs) {
  test(`bad summary refused with a readable error: ${name}`, () => {
    const r = parseScanSummary(text);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.match(r.error, want);
      assert.ok(!r.error.includes('\n'), 'one line');
    }
  });
}

test('oversized input is refused before parsing', () => {
  const big = JSON.stringify({ ...good, error: { reason: 'Internal', message: 'x'.repeat(1000) }, pad: 'y'.repeat(5000) });
  const r = parseScanSummary(big);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error, new RegExp(`over the ${MAX_SUMMARY_BYTES}-byte limit`));
  // Multi-byte characters count as bytes, not characters.
  const multi = JSON.stringify({ schemaVersion: 1, verdict: 'Unknown', error: { reason: 'Internal', message: '€'.repeat(1400) } });
  assert.ok(multi.length < MAX_SUMMARY_BYTES && Buffer.byteLength(multi) > MAX_SUMMARY_BYTES);
  const m = parseScanSummary(multi);
  assert.equal(m.ok, false);
  if (!m.ok) assert.match(m.error, /bytes, over the 4096-byte limit/);
});

test('serialize: compact, round-trips, and fits', () => {
  const text = serializeScanSummary(good);
  assert.ok(Buffer.byteLength(text) <= MAX_SUMMARY_BYTES);
  const r = parseScanSummary(text);
  assert.ok(r.ok);
  assert.deepEqual(r.summary, JSON.parse(JSON.stringify(good)));
});

test('serialize: drops detail to fit 4 KiB, keeps the verdict and the anchored text', () => {
  const long = (n: number) => ({ tokenIds: Array.from({ length: n }, (_, i) => 40000 + i), tokens: Array.from({ length: n }, () => 'x'.repeat(100)), text: 'y'.repeat(900) });
  const huge: ScanSummaryInput = { ...good, triggers: { raw: long(64), anchored: long(64), query: long(16) } };
  const text = serializeScanSummary(huge);
  assert.ok(Buffer.byteLength(text) <= MAX_SUMMARY_BYTES, `${Buffer.byteLength(text)} bytes`);
  const r = parseScanSummary(text);
  assert.ok(r.ok);
  assert.equal(r.summary.verdict, 'Backdoored');
  assert.equal(r.summary.triggers?.anchored?.text, 'y'.repeat(900));
  assert.deepEqual(r.summary.metrics, good.metrics);
});

test('serialize: shortens a long error message (by characters, counting bytes)', () => {
  const text = serializeScanSummary({ schemaVersion: 1, verdict: 'Unknown', triggers: { anchored: { tokenIds: [], tokens: [], text: 'z'.repeat(1000) } }, metrics: good.metrics, artifact: good.artifact, durations: good.durations, error: { reason: 'Internal', message: '€'.repeat(1024) } });
  assert.ok(Buffer.byteLength(text) <= MAX_SUMMARY_BYTES);
  const r = parseScanSummary(text);
  assert.ok(r.ok);
  assert.ok(r.summary.error!.message.endsWith('…'));
  assert.ok(r.summary.error!.message.length > 100);
});

test('serialize: caveats round-trip when they fit; under pressure they are shortened, then only the first is kept, after the triggers\' detail', () => {
  const caveats = ['only 12 clean samples of victim label 1 for inversion (asked for 30); all of them are used', 'the default threshold was calibrated on SampleSpecific options'];
  const small = parseScanSummary(serializeScanSummary({ ...good, caveats }));
  assert.ok(small.ok);
  assert.deepEqual(small.summary.caveats, caveats);
  const long = (n: number) => ({ tokenIds: Array.from({ length: n }, (_, i) => 40000 + i), tokens: Array.from({ length: n }, () => 'x'.repeat(100)), text: 'y'.repeat(1000) });
  const many = Array.from({ length: 8 }, (_, i) => `caveat ${i}: ` + 'w'.repeat(300)).map((c) => shorten(c));
  const uri = (f: string) => `s3://models/${'k'.repeat(400)}/${f}`;
  const big = { ...good, triggers: { raw: long(64), anchored: long(64), query: long(16) }, artifact: { ...good.artifact, modelUri: uri(''), reportUri: uri('report.json') }, caveats: many };
  const text = serializeScanSummary(big);
  assert.ok(Buffer.byteLength(text) <= MAX_SUMMARY_BYTES, `${Buffer.byteLength(text)} bytes`);
  const r = parseScanSummary(text);
  assert.ok(r.ok);
  assert.equal(r.summary.triggers?.anchored?.text, 'y'.repeat(1000), 'the anchored trigger outranks the caveats');
  assert.equal(r.summary.triggers?.raw, undefined, 'the raw trigger went first');
  assert.ok(r.summary.caveats!.length >= 1);
  for (const c of r.summary.caveats!) assert.ok(c.length <= 96, c);
  assert.match(r.summary.caveats![0], /^caveat 0: w+…$/);
  // With a long error message as well, only the first caveat is left.
  const failed = parseScanSummary(serializeScanSummary({ ...big, error: { reason: 'Internal', message: 'e'.repeat(1024) } }));
  assert.ok(failed.ok);
  assert.equal(failed.summary.caveats!.length, 1);
  // Nine caveats or one over 256 characters is not a valid summary.
  assert.throws(() => serializeScanSummary({ ...good, caveats: [...many, 'ninth'] }), /caveats/);
  assert.throws(() => serializeScanSummary({ ...good, caveats: ['v'.repeat(257)] }), /caveats/);
});

test('shorten: keeps short text, cuts long text to the limit with an ellipsis, never splits a code point', () => {
  assert.equal(shorten('abc', 5), 'abc');
  assert.equal(shorten('abcdefgh', 5), 'abcd…');
  const emoji = '😀'.repeat(10); // two UTF-16 units each
  const cut = shorten(emoji, 6);
  assert.ok(cut.length <= 6);
  assert.equal(cut, '😀😀…');
});

test('serialize: refuses an invalid summary', () => {
  assert.throws(() => serializeScanSummary({ schemaVersion: 1, verdict: 'Nope' } as never));
});
