/**
 * Provider type aws-bedrock in a Pod with EKS Pod Identity: no credential Secret; Tollgate runs with
 * the container credentials environment the Pod Identity webhook sets (AWS_CONTAINER_CREDENTIALS_FULL_URI,
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), fetches temporary credentials (through the AWS SDK's
 * fromHttp) from a fake Pod Identity Agent that checks the Authorization header against the token
 * file, and signs Converse requests with them, which the fake Bedrock runtime verifies (signature and
 * session token). Real Envoy, real Tollgate, the official OpenAI client.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeContainerCredentials } from '../../src/dev/fake-container-credentials.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { ambientCredentialsBedrock } from '../harness/provider-fixtures.js';

const FIRST = { accessKeyId: 'ASIAPODIDFIRST', secretAccessKey: 'pod-identity-secret-1', sessionToken: 'pod-identity-session-1' };
const SECOND = { accessKeyId: 'ASIAPODIDSECOND', secretAccessKey: 'pod-identity-secret-2', sessionToken: 'pod-identity-session-2' };
const TOKEN = 'eyJ.eks-pod-identity-token.sig';
const MODEL_ID = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
/** Strings that must never reach a log line or a client. */
const SECRETS = [TOKEN, FIRST.secretAccessKey, FIRST.sessionToken, SECOND.secretAccessKey, SECOND.sessionToken, 'a-token-the-agent-refuses'];

describe('aws-bedrock with EKS Pod Identity (container credentials, no credential Secret)', () => {
  const agent = new FakeContainerCredentials({ token: TOKEN, ...FIRST });
  let stack: Stack | undefined;
  let dir = '';
  let tokenFile = '';
  const credentialLines = async (msg: string): Promise<Record<string, unknown>[]> =>
    (await stack!.logs()).filter((l) => l['component'] === 'credentials' && l['msg'] === msg);
  const assertNoSecretLogged = async (): Promise<void> => {
    const text = JSON.stringify(await stack!.logs());
    for (const s of SECRETS) assert.ok(!text.includes(s), `${s} leaked to the log`);
  };

  before(async () => {
    await agent.start();
    dir = await mkdtemp(join(tmpdir(), 'tollgate-podid-'));
    tokenFile = join(dir, 'eks-pod-identity-token');
    // The token file holds a token the agent refuses while Tollgate starts (the first test).
    await writeFile(tokenFile, 'a-token-the-agent-refuses');
    stack = await startStack({
      files: {
        'keys.yaml': basicConfig()['keys.yaml'] as string,
        'providers.yaml': ambientCredentialsBedrock(MODEL_ID),
      },
      bedrockFakes: { bedrock: { ...FIRST, region: 'eu-central-1' } },
      // Earlier sources of the chain are cleared so the runner's own environment cannot mask Pod Identity.
      env: {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
        AWS_CONTAINER_AUTHORIZATION_TOKEN: '',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_SESSION_TOKEN: '',
        AWS_ROLE_ARN: '',
        AWS_WEB_IDENTITY_TOKEN_FILE: '',
      },
    });
  });
  after(async () => {
    await stack?.stop();
    await agent.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the agent refusing the token: logged at load (status and code, no secret); a request gets a clear OpenAI-shaped 502, nothing sent to Bedrock', async () => {
    const s = stack!;
    await waitFor('the credential failure in the log', async () => (await credentialLines('provider credentials could not be fetched')).length > 0);
    const [logged] = await credentialLines('provider credentials could not be fetched');
    assert.match(String(logged!['source']), /^container credentials \(http:\/\/127\.0\.0\.1:\d+\/v1\/credentials\)$/);
    assert.match(String(logged!['error']), /Server responded with status: 401 \(AccessDeniedException: Service account token is invalid\)/);
    assert.ok(agent.calls.length > 0 && agent.calls.every((c) => c.status === 401 && c.authorization === 'a-token-the-agent-refuses'));
    const before = agent.calls.length;
    const err = await assertSdkError(s.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] }), 502, 'provider_misconfigured');
    assert.match(err.message, /could not sign the request for provider default\/bedrock/);
    for (const secret of SECRETS) assert.ok(!err.message.includes(secret), `${secret} leaked to the client`);
    assert.ok(agent.calls.length > before, 'no valid credentials: the request asked the agent again');
    assert.equal(s.bedrock['bedrock']!.received().length, 0);
    await assertNoSecretLogged();
  });

  it('chat through Envoy is signed with the Pod Identity credentials (verified by the fake Bedrock); the token file is sent as Authorization', async () => {
    const s = stack!;
    // The kubelet writes the valid token; the agent hands out credentials close to expiry (2 minutes,
    // inside the 5-minute refresh window), so the next requests refresh them in the background.
    await writeFile(tokenFile, TOKEN);
    agent.behaviour.lifetimeS = 120;
    agent.calls.length = 0;
    const c = await s.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    const got = s.bedrock['bedrock']!.received();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.status, 200, 'signature accepted');
    assert.equal(got[0]!.headers['x-amz-security-token'], FIRST.sessionToken);
    assert.match(String(got[0]!.headers['authorization']), /Credential=ASIAPODIDFIRST\/\d{8}\/eu-central-1\/bedrock\/aws4_request/);
    assert.ok(!JSON.stringify(got[0]!.headers).includes(TEST_KEY), 'client key leaked upstream');
    assert.deepEqual(agent.calls.map((x) => [x.method, x.path, x.authorization, x.status]), [['GET', '/v1/credentials', TOKEN, 200]]);
  });

  it('credentials near expiry are refreshed in the background: the request is signed with the valid ones, the next with the new ones; then cached', async () => {
    const s = stack!;
    // The agent now hands out new credentials valid for hours.
    Object.assign(agent.behaviour, { ...SECOND, lifetimeS: 6 * 3600 });
    // Still valid: signed with FIRST at once (the fake Bedrock accepts only FIRST yet), and a refresh starts.
    const c = await s.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    // Fetched twice in all: the credentials of the previous test, then this refresh.
    await waitFor('the background refresh', async () => (await credentialLines('provider credentials fetched')).length >= 2);
    assert.deepEqual(agent.calls.map((x) => x.status), [200, 200]);
    // The old keys stop working at Bedrock; the gateway already holds the new ones.
    Object.assign(s.bedrock['bedrock']!.behaviour, SECOND);
    const client = s.client();
    const plain = await client.chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(plain.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    const streamed = await client.chat.completions.stream({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }], stream: true }).finalChatCompletion();
    assert.equal(streamed.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    const got = s.bedrock['bedrock']!.received();
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200, 200]);
    assert.deepEqual(got.map((r) => r.headers['x-amz-security-token']), [FIRST.sessionToken, FIRST.sessionToken, SECOND.sessionToken, SECOND.sessionToken]);
    assert.match(String(got[3]!.headers['authorization']), /Credential=ASIAPODIDSECOND\//);
    assert.equal(agent.calls.length, 2, 'the new credentials are cached: no fetch on the request path');
    await assertNoSecretLogged();
  });
});
