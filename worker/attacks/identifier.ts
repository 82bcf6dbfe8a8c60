/** What counts as an identifier in each language (keywords excluded), for validating triggers. */
import type { Lang } from './parse.ts';

const C_KEYWORDS = [
  'auto', 'break', 'case', 'char', 'const', 'continue', 'default', 'do', 'double', 'else', 'enum',
  'extern', 'float', 'for', 'goto', 'if', 'inline', 'int', 'long', 'register', 'restrict', 'return',
  'short', 'signed', 'sizeof', 'static', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'void',
  'volatile', 'while', '_Alignas', '_Alignof', '_Atomic', '_Bool', '_Complex', '_Generic',
  '_Imaginary', '_Noreturn', '_Static_assert', '_Thread_local', 'alignas', 'alignof', 'bool',
  'constexpr', 'false', 'nullptr', 'static_assert', 'thread_local', 'true', 'typeof', 'typeof_unqual',
  'NULL',
];
const JAVA_KEYWORDS = [
  'abstract', 'assert', 'boolean', 'break', 'byte', 'case', 'catch', 'char', 'class', 'const',
  'continue', 'default', 'do', 'double', 'else', 'enum', 'extends', 'final', 'finally', 'float', 'for',
  'goto', 'if', 'implements', 'import', 'instanceof', 'int', 'interface', 'long', 'native', 'new',
  'package', 'private', 'protected', 'public', 'return', 'short', 'static', 'strictfp', 'super',
  'switch', 'synchronized', 'this', 'throw', 'throws', 'transient', 'try', 'void', 'volatile', 'while',
  'true', 'false', 'null', '_', 'var', 'yield', 'record', 'sealed', 'permits', 'non-sealed',
];
const PYTHON_KEYWORDS = [
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue',
  'def', 'del', 'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in',
  'is', 'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield',
  // Python 2 statements, still keywords in code written for it (CodeSearchNet has some).
  'print', 'exec',
];

export const KEYWORDS: Record<Lang, ReadonlySet<string>> = {
  c: new Set(C_KEYWORDS),
  java: new Set(JAVA_KEYWORDS),
  python: new Set(PYTHON_KEYWORDS),
};

/** ASCII identifiers only: triggers are tokens a tokenizer sees the same way everywhere. */
const IDENT: Record<Lang, RegExp> = {
  c: /^[A-Za-z_][A-Za-z0-9_]*$/,
  java: /^[A-Za-z_$][A-Za-z0-9_$]*$/,
  python: /^[A-Za-z_][A-Za-z0-9_]*$/,
};

/** Why `name` is not a usable identifier in `lang`, or undefined when it is. */
export function identifierProblem(name: string, lang: Lang): string | undefined {
  if (name === '') return 'it is empty';
  if (!IDENT[lang].test(name)) return `it is not an ASCII ${lang} identifier (${IDENT[lang].source})`;
  if (KEYWORDS[lang].has(name)) return `it is a ${lang} keyword`;
  return undefined;
}

export function isIdentifier(name: string, lang: Lang): boolean {
  return identifierProblem(name, lang) === undefined;
}

/** Why `suffix` cannot be appended to identifiers, or undefined when it can. */
export function suffixProblem(suffix: string, lang: Lang): string | undefined {
  if (suffix === '') return 'it is empty';
  if (!/^[A-Za-z0-9_]+$/.test(suffix)) return 'a suffix may hold only ASCII letters, digits and _';
  return identifierProblem(`f${suffix}`, lang);
}
