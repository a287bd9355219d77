/**
 * The MCP gateway end to end: a real Envoy routes /mcp to the real Tollgate process, which proxies
 * two real MCP servers written with the official SDK (one Streamable HTTP with a bearer token, one
 * HTTP+SSE) and a plain HTTP service exposed through httpTools. The official SDK client drives it.
 * Tool-call limits go through Redis.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  LoggingMessageNotificationSchema,
  McpError,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type LoggingMessageNotification,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { FakeHttpService, FakeMcpServer } from '../../src/dev/fake-mcp.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';
import { waitFor } from '../../src/dev/local-stack.js';

const KEY_ALL = 'sk-test-mcp-all-0001';
const KEY_LIMITED = 'sk-test-mcp-limited-0002';
const KEY_NO_MCP = 'sk-test-mcp-none-0003';
const KEY_RATE = 'sk-test-mcp-rate-0004';
const KEY_SIB_A = 'sk-test-mcp-sibling-a-0005';
const KEY_SIB_B = 'sk-test-mcp-sibling-b-0006';
const KEY_MONTHLY = 'sk-test-mcp-monthly-0007';
const UPSTREAM_TOKEN = 'upstream-search-token';

function config(search: string, docs: string, api: string): Record<string, string> {
  return {
    'mcp.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: search, namespace: tools }
spec:
  url: "${search}"
  credential: { secretRef: { name: mcp-creds, key: search } }
  timeoutSeconds: 3
  tools: { exclude: [admin_reset] }
  description: Web search for everyone
  owner: team-search
  tags: [search, web]
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: docs, namespace: tools }
spec:
  url: "${docs}"
  transport: sse
  timeoutSeconds: 2
  tools: { includeRegex: ["^(echo|add|work)$"] }
  description: Docs over the older HTTP+SSE transport
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: weather, namespace: tools }
spec:
  description: A REST API exposed as MCP tools
  httpTools:
  - name: get_weather
    description: Current weather for a city
    inputSchema: { type: object, properties: { city: { type: string }, units: { type: string } }, required: [city] }
    url: "${api}/weather/{{city}}?units={{units}}"
    headers: { x-units: "{{units}}" }
  - name: post_echo
    method: POST
    url: "${api}/echo"
    body: '{"message": {{text}}, "n": {{n}}}'
  - name: text_page
    url: "${api}/text?q={{q}}"
    response: { format: text }
  - name: broken
    url: "${api}/fail"
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: down, namespace: tools }
spec:
  url: "http://127.0.0.1:9/mcp"
  timeoutSeconds: 1
---
apiVersion: v1
kind: Secret
metadata: { name: mcp-creds, namespace: tools }
stringData: { search: ${UPSTREAM_TOKEN} }
`,
    'keys.yaml': `apiVersion: tollgate.dev/v1alpha1
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
  mcp: { servers: [search, weather], tools: ["search__echo", "weather__get_*"] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: nomcp, namespace: tools }
spec:
  secretRef: { name: keys, key: nomcp }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: rate, namespace: tools }
spec:
  secretRef: { name: keys, key: rate }
  mcp: { servers: [search] }
  limits: { toolCallsPerMinute: 3 }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team, namespace: tools }
spec:
  accountOnly: true
  limits: { toolCallsPerMinute: 4 }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: sib-a, namespace: tools }
spec:
  secretRef: { name: keys, key: sib-a }
  parent: team
  mcp: { servers: [search] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: sib-b, namespace: tools }
spec:
  secretRef: { name: keys, key: sib-b }
  parent: team
  mcp: { servers: ["*"] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: quota, namespace: tools }
spec:
  accountOnly: true
  limits: { toolCallsPerMonth: 2, toolCallsPerDay: 100 }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: monthly, namespace: tools }
spec:
  secretRef: { name: keys, key: monthly }
  parent: quota
  mcp: { servers: [search] }
---
apiVersion: v1
kind: Secret
metadata: { name: keys, namespace: tools }
stringData: { all: ${KEY_ALL}, limited: ${KEY_LIMITED}, nomcp: ${KEY_NO_MCP}, rate: ${KEY_RATE}, sib-a: ${KEY_SIB_A}, sib-b: ${KEY_SIB_B}, monthly: ${KEY_MONTHLY} }
`,
  };
}

const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text: string }).text;

describe('MCP gateway (real Envoy + Tollgate, SDK servers and client)', () => {
  let stack: Stack;
  let redis: RedisServer;
  const search = new FakeMcpServer({ transport: 'streamable-http', name: 'search', token: UPSTREAM_TOKEN });
  const docs = new FakeMcpServer({ transport: 'sse', name: 'docs' });
  const api = new FakeHttpService();
  const clients: Client[] = [];

  before(async () => {
    await Promise.all([search.start(), docs.start(), api.start()]);
    redis = await startRedis();
    stack = await startStack({
      files: config(search.url, docs.url, api.url),
      gatewayArgs: ['--redis-url', redis.url, '--mcp-max-body-bytes', '65536'],
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await stack?.stop();
    await redis?.stop();
    await Promise.all([search.stop(), docs.stop(), api.stop()]);
  });

  async function connect(path: string, key: string): Promise<Client> {
    const client = new Client({ name: 'test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(stack.baseUrl + path), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
    await client.connect(transport);
    clients.push(client);
    return client;
  }
  const rpc = (path: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(stack.baseUrl + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body,
    });

  it('a server endpoint lists its tools after filters and calls them with the MCPServer credential, never the client key', async () => {
    const client = await connect('/mcp/tools/search', KEY_ALL);
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['add', 'chatty', 'echo', 'fail', 'slow', 'work'], 'admin_reset is excluded by the MCPServer filter');
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'search: hi');
    const failed = (await client.callTool({ name: 'fail', arguments: {} })) as CallToolResult;
    assert.equal(failed.isError, true);
    assert.ok(search.authorizations.length > 0);
    assert.ok(search.authorizations.every((a) => a === `Bearer ${UPSTREAM_TOKEN}`), 'upstream saw only its own credential');
    // A filtered tool is refused at the gateway: it never reaches the upstream.
    const before = search.calls.length;
    await assert.rejects(client.callTool({ name: 'admin_reset', arguments: {} }), (e: unknown) => e instanceof McpError && /Unknown tool/.test(e.message));
    assert.equal(search.calls.length, before);
  });

  it('proxies the older HTTP+SSE transport with its include filter', async () => {
    const client = await connect('/mcp/tools/docs', KEY_ALL);
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['add', 'echo', 'work']);
    assert.equal(text(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');
  });

  it('the aggregated endpoint merges servers as server__tool and routes each call to its server; a down server is left out', async () => {
    const client = await connect('/mcp', KEY_ALL);
    const names = (await client.listTools()).tools.map((t) => t.name);
    for (const n of ['search__echo', 'search__add', 'docs__echo', 'docs__add', 'weather__get_weather', 'weather__post_echo']) assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
    assert.ok(!names.includes('search__admin_reset'));
    assert.ok(!names.some((n) => n.startsWith('down__')), 'the unreachable server is left out, the others still list');
    assert.equal(text(await client.callTool({ name: 'docs__echo', arguments: { text: 'via sse' } })), 'docs: via sse');
    assert.equal(text(await client.callTool({ name: 'search__echo', arguments: { text: 'via http' } })), 'search: via http');
    // Calls to the down server fail with a clear JSON-RPC error while the others keep working.
    await assert.rejects(client.callTool({ name: 'down__anything', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === -32010 && /tools\/down is unavailable/.test(e.message));
    assert.equal(text(await client.callTool({ name: 'search__add', arguments: { a: 1, b: 2 } })), '3');
  });

  it('prompts and resources: listed (aggregated names prefixed server__), fetched and read through the gateway', async () => {
    const one = await connect('/mcp/tools/search', KEY_ALL);
    assert.deepEqual((await one.listPrompts()).prompts.map((p) => p.name), ['summarize']);
    const prompt = await one.getPrompt({ name: 'summarize', arguments: { topic: 'gateways' } });
    assert.equal((prompt.messages[0]?.content as { text: string }).text, 'search: summarize gateways');
    const all = await connect('/mcp', KEY_ALL);
    const prompts = (await all.listPrompts()).prompts.map((p) => p.name).sort();
    assert.deepEqual(prompts, ['docs__summarize', 'search__summarize']);
    const viaDocs = await all.getPrompt({ name: 'docs__summarize', arguments: { topic: 'sse' } });
    assert.equal((viaDocs.messages[0]?.content as { text: string }).text, 'docs: summarize sse');
    const resources = (await all.listResources()).resources;
    assert.deepEqual(resources.map((r) => `${r.name} ${r.uri}`).sort(), ['docs__readme memo://docs/readme', 'search__readme memo://search/readme']);
    const read = await all.readResource({ uri: 'memo://docs/readme' });
    assert.equal((read.contents[0] as { text: string }).text, 'readme of docs');
    await assert.rejects(all.readResource({ uri: 'memo://nowhere/x' }), (e: unknown) => e instanceof McpError && /Unknown resource/.test(e.message));
    // A key that may not use docs sees none of its prompts.
    const limited = await connect('/mcp', KEY_LIMITED);
    assert.deepEqual((await limited.listPrompts()).prompts.map((p) => p.name), ['search__summarize']);
  });

  it('an upstream list-changed notification reaches the client on the aggregated endpoint', async () => {
    const client = await connect('/mcp', KEY_ALL);
    await client.listTools();
    let notified = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      notified++;
    });
    // The SDK client opens its notification stream (GET) right after initialize.
    await new Promise((r) => setTimeout(r, 300));
    search.addTool('late_tool');
    const deadline = Date.now() + 5000;
    while (notified === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(notified > 0, 'notifications/tools/list_changed reached the client');
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'search__late_tool'), 'the next tools/list shows the new tool');
  });

  it('clients on the older HTTP+SSE transport: per server (own path prefix) and aggregated', async () => {
    const sse = async (path: string, key: string): Promise<Client> => {
      const client = new Client({ name: 'old-client', version: '1.0.0' });
      await client.connect(new SSEClientTransport(new URL(stack.baseUrl + path), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
      clients.push(client);
      return client;
    };
    const one = await sse('/mcp/tools/search/sse', KEY_ALL);
    const names = (await one.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('add'));
    assert.ok(!names.includes('admin_reset'), 'the MCPServer filter applies on this transport too');
    assert.equal(text(await one.callTool({ name: 'echo', arguments: { text: 'old transport' } })), 'search: old transport');
    const agg = await sse('/mcp/sse', KEY_LIMITED);
    assert.deepEqual((await agg.listTools()).tools.map((t) => t.name).sort(), ['search__echo', 'weather__get_weather']);
    await assert.rejects(agg.callTool({ name: 'search__add', arguments: { a: 1, b: 2 } }), (e: unknown) => e instanceof McpError && /not allowed/.test(e.message));
    // Another key cannot post into this stream's session.
    const res = await fetch(`${stack.baseUrl}/mcp/messages?sessionId=00000000-0000-0000-0000-000000000000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
  });

  /** A client that keeps the log messages it receives. */
  async function logging(client: Client): Promise<LoggingMessageNotification['params'][]> {
    const logs: LoggingMessageNotification['params'][] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    return logs;
  }
  async function sseClient(path: string, key: string): Promise<Client> {
    const client = new Client({ name: 'old-client', version: '1.0.0' });
    await client.connect(new SSEClientTransport(new URL(stack.baseUrl + path), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    clients.push(client);
    return client;
  }

  it('progress (for a call with a progressToken) and log messages from the upstream reach the client, per server and aggregated, on both client transports', async () => {
    const cases: { client: Client; tool: string; logger: string; server: string }[] = [
      { client: await connect('/mcp/tools/search', KEY_ALL), tool: 'work', logger: 'work', server: 'search' },
      { client: await connect('/mcp', KEY_ALL), tool: 'search__work', logger: 'search/work', server: 'search' },
      { client: await connect('/mcp', KEY_ALL), tool: 'docs__work', logger: 'docs/work', server: 'docs' },
      { client: await connect('/mcp/tools/docs', KEY_ALL), tool: 'work', logger: 'work', server: 'docs' },
      { client: await sseClient('/mcp/sse', KEY_ALL), tool: 'search__work', logger: 'search/work', server: 'search' },
      { client: await sseClient('/mcp/tools/docs/sse', KEY_ALL), tool: 'work', logger: 'work', server: 'docs' },
    ];
    for (const [i, c] of cases.entries()) {
      const logs = await logging(c.client);
      const progress: Progress[] = [];
      const tag = `case${i}`;
      const r = await c.client.callTool({ name: c.tool, arguments: { steps: 3, ms: 20, tag } }, undefined, { onprogress: (p) => progress.push(p) });
      assert.equal(text(r), `${c.server}: worked 3 steps`, `${c.tool} (case ${i})`);
      assert.deepEqual(progress, [1, 2, 3].map((n) => ({ progress: n, total: 3, message: `step ${n}` })), `progress of case ${i}, in order, before the result`);
      assert.deepEqual(logs.map((l) => `${l.level} ${l.logger} ${String(l.data)}`), [1, 2, 3].map((n) => `info ${c.logger} ${tag} step ${n}/3`), `log messages of case ${i}`);
    }
    // Without a progressToken the call works the same (progress, which the gateway always asks the
    // upstream for to keep long calls alive, is not forwarded).
    const quiet = cases[0]?.client as Client;
    assert.equal(text(await quiet.callTool({ name: 'work', arguments: { steps: 1, ms: 0 } })), 'search: worked 1 steps');
  });

  it('log messages of concurrent calls on one shared upstream connection go only to their own caller', async () => {
    const a = await connect('/mcp/tools/search', KEY_ALL);
    const b = await connect('/mcp', KEY_ALL);
    const [logsA, logsB] = [await logging(a), await logging(b)];
    await Promise.all([
      a.callTool({ name: 'work', arguments: { steps: 4, ms: 15, tag: 'alpha' } }),
      b.callTool({ name: 'search__work', arguments: { steps: 4, ms: 10, tag: 'beta' } }),
      b.callTool({ name: 'search__work', arguments: { steps: 3, ms: 12, tag: 'gamma' } }),
    ]);
    assert.deepEqual(logsA.map((l) => String(l.data)), [1, 2, 3, 4].map((n) => `alpha step ${n}/4`));
    const ofB = logsB.map((l) => String(l.data));
    assert.deepEqual(ofB.filter((d) => d.startsWith('beta')), [1, 2, 3, 4].map((n) => `beta step ${n}/4`));
    assert.deepEqual(ofB.filter((d) => d.startsWith('gamma')), [1, 2, 3].map((n) => `gamma step ${n}/3`));
    assert.equal(ofB.length, 7, 'nothing of the other client');
    // HTTP+SSE upstream: one stream for everything, so with two calls in flight a message cannot be
    // tied to one; it is dropped rather than sent to the wrong client.
    const c = await connect('/mcp/tools/docs', KEY_ALL);
    const d = await connect('/mcp/tools/docs', KEY_ALL);
    const [logsC, logsD] = [await logging(c), await logging(d)];
    await Promise.all([
      c.callTool({ name: 'work', arguments: { steps: 3, ms: 20, tag: 'gamma' } }),
      d.callTool({ name: 'work', arguments: { steps: 3, ms: 20, tag: 'delta' } }),
    ]);
    assert.ok(logsC.every((l) => String(l.data).startsWith('gamma')), JSON.stringify(logsC));
    assert.ok(logsD.every((l) => String(l.data).startsWith('delta')), JSON.stringify(logsD));
  });

  it("a client's cancellation reaches the upstream (notifications/cancelled), on both client and both upstream transports", async () => {
    const cases: { client: Client; tool: string; fake: FakeMcpServer }[] = [
      { client: await connect('/mcp/tools/search', KEY_ALL), tool: 'work', fake: search },
      { client: await connect('/mcp', KEY_ALL), tool: 'docs__work', fake: docs },
      { client: await sseClient('/mcp/sse', KEY_ALL), tool: 'search__work', fake: search },
      { client: await sseClient('/mcp/tools/docs/sse', KEY_ALL), tool: 'work', fake: docs },
    ];
    for (const [i, c] of cases.entries()) {
      const before = c.fake.cancelled.length;
      const abort = new AbortController();
      const progress: number[] = [];
      const call = c.client.callTool({ name: c.tool, arguments: { steps: 200, ms: 20 } }, undefined, {
        signal: abort.signal,
        onprogress: (p) => {
          progress.push(p.progress);
          if (p.progress === 2) abort.abort('user pressed stop');
        },
      });
      await assert.rejects(call, /user pressed stop/);
      await waitFor(`upstream saw the cancellation (case ${i})`, async () => c.fake.cancelled.length > before);
      assert.equal(c.fake.cancelled.at(-1)?.tool, 'work');
      assert.ok(progress.length < 10, `the call stopped early (case ${i}: ${progress.length} steps)`);
      // The session goes on.
      assert.equal(text(await c.client.callTool({ name: c.tool.replace('work', 'echo'), arguments: { text: 'next' } })), `${c.fake === search ? 'search' : 'docs'}: next`);
    }
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_mcp_tool_calls_total\{consumer="tools\/all",server="tools\/docs",tool="work",outcome="cancelled"\} 2/);
  });

  it('a client that hangs up during a tool call cancels it upstream', async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const opened = await rpc('/mcp/tools/search', init, { authorization: `Bearer ${KEY_ALL}` });
    const session = opened.headers.get('mcp-session-id') ?? '';
    await opened.text();
    const before = search.cancelled.length;
    const abort = new AbortController();
    const res = await fetch(`${stack.baseUrl}/mcp/tools/search`, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEY_ALL}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { ms: 20_000 } } }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream', 'a tool of an upstream that logs answers as a stream');
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    await waitFor('the upstream saw the hang-up as a cancellation', async () => search.cancelled.length > before);
    assert.equal(search.cancelled.at(-1)?.tool, 'slow');
  });

  it('httpTools: URL, header and body templates, JSON and text responses, HTTP errors as isError', async () => {
    const client = await connect('/mcp/tools/weather', KEY_ALL);
    const tools = (await client.listTools()).tools;
    const weather = tools.find((t) => t.name === 'get_weather');
    assert.deepEqual(weather?.inputSchema.required, ['city']);
    const r = (await client.callTool({ name: 'get_weather', arguments: { city: 'São Paulo', units: 'imperial' } })) as CallToolResult;
    assert.deepEqual(JSON.parse(text(r)), { city: 'São Paulo', units: 'imperial', temperature: 21, conditions: 'sunny' });
    const got = api.received.at(-1);
    assert.equal(got?.path, '/weather/S%C3%A3o%20Paulo?units=imperial');
    assert.equal(got?.headers['x-units'], 'imperial');
    const echoed = (await client.callTool({ name: 'post_echo', arguments: { text: 'he said "hi"', n: 3 } })) as CallToolResult;
    assert.deepEqual(JSON.parse(text(echoed)), { received: { message: 'he said "hi"', n: 3 } });
    assert.equal(text(await client.callTool({ name: 'text_page', arguments: { q: 'a&b' } })), 'plain text for a&b');
    const broken = (await client.callTool({ name: 'broken', arguments: {} })) as CallToolResult;
    assert.equal(broken.isError, true);
    assert.match(text(broken), /^HTTP 500: .*backend exploded/);
  });

  it('per-key allow-lists: servers and server__tool patterns; a denied call never reaches the upstream', async () => {
    const client = await connect('/mcp', KEY_LIMITED);
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(names, ['search__echo', 'weather__get_weather']);
    const before = search.calls.length;
    await assert.rejects(client.callTool({ name: 'search__add', arguments: { a: 1, b: 1 } }), (e: unknown) => e instanceof McpError && /not allowed for API key tools\/limited/.test(e.message));
    await assert.rejects(client.callTool({ name: 'docs__echo', arguments: { text: 'x' } }), (e: unknown) => e instanceof McpError && /Unknown tool/.test(e.message));
    assert.equal(search.calls.length, before, 'nothing denied reached the upstream');
    // The server endpoint of a server the key may not use does not exist for it.
    await assert.rejects(connect('/mcp/tools/docs', KEY_LIMITED), (e: unknown) => e instanceof StreamableHTTPError && e.code === 404);
  });

  it('catalogue: the servers and tools of the calling key, with descriptions, owners, tags and health', async () => {
    const res = await fetch(`${stack.baseUrl}/mcp/catalog`, { headers: { 'x-api-key': KEY_LIMITED } });
    assert.equal(res.status, 200);
    const cat = (await res.json()) as { servers: { name: string; owner: string; tags: string[]; endpoint: string; health: { state: string }; tools: { name: string; aggregatedName: string }[] }[] };
    assert.deepEqual(cat.servers.map((s) => s.name), ['search', 'weather']);
    const s = cat.servers[0];
    assert.equal(s?.owner, 'team-search');
    assert.deepEqual(s?.tags, ['search', 'web']);
    assert.equal(s?.endpoint, '/mcp/tools/search');
    assert.equal(s?.health.state, 'up');
    assert.deepEqual(s?.tools.map((t) => t.aggregatedName), ['search__echo']);
    const all = (await (await fetch(`${stack.baseUrl}/mcp/catalog`, { headers: { authorization: `Bearer ${KEY_ALL}` } })).json()) as { servers: { name: string; health: { state: string; message?: string } }[] };
    const down = all.servers.find((x) => x.name === 'down');
    assert.equal(down?.health.state, 'down');
    assert.match(down?.health.message ?? '', /unavailable/);
  });

  it('tool-call rate limit (Redis): the 4th call in a minute is a JSON-RPC error with a retry hint, not sent upstream', async () => {
    const client = await connect('/mcp/tools/search', KEY_RATE);
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { text: `n${i}` } });
    const before = search.calls.length;
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'too many' } }), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32029);
      assert.match(e.message, /toolCallsPerMinute of API key tools\/rate is 3\. Retry after \d+ s/);
      assert.equal((e.data as { status: number }).status, 429);
      return true;
    });
    assert.equal(search.calls.length, before);
    const keys = await redis.client.keys('*toolCallsPerMinute*');
    assert.ok(keys.length > 0, 'the limit is kept in Redis (shared by replicas)');
    // Every tool call is a usage record, batched into the usage ledger stream like model requests.
    await waitFor('MCP usage rows in Redis', async () => {
      const entries = (await redis.client.xrange('tollgate:{tollgate}:usage:batches', '-', '+')) as [string, string[]][];
      return entries.some(([, fields]) => fields.some((f) => f.includes('"provider":"mcp:tools/search"') && f.includes('"key":"tools/rate"')));
    });
  });

  it('a slow upstream times out with a clear JSON-RPC error; the server keeps serving', async () => {
    const client = await connect('/mcp/tools/search', KEY_ALL);
    await assert.rejects(client.callTool({ name: 'slow', arguments: { ms: 6000 } }), (e: unknown) => e instanceof McpError && e.code === -32011 && /did not answer tools\/call slow within 3000 ms/.test(e.message));
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'search: still here');
  });

  it('an upstream answering malformed JSON-RPC gives a clean error, and recovers', async () => {
    const client = await connect('/mcp/tools/search', KEY_ALL);
    search.malformed = true;
    try {
      await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), (e: unknown) => e instanceof McpError && e.code === -32010);
    } finally {
      search.malformed = false;
    }
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'ok again' } })), 'search: ok again');
  });

  it('an upstream that lost its sessions (restart) is re-initialised transparently', async () => {
    const client = await connect('/mcp/tools/search', KEY_ALL);
    search.dropSessions();
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'after restart' } })), 'search: after restart');
  });

  it('bad input: wrong key 401, no MCP access 403, malformed JSON, unknown method, oversized body 413, tampered session', async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const wrong = await rpc('/mcp', init, { authorization: 'Bearer sk-wrong' });
    assert.equal(wrong.status, 401);
    // Headers that steer model requests cannot take /mcp anywhere else: it is routed before them.
    const steered = await fetch(`${stack.baseUrl}/mcp/catalog`, { headers: { 'x-tollgate-route': 'http', host: 'example.com', 'x-api-key': KEY_ALL } });
    assert.equal(steered.status, 200);
    assert.ok(((await steered.json()) as { servers: unknown[] }).servers.length > 0);
    assert.equal(((await wrong.json()) as { error: { message: string } }).error.message, 'Incorrect API key provided.');
    assert.equal((await rpc('/mcp', init)).status, 401);
    const none = await rpc('/mcp', init, { authorization: `Bearer ${KEY_NO_MCP}` });
    assert.equal(none.status, 403);
    assert.match(((await none.json()) as { error: { message: string } }).error.message, /no MCP access/);

    const auth = { authorization: `Bearer ${KEY_ALL}` };
    const bad = await rpc('/mcp', '{"jsonrpc": "2.0", "id": 1, "method": ', auth);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: number } }).error.code, -32700);

    const opened = await rpc('/mcp', init, auth);
    assert.equal(opened.status, 200);
    const session = opened.headers.get('mcp-session-id');
    assert.ok(session && session.length > 20, 'a sealed session id');
    const withSession = { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    const unknown = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/frobnicate', params: {} }), withSession);
    assert.equal(unknown.status, 200);
    assert.equal(((await unknown.json()) as { error: { code: number } }).error.code, -32601);

    const big = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list', params: { pad: 'x'.repeat(70_000) } }), withSession);
    assert.equal(big.status, 413);

    const flipped = session.slice(0, 10) + (session[10] === 'A' ? 'B' : 'A') + session.slice(11);
    const tampered = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list' }), { ...withSession, 'mcp-session-id': flipped });
    assert.equal(tampered.status, 404);
    // The session belongs to its key: another key cannot use it.
    const stolen = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }), { ...withSession, authorization: `Bearer ${KEY_LIMITED}` });
    assert.equal(stolen.status, 404);
    const listed = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/list' }), withSession);
    assert.equal(listed.status, 200);
    assert.ok(((await listed.json()) as { result: { tools: unknown[] } }).result.tools.length > 0);
    // A call that can bring no notifications (an httpTool, no progressToken) answers as plain JSON;
    // asking for progress makes it a stream.
    const plain = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'weather__get_weather', arguments: { city: 'Oslo' } } }), withSession);
    assert.equal(plain.headers.get('content-type'), 'application/json');
    assert.match(((await plain.json()) as { result: { content: { text: string }[] } }).result.content[0]?.text ?? '', /"city":"Oslo"/);
    const asked = await rpc('/mcp', JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'weather__get_weather', arguments: { city: 'Oslo' }, _meta: { progressToken: 'p1' } } }), withSession);
    assert.equal(asked.headers.get('content-type'), 'text/event-stream');
    assert.match(await asked.text(), /^data: .*"city\\":\\"Oslo/m);
    // The gateway is healthy after all that.
    assert.equal((await fetch(`${stack.adminUrl}/readyz`)).status, 200);
  });

  it('one access-log line and metric sample per tool call, labelled by consumer, server and tool', async () => {
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_mcp_tool_calls_total\{consumer="tools\/all",server="tools\/docs",tool="add",outcome="ok"\} 1/);
    // Two denied calls of the limited key: one on Streamable HTTP, one on HTTP+SSE.
    assert.match(metrics, /tollgate_mcp_tool_calls_total\{consumer="tools\/limited",server="tools\/search",tool="-",outcome="denied"\} 2/);
    assert.match(metrics, /tollgate_mcp_tool_calls_total\{consumer="tools\/rate",server="tools\/search",tool="echo",outcome="rate_limited"\} 1/);
    const lines = (await stack.logs()).filter((l) => l['msg'] === 'mcp tool call');
    assert.ok(lines.some((l) => l['consumer'] === 'tools/all' && l['server'] === 'tools/docs' && l['tool'] === 'docs__echo' && l['outcome'] === 'ok'));
    const raw = JSON.stringify(await stack.logs());
    for (const secret of [KEY_ALL, KEY_LIMITED, UPSTREAM_TOKEN]) assert.ok(!raw.includes(secret), 'no key or credential in the logs');
  });
});

