// How the operator runs when deployed (operator/runtime.ts) is stated once and repeated in the
// Dockerfile, the chart and the benchmark: these must agree. And the entrypoint (operator/start.ts)
// must really keep client-node's generated API clients out of the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WORKERS } from '../../operator/main.ts';
import { ENTRYPOINT, NODE_OPTIONS } from '../../operator/runtime.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

test('runtime: the Dockerfile operator image runs the entrypoint with the V8 flags of operator/runtime.ts', () => {
  const df = read('Dockerfile');
  const stage = df.slice(df.indexOf('AS operator'), df.indexOf('FROM', df.indexOf('AS operator')));
  assert.match(stage, new RegExp(`NODE_OPTIONS="${NODE_OPTIONS}"`));
  assert.match(stage, new RegExp(`ENTRYPOINT \\["node", "${ENTRYPOINT}"\\]`));
});

test('runtime: the chart sets the same NODE_OPTIONS and the operator default of workers', () => {
  const values = read('charts/elibadcode-operator/values.yaml');
  assert.match(values, new RegExp(`^nodeOptions: "${NODE_OPTIONS}"$`, 'm'));
  assert.match(values, new RegExp(`^workers: ${DEFAULT_WORKERS}$`, 'm'));
  assert.match(read('charts/elibadcode-operator/templates/deployment.yaml'), /- name: NODE_OPTIONS\n\s+value: \{\{ \.Values\.nodeOptions \| quote \}\}/);
});

test('runtime: the benchmark runs the operator the same way unless told otherwise', () => {
  const bench = read('test/bench/operator.bench.ts');
  assert.match(bench, /'node-flags': \{ type: 'string', default: NODE_OPTIONS \}/);
  assert.match(bench, /spawn\(process\.execPath, \[\.\.\.nodeFlags, join\(root, ENTRYPOINT\)\]/);
});

test('start.ts: client-node config.js imports from its gen barrel only what the slim barrel provides', () => {
  const config = read('node_modules/@kubernetes/client-node/dist/config.js');
  const imports = [...config.matchAll(/import \{([^}]*)\} from '\.\/gen\/index\.js'/g)].map((m) => m[1].split(',').map((s) => s.trim()).filter(Boolean).sort());
  assert.deepEqual(imports, [['ServerConfiguration', 'createConfiguration']]);
  assert.doesNotMatch(config, /from '\.\/gen\/(?!index\.js)/, 'no other import from gen/');
});

test('start.ts: the operator process loads KubeConfig and Watch but no generated API client, model or serializer', () => {
  // A load hook in the child records every module URL; the entrypoint prints usage and exits.
  const recorder = `data:text/javascript,${encodeURIComponent(`
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
    process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(seen) + '\\n'));
  `)}`;
  const r = spawnSync(process.execPath, ['--import', recorder, join(root, ENTRYPOINT), '--help'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const stderr = r.stderr;
  const line = stderr.split('\n').find((l) => l.startsWith('LOADED '));
  assert.ok(line, stderr);
  const loaded: string[] = JSON.parse(line.slice('LOADED '.length));
  const cn = loaded.filter((u) => u.includes('/@kubernetes/client-node/dist/')).map((u) => u.slice(u.indexOf('/dist/') + 1));
  assert.ok(cn.includes('dist/config.js') && cn.includes('dist/watch.js'), cn.join(' '));
  assert.ok(loaded.some((u) => u.endsWith('/operator/main.ts')));
  const heavy = cn.filter((u) => /^dist\/index\.js$|^dist\/gen\/index\.js$|gen\/types\/|gen\/models\/|gen\/apis\/(?!exception\.js)/.test(u));
  assert.deepEqual(heavy, []);
});
