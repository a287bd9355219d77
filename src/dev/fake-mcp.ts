/**
 * Fakes at the MCP edge, for tests and `npm start`: a real MCP server written with the official SDK
 * (Streamable HTTP, stateful sessions, or the older HTTP+SSE transport) with a few tools and knobs
 * (slow calls, malformed answers, a required bearer token), and a plain HTTP JSON service for
 * httpTools. Both record what they received.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, LoggingLevelSchema, SetLevelRequestSchema, type LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export interface FakeMcpOptions {
  readonly transport: 'streamable-http' | 'sse';
  /** Name shown in serverInfo and in tool answers. */
  readonly name: string;
  /** When set, requests without `Authorization: Bearer <token>` get 401. */
  readonly token?: string;
  /** Declare the `logging` capability (default true; the work tool then sends log messages). */
  readonly logging?: boolean;
}

/** A tool call the fake received. */
export interface ReceivedCall {
  readonly tool: string;
  readonly args: Record<string, unknown>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : undefined;
}

export class FakeMcpServer {
  private http: Server | undefined;
  readonly calls: ReceivedCall[] = [];
  /** Authorization headers seen (to check the gateway sends the MCPServer's credential, never the client key). */
  readonly authorizations: string[] = [];
  /** logging/setLevel requests received, in order (each upstream session's level is the last it got). */
  readonly levels: LoggingLevel[] = [];
  /** Calls the client cancelled (notifications/cancelled reached the tool), with the reason. */
  readonly cancelled: { readonly tool: string; readonly reason: string }[] = [];
  /** Answer every POST with this text instead of JSON-RPC (fault injection). */
  malformed = false;
  private readonly streamable = new Map<string, StreamableHTTPServerTransport>();
  private readonly sse = new Map<string, SSEServerTransport>();
  private readonly live = new Set<McpServer>();
  url = '';

  constructor(private readonly options: FakeMcpOptions) {}

