// The chart's alerts against what the operator exports: every series an alert selects on is there
// from the operator's start at 0 (increase() sees nothing in a series whose first sample is already
// 1), and Prometheus's own rule engine (promtool, built from the Go module proxy) fires the alerts
// on scrapes of the real metrics registry, before and after a scan finds a backdoor that survives
// unlearning and another scan fails.
// Needs helm ($ELIBADCODE_HELM) and promtool ($ELIBADCODE_PROMTOOL); each part is skipped without its binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { ROOT } from '../crds/generate.ts';
import { OperatorMetrics } from '../operator/metrics.ts';

const helm = process.env.ELIBADCODE_HELM || 'helm';
const promtool = process.env.ELIBADCODE_PROMTOOL || 'promtool';
const runs = (bin: string, arg: string) => spawnSync(bin, [arg], { encoding: 'utf8' }).status === 0;
const noHelm = runs(helm, 'version') ? false : 'no helm binary (set ELIBADCODE_HELM)';
const noPromtool = noHelm || (runs(promtool, '--version') ? false : 'no promtool binary (set ELIBADCODE_PROMTOOL; scripts/promtool/build.sh builds it)');

const tmp = mkdtempSync(join(tmpdir(), 'alerts-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

type Rule = { alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };

/** The chart's PrometheusRule groups, rendered as a cluster with the prometheus-operator CRD sees them. */
function renderedRuleGroups(): Array<{ name: string; rules: Rule[] }> {
  const text = execFileSync(helm, ['template', 'eb', `${ROOT}/charts/elibadcode-operator`, '-n', 'elibadcode-system', '--kube-version', '1.36.3',
    '--api-versions', 'monitoring.coreos.com/v1/PrometheusRule', '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor'], { encoding: 'utf8' });
  const rule = (loadAllYaml(text) as Array<{ kind?: string; spec?: { groups: Array<{ name: string; rules: Rule[] }> } }>).find((o) => o.kind === 'PrometheusRule');
  assert.ok(rule?.spec, 'the chart renders a PrometheusRule');
  return rule.spec.groups;
}

/** The `label="value"` pairs of a selector or a series. */
function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
}

/** `name{label="value",...}` selectors of the operator's own metrics in an expression. */
function selectors(expr: string): Array<{ name: string; labels: Record<string, string> }> {
  return [...expr.matchAll(/\b(elibadcode_[a-z_]+)(?:\{([^}]*)\})?/g)].map(([, name, body]) => ({ name, labels: labelsOf(body ?? '') }));
}

/** Samples of a Prometheus text exposition: `name{labels}` -> value (comments and blank lines skipped). */
function samples(exposition: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const nameOf = (series: string) => series.replace(/\{.*$/, '');

test('a freshly started operator already exports, at 0, every series the chart\'s alerts select on', { skip: noHelm }, async () => {
  const exported = samples(await new OperatorMetrics().registry.metrics());
  const wanted = renderedRuleGroups().flatMap((g) => g.rules).flatMap((r) => selectors(r.expr).map((s) => ({ alert: r.alert, ...s })));
  assert.ok(wanted.some((w) => w.labels.result === 'BackdoorSurvived') && wanted.some((w) => w.labels.verdict === 'Failed'), JSON.stringify(wanted));
  for (const w of wanted) {
    const match = [...exported].filter(([series]) => nameOf(series) === w.name && Object.entries(w.labels).every(([k, v]) => labelsOf(series)[k] === v));
    assert.equal(match.length, 1, `${w.alert} selects ${w.name}${JSON.stringify(w.labels)}, which a fresh operator does not export`);
    assert.equal(match[0][1], 0);
  }
});

test('promtool: the rules are valid, stay quiet on a fresh operator and fire on its scrapes once a backdoor survives, a scan fails and one ends without a verdict', { skip: noPromtool }, async () => {
  const groups = renderedRuleGroups();
  const rulesFile = join(tmp, 'rules.yaml');
  writeFileSync(rulesFile, JSON.stringify({ groups }));
  const check = spawnSync(promtool, ['check', 'rules', rulesFile], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);

  // Two scrapes of the registry the operator serves: at its start, and after the counters a
  // reconcile moves when one scan ends Backdoored with the backdoor surviving unlearning, another
  // ends Failed and a third with verdict Unknown (operator.controller.test.ts checks that
  // reconciles move them so).
  const metrics = new OperatorMetrics();
  const before = samples(await metrics.registry.metrics());
  metrics.scansFinished.inc({ verdict: 'Backdoored' });
  metrics.backdoorsDetected.inc();
  metrics.eliminations.inc({ result: 'BackdoorSurvived' });
  metrics.scansFinished.inc({ verdict: 'Failed' });
  metrics.scansFinished.inc({ verdict: 'Unknown' });
  const afterScrape = samples(await metrics.registry.metrics());
  // Scraped every minute: 10 minutes as at the start, then the new values (a series that did not
  // exist at the start is absent, "_", for those minutes, as Prometheus would see it).
  const instance = 'job="eb-elibadcode-operator-metrics",instance="10.0.0.7:8080"';
  const input_series = [...afterScrape]
    .filter(([series]) => series.startsWith('elibadcode_'))
    .map(([series, value]) => {
      const start = before.get(series);
      const series_ = series.includes('{') ? series.replace('{', `{${instance},`) : `${series}{${instance}}`;
      return { series: series_, values: `${start === undefined ? '_' : start}x10 ${value}x20` };
    });
  const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert).map((r) => r.alert!);
  const firing = ['BackdoorDetected', 'BackdoorSurvivedUnlearning', 'BackdoorScanFailed', 'BackdoorScanInconclusive'];
  assert.deepEqual(firing.filter((a) => !alerts.includes(a)), [], `the chart's alerts: ${alerts}`);
  const rule = (name: string) => groups.flatMap((g) => g.rules).find((r) => r.alert === name)!;
  // What the alert says, with its count: one scan each.
  const annotations = (name: string) => Object.fromEntries(Object.entries(rule(name).annotations ?? {}).map(([k, v]) => [k, v.replace('{{ $value | humanize }}', '1')]));
  const unitTest = {
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: [{
      interval: '1m',
      input_series,
      alert_rule_test: firing.flatMap((alertname) => [
        { eval_time: '9m', alertname, exp_alerts: [] },
        { eval_time: '13m', alertname, exp_alerts: [{ exp_labels: { severity: rule(alertname).labels!.severity }, exp_annotations: annotations(alertname) }] },
      ]),
    }],
  };
  const testFile = join(tmp, 'alerts.test.yaml');
  writeFileSync(testFile, JSON.stringify(unitTest));
  const run = spawnSync(promtool, ['test', 'rules', testFile], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
