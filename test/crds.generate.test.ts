// The committed CRD YAML (and the Helm chart's copy) must equal the generator's output, and the
// generated CRD must be structural and carry the API's names, subresource and printer columns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadYaml } from '@kubernetes/client-node';
import { buildCrd, renderCrdYaml, staleFiles, CRD_FILE, CHART_CRD_FILE, ROOT } from '../crds/generate.ts';
import { checkStructural, type JSONSchemaProps } from '../crds/openapi.ts';
import { toYaml } from '../crds/yaml.ts';
import { GROUP, KIND, PLURAL, VERSION } from '../crds/backdoorscan.ts';

test('committed CRD YAML is what crds/generate.ts produces (run `node crds/generate.ts` if this fails)', () => {
  const stale = staleFiles();
  assert.deepEqual(stale, [], `stale generated files:\n${stale.join('\n')}`);
});

test('the chart ships the same CRD bytes as crds/', () => {
  assert.equal(readFileSync(CHART_CRD_FILE, 'utf8'), readFileSync(CRD_FILE, 'utf8'));
});

test('staleness is detected with a line hint', () => {
  const stale = staleFiles(renderCrdYaml().replace('shortNames', 'shortNamez'));
  assert.equal(stale.length, 2);
  assert.match(stale[0]!, /differs at line \d+:\n\s+committed: .*shortNames:\n\s+generated: .*shortNamez:/);
});

