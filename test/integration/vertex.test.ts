/**
 * Provider type `gcp-vertex-ai` end to end: the OpenAI SDK through real Envoy + Tollgate to a fake
 * Vertex AI endpoint whose bearer tokens come from a local fake token endpoint that
 * google-auth-library is pointed at (the service-account key's token_uri) and that verifies the
 * signed JWT assertion. Tokens are fetched once and reused.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { assertSdkError } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const EMAIL = 'tollgate@fake-project.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

function serviceAccount(key: typeof privateKey): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: 'fake-project',
    private_key_id: 'k1',
    private_key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: EMAIL,
    token_uri: '{{FAKE_ORIGIN:vertex}}/token',
  });
}

function files(): Record<string, string> {
  const provider = (name: string, model: string, secretKey: string): string => `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: gcp-vertex-ai
  endpoint: "{{FAKE:vertex}}"
  credentialSecretRef: { name: gcp, key: ${secretKey} }
  models:
    - name: ${model}
      upstreamModel: gemini-2.5-pro
`;
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `${provider('vertex', 'vertex-gemini', 'sa')}---
${provider('vertex-wrong', 'vertex-wrong-key', 'wrong')}---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: vertex-claude }
spec:
  type: gcp-vertex-ai
  endpoint: "{{FAKE:claude}}"
  credentialSecretRef: { name: gcp, key: sa }
  models:
    - name: vertex-claude
      upstreamModel: claude-sonnet-4-5@20250929
      maxTokens: 300
---
apiVersion: v1
kind: Secret
metadata: { name: gcp }
stringData:
  sa: '${serviceAccount(privateKey)}'
  wrong: '${serviceAccount(wrongKey)}'
`,
  };
}

describe('provider type gcp-vertex-ai (Gemini on Vertex AI, service-account tokens)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: files(),
      geminiFakes: { vertex: { vertex: { clientEmail: EMAIL, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } } },
      // Claude on Vertex: tokens are the ones the fake token endpoint (the Gemini fake's) issued.
      anthropicFakes: { claude: { vertex: { authorize: (token) => (stack.gemini['vertex']?.tokens.get(token) ?? 0) > Date.now() } } },
    });
  });
  after(() => stack?.stop());

  it('chat, streamed and not, with a bearer token from the token endpoint, fetched once and reused', async () => {
    const client = stack.client();
    const params = { model: 'vertex-gemini', messages: [{ role: 'user' as const, content: 'Hi' }] };
    const plain = await client.chat.completions.create(params);
    assert.equal(plain.choices[0]?.message.content, 'Hello from the fake Gemini model.');
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, plain.choices[0]?.message.content);
    assert.equal(final.choices[0]?.finish_reason, 'stop');
    await client.chat.completions.create(params);
    const fake = stack.gemini['vertex']!;
    const got = fake.received();
    assert.equal(got.length, 3);
    assert.ok(got.every((r) => r.status === 200));
    assert.equal(got[0]!.path, '/v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent');
    assert.equal(got[1]!.path, '/v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse');
    const auths = new Set(got.map((r) => r.headers['authorization']));
    assert.equal(auths.size, 1, 'one token for all requests');
    assert.ok(fake.tokens.has(String([...auths][0]).slice('Bearer '.length)));
    assert.equal(fake.tokens.size, 1, 'the token endpoint was asked once');
    assert.ok(!JSON.stringify(got[0]!.headers).includes(TEST_KEY), 'client key leaked upstream');
  });

  it('Claude on Vertex: rawPredict / streamRawPredict with anthropic_version and the model in the path, translated like Anthropic', async () => {
    const client = stack.client();
    const params = { model: 'vertex-claude', messages: [{ role: 'system' as const, content: 'Brief.' }, { role: 'user' as const, content: 'Hi' }] };
    const plain = await client.chat.completions.create(params);
    assert.equal(plain.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.equal(final.choices[0]?.message.content, plain.choices[0]?.message.content);
    const got = stack.anthropic['claude']!.received();
    assert.deepEqual(got.map((r) => [r.path.split(':').at(-1), r.status]), [['rawPredict', 200], ['streamRawPredict', 200]]);
    const body = got[0]!.body as Record<string, unknown>;
    assert.equal(body['anthropic_version'], 'vertex-2023-10-16');
    assert.equal(body['model'], undefined);
    assert.equal(body['max_tokens'], 300);
    assert.match(String(got[0]!.headers['authorization']), /^Bearer ya29\.fake-/);
  });

  it('a key the token endpoint refuses: a clear 502, nothing sent to Vertex', async () => {
    const before = stack.gemini['vertex']!.received().length;
    const err = await assertSdkError(stack.client().chat.completions.create({ model: 'vertex-wrong-key', messages: [{ role: 'user', content: 'Hi' }] }), 502, 'provider_misconfigured');
    assert.match(err.message, /could not sign the request for provider default\/vertex-wrong/);
    assert.equal(stack.gemini['vertex']!.received().length, before);
  });
});
