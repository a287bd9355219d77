/**
 * IRSA web-identity credentials (the AWS SDK's web-identity provider) against a fake STS that
 * verifies the form and the token file's content and the role ARN: fetched once, served
 * synchronously from the cache, refreshed in the background (re-reading the rotated token file)
 * before expiry, errors carrying STS's code and never the token. Env keys come first, as in the SDKs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeSts } from '../../dev/fake-sts.js';
import { Refreshing } from '../refreshing.js';
import type { AwsCredentials } from './api.js';
import { defaultCredentialsFrom } from './credentials.js';
import { assumeRoleWithWebIdentity, webIdentityFromEnv, type WebIdentityConfig } from './web-identity.js';

const webIdentity = (config: WebIdentityConfig, now?: () => number): Refreshing<AwsCredentials> =>
  new Refreshing<AwsCredentials>('web identity', () => assumeRoleWithWebIdentity(config), now);

const ROLE = 'arn:aws:iam::123456789012:role/tollgate-bedrock';

/** Polls `check` until it holds (a background refresh finishing on a busy machine), failing after 10 s. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Bedrock web-identity (IRSA) credentials', () => {
  const sts = new FakeSts({ roleArn: ROLE, token: 'projected-token-1', accessKeyId: 'ASIAFAKE1', secretAccessKey: 'secret-1', sessionToken: 'session-1', lifetimeS: 3600 });
  let dir = '';
  let config: WebIdentityConfig;
  before(async () => {
    await sts.start();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-irsa-'));
    config = { roleArn: ROLE, tokenFile: join(dir, 'token'), sessionName: 'tollgate-test', region: 'eu-central-1', stsEndpoint: sts.url };
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
    const source = webIdentity(config);
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
    assert.equal(call.form['Action'], 'AssumeRoleWithWebIdentity');
    assert.equal(call.authorization, undefined, 'AssumeRoleWithWebIdentity is an unsigned call');
  });

  it('close to expiry: the valid credentials are served while one background refresh reads the rotated token', async () => {
    sts.behaviour.lifetimeS = 120; // inside the 5-minute refresh window from the start
    const source = webIdentity(config);
    const c1 = await source.get();
    // The kubelet rotates the projected token; STS now accepts only the new one and issues new keys.
    await writeFile(config.tokenFile, 'projected-token-2');
    Object.assign(sts.behaviour, { token: 'projected-token-2', accessKeyId: 'ASIAFAKE2', sessionToken: 'session-2', lifetimeS: 3600 });
    assert.equal(source.get(), c1, 'the valid credentials at once');
    assert.equal(source.get(), c1, 'a second request while the refresh runs: no second STS call');
    await eventually('the background refresh', () => {
      const c = source.get();
      return !(c instanceof Promise) && c.accessKeyId === 'ASIAFAKE2';
    });
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
    const source = webIdentity(config, () => now);
    await source.get();
    now += 2 * 3600_000;
    const again = source.get();
    assert.ok(again instanceof Promise);
    await again;
    assert.equal(sts.calls.length, 2);
  });

  it("a token STS rejects and a role it refuses fail with STS's code, never the token", async () => {
    await writeFile(config.tokenFile, 'stolen-token');
    await assert.rejects(async () => webIdentity(config).get(), (e: Error) => /InvalidIdentityToken/.test(e.message) && !e.message.includes('stolen-token'));
    await writeFile(config.tokenFile, 'projected-token-1');
    await assert.rejects(async () => webIdentity({ ...config, roleArn: `${ROLE}-other` }).get(), /403 AccessDenied/);
    await assert.rejects(async () => webIdentity({ ...config, tokenFile: join(dir, 'missing') }).get(), /ENOENT/);
  });

  it('reads the standard environment: AWS_ENDPOINT_URL_STS first, else AWS_ENDPOINT_URL, else the regional endpoint (SDK)', () => {
    assert.equal(webIdentityFromEnv({ AWS_ROLE_ARN: ROLE }), undefined);
    const base = { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' };
    assert.deepEqual(webIdentityFromEnv({ ...base, AWS_DEFAULT_REGION: 'eu-central-1' }), { ...webIdentityFromEnv(base), region: 'eu-central-1' });
    assert.equal(webIdentityFromEnv(base)?.stsEndpoint, undefined);
    assert.equal(webIdentityFromEnv({ ...base, AWS_ENDPOINT_URL: 'http://127.0.0.1:8' })?.stsEndpoint, 'http://127.0.0.1:8');
    const custom = webIdentityFromEnv({ ...base, AWS_REGION: 'eu-central-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:8', AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', AWS_ROLE_SESSION_NAME: 'gw' });
    assert.deepEqual(custom, { roleArn: ROLE, tokenFile: base.AWS_WEB_IDENTITY_TOKEN_FILE, sessionName: 'gw', region: 'eu-central-1', stsEndpoint: 'http://127.0.0.1:9' });
    assert.equal(webIdentityFromEnv({ ...base, AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })?.stsEndpoint, undefined);
  });

  it('the default chain: env keys first (as the SDKs), then the web identity, then container credentials; nothing configured is a clear error', async () => {
    const keys = defaultCredentialsFrom({ AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: config.tokenFile });
    assert.ok(!(keys instanceof Error));
    assert.deepEqual(keys.get(), { accessKeyId: 'AKIAENV', secretAccessKey: 'env-secret' }, 'static keys: no STS call, no wait');
    assert.equal(sts.calls.length, 0);
    const irsa = defaultCredentialsFrom({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: config.tokenFile, AWS_REGION: 'eu-central-1', AWS_ENDPOINT_URL_STS: sts.url });
    assert.ok(!(irsa instanceof Error));
    assert.equal((await irsa.get()).sessionToken, 'session-1');
    assert.equal(sts.calls.length, 1);
    const none = defaultCredentialsFrom({});
    assert.ok(none instanceof Error && /AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE/.test(none.message));
    // IRSA comes before container credentials (EKS Pod Identity): both set, STS is used.
    const both = defaultCredentialsFrom({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: config.tokenFile, AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials' });
    assert.ok(!(both instanceof Error) && /^web identity/.test(both.source));
  });
});
