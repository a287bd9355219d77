/**
 * Tenants by domain through real Envoy with the official openai client: keys bound to hostnames
 * (401 elsewhere, as if they did not exist), per-host model mappings and guardrails, and the
 * tenant in metrics and the access log.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
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

const LIST_KEYS = { any: 'sk-list-any-0004', shop: 'sk-list-shop-0005' } as const;

const LIST_FILES = {
  'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  modelMappings: { fast: gpt-4o-mini }
  tenants:
    - { name: shop, hosts: [shop.example.test], modelMappings: { fast: gpt-4o, shop-large: llama-3, llama-3: retired } }
    - { name: lab, hosts: ["*.lab.example.test"], modelMappings: { fast: llama-3 } }
`,
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }, { name: gpt-4o }, { name: llama-3 }]
`,
  'keys.yaml': key('list-any', LIST_KEYS.any, '') + key('list-shop', LIST_KEYS.shop, '  hosts: [shop.example.test]\n  models: [gpt-4o]\n'),
};

describe('tenants by domain: GET /v1/models lists what the host accepts', () => {
  let stack: Stack;
  const client = (k: string, host: string): OpenAI =>
    new OpenAI({ baseURL: `${stack.baseUrl}/v1`, apiKey: k, maxRetries: 0, timeout: 30_000, fetch: fetchWithHost(host) });
  const list = async (k: string, host: string): Promise<string[]> => (await client(k, host).models.list()).data.map((m) => m.id);
  const ask = (k: string, host: string, model: string) => client(k, host).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
  const upstreamModel = (): unknown => (stack.fakes.primary?.received('/chat/completions').at(-1)?.body as { model?: unknown } | undefined)?.model;

  before(async () => {
    stack = await startStack({ files: LIST_FILES, fakes: { primary: {} } });
  });
  after(() => stack?.stop());

  it("lists each tenant's own aliases, without what the tenant hides, and the global names elsewhere", async () => {
    assert.deepEqual(await list(LIST_KEYS.any, 'shop.example.test'), ['fast', 'gpt-4o', 'gpt-4o-mini', 'shop-large']);
    assert.deepEqual(await list(LIST_KEYS.any, 'eu.lab.example.test:8443'), ['fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3']);
    assert.deepEqual(await list(LIST_KEYS.any, 'elsewhere.test'), ['fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3']);
    // The key's allow-list still filters, on the name after the host's mapping.
    assert.deepEqual(await list(LIST_KEYS.shop, 'shop.example.test'), ['fast', 'gpt-4o']);
  });

  it('every listed model answers a chat on that host, with the host mapping; unlisted ones are refused', async () => {
    const expected: Record<string, Record<string, string>> = {
      'shop.example.test': { fast: 'gpt-4o', 'gpt-4o': 'gpt-4o', 'gpt-4o-mini': 'gpt-4o-mini', 'shop-large': 'llama-3' },
      'x.lab.example.test': { fast: 'llama-3', 'gpt-4o': 'gpt-4o', 'gpt-4o-mini': 'gpt-4o-mini', 'llama-3': 'llama-3' },
    };
    for (const [host, models] of Object.entries(expected)) {
      const listed = await list(LIST_KEYS.any, host);
      assert.deepEqual(listed, Object.keys(models).sort(), host);
      for (const model of listed) {
        const answer = await ask(LIST_KEYS.any, host, model);
        assert.equal(typeof answer.choices[0]?.message.content, 'string', `${model} on ${host}`);
        assert.equal(upstreamModel(), models[model], `${model} on ${host} goes upstream as`);
      }
    }
    // Hidden by the shop tenant (mapped to a name nobody serves) and the shop's alias on another host: unknown.
    await assertSdkError(ask(LIST_KEYS.any, 'shop.example.test', 'llama-3'), 404, 'model_not_found');
    await assertSdkError(ask(LIST_KEYS.any, 'x.lab.example.test', 'shop-large'), 404, 'model_not_found');
    // Served but outside the key's allow-list: not listed, and refused as such.
    await assertSdkError(ask(LIST_KEYS.shop, 'shop.example.test', 'gpt-4o-mini'), 403, 'model_not_allowed');
    await ask(LIST_KEYS.shop, 'shop.example.test', 'fast');
  });

  it('refuses a key bound to other hosts with 401, as for chat', async () => {
    const wrongHost = await assertSdkError(list(LIST_KEYS.shop, 'x.lab.example.test'), 401, 'invalid_api_key');
    const unknown = await assertSdkError(list('sk-not-a-key-at-all', 'x.lab.example.test'), 401, 'invalid_api_key');
    assert.equal(wrongHost.message, unknown.message);
  });

  it("the Anthropic SDK pages through the same per-host list; both SDKs' retrieve follow the host's rules", async () => {
    const anthropic = (k: string, host: string): Anthropic =>
      new Anthropic({ baseURL: stack.baseUrl, apiKey: k, maxRetries: 0, timeout: 30_000, fetch: fetchWithHost(host) });
    for (const [k, host] of [
      [LIST_KEYS.any, 'shop.example.test'],
      [LIST_KEYS.any, 'eu.lab.example.test:8443'],
      [LIST_KEYS.any, 'elsewhere.test'],
      [LIST_KEYS.shop, 'shop.example.test'],
    ] as const) {
      const names: string[] = [];
      for await (const m of anthropic(k, host).models.list({ limit: 1 })) names.push(m.id);
      assert.deepEqual(names, await list(k, host), `${k} on ${host}`);
    }
    const notFound = (err: unknown): boolean => err instanceof Anthropic.NotFoundError && err.type === 'not_found_error';
    assert.equal((await anthropic(LIST_KEYS.any, 'shop.example.test').models.retrieve('shop-large')).id, 'shop-large');
    await assert.rejects(anthropic(LIST_KEYS.any, 'x.lab.example.test').models.retrieve('shop-large'), notFound, "the shop's alias elsewhere");
    await assert.rejects(anthropic(LIST_KEYS.any, 'shop.example.test').models.retrieve('llama-3'), notFound, 'hidden by the shop tenant');
    await assert.rejects(anthropic(LIST_KEYS.shop, 'shop.example.test').models.retrieve('gpt-4o-mini'), notFound, "outside the key's allow-list");
    assert.equal((await client(LIST_KEYS.any, 'shop.example.test').models.retrieve('shop-large')).id, 'shop-large');
    await assertSdkError(client(LIST_KEYS.any, 'x.lab.example.test').models.retrieve('shop-large'), 404, 'model_not_found');
    // A key bound to other hosts does not exist here, for either client.
    await assert.rejects(anthropic(LIST_KEYS.shop, 'x.lab.example.test').models.list(), (err: unknown) => err instanceof Anthropic.AuthenticationError && err.type === 'authentication_error');
    await assert.rejects(anthropic(LIST_KEYS.shop, 'x.lab.example.test').models.retrieve('gpt-4o'), (err: unknown) => err instanceof Anthropic.AuthenticationError);
    await assertSdkError(client(LIST_KEYS.shop, 'x.lab.example.test').models.retrieve('gpt-4o'), 401, 'invalid_api_key');
  });
});
