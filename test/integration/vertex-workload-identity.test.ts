/**
 * Provider type `gcp-vertex-ai` with GKE Workload Identity: no credential Secret; Tollgate runs as a
 * Pod would, with the metadata server at GCE_METADATA_HOST (a fake that requires
 * `Metadata-Flavor: Google` and hands out tokens the fake Vertex AI accepts). The OpenAI SDK goes
 * through real Envoy and Tollgate; google-auth-library finds the metadata server through Application
 * Default Credentials. A refused token is a clear 502 with nothing sent; then one token serves Gemini
 * chat (streamed and not), Claude on Vertex and embeddings.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeGceMetadata } from '../../src/dev/fake-gce-metadata.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const provider = (name: string, model: string, upstreamModel: string, fake = 'vertex'): string => `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: gcp-vertex-ai
  endpoint: "{{FAKE:${fake}}}"
  models:
    - name: ${model}
      upstreamModel: ${upstreamModel}
`;

describe('gcp-vertex-ai with GKE Workload Identity (no credential Secret, metadata server tokens)', () => {
  let stack: Stack | undefined;
  let gcloudDir = '';
  // Tokens are minted by the fake Vertex AI (started by the stack), so it accepts exactly these.
  const metadata = new FakeGceMetadata((lifetimeS) => {
    const vertex = stack?.gemini['vertex'];
    if (!vertex) throw new Error('the fake Vertex AI is not running');
    return vertex.mintToken(lifetimeS);
  });
  before(async () => {
    // The Kubernetes service account may not act as the Google one while Tollgate starts: the first test.
    metadata.behaviour.refuse = "Unable to generate access token; IAM returned 403 Forbidden: Permission 'iam.serviceAccounts.getAccessToken' denied";
    await metadata.start();
    gcloudDir = await mkdtemp(join(tmpdir(), 'tollgate-gcloud-'));
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    stack = await startStack({
      files: {
        'keys.yaml': basicConfig()['keys.yaml'] as string,
        'providers.yaml': [
          provider('vertex', 'vertex-gemini', 'gemini-2.5-pro'),
          provider('vertex-embeddings', 'vertex-embed', 'text-embedding-005'),
          provider('vertex-claude', 'vertex-claude', 'claude-sonnet-4-5@20250929', 'claude'),
        ].join('---\n'),
      },
      geminiFakes: { vertex: { vertex: { clientEmail: 'unused-key@fake-project.iam.gserviceaccount.com', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } } },
      anthropicFakes: { claude: { vertex: { authorize: (token) => (stack?.gemini['vertex']?.tokens.get(token) ?? 0) > Date.now() } } },
      // Only the metadata server may answer for Application Default Credentials: no key file, no gcloud login.
      env: { GCE_METADATA_HOST: metadata.host, GCE_METADATA_IP: '', METADATA_SERVER_DETECTION: '', GOOGLE_APPLICATION_CREDENTIALS: '', CLOUDSDK_CONFIG: gcloudDir },
    });
  });
  after(async () => {
    await stack?.stop();
    await metadata.stop();
    if (gcloudDir) await rm(gcloudDir, { recursive: true, force: true });
  });

  it('the metadata server refusing a token when the configuration loads: logged at once; a request gets a clear 502, nothing sent to Vertex', async () => {
    const s = stack!;
    const failures = async (): Promise<Record<string, unknown>[]> => (await s.logs()).filter((l) => l['component'] === 'credentials' && l['msg'] === 'provider credentials could not be fetched');
    await waitFor('the credential failure in the log', async () => (await failures()).length > 0);
    const logged = await failures();
    assert.equal(logged.length, 1, 'one source for the project, one report');
    assert.match(String(logged[0]!['error']), /iam\.serviceAccounts\.getAccessToken/);
    assert.deepEqual(metadata.tokenCalls().map((c) => c.status), [403], 'one token request at load, before any client request');
    const err = await assertSdkError(s.client().chat.completions.create({ model: 'vertex-gemini', messages: [{ role: 'user', content: 'Hi' }] }), 502, 'provider_misconfigured');
    assert.match(err.message, /could not sign the request for provider default\/vertex/);
    assert.deepEqual(metadata.tokenCalls().map((c) => c.status), [403, 403], 'no token: the request asked again');
    assert.equal(s.gemini['vertex']!.received().length, 0);
    metadata.behaviour.refuse = undefined;
    metadata.calls.length = 0;
  });

  it('chat (streamed and not), Claude on Vertex and embeddings carry one metadata-server token, fetched once', async () => {
    const s = stack!;
    const client = s.client();
    const params = { model: 'vertex-gemini', messages: [{ role: 'user' as const, content: 'Hi' }] };
    const plain = await client.chat.completions.create(params);
    assert.equal(plain.choices[0]?.message.content, 'Hello from the fake Gemini model.');
    const streamed = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.equal(streamed.choices[0]?.message.content, plain.choices[0]?.message.content);
    const claude = await client.chat.completions.create({ model: 'vertex-claude', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(claude.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
    const embedded = await client.embeddings.create({ model: 'vertex-embed', input: 'hello there', encoding_format: 'float' });
    assert.equal(embedded.data.length, 1);

    const vertex = s.gemini['vertex']!;
    const got = vertex.received();
    assert.equal(got.length, 3);
    assert.ok(got.every((r) => r.status === 200), 'the fake Vertex AI accepted every token');
    const claudeGot = s.anthropic['claude']!.received();
    assert.deepEqual(claudeGot.map((r) => r.status), [200]);
    const auths = new Set([...got, ...claudeGot].map((r) => String(r.headers['authorization'])));
    assert.equal(auths.size, 1, 'one token for every request');
    const token = [...auths][0]!.slice('Bearer '.length);
    assert.ok((vertex.tokens.get(token) ?? 0) > Date.now(), 'a token the metadata server handed out');
    assert.ok(!JSON.stringify(got[0]!.headers).includes(TEST_KEY), 'client key leaked upstream');

    const tokenCalls = metadata.tokenCalls();
    assert.equal(tokenCalls.length, 1, 'the metadata server was asked once (the embeddings provider names the same project)');
    assert.equal(tokenCalls[0]!.flavor, 'Google');
    assert.match(tokenCalls[0]!.query['scopes'] ?? '', /auth\/cloud-platform/);
    assert.ok(metadata.calls.every((c) => c.flavor === 'Google'), 'every metadata request carried Metadata-Flavor: Google');
  });
});
