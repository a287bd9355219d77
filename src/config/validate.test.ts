import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeySpecSchema, gatewayConfigSpecSchema, mcpServerSpecSchema, modelProviderSpecSchema } from './schema.js';
import { CEL_RULES, validate } from './validate.js';

function issues(value: unknown, schema = modelProviderSpecSchema): string[] {
  return validate(value, schema, 'spec').map((i) => `${i.field}: ${i.message}`);
}

const goodProvider = { type: 'openai', endpoint: 'https://api.openai.com/v1', models: [{ name: 'gpt-4o' }] };

describe('schema validation', () => {
  it('accepts a valid ModelProvider', () => {
    assert.deepEqual(issues(goodProvider), []);
  });
  it('reports missing required fields with their path', () => {
    assert.deepEqual(issues({ type: 'openai' }), ['spec.endpoint: is required', 'spec.models: is required']);
  });
  it('reports wrong types, enums, patterns and ranges with their path', () => {
    const got = issues({
      type: 'palm',
      endpoint: 'ftp://x',
      priority: 1.5,
      weight: 0,
      models: [{ name: 'gpt 4' }, { name: 'ok', upstreamModel: 7 }],
    });
    assert.deepEqual(got, [
      'spec.type: must be one of: openai, azure-openai, openai-compatible, anthropic, aws-bedrock, gemini, gcp-vertex-ai',
      'spec.endpoint: must match ^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
      'spec.endpoint: endpoint must be an absolute http:// or https:// URL',
      'spec.priority: must be an integer',
      'spec.weight: must be >= 1',
      'spec.models[0].name: must match ^[A-Za-z0-9._:/@+-]+$',
      'spec.models[1].upstreamModel: must be a string',
    ]);
  });
  it('refuses unknown fields instead of silently ignoring them', () => {
    assert.deepEqual(issues({ ...goodProvider, wieght: 3 }), ['spec.wieght: unknown field']);
    assert.deepEqual(issues({ ...goodProvider, models: [{ name: 'a', upstream: 'b' }] }), ['spec.models[0].upstream: unknown field']);
  });
  it('refuses an empty model list and duplicate model names', () => {
    assert.deepEqual(issues({ ...goodProvider, models: [] }), ['spec.models: must have at least 1 item(s)']);
    assert.deepEqual(issues({ ...goodProvider, models: [{ name: 'a' }, { name: 'a' }] }), ['spec.models[1]: duplicate entry "a"']);
  });
  it('checks expiresAt as an RFC 3339 date-time', () => {
    const base = { keyHash: 'sha256:' + 'a'.repeat(64) };
    assert.deepEqual(issues({ ...base, expiresAt: '2026-12-31T23:59:59Z' }, apiKeySpecSchema), []);
    assert.deepEqual(issues({ ...base, expiresAt: 'tomorrow' }, apiKeySpecSchema), [
      'spec.expiresAt: must be an RFC 3339 date-time, for example 2026-12-31T23:59:59Z',
    ]);
    assert.deepEqual(issues({ ...base, expiresAt: '2026-13-45T00:00:00Z' }, apiKeySpecSchema).length, 1);
  });
  it('checks keyHash format', () => {
    assert.deepEqual(issues({ keyHash: 'sk-live-in-clear' }, apiKeySpecSchema), ['spec.keyHash: must match ^sha256:[0-9a-f]{64}$']);
  });
});

describe('CEL rules (same rule text and messages as the CRD)', () => {
  it('ApiKey: exactly one of keyHash and secretRef', () => {
    const both = { keyHash: 'sha256:' + 'a'.repeat(64), secretRef: { name: 's', key: 'k' } };
    const rule = /^spec: exactly one of keyHash and secretRef must be set/;
    assert.equal(issues(both, apiKeySpecSchema).length, 1);
    assert.match(issues(both, apiKeySpecSchema)[0]!, rule);
    assert.equal(issues({ description: 'none' }, apiKeySpecSchema).length, 1);
    assert.match(issues({ description: 'none' }, apiKeySpecSchema)[0]!, rule);
    assert.deepEqual(issues({ secretRef: { name: 's', key: 'k' } }, apiKeySpecSchema), []);
  });
  it('MCPServer: maxTotalTimeoutSeconds is not below timeoutSeconds', () => {
    const base = { url: 'http://mcp.tools:8080/mcp' };
    assert.deepEqual(issues({ ...base, timeoutSeconds: 30, maxTotalTimeoutSeconds: 10 }, mcpServerSpecSchema), ['spec: maxTotalTimeoutSeconds must be at least timeoutSeconds']);
    assert.deepEqual(issues({ ...base, timeoutSeconds: 30, maxTotalTimeoutSeconds: 30 }, mcpServerSpecSchema), []);
    assert.deepEqual(issues({ ...base, maxTotalTimeoutSeconds: 5 }, mcpServerSpecSchema), [], 'timeoutSeconds unset: checked when the default applies (buildMcpConfig)');
    assert.deepEqual(issues({ ...base, maxTotalTimeoutSeconds: 0 }, mcpServerSpecSchema), ['spec.maxTotalTimeoutSeconds: must be >= 1']);
  });
  it('mapping keys: model names or * patterns only; targets: plain names', () => {
    const ok = { modelMappings: { 'gpt-4*': 'gpt-4o', '*-mini': 'gpt-4o-mini', 'a*b*c': 'x', fast: 'meta-llama/Llama-3.1-8B' } };
    assert.deepEqual(issues(ok, gatewayConfigSpecSchema), []);
    assert.deepEqual(issues({ modelMappings: { 'gpt-4?': 'gpt-4o' } }, gatewayConfigSpecSchema), [
      'spec.modelMappings: mapping keys must be model names or wildcard patterns (letters, digits, ._:/@+- and *)',
    ]);
    assert.deepEqual(issues({ modelMappings: { 'gpt 4': 'gpt-4o' } }, gatewayConfigSpecSchema).length, 1);
    assert.deepEqual(issues({ modelMappings: { fast: 'gpt-4*' } }, gatewayConfigSpecSchema), [
      'spec.modelMappings.fast: must match ^[A-Za-z0-9._:/@+-]+$',
    ]);
    assert.deepEqual(
      issues({ secretRef: { name: 's', key: 'k' }, modelMappings: { 'gpt-[4]': 'x' } }, apiKeySpecSchema),
      ['spec.modelMappings: mapping keys must be model names or wildcard patterns (letters, digits, ._:/@+- and *)'],
    );
  });
  it('every CEL rule in the schemas has a hand implementation', () => {
    const rules: string[] = [];
    const walk = (s: unknown): void => {
      if (typeof s !== 'object' || s === null) return;
      const v = (s as { 'x-kubernetes-validations'?: { rule: string }[] })['x-kubernetes-validations'];
      for (const r of v ?? []) rules.push(r.rule);
      for (const child of Object.values(s)) walk(child);
    };
    walk([modelProviderSpecSchema, apiKeySpecSchema, gatewayConfigSpecSchema]);
    assert.ok(rules.length >= 2);
    for (const r of rules) assert.ok(CEL_RULES.has(r), `no implementation for ${r}`);
  });
});
