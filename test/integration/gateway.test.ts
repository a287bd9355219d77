/**
 * The gateway end to end: real Envoy + Tollgate + fake providers (real HTTP servers that record what
 * they received), driven by the official openai client. One stack for the whole file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEY_ALL = 'sk-test-gateway-all-0001';
const KEY_LIMITED = 'sk-test-gateway-limited-0002';
const PROMPT = 'tell me a secret-prompt-marker story';

const FILES = {
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  credentialSecretRef: { name: upstream, key: openai }
  models:
    - name: gpt-4o-mini
    - name: gpt-4o
      upstreamModel: gpt-4o-2024-08-06
    - name: text-embedding-3-small
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: azure }
spec:
  type: azure-openai
  endpoint: "{{FAKE_ORIGIN:azure}}"
  apiVersion: "2024-06-01"
  credentialSecretRef: { name: upstream, key: azure }
  models:
    - name: az-gpt-4o
      upstreamModel: prod-gpt4o-deployment
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: vllm }
spec:
  type: openai-compatible
  endpoint: "{{FAKE:vllm}}"
  models:
    - name: llama-3.1-8b
      upstreamModel: meta-llama/Llama-3.1-8B-Instruct
---
apiVersion: v1
kind: Secret
metadata: { name: upstream }
stringData: { openai: sk-upstream-openai-cred, azure: azure-upstream-cred }
`,
  'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  modelMappings: { fast: gpt-4o-mini, "gpt-4-*": gpt-4o }
`,
  'keys.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-all }
spec:
  secretRef: { name: client-keys, key: all }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-limited }
spec:
  secretRef: { name: client-keys, key: limited }
  models: ["gpt-4o-mini*", "text-embedding-*"]
  modelMappings: { cheap: gpt-4o-mini }
---
apiVersion: v1
kind: Secret
metadata: { name: client-keys }
stringData: { all: ${KEY_ALL}, limited: ${KEY_LIMITED} }
`,
};

describe('gateway through real Envoy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: FILES,
      fakes: { primary: { chunks: 5, chunkIntervalMs: 100 }, azure: {}, vllm: {} },
    });
  });
  after(() => stack?.stop());

  const last = (fake: string, suffix: string) => {
    const r = stack.fakes[fake]!.received(suffix).at(-1);
    assert.ok(r, `${fake} received no ${suffix}`);
    return r;
  };
  const assertNoClientKey = (seen: { headers: unknown; body: unknown }): void => {
    const dump = JSON.stringify(seen);
    assert.ok(!dump.includes(KEY_ALL) && !dump.includes(KEY_LIMITED), `client key reached the upstream: ${dump}`);
  };

  it('serves a non-streaming chat completion; the upstream sees its own credential, never the client key', async () => {
    const completion = await stack.client(KEY_ALL).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Hello from the Tollgate fake');
    const seen = last('primary', '/chat/completions');
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.headers['authorization'], 'Bearer sk-upstream-openai-cred');
    assert.equal(seen.headers['host'], `127.0.0.1:${stack.fakes['primary']!.port}`);
    for (const internal of ['x-tollgate-route', 'x-tollgate-plan', 'x-envoy-max-retries', 'x-envoy-attempt-count']) {
      assert.equal(seen.headers[internal], undefined, `${internal} stays inside Envoy`);
    }
    assertNoClientKey(seen);
  });

  it('maps an alias to the served model and sends the provider its upstream model name', async () => {
    const completion = await stack.client(KEY_ALL).chat.completions.create({
      model: 'gpt-4-turbo',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    assert.equal(completion.model, 'gpt-4o-2024-08-06');
    const seen = last('primary', '/chat/completions');
    assert.equal((seen.body as { model: string }).model, 'gpt-4o-2024-08-06');
    assert.equal(seen.headers['content-length'], String(Buffer.byteLength(JSON.stringify(seen.body))));
  });

  it('accepts the key in x-api-key and strips it before the upstream', async () => {
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
      headers: { 'x-api-key': KEY_ALL },
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 200, res.text);
    const seen = last('primary', '/chat/completions');
    assert.equal(seen.headers['x-api-key'], undefined);
    assert.equal((seen.body as { model: string }).model, 'gpt-4o-mini');
    assertNoClientKey(seen);
  });

  it('streams: the first chunk reaches the client before the upstream has finished', async () => {
    const stream = await stack.client(KEY_ALL).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let firstChunkAt: number | undefined;
    let text = '';
    let chunks = 0;
    let usage: unknown;
    for await (const chunk of stream) {
      firstChunkAt ??= Date.now();
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Hello from the Tollgate fake');
    assert.equal(chunks, 8, 'role chunk + 5 content chunks + finish chunk + usage chunk');
    assert.ok(usage, 'usage chunk arrived');
    const seen = last('primary', '/chat/completions');
    assert.equal((seen.body as { stream: boolean }).stream, true);
    assert.ok(seen.completedAt !== undefined && firstChunkAt !== undefined);
    assert.ok(
      firstChunkAt < seen.completedAt,
      `first chunk at ${firstChunkAt} must precede the upstream finishing at ${seen.completedAt} (no buffering)`,
    );
  });

  it('a client that leaves mid-stream cancels the upstream stream, and the gateway keeps serving', async () => {
    const controller = new AbortController();
    const stream = await stack.client(KEY_ALL).chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'going away' }], stream: true },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    const seen = last('primary', '/chat/completions');
    controller.abort();
    // The SDK ends or rejects the iteration on abort, depending on timing; either is fine here.
    await (async () => {
      for (let r = await iterator.next(); !r.done; r = await iterator.next());
    })().catch(() => undefined);
    const deadline = Date.now() + 5000;
    while (seen.abortedAt === undefined && seen.completedAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen.abortedAt !== undefined, 'the upstream connection was closed before the stream finished');
    assert.equal(seen.completedAt, undefined);
    const next = await stack.client(KEY_ALL).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.ok(next.choices[0]?.message.content);
  });

  it('serves embeddings', async () => {
    const res = await stack.client(KEY_LIMITED).embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'bb'] });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]?.embedding.length, 8);
    const seen = last('primary', '/embeddings');
    assert.equal(seen.path, '/v1/embeddings');
    assert.equal(seen.headers['authorization'], 'Bearer sk-upstream-openai-cred');
    assertNoClientKey(seen);
  });

  it('lists only the models a key may use, with the aliases that lead to them', async () => {
    const all = (await stack.client(KEY_ALL).models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(all, ['az-gpt-4o', 'fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3.1-8b', 'text-embedding-3-small']);
    const limited = (await stack.client(KEY_LIMITED).models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(limited, ['cheap', 'fast', 'gpt-4o-mini', 'text-embedding-3-small']);
  });

  it('routes to Azure OpenAI: deployment path, api-version, api-key header, no bearer token', async () => {
    const completion = await stack.client(KEY_ALL).chat.completions.create({
      model: 'az-gpt-4o',
      messages: [{ role: 'user', content: 'Hi Azure' }],
    });
    assert.ok(completion.choices[0]?.message.content);
    const seen = last('azure', '/chat/completions');
    assert.equal(seen.path, '/openai/deployments/prod-gpt4o-deployment/chat/completions?api-version=2024-06-01');
    assert.equal(seen.headers['api-key'], 'azure-upstream-cred');
    assert.equal(seen.headers['authorization'], undefined);
    assert.equal((seen.body as { model: string }).model, 'prod-gpt4o-deployment');
    assertNoClientKey(seen);
  });

  it('routes to an OpenAI-compatible engine without a credential', async () => {
    await stack.client(KEY_ALL).chat.completions.create({ model: 'llama-3.1-8b', messages: [{ role: 'user', content: 'Hi' }] });
    const seen = last('vllm', '/chat/completions');
    assert.equal(seen.headers['authorization'], undefined);
    assert.equal(seen.headers['api-key'], undefined);
    assert.equal((seen.body as { model: string }).model, 'meta-llama/Llama-3.1-8B-Instruct');
    assertNoClientKey(seen);
  });

  it('keeps the x-request-id a client sends, and creates one otherwise (upstream and response agree)', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'id' }] });
    const given = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: KEY_ALL, body, headers: { 'x-request-id': 'client-chosen-id-42' } });
    assert.equal(given.status, 200);
    assert.equal(given.headers.get('x-request-id'), 'client-chosen-id-42');
    assert.equal(last('primary', '/chat/completions').headers['x-request-id'], 'client-chosen-id-42');

    const created = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: KEY_ALL, body });
    const id = created.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(last('primary', '/chat/completions').headers['x-request-id'], id);

    const refused = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: 'sk-wrong', body, headers: { 'x-request-id': 'refused-id-7' } });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('x-request-id'), 'refused-id-7', 'local replies carry the id too');
  });

  it('writes one access log line per request (ids, key name, models, provider, status, latency) without key or prompt', async () => {
    const requestId = 'log-check-request-1';
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
      key: KEY_ALL,
      headers: { 'x-request-id': requestId },
      body: JSON.stringify({ model: 'gpt-4-0613', messages: [{ role: 'user', content: PROMPT }] }),
    });
    assert.equal(res.status, 200);
    let line: Record<string, unknown> | undefined;
    const deadline = Date.now() + 5000;
    while (!line && Date.now() < deadline) {
      line = (await stack.logs()).find((l) => l['msg'] === 'request' && l['requestId'] === requestId);
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(line, 'access log line written');
    assert.equal(line['consumer'], 'default/team-all');
    assert.equal(line['requestedModel'], 'gpt-4-0613');
    assert.equal(line['model'], 'gpt-4o');
    assert.equal(line['upstreamModel'], 'gpt-4o-2024-08-06');
    assert.equal(line['provider'], 'default/primary');
    assert.equal(line['status'], 200);
    assert.equal(typeof line['durationMs'], 'number');
    const logText = JSON.stringify(await stack.logs());
    for (const secret of [KEY_ALL, KEY_LIMITED, 'sk-upstream-openai-cred', 'azure-upstream-cred', 'secret-prompt-marker']) {
      assert.ok(!logText.includes(secret), `log contains ${secret}`);
    }
  });

  it('exports request metrics by consumer, provider, model, upstream model and status', async () => {
    const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(
      text,
      /tollgate_requests_total\{consumer="default\/team-all",provider="default\/primary",model="gpt-4o",upstream_model="gpt-4o-2024-08-06",status="200",api="chat"\} [1-9]/,
    );
    assert.match(text, /tollgate_request_duration_seconds_bucket\{le="[^"]+",provider="default\/azure",model="az-gpt-4o"\} 1/);
    assert.match(text, /tollgate_requests_total\{consumer="-",provider="-",model="-",upstream_model="-",status="401",api="chat"\} [1-9]/);
    assert.match(text, /tollgate_config_reloads_total\{result="applied"\} 1/);
  });
});
