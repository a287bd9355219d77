import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { providerYaml, secretYaml, validSnapshot } from '../config/test-fixtures.js';
import { isGatewayError } from '../errors.js';
import { readRequestBody, type RequestBody } from './request-body.js';
import { buildRewrite, ROUTE_HEADER, type UpstreamRewrite } from './rewrite.js';
import type { ModelRoute } from '../config/snapshot.js';
import type { Operation } from '../providers/types.js';

const snapshot = validSnapshot(
  providerYaml(
    'openai',
    'type: openai\nendpoint: https://api.openai.test/v1/\ncredentialSecretRef: { name: creds, key: openai }\nmodels: [{ name: gpt-4o }, { name: fast, upstreamModel: gpt-4o-mini }]',
  ) +
    providerYaml(
      'azure',
      'type: azure-openai\nendpoint: https://my-res.openai.azure.test\napiVersion: 2024-06-01\ncredentialSecretRef: { name: creds, key: azure }\nmodels: [{ name: az-4o, upstreamModel: prod-gpt4o }]',
    ) +
    providerYaml('azure-default', 'type: azure-openai\nendpoint: https://other.test/base\ncredentialSecretRef: { name: creds, key: azure }\nmodels: [{ name: az-default, upstreamModel: dep }]') +
    providerYaml('vllm', 'type: openai-compatible\nendpoint: http://vllm.ml.svc:8000/v1\nmodels: [{ name: llama, upstreamModel: meta-llama/Llama-3.1-8B-Instruct }]') +
    secretYaml('creds', { openai: 'sk-provider-openai', azure: 'azure-provider-key' }),
);

function routeFor(model: string): ModelRoute {
  const route = snapshot.routesByModel.get(model)?.[0]?.routes[0];
  assert.ok(route, `no route for ${model}`);
  return route;
}

function body(text: string): RequestBody {
  const b = readRequestBody(Buffer.from(text), 'application/json');
  assert.ok(!isGatewayError(b));
  return b;
}

function headersOf(r: UpstreamRewrite): Record<string, string> {
  return Object.fromEntries(r.setHeaders);
}

function rewrite(model: string, text: string, op: Operation = 'chat/completions'): UpstreamRewrite {
  return buildRewrite(routeFor(model), op, body(text), 'req-1');
}

describe('upstream rewrite: openai', () => {
  it('targets the endpoint base path, sends the provider credential as Bearer, and routes by scheme', () => {
    const r = rewrite('gpt-4o', '{"model":"gpt-4o","messages":[]}');
    const h = headersOf(r);
    assert.equal(h[':authority'], 'api.openai.test');
    assert.equal(h[':path'], '/v1/chat/completions', 'trailing slash of the endpoint is not doubled');
    assert.equal(h[ROUTE_HEADER], 'https');
    assert.equal(h['authorization'], 'Bearer sk-provider-openai');
    assert.equal(h['x-request-id'], 'req-1');
    assert.deepEqual([...r.removeHeaders].sort(), ['api-key', 'x-amz-security-token', 'x-api-key', 'x-goog-api-key'], 'other credential headers are stripped');
  });
  it('sends the body unchanged (no content-length rewrite) when the model name is the same upstream', () => {
    const r = rewrite('gpt-4o', '{"model":"gpt-4o"}');
    assert.equal(r.body, undefined);
    assert.equal(headersOf(r)['content-length'], undefined);
  });
  it('sends a body a pipeline step rewrote (stream_options added) even when the model name is the same upstream', () => {
    const b = body('{"model":"gpt-4o","stream":true}');
    const raw = Buffer.from('{"stream_options":{"include_usage":true},"model":"gpt-4o","stream":true}');
    const r = buildRewrite(routeFor('gpt-4o'), 'chat/completions', { ...b, raw, rewritten: true }, 'req-1');
    assert.deepEqual(r.body, raw);
    assert.equal(headersOf(r)['content-length'], String(raw.length));
  });
  it('patches the upstream model name into the body bytes and sets content-length', () => {
    const text = '{"model":"fast","messages":[{"role":"user","content":"héllo"}]}';
    const r = rewrite('fast', text);
    assert.ok(r.body);
    assert.equal(r.body.toString('utf8'), text.replace('"fast"', '"gpt-4o-mini"'));
    assert.equal(headersOf(r)['content-length'], String(r.body.length), 'byte length, not character length');
    assert.notEqual(r.body.length, r.body.toString('utf8').length);
  });
  it('uses the embeddings path for embeddings', () => {
    assert.equal(headersOf(rewrite('gpt-4o', '{"model":"gpt-4o","input":"x"}', 'embeddings'))[':path'], '/v1/embeddings');
  });
});

describe('upstream rewrite: azure-openai', () => {
  it('puts the deployment in the path with api-version, and the credential in api-key', () => {
    const r = rewrite('az-4o', '{"model":"az-4o","messages":[]}');
    const h = headersOf(r);
    assert.equal(h[':authority'], 'my-res.openai.azure.test');
    assert.equal(h[':path'], '/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-06-01');
    assert.equal(h['api-key'], 'azure-provider-key');
    assert.equal(h['authorization'], undefined);
    assert.deepEqual([...r.removeHeaders].sort(), ['authorization', 'x-amz-security-token', 'x-api-key', 'x-goog-api-key'], 'the client bearer token never goes to Azure');
    assert.equal(JSON.parse(r.body!.toString()).model, 'prod-gpt4o');
  });
  it('sends the Responses API to /openai/responses with the deployment as the body model (preview api-version by default)', () => {
    const r = rewrite('az-default', '{"model":"az-default","input":"x"}', 'responses');
    assert.equal(headersOf(r)[':path'], '/base/openai/responses?api-version=2025-04-01-preview');
    assert.equal(JSON.parse(r.body!.toString()).model, 'dep');
    assert.equal(headersOf(rewrite('az-4o', '{"model":"az-4o","input":"x"}', 'responses'))[':path'], '/openai/responses?api-version=2024-06-01', "the provider's apiVersion when set");
  });
  it('defaults api-version and keeps the endpoint base path', () => {
    const h = headersOf(rewrite('az-default', '{"model":"az-default","input":"x"}', 'embeddings'));
    assert.equal(h[':path'], '/base/openai/deployments/dep/embeddings?api-version=2024-10-21');
  });
});

describe('upstream rewrite: openai-compatible', () => {
  it('sends no credential when none is configured and strips every client credential header', () => {
    const r = rewrite('llama', '{"model":"llama","messages":[]}');
    const h = headersOf(r);
    assert.equal(h[':authority'], 'vllm.ml.svc:8000');
    assert.equal(h[':path'], '/v1/chat/completions');
    assert.equal(h[ROUTE_HEADER], 'http');
    assert.equal(h['authorization'], undefined);
    assert.deepEqual([...r.removeHeaders].sort(), ['api-key', 'authorization', 'x-amz-security-token', 'x-api-key', 'x-goog-api-key']);
    assert.equal(JSON.parse(r.body!.toString()).model, 'meta-llama/Llama-3.1-8B-Instruct');
  });
});
