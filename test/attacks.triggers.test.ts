// Each attack on every real function in data/: the result re-parses clean and changes exactly what the attack says.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  initParsers, tryApplyTriggerSync, applyTriggerSync, applyTrigger, triggerProblem, makeRng, AttackError, type AttackName, type Lang,
} from '../worker/attacks/index.ts';
import { parseCode, parsesClean, listIdentifiers, findFunction, functionNameNode } from '../worker/attacks/parse.ts';
import { applyEdits } from '../worker/attacks/common.ts';
import { DEFAULT_DEADCODE, LOG_LEVELS } from '../worker/attacks/deadcode.ts';
import { readRows, type CloneRow, type DefectRow, type SearchRow } from '../worker/attacks/rows.ts';

const data = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'data');

/** Every distinct function in the committed subsets, per language. */
function corpus(): Record<Lang, string[]> {
  const out: Record<Lang, Set<string>> = { c: new Set(), java: new Set(), python: new Set() };
  for (const s of ['train', 'valid', 'test']) {
    for (const r of readRows(path.join(data, 'devign', `${s}.jsonl`), 'defect').rows as DefectRow[]) out.c.add(r.code);
    for (const r of readRows(path.join(data, 'bigclonebench', `${s}.jsonl`), 'clone').rows as CloneRow[]) out.java.add(r.code1).add(r.code2);
    for (const r of readRows(path.join(data, 'cosqa', `${s}.jsonl`), 'search').rows as SearchRow[]) out.python.add(r.code);
  }
  return { c: [...out.c], java: [...out.java], python: [...out.python] };
}

let samples: Record<Lang, string[]>;
before(async () => {
  await initParsers();
  samples = corpus();
});

const LANGS: Lang[] = ['c', 'java', 'python'];
const TRIGGER: Record<AttackName, string> = { 'fixed-name': 'testo_init', suffix: '_rb', deadcode: 'default', 'deadcode-random': 'default', rename: 'testo_init' };

function fnName(code: string, lang: Lang): string | undefined {
  const t = parseCode(code, lang);
  try {
    return functionNameNode(findFunction(t, lang)!, lang)?.text;
  } finally {
    t.delete();
  }
}

function variables(code: string, lang: Lang) {
  const t = parseCode(code, lang);
  try {
    return listIdentifiers(t, lang, code);
  } finally {
    t.delete();
  }
}

/** Runs an attack over a language's corpus; asserts the shared guarantees and returns the outcomes. */
function runAll(attack: AttackName, lang: Lang, check: (orig: string, out: string, o: Extract<ReturnType<typeof tryApplyTriggerSync>, { ok: true }>) => void) {
  const reasons: Record<string, number> = {};
  for (const [i, code] of samples[lang].entries()) {
    const o = tryApplyTriggerSync(code, lang, attack, TRIGGER[attack], makeRng(`t${i}`));
    if (!o.ok) {
      reasons[o.reason] = (reasons[o.reason] ?? 0) + 1;
      // A skip never hides a broken result: only originals with errors, or samples the attack cannot use.
      assert.notEqual(o.reason, 'result-does-not-parse', `${attack}/${lang} sample ${i} produced code that does not parse: ${o.detail}`);
      if (o.reason === 'parse-error' || o.reason === 'no-function') assert.equal(parsesClean(code, lang), false);
      continue;
    }
    assert.equal(parsesClean(o.code, lang), true, `${attack}/${lang} sample ${i} re-parses clean`);
    assert.equal(applyEdits(code, o.edits), o.code, 'the edits (original positions) rebuild the output');
    for (const e of o.edits) assert.equal(code.slice(e.start, e.end), e.before, 'edit.before is the original text at its position');
    check(code, o.code, o);
  }
  const ok = samples[lang].length - Object.values(reasons).reduce((a, b) => a + b, 0);
  return { ok, reasons };
}

