/**
 * IP allow-lists per key (ApiKey allowedCidrs) through real Envoy: the client address is the one
 * Envoy determines (the TCP peer, or with xff_num_trusted_hops the X-Forwarded-For entry that many
 * hops from the right), so a forged X-Forwarded-For never gets a request through.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { assertSdkError } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEYS = {
  local: 'sk-ip-local-0001', // 127.0.0.0/8
  elsewhere: 'sk-ip-elsewhere-0002', // 203.0.113.0/24 (a client could claim it in X-Forwarded-For)
  proxied: 'sk-ip-proxied-0003', // 198.51.100.0/24
  v6: 'sk-ip-v6-0004', // 2001:db8::/32
  wideChild: 'sk-ip-wide-child-0005', // 0.0.0.0/0 under an account allowing only 10.0.0.0/8
  open: 'sk-ip-open-0006', // no list
} as const;

function files(): Record<string, string> {
  const key = (name: string, secret: string, extra: string): string => `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: ${name} }
spec:
  keyHash: "${secret}"
${extra}---
`;
  const hash = (k: string): string => `HASH:${k}`;
  return {
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }]
`,
    'keys.yaml':
      key('local', hash(KEYS.local), '  allowedCidrs: ["127.0.0.0/8", "::1"]\n') +
      key('elsewhere', hash(KEYS.elsewhere), '  allowedCidrs: ["203.0.113.0/24"]\n') +
      key('proxied', hash(KEYS.proxied), '  allowedCidrs: ["198.51.100.0/24"]\n') +
      key('v6', hash(KEYS.v6), '  allowedCidrs: ["2001:db8::/32"]\n') +
      `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: account }
spec:
  accountOnly: true
  allowedCidrs: ["10.0.0.0/8"]
---
` +
      key('wide-child', hash(KEYS.wideChild), '  parent: account\n  allowedCidrs: ["0.0.0.0/0"]\n') +
      key('open', hash(KEYS.open), ''),
  };
}

async function withHashes(f: Record<string, string>): Promise<Record<string, string>> {
  const { hashKey } = await import('../../src/config/snapshot.js');
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(f)) out[name] = text.replace(/HASH:([A-Za-z0-9-]+)/g, (_, k: string) => hashKey(k));
  return out;
}

function client(stack: Stack, key: string, xff?: string): OpenAI {
  return new OpenAI({
    baseURL: `${stack.baseUrl}/v1`,
    apiKey: key,
    maxRetries: 0,
    timeout: 30_000,
    ...(xff ? { defaultHeaders: { 'x-forwarded-for': xff } } : {}),
  });
}

const ask = (c: OpenAI): Promise<unknown> => c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('IP allow-lists, no trusted proxy (xff_num_trusted_hops 0)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: await withHashes(files()), fakes: { primary: {} } });
  });
  after(() => stack?.stop());

  it('serves a key from an allowed address and a key without a list', async () => {
    const res = (await ask(client(stack, KEYS.local))) as OpenAI.ChatCompletion;
    assert.ok(res.choices[0]);
    await ask(client(stack, KEYS.open));
  });

  it('refuses a key from elsewhere with 403 ip_not_allowed, and a forged X-Forwarded-For does not help', async () => {
    const before = stack.fakes.primary?.received('/chat/completions').length ?? 0;
    await assertSdkError(ask(client(stack, KEYS.elsewhere)), 403, 'ip_not_allowed');
    await assertSdkError(ask(client(stack, KEYS.elsewhere, '203.0.113.9')), 403, 'ip_not_allowed');
    await assertSdkError(ask(client(stack, KEYS.elsewhere, '127.0.0.1, 203.0.113.9')), 403, 'ip_not_allowed');
    await assertSdkError(ask(client(stack, KEYS.v6, '2001:db8::5')), 403, 'ip_not_allowed');
    // The forged header does not turn an allowed peer into a refused one either: the peer counts.
    await ask(client(stack, KEYS.local, '203.0.113.9'));
    assert.equal(stack.fakes.primary?.received('/chat/completions').length, before + 1, 'refused requests never reach the provider');
  });

  it('holds on the MCP endpoints too, where Envoy passes the address it determined (a client-sent value is overwritten)', async () => {
    const catalog = (key: string, headers: Record<string, string> = {}) =>
      fetch(`${stack.baseUrl}/mcp/catalog`, { headers: { authorization: `Bearer ${key}`, ...headers } }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const refused = await catalog(KEYS.elsewhere, { 'x-tollgate-client-address': '203.0.113.9:1234', 'x-forwarded-for': '203.0.113.9' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /network address/);
    const allowed = await catalog(KEYS.local); // passes the address check; this key has no MCP access at all
    assert.equal(allowed.status, 403);
    assert.match(allowed.text, /no MCP access/);
  });

  it("applies the ancestors' lists too: a child cannot widen its account's list", async () => {
    const err = await assertSdkError(ask(client(stack, KEYS.wideChild)), 403, 'ip_not_allowed');
    assert.doesNotMatch(err.message, /10\.0\.0\.0|127\.0\.0\.1/, 'the message names neither the ranges nor the address');
  });
});

describe('IP allow-lists behind one trusted proxy (xff_num_trusted_hops 1)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: await withHashes(files()), fakes: { primary: {} }, envoy: { xffNumTrustedHops: 1 } });
  });
  after(() => stack?.stop());

  it('uses the address the trusted proxy appended (IPv4 and IPv6)', async () => {
    await ask(client(stack, KEYS.proxied, '198.51.100.1'));
    await ask(client(stack, KEYS.v6, '2001:db8::5'));
    await assertSdkError(ask(client(stack, KEYS.local, '198.51.100.1')), 403, 'ip_not_allowed');
  });

  it('ignores what the client wrote to the left of the proxy entry (a forged X-Forwarded-For)', async () => {
    // The client claims 198.51.100.1; the proxy appended the real address 203.0.113.9.
    await assertSdkError(ask(client(stack, KEYS.proxied, '198.51.100.1, 203.0.113.9')), 403, 'ip_not_allowed');
    await ask(client(stack, KEYS.elsewhere, '198.51.100.1, 203.0.113.9'));
  });
});
