import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../observability/logger.js';
import { registry } from '../observability/metrics.js';
import { UnpricedRequests } from './unpriced.js';

describe('requests of models without a price', () => {
  it('count in tollgate_unpriced_requests_total by model and provider, and warn once per model', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('test', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } as never);
    const unpriced = new UnpricedRequests(logger);
    unpriced.note('llama-free', 'llama-3.1-8b', 'default/vllm');
    unpriced.note('llama-free', 'llama-3.1-8b', 'default/vllm');
    unpriced.note('llama-free', 'llama-3.1-8b', 'default/other');
    unpriced.note('mistral-free', 'mistral', 'default/vllm');
    const values = (await registry.getSingleMetric('tollgate_unpriced_requests_total')?.get())?.values ?? [];
    const of = (model: string, provider: string): number | undefined => values.find((v) => v.labels['model'] === model && v.labels['provider'] === provider)?.value;
    assert.equal(of('llama-free', 'default/vllm'), 2);
    assert.equal(of('llama-free', 'default/other'), 1);
    assert.equal(of('mistral-free', 'default/vllm'), 1);
    const warnings = lines.filter((l) => String(l['msg']).startsWith('model has no price'));
    assert.deepEqual(warnings.map((w) => [w['level'], w['model'], w['provider']]), [[40, 'llama-free', 'default/vllm'], [40, 'mistral-free', 'default/vllm']]);
    assert.match(String(warnings[0]?.['msg']), /set models\[\]\.pricing on the ModelProvider or a GatewayConfig pricing\.models entry/);
  });
});
