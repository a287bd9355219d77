/**
 * HTTP+SSE MCP clients across replicas: the official SDK's SSEClientTransport keeps its stream on
 * replica a while every POST goes to replica b (a load balancer without affinity). Replica b
 * authenticates the POST and relays it through Redis to a, which answers on the stream. Real Envoy,
 * real Tollgate processes, real Redis; the MCP upstream is an SDK server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { McpError, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { FakeMcpServer } from '../../src/dev/fake-mcp.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEY_ALL = 'sk-test-sse-all-0001';
const KEY_LIMITED = 'sk-test-sse-limited-0002';
const KEY_RATE = 'sk-test-sse-rate-0003';
const UPSTREAM_TOKEN = 'upstream-sse-token';
const SECRET = 'test-sse-relay-secret';

function config(search: string): Record<string, string> {
  return {
    'mcp.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: search, namespace: tools }
spec:
  url: "${search}"
  credential: { secretRef: { name: mcp-creds, key: search } }
  timeoutSeconds: 3
  tools: { exclude: [admin_reset] }
---
apiVersion: v1
kind: Secret
metadata: { name: mcp-creds, namespace: tools }
stringData: { search: ${UPSTREAM_TOKEN} }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: all, namespace: tools }
spec:
  secretRef: { name: keys, key: all }
  mcp: { servers: ["*"] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: limited, namespace: tools }
spec:
  secretRef: { name: keys, key: limited }
  mcp: { servers: [search], tools: ["search__echo"] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: rate, namespace: tools }
spec:
  secretRef: { name: keys, key: rate }
  mcp: { servers: [search] }
  limits: { toolCallsPerMinute: 2 }
---
apiVersion: v1
kind: Secret
metadata: { name: keys, namespace: tools }
stringData: { all: ${KEY_ALL}, limited: ${KEY_LIMITED}, rate: ${KEY_RATE} }
`,
  };
}

const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text: string }).text;

/** Relayed POSTs a replica accepted (202) on the HTTP+SSE endpoints, from its metrics. */
async function accepted(stack: Stack): Promise<number> {
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  const m = /tollgate_mcp_http_requests_total\{endpoint="legacy-sse",status="202"\} (\d+)/.exec(metrics);
  return Number(m?.[1] ?? 0);
}

/** HTTP+SSE POSTs a replica relayed to another, with this outcome, from its metrics. */
async function relayed(stack: Stack, outcome: string): Promise<number> {
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  const m = new RegExp(`tollgate_mcp_sse_relays_total\\{outcome="${outcome}"\\} (\\d+)`).exec(metrics);
  return Number(m?.[1] ?? 0);
}

/** Opens an HTTP+SSE stream with plain fetch; resolves the message URL path the endpoint event announced. */
async function openRaw(stack: Stack, path: string, key: string, signal: AbortSignal): Promise<string> {
  const res = await fetch(stack.baseUrl + path, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' }, signal });
  assert.equal(res.status, 200);
  const reader = res.body?.getReader();
  assert.ok(reader);
  let seen = '';
  for (;;) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream announced its message endpoint');
    seen += new TextDecoder().decode(value);
    const m = /event: endpoint\ndata: (\S+)\n/.exec(seen);
    if (m?.[1]) return m[1];
  }
}

