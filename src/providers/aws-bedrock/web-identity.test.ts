/**
 * IRSA web-identity credentials against a fake STS that verifies the token file's content and the
 * role ARN: fetched once, served synchronously from the cache, refreshed in the background (re-reading
 * the rotated token file) before expiry, errors carrying STS's code and never the token.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeSts } from '../../dev/fake-sts.js';
import { WebIdentityCredentials, webIdentityFromEnv, type WebIdentityConfig } from './web-identity.js';

const ROLE = 'arn:aws:iam::123456789012:role/tollgate-bedrock';

describe('Bedrock web-identity (IRSA) credentials', () => {
  const sts = new FakeSts({ roleArn: ROLE, token: 'projected-token-1', accessKeyId: 'ASIAFAKE1', secretAccessKey: 'secret-1', sessionToken: 'session-1', lifetimeS: 3600 });
  let dir = '';
  let config: WebIdentityConfig;
  before(async () => {
    await sts.start();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-irsa-'));
    config = { roleArn: ROLE, tokenFile: join(dir, 'token'), sessionName: 'tollgate-test', stsEndpoint: sts.url };
  });
  after(async () => {
    await sts.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    Object.assign(sts.behaviour, { token: 'projected-token-1', accessKeyId: 'ASIAFAKE1', secretAccessKey: 'secret-1', sessionToken: 'session-1', lifetimeS: 3600 });
    sts.calls.length = 0;
    await writeFile(config.tokenFile, 'projected-token-1\n');
  });

  it('one STS call with the token file content and role ARN, then answers synchronously from the cache', async () => {
    const source = new WebIdentityCredentials(config);
    const first = source.get();
    assert.ok(first instanceof Promise, 'nothing cached yet: the first request waits');
    assert.deepEqual(await first, { accessKeyId: 'ASIAFAKE1', secretAccessKey: 'secret-1', sessionToken: 'session-1' });
    for (let i = 0; i < 5; i++) assert.equal(source.get(), await first, 'cached, synchronous');
    assert.equal(sts.calls.length, 1);
    const call = sts.calls[0]!;
    assert.equal(call.status, 200);
    assert.equal(call.form['RoleArn'], ROLE);
    assert.equal(call.form['WebIdentityToken'], 'projected-token-1');
    assert.equal(call.form['RoleSessionName'], 'tollgate-test');
  });

  it('close to expiry: the valid credentials are served while one background refresh reads the rotated token', async () => {
    sts.behaviour.lifetimeS = 120; // inside the 5-minute refresh window from the start
    const source = new WebIdentityCredentials(config);
    const c1 = await source.get();
    // The kubelet rotates the projected token; STS now accepts only the new one and issues new keys.
    await writeFile(config.tokenFile, 'projected-token-2');
    Object.assign(sts.behaviour, { token: 'projected-token-2', accessKeyId: 'ASIAFAKE2', sessionToken: 'session-2', lifetimeS: 3600 });
    assert.equal(source.get(), c1, 'the valid credentials at once');
    assert.equal(source.get(), c1, 'a second request while the refresh runs: no second STS call');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(sts.calls.map((c) => [c.form['WebIdentityToken'], c.status]), [
      ['projected-token-1', 200],
      ['projected-token-2', 200],
    ]);
    const c2 = source.get();
    assert.ok(!(c2 instanceof Promise));
    assert.equal(c2.accessKeyId, 'ASIAFAKE2');
    assert.equal(c2.sessionToken, 'session-2');
  });

  it('expired credentials are never used: the request waits for a fresh STS answer', async () => {
    let now = Date.now();
    const source = new WebIdentityCredentials(config, () => now);
    await source.get();
    now += 2 * 3600_000;
    const again = source.get();
    assert.ok(again instanceof Promise);
    await again;
    assert.equal(sts.calls.length, 2);
  });

  it("a token STS rejects and a role it refuses fail with STS's code, never the token", async () => {
    await writeFile(config.tokenFile, 'stolen-token');
    await assert.rejects(async () => new WebIdentityCredentials(config).get(), (e: Error) => /InvalidIdentityToken/.test(e.message) && !e.message.includes('stolen-token'));
    await writeFile(config.tokenFile, 'projected-token-1');
    await assert.rejects(async () => new WebIdentityCredentials({ ...config, roleArn: `${ROLE}-other` }).get(), /403 AccessDenied/);
    await assert.rejects(async () => new WebIdentityCredentials({ ...config, tokenFile: join(dir, 'missing') }).get(), /ENOENT/);
  });

  it('reads the standard environment: AWS_ENDPOINT_URL_STS first, else the regional endpoint', () => {
    assert.equal(webIdentityFromEnv({ AWS_ROLE_ARN: ROLE }), undefined);
    const base = { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' };
    assert.equal(webIdentityFromEnv({ ...base, AWS_REGION: 'eu-central-1' })?.stsEndpoint, 'https://sts.eu-central-1.amazonaws.com');
    assert.equal(webIdentityFromEnv(base)?.stsEndpoint, 'https://sts.amazonaws.com');
    const custom = webIdentityFromEnv({ ...base, AWS_REGION: 'eu-central-1', AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', AWS_ROLE_SESSION_NAME: 'gw' });
    assert.deepEqual(custom, { roleArn: ROLE, tokenFile: base.AWS_WEB_IDENTITY_TOKEN_FILE, sessionName: 'gw', stsEndpoint: 'http://127.0.0.1:9' });
  });
});
