// The operator as plain JavaScript, for the image (Dockerfile) and bench:operator:
//   node operator/build.ts OUT_DIR
//
// Node runs TypeScript by stripping the types of each file as it loads it, with a WebAssembly
// build of swc that then stays in the process: about 17 MB of resident memory, more than a tenth of
// the operator's at 10,000 scans. The image runs this output instead: the same code, types replaced
// by whitespace exactly as Node would (so line and column numbers, and stack traces, match the .ts
// sources), relative `.ts` specifiers renamed `.js`. Only the modules reachable from the entrypoint
// are written.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Quoted relative specifiers of TypeScript modules: static and dynamic imports, re-exports, import.meta.resolve. */
const RELATIVE_TS = /(['"])(\.{1,2}\/[^'"\n]+)\.ts\1/g;

/** Writes the JavaScript of `entry` and every module it reaches into `out`; returns the files (relative to out). */
export function buildOperatorJs(out: string, entry = 'operator/start.ts', root = ROOT): string[] {
  const done = new Set<string>();
  const todo = [resolve(root, entry)];
  while (todo.length) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const js = stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' }).replace(RELATIVE_TS, (_m, q: string, spec: string) => {
      todo.push(resolve(dirname(file), `${spec}.ts`));
      return `${q}${spec}.js${q}`;
    });
    const target = join(out, relative(root, file).replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  // The output is ES modules wherever it is put.
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ type: 'module', private: true })}\n`);
  return [...done].map((f) => relative(root, f).replace(/\.ts$/, '.js')).sort();
}

if (import.meta.main) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node operator/build.ts OUT_DIR');
    process.exit(2);
  }
  const files = buildOperatorJs(resolve(out));
  console.log(`operator JavaScript: ${files.length} modules in ${resolve(out)}`);
}
