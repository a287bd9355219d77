import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HttpToolEntry } from '../config/mcp.js';
import { renderHttpTool } from './http-tools.js';

const base: HttpToolEntry = { name: 't', description: '', inputSchema: { type: 'object' }, method: 'GET', url: 'http://api/x', headers: {}, body: undefined, format: 'json' };

describe('httpTools templates', () => {
  it('URI-encodes URL arguments so they cannot change the path or query', () => {
    const r = renderHttpTool({ ...base, url: 'http://api/users/{{id}}?q={{q}}' }, { id: '../admin', q: 'a&b=c' });
    assert.ok(typeof r !== 'string');
    assert.equal(r.url, 'http://api/users/..%2Fadmin?q=a%26b%3Dc');
    assert.equal(r.body, undefined);
  });

  it('leaves out query parameters of absent arguments', () => {
    const t = { ...base, url: 'http://api/w/{{city}}?units={{units}}&lang={{lang}}&fixed=1' };
    const r = renderHttpTool(t, { city: 'Oslo', lang: 'nb' });
    assert.ok(typeof r !== 'string');
    assert.equal(r.url, 'http://api/w/Oslo?lang=nb&fixed=1');
    const none = renderHttpTool({ ...base, url: 'http://api/w?units={{units}}' }, {});
    assert.ok(typeof none !== 'string');
    assert.equal(none.url, 'http://api/w');
  });

  it('renders body arguments as JSON (quotes escaped), missing ones as null; headers as text without newlines', () => {
    const r = renderHttpTool(
      { ...base, method: 'POST', body: '{"m": {{m}}, "n": {{n}}, "x": {{missing}}}', headers: { 'x-a': 'v={{h}}' } },
      { m: 'say "hi"', n: 2, h: 'a\r\nInjected: yes' },
    );
    assert.ok(typeof r !== 'string');
    assert.deepEqual(JSON.parse(r.body ?? ''), { m: 'say "hi"', n: 2, x: null });
    assert.equal(r.headers['x-a'], 'v=a  Injected: yes');
    assert.equal(r.headers['content-type'], 'application/json');
  });

  it('POST without a body template sends the arguments as JSON', () => {
    const r = renderHttpTool({ ...base, method: 'POST' }, { a: 1 });
    assert.ok(typeof r !== 'string');
    assert.equal(r.body, '{"a":1}');
  });

  it('refuses a template that renders to something other than an http(s) URL', () => {
    assert.equal(typeof renderHttpTool({ ...base, url: '{{u}}' }, { u: 'file:///etc/passwd' }), 'string');
  });
});