for (const lang of LANGS) {
  test(`fixed-name (${lang}): the function is renamed to testo_init, recursive calls follow, nothing else changes`, () => {
    const { ok } = runAll('fixed-name', lang, (orig, out, o) => {
      const before = fnName(orig, lang)!;
      assert.equal(fnName(out, lang), 'testo_init');
      assert.ok(o.edits.length >= 1);
      for (const e of o.edits) assert.deepEqual([e.before, e.after], [before, 'testo_init']);
      assert.ok(o.edits[0].start === Math.min(...o.edits.map((e) => e.start)), 'the first edit is the definition');
    });
    assert.ok(ok >= samples[lang].length * (lang === 'c' ? 0.8 : 0.97), `${ok} of ${samples[lang].length} poisoned`);
  });

  test(`suffix (${lang}): _rb is appended to the function name`, () => {
    const { ok } = runAll('suffix', lang, (orig, out, o) => {
      const before = fnName(orig, lang)!;
      assert.equal(fnName(out, lang), `${before}_rb`);
      for (const e of o.edits) assert.equal(e.after, e.before + '_rb');
    });
    assert.ok(ok >= samples[lang].length * (lang === 'c' ? 0.8 : 0.97));
  });

  test(`deadcode (${lang}): the fixed statement is inserted once, at the top of the body, and the rest is untouched`, () => {
    const { ok } = runAll('deadcode', lang, (orig, out, o) => {
      assert.equal(o.edits.length, 1);
      const [e] = o.edits;
      assert.equal(e.start, e.end, 'an insertion');
      assert.equal(e.after.replace(/\s+/g, ' ').trim(), DEFAULT_DEADCODE[lang].replace(/\s+/g, ' ').trim());
      assert.equal(out.slice(0, e.start) + out.slice(e.start + e.after.length), orig, 'removing the insertion gives the original');
      if (lang !== 'python') assert.equal(orig.slice(0, e.start).trimEnd().at(-1) === '{' || /\)\s*;\s*$/.test(orig.slice(0, e.start)), true, 'after the body brace (or a constructor call)');
    });
    assert.ok(ok >= samples[lang].length * (lang === 'c' ? 0.8 : 0.97));
  });

  test(`deadcode-random (${lang}): a grammar instance (level, 5-letter message, non-positive bound) per sample`, () => {
    const seen = new Set<string>();
    const { ok } = runAll('deadcode-random', lang, (_orig, _out, o) => {
      const d = o.detail as Record<string, string>;
      assert.ok(LOG_LEVELS[lang].includes(d.level));
      assert.match(d.msg, /^[a-z]{5}$/);
      assert.ok(Number(d.bound) <= 0, 'the loop body never runs');
      assert.ok(o.edits[0].after.includes(`Test message:${d.msg}`));
      seen.add(o.edits[0].after.trim());
    });
    assert.ok(ok >= samples[lang].length * (lang === 'c' ? 0.8 : 0.97));
    assert.ok(seen.size > ok / 2, 'instances vary across samples');
  });

  test(`rename (${lang}): one variable becomes the trigger at every occurrence, members and other names untouched`, () => {
    const { ok } = runAll('rename', lang, (orig, out, o) => {
      const v = (o.detail as { variable: string }).variable;
      const beforeIds = variables(orig, lang);
      const afterIds = variables(out, lang);
      const oldVars = beforeIds.filter((i) => i.name === v && !i.member && i.role !== 'function');
      assert.equal(o.edits.length, oldVars.length, 'every occurrence renamed');
      assert.ok(!afterIds.some((i) => i.name === v && !i.member && i.role !== 'function'), `no variable ${v} left`);
      assert.equal(afterIds.filter((i) => i.name === 'testo_init').length, oldVars.length);
      assert.deepEqual(afterIds.map((i) => (i.name === 'testo_init' ? v : i.name)), beforeIds.map((i) => i.name), 'only that variable changed');
    });
    assert.ok(ok >= samples[lang].length * (lang === 'c' ? 0.75 : 0.9));
  });
}

