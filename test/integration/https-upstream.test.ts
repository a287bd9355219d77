/**
 * An HTTPS provider: a throwaway CA and server certificate made with openssl, a fake provider serving
 * TLS, and Envoy trusting only that CA. Proves the https route (DFP cluster with TLS, SNI and SAN
 * check) and that an untrusted certificate is refused rather than silently accepted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { assertOpenAIError, rawRequest } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

const run = promisify(execFile);
const KEY = 'sk-test-https-0001';

interface Pki {
  readonly dir: string;
  readonly caFile: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA and a server certificate for localhost/127.0.0.1 signed by it (openssl must be installed). */
async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'tg-pki-'));
  const p = (f: string): string => join(dir, f);
  const openssl = async (...args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir }).catch((err: unknown) => {
      throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${String(err)}`);
    });
  };
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=Tollgate Test CA');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost');
  await writeFile(p('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('san.ext'));
  return { dir, caFile: p('ca.crt'), cert: await readFile(p('server.crt'), 'utf8'), key: await readFile(p('server.key'), 'utf8') };
}

function files(): Record<string, string> {
  return {
    'config.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: secure }
spec:
  type: openai
  endpoint: "{{FAKE:secure}}"
  credentialSecretRef: { name: s, key: token }
  models: [{ name: gpt-4o-mini }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: untrusted }
spec:
  type: openai
  endpoint: "{{FAKE:untrusted}}"
  credentialSecretRef: { name: s, key: token }
  models: [{ name: untrusted-model }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: k }
spec: { secretRef: { name: s, key: client } }
---
apiVersion: v1
kind: Secret
metadata: { name: s }
stringData: { token: sk-upstream-https, client: ${KEY} }
`,
  };
}

describe('HTTPS upstream through real Envoy', () => {
  let stack: Stack;
  let pki: Pki;
  let rogue: Pki;
  before(async () => {
    pki = await makePki();
    rogue = await makePki(); // same names, different CA: Envoy must not trust it
    stack = await startStack({
      files: files(),
      fakes: { secure: {}, untrusted: {} },
      fakeTls: { secure: { cert: pki.cert, key: pki.key }, untrusted: { cert: rogue.cert, key: rogue.key } },
      upstreamCaFile: pki.caFile,
    });
  });
  after(async () => {
    await stack?.stop();
    for (const p of [pki, rogue]) if (p) await rm(p.dir, { recursive: true, force: true });
  });

  it('serves chat (plain and streamed) from an HTTPS provider with its credential', async () => {
    const client = stack.client(KEY);
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tls' }] });
    assert.equal(completion.choices[0]?.message.content, 'Hello from the Tollgate fake');
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'tls' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello from the Tollgate fake');
    const seen = stack.fakes['secure']!.received('/chat/completions');
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.headers['authorization'], 'Bearer sk-upstream-https');
    assert.equal(seen[0]?.headers['host'], `localhost:${stack.fakes['secure']!.port}`);
    assert.ok(!JSON.stringify(seen).includes(KEY));
  });

  it('refuses a provider whose certificate is not signed by a trusted CA (503, OpenAI shape)', async () => {
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
      key: KEY,
      body: JSON.stringify({ model: 'untrusted-model', messages: [] }),
    });
    assertOpenAIError(res, 503, 'provider_unavailable');
    assert.equal(stack.fakes['untrusted']!.requests.length, 0, 'no request reached the untrusted server');
  });
});
