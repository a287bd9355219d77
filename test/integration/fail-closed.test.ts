/**
 * Fail closed: when the Tollgate ext_proc is wedged (SIGSTOP) or gone (killed), Envoy must answer
 * with an OpenAI-shaped error and never pass a request to the provider unauthenticated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOpenAIError, rawRequest } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('fail closed when the ext_proc is unavailable', () => {
  let stack: Stack;
  before(async () => {
    // A short message timeout keeps the wedged case quick; the behaviour is the same at the default 2 s.
    stack = await startStack({ files: basicConfig(), fakes: { primary: {} }, envoy: { messageTimeout: '1s' } });
  });
  after(async () => {
    if (stack?.gateway.running) stack.gateway.child.kill('SIGCONT');
    await stack?.stop();
  });

  const upstreamCount = (): number => stack.fakes['primary']!.requests.length;
  const attempts = async (status: number, code: string): Promise<void> => {
    // With a valid key, with a wrong key and with none: all refused, none forwarded.
    for (const key of [TEST_KEY, 'sk-wrong', undefined]) {
      const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', { ...(key ? { key } : {}), body: CHAT });
      const e = assertOpenAIError(res, status, code);
      assert.ok(!e.message.includes('.sock') && !e.message.includes('/tmp'), `internal details leaked: ${e.message}`);
    }
  };

  it('serves while Tollgate is up', async () => {
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: TEST_KEY, body: CHAT });
    assert.equal(res.status, 200);
    assert.equal(upstreamCount(), 1);
  });

  it('refuses every request while Tollgate is wedged (no answer within the message timeout)', async () => {
    stack.gateway.child.kill('SIGSTOP');
    try {
      await attempts(504, 'gateway_timeout');
      assert.equal(upstreamCount(), 1, 'nothing reached the provider');
    } finally {
      stack.gateway.child.kill('SIGCONT');
    }
    // Once it answers again, requests flow again.
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: TEST_KEY, body: CHAT });
    assert.equal(res.status, 200, res.text);
    assert.equal(upstreamCount(), 2);
  });

  it('refuses every request when the Tollgate process is gone', async () => {
    await stack.gateway.stop('SIGKILL');
    await attempts(500, 'internal_error');
    assert.equal(upstreamCount(), 2, 'nothing reached the provider');
    const models = await rawRequest(stack.baseUrl, '/v1/models', { key: TEST_KEY });
    assert.ok(models.status >= 500, `GET /v1/models got ${models.status}`);
  });
});
