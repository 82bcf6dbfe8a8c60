// Prints the scan demo's result for a person: reads OUT/summary.json, validated by the same schema the operator uses.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseScanSummary } from '../crds/scan-summary.ts';
import { ScanReport, tokensThatMatterWhole } from '../worker/pipeline/report.ts';

const out = process.argv[2];
const parsed = parseScanSummary(readFileSync(join(out, 'summary.json'), 'utf8'));
if (!parsed.ok) {
  console.error(`demo: ${join(out, 'summary.json')}: ${parsed.error}`);
  process.exit(1);
}
const s = parsed.summary;
const pct = (x: number | undefined | null) => (x === undefined || x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
const m = s.metrics ?? {};
const show = (t?: { tokens?: string[]; text?: string }) => (t?.tokens?.length ? `${JSON.stringify(t.text)}  [${t.tokens.join(' ')}]` : '(empty)');
console.log(`verdict                 ${s.verdict}   (detection score ${m.detectionScore?.toFixed(3)} vs threshold ${m.detectionThreshold})`);
console.log(`victim -> target label  ${s.victimLabel} -> ${s.targetLabel}`);
console.log(`inverted trigger        ${show(s.triggers?.raw)}`);
// A repeated token that matters only as a whole is in the full report (options[].leaveTokenOut).
const report = ScanReport.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
const whole = tokensThatMatterWhole(report.options.find((o) => o.option === report.chosen)!);
const wholeNote = whole.length ? `; removing every copy of ${whole.join(', ')} does raise it (--anchor-repeats keeps those)` : '';
console.log(`anchored trigger        ${s.triggers?.anchored?.tokens?.length ? show(s.triggers.anchored) : `(empty: dropping any one token raised the loss by less than beta; the raw trigger is used${wholeNote})`}`);
console.log(`ASR, inverted trigger   ${pct(m.asrBefore)} -> ${pct(m.asrAfter)}`);
console.log(`ASR, true trigger       ${pct(m.knownTriggerAsrBefore)} -> ${pct(m.knownTriggerAsrAfter)}   (testo_init, planted by the zoo)`);
// The flip rate leaves out what a weak classifier gets wrong anyway (report.json has it).
const known = (JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { verification?: { known?: { before?: { flipRate: number }; after?: { flipRate: number } } } }).verification?.known;
if (known) console.log(`flip rate, true trigger ${pct(known.before?.flipRate)} -> ${pct(known.after?.flipRate)}   (victim samples classified right without it that it flips)`);
console.log(`clean accuracy          ${pct(m.accuracyBefore)} -> ${pct(m.accuracyAfter)}`);
if (m.detectionScoreAfter !== undefined) {
  console.log(`score of the cleaned model ${m.detectionScoreAfter.toFixed(3)} vs threshold ${m.detectionThreshold}: ${s.eliminated ? 'the trigger found no longer works (eliminated)' : 'the trigger found still works: NOT eliminated'}`);
}
console.log(`cleaned model           ${s.artifact?.modelUri ?? '(not written)'}   sha256 ${s.artifact?.sha256 ?? '-'}`);
console.log(`full report             ${s.artifact?.reportUri ?? join(out, 'report.json')}`);
console.log(`took                    ${s.durations?.totalSeconds?.toFixed(0)} s`);
