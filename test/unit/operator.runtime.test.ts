// How the operator runs when deployed (operator/runtime.ts) is stated once and repeated in the
// Dockerfile, the chart and the benchmark: these must agree. The entrypoint (operator/start.ts)
// must really keep client-node's generated API clients out of the process, and its JavaScript build
// (operator/build.ts) must be the same code without TypeScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOperatorJs } from '../../operator/build.ts';
import { DEFAULT_WORKERS } from '../../operator/main.ts';
import { ENTRYPOINT, MALLOC_ARENA_MAX, NODE_ARGS, NODE_OPTIONS } from '../../operator/runtime.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

test('runtime: the Dockerfile operator image runs the JavaScript build\'s entrypoint with the V8 flags of operator/runtime.ts', () => {
  const df = read('Dockerfile');
  const js = df.slice(df.indexOf('AS operator-js'), df.indexOf('FROM', df.indexOf('AS operator-js')));
  assert.match(js, /RUN node operator\/build\.ts \/out/);
  const stage = df.slice(df.indexOf('AS operator\n'), df.indexOf('FROM', df.indexOf('AS operator\n')));
  assert.match(stage, /COPY --from=operator-js --chown=0:0 \/out\/operator\/ \.\/operator\//);
  assert.match(stage, /COPY --from=operator-js --chown=0:0 \/out\/crds\/ \.\/crds\//);
  for (const copy of stage.match(/^COPY .*$/gm) ?? []) assert.match(copy, /--from=(prod-deps|operator-js) |package\.json/, `no TypeScript sources in the image: ${copy}`);
  assert.match(stage, new RegExp(`NODE_OPTIONS="${NODE_OPTIONS}"`));
  assert.match(stage, new RegExp(`MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX}\\b`));
  assert.ok(stage.includes(`ENTRYPOINT ${JSON.stringify(['node', ...NODE_ARGS, ENTRYPOINT]).replaceAll(',', ', ')}`), 'ENTRYPOINT: node, NODE_ARGS, ENTRYPOINT');
});

test('runtime: NODE_OPTIONS holds only flags Node accepts there (the others are NODE_ARGS, on the command line)', () => {
  const ok = spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS }, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  for (const a of NODE_ARGS) {
    const r = spawnSync(process.execPath, [a, '-e', '0'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
});

test('runtime: the chart sets the same NODE_OPTIONS and the operator default of workers, and keeps the image entrypoint', () => {
  const values = read('charts/elibadcode-operator/values.yaml');
  assert.match(values, new RegExp(`^nodeOptions: "${NODE_OPTIONS}"$`, 'm'));
  assert.match(values, new RegExp(`^workers: ${DEFAULT_WORKERS}$`, 'm'));
  assert.match(values, new RegExp(`^mallocArenaMax: ${MALLOC_ARENA_MAX}$`, 'm'));
  const deployment = read('charts/elibadcode-operator/templates/deployment.yaml');
  assert.match(deployment, /- name: NODE_OPTIONS\n\s+value: \{\{ \.Values\.nodeOptions \| quote \}\}/);
  assert.doesNotMatch(deployment, /^\s+(command|args):/m, 'the image ENTRYPOINT (with NODE_ARGS) runs');
  assert.match(deployment, /- name: MALLOC_ARENA_MAX\n\s+value: \{\{ \.Values\.mallocArenaMax \| quote \}\}/);
});

test('runtime: the benchmark runs the operator the same way unless told otherwise', () => {
  const bench = read('test/bench/operator.bench.ts');
  assert.match(bench, /'node-flags': \{ type: 'string', default: \[NODE_OPTIONS, \.\.\.NODE_ARGS\]\.join\(' '\) \}/);
  assert.match(bench, /if \(!values\.source\) buildOperatorJs\(jsRoot\);/);
  assert.match(bench, /: join\(jsRoot, ENTRYPOINT\);\nconst op = spawn\(process\.execPath, \[\.\.\.nodeFlags, entry\]/);
  assert.match(bench, /^\s+MALLOC_ARENA_MAX,$/m);
});

test('start.ts: client-node config.js imports from its gen barrel only what the slim barrel provides', () => {
  const config = read('node_modules/@kubernetes/client-node/dist/config.js');
  const imports = [...config.matchAll(/import \{([^}]*)\} from '\.\/gen\/index\.js'/g)].map((m) => m[1].split(',').map((s) => s.trim()).filter(Boolean).sort());
  assert.deepEqual(imports, [['ServerConfiguration', 'createConfiguration']]);
  assert.doesNotMatch(config, /from '\.\/gen\/(?!index\.js)/, 'no other import from gen/');
});

/** Module URLs a child process loads (a load hook records them; the entrypoint prints usage and exits). */
function loadedModules(entry: string): string[] {
  const recorder = `data:text/javascript,${encodeURIComponent(`
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
    process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(seen) + '\\n'));
  `)}`;
  const r = spawnSync(process.execPath, ['--import', recorder, entry, '--help'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  assert.ok(line, r.stderr);
  return JSON.parse(line.slice('LOADED '.length));
}

function assertSlimClientNode(loaded: string[]): void {
  const cn = loaded.filter((u) => u.includes('/@kubernetes/client-node/dist/')).map((u) => u.slice(u.indexOf('/dist/') + 1));
  assert.ok(cn.includes('dist/config.js') && cn.includes('dist/watch.js'), cn.join(' '));
  const heavy = cn.filter((u) => /^dist\/index\.js$|^dist\/gen\/index\.js$|gen\/types\/|gen\/models\/|gen\/apis\/(?!exception\.js)/.test(u));
  assert.deepEqual(heavy, [], 'no generated API client, model or serializer');
}

test('start.ts: run from the sources, the operator loads KubeConfig and Watch but no generated API client, model or serializer', () => {
  const loaded = loadedModules(join(root, 'operator', 'start.ts'));
  assert.ok(loaded.some((u) => u.endsWith('/operator/main.ts')));
  assertSlimClientNode(loaded);
});

test('build.ts: the JavaScript build is the sources with types blanked (same lines), .ts specifiers renamed, and runs without TypeScript', () => {
  // Inside node_modules, so the build resolves the dependencies as in the image's /app.
  const out = mkdtempSync(join(root, 'node_modules', '.cache-operator-build-test-'));
  try {
    const files = buildOperatorJs(out);
    assert.ok(files.includes(ENTRYPOINT) && files.includes('operator/main.js') && files.includes('crds/backdoorscan.js') && files.includes('operator/progress.js'), files.join(' '));
    assert.ok(!files.includes('operator/build.js') && !files.includes('crds/generate.js'), 'only what the entrypoint reaches');
    for (const f of files) {
      const js = readFileSync(join(out, f), 'utf8');
      const ts = read(f.replace(/\.js$/, '.ts'));
      assert.equal(js.split('\n').length, ts.split('\n').length, `${f}: line numbers kept`);
      assert.doesNotMatch(js, /(['"])\.{1,2}\/[^'"\n]+\.ts\1/, `${f}: no .ts specifier left`);
    }
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')), { type: 'module', private: true });
    const loaded = loadedModules(join(out, ENTRYPOINT));
    assert.deepEqual(loaded.filter((u) => u.endsWith('.ts')), [], 'no TypeScript module loaded');
    assert.ok(loaded.some((u) => u.endsWith('/operator/main.js')));
    assertSlimClientNode(loaded);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
