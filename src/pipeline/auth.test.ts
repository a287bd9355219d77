import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashKey } from '../config/snapshot.js';
import { apiKeyYaml, secretYaml, validSnapshot } from '../config/test-fixtures.js';
import { isGatewayError, statusOf } from '../errors.js';
import { authenticate, extractKey } from './auth.js';

const snapshot = validSnapshot(
  apiKeyYaml('active', 'secretRef: { name: keys, key: active }') +
    apiKeyYaml('hashed', `keyHash: "${hashKey('sk-hashed')}"`) +
    apiKeyYaml('off', 'secretRef: { name: keys, key: off }\ndisabled: true') +
    apiKeyYaml('old', 'secretRef: { name: keys, key: old }\nexpiresAt: "2026-01-01T00:00:00Z"') +
    secretYaml('keys', { active: 'sk-active', off: 'sk-off', old: 'sk-old' }),
);
const BEFORE_EXPIRY = Date.parse('2025-12-31T23:59:59Z');
const AFTER_EXPIRY = Date.parse('2026-01-01T00:00:00Z');

function codeOf(result: ReturnType<typeof authenticate>): string {
  return isGatewayError(result) ? result.code : `ok:${result.name}`;
}

describe('extractKey', () => {
  it('reads Authorization: Bearer, case-insensitively and trimmed', () => {
    assert.equal(extractKey('Bearer sk-1', undefined), 'sk-1');
    assert.equal(extractKey('bearer   sk-1  ', undefined), 'sk-1');
  });
  it('reads x-api-key when there is no bearer token', () => {
    assert.equal(extractKey(undefined, 'sk-2'), 'sk-2');
    assert.equal(extractKey('Basic abc', ' sk-2 '), 'sk-2');
  });
  it('prefers the bearer token over x-api-key', () => {
    assert.equal(extractKey('Bearer sk-1', 'sk-2'), 'sk-1');
  });
  it('finds no key in empty or malformed headers', () => {
    assert.equal(extractKey(undefined, undefined), undefined);
    assert.equal(extractKey('Bearer', undefined), undefined);
    assert.equal(extractKey('Bearer a b', undefined), undefined);
    assert.equal(extractKey('', '  '), undefined);
  });
});

describe('authenticate', () => {
  it('accepts a key stored through a Secret and one stored as a hash', () => {
    assert.equal(codeOf(authenticate('sk-active', snapshot, BEFORE_EXPIRY)), 'ok:default/active');
    assert.equal(codeOf(authenticate('sk-hashed', snapshot, BEFORE_EXPIRY)), 'ok:default/hashed');
  });
  it('refuses a missing key with 401 missing_api_key', () => {
    const r = authenticate(undefined, snapshot, BEFORE_EXPIRY);
    assert.equal(codeOf(r), 'missing_api_key');
    assert.equal(statusOf('missing_api_key'), 401);
  });
  it('refuses an unknown key with 401 invalid_api_key, and never echoes the key', () => {
    const r = authenticate('sk-nobody', snapshot, BEFORE_EXPIRY);
    assert.equal(codeOf(r), 'invalid_api_key');
    assert.ok(isGatewayError(r) && !r.message.includes('sk-nobody'));
    assert.equal(statusOf('invalid_api_key'), 401);
  });
  it('refuses a disabled key with 403 key_disabled', () => {
    assert.equal(codeOf(authenticate('sk-off', snapshot, BEFORE_EXPIRY)), 'key_disabled');
    assert.equal(statusOf('key_disabled'), 403);
  });
  it('refuses an expired key from the expiry instant on, with 403 key_expired', () => {
    assert.equal(codeOf(authenticate('sk-old', snapshot, BEFORE_EXPIRY)), 'ok:default/old');
    assert.equal(codeOf(authenticate('sk-old', snapshot, AFTER_EXPIRY)), 'key_expired');
    assert.equal(statusOf('key_expired'), 403);
  });
  it('keeps no clear key in the snapshot', () => {
    const dump = JSON.stringify([...snapshot.keysByHash.entries()]);
    for (const clear of ['sk-active', 'sk-off', 'sk-old']) assert.ok(!dump.includes(clear));
  });
});
