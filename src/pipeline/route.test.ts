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
