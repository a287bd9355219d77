/**
 * Provider type `gcp-vertex-ai` end to end: the OpenAI SDK through real Envoy + Tollgate to a fake
 * Vertex AI endpoint whose bearer tokens come from a local fake token endpoint that
 * google-auth-library is pointed at (the service-account key's token_uri) and that verifies the
 * signed JWT assertion. Tokens are fetched once and reused.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../src/dev/local-stack.js';
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
  const provider = (name: string, model: string, secretKey: string, upstreamModel = 'gemini-2.5-pro'): string => `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: gcp-vertex-ai
  endpoint: "{{FAKE:vertex}}"
  credentialSecretRef: { name: gcp, key: ${secretKey} }
  models:
    - name: ${model}
      upstreamModel: ${upstreamModel}
`;
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `${provider('vertex', 'vertex-gemini', 'sa')}---
${provider('vertex-embeddings', 'vertex-embed', 'sa', 'text-embedding-005')}---
${provider('vertex-gemini-embeddings', 'vertex-gemini-embed', 'sa', 'gemini-embedding-001')}---
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
    // The token is fetched as the configuration loads, before any request.
    await waitFor('the token fetched at load', () => Promise.resolve(stack.gemini['vertex']!.tokens.size === 1));
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

  it('embeddings through :predict with the bearer token: floats and base64, dimensions, token counts as usage', async () => {
    const fake = stack.gemini['vertex']!;
    const before = fake.received().length;
    const vector = (text: string, n = 8): number[] => Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 97) / 97).toFixed(6)));
    const client = stack.client();
    const floats = await client.embeddings.create({ model: 'vertex-embed', input: ['hello there world', 'a'], encoding_format: 'float' });
    assert.deepEqual(floats.data.map((d) => [d.index, d.embedding]), [[0, vector('hello there world')], [1, vector('a')]]);
    assert.equal(floats.usage.prompt_tokens, 4, "the sum of Vertex's token_count statistics");
    // The SDK's default: base64 float32 on the wire, decoded by the SDK.
    const decoded = await client.embeddings.create({ model: 'vertex-embed', input: 'abc', dimensions: 16 });
    assert.equal(decoded.data[0]!.embedding.length, 16);
    vector('abc', 16).forEach((v, j) => assert.ok(Math.abs((decoded.data[0]!.embedding[j] as number) - v) < 1e-6));
    const got = fake.received().slice(before);
    assert.deepEqual(got.map((r) => [r.path, r.status]), [
      ['/v1/projects/fake-project/locations/us-central1/publishers/google/models/text-embedding-005:predict', 200],
      ['/v1/projects/fake-project/locations/us-central1/publishers/google/models/text-embedding-005:predict', 200],
    ]);
    assert.deepEqual(got[0]!.body, { instances: [{ content: 'hello there world' }, { content: 'a' }] });
    assert.deepEqual(got[1]!.body, { instances: [{ content: 'abc' }], parameters: { outputDimensionality: 16 } });
    assert.match(String(got[0]!.headers['authorization']), /^Bearer ya29\.fake-/);
  });

  it('embeddings the model cannot take are a clear 400 with nothing sent: too many inputs, token arrays, Claude', async () => {
    const fake = stack.gemini['vertex']!;
    const before = fake.received().length;
    const client = stack.client();
    await assertSdkError(client.embeddings.create({ model: 'vertex-gemini-embed', input: ['a', 'b'] }), 400, 'invalid_value');
    await assertSdkError(client.embeddings.create({ model: 'vertex-embed', input: Array.from({ length: 251 }, () => 'x') }), 400, 'invalid_value');
    await assertSdkError(client.embeddings.create({ model: 'vertex-embed', input: [[1, 2, 3]] }), 400, 'unsupported_parameter');
    const claudeBefore = stack.anthropic['claude']!.received().length;
    await assertSdkError(client.embeddings.create({ model: 'vertex-claude', input: 'hi' }), 400, 'unsupported_parameter');
    assert.equal(stack.anthropic['claude']!.received().length, claudeBefore);
    assert.equal(fake.received().length, before);
    const one = await client.embeddings.create({ model: 'vertex-gemini-embed', input: 'one', encoding_format: 'float' });
    assert.equal(one.data.length, 1);
  });
});
