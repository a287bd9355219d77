/**
 * Container credentials (EKS Pod Identity, ECS) through the AWS SDK's fromHttp against a fake agent
 * that checks the Authorization header: the token file's content sent (re-read after rotation),
 * credentials cached and refreshed in the background before expiry, the agent's refusal reported with
 * its status and code but never the token, endpoints the SDK refuses, and the chain order
 * (env keys, then IRSA, then container credentials).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeContainerCredentials } from '../../dev/fake-container-credentials.js';
import { Refreshing } from '../refreshing.js';
import type { AwsCredentials } from './api.js';
import { containerCredentials, containerCredentialsFromEnv, containerEndpoint } from './container-credentials.js';
import { defaultCredentialsFrom } from './credentials.js';

/** Polls `check` until it holds (a background refresh finishing on a busy machine), failing after 10 s. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Bedrock container credentials (EKS Pod Identity, ECS)', () => {
  const agent = new FakeContainerCredentials({ token: 'pod-identity-token-1', accessKeyId: 'ASIAPODID1', secretAccessKey: 'pod-secret-1', sessionToken: 'pod-session-1' });
  let dir = '';
  let tokenFile = '';
  before(async () => {
    await agent.start();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-podid-'));
    tokenFile = join(dir, 'eks-pod-identity-token');
  });
  after(async () => {
    await agent.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    Object.assign(agent.behaviour, { token: 'pod-identity-token-1', accessKeyId: 'ASIAPODID1', secretAccessKey: 'pod-secret-1', sessionToken: 'pod-session-1', lifetimeS: 6 * 3600 });
    agent.calls.length = 0;
    await writeFile(tokenFile, 'pod-identity-token-1');
  });

  const source = (env: NodeJS.ProcessEnv, now?: () => number): Refreshing<AwsCredentials> => {
    const s = defaultCredentialsFrom(env, now);
    assert.ok(!(s instanceof Error), s instanceof Error ? s.message : '');
    return s;
  };
  const podIdentityEnv = (): NodeJS.ProcessEnv => ({ AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile });

  it("one GET with the token file's content as Authorization, then answers synchronously from the cache", async () => {
    const s = source(podIdentityEnv());
    assert.match(s.source, /^container credentials \(http:\/\/127\.0\.0\.1:\d+\/v1\/credentials\)$/);
    const first = s.get();
    assert.ok(first instanceof Promise, 'nothing cached yet: the first request waits');
    assert.deepEqual(await first, { accessKeyId: 'ASIAPODID1', secretAccessKey: 'pod-secret-1', sessionToken: 'pod-session-1' });
    for (let i = 0; i < 5; i++) assert.equal(s.get(), await first, 'cached, synchronous');
    assert.deepEqual(agent.calls, [{ method: 'GET', path: '/v1/credentials', authorization: 'pod-identity-token-1', status: 200 }]);
  });

  it('close to expiry: the valid credentials are served while one background refresh sends the rotated token', async () => {
    agent.behaviour.lifetimeS = 120; // inside the 5-minute refresh window from the start
    const s = source(podIdentityEnv());
    const c1 = await s.get();
    // The kubelet rotates the projected token; the agent now accepts only the new one and hands out new keys.
    await writeFile(tokenFile, 'pod-identity-token-2');
    Object.assign(agent.behaviour, { token: 'pod-identity-token-2', accessKeyId: 'ASIAPODID2', secretAccessKey: 'pod-secret-2', sessionToken: 'pod-session-2', lifetimeS: 6 * 3600 });
    assert.equal(s.get(), c1, 'the valid credentials at once');
    assert.equal(s.get(), c1, 'a second request while the refresh runs: no second fetch');
    await eventually('the background refresh', () => {
      const c = s.get();
      return !(c instanceof Promise) && c.accessKeyId === 'ASIAPODID2';
    });
    assert.deepEqual(agent.calls.map((c) => [c.authorization, c.status]), [
      ['pod-identity-token-1', 200],
      ['pod-identity-token-2', 200],
    ]);
    assert.deepEqual(s.get(), { accessKeyId: 'ASIAPODID2', secretAccessKey: 'pod-secret-2', sessionToken: 'pod-session-2' });
  });

  it('expired credentials are never used: the request waits for a fresh answer', async () => {
    let now = Date.now();
    const s = source(podIdentityEnv(), () => now);
    await s.get();
    now += 7 * 3600_000;
    const again = s.get();
    assert.ok(again instanceof Promise);
    await again;
    assert.equal(agent.calls.length, 2);
  });

  it("a token the agent refuses fails with the agent's status and code (after the SDK's retries), never the token", async () => {
    await writeFile(tokenFile, 'a-token-from-another-cluster');
    await assert.rejects(
      async () => source(podIdentityEnv()).get(),
      (e: Error) => /container credentials .*: the container credentials endpoint failed: Server responded with status: 401 \(AccessDeniedException: Service account token is invalid\)/.test(e.message) && !e.message.includes('another-cluster'),
    );
    assert.deepEqual(agent.calls.map((c) => c.status), [401, 401, 401, 401], 'the SDK tried 4 times');
    agent.calls.length = 0;
    await assert.rejects(async () => source({ ...podIdentityEnv(), AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: join(dir, 'missing') }).get(), /ENOENT/);
    assert.equal(agent.calls.length, 0, 'nothing sent without the token');
  });

  it('AWS_CONTAINER_AUTHORIZATION_TOKEN as a value; no token at all where the endpoint needs none (ECS)', async () => {
    const byValue = source({ AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-identity-token-1' });
    assert.equal((await byValue.get()).accessKeyId, 'ASIAPODID1');
    agent.behaviour.token = undefined;
    const none = source({ AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url });
    assert.equal((await none.get()).sessionToken, 'pod-session-1');
    assert.deepEqual(agent.calls.map((c) => c.authorization), ['pod-identity-token-1', undefined]);
  });

  it("reads the environment with the SDK's precedence: RELATIVE_URI over FULL_URI, the token file over the token", () => {
    assert.equal(containerCredentialsFromEnv({}), undefined);
    assert.equal(containerCredentialsFromEnv({ AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/t' }), undefined);
    const both = containerCredentialsFromEnv({
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/abc',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'inline',
    });
    assert.deepEqual(both, { relativeUri: '/v2/credentials/abc', fullUri: '', tokenFile: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token', token: '' });
    assert.equal(containerEndpoint(both!), 'http://169.254.170.2/v2/credentials/abc');
    const eks = containerCredentialsFromEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials', AWS_CONTAINER_AUTHORIZATION_TOKEN: 'inline' });
    assert.deepEqual(eks, { relativeUri: '', fullUri: 'http://169.254.170.23/v1/credentials', tokenFile: '', token: 'inline' });
    // The AWS agents' link-local hosts and loopback are accepted over plain HTTP.
    for (const fullUri of ['http://169.254.170.23/v1/credentials', 'http://[fd00:ec2::23]/v1/credentials', 'http://localhost:8080/creds', 'https://creds.example.com/x']) {
      assert.equal(typeof containerCredentials({ relativeUri: '', fullUri, tokenFile: '', token: '' }), 'function', fullUri);
    }
  });

  it('an endpoint the SDK refuses (plain HTTP to another host) or a malformed URI is a clear error at load, nothing fetched', () => {
    const other = defaultCredentialsFrom({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://10.0.0.7/v1/credentials', AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile });
    assert.ok(other instanceof Error);
    assert.match(other.message, /AWS_CONTAINER_CREDENTIALS_\* names http:\/\/10\.0\.0\.7\/v1\/credentials, which the AWS SDK does not accept: URL not accepted/);
    const malformed = defaultCredentialsFrom({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'not a url' });
    assert.ok(malformed instanceof Error && /does not accept/.test(malformed.message));
    assert.equal(agent.calls.length, 0);
  });

  it('the chain: env keys first, then the IRSA web identity, then container credentials (as the AWS SDKs)', async () => {
    const keys = source({ AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'env-secret', ...podIdentityEnv() });
    assert.deepEqual(keys.get(), { accessKeyId: 'AKIAENV', secretAccessKey: 'env-secret' });
    const irsa = source({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/r', AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, ...podIdentityEnv() });
    assert.match(irsa.source, /^web identity/);
    const pod = source({ AWS_ACCESS_KEY_ID: '', AWS_ROLE_ARN: '', ...podIdentityEnv() });
    assert.match(pod.source, /^container credentials/);
    assert.equal(agent.calls.length, 0, 'nothing fetched until asked');
    const none = defaultCredentialsFrom({});
    assert.ok(none instanceof Error && /AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI: EKS Pod Identity, ECS/.test(none.message));
  });
});
