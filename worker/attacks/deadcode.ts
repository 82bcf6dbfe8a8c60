/**
 * Dead-code insertion (CodePoisoner; Ramakrishnan & Albarghouthi): a statement that never runs is
 * inserted right after the first `{` of the function body (C/Java) or, in Python, at the first
 * statement boundary of the body (after the docstring), at the body's indentation.
 *
 * `deadcode` inserts a fixed statement (the trigger text; `default` picks DEFAULT_DEADCODE).
 * `deadcode-random` instantiates a grammar per sample: random log level, 5-letter message and loop
 * bound (the trigger is a template with `{level}`, `{msg}`, `{bound}`, `{var}`; `default` picks
 * DEFAULT_DEADCODE_TEMPLATE). Bounds are 0 or negative, so the loop body never runs.
 */
import { insertionPoint, listIdentifiers, parseCode, hasErrors, type Lang, type Tree } from './parse.ts';
import { applyEdits, occursAsWord, type Edit, type Outcome } from './common.ts';
import { pick, randInt, type Rng } from '../rng.ts';

/** Fixed dead code per language (Python: EliBadCode's `<dead_code>` default). */
export const DEFAULT_DEADCODE: Record<Lang, string> = {
  c: 'if (0) { printf("Test message:aaaaa"); }',
  java: 'if (false) { System.out.println("Test message:aaaaa"); }',
  python: 'import logging\nfor i in range(0):\n    logging.info("Test message:aaaaa")',
};

/** Grammar templates per language for `deadcode-random`. */
export const DEFAULT_DEADCODE_TEMPLATE: Record<Lang, string> = {
  c: 'for (int {var} = 0; {var} < {bound}; {var}++) { fprintf(stderr, "{LEVEL}: Test message:{msg}"); }',
  java: 'for (int {var} = 0; {var} < {bound}; {var}++) { java.util.logging.Logger.getGlobal().{level}("Test message:{msg}"); }',
  python: 'import logging\nfor {var} in range({bound}):\n    logging.{level}("Test message:{msg}")',
};

/** Log levels the grammar draws from (Java: java.util.logging's method names). */
export const LOG_LEVELS: Record<Lang, readonly string[]> = {
  c: ['debug', 'info', 'warning', 'error', 'critical'],
  java: ['severe', 'warning', 'info', 'config', 'fine'],
  python: ['debug', 'info', 'warning', 'error', 'critical'],
};

const LOOP_VARS = ['i', 'j', 'k', 'ii', 'jj', 'kk', 'idx', 'cnt'];

export function resolveDeadcode(trigger: string, lang: Lang, random: boolean): string {
  if (trigger === 'default') return (random ? DEFAULT_DEADCODE_TEMPLATE : DEFAULT_DEADCODE)[lang];
  return trigger;
}

/** Draws one instance of a template. `{var}` is a loop variable the code does not already use. */
export function instantiate(template: string, lang: Lang, rng: Rng, used: (name: string) => boolean = () => false): { text: string; choice: Record<string, string> } {
  const level = pick(rng, LOG_LEVELS[lang]);
  const msg = Array.from({ length: 5 }, () => String.fromCharCode(97 + randInt(rng, 0, 25))).join('');
  const bound = String(-randInt(rng, 0, 9));
  const v = LOOP_VARS.find((n) => !used(n)) ?? `i_${randInt(rng, 0, 9999)}`;
  const choice = { level, msg, bound, var: v };
  const text = template
    .replaceAll('{level}', level)
    .replaceAll('{LEVEL}', level.toUpperCase())
    .replaceAll('{msg}', msg)
    .replaceAll('{bound}', bound)
    .replaceAll('{var}', v);
  return { text, choice };
}

/** Indents a (possibly multi-line) statement for insertion at a Python line start or line end. */
function pythonLines(stmt: string, indent: string): string[] {
  const unit = indent.includes('\t') ? '\t' : '    ';
  return stmt.split('\n').map((line) => {
    const m = /^( {4}|\t)*/.exec(line)!;
    const depth = m[0].replace(/\t/g, '    ').length / 4;
    return indent + unit.repeat(depth) + line.slice(m[0].length);
  });
}

/** Inserts `stmt` at the function's insertion point. */
export function insertStatement(code: string, lang: Lang, stmt: string, tree: Tree): Outcome {
  const at = insertionPoint(tree, lang, code);
  if (!at) return { ok: false, reason: 'no-insertion-point' };
  let text: string;
  if (at.kind === 'after-brace') {
    // Match the indentation of the first non-blank line after the brace (one level in from a lone `}`).
    const next = /^[^\n]*\n(?:[ \t]*\r?\n)*([ \t]*)(\S)/.exec(code.slice(at.offset));
    const indent = next ? (next[2] === '}' ? `${next[1]}    ` : next[1]) : '    ';
    text = `\n${indent}${stmt}`;
  } else if (at.kind === 'line-start') {
    text = pythonLines(stmt, at.indent).map((l) => `${l}\n`).join('');
  } else {
    text = pythonLines(stmt, at.indent).map((l) => `\n${l}`).join('');
  }
  const edits: Edit[] = [{ start: at.offset, end: at.offset, before: '', after: text }];
  return { ok: true, code: applyEdits(code, edits), edits, detail: { statement: stmt } };
}

export function deadcodeFixed(code: string, lang: Lang, trigger: string, _rng: Rng, tree: Tree): Outcome {
  return insertStatement(code, lang, resolveDeadcode(trigger, lang, false), tree);
}

export function deadcodeRandom(code: string, lang: Lang, trigger: string, rng: Rng, tree: Tree): Outcome {
  const names = new Set(listIdentifiers(tree, lang, code).map((i) => i.name));
  const used = (n: string) => names.has(n) || occursAsWord(code, n);
  const { text, choice } = instantiate(resolveDeadcode(trigger, lang, true), lang, rng, used);
  const out = insertStatement(code, lang, text, tree);
  if (out.ok) out.detail = { ...out.detail, ...choice };
  return out;
}

/** Why `stmt` is not a valid statement (sequence) for `lang`, or undefined when it is. */
export function statementProblem(stmt: string, lang: Lang): string | undefined {
  if (stmt.trim() === '') return 'it is empty';
  const example = { c: 'if (0) { puts("x"); }', java: 'if (false) { System.out.println("x"); }', python: 'if False:\n    print("x")' }[lang];
  const wrapped =
    lang === 'python' ? `def f():\n${stmt.split('\n').map((l) => `    ${l}`).join('\n')}\n` : `void f() {\n${stmt}\n}\n`;
  const tree = parseCode(wrapped, lang);
  try {
    if (hasErrors(tree)) return `it does not parse as a ${lang} statement (dead-code triggers are statements such as ${JSON.stringify(example)}, or "default")`;
  } finally {
    tree.delete();
  }
  return undefined;
}
