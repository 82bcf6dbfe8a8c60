// The Helm chart against a real kube-apiserver: `helm lint --strict`, `helm template`, every
// rendered object accepted by the API server, the operator pod admitted under Pod Security
// "restricted", and RBAC checked with SubjectAccessReviews (the operator can do its job and no more;
// the worker can do nothing).
// Needs a helm binary: $ELIBADCODE_HELM or `helm` on PATH; skipped without one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { raw } from './operator.helpers.ts';
import { loadYaml } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './harness/controlplane.ts';
import { CRD_FILE, ROOT } from '../crds/generate.ts';

const helm = process.env.ELIBADCODE_HELM || 'helm';
const haveHelm = spawnSync(helm, ['version', '--short'], { encoding: 'utf8' }).status === 0;
const skip = haveHelm ? false : `no helm binary (set ELIBADCODE_HELM or put helm on PATH)`;

const chart = `${ROOT}/charts/elibadcode-operator`;
const release = 'eb';
const opNs = 'elibadcode-system';
const scanNs = 'ml-security';
const opSA = `system:serviceaccount:${opNs}:${release}-elibadcode-operator`;
const workerSA = (ns: string) => `system:serviceaccount:${ns}:elibadcode-worker`;

let cp: ControlPlane;

function kube(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return raw(cp, method, path, body);
}

/** Plain-data view of YAML documents (loadYaml maps documents that have a kind onto client models). */
function parseAllPlain(text: string): any[] {
  return text
    .split(/^---\s*$/m)
    .map((doc) => 'doc:\n' + doc.split('\n').map((l) => (l.trim() === '' || l.startsWith('#') ? '' : `  ${l}`)).join('\n'))
    .map((w) => (loadYaml(w) as { doc: unknown } | null)?.doc)
    .filter((d): d is Record<string, unknown> => !!d && typeof d === 'object');
}

function render(...set: string[]): any[] {
  const args = ['template', release, chart, '-n', opNs, '--kube-version', '1.36.3', ...set.flatMap((s) => ['--set', s])];
  return parseAllPlain(execFileSync(helm, args, { encoding: 'utf8' }));
}

function pathFor(o: any): string {
  const ns = o.metadata.namespace;
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural: Record<string, string> = {
    ServiceAccount: 'serviceaccounts',
    Service: 'services',
    Deployment: 'deployments',
    PodDisruptionBudget: 'poddisruptionbudgets',
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
    Role: 'roles',
    RoleBinding: 'rolebindings',
  };
  const p = plural[o.kind];
  assert.ok(p, `no REST path for kind ${o.kind}`);
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return ns ? `${prefix}/namespaces/${ns}/${p}` : `${prefix}/${p}`;
}

