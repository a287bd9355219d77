import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { providerYaml, snapshotFromYaml } from '../config/test-fixtures.js';
import { ConfigStore } from '../config/store.js';
import { createLogger } from '../observability/logger.js';
import { registry } from '../observability/metrics.js';
import { UnpricedRequests, unpricedModelsOf, watchUnpricedModels } from './unpriced.js';

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

  it('the configuration in force: tollgate_unpriced_models lists models priced nowhere, and a change of that set is logged', async () => {
    const gateway = `apiVersion: tollgate.dev/v1alpha1\nkind: GatewayConfig\nmetadata: { name: gw }\nspec:\n  pricing:\n    models:\n      - { model: "llama-*", input: "0.1", output: "0.2" }\n---\n`;
    const build = (extra: string) =>
      snapshotFromYaml(
        gateway +
          providerYaml('a', `type: openai\nendpoint: https://a.example/v1\nmodels:\n  - { name: gpt-4o, pricing: { input: "2.50", output: "10" } }\n  - { name: llama-3 }\n  - { name: free-one }\n  - { name: half }${extra}`) +
          providerYaml('b', `type: openai-compatible\nendpoint: http://b.example/v1\nmodels:\n  - { name: half, pricing: { input: "1", output: "1" } }`),
      ).snapshot;
    const first = build('');
    // llama-3 takes the default table's price; half is priced on b (admission and a's requests use it).
    assert.deepEqual(unpricedModelsOf(first), ['free-one']);
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('test', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } as never);
    const store = new ConfigStore();
    store.swap(first);
    const stop = watchUnpricedModels(store, logger);
    try {
      const gauge = async () => ((await registry.getSingleMetric('tollgate_unpriced_models')?.get())?.values ?? []).map((v) => [v.labels['model'], v.value]);
      assert.deepEqual(await gauge(), [['free-one', 1]]);
      store.swap(build('\n  - { name: free-two }'));
      assert.deepEqual((await gauge()).sort(), [['free-one', 1], ['free-two', 1]]);
      store.swap(build('\n  - { name: free-two }')); // same set: not logged again
      store.swap(build(''));
      assert.deepEqual(await gauge(), [['free-one', 1]], 'a model priced again (or removed) leaves the gauge');
      const logged = lines.filter((l) => String(l['msg']).startsWith('served models without a price')).map((l) => l['models']);
      assert.deepEqual(logged, [['free-one'], ['free-one', 'free-two'], ['free-one']]);
    } finally {
      stop();
    }
  });
});
