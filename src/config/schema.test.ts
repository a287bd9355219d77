/**
 * Keeps the TypeScript resource types (types.ts) and the OpenAPI schemas (schema.ts, the source of
 * the CRDs) in agreement: the field lists below must name exactly the keys of each type (the
 * compiler enforces that), and the test checks they are exactly the schema's properties.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeySpecSchema, gatewayConfigSpecSchema, mcpServerSpecSchema, modelProviderSpecSchema, type Schema } from './schema.js';
import { MCP_TRANSPORTS, PROVIDER_TYPES, type ApiKeySpec, type MCPServerSpec, type ModelPricing, type KeyLimits, type GatewayConfigSpec, type ModelProviderSpec, type ProviderModel, type SecretKeyRef } from './types.js';

const providerFields = {
  type: true, endpoint: true, credentialSecretRef: true, apiVersion: true, region: true, priority: true, weight: true, models: true,
  firstByteTimeoutSeconds: true, service: true,
} satisfies Record<keyof ModelProviderSpec, true>;
const providerModelFields = { name: true, upstreamModel: true, limits: true, pricing: true, maxTokens: true, reasoningTags: true, parameters: true } satisfies Record<keyof ProviderModel, true>;
const apiKeyFields = {
  keyHash: true, secretRef: true, description: true, models: true, modelMappings: true, disabled: true, expiresAt: true,
  limits: true, parent: true, accountOnly: true, allowedCidrs: true, guardrails: true, hosts: true, mcp: true,
} satisfies Record<keyof ApiKeySpec, true>;
const gatewayConfigFields = { modelMappings: true, resilience: true, guardrails: true, pricing: true, tenants: true } satisfies Record<keyof GatewayConfigSpec, true>;
const pricingFields = { currency: true, input: true, output: true, cachedInputRead: true, cachedInputWrite: true, reasoning: true } satisfies Record<keyof ModelPricing, true>;
const keyLimitFields = {
  requestsPerMinute: true, requestsPerDay: true, tokensPerMinute: true, tokensPerDay: true, tokensPerMonth: true, costPerMonth: true, costPerDay: true,
  perModel: true, monthTimeZone: true, midStreamPolicy: true, toolCallsPerMinute: true, toolCallsPerDay: true, toolCallsPerMonth: true,
} satisfies Record<keyof KeyLimits, true>;
const mcpServerFields = {
  url: true, service: true, transport: true, credential: true, timeoutSeconds: true, maxTotalTimeoutSeconds: true, tools: true, httpTools: true,
  description: true, owner: true, tags: true,
} satisfies Record<keyof MCPServerSpec, true>;
const secretRefFields = { name: true, key: true } satisfies Record<keyof SecretKeyRef, true>;

function props(schema: Schema | undefined): string[] {
  return Object.keys(schema?.properties ?? {}).sort();
}

describe('types.ts and schema.ts agree', () => {
  it('ModelProvider spec', () => {
    assert.deepEqual(props(modelProviderSpecSchema), Object.keys(providerFields).sort());
    assert.deepEqual(props(modelProviderSpecSchema.properties?.['models']?.items), Object.keys(providerModelFields).sort());
    assert.deepEqual(props(modelProviderSpecSchema.properties?.['credentialSecretRef']), Object.keys(secretRefFields).sort());
    assert.deepEqual(modelProviderSpecSchema.properties?.['type']?.enum, PROVIDER_TYPES);
    assert.deepEqual(props(modelProviderSpecSchema.properties?.['models']?.items?.properties?.['pricing']), Object.keys(pricingFields).sort());
  });
  it('ApiKey limits (token and money budgets)', () => {
    assert.deepEqual(props(apiKeySpecSchema.properties?.['limits']), Object.keys(keyLimitFields).sort());
  });
  it('ApiKey spec', () => {
    assert.deepEqual(props(apiKeySpecSchema), Object.keys(apiKeyFields).sort());
    assert.deepEqual(props(apiKeySpecSchema.properties?.['secretRef']), Object.keys(secretRefFields).sort());
  });
  it('MCPServer spec', () => {
    assert.deepEqual(props(mcpServerSpecSchema), Object.keys(mcpServerFields).sort());
    assert.deepEqual(mcpServerSpecSchema.properties?.['transport']?.enum, MCP_TRANSPORTS);
  });
  it('GatewayConfig spec', () => {
    assert.deepEqual(props(gatewayConfigSpecSchema), Object.keys(gatewayConfigFields).sort());
  });
});