describe('HTTP+SSE MCP sessions across two Tollgate replicas (POSTs relayed through Redis to the stream)', () => {
  const up = new FakeMcpServer({ transport: 'streamable-http', name: 'search', token: UPSTREAM_TOKEN });
  let redis: RedisServer;
  let a: Stack;
  let b: Stack;
  let solo: Stack;
  const clients: Client[] = [];
  const aborts: AbortController[] = [];

  before(async () => {
    await up.start();
    redis = await startRedis();
    const files = config(up.url);
    const env = { TOLLGATE_MCP_SESSION_SECRET: SECRET };
    [a, b, solo] = await Promise.all([
      startStack({ files, gatewayArgs: ['--redis-url', redis.url, '--mcp-max-body-bytes', '65536'], env }),
      startStack({ files, gatewayArgs: ['--redis-url', redis.url, '--mcp-max-body-bytes', '65536'], env }),
      // No Redis: HTTP+SSE sessions hold on the replica that opened the stream only.
      startStack({ files, env }),
    ]);
  });
  after(async () => {
    for (const c of aborts) c.abort();
    for (const c of clients) await c.close().catch(() => undefined);
    if (a?.gateway.running) a.gateway.child.kill('SIGCONT');
    await Promise.all([a?.stop(), b?.stop(), solo?.stop()]);
    await redis?.stop();
    await up.stop();
  });

  /** The SDK client with its stream on `streamOn` and every POST sent to `postTo`. */
  async function across(streamOn: Stack, postTo: Stack, path: string, key: string): Promise<Client> {
    const client = new Client({ name: 'old-client', version: '1.0.0' });
    const transport = new SSEClientTransport(new URL(streamOn.baseUrl + path), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
      fetch: (url, init) => {
        if (init?.method !== 'POST') return fetch(url, init);
        const target = new URL(url.toString());
        const other = new URL(postTo.baseUrl);
        target.host = other.host;
        return fetch(target, init);
      },
    });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  it('tools/list and tools/call POSTed to replica b are answered on the stream held by replica a (per server and aggregated)', async () => {
    const [onA, onB, relayedB] = [await accepted(a), await accepted(b), await relayed(b, 'accepted')];
    const one = await across(a, b, '/mcp/tools/search/sse', KEY_ALL);
    const names = (await one.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('add'));
    assert.ok(!names.includes('admin_reset'), 'the MCPServer filter applies to relayed messages');
    assert.equal(text(await one.callTool({ name: 'echo', arguments: { text: 'relayed' } })), 'search: relayed');
    const agg = await across(a, b, '/mcp/sse', KEY_ALL);
    assert.equal(text(await agg.callTool({ name: 'search__add', arguments: { a: 2, b: 3 } })), '5');
    // initialize, notifications/initialized, tools/list, tools/call; initialize + initialized + tools/call.
    assert.ok((await accepted(b)) - onB >= 7, 'the POSTs went to replica b');
    assert.equal(await accepted(a), onA, 'replica a got no POST itself');
    assert.equal((await relayed(b, 'accepted')) - relayedB, (await accepted(b)) - onB, 'every one was relayed to replica a');
  });

  it("the owner applies the key's tool allow-list and tool-call limit to relayed calls", async () => {
    const limited = await across(a, b, '/mcp/sse', KEY_LIMITED);
    assert.deepEqual((await limited.listTools()).tools.map((t) => t.name), ['search__echo']);
    const calls = up.calls.length;
    await assert.rejects(limited.callTool({ name: 'search__add', arguments: { a: 1, b: 2 } }), (e: unknown) => e instanceof McpError && /not allowed/.test(e.message));
    const rate = await across(a, b, '/mcp/tools/search/sse', KEY_RATE);
    for (let i = 0; i < 2; i++) assert.equal(text(await rate.callTool({ name: 'echo', arguments: { text: `r${i}` } })), `search: r${i}`);
    await assert.rejects(rate.callTool({ name: 'echo', arguments: { text: 'over' } }), (e: unknown) => e instanceof McpError && e.code === -32029);
    assert.equal(up.calls.length, calls + 2, 'refused calls never reached the upstream');
  });

  it('progress of a relayed call reaches the stream, and a cancellation POSTed to replica b ends the call on replica a', async () => {
    const client = await across(a, b, '/mcp/tools/search/sse', KEY_ALL);
    const progress: Progress[] = [];
    const done = await client.callTool({ name: 'work', arguments: { steps: 3, ms: 50 } }, undefined, { onprogress: (p) => void progress.push(p) });
    assert.equal(text(done), 'search: worked 3 steps');
    assert.ok(progress.length >= 2, `progress reached the client (${progress.length})`);
    assert.equal(progress[0]?.progress, 1);

    const before = { calls: up.calls.length, cancelled: up.cancelled.length };
    const abort = new AbortController();
    const started = Date.now();
    const running = client.callTool({ name: 'slow', arguments: { ms: 20_000 } }, undefined, { signal: abort.signal });
    await waitFor('the call reached the upstream', async () => up.calls.length > before.calls);
    abort.abort('changed my mind');
    await assert.rejects(running);
    await waitFor('replica a cancelled the call upstream', async () => up.cancelled.length > before.cancelled, 2500);
    assert.ok(Date.now() - started < 3000, 'cancelled, not timed out');
    assert.doesNotMatch(up.cancelled.at(-1)?.reason ?? '', /timed out/i);
  });

  it('an unknown session is 404; a key other than the stream\'s is refused; the stream\'s own key is accepted', async () => {
    const post = (stack: Stack, path: string, key: string | undefined, body: unknown): Promise<Response> =>
      fetch(stack.baseUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
      });
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const unknown = await post(b, '/mcp/messages?sessionId=00000000-0000-0000-0000-000000000000', KEY_ALL, list);
    assert.equal(unknown.status, 404);
    const error = ((await unknown.json()) as { error: { code: number; message: string } }).error;
    assert.match(error.message, /Session not found: no replica holds an open stream/);

    const abort = new AbortController();
    aborts.push(abort);
    const messages = await openRaw(a, '/mcp/sse', KEY_ALL, abort.signal);
    assert.match(messages, /^\/mcp\/messages\?sessionId=/);
    assert.equal((await post(b, messages, undefined, list)).status, 401);
    const other = await post(b, messages, KEY_LIMITED, list);
    assert.equal(other.status, 404, "another key cannot post into this stream's session");
    assert.match(((await other.json()) as { error: { message: string } }).error.message, /Session not found/);
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    assert.equal((await post(b, messages, KEY_ALL, init)).status, 202);
    // A body over the limit is refused by the receiving replica, as for a local POST.
    const big = await post(b, messages, KEY_ALL, { jsonrpc: '2.0', method: 'notifications/x', params: { pad: 'x'.repeat(100_000) } });
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: { message: string } }).error.message, /limit 65536 bytes/);
    // The stream closed: its session is no longer reachable from any replica.
    abort.abort();
    await waitFor('the session is gone', async () => (await post(b, messages, KEY_ALL, list)).status === 404, 3000);
  });

  it('without Redis, a POST for a session another replica holds gets a clear 404 naming the cause', async () => {
    const res = await fetch(`${solo.baseUrl}/mcp/messages?sessionId=00000000-0000-0000-0000-000000000000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /Without Redis \(--redis-url\) an HTTP\+SSE session is held only by the replica that opened its stream/);
  });

  it('an owner that does not answer: the POST gets 503 within the relay bound, never a hang', async () => {
    const client = await across(a, b, '/mcp/tools/search/sse', KEY_ALL);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY_ALL}` };
    const abort = new AbortController();
    aborts.push(abort);
    const messages = await openRaw(a, '/mcp/tools/search/sse', KEY_ALL, abort.signal);
    a.gateway.child.kill('SIGSTOP');
    try {
      const started = Date.now();
      const res = await fetch(b.baseUrl + messages, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
      const elapsed = Date.now() - started;
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /did not accept the message within 5000 ms/);
      assert.ok(elapsed >= 4500 && elapsed < 8000, `answered after ${elapsed} ms`);
      assert.ok((await relayed(b, 'unavailable')) >= 1);
      // Replica b is not wedged meanwhile.
      const health = await fetch(`${b.baseUrl}/mcp/messages?sessionId=nope`, { method: 'POST', headers, body: '{}' });
      assert.equal(health.status, 404);
    } finally {
      a.gateway.child.kill('SIGCONT');
    }
    // Back: the session works again through b.
    await waitFor('replica a answers again', async () => {
      try {
        return (await client.listTools()).tools.length > 0;
      } catch {
        return false;
      }
    }, 10_000);
  });

  it('an owner that was killed: a POST for its session gets a clear 404 at once', async () => {
    const abort = new AbortController();
    aborts.push(abort);
    const messages = await openRaw(a, '/mcp/sse', KEY_ALL, abort.signal);
    await a.gateway.stop('SIGKILL');
    const started = Date.now();
    let status = 0;
    // Redis drops a dead client's subscriptions once it sees the connection close.
    await waitFor('the POST is refused', async () => {
      const res = await fetch(b.baseUrl + messages, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_ALL}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      status = res.status;
      return status === 404;
    }, 8000);
    assert.equal(status, 404);
    assert.ok(Date.now() - started < 6000, `refused within the bound (${Date.now() - started} ms)`);
  });
});