async function can(user: string, attrs: Record<string, string>): Promise<boolean> {
  const r = await kube('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, groups: ['system:serviceaccounts', `system:serviceaccounts:${user.split(':')[2]}`, 'system:authenticated'], resourceAttributes: attrs },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.status.allowed === true;
}

before(async () => {
  if (skip) return;
  cp = await startControlPlane({ log: (l) => console.log(`# ${l}`) });
  const crd = parseAllPlain(readFileSync(CRD_FILE, 'utf8'))[0];
  assert.equal((await kube('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);
  for (const ns of [opNs, scanNs]) {
    const r = await kube('POST', '/api/v1/namespaces', {
      metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}, { timeout: 40 * 60_000 });

after(async () => {
  await cp?.stop();
});

test('helm lint --strict passes (all namespaces, and namespace-scoped)', { skip }, () => {
  for (const set of [[], ['watchNamespaces={ml-security}', 'metrics.serviceMonitor.enabled=true']]) {
    const r = spawnSync(helm, ['lint', '--strict', chart, '--kube-version', '1.36.3', ...set.flatMap((s) => ['--set', s])], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  }
});

test('every rendered object is accepted by the API server; the operator pod passes Pod Security "restricted"', { skip }, async () => {
  const objs = render(`worker.serviceAccount.namespaces={${scanNs}}`);
  const kinds = objs.map((o) => o.kind).sort();
  assert.deepEqual(kinds, ['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'ServiceAccount', 'ServiceAccount']);
  for (const o of objs) {
    const r = await kube('POST', pathFor(o), o);
    assert.equal(r.status, 201, `${o.kind} ${o.metadata.name}: ${JSON.stringify(r.body).slice(0, 500)}`);
  }
  const dep = objs.find((o) => o.kind === 'Deployment');
  assert.equal(dep.spec.replicas, 2);
  // Admit the Deployment's pod template directly: the PodSecurity admission plugin enforces
  // "restricted" on the namespace (no controller-manager runs here to create the pods).
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'operator-pod', namespace: opNs, labels: dep.spec.template.metadata.labels }, spec: dep.spec.template.spec };
  const r = await kube('POST', `/api/v1/namespaces/${opNs}/pods`, pod);
  assert.equal(r.status, 201, JSON.stringify(r.body).slice(0, 800));
  assert.equal(r.body.spec.serviceAccountName, `${release}-elibadcode-operator`);
  // Negative control: the namespace really enforces "restricted".
  const loose = structuredClone(pod);
  loose.metadata.name = 'loose-pod';
  delete loose.spec.containers[0].securityContext;
  const refused = await kube('POST', `/api/v1/namespaces/${opNs}/pods`, loose);
  assert.equal(refused.status, 403, JSON.stringify(refused.body).slice(0, 300));
  assert.match(String(refused.body.message), /violates PodSecurity "restricted:latest"/);
  // The worker service accounts mount no token.
  for (const ns of [opNs, scanNs]) {
    const sa = await kube('GET', `/api/v1/namespaces/${ns}/serviceaccounts/elibadcode-worker`);
    assert.equal(sa.status, 200);
    assert.equal(sa.body.automountServiceAccountToken, false);
  }
});

test('operator RBAC: what it needs, and nothing else', { skip }, async () => {
  const allowed: Array<Record<string, string>> = [
    { group: 'elibadcode.dev', resource: 'backdoorscans', verb: 'list' },
    { group: 'elibadcode.dev', resource: 'backdoorscans', verb: 'watch', namespace: scanNs },
    { group: 'elibadcode.dev', resource: 'backdoorscans', subresource: 'status', verb: 'patch', namespace: scanNs },
    { group: 'elibadcode.dev', resource: 'backdoorscans', subresource: 'finalizers', verb: 'update', namespace: scanNs },
    { group: 'batch', resource: 'jobs', verb: 'create', namespace: scanNs },
    { group: 'batch', resource: 'jobs', verb: 'delete', namespace: scanNs },
    { group: 'batch', resource: 'jobs', verb: 'watch' },
    { group: '', resource: 'pods', verb: 'list', namespace: scanNs },
    { group: '', resource: 'events', verb: 'create', namespace: scanNs },
    { group: 'events.k8s.io', resource: 'events', verb: 'patch', namespace: scanNs },
    { group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: opNs },
    { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: 'elibadcode-operator', namespace: opNs },
    // Live progress: check a worker's projected token, then read its pod.
    { group: 'authentication.k8s.io', resource: 'tokenreviews', verb: 'create' },
    { group: '', resource: 'pods', verb: 'get', namespace: scanNs },
  ];
  const denied: Array<Record<string, string>> = [
    { group: '', resource: 'secrets', verb: 'get', namespace: scanNs },
    { group: '', resource: 'secrets', verb: 'list' },
    { group: '', resource: 'configmaps', verb: 'get', namespace: scanNs },
    { group: '', resource: 'pods', verb: 'create', namespace: scanNs },
    { group: '', resource: 'pods', subresource: 'exec', verb: 'create', namespace: scanNs },
    { group: 'elibadcode.dev', resource: 'backdoorscans', verb: 'update', namespace: scanNs },
    { group: 'elibadcode.dev', resource: 'backdoorscans', verb: 'delete', namespace: scanNs },
    { group: 'batch', resource: 'jobs', verb: 'update', namespace: scanNs },
    { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: 'someone-else', namespace: opNs },
    { group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: scanNs },
    { group: 'rbac.authorization.k8s.io', resource: 'roles', verb: 'create', namespace: scanNs },
  ];
  for (const a of allowed) assert.equal(await can(opSA, a), true, `operator should be allowed ${JSON.stringify(a)}`);
  for (const a of denied) assert.equal(await can(opSA, a), false, `operator should be denied ${JSON.stringify(a)}`);
});

test('worker RBAC: none', { skip }, async () => {
  const attempts: Array<Record<string, string>> = [
    { group: 'elibadcode.dev', resource: 'backdoorscans', subresource: 'status', verb: 'patch', namespace: scanNs },
    { group: 'elibadcode.dev', resource: 'backdoorscans', verb: 'get', namespace: scanNs },
    { group: '', resource: 'secrets', verb: 'get', namespace: scanNs },
    { group: '', resource: 'pods', verb: 'get', namespace: scanNs },
    { group: 'batch', resource: 'jobs', verb: 'list', namespace: scanNs },
    { group: 'authentication.k8s.io', resource: 'tokenreviews', verb: 'create' },
    { group: '', resource: 'serviceaccounts', subresource: 'token', verb: 'create', name: 'elibadcode-worker', namespace: scanNs },
  ];
  for (const ns of [opNs, scanNs]) {
    for (const a of attempts) assert.equal(await can(workerSA(ns), a), false, `worker should be denied ${JSON.stringify(a)}`);
  }
});

test('namespace-scoped install renders Roles in each watched namespace and no ClusterRole but the TokenReview one', { skip }, () => {
  const objs = render('watchNamespaces={ml-security,team-b}');
  // tokenreviews are cluster-scoped: the one cluster-wide grant, and only that.
  const clusterRoles = objs.filter((o) => o.kind === 'ClusterRole');
  assert.deepEqual(clusterRoles.map((o) => o.metadata.name), [`${release}-elibadcode-operator-tokenreview`]);
  assert.deepEqual(clusterRoles[0].rules, [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }]);
  assert.deepEqual(objs.filter((o) => o.kind === 'ClusterRoleBinding').map((o) => o.metadata.name), [`${release}-elibadcode-operator-tokenreview`]);
  const roles = objs.filter((o) => o.kind === 'Role' && !o.metadata.name.endsWith('leader-election')).map((o) => o.metadata.namespace);
  assert.deepEqual(roles.sort(), ['ml-security', 'team-b']);
  const env = Object.fromEntries(objs.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
  assert.equal(env.ELIBADCODE_WATCH_NAMESPACES, 'ml-security,team-b');
  const workerNs = objs.filter((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'elibadcode-worker').map((o) => o.metadata.namespace);
  assert.deepEqual(workerNs.sort(), [opNs, 'ml-security', 'team-b']);
});

test('live progress: the Deployment gets the port and the URL of the progress Service; disabled renders none of it', { skip }, () => {
  const objs = render();
  const dep = objs.find((o) => o.kind === 'Deployment');
  const c = dep.spec.template.spec.containers[0];
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
  assert.equal(env.ELIBADCODE_PROGRESS_PORT, '8082');
  assert.equal(env.ELIBADCODE_PROGRESS_URL, `http://${release}-elibadcode-operator-progress.${opNs}.svc:8082/v1/progress`);
  assert.ok(c.ports.some((p: any) => p.name === 'progress' && p.containerPort === 8082));
  const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === `${release}-elibadcode-operator-progress`);
  assert.deepEqual(svc.spec.ports, [{ name: 'http-progress', port: 8082, targetPort: 'progress', protocol: 'TCP' }]);
  const off = render('progress.enabled=false');
  const offEnv = off.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0].env.map((e: any) => e.name);
  assert.ok(!offEnv.includes('ELIBADCODE_PROGRESS_URL') && !offEnv.includes('ELIBADCODE_PROGRESS_PORT'));
  assert.ok(!off.some((o) => /-progress$|-tokenreview$/.test(o.metadata.name)));
});

test('alerts: with the PrometheusRule CRD present, every alert selects on a metric the operator exports, including a surviving backdoor', { skip }, async () => {
  const rendered = parseAllPlain(
    execFileSync(helm, ['template', release, chart, '-n', opNs, '--kube-version', '1.36.3', '--api-versions', 'monitoring.coreos.com/v1/PrometheusRule'], { encoding: 'utf8' }),
  );
  const rule = rendered.find((o) => o.kind === 'PrometheusRule');
  assert.ok(rule, 'a PrometheusRule when its API is served');
  const alerts = new Map<string, string>(rule.spec.groups.flatMap((g: any) => g.rules).map((r: any) => [r.alert, r.expr]));
  assert.deepEqual([...alerts.keys()].sort(), ['BackdoorDetected', 'BackdoorScanFailed', 'BackdoorScanInconclusive', 'BackdoorSurvivedUnlearning']);
  assert.match(alerts.get('BackdoorSurvivedUnlearning')!, /elibadcode_scan_eliminations_total\{result="BackdoorSurvived"\}/);
  const { OperatorMetrics } = await import('../operator/metrics.ts');
  const exported = new Set((await new OperatorMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
  for (const [name, expr] of alerts) {
    for (const metric of expr.match(/\b(elibadcode_[a-z_]+|leader_election_master_status)\b/g) ?? []) assert.ok(exported.has(metric), `${name} uses ${metric}, which the operator does not export`);
  }
  assert.equal(parseAllPlain(execFileSync(helm, ['template', release, chart, '-n', opNs, '--kube-version', '1.36.3'], { encoding: 'utf8' })).filter((o) => o.kind === 'PrometheusRule').length, 0, 'none without the CRD');
});
