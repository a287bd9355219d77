/**
 * Vertex AI tokens from the Pod's own identity (Application Default Credentials through
 * google-auth-library) against a fake GKE metadata server that checks `Metadata-Flavor: Google` and
 * hands out tokens the fake Vertex AI accepts: a metadata server missing at first is found later,
 * one token fetch for many requests, background refresh before expiry, a refusal is a clear error.
 * GCE_METADATA_HOST points the library at the fake (this file runs in its own process). Workload
 * identity federation: an external_account file in GOOGLE_APPLICATION_CREDENTIALS, its subject
 * token exchanged at a fake Google STS.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeGceMetadata } from '../../dev/fake-gce-metadata.js';
import { FakeGemini } from '../../dev/fake-gemini.js';
import { FakeGoogleSts } from '../../dev/fake-google-sts.js';
import { freePort } from '../../dev/local-stack.js';
import { Refreshing, RETRY_MS } from '../refreshing.js';
import { applicationDefaultFetcher } from './token.js';

/** Polls `check` until it holds (a background refresh finishing on a busy machine), failing after 10 s. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Vertex AI tokens from workload identity (metadata server)', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const vertex = new FakeGemini({ vertex: { clientEmail: 'gw@fake-project.iam.gserviceaccount.com', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
  const metadata = new FakeGceMetadata((lifetimeS) => vertex.mintToken(lifetimeS));
  let gcloudDir = '';
  before(async () => {
    await vertex.start();
    await metadata.start();
    // Nothing else may answer for ADC: no key file, no gcloud login.
    gcloudDir = await mkdtemp(join(tmpdir(), 'tollgate-gcloud-'));
    process.env['CLOUDSDK_CONFIG'] = gcloudDir;
    delete process.env['GOOGLE_APPLICATION_CREDENTIALS'];
    delete process.env['GCE_METADATA_IP'];
    delete process.env['METADATA_SERVER_DETECTION'];
  });
  after(async () => {
    await metadata.stop();
    await vertex.stop();
    if (gcloudDir) await rm(gcloudDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    Object.assign(metadata.behaviour, { lifetimeS: 3599, refuse: undefined });
    metadata.calls.length = 0;
    process.env['GCE_METADATA_HOST'] = metadata.host;
  });

  it('no metadata server at first: a clear error, fast for a pause; then the same source finds it once it answers', async () => {
    process.env['GCE_METADATA_HOST'] = `127.0.0.1:${await freePort()}`;
    const clock = { now: Date.now() };
    const source = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project', () => clock.now), () => clock.now);
    await assert.rejects(async () => source.get(), /no Application Default Credentials/);
    process.env['GCE_METADATA_HOST'] = metadata.host;
    await assert.rejects(async () => source.get(), /no Application Default Credentials/, 'within the pause: the same error, no new probe');
    assert.equal(metadata.calls.length, 0);
    clock.now += RETRY_MS;
    const token = await source.get();
    assert.ok((vertex.tokens.get(token) ?? 0) > Date.now(), 'a token the fake Vertex AI accepts');
  });

  it('one token fetch with Metadata-Flavor and the cloud-platform scope, then answers synchronously', async () => {
    const source = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project'));
    const first = source.get();
    assert.ok(first instanceof Promise, 'nothing cached yet: the first request waits');
    const token = await first;
    for (let i = 0; i < 5; i++) assert.equal(source.get(), token, 'cached, synchronous');
    const calls = metadata.tokenCalls();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.path, '/computeMetadata/v1/instance/service-accounts/default/token');
    assert.equal(calls[0]?.flavor, 'Google');
    assert.equal(calls[0]?.status, 200);
    assert.match(calls[0]?.query['scopes'] ?? '', /https:\/\/www\.googleapis\.com\/auth\/cloud-platform/);
    assert.ok(metadata.calls.every((c) => c.flavor === 'Google' && c.status !== 403));
  });

  it('close to expiry: the valid token is served while one background refresh gets a new one', async () => {
    metadata.behaviour.lifetimeS = 120; // inside the 5-minute refresh window from the start
    const source = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project'));
    const t1 = await source.get();
    metadata.behaviour.lifetimeS = 3599;
    assert.equal(source.get(), t1, 'the valid token at once');
    assert.equal(source.get(), t1, 'no second refresh while one runs');
    await eventually('the background refresh', () => source.get() !== t1);
    assert.equal(metadata.tokenCalls().length, 2);
    const t2 = source.get();
    assert.equal(typeof t2, 'string');
    assert.notEqual(t2, t1);
    assert.ok((vertex.tokens.get(t2 as string) ?? 0) > Date.now() + 3000_000);
  });

  it('a refusal (service account not bound) fails with the server\'s reason; the next fetch tries again', async () => {
    metadata.behaviour.refuse = "Unable to generate access token; IAM returned 403 Forbidden: Permission 'iam.serviceAccounts.getAccessToken' denied";
    const source = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project'));
    await assert.rejects(async () => source.get(), /iam\.serviceAccounts\.getAccessToken/);
    metadata.behaviour.refuse = undefined;
    assert.ok(vertex.tokens.has(await source.get()));
  });

  it('the fake refuses what the real metadata server refuses: no Metadata-Flavor, X-Forwarded-For', async () => {
    const url = `http://${metadata.host}/computeMetadata/v1/instance/service-accounts/default/token`;
    const bare = await fetch(url);
    assert.equal(bare.status, 403);
    assert.equal(bare.headers.get('metadata-flavor'), 'Google');
    await bare.text();
    const proxied = await fetch(url, { headers: { 'metadata-flavor': 'Google', 'x-forwarded-for': '10.0.0.1' } });
    assert.equal(proxied.status, 403);
    await proxied.text();
    const ok = await fetch(url, { headers: { 'metadata-flavor': 'Google' } });
    assert.equal(ok.status, 200);
    assert.ok(vertex.tokens.has(((await ok.json()) as { access_token: string }).access_token));
  });

  it('workload identity federation: an external_account file wins over the metadata server; its token file is re-read', async () => {
    const audience = '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tollgate/providers/eks';
    const sts = new FakeGoogleSts((lifetimeS) => vertex.mintToken(lifetimeS), { audience, subjectToken: 'k8s-oidc-token-1', lifetimeS: 120 });
    await sts.start();
    try {
      const subjectFile = join(gcloudDir, 'subject-token');
      await writeFile(subjectFile, 'k8s-oidc-token-1');
      const configFile = join(gcloudDir, 'external-account.json');
      await writeFile(configFile, JSON.stringify({ type: 'external_account', audience, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_url: sts.tokenUrl, credential_source: { file: subjectFile } }));
      process.env['GOOGLE_APPLICATION_CREDENTIALS'] = configFile;
      const source = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project'));
      const t1 = await source.get();
      assert.ok((vertex.tokens.get(t1) ?? 0) > Date.now(), 'a federated token the fake Vertex AI accepts');
      assert.equal(metadata.tokenCalls().length, 0, 'the metadata server was not asked');
      assert.deepEqual(sts.calls.map((c) => [c.status, c.form['subject_token'], c.form['scope']]), [[200, 'k8s-oidc-token-1', 'https://www.googleapis.com/auth/cloud-platform']]);
      // The token lives 120 s (inside the refresh window): the rotated subject token is exchanged in the background.
      await writeFile(subjectFile, 'k8s-oidc-token-2');
      sts.behaviour.subjectToken = 'k8s-oidc-token-2';
      sts.behaviour.lifetimeS = 3600;
      assert.equal(source.get(), t1);
      await eventually('the background exchange', () => source.get() !== t1);
      assert.deepEqual(sts.calls.map((c) => [c.status, c.form['subject_token']]), [[200, 'k8s-oidc-token-1'], [200, 'k8s-oidc-token-2']]);
      assert.notEqual(source.get(), t1);
      // A subject token the pool provider does not trust: the STS's refusal, with its reason.
      sts.behaviour.subjectToken = 'another-cluster';
      const refused = new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher('fake-project'));
      await assert.rejects(async () => refused.get(), /invalid_grant|subject token is invalid/);
    } finally {
      delete process.env['GOOGLE_APPLICATION_CREDENTIALS'];
      await sts.stop();
    }
  });
});
