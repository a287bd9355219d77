/**
 * Prices and cost: exact decimal parsing, the cost of one response by token kind, the snapshot's
 * price choice (provider, then the GatewayConfig default table), and that a million small requests
 * add up to exactly the cost of their total tokens in the usage rows and in tollgate_cost_total.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { snapshotFromYaml, providerYaml } from '../config/test-fixtures.js';
import { createLogger } from '../observability/logger.js';
import { registry } from '../observability/metrics.js';
import { MemoryUsageSink, rowsFromJson, rowsToJson, UsageAccountant, type UsageRow } from '../usage/accountant.js';
import { JsonUsageTail } from '../usage/response-usage.js';
import { monthSpan } from '../ratelimit/calendar.js';
import { formatMicros, formatPicos, parseMicros, picosToMicrosCeil } from './money.js';
import { compilePrice, costOf, maxPrice, type CompiledPrice } from './pricing.js';

function price(p: Parameters<typeof compilePrice>[0]): CompiledPrice {
  const c = compilePrice(p);
  if ('error' in c) throw new Error(`bad price field ${c.error}`);
  return c;
}

describe('money', () => {
  it('parses decimal strings into exact micro-units and refuses anything else', () => {
    assert.equal(parseMicros('2.50'), 2_500_000n);
    assert.equal(parseMicros('0.000001'), 1n);
    assert.equal(parseMicros('500'), 500_000_000n);
    assert.equal(parseMicros('999999999.999999'), 999_999_999_999_999n);
    for (const bad of ['', '1.', '.5', '-1', '1e3', '0.0000001', '1,5', ' 1', '1234567890']) assert.equal(parseMicros(bad), undefined, bad);
  });
  it('formats micros and picos without losing digits', () => {
    assert.equal(formatMicros(1_500_000n), '1.50');
    assert.equal(formatMicros(1_234_567n), '1.234567');
    assert.equal(formatPicos(2_850_000n), '0.00000285');
    assert.equal(formatPicos(0n), '0.00');
    assert.equal(picosToMicrosCeil(1n), 1);
    assert.equal(picosToMicrosCeil(2_000_000n), 2);
    assert.equal(picosToMicrosCeil(2_000_001n), 3);
  });
});

describe('cost of a response', () => {
  const p = price({ input: '2.50', output: '10', cachedInputRead: '1.25', cachedInputWrite: '3.125', reasoning: '12' });
  it('bills each kind of token at its own price, exactly', () => {
    // 1000 prompt tokens of which 400 cached-read and 100 cached-write; 200 completion of which 50 reasoning.
    const picos = costOf(p, { promptTokens: 1000, completionTokens: 200, cachedReadTokens: 400, cachedWriteTokens: 100, reasoningTokens: 50 });
    const expected = 500n * 2_500_000n + 400n * 1_250_000n + 100n * 3_125_000n + 150n * 10_000_000n + 50n * 12_000_000n;
    assert.equal(picos, expected);
    assert.equal(formatPicos(picos), '0.004162500'.replace(/0+$/, ''));
  });
  it('defaults cached prices to input and reasoning to output, and clamps inconsistent counts', () => {
    const plain = price({ input: '1', output: '2' });
    assert.equal(costOf(plain, { promptTokens: 10, completionTokens: 5, cachedReadTokens: 4, reasoningTokens: 5 }), 10n * 1_000_000n + 5n * 2_000_000n);
    assert.equal(costOf(plain, { promptTokens: 10, completionTokens: 5, cachedReadTokens: 99 }), 5n * 2_000_000n + 10n * 1_000_000n);
    assert.equal(costOf(plain, { promptTokens: -3, completionTokens: Number.NaN }), 0n);
  });
  it('the admission price is the highest of each field', () => {
    const m = maxPrice([price({ input: '1', output: '8' }), price({ input: '3', output: '2', reasoning: '9' })]);
    assert.equal(m?.input, 3_000_000n);
    assert.equal(m?.output, 8_000_000n);
    assert.equal(m?.completionMicrosPerToken, 9);
  });
  it('reads cached and reasoning details out of OpenAI-shaped and Anthropic-shaped usage', () => {
    const t = new JsonUsageTail();
    t.push(Buffer.from('{"id":"x","usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":60},"completion_tokens_details":{"reasoning_tokens":5}}}'));
    assert.deepEqual(t.usage(), { promptTokens: 100, completionTokens: 20, cachedReadTokens: 60, reasoningTokens: 5 });
    const a = new JsonUsageTail();
    a.push(Buffer.from('{"usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":50,"cache_creation_input_tokens":7}}'));
    assert.deepEqual(a.usage(), { promptTokens: 67, completionTokens: 3, cachedReadTokens: 50, cachedWriteTokens: 7 });
  });
});

describe('prices in the snapshot', () => {
  const gateway = (pricing: string): string => `apiVersion: tollgate.dev/v1alpha1\nkind: GatewayConfig\nmetadata: { name: gw }\nspec:\n  pricing:\n${pricing}\n---\n`;
  it('a provider price wins; else the first default entry matching the served name, then the upstream name', () => {
    const { snapshot, problems, issues } = snapshotFromYaml(
      gateway(`    currency: EUR\n    models:\n      - { model: "gpt-4o*", input: "5", output: "15" }\n      - { model: "llama-*", input: "0.1", output: "0.2" }`) +
        providerYaml('a', `type: openai\nendpoint: https://a.example/v1\nmodels:\n  - { name: gpt-4o, pricing: { input: "2.50", output: "10" } }\n  - { name: gpt-4o-mini }\n  - { name: local, upstreamModel: llama-3 }\n  - { name: free }`) +
        providerYaml('b', `type: openai-compatible\nendpoint: http://b.example/v1\nmodels:\n  - { name: gpt-4o, pricing: { input: "3", output: "9", currency: USD } }`),
    );
    assert.deepEqual(issues, []);
    const route = (model: string, provider: string) => snapshot.routesByModel.get(model)?.flatMap((t) => t.routes).find((r) => r.provider.name === provider);
    assert.equal(snapshot.currency, 'EUR');
    assert.equal(route('gpt-4o', 'default/a')?.price?.input, 2_500_000n);
    assert.equal(route('gpt-4o-mini', 'default/a')?.price?.input, 5_000_000n, 'default table by served name');
    assert.equal(route('local', 'default/a')?.price?.output, 200_000n, 'default table by upstream name');
    assert.equal(route('free', 'default/a')?.price, undefined);
    // b's price is in USD, the gateway's currency is EUR: reported, the default applies.
    assert.equal(route('gpt-4o', 'default/b')?.price?.input, 5_000_000n);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? '', /USD but the gateway currency is EUR/);
    assert.equal(problems[0]?.field, 'spec.models[0].pricing.currency');
    assert.equal(snapshot.admissionPrice.get('gpt-4o')?.output, 15_000_000n, 'admission reserves with the dearest route');
  });
  it('a malformed price is refused by the schema with its field', () => {
    const { issues } = snapshotFromYaml(providerYaml('a', `type: openai\nendpoint: https://a.example/v1\nmodels:\n  - { name: m, pricing: { input: "2.5e3", output: "1" } }`));
    assert.equal(issues.length > 0, true);
    assert.match(JSON.stringify(issues), /pricing/);
  });
});

describe('a million small requests add up exactly', () => {
  it('usage rows and tollgate_cost_total equal the cost of the total tokens, to the pico', async () => {
    const logger = createLogger('test');
    logger.level = 'silent';
    const sink = new MemoryUsageSink();
    const accountant = new UsageAccountant({ sink, logger, maxRecords: 10_000_000 });
    const p = price({ input: '0.15', output: '0.60' });
    const n = 1_000_000;
    const atMs = Date.now();
    const month = monthSpan(atMs, 'UTC').id;
    let floatSum = 0;
    for (let i = 0; i < n; i++) {
      const usage = { promptTokens: 7, completionTokens: 3 };
      const costPicos = costOf(p, usage); // 2.85 micro-units each
      floatSum += 0.00000285;
      accountant.record({ key: 'ns/exact', lineage: '.exact.', model: 'mini', upstreamModel: 'mini', provider: 'ns/p', ...usage, costPicos, latencyMs: 1, status: 200, month, atMs, reported: true });
    }
    await accountant.flush();
    const totals = await sink.monthToDate('ns/exact', month);
    assert.equal(totals.requests, n);
    assert.equal(totals.costPicos, 2_850_000_000_000n, 'exactly 2.85 currency units');
    assert.equal(formatPicos(totals.costPicos), '2.85');
    assert.notEqual(floatSum, 2.85, 'the same sum in floating point drifts (why picos are integers)');
    const metric = (await registry.getSingleMetric('tollgate_cost_total')?.get())?.values.find((v) => v.labels['consumer'] === 'ns/exact');
    assert.equal(metric?.value, 2_850_000, 'tollgate_cost_total is exact in micro-units');
    await accountant.stop();
  });
  it('rows survive their JSON form with the cost exact beyond 2^53', () => {
    const row: UsageRow = {
      month: '2026-01', key: 'k', lineage: '.k.', model: 'm', upstreamModel: 'm', provider: 'p', statusClass: '2xx', hour: 0, requests: 1,
      promptTokens: 1, completionTokens: 1, cachedReadTokens: 0, cachedWriteTokens: 0, reasoningTokens: 0, costPicos: 123_456_789_012_345_678_901n, latencyMs: 1, estimated: 0,
    };
    assert.deepEqual(rowsFromJson(rowsToJson([row])), [row]);
  });
});
