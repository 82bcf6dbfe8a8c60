/**
 * Real parsing for the attack library: tree-sitter grammars (C, Java, Python) compiled to wasm,
 * run by web-tree-sitter. The grammars load once per process (`initParsers`); after that every
 * function here is synchronous.
 *
 * Positions: `start`/`end` are JavaScript string indices (UTF-16 code units, what `code.slice`
 * takes; web-tree-sitter reports node indices in these units), `startByte`/`endByte` the same span
 * as UTF-8 byte offsets.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Parser, Language, type Node, type Tree } from 'web-tree-sitter';

export type Lang = 'c' | 'java' | 'python';
export const LANGS: readonly Lang[] = ['c', 'java', 'python'];
export type { Node, Tree };

/** The npm packages whose prebuilt `.wasm` grammars are loaded. */
export const GRAMMAR_PACKAGES: Record<Lang, string> = {
  c: 'tree-sitter-c',
  java: 'tree-sitter-java',
  python: 'tree-sitter-python',
};

const require = createRequire(import.meta.url);
let ready: Promise<void> | undefined;
const parsers = new Map<Lang, Parser>();

/** Loads web-tree-sitter and the three grammars, once; later calls return the same promise. */
export function initParsers(): Promise<void> {
  ready ??= (async () => {
    await Parser.init();
    for (const lang of LANGS) {
      const pkg = GRAMMAR_PACKAGES[lang];
      const wasm = require.resolve(`${pkg}/${pkg}.wasm`);
      const parser = new Parser();
      parser.setLanguage(await Language.load(wasm));
      parsers.set(lang, parser);
    }
  })();
  return ready;
}

/** Versions of the parser runtime and grammar packages (for manifests and reports). */
export function parserVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of ['web-tree-sitter', ...Object.values(GRAMMAR_PACKAGES)]) {
    // web-tree-sitter's exports hide package.json: walk up from its entry point instead.
    let dir = path.dirname(require.resolve(pkg === 'web-tree-sitter' ? pkg : `${pkg}/${pkg}.wasm`));
    while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    out[pkg] = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  }
  return out;
}

export function isLang(s: string): s is Lang {
  return (LANGS as readonly string[]).includes(s);
}

const JAVA_WRAP_OPEN = 'class __Wrapper {\n';
const JAVA_WRAP_CLOSE = '\n}\n';
const shifts = new WeakMap<Tree, number>();

/**
 * Parses `code`; `initParsers()` must have resolved. Java methods and constructors are class
 * members: when a bare member does not parse at top level (constructors never do), it is parsed
 * inside a wrapper class, and `codeShift(tree)` tells how far positions in the tree are shifted
 * from positions in `code` (use `spanOf`).
 */