describe('MCP across two Tollgate replicas sharing Redis (sealed sessions, lineage tool-call limits)', () => {
  const SECRET = 'test-shared-session-secret';
  const up = new FakeMcpServer({ transport: 'streamable-http', name: 'search', token: UPSTREAM_TOKEN });
  const api = new FakeHttpService();
  let redis: RedisServer;
  let a: Stack;
  let b: Stack;
  let other: Stack;
  const clients: Client[] = [];

  before(async () => {
    await Promise.all([up.start(), api.start()]);
    redis = await startRedis();
    const files = config(up.url, up.url.replace('/mcp', '/sse'), api.url);
    const gatewayArgs = ['--redis-url', redis.url];
    a = await startStack({ files, gatewayArgs, env: { TOLLGATE_MCP_SESSION_SECRET: SECRET } });
    b = await startStack({ files, gatewayArgs, env: { TOLLGATE_MCP_SESSION_SECRET: SECRET } });
    other = await startStack({ files, env: { TOLLGATE_MCP_SESSION_SECRET: 'another-secret' } });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop(), other?.stop()]);
    await redis?.stop();
    await Promise.all([up.stop(), api.stop()]);
  });

  async function connectTo(stack: Stack, path: string, key: string): Promise<Client> {
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(stack.baseUrl + path), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    clients.push(client);
    return client;
  }

  it("a child key is refused when its siblings used up the parent account's toolCallsPerMinute, across replicas", async () => {
    const siblingA = await connectTo(a, '/mcp/tools/search', KEY_SIB_A);
    const siblingB = await connectTo(b, '/mcp', KEY_SIB_B);
    for (let i = 0; i < 3; i++) assert.equal(text(await siblingA.callTool({ name: 'echo', arguments: { text: `a${i}` } })), `search: a${i}`);
    assert.equal(text(await siblingB.callTool({ name: 'search__echo', arguments: { text: 'b0' } })), 'search: b0');
    const before = up.calls.length;
    // Neither child has a limit of its own: the account's 4 calls a minute are spent, on both replicas.
    for (const [client, name] of [[siblingB, 'search__echo'], [siblingA, 'echo']] as const) {
      await assert.rejects(client.callTool({ name, arguments: { text: 'over' } }), (e: unknown) => {
        assert.ok(e instanceof McpError);
        assert.equal(e.code, -32029);
        assert.match(e.message, /toolCallsPerMinute of parent account tools\/team is 4\. Retry after \d+ s/);
        const data = e.data as { status: number; retryAfterSeconds: number; limit: string; scope: string };
        assert.equal(data.status, 429);
        assert.ok(data.retryAfterSeconds >= 1 && data.retryAfterSeconds <= 61, `retry hint ${data.retryAfterSeconds}`);
        assert.equal(data.limit, 'toolCallsPerMinute');
        assert.equal(data.scope, 'tools/team');
        return true;
      });
    }
    assert.equal(up.calls.length, before, 'refused calls never reached the upstream');
    assert.deepEqual(await redis.client.keys('*tools/sib-*toolCalls*'), [], 'the children have no counters of their own');
    assert.ok((await redis.client.keys('*tools/team|toolCallsPerMinute*')).length > 0, "the account's counter is in the shared Redis");
  });

  it("toolCallsPerMonth of a parent account: the third call of the month is refused with the month's end", async () => {
    const onA = await connectTo(a, '/mcp/tools/search', KEY_MONTHLY);
    const onB = await connectTo(b, '/mcp/tools/search', KEY_MONTHLY);
    await onA.callTool({ name: 'echo', arguments: { text: 'm1' } });
    await onB.callTool({ name: 'echo', arguments: { text: 'm2' } });
    await assert.rejects(onA.callTool({ name: 'echo', arguments: { text: 'm3' } }), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32029);
      assert.match(e.message, /toolCallsPerMonth of parent account tools\/quota is 2\. It resets at (\S+)\. Retry after \d+ s/);
      const resets = Date.parse(/resets at (\S+)\./.exec(e.message)?.[1] ?? '');
      assert.ok(resets > Date.now() && resets <= Date.now() + 32 * 86_400_000, 'resets at the end of the current month');
      const data = e.data as { retryAfterSeconds: number };
      assert.ok(Math.abs(Date.now() + data.retryAfterSeconds * 1000 - resets) < 5_000, 'the retry hint points at the month end');
      return true;
    });
  });

  it("a client's cancellation that reaches another replica than the one running the call is relayed through Redis to it", async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEY_ALL}` };
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const opened = await fetch(`${a.baseUrl}/mcp/tools/search`, { method: 'POST', headers, body: init });
    const session = opened.headers.get('mcp-session-id') ?? '';
    await opened.text();
    const withSession = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    const before = { calls: up.calls.length, cancelled: up.cancelled.length };
    const started = Date.now();
    // The call runs on replica a (20 s, longer than the server's 3 s timeout would let it run).
    const running = fetch(`${a.baseUrl}/mcp/tools/search`, {
      method: 'POST',
      headers: withSession,
      body: JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'tools/call', params: { name: 'slow', arguments: { ms: 20_000 } } }),
    }).then((r) => r.text());
    await waitFor('the call reached the upstream', async () => up.calls.length > before.calls);
    // Its cancellation lands on replica b.
    const cancel = await fetch(`${b.baseUrl}/mcp/tools/search`, {
      method: 'POST',
      headers: withSession,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 42, reason: 'changed my mind' } }),
    });
    assert.equal(cancel.status, 202);
    await waitFor('replica a cancelled the call upstream', async () => up.cancelled.length > before.cancelled, 2500);
    assert.ok(Date.now() - started < 3000, 'cancelled, not timed out');
    assert.doesNotMatch(up.cancelled.at(-1)?.reason ?? '', /timed out/i);
    // The call's stream on replica a ends with no answer for the cancelled request.
    assert.doesNotMatch(await running, /"id":42/);
  });

  it("a session's log level set on one replica filters the log messages of its calls on another (through Redis)", async () => {
    const client = new Client({ name: 'test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${a.baseUrl}/mcp/tools/search`), { requestInit: { headers: { authorization: `Bearer ${KEY_ALL}` } } });
    await client.connect(transport);
    clients.push(client);
    assert.deepEqual(await client.setLoggingLevel('error'), {});
    assert.equal(up.levels.at(-1), 'error', 'the upstream was told');
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${KEY_ALL}`,
      'mcp-session-id': transport.sessionId ?? '',
      'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
    };
    /** The levels of the log messages a chatty call on replica b relays to this session. */
    const levelsOnB = async (): Promise<string[]> => {
      const res = await fetch(`${b.baseUrl}/mcp/tools/search`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'chatty', arguments: { tag: 'on-b' } } }),
      });
      const events = [...(await res.text()).matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] ?? '{}') as { method?: string; params?: { level: string } });
      assert.ok(events.some((e) => e.method === undefined), 'the call was answered');
      return events.filter((e) => e.method === 'notifications/message').map((e) => e.params?.level ?? '');
    };
    let seen: string[] = [];
    await waitFor('replica b knows the level', async () => {
      seen = await levelsOnB();
      return seen[0] === 'error';
    }, 5000);
    assert.deepEqual(seen, ['error', 'critical', 'alert', 'emergency']);
  });

  it('a session opened on one replica continues on another; a replica with another secret refuses it', async () => {
    const client = new Client({ name: 'test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${a.baseUrl}/mcp/tools/search`), { requestInit: { headers: { authorization: `Bearer ${KEY_ALL}` } } });
    await client.connect(transport);
    try {
      const session = transport.sessionId;
      assert.ok(session);
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${KEY_ALL}`,
        'mcp-session-id': session,
        'mcp-protocol-version': transport.protocolVersion ?? '2025-06-18',
      };
      const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'on replica b' } } });
      const onB = await fetch(`${b.baseUrl}/mcp/tools/search`, { method: 'POST', headers, body: call });
      assert.equal(onB.status, 200);
      // The upstream declares logging: tools/call answers as an SSE stream (log messages would go first).
      assert.equal(onB.headers.get('content-type'), 'text/event-stream');
      const event = /^data: (.*)$/m.exec(await onB.text())?.[1] ?? '';
      const body = JSON.parse(event) as { result: { content: { text: string }[] } };
      assert.equal(body.result.content[0]?.text, 'search: on replica b');
      const onOther = await fetch(`${other.baseUrl}/mcp/tools/search`, { method: 'POST', headers, body: call });
      assert.equal(onOther.status, 404, 'an id sealed with another secret is refused');
      // Back on the first replica, the SDK client carries on with the same session.
      assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'back on a' } })), 'search: back on a');
    } finally {
      await client.close();
    }
  });
});

