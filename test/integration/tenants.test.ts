/**
 * Tenants by domain through real Envoy with the official openai client: keys bound to hostnames
 * (401 elsewhere, as if they did not exist), per-host model mappings and guardrails, and the
 * tenant in metrics and the access log.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { hashKey } from '../../src/config/snapshot.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

/**
 * A fetch for the openai client that sends this Host header (the platform fetch always sends the
 * URL's own host), over node:http, streaming the answer.
 */
function fetchWithHost(host: string): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    headers['host'] = host;
    const body = typeof init?.body === 'string' ? init.body : undefined;
    return new Promise<Response>((resolve, reject) => {
      const req = httpRequest({ hostname: url.hostname, port: url.port, path: url.pathname + url.search, method: init?.method ?? 'GET', headers }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
        resolve(new Response(Readable.toWeb(res) as ReadableStream, { status: res.statusCode ?? 0, headers: h }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }) as typeof fetch;
}

const KEYS = { a: 'sk-tenant-a-0001', b: 'sk-tenant-b-0002', any: 'sk-tenant-any-0003' } as const;

const key = (name: string, secret: string, extra: string): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n  keyHash: "${hashKey(secret)}"\n${extra}---\n`;

const FILES = {
  'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  modelMappings: { fast: gpt-4o-mini }
  guardrails:
    - { name: b-words, keywords: { action: block, words: [badword] } }
  tenants:
    - { name: tenant-a, hosts: [a.example.test], modelMappings: { fast: gpt-4o-mini } }
    - { name: tenant-b, hosts: [b.example.test, "*.b.example.test"], modelMappings: { fast: gpt-4o }, guardrails: [b-words] }
`,
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }, { name: gpt-4o }]
`,
  'keys.yaml':
    key('key-a', KEYS.a, '  hosts: [a.example.test]\n') + key('key-b', KEYS.b, '  hosts: ["*.b.example.test", b.example.test]\n') + key('key-any', KEYS.any, ''),
};

describe('tenants by domain', () => {
  let stack: Stack;
  const client = (k: string, host: string): OpenAI =>
    new OpenAI({ baseURL: `${stack.baseUrl}/v1`, apiKey: k, maxRetries: 0, timeout: 30_000, fetch: fetchWithHost(host) });
  const ask = (k: string, host: string, model = 'gpt-4o-mini', content = 'hi') => client(k, host).chat.completions.create({ model, messages: [{ role: 'user', content }] });
  const upstreamModel = (): unknown => (stack.fakes.primary?.received('/chat/completions').at(-1)?.body as { model?: unknown } | undefined)?.model;

  before(async () => {
    stack = await startStack({ files: FILES, fakes: { primary: {} } });
  });
  after(() => stack?.stop());

  it("serves a key on its own hosts and refuses it on another tenant's host with 401, as an unknown key", async () => {
    await ask(KEYS.a, 'a.example.test');
    await ask(KEYS.b, 'b.example.test');
    await ask(KEYS.b, 'eu.b.example.test:8080');
    const wrongHost = await assertSdkError(ask(KEYS.a, 'b.example.test'), 401, 'invalid_api_key');
    const unknown = await assertSdkError(ask('sk-not-a-key-at-all', 'b.example.test'), 401, 'invalid_api_key');
    assert.equal(wrongHost.message, unknown.message);
    await assertSdkError(ask(KEYS.b, 'a.example.test'), 401, 'invalid_api_key');
    await assertSdkError(ask(KEYS.a, '127.0.0.1'), 401, 'invalid_api_key');
    await ask(KEYS.any, 'elsewhere.test');
  });

  it("maps models with the host's tenant mapping, the global one elsewhere", async () => {
    await ask(KEYS.any, 'a.example.test', 'fast');
    assert.equal(upstreamModel(), 'gpt-4o-mini');
    await ask(KEYS.any, 'x.b.example.test', 'fast');
    assert.equal(upstreamModel(), 'gpt-4o');
    await ask(KEYS.any, 'elsewhere.test', 'fast');
    assert.equal(upstreamModel(), 'gpt-4o-mini');
  });

  it("applies the tenant's guardrails on its hosts only", async () => {
    await assertSdkError(ask(KEYS.any, 'b.example.test', 'gpt-4o-mini', 'a badword'), 400, 'content_policy_violation');
    await ask(KEYS.any, 'a.example.test', 'gpt-4o-mini', 'a badword');
  });

  it('counts requests by tenant and logs the tenant', async () => {
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_tenant_requests_total\{tenant="tenant-b",consumer="default\/key-b",status="200"\} 2\b/);
    assert.match(metrics, /tollgate_tenant_requests_total\{tenant="tenant-b",consumer="-",status="401"\} 2\b/);
    // The access log is written asynchronously: wait for the lines.
    await waitFor('access log lines with the tenant', async () => (await stack.logs()).filter((l) => l['msg'] === 'request' && l['tenant'] === 'tenant-a').length >= 3, 10_000);
  });
});
