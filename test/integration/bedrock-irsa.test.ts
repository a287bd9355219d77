/**
 * Provider type aws-bedrock in a Pod with IRSA: no credential Secret; Tollgate runs with the
 * web-identity environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_STS), exchanges
 * the projected token (through the AWS SDK's web-identity provider) at a fake STS that verifies the
 * form, the token and the role ARN, and signs Converse requests with
 * the temporary credentials, which the fake Bedrock runtime verifies (signature and session token).
 * STS is called once for many requests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeSts } from '../../src/dev/fake-sts.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { ambientCredentialsBedrock } from '../harness/provider-fixtures.js';

const ROLE = 'arn:aws:iam::123456789012:role/tollgate-bedrock';
const TEMPORARY = { accessKeyId: 'ASIAIRSAFAKE', secretAccessKey: 'irsa-temporary-secret', sessionToken: 'irsa-session-token' };
const MODEL_ID = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

describe('aws-bedrock with IRSA web identity (no credential Secret)', () => {
  const sts = new FakeSts({ roleArn: ROLE, token: 'eyJ.projected-sa-token.sig', ...TEMPORARY, lifetimeS: 3600 });
  let stack: Stack | undefined;
  let dir = '';
  before(async () => {
    // STS refuses the token while Tollgate starts (a token from another cluster): the first test.
    sts.behaviour.token = 'a-token-from-another-cluster';
    await sts.start();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-irsa-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'eyJ.projected-sa-token.sig');
    stack = await startStack({
      files: {
        'keys.yaml': basicConfig()['keys.yaml'] as string,
        'providers.yaml': ambientCredentialsBedrock(MODEL_ID),
      },
      bedrockFakes: { bedrock: { ...TEMPORARY, region: 'eu-central-1' } },
      // Static keys would come first in the chain: cleared so the runner's own environment cannot mask IRSA.
      env: { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ENDPOINT_URL_STS: sts.url, AWS_REGION: 'eu-central-1', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '' },
    });
  });
  after(async () => {
    await stack?.stop();
    await sts.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('STS refusing the token when the configuration loads: logged at once (STS code, not the token); a request gets a clear 502, nothing sent to Bedrock', async () => {
    const s = stack!;
    // The credentials are fetched as the configuration loads, before any request: the failure is in the log already.
    const failures = async (): Promise<Record<string, unknown>[]> => (await s.logs()).filter((l) => l['component'] === 'credentials' && l['msg'] === 'provider credentials could not be fetched');
    await waitFor('the credential failure in the log', async () => (await failures()).length > 0);
    const logged = await failures();
    assert.equal(logged.length, 1);
    assert.match(String(logged[0]!['error']), /400 InvalidIdentityToken/);
    assert.match(String(logged[0]!['source']), /web identity \(role arn:aws:iam::123456789012:role\/tollgate-bedrock\)/);
    assert.deepEqual(sts.calls.map((c) => c.status), [400], 'one exchange at load');
    const err = await assertSdkError(s.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] }), 502, 'provider_misconfigured');
    assert.match(err.message, /could not sign the request for provider default\/bedrock/);
    assert.ok(!err.message.includes('projected-sa-token'), 'the token leaked to the client');
    assert.deepEqual(sts.calls.map((c) => c.status), [400, 400], 'no valid credentials: the request asked STS again');
    assert.equal(s.bedrock['bedrock']!.received().length, 0);
    assert.ok(!JSON.stringify(await s.logs()).includes('projected-sa-token'), 'the token leaked to the log');
    sts.behaviour.token = 'eyJ.projected-sa-token.sig';
    sts.calls.length = 0;
  });

  it('chat is signed with the STS credentials (verified by the fake); STS is asked once for many requests', async () => {
    const s = stack!;
    const client = s.client();
    for (let i = 0; i < 3; i++) {
      const c = await client.chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(c.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    }
    const streamed = await client.chat.completions.stream({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }], stream: true }).finalChatCompletion();
    assert.equal(streamed.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    const got = s.bedrock['bedrock']!.received();
    assert.equal(got.length, 4);
    for (const r of got) {
      assert.equal(r.status, 200, 'signature accepted');
      assert.equal(r.headers['x-amz-security-token'], TEMPORARY.sessionToken);
      assert.match(String(r.headers['authorization']), /Credential=ASIAIRSAFAKE\/\d{8}\/eu-central-1\/bedrock\/aws4_request/);
      assert.ok(!JSON.stringify(r.headers).includes(TEST_KEY), 'client key leaked upstream');
    }
    assert.equal(sts.calls.length, 1, 'credentials cached between requests');
    assert.equal(sts.calls[0]!.status, 200);
    assert.equal(sts.calls[0]!.form['RoleArn'], ROLE);
    assert.equal(sts.calls[0]!.form['WebIdentityToken'], 'eyJ.projected-sa-token.sig');
  });
});