  private mcp(): McpServer {
    // logging: the work tool sends log messages about its call.
    const logging = this.options.logging ?? true;
    const server = new McpServer({ name: this.options.name, version: '1.0.0' }, { capabilities: logging ? { logging: {} } : {} });
    this.live.add(server);
    // This session's level (logging/setLevel), as a real server keeps it: the chatty tool sends only
    // messages at or above it.
    let level: LoggingLevel | undefined;
    if (logging) {
      server.server.setRequestHandler(SetLevelRequestSchema, (req) => {
        level = req.params.level;
        this.levels.push(req.params.level);
        return {};
      });
    }
    const severity = (l: LoggingLevel): number => LoggingLevelSchema.options.indexOf(l);
    const record = (tool: string, args: Record<string, unknown>): void => {
      this.calls.push({ tool, args });
    };
    server.registerTool(
      'echo',
      { description: 'Echoes the text back.', inputSchema: { text: z.string() } },
      async ({ text }) => {
        record('echo', { text });
        return { content: [{ type: 'text', text: `${this.options.name}: ${text}` }] };
      },
    );
    server.registerTool(
      'add',
      { description: 'Adds two numbers.', inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => {
        record('add', { a, b });
        return { content: [{ type: 'text', text: String(a + b) }] };
      },
    );
    server.registerTool(
      'slow',
      { description: 'Answers after ms milliseconds.', inputSchema: { ms: z.number() } },
      async ({ ms }, extra) => {
        record('slow', { ms });
        if (!(await this.sleep(ms, extra.signal))) this.cancelled.push({ tool: 'slow', reason: String(extra.signal.reason) });
        return { content: [{ type: 'text', text: `slept ${ms}` }] };
      },
    );
    server.registerTool(
      'work',
      {
        description: 'Works in steps of ms milliseconds; reports progress after each step when the call has a progressToken, and a log message (notifications/message) per step.',
        inputSchema: { steps: z.number().int().min(1).max(1000), ms: z.number().min(0), tag: z.string().optional(), silent: z.boolean().optional() },
        annotations: { title: 'Long job with progress' },
      },
      async ({ steps, ms, tag, silent }, extra) => {
        record('work', { steps, ms, ...(tag === undefined ? {} : { tag }) });
        // silent: the same work without any progress notification.
        const token = silent ? undefined : extra._meta?.progressToken;
        for (let i = 1; i <= steps; i++) {
          if (!(await this.sleep(ms, extra.signal))) {
            this.cancelled.push({ tool: 'work', reason: String(extra.signal.reason) });
            return { content: [{ type: 'text', text: `cancelled at step ${i}` }] };
          }
          if (logging) await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'work', data: `${tag ?? 'work'} step ${i}/${steps}` } });
          if (token !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
          }
        }
        // A pause before the result: the official SDK client drops a progress notification that it
        // reads in the same chunk as the result (it handles notifications a microtask later); on a
        // busy machine a short pause is not enough to keep them apart.
        if (token !== undefined) await this.sleep(Math.max(ms, 100), extra.signal);
        return { content: [{ type: 'text', text: `${this.options.name}: worked ${steps} steps` }] };
      },
    );
    if (logging) {
      server.registerTool(
        'chatty',
        { description: 'Sends one log message at each level (debug ... emergency) that this session\'s level lets through, then answers.', inputSchema: { tag: z.string() } },
        async ({ tag }, extra) => {
          record('chatty', { tag });
          for (const l of LoggingLevelSchema.options) {
            if (level !== undefined && severity(l) < severity(level)) continue;
            await extra.sendNotification({ method: 'notifications/message', params: { level: l, logger: 'chatty', data: `${tag} ${l}` } });
          }
          await this.sleep(50, extra.signal);
          return { content: [{ type: 'text', text: `${this.options.name}: chatted` }] };
        },
      );
    }
    server.registerTool('admin_reset', { description: 'A dangerous tool a gateway should hide.' }, async () => {
      record('admin_reset', {});
      return { content: [{ type: 'text', text: 'reset!' }] };
    });
    server.registerTool('fail', { description: 'Always fails (isError).' }, async () => {
      record('fail', {});
      return { content: [{ type: 'text', text: 'it broke' }], isError: true };
    });
    server.registerPrompt(
      'summarize',
      { description: 'Asks for a summary of a topic.', argsSchema: { topic: z.string() } },
      ({ topic }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `${this.options.name}: summarize ${topic}` } }] }),
    );
    server.registerResource('readme', `memo://${this.options.name}/readme`, { description: 'A short readme.', mimeType: 'text/plain' }, async (uri) => ({
      contents: [{ uri: uri.href, text: `readme of ${this.options.name}` }],
    }));
    return server;
  }

  /** Resolves true after ms, or false as soon as the call is cancelled. */
  private sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async start(port = 0): Promise<void> {
    this.http = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
    await new Promise<void>((resolve) => this.http?.listen(port, '127.0.0.1', () => resolve()));
    const address = this.http.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.url = `http://127.0.0.1:${bound}${this.options.transport === 'sse' ? '/sse' : '/mcp'}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization ?? '';
    this.authorizations.push(auth);
    if (this.options.token !== undefined && auth !== `Bearer ${this.options.token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (this.malformed && req.method === 'POST') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"this is": not json-rpc');
      return;
    }
    if (this.options.transport === 'sse') {
      if (req.method === 'GET' && path === '/sse') {
        const transport = new SSEServerTransport('/messages', res);
        this.sse.set(transport.sessionId, transport);
        res.once('close', () => this.sse.delete(transport.sessionId));
        await this.mcp().connect(transport);
        return;
      }
      if (req.method === 'POST' && path === '/messages') {
        const id = new URL(req.url ?? '/', 'http://x').searchParams.get('sessionId') ?? '';
        const transport = this.sse.get(id);
        if (!transport) {
          res.writeHead(404).end('unknown session');
          return;
        }
        await transport.handlePostMessage(req, res, await readJson(req));
        return;
      }
      res.writeHead(404).end();
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? this.streamable.get(sessionId) : undefined;
    if (req.method === 'POST') {
      const body = await readJson(req);
      if (existing) return existing.handleRequest(req, res, body);
      if (sessionId !== undefined || !isInitializeRequest(body)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          this.streamable.set(id, transport);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) this.streamable.delete(transport.sessionId);
      };
      await this.mcp().connect(transport);
      return transport.handleRequest(req, res, body);
    }
    if (existing) return existing.handleRequest(req, res);
    res.writeHead(req.method === 'GET' ? 405 : 404).end();
  }

  /** Adds a tool on every live session; the SDK sends notifications/tools/list_changed to each client. */
  addTool(name: string): void {
    for (const server of this.live) {
      if (!server.isConnected()) {
        this.live.delete(server);
        continue;
      }
      server.registerTool(name, { description: `Added at run time: ${name}` }, async () => ({ content: [{ type: 'text', text: name }] }));
    }
  }

  /** Forgets every upstream session (as a restarted server would): clients must initialise again. */
  dropSessions(): void {
    for (const t of this.streamable.values()) void t.close();
    this.streamable.clear();
  }

  async stop(): Promise<void> {
    for (const t of this.streamable.values()) await t.close().catch(() => undefined);
    for (const t of this.sse.values()) await t.close().catch(() => undefined);
    const http = this.http;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    this.http = undefined;
  }
}

/** A plain HTTP JSON API (no MCP) for httpTools: weather by city, an echo, a failing endpoint. */
export class FakeHttpService {
  private http: Server | undefined;
  url = '';
  /** Requests received: method, path with query, headers, body. */
  readonly received: { method: string; path: string; headers: IncomingMessage['headers']; body: string }[] = [];

  async start(port = 0): Promise<void> {
    this.http = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const url = new URL(req.url ?? '/', 'http://x');
        this.received.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body });
        const json = (status: number, value: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
        };
        const weather = /^\/weather\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'GET' && weather) {
          const city = decodeURIComponent(weather[1] ?? '');
          return json(200, { city, units: url.searchParams.get('units') ?? 'metric', temperature: 21, conditions: 'sunny' });
        }
        if (req.method === 'POST' && url.pathname === '/echo') {
          let parsed: unknown = body;
          try {
            parsed = JSON.parse(body);
          } catch {
            // echo text as it came
          }
          return json(200, { received: parsed });
        }
        if (url.pathname === '/text') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`plain text for ${url.searchParams.get('q') ?? ''}`);
          return;
        }
        if (url.pathname === '/fail') return json(500, { error: 'backend exploded' });
        json(404, { error: 'not found' });
      });
    });
    await new Promise<void>((resolve) => this.http?.listen(port, '127.0.0.1', () => resolve()));
    const address = this.http.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`;
  }

  async stop(): Promise<void> {
    const http = this.http;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    this.http = undefined;
  }
}
