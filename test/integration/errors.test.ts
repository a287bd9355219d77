/**
 * Every refusal the gateway makes, through real Envoy: the right status, the OpenAI error shape,
 * seen both raw and through the official openai client, and the provider never reached.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/dev/local-stack.js';
import { assertOpenAIError, assertSdkError, rawRequest } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

const GOOD = 'sk-test-errors-good';
const DISABLED = 'sk-test-errors-disabled';
const EXPIRED = 'sk-test-errors-expired';
const LIMITED = 'sk-test-errors-limited';
const MAX_BODY = 16 * 1024;

function files(closedPort: number): Record<string, string> {
  const key = (name: string, secretKey: string, extra = ''): string => `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: ${name} }
spec:
  secretRef: { name: client-keys, key: ${secretKey} }
${extra}---
`;
  return {
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  credentialSecretRef: { name: upstream, key: token }
  models: [{ name: gpt-4o-mini }, { name: gpt-4o }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: gone }
spec:
  type: openai-compatible
  endpoint: "http://127.0.0.1:${closedPort}/v1"
  models: [{ name: dead-model }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: slow }
spec:
  type: openai-compatible
  endpoint: "{{FAKE:slow}}"
  firstByteTimeoutSeconds: 1
  models: [{ name: slow-model }]
---
apiVersion: v1
kind: Secret
metadata: { name: upstream }
stringData: { token: sk-upstream-errors }
`,
    // One attempt per request: these tests are about the error a client finally sees.
    'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec: { resilience: { maxAttempts: 1 } }
`,
    'keys.yaml':
      key('good', 'good') +
      key('off', 'off', '  disabled: true\n') +
      // Expired a day before the real now (the gateway compares with its own clock).
      key('old', 'old', `  expiresAt: "${new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z')}"\n`) +
      key('limited', 'limited', '  models: ["gpt-4o-mini"]\n') +
      `apiVersion: v1
kind: Secret
metadata: { name: client-keys }
stringData: { good: ${GOOD}, off: ${DISABLED}, old: ${EXPIRED}, limited: ${LIMITED} }
`,
  };
}

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('errors in the OpenAI shape, through real Envoy', () => {
  let stack: Stack;
  let upstreamBefore = 0;
  before(async () => {
    stack = await startStack({ files: files(await freePort()), fakes: { primary: {}, slow: { latencyMs: 3000 } }, maxBodyBytes: MAX_BODY });
  });
  after(() => stack?.stop());

  const chat = (key: string | undefined, body = CHAT) => rawRequest(stack.baseUrl, '/v1/chat/completions', { ...(key ? { key } : {}), body });
  const sdkChat = (key: string, model = 'gpt-4o-mini') =>
    stack.client(key).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

  it('starts with nothing sent upstream', () => {
    upstreamBefore = stack.fakes['primary']!.requests.length;
    assert.equal(upstreamBefore, 0);
  });

  it('401 missing_api_key without a key', async () => {
    assertOpenAIError(await chat(undefined), 401, 'missing_api_key');
    assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/models'), 401, 'missing_api_key');
  });

  it('401 invalid_api_key for an unknown key', async () => {
    const e = assertOpenAIError(await chat('sk-unknown-key'), 401, 'invalid_api_key');
    assert.ok(!e.message.includes('sk-unknown-key'), 'the key is not echoed');
    await assertSdkError(sdkChat('sk-unknown-key'), 401, 'invalid_api_key');
  });

  it('403 key_disabled and key_expired', async () => {
    assertOpenAIError(await chat(DISABLED), 403, 'key_disabled');
    assertOpenAIError(await chat(EXPIRED), 403, 'key_expired');
    await assertSdkError(sdkChat(DISABLED), 403, 'key_disabled');
    await assertSdkError(sdkChat(EXPIRED), 403, 'key_expired');
  });

  it('403 model_not_allowed for a model outside the key allow-list', async () => {
    await assertSdkError(sdkChat(LIMITED, 'gpt-4o'), 403, 'model_not_allowed');
    assertOpenAIError(await chat(LIMITED, JSON.stringify({ model: 'gpt-4o', messages: [] })), 403, 'model_not_allowed');
  });

  it('404 model_not_found for a model nobody serves', async () => {
    await assertSdkError(sdkChat(GOOD, 'no-such-model'), 404, 'model_not_found');
    // Unknown comes before the allow-list: a restricted key gets 404 too, not 403.
    await assertSdkError(sdkChat(LIMITED, 'no-such-model'), 404, 'model_not_found');
  });

  it('400 invalid_json for a malformed body, and missing_model without a model', async () => {
    assertOpenAIError(await chat(GOOD, '{"model": "gpt-4o-mini", "messages": ['), 400, 'invalid_json');
    assertOpenAIError(await chat(GOOD, '[]'), 400, 'invalid_json');
    assertOpenAIError(await chat(GOOD, JSON.stringify({ messages: [] })), 400, 'missing_model');
    assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: GOOD, method: 'POST' }), 400, 'missing_body');
    // The SDK sends whatever model it is given; an empty one is a missing model.
    await assertSdkError(sdkChat(GOOD, ''), 400, 'missing_model');
  });

  it('404 unknown_url and 405 method_not_allowed for other paths and methods', async () => {
    assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/completions', { key: GOOD, body: CHAT }), 404, 'unknown_url');
    assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: GOOD }), 405, 'method_not_allowed');
  });

  it('413 request_too_large above the configured body limit (Envoy reply mapped to the OpenAI shape)', async () => {
    const big = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY * 2) }] });
    const e = assertOpenAIError(await chat(GOOD, big), 413, 'request_too_large');
    assert.equal(e.type, 'invalid_request_error');
    const err = await assertSdkError(
      stack.client(GOOD).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'y'.repeat(MAX_BODY * 2) }] }),
      413,
      'request_too_large',
    );
    assert.match(err.message, /too large/);
    // Just under the limit still goes through.
    const fits = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'z'.repeat(MAX_BODY - 200) }] });
    assert.equal((await chat(GOOD, fits)).status, 200);
    upstreamBefore += 1;
  });

  it('never forwarded a refused request to the provider', () => {
    assert.equal(stack.fakes['primary']!.requests.length, upstreamBefore);
  });

  it('503 provider_unavailable when the provider cannot be reached', async () => {
    const res = await chat(GOOD, JSON.stringify({ model: 'dead-model', messages: [] }));
    const e = assertOpenAIError(res, 503, 'provider_unavailable');
    assert.equal(e.type, 'api_error');
    assert.ok(!e.message.includes('127.0.0.1'), `provider address leaked to the client: ${e.message}`);
    await assertSdkError(sdkChat(GOOD, 'dead-model'), 503, 'provider_unavailable');
  });

  it('504 provider_timeout when the provider sends nothing within its first-byte timeout', async () => {
    const res = await chat(GOOD, JSON.stringify({ model: 'slow-model', messages: [] }));
    const e = assertOpenAIError(res, 504, 'provider_timeout');
    assert.equal(e.type, 'api_error');
    assert.equal(stack.fakes['slow']!.requests.length, 1, 'the request did reach the provider (unlike gateway_timeout)');
  });

  it('passes an upstream error through unchanged (status and body)', async () => {
    stack.fakes['primary']!.behaviour.status = 429;
    try {
      const res = await chat(GOOD);
      assert.equal(res.status, 429);
      assert.equal((JSON.parse(res.text) as { error: { code: string } }).error.code, 'fake');
    } finally {
      stack.fakes['primary']!.behaviour.status = undefined;
    }
  });

  it('still serves normal requests after all of the above (nothing wedged)', async () => {
    const completion = await sdkChat(GOOD);
    assert.ok(completion.choices[0]?.message.content);
    const health = await fetch(`${stack.adminUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.ok(stack.gateway.running && stack.envoy.running);
  });
});
