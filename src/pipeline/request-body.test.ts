import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError, statusOf } from '../errors.js';
import { readRequestBody } from './request-body.js';

function code(text: string, contentType: string | undefined = 'application/json'): string {
  const r = readRequestBody(Buffer.from(text), contentType);
  return isGatewayError(r) ? `${statusOf(r.code)} ${r.code}` : 'ok';
}

describe('request body', () => {
  it('reads model and stream from a valid body', () => {
    const r = readRequestBody(Buffer.from('{"model":"gpt-4o","stream":true,"messages":[]}'), 'application/json; charset=utf-8');
    assert.ok(!isGatewayError(r));
    assert.equal(r.model, 'gpt-4o');
    assert.equal(r.stream, true);
    const plain = readRequestBody(Buffer.from('{"model":"gpt-4o","stream":"yes"}'), undefined);
    assert.ok(!isGatewayError(plain));
    assert.equal(plain.stream, false, 'only stream: true streams');
  });
  it('refuses malformed JSON with 400 invalid_json', () => {
    assert.equal(code('{"model":'), '400 invalid_json');
    assert.equal(code('not json'), '400 invalid_json');
  });
  it('refuses JSON that is not an object with 400 invalid_json', () => {
    assert.equal(code('[1,2]'), '400 invalid_json');
    assert.equal(code('"gpt-4o"'), '400 invalid_json');
    assert.equal(code('null'), '400 invalid_json');
  });
  it('refuses an empty body with 400 missing_body', () => {
    assert.equal(code(''), '400 missing_body');
  });
  it('refuses a missing, null or empty model with 400 missing_model', () => {
    assert.equal(code('{"messages":[]}'), '400 missing_model');
    assert.equal(code('{"model":null}'), '400 missing_model');
    assert.equal(code('{"model":""}'), '400 missing_model');
  });
  it('refuses a model that is not a plain name with 400 invalid_model', () => {
    assert.equal(code('{"model":42}'), '400 invalid_model');
    assert.equal(code('{"model":["a"]}'), '400 invalid_model');
    assert.equal(code('{"model":"gpt 4"}'), '400 invalid_model');
    assert.equal(code('{"model":"gpt-4*"}'), '400 invalid_model', 'wildcards are for config, not requests');
  });
  it('refuses a non-JSON content type with 415', () => {
    assert.equal(code('{"model":"m"}', 'text/plain'), '415 unsupported_media_type');
  });
  it('error messages never contain the request body', () => {
    for (const text of ['not json secret prompt', '{"secret prompt" x}', '{"secret prompt": ']) {
      const r = readRequestBody(Buffer.from(text), 'application/json');
      assert.ok(isGatewayError(r), text);
      assert.ok(!r.message.includes('secret'), r.message);
    }
    const r = readRequestBody(Buffer.from('{"a":1,}'), 'application/json');
    assert.ok(isGatewayError(r) && r.message.includes('position 7'), 'says where the JSON broke');
  });
});