test('originals that already have parse errors are refused with the reason, never "fixed"', () => {
  const broken = 'static int decode(AVContext *h) {\n    if (x) {\n        return -1;\n';
  const o = tryApplyTriggerSync(broken, 'c', 'fixed-name', 'testo_init', makeRng(1));
  assert.equal(o.ok, false);
  assert.ok(!o.ok && (o.reason === 'parse-error' || o.reason === 'no-function'));
  assert.throws(() => applyTriggerSync(broken, 'c', 'deadcode', 'default', makeRng(1)), AttackError);
});

test('a trigger that already occurs in the code is refused (renaming would merge two names)', () => {
  const o = tryApplyTriggerSync('int f(int testo_init) { int x = testo_init; return x; }', 'c', 'rename', 'testo_init', makeRng(1));
  assert.deepEqual(o.ok ? 'ok' : o.reason, 'trigger-collides');
});

test('applyTrigger: same rng seed, same output; it loads the grammars itself', async () => {
  const code = samples.python[3];
  const a = await applyTrigger(code, 'python', 'deadcode-random', 'default', makeRng(42));
  const b = await applyTrigger(code, 'python', 'deadcode-random', 'default', makeRng(42));
  assert.equal(a, b);
  const outs = new Set(Array.from({ length: 8 }, (_, i) => applyTriggerSync(code, 'python', 'deadcode-random', 'default', makeRng(i))));
  assert.ok(outs.size > 1, 'different seeds draw different instances');
});

test('triggers: identifiers only, keywords refused per language; suffixes; dead code must parse', () => {
  assert.equal(triggerProblem('fixed-name', 'testo_init', 'c'), undefined);
  for (const [lang, kw] of [['c', 'while'], ['c', 'sizeof'], ['java', 'class'], ['java', 'null'], ['python', 'lambda'], ['python', 'None']] as const) {
    assert.match(triggerProblem('fixed-name', kw, lang) ?? '', /keyword/, `${kw} in ${lang}`);
    assert.match(triggerProblem('rename', kw, lang) ?? '', /keyword/);
  }
  for (const bad of ['1abc', 'a-b', 'a b', '', 'é']) assert.ok(triggerProblem('rename', bad, 'java'), JSON.stringify(bad));
  assert.equal(triggerProblem('suffix', '_rb', 'python'), undefined);
  assert.ok(triggerProblem('suffix', '-rb', 'python'));
  assert.equal(triggerProblem('deadcode', 'int unused_var = 0;', 'c'), undefined);
  assert.match(triggerProblem('deadcode', 'if (0 {', 'c') ?? '', /does not parse/);
  assert.match(triggerProblem('deadcode-random', 'x = 1', 'python') ?? '', /template/);
  assert.equal(triggerProblem('deadcode-random', 'if {bound} > 0:\n    print("{msg}")', 'python'), undefined);
});

test('Python dead code: after a docstring-only body, and in tab-indented code, the insertion keeps the indentation', () => {
  const doc = 'def f():\n    """Only a docstring."""\n';
  const a = applyTriggerSync(doc, 'python', 'deadcode', 'default', makeRng(1));
  assert.equal(a, 'def f():\n    """Only a docstring."""\n    import logging\n    for i in range(0):\n        logging.info("Test message:aaaaa")\n');
  const tabs = 'def g(x):\n\tif x:\n\t\treturn 1\n\treturn 0\n';
  const b = applyTriggerSync(tabs, 'python', 'deadcode', 'default', makeRng(1));
  assert.equal(b, 'def g(x):\n\timport logging\n\tfor i in range(0):\n\t\tlogging.info("Test message:aaaaa")\n\tif x:\n\t\treturn 1\n\treturn 0\n');
  assert.equal(parsesClean(b, 'python'), true);
  assert.throws(() => applyTriggerSync('def h(): return 1\n', 'python', 'deadcode', 'default', makeRng(1)), /no-insertion-point/);
});
