import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../errors.js';
import { apiLabel, classifyRoute } from './route.js';

describe('classifyRoute: /v1/templates/<name>', () => {
  it('is a chat completion carrying the template name', () => {
    const route = classifyRoute('POST', '/v1/templates/reply-to-en?x=1');
    assert.deepEqual(route, { kind: 'forward', operation: 'chat/completions', template: 'reply-to-en' });
    assert.equal(apiLabel(isGatewayError(route) ? undefined : route), 'template');
    assert.equal(apiLabel(classifyRoute('POST', '/v1/chat/completions') as never), 'chat');
  });

  it('refuses other methods and names that are not object names', () => {
    const get = classifyRoute('GET', '/v1/templates/reply');
    assert.ok(isGatewayError(get) && get.code === 'method_not_allowed');
    for (const path of ['/v1/templates/', '/v1/templates/Upper', '/v1/templates/a/b', '/v1/templates/..', '/v1/templates/a%2Fb']) {
      const r = classifyRoute('POST', path);
      assert.ok(isGatewayError(r) && r.code === 'unknown_url', path);
    }
  });
});

describe('classifyRoute: stored responses', () => {
  it('classifies retrieve, delete, input_items and cancel with the id and the client query', () => {
    assert.deepEqual(classifyRoute('GET', '/v1/responses/resp_abc?include[]=x&stream=false'), { kind: 'stored-response', action: 'retrieve', responseId: 'resp_abc', query: '?include[]=x&stream=false' });
    assert.deepEqual(classifyRoute('DELETE', '/v1/responses/resp_abc'), { kind: 'stored-response', action: 'delete', responseId: 'resp_abc', query: '' });
    assert.deepEqual(classifyRoute('GET', '/v1/responses/resp_abc/input_items?limit=2'), { kind: 'stored-response', action: 'input_items', responseId: 'resp_abc', query: '?limit=2' });
    assert.deepEqual(classifyRoute('POST', '/v1/responses/resp_abc/cancel'), { kind: 'stored-response', action: 'cancel', responseId: 'resp_abc', query: '' });
    assert.equal(apiLabel(classifyRoute('POST', '/v1/responses/resp_abc/cancel') as never), 'responses_cancel');
    // Create is still create.
    assert.deepEqual(classifyRoute('POST', '/v1/responses'), { kind: 'forward', operation: 'responses' });
  });

  it('wrong methods are 405, unknown sub-paths 404, ids the gateway cannot have stored 404 response_not_found', () => {
    const code = (m: string, p: string): string | undefined => {
      const r = classifyRoute(m, p);
      return isGatewayError(r) ? r.code : undefined;
    };
    assert.equal(code('POST', '/v1/responses/resp_abc'), 'method_not_allowed');
    assert.equal(code('GET', '/v1/responses/resp_abc/cancel'), 'method_not_allowed');
    assert.equal(code('DELETE', '/v1/responses/resp_abc/input_items'), 'method_not_allowed');
    assert.equal(code('GET', '/v1/responses/resp_abc/other'), 'unknown_url');
    assert.equal(code('GET', '/v1/responses/resp_abc/input_items/x'), 'unknown_url');
    assert.equal(code('GET', '/v1/responses/..%2Fetc'), 'response_not_found');
    assert.equal(code('GET', `/v1/responses/${'a'.repeat(200)}`), 'response_not_found');
  });
});
