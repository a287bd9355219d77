import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AdminAuthorizer, bearerToken, createPodCredential, credentialFromToken, operatorCredentialFromFile } from './authorizer.js';
import { writeFile } from 'node:fs/promises';

describe('admin authorizer', () => {
  const token = 'a'.repeat(43);

  it('401 without a bearer token or with an unknown one, 403 for a credential without the scope, allowed with it', () => {
    const auth = new AdminAuthorizer([credentialFromToken('pod', token, ['lifecycle']), credentialFromToken('nobody', 'b'.repeat(40), [])]);
    assert.deepEqual(auth.authorize(undefined, 'lifecycle'), { allowed: false, status: 401, reason: 'missing' });
    assert.deepEqual(auth.authorize('', 'lifecycle'), { allowed: false, status: 401, reason: 'missing' });
    assert.deepEqual(auth.authorize(`Basic ${token}`, 'lifecycle'), { allowed: false, status: 401, reason: 'missing' });
    assert.deepEqual(auth.authorize(`Bearer ${token}x`, 'lifecycle'), { allowed: false, status: 401, reason: 'invalid' });
    assert.deepEqual(auth.authorize(`Bearer ${token.slice(1)}`, 'lifecycle'), { allowed: false, status: 401, reason: 'invalid' });
    assert.deepEqual(auth.authorize(`Bearer ${'b'.repeat(40)}`, 'lifecycle'), { allowed: false, status: 403, reason: 'scope' });
    assert.deepEqual(auth.authorize(`Bearer ${token}`, 'lifecycle'), { allowed: true, credential: 'pod' });
    assert.deepEqual(auth.authorize(`bearer   ${token} `, 'lifecycle'), { allowed: true, credential: 'pod' });
  });

  it('with no credentials every action is refused and grants() says so', () => {
    const auth = new AdminAuthorizer([]);
    assert.equal(auth.grants('lifecycle'), false);
    assert.equal(auth.authorize(`Bearer ${token}`, 'lifecycle').allowed, false);
    assert.equal(new AdminAuthorizer([credentialFromToken('pod', token, ['lifecycle'])]).grants('lifecycle'), true);
  });

  it('refuses short tokens', () => {
    assert.throws(() => credentialFromToken('weak', 'short', ['lifecycle']), /too short/);
  });

  it('parses bearer tokens strictly', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('Bearer abc def'), undefined);
    assert.equal(bearerToken('Bearerabc'), undefined);
  });

  it('the pod credential: a fresh private token file per start that only that start honours', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-auth-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'pod-token');
    const first = new AdminAuthorizer([await createPodCredential(file)]);
    const firstToken = (await readFile(file, 'utf8')).trim();
    assert.ok(firstToken.length >= 43);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(first.authorize(`Bearer ${firstToken}`, 'lifecycle').allowed, true);

    const second = new AdminAuthorizer([await createPodCredential(file)]);
    const secondToken = (await readFile(file, 'utf8')).trim();
    assert.notEqual(secondToken, firstToken, 'a restart makes a new token');
    assert.equal(second.authorize(`Bearer ${firstToken}`, 'lifecycle').allowed, false, 'the old token is dead');
    assert.equal(second.authorize(`Bearer ${secondToken}`, 'lifecycle').allowed, true);
    await assert.rejects(createPodCredential(join(dir, 'missing-dir', 'pod-token')), /cannot write the pod token file/);
  });

  it('the operator credential: read from a file (a mounted Secret), grants reports and nothing else', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-op-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const op = 'o'.repeat(40);
    await writeFile(join(dir, 'token'), `${op}\n`);
    const pod = credentialFromToken('pod', token, ['lifecycle']);
    const auth = new AdminAuthorizer([pod, await operatorCredentialFromFile(join(dir, 'token'))]);
    assert.deepEqual(auth.authorize(`Bearer ${op}`, 'reports'), { allowed: true, credential: 'operator' });
    assert.deepEqual(auth.authorize(`Bearer ${op}`, 'lifecycle'), { allowed: false, status: 403, reason: 'scope' });
    assert.deepEqual(auth.authorize(`Bearer ${token}`, 'reports'), { allowed: false, status: 403, reason: 'scope' }, 'the pod token cannot read reports');
    assert.deepEqual(auth.authorize('Bearer sk-a-client-api-key-0000000000000000', 'reports'), { allowed: false, status: 401, reason: 'invalid' });
    await writeFile(join(dir, 'short'), 'short');
    await assert.rejects(operatorCredentialFromFile(join(dir, 'short')), /too short/);
    await assert.rejects(operatorCredentialFromFile(join(dir, 'missing')), /cannot read the admin token file/);
  });
});
