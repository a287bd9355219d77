import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CRD_SPECS, buildCrd, renderAllCrds } from './crd.js';
import { CRD_DIRS } from './gen-crds.js';
import { apiKeySpecSchema, mcpServerSpecSchema, modelProviderSpecSchema, type Schema } from './schema.js';
import type { ApiKeySpec, MCPServerSpec, ModelProviderSpec } from './types.js';
import { validate } from './validate.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every optional field made required, recursively: an example of this type sets every field. */
type Full<T> = T extends readonly (infer U)[] ? readonly Full<U>[] : T extends object ? { readonly [K in keyof T]-?: Full<T[K]> } : T;

// Examples that set every field of the TypeScript types. They must validate against the schema
// (so no TS field is missing from the schema) and must touch every schema property (so no schema
// field is missing from the TS type): together, types.ts and schema.ts cannot drift.
const fullProvider: Full<ModelProviderSpec> = {
  type: 'azure-openai',
  endpoint: 'https://example.openai.azure.com/openai',
  credentialSecretRef: { name: 'azure', key: 'api-key' },
  apiVersion: '2024-10-21',
  region: 'eu-central-1',
  priority: 1,
  weight: 2,
  models: [
    {
      name: 'gpt-4o',
      upstreamModel: 'prod-gpt-4o',
      limits: { requestsPerMinute: 1, requestsPerDay: 2, tokensPerMinute: 3, tokensPerDay: 4 },
      pricing: { currency: 'USD', input: '2.50', output: '10', cachedInputRead: '1.25', cachedInputWrite: '3.125', reasoning: '10.000000' },
      maxTokens: 8192,
      reasoningTags: 'extract',
      // Maps stay empty here: their keys are user data, not schema fields.
      parameters: { drop: ['temperature'], rename: {}, defaults: {} },
    },
  ],
  firstByteTimeoutSeconds: 30,
  service: { name: 'vllm', port: 8000 },
};
const budget = { requestsPerMinute: 1, requestsPerDay: 2, tokensPerMinute: 3, tokensPerDay: 4, tokensPerMonth: 5, costPerMonth: '500.00', costPerDay: '20' };
const fullKey: Full<Omit<ApiKeySpec, 'secretRef'>> & Pick<Full<ApiKeySpec>, 'secretRef'> = {
  keyHash: `sha256:${'0'.repeat(64)}`,
  secretRef: { name: 'k', key: 'key' },
  description: 'team a',
  models: ['gpt-4*'],
  modelMappings: { fast: 'gpt-4o-mini' },
  disabled: false,
  expiresAt: '2030-01-01T00:00:00Z',
  parent: 'team-a',
  accountOnly: false,
  allowedCidrs: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'],
  guardrails: ['pii'],
  hosts: ['api.team-a.example.com', '*.team-a.example.com'],
  limits: {
    ...budget,
    perModel: [{ model: 'gpt-4*', ...budget }],
    monthTimeZone: 'Europe/Berlin',
    midStreamPolicy: 'finish',
    toolCallsPerMinute: 6,
    toolCallsPerDay: 100,
    toolCallsPerMonth: 1000,
  },
  mcp: { servers: ['search', 'team-*'], tools: ['search__*', '*__get_*'] },
};
// Without url (exclusive with service); inputSchema and headers are free-form maps.
const fullMcpServer: Full<Omit<MCPServerSpec, 'url'>> = {
  service: { name: 'search', port: 8080, path: '/mcp' },
  transport: 'sse',
  credential: { secretRef: { name: 'search', key: 'token' }, header: 'X-Api-Key' },
  timeoutSeconds: 10,
  maxTotalTimeoutSeconds: 900,
  tools: { include: ['search'], includeRegex: ['^get_'], exclude: ['delete'], excludeRegex: ['^admin_'] },
  httpTools: [
    {
      name: 'weather',
      description: 'Weather for a city',
      inputSchema: { type: 'object' },
      method: 'POST',
      url: 'http://weather.tools/api/{{city}}',
      headers: { 'x-city': '{{city}}' },
      body: '{"city": {{city}}}',
      response: { format: 'json' },
    },
  ],
  description: 'Web search',
  owner: 'team-search',
  tags: ['search'],
};

