/**
 * MCP gateway: log levels (logging/setLevel) and tool-call timeouts, end to end. A real Envoy routes
 * /mcp to the real Tollgate process, which proxies MCP servers written with the official SDK (they
 * record the logging/setLevel requests they get); the official SDK client drives it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EmptyResultSchema, LoggingMessageNotificationSchema, McpError, type CallToolResult, type LoggingMessageNotification, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { FakeHttpService, FakeMcpServer } from '../../src/dev/fake-mcp.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEY_ALL = 'sk-test-mcplog-all-0001';
const KEY_TWO = 'sk-test-mcplog-two-0002';
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

function config(alpha: string, beta: string, quiet: string, api: string): Record<string, string> {
  return {
    'mcp.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: alpha, namespace: tools }
spec:
  url: "${alpha}"
  timeoutSeconds: 1
  maxTotalTimeoutSeconds: 8
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: capped, namespace: tools }
spec:
  url: "${alpha}"
  timeoutSeconds: 1
  maxTotalTimeoutSeconds: 2
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: beta, namespace: tools }
spec:
  url: "${beta}"
  transport: sse
  timeoutSeconds: 5
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: quiet, namespace: tools }
spec:
  url: "${quiet}"
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: rest, namespace: tools }
spec:
  httpTools:
  - name: get_weather
    url: "${api}/weather/{{city}}"
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
metadata: { name: two, namespace: tools }
spec:
  secretRef: { name: keys, key: two }
  mcp: { servers: [alpha, beta] }
---
apiVersion: v1
kind: Secret
metadata: { name: keys, namespace: tools }
stringData: { all: ${KEY_ALL}, two: ${KEY_TWO} }
`,
  };
}

const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text: string }).text;

describe('MCP log levels and tool-call timeouts (real Envoy + Tollgate, SDK servers and client)', () => {
  let stack: Stack;
  const alpha = new FakeMcpServer({ transport: 'streamable-http', name: 'alpha' });
  const beta = new FakeMcpServer({ transport: 'sse', name: 'beta' });
  const quiet = new FakeMcpServer({ transport: 'streamable-http', name: 'quiet', logging: false });
  const api = new FakeHttpService();
  const clients: Client[] = [];

  before(async () => {
    await Promise.all([alpha.start(), beta.start(), quiet.start(), api.start()]);
    stack = await startStack({ files: config(alpha.url, beta.url, quiet.url, api.url) });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await stack?.stop();
    await Promise.all([alpha.stop(), beta.stop(), quiet.stop(), api.stop()]);
  });

  async function connect(path: string, key: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport; logs: LoggingMessageNotification['params'][] }> {
    const client = new Client({ name: 'test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(stack.baseUrl + path), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
    await client.connect(transport);
    clients.push(client);
    const logs: LoggingMessageNotification['params'][] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    return { client, transport, logs };
  }
  /** The log messages of one chatty call, as `level logger`. */
  const chatter = (logs: readonly LoggingMessageNotification['params'][], tag: string): string[] =>
    logs.filter((l) => String(l.data).startsWith(`${tag} `)).map((l) => `${l.level} ${l.logger ?? ''}`);

  it('initialize declares logging only when a server of the view may send log messages', async () => {
    assert.ok((await connect('/mcp', KEY_TWO)).client.getServerCapabilities()?.logging, 'aggregated over two upstreams that log');
    assert.ok((await connect('/mcp/tools/alpha', KEY_ALL)).client.getServerCapabilities()?.logging);
    const rest = await connect('/mcp/tools/rest', KEY_ALL);
    assert.equal(rest.client.getServerCapabilities()?.logging, undefined, 'httpTools send no log messages');
    const silent = await connect('/mcp/tools/quiet', KEY_ALL);
    assert.equal(silent.client.getServerCapabilities()?.logging, undefined, 'an upstream without the logging capability');
    assert.deepEqual(silent.client.getServerCapabilities()?.tools, {}, 'the other capabilities are there');
    // Without the capability, logging/setLevel is an unknown method, and nothing reaches the upstream.
    await assert.rejects(silent.client.setLoggingLevel('debug'), (e: unknown) => e instanceof McpError && e.code === -32601);
    assert.deepEqual(quiet.levels, []);
  });

  it('logging/setLevel reaches every upstream of the session; each session gets only the messages at or above its own level', async () => {
    const a = await connect('/mcp', KEY_TWO);
    const b = await connect('/mcp/tools/alpha', KEY_ALL);
    const from = { alpha: alpha.levels.length, beta: beta.levels.length };

    assert.deepEqual(await a.client.setLoggingLevel('warning'), {});
    // Both upstreams of the aggregated session (one Streamable HTTP, one HTTP+SSE) got it before the answer.
    assert.deepEqual(alpha.levels.slice(from.alpha), ['warning']);
    assert.deepEqual(beta.levels.slice(from.beta), ['warning']);

    // Another session sharing the alpha connection wants debug: alpha is told the most verbose level.
    assert.deepEqual(await b.client.setLoggingLevel('debug'), {});
    assert.equal(alpha.levels.at(-1), 'debug');
    assert.equal(beta.levels.at(-1), 'warning', 'b does not cover beta');

    // alpha now sends everything; each session gets what its own level lets through.
    assert.equal(text(await a.client.callTool({ name: 'alpha__chatty', arguments: { tag: 'a1' } })), 'alpha: chatted');
    assert.equal(text(await b.client.callTool({ name: 'chatty', arguments: { tag: 'b1' } })), 'alpha: chatted');
    assert.equal(text(await a.client.callTool({ name: 'beta__chatty', arguments: { tag: 'a2' } })), 'beta: chatted');
    await waitFor('the last log messages arrived', async () => chatter(a.logs, 'a1').length >= 5 && chatter(b.logs, 'b1').length >= 8 && chatter(a.logs, 'a2').length >= 5, 5000);
    const atOrAbove = (min: string, logger: string): string[] => LEVELS.slice(LEVELS.indexOf(min)).map((l) => `${l} ${logger}`);
    assert.deepEqual(chatter(a.logs, 'a1'), atOrAbove('warning', 'alpha/chatty'), 'debug, info and notice from alpha are not relayed to a');
    assert.deepEqual(chatter(b.logs, 'b1'), atOrAbove('debug', 'chatty'));
    assert.deepEqual(chatter(a.logs, 'a2'), atOrAbove('warning', 'beta/chatty'));

    // An invalid level: -32602, nothing reaches the upstreams, the session keeps its level.
    const seen = { alpha: alpha.levels.length, beta: beta.levels.length };
    await assert.rejects(a.client.request({ method: 'logging/setLevel', params: { level: 'verbose' } }, EmptyResultSchema), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32602);
      assert.match(e.message, /Invalid log level "verbose": use one of debug, info, notice, warning, error, critical, alert, emergency/);
      return true;
    });
    await assert.rejects(a.client.request({ method: 'logging/setLevel', params: {} }, EmptyResultSchema), (e: unknown) => e instanceof McpError && e.code === -32602);
    assert.deepEqual({ alpha: alpha.levels.length, beta: beta.levels.length }, seen);

    // The upstream loses its sessions (a restart): the new upstream session is told the level before any call.
    alpha.dropSessions();
    assert.equal(text(await a.client.callTool({ name: 'alpha__chatty', arguments: { tag: 'a3' } })), 'alpha: chatted');
    assert.equal(alpha.levels.length, seen.alpha + 1, 'the reopened connection was told the level once');
    assert.equal(alpha.levels.at(-1), 'debug');
    await waitFor('a3 arrived', async () => chatter(a.logs, 'a3').length >= 5, 5000);
    assert.deepEqual(chatter(a.logs, 'a3'), atOrAbove('warning', 'alpha/chatty'));

    // b ends its session: the upstream goes back to the most verbose level still wanted (a's warning).
    await b.transport.terminateSession();
    await waitFor('alpha told warning again', async () => alpha.levels.at(-1) === 'warning', 5000);
  });

  it('a tool call that keeps sending progress outlives timeoutSeconds; the same call without progress times out', async () => {
    const { client } = await connect('/mcp/tools/alpha', KEY_ALL);
    // 10 steps of 300 ms (3 s) against a 1 s timeout: progress every 300 ms keeps it alive, whether
    // the client asked for progress or not (the gateway always asks the upstream for it).
    const started = Date.now();
    assert.equal(text(await client.callTool({ name: 'work', arguments: { steps: 10, ms: 300 } })), 'alpha: worked 10 steps');
    assert.ok(Date.now() - started >= 2900, 'the call really took longer than timeoutSeconds');
    const progress: Progress[] = [];
    assert.equal(text(await client.callTool({ name: 'work', arguments: { steps: 10, ms: 300 } }, undefined, { onprogress: (p) => progress.push(p) })), 'alpha: worked 10 steps');
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the client that asked got the progress');

    const cancelled = alpha.cancelled.length;
    await assert.rejects(client.callTool({ name: 'work', arguments: { steps: 10, ms: 300, silent: true } }), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32011);
      assert.match(e.message, /MCP server tools\/alpha did not answer tools\/call work within 1000 ms \(timeoutSeconds; progress notifications restart it\)/);
      return true;
    });
    await waitFor('the upstream was told the call is cancelled', async () => alpha.cancelled.length > cancelled, 5000);
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'alpha: still here');
  });

  it('a call that keeps sending progress is still ended at maxTotalTimeoutSeconds', async () => {
    const { client } = await connect('/mcp/tools/capped', KEY_ALL);
    const cancelled = alpha.cancelled.length;
    const started = Date.now();
    // 30 steps of 300 ms (9 s), progress all along, against a 2 s cap.
    await assert.rejects(client.callTool({ name: 'work', arguments: { steps: 30, ms: 300 } }), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.equal(e.code, -32011);
      assert.match(e.message, /MCP server tools\/capped did not finish tools\/call work within maxTotalTimeoutSeconds \(2000 ms\), progress or not/);
      return true;
    });
    assert.ok(Date.now() - started < 8000, `ended by the cap, long before the work would finish (${Date.now() - started} ms)`);
    await waitFor('the upstream was told the call is cancelled', async () => alpha.cancelled.length > cancelled, 5000);
  });
});
