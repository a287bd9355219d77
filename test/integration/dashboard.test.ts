/**
 * The Grafana dashboard in the chart (charts/tollgate/files/grafana-dashboard.json) queries only
 * metrics that a real Tollgate serves on /metrics, with labels those metrics have: a renamed metric
 * or label fails here, not silently as an empty panel.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { registry } from '../../src/observability/metrics.js';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

const DASHBOARD = fileURLToPath(new URL('../../../charts/tollgate/files/grafana-dashboard.json', import.meta.url));
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;
/** Labels PromQL or Grafana add, not the metric. */
const NOT_LABELS = new Set(['le']);

interface Panel {
  readonly title?: string;
  readonly targets?: readonly { readonly expr: string }[];
  readonly panels?: readonly Panel[];
}

function exprs(panels: readonly Panel[]): { title: string; expr: string }[] {
  return panels.flatMap((p) => [...(p.targets ?? []).map((t) => ({ title: p.title ?? '', expr: t.expr })), ...exprs(p.panels ?? [])]);
}

describe('Grafana dashboard (chart) against a running gateway', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: basicConfig(), fakes: { primary: { chunks: 3, chunkIntervalMs: 1 } } });
  });
  after(() => stack?.stop());

  it('every metric a panel queries exists in /metrics, and every label it groups or filters by belongs to that metric', async () => {
    // Some traffic, so request, token and latency series have samples too.
    const s = await stack.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _ of s) void _;
    const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    const served = new Map<string, string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) served.set(m[1] as string, m[2] as string);
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { query?: unknown }[] } };
    const all = exprs(dashboard.panels);
    assert.ok(all.length >= 15, 'the dashboard has its panels');
    const problems: string[] = [];
    const used = new Set<string>();
    for (const { title, expr } of all) {
      const metrics = [...new Set([...expr.matchAll(/tollgate_[a-z0-9_]+/g)].map((m) => m[0]))].map((name) => {
        const base = name.replace(HISTOGRAM_SUFFIX, '');
        return served.get(base) === 'histogram' ? base : name;
      });
      if (metrics.length === 0) problems.push(`${title}: queries no tollgate metric`);
      const labels = new Set<string>();
      for (const m of metrics) {
        used.add(m);
        if (!served.has(m)) problems.push(`${title}: ${m} is not in /metrics`);
        for (const l of ((registry.getSingleMetric(m) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [])) labels.add(l);
      }
      const referenced = [
        ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',').map((x) => x.trim())),
        ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...(m[1] as string).matchAll(/([a-z_]+)\s*[=!]~?/g)].map((x) => x[1] as string)),
      ].filter((l) => l.length > 0 && !NOT_LABELS.has(l));
      for (const l of referenced) if (!labels.has(l)) problems.push(`${title}: label ${l} is not a label of ${metrics.join(', ')}`);
    }
    for (const v of dashboard.templating.list) {
      const q = JSON.stringify(v.query ?? '');
      for (const m of q.matchAll(/label_values\((tollgate_[a-z0-9_]+), ([a-z_]+)\)/g)) {
        if (!served.has(m[1] as string)) problems.push(`variable: ${m[1]} is not in /metrics`);
      }
    }
    assert.deepEqual(problems, []);
    // The panels the issue asks for are there.
    for (const m of ['tollgate_requests_total', 'tollgate_request_duration_seconds', 'tollgate_time_to_first_token_seconds', 'tollgate_tokens_total', 'tollgate_cost_total',
      'tollgate_ratelimit_rejections_total', 'tollgate_failovers_total', 'tollgate_circuit_open_targets']) {
      assert.ok(used.has(m), `the dashboard shows ${m}`);
    }
    // The stream above was timed to its first token.
    assert.match(text, /tollgate_time_to_first_token_seconds_count\{provider="default\/primary",model="gpt-4o-mini"\} 1/);
  });
});