test('generate.ts --check exits 0 on the committed tree', () => {
  const r = spawnSync(process.execPath, ['crds/generate.ts', '--check'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('generate.ts --check exits 1 with a hint when a committed file is stale, and a plain run fixes it', () => {
  // A copy of the generator in a scratch tree (its paths are relative to its own location).
  const dir = mkdtempSync(join(tmpdir(), 'crds-check-'));
  try {
    cpSync(join(ROOT, 'crds'), join(dir, 'crds'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    mkdirSync(join(dir, 'charts', 'elibadcode-operator', 'crds'), { recursive: true });
    const chartCopy = join(dir, 'charts', 'elibadcode-operator', 'crds', 'elibadcode.dev_backdoorscans.yaml');
    writeFileSync(chartCopy, readFileSync(CRD_FILE, 'utf8').replace('maxItems: 16', 'maxItems: 17'));
    const stale = spawnSync(process.execPath, ['crds/generate.ts', '--check'], { cwd: dir, encoding: 'utf8' });
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /charts\/elibadcode-operator\/crds\/elibadcode\.dev_backdoorscans\.yaml: differs at line \d+/);
    assert.match(stale.stderr, /committed: +maxItems: 17\n +generated: +maxItems: 16/);
    assert.match(stale.stderr, /Run: node crds\/generate\.ts/);
    assert.doesNotMatch(stale.stderr, /^\s+crds\/elibadcode\.dev_backdoorscans\.yaml: /m, 'the up-to-date file is not reported');
    const fix = spawnSync(process.execPath, ['crds/generate.ts'], { cwd: dir, encoding: 'utf8' });
    assert.equal(fix.status, 0, fix.stderr);
    assert.equal(spawnSync(process.execPath, ['crds/generate.ts', '--check'], { cwd: dir, encoding: 'utf8' }).status, 0);
    assert.equal(readFileSync(chartCopy, 'utf8'), readFileSync(CRD_FILE, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generator output is deterministic', () => {
  const a = execFileSync(process.execPath, ['crds/generate.ts', '--stdout'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(a, renderCrdYaml());
});

/** A YAML parser's view of a document, as plain data (loadYaml maps documents with a kind onto client models). */
function parsePlain(text: string): unknown {
  const wrapped = 'doc:\n' + text.split('\n').map((l) => (l === '' || l.startsWith('#') ? l : `  ${l}`)).join('\n');
  return (loadYaml(wrapped) as { doc: unknown }).doc;
}

test('the YAML parses back to exactly the CRD object', () => {
  assert.deepEqual(parsePlain(readFileSync(CRD_FILE, 'utf8')), buildCrd());
});

test('YAML emitter quotes everything ambiguous and round-trips', () => {
  const v = {
    plain: 'abc/def.g-h_i',
    words: ['yes', 'No', 'on', 'OFF', 'true', 'null', 'y', 'n', '~', ''],
    numbers: ['0.15', '5e-3', '1', '-1', '.inf', '0x1F', '1_000'],
    tricky: ['a: b', '- x', '#c', "it's", 'line\nbreak', 'tab\t', '  lead', 'trail ', '@x', '*y', '&z', '!t', '%p', '{a}', '[b]', '"q"', 'ü€😀'],
    nested: [{ a: 1, b: [{ c: true }, []], d: {} }, [1, [2]], null],
    'key with space': 1,
    'x-kubernetes-validations': [{ rule: "self.matches(r'^a\\.b$')", message: 'm' }],
    num: [0, -3, 1.5, 1e21],
  };
  assert.deepEqual(loadYaml(toYaml(v)), v);
  assert.equal(toYaml({ a: 'yes' }), 'a: "yes"\n');
});

function walk(node: JSONSchemaProps, path: string, visit: (n: JSONSchemaProps, p: string) => void): void {
  visit(node, path);
  const props = node.properties as Record<string, JSONSchemaProps> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`, visit);
  if (node.items) walk(node.items as JSONSchemaProps, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties as JSONSchemaProps, `${path}[*]`, visit);
}

test('CRD: names, scope, status subresource, printer columns', () => {
  const crd = buildCrd() as any;
  assert.equal(crd.metadata.name, `${PLURAL}.${GROUP}`);
  assert.equal(crd.spec.group, GROUP);
  assert.deepEqual(crd.spec.names, {
    kind: KIND,
    listKind: 'BackdoorScanList',
    plural: 'backdoorscans',
    singular: 'backdoorscan',
    shortNames: ['bds'],
    categories: ['elibadcode'],
  });
  assert.equal(crd.spec.scope, 'Namespaced');
  assert.equal(crd.spec.versions.length, 1);
  const v = crd.spec.versions[0];
  assert.equal(v.name, VERSION);
  assert.equal(v.served, true);
  assert.equal(v.storage, true);
  assert.deepEqual(v.subresources, { status: {} });
  const cols = v.additionalPrinterColumns.filter((c: any) => !c.priority).map((c: any) => c.name);
  assert.deepEqual(cols, ['Verdict', 'Trigger', 'ASR-After', 'Succeeded', 'Age']);
  const s = v.schema.openAPIV3Schema;
  assert.deepEqual(Object.keys(s.properties), ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  assert.deepEqual(s.properties.metadata, { type: 'object' });
  // Every printer column path exists in the schema.
  for (const c of v.additionalPrinterColumns) {
    if (c.jsonPath.startsWith('.metadata')) continue;
    let node = s;
    for (const seg of c.jsonPath.replace(/\[\?.*?\]/g, '').split('.').filter(Boolean)) {
      node = node.type === 'array' ? node.items.properties[seg] : node.properties[seg];
      assert.ok(node, `printer column ${c.name}: ${c.jsonPath} is not in the schema`);
    }
  }
});

test('CRD schema: structural, every node typed, no anyOf with types, no $ref/const/additionalProperties:false', () => {
  const s = (buildCrd() as any).spec.versions[0].schema.openAPIV3Schema as JSONSchemaProps;
  checkStructural(s);
  const text = JSON.stringify(s);
  for (const bad of ['"$ref"', '"$schema"', '"const"', '"additionalProperties":false', '"propertyNames"', '"anyOf"', '"oneOf"']) {
    assert.ok(!text.includes(bad), `schema contains ${bad}`);
  }
  walk(s, 'openAPIV3Schema', (n, p) => {
    const ok = typeof n.type === 'string' || n['x-kubernetes-int-or-string'] === true || n['x-kubernetes-preserve-unknown-fields'] === true;
    assert.ok(ok, `${p} has no type`);
  });
});

test('CRD schema: conditions are a list-map keyed by type; immutability and cross-field rules are present', () => {
  const s = (buildCrd() as any).spec.versions[0].schema.openAPIV3Schema;
  const conds = s.properties.status.properties.conditions;
  assert.equal(conds['x-kubernetes-list-type'], 'map');
  assert.deepEqual(conds['x-kubernetes-list-map-keys'], ['type']);
  assert.ok(conds.maxItems > 0);
  const spec = s.properties.spec;
  for (const f of ['task', 'model', 'data', 'labels', 'parameters', 'eliminate', 'unlearning', 'output']) {
    const rules = (spec.properties[f]['x-kubernetes-validations'] ?? []).map((r: any) => r.rule);
    assert.ok(rules.includes('self == oldSelf'), `spec.${f} is not immutable`);
  }
  for (const f of ['suspend', 'resources', 'tolerations', 'queueName', 'workerImage', 'activeDeadlineSeconds', 'retry']) {
    const rules = (spec.properties[f]['x-kubernetes-validations'] ?? []).map((r: any) => r.rule);
    assert.ok(!rules.includes('self == oldSelf'), `spec.${f} should stay mutable`);
  }
  const specRules = spec['x-kubernetes-validations'].map((r: any) => r.rule);
  assert.ok(specRules.some((r: string) => r.includes('oldSelf.labels')));
  assert.ok(specRules.some((r: string) => r.includes('has(self.output)')));
  assert.ok(spec.properties.labels['x-kubernetes-validations'].some((r: any) => r.rule.includes('self.victim != self.target')));
  assert.equal(spec.properties.parameters.properties.beta.type, 'string');
  assert.equal(spec.properties.parameters.properties.beta.default, '0.15');
  assert.equal(spec.properties.resources.properties.requests.properties.memory['x-kubernetes-int-or-string'], true);
  assert.match(spec.properties.resources.properties.gpuResourceName.description, /nvidia\.com\/gpu/);
});