/** Paths of every property declared in a schema (objects and array items). */
function schemaPaths(schema: Schema, prefix: string, out: string[]): string[] {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    out.push(path);
    schemaPaths(child.items ?? child, path, out);
  }
  return out;
}
function valuePaths(value: unknown, prefix: string, out: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const v of value) valuePaths(v, prefix, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${k}` : k;
      out.add(path);
      valuePaths(v, path, out);
    }
  }
  return out;
}

describe('CRDs', () => {
  it('crds/ and the chart copy are what `npm run gen:crds` writes from schema.ts', async () => {
    for (const dir of CRD_DIRS) {
      for (const [name, text] of renderAllCrds()) {
        const onDisk = await readFile(join(ROOT, dir, name), 'utf8').catch(() => '(missing)');
        assert.ok(onDisk === text, `${dir}/${name} is stale: run npm run gen:crds`);
      }
    }
  });

  it('has a status subresource, short names and a Ready printer column for each kind', () => {
    for (const spec of CRD_SPECS) {
      const crd = JSON.stringify(buildCrd(spec));
      assert.match(crd, /"subresources":\{"status":\{\}\}/);
      assert.ok(spec.shortNames.length > 0);
      assert.ok(spec.printerColumns.some((c) => c.name === 'Ready'));
      assert.match(crd, /"observedGeneration"/);
    }
  });

  it('ModelProvider: the TypeScript type and the schema declare the same fields', () => {
    assert.deepEqual(validate(fullProvider, modelProviderSpecSchema, 'spec'), []);
    assert.deepEqual(schemaPaths(modelProviderSpecSchema, '', []).sort(), [...valuePaths(fullProvider, '', new Set())].sort());
  });

  it('ApiKey: the TypeScript type and the schema declare the same fields', () => {
    const { secretRef, ...hashOnly } = fullKey;
    assert.deepEqual(validate(hashOnly, apiKeySpecSchema, 'spec'), []);
    assert.deepEqual(
      validate({ ...fullKey }, apiKeySpecSchema, 'spec').map((i) => i.message),
      ['exactly one of keyHash and secretRef must be set (neither when accountOnly is true)'],
    );
    assert.ok(secretRef);
    const schemaFields = schemaPaths(apiKeySpecSchema, '', []).filter((p) => !p.startsWith('modelMappings.'));
    assert.deepEqual(schemaFields.sort(), [...valuePaths(fullKey, '', new Set())].filter((p) => !p.startsWith('modelMappings.')).sort());
  });

  it('MCPServer: the TypeScript type and the schema declare the same fields', () => {
    assert.deepEqual(validate(fullMcpServer, mcpServerSpecSchema, 'spec'), []);
    const schemaFields = schemaPaths(mcpServerSpecSchema, '', []).filter((p) => p !== 'url');
    const free = (p: string): boolean => p.startsWith('httpTools.inputSchema.') || p.startsWith('httpTools.headers.');
    assert.deepEqual(schemaFields.sort(), [...valuePaths(fullMcpServer, '', new Set())].filter((p) => !free(p)).sort());
  });

  it('MCPServer: url and service exclude each other, one upstream or httpTools is required, tool names have no "__"', () => {
    const msgs = (spec: unknown): string[] => validate(spec, mcpServerSpecSchema, 'spec').map((i) => i.message);
    assert.deepEqual(msgs({ url: 'http://a/mcp', service: { name: 'a', port: 1 } }), ['url and service are mutually exclusive']);
    assert.deepEqual(msgs({ description: 'x' }), ['set url or service (an MCP upstream), or httpTools']);
    assert.deepEqual(msgs({ httpTools: [{ name: 'a__b', url: 'http://x/' }] }), ['tool names must not contain "__" (the server__tool separator)']);
    assert.deepEqual(msgs({ url: 'http://a/mcp', transport: 'websocket' }), ['must be one of: streamable-http, sse']);
  });

  it('file mode refuses a non-http endpoint with the same message as the CEL rule', () => {
    const issues = validate({ ...fullProvider, endpoint: 'ftp://x/v1' }, modelProviderSpecSchema, 'spec');
    assert.ok(issues.some((i) => i.message === 'endpoint must be an absolute http:// or https:// URL'));
  });
});