export function parseCode(code: string, lang: Lang): Tree {
  const parser = parsers.get(lang);
  if (!parser) throw new Error('tree-sitter grammars are not loaded: await initParsers() first');
  const tree = parser.parse(code);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${lang} code`);
  if (lang === 'java' && tree.rootNode.hasError && !/\b(class|interface|enum|record)\b/.test(code.slice(0, code.indexOf('{') + 1))) {
    const wrapped = parser.parse(JAVA_WRAP_OPEN + code + JAVA_WRAP_CLOSE);
    if (wrapped && !wrapped.rootNode.hasError) {
      tree.delete();
      shifts.set(wrapped, JAVA_WRAP_OPEN.length);
      return wrapped;
    }
    wrapped?.delete();
  }
  return tree;
}

/** How many characters of wrapper precede the code in this tree (0 unless a Java member was wrapped). */
export function codeShift(tree: Tree): number {
  return shifts.get(tree) ?? 0;
}

/** A node's span as string indices into the code that was parsed. */
export function spanOf(tree: Tree, n: Node): { start: number; end: number } {
  const s = codeShift(tree);
  return { start: n.startIndex - s, end: n.endIndex - s };
}

/** True when the tree has an ERROR or MISSING node anywhere. */
export function hasErrors(tree: Tree): boolean {
  return tree.rootNode.hasError;
}

/** Parses `code`, hands the tree to `use` and frees it afterwards (trees live in wasm memory). */
export function withTree<T>(code: string, lang: Lang, use: (tree: Tree) => T): T {
  const tree = parseCode(code, lang);
  try {
    return use(tree);
  } finally {
    tree.delete();
  }
}

/** Parses and reports whether the code is free of ERROR/MISSING nodes (the tree is freed). */
export function parsesClean(code: string, lang: Lang): boolean {
  return withTree(code, lang, (tree) => !hasErrors(tree));
}

/** The first ERROR or MISSING node, for messages: its kind and 1-based line/column. */
export function firstError(tree: Tree): { kind: 'ERROR' | 'MISSING'; line: number; column: number; text: string } | undefined {
  const walk = (n: Node): Node | undefined => {
    if (n.isError || n.isMissing) return n;
    if (!n.hasError) return undefined;
    for (const c of n.children) {
      if (!c) continue;
      const hit = walk(c);
      if (hit) return hit;
    }
    return undefined;
  };
  const hit = walk(tree.rootNode);
  if (!hit) return undefined;
  return {
    kind: hit.isMissing ? 'MISSING' : 'ERROR',
    line: hit.startPosition.row + 1 - (codeShift(tree) > 0 ? 1 : 0),
    column: hit.startPosition.column + 1,
    text: hit.text.slice(0, 40),
  };
}

export type IdentifierRole = 'function' | 'parameter' | 'local' | 'call' | 'reference';

export interface Identifier {
  name: string;
  role: IdentifierRole;
  start: number;
  end: number;
  startByte: number;
  endByte: number;
  /** A member name after a dot (`obj.size()`, `self.run()`): not a variable, never renamed. */
  member?: true;
}

export interface InsertionPoint {
  /** String index where a statement can be inserted. */
  offset: number;
  /** Indentation of the new line (Python); '' for brace languages. */
  indent: string;
  /**
   * `after-brace`: right after the body's `{` (C/Java; in a Java constructor after its `super(...)`/`this(...)` call); `line-start`: at the start of the line of a
   * body statement (Python; insert whole lines); `line-end`: at the end of a docstring that is the
   * whole body (Python; insert a newline first).
   */
  kind: 'after-brace' | 'line-start' | 'line-end';
}

const FUNCTION_TYPES: Record<Lang, readonly string[]> = {
  c: ['function_definition'],
  java: ['method_declaration', 'constructor_declaration'],
  python: ['function_definition'],
};

function* walk(n: Node): Generator<Node> {
  yield n;
  for (const c of n.children) if (c) yield* walk(c);
}

/** The first (outermost, earliest) function definition in the tree, or undefined. */
export function findFunction(tree: Tree, lang: Lang): Node | undefined {
  const types = FUNCTION_TYPES[lang];
  for (const n of walk(tree.rootNode)) if (types.includes(n.type)) return n;
  return undefined;
}

/** The name identifier of a function node (C: through pointer/parenthesised declarators). */
export function functionNameNode(fn: Node, lang: Lang): Node | undefined {
  if (lang !== 'c') {
    const name = fn.childForFieldName('name');
    return name?.type === 'identifier' ? name : undefined;
  }
  let d = fn.childForFieldName('declarator');
  while (d) {
    if (d.type === 'function_declarator') {
      const inner = d.childForFieldName('declarator');
      // `int (*f(void))(int)`-style declarators nest further; take the innermost identifier.
      if (inner?.type === 'identifier') return inner;
      d = inner;
      continue;
    }
    if (d.type === 'identifier') return d;
    d = d.childForFieldName('declarator') ?? d.namedChildren.find((c) => c?.type !== 'type_qualifier') ?? null;
  }
  return undefined;
}

/** The identifier declared by a C declarator (through pointers, arrays, init, parentheses). */
function cDeclaredName(d: Node | null): Node | undefined {
  while (d) {
    if (d.type === 'identifier') return d;
    if (d.type === 'function_declarator') return undefined; // a prototype, not a variable
    d = d.childForFieldName('declarator') ?? (d.type === 'parenthesized_declarator' ? d.namedChildren[0] : null);
  }
  return undefined;
}

/** Python binding targets: identifiers in a pattern (a, (b, c), [d, *e]). */
function pyTargets(n: Node | null, out: Node[]): void {
  if (!n) return;
  if (n.type === 'identifier') out.push(n);
  else if (['pattern_list', 'tuple_pattern', 'list_pattern', 'list_splat_pattern', 'parenthesized_expression', 'tuple', 'list'].includes(n.type)) {
    for (const c of n.namedChildren) pyTargets(c, out);
  }
}

/** Identifiers that name something other than a variable (fields, attributes, keyword names, labels). */
function isNonVariableUse(n: Node, lang: Lang): boolean {
  const p = n.parent;
  if (!p) return false;
  const field = (name: string) => p.childForFieldName(name)?.id === n.id;
  if (lang === 'java') {
    if (p.type === 'field_access' && field('field')) return true;
    if (p.type === 'method_invocation' && field('name')) return true;
    if (p.type === 'method_reference' && n.id !== p.namedChildren[0]?.id) return true;
    if (['labeled_statement', 'break_statement', 'continue_statement'].includes(p.type)) return true;
    if (p.type === 'scoped_identifier' || p.type === 'scoped_type_identifier') return true;
    if (p.type === 'annotation' || p.type === 'marker_annotation' || p.type === 'element_value_pair') return true;
    return false;
  }
  if (lang === 'python') {
    if (p.type === 'attribute' && field('attribute')) return true;
    if (p.type === 'keyword_argument' && field('name')) return true;
    if (p.type === 'dotted_name' || p.type === 'aliased_import') return true;
    return false;
  }
  return false; // C: fields, labels and types have their own node types
}

/**
 * Identifiers of the first function in the tree, each with a role: the function's name, its
 * parameters and locals at their declarations, callees, and every other variable-like use as
 * `reference`. Field names, attributes, keyword-argument names and labels are left out.
 */
export function listIdentifiers(tree: Tree, lang: Lang, code: string): Identifier[] {
  const fn = findFunction(tree, lang);
  if (!fn) return [];
  const roles = new Map<number, IdentifierRole>();
  const nameNode = functionNameNode(fn, lang);
  if (nameNode) roles.set(nameNode.id, 'function');

  for (const n of walk(fn)) {
    if (lang === 'c') {
      if (n.type === 'parameter_declaration') {
        const id = cDeclaredName(n.childForFieldName('declarator'));
        if (id) roles.set(id.id, 'parameter');
      } else if (n.type === 'declaration') {
        for (const d of n.childrenForFieldName('declarator')) {
          const id = cDeclaredName(d);
          if (id) roles.set(id.id, 'local');
        }
      } else if (n.type === 'call_expression') {
        const f = n.childForFieldName('function');
        if (f?.type === 'identifier') roles.set(f.id, 'call');
      }
    } else if (lang === 'java') {
      if (['formal_parameter', 'spread_parameter', 'catch_formal_parameter'].includes(n.type)) {
        const name = n.childForFieldName('name') ?? n.namedChildren.find((c) => c?.type === 'variable_declarator')?.childForFieldName('name');
        if (name?.type === 'identifier') roles.set(name.id, 'parameter');
      } else if (n.type === 'lambda_expression') {
        const ps = n.childForFieldName('parameters');
        if (ps?.type === 'identifier') roles.set(ps.id, 'parameter');
        else if (ps?.type === 'inferred_parameters') for (const c of ps.namedChildren) if (c?.type === 'identifier') roles.set(c.id, 'parameter');
      } else if (n.type === 'local_variable_declaration') {
        for (const d of n.childrenForFieldName('declarator')) {
          const name = d?.childForFieldName('name');
          if (name?.type === 'identifier') roles.set(name.id, 'local');
        }
      } else if (n.type === 'enhanced_for_statement' || n.type === 'resource') {
        const name = n.childForFieldName('name');
        if (name?.type === 'identifier') roles.set(name.id, 'local');
      } else if (n.type === 'method_invocation') {
        const name = n.childForFieldName('name');
        if (name?.type === 'identifier' && !roles.has(name.id)) roles.set(name.id, 'call');
      }
    } else {
      if (n.type === 'parameters' || n.type === 'lambda_parameters') {
        for (const c of n.namedChildren) {
          if (!c) continue;
          const id = c.type === 'identifier' ? c
            : ['default_parameter', 'typed_default_parameter'].includes(c.type) ? c.childForFieldName('name')
            : c.type === 'typed_parameter' || c.type === 'list_splat_pattern' || c.type === 'dictionary_splat_pattern' ? c.namedChildren.find((x) => x?.type === 'identifier')
            : undefined;
          if (id?.type === 'identifier') roles.set(id.id, 'parameter');
        }
      } else if (['assignment', 'augmented_assignment', 'for_statement', 'for_in_clause'].includes(n.type)) {
        const out: Node[] = [];
        pyTargets(n.childForFieldName('left'), out);
        for (const id of out) if (!roles.has(id.id)) roles.set(id.id, 'local');
      } else if (n.type === 'as_pattern') {
        const out: Node[] = [];
        pyTargets(n.childForFieldName('alias')?.namedChildren[0] ?? null, out);
        for (const id of out) if (!roles.has(id.id)) roles.set(id.id, 'local');
      } else if (n.type === 'call') {
        const f = n.childForFieldName('function');
        if (f?.type === 'identifier') roles.set(f.id, 'call');
        else if (f?.type === 'attribute') {
          const a = f.childForFieldName('attribute');
          if (a) roles.set(a.id, 'call');
        }
      }
    }
  }

  const out: Identifier[] = [];
  const byteAt = byteOffsets(code);
  for (const n of walk(fn)) {
    if (n.type !== 'identifier') continue;
    const role = roles.get(n.id) ?? 'reference';
    const nonVariable = isNonVariableUse(n, lang);
    if (nonVariable && role !== 'call') continue;
    const { start, end } = spanOf(tree, n);
    const id: Identifier = { name: n.text, role, start, end, startByte: byteAt(start), endByte: byteAt(end) };
    if (nonVariable) id.member = true;
    out.push(id);
  }
  return out;
}

/** Maps string indices to UTF-8 byte offsets (linear scan; fine for function-sized code). */
function byteOffsets(code: string): (i: number) => number {
  if (/^[\x00-\x7f]*$/.test(code)) return (i) => i;
  return (i) => Buffer.byteLength(code.slice(0, i), 'utf8');
}

/**
 * Where a statement can go in the first function's body: C/Java right after the body's `{`;
 * Python before the first body statement that is not the docstring (the body must start on its
 * own line). Undefined when the function has no such body.
 */
export function insertionPoint(tree: Tree, lang: Lang, code: string): InsertionPoint | undefined {
  const fn = findFunction(tree, lang);
  const body = fn?.childForFieldName('body');
  if (!fn || !body) return undefined;
  if (lang !== 'python') {
    const brace = body.children[0];
    if (!brace || brace.type !== '{') return undefined;
    // Java: `super(...)`/`this(...)` must stay the first statement of a constructor.
    const first = body.namedChildren[0];
    if (lang === 'java' && first?.type === 'explicit_constructor_invocation') {
      return { offset: spanOf(tree, first).end, indent: '', kind: 'after-brace' };
    }
    return { offset: spanOf(tree, brace).end, indent: '', kind: 'after-brace' };
  }
  const stmts = body.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment');
  if (stmts.length === 0) return undefined;
  let target = stmts[0];
  const isDocstring = target.type === 'expression_statement' && target.namedChildren[0]?.type === 'string';
  if (isDocstring) {
    if (stmts.length < 2) {
      // Only a docstring: insert after it, on a new line with its indentation.
      const lineStart = code.lastIndexOf('\n', target.startIndex - 1) + 1;
      const indent = code.slice(lineStart, target.startIndex);
      if (!/^[ \t]+$/.test(indent)) return undefined;
      return { offset: target.endIndex, indent, kind: 'line-end' };
    }
    target = stmts[1];
  }
  const lineStart = code.lastIndexOf('\n', target.startIndex - 1) + 1;
  const indent = code.slice(lineStart, target.startIndex);
  // The statement must begin its own line (not `def f(): return x` or `a = 1; b = 2`).
  if (!/^[ \t]+$/.test(indent) || lineStart <= fn.startIndex) return undefined;
  return { offset: lineStart, indent, kind: 'line-start' };
}

/**
 * Calls of the function to itself inside its body: C `name(...)`; Java `name(...)`/`this.name(...)`;
 * Python `name(...)`, `self.name(...)`, `cls.name(...)`. Returns the callee name nodes.
 */
export function recursiveCalls(fn: Node, lang: Lang, name: string): Node[] {
  const out: Node[] = [];
  for (const n of walk(fn)) {
    if (lang === 'c' && n.type === 'call_expression') {
      const f = n.childForFieldName('function');
      if (f?.type === 'identifier' && f.text === name) out.push(f);
    } else if (lang === 'java' && n.type === 'method_invocation') {
      const f = n.childForFieldName('name');
      const obj = n.childForFieldName('object');
      if (f?.text === name && (!obj || obj.type === 'this')) out.push(f);
    } else if (lang === 'python' && n.type === 'call') {
      const f = n.childForFieldName('function');
      if (f?.type === 'identifier' && f.text === name) out.push(f);
      else if (f?.type === 'attribute') {
        const obj = f.childForFieldName('object');
        const a = f.childForFieldName('attribute');
        if (a?.text === name && obj?.type === 'identifier' && (obj.text === 'self' || obj.text === 'cls')) out.push(a);
      }
    }
  }
  return out;
}
