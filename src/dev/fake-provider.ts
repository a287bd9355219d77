/**
 * A fake OpenAI-compatible provider: a real HTTP server for `npm start` (works offline) and for
 * tests, which read what it received and turn its knobs (latency, chunk count and rate, status).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

/** What one request looked like when it reached the provider. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  /** Date.now() when the request body had arrived. */
  readonly receivedAt: number;
  /** Date.now() when the provider finished its response (last byte written); undefined until then. */
  completedAt: number | undefined;
  /** Date.now() when the connection closed before the response was complete (client went away). */
  abortedAt: number | undefined;
}

/** Certificate and key (PEM) to serve HTTPS instead of HTTP. */
export interface FakeProviderTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Knobs; change them between requests. */
export interface FakeBehaviour {
  /** Delay before the response headers. */
  latencyMs: number;
  /** Content chunks in a streamed answer. */
  chunks: number;
  /** Answer with exactly these content chunks (streamed) or their concatenation (not streamed), instead of `chunks` words. */
  pieces?: readonly string[] | undefined;
  chunkIntervalMs: number;
  /** If set, answer every request with this status and an OpenAI error body. */
  status: number | undefined;
  /** Keep the last requests for `received()`; the bench turns it off so the fake stays cheap. */
  record: boolean;
  /** Sent as Retry-After (seconds) with an error `status`. */
  retryAfterSeconds?: number | undefined;
  /** Close the connection without answering (a reset before the first byte). */
  resetBeforeHeaders?: boolean | undefined;
  /** Streamed answers: close the connection after this many content chunks (a break mid-stream). */
  resetAfterChunks?: number | undefined;
  /** Never answer (hang before the first byte) until the client gives up. */
  hang?: boolean | undefined;
  /** Extra latency per request drawn uniformly from [0, latencyJitterMs). */
  latencyJitterMs?: number | undefined;
  /** Send `usage` (body, or the stream usage chunk when asked for). Off = an engine without usage. */
  sendUsage?: boolean | undefined;
  /** With `status`: only the next this-many requests get it, later ones are served (counts down). */
  failNext?: number | undefined;
  /**
   * Knobs for requests naming one model (the body's `model`), over the ones above: one provider
   * serving several models of which one fails. `failNext` counts down in the override.
   */
  byModel?: Readonly<Record<string, Partial<Omit<FakeBehaviour, 'byModel' | 'record'>>>> | undefined;
}

/** Usage the fake reported for one completed response (what a provider would bill). */
export interface ReportedUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly stream: boolean;
}

const RECORD_LIMIT = 1000;
const WORDS = ['Hello', ' from', ' the', ' Tollgate', ' fake', ' provider', '.'];

export class FakeProvider {
  readonly requests: RecordedRequest[] = [];
  /** Usage of every response that carried usage (bounded like `requests`). */
  readonly reported: ReportedUsage[] = [];
  /** Streams the client (the gateway) closed before the fake had sent everything. */
  abortedStreams = 0;
  readonly behaviour: FakeBehaviour;
  private server: Server | undefined;
  private portNumber = 0;

  constructor(
    behaviour: Partial<FakeBehaviour> = {},
    private readonly name = 'fake',
    private readonly tls?: FakeProviderTls,
  ) {
    this.behaviour = { latencyMs: 0, chunks: 5, chunkIntervalMs: 20, status: undefined, record: true, sendUsage: true, ...behaviour };
  }

  get port(): number {
    return this.portNumber;
  }

  /** Base URL with /v1, as a ModelProvider endpoint would name it (HTTPS: by the name `localhost`). */
  get url(): string {
    return this.tls ? `https://localhost:${this.portNumber}/v1` : `http://127.0.0.1:${this.portNumber}/v1`;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    const server: Server = this.tls ? createTlsServer({ cert: this.tls.cert, key: this.tls.key }, handler) : createServer(handler);
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    this.portNumber = typeof address === 'object' && address ? address.port : port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Requests received at a path suffix (for example `/chat/completions`). */
  received(pathSuffix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.split('?')[0]?.endsWith(pathSuffix));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const path = req.url ?? '/';
    if (this.behaviour.record) {
      if (this.requests.length >= RECORD_LIMIT) this.requests.shift();
      const record: RecordedRequest = { method: req.method ?? '', path, headers: { ...req.headers }, body, receivedAt: Date.now(), completedAt: undefined, abortedAt: undefined };
      this.requests.push(record);
      res.once('finish', () => (record.completedAt = Date.now()));
      res.once('close', () => {
        if (record.completedAt === undefined) record.abortedAt = Date.now();
      });
    }

    const model = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['model'] : undefined;
    const override = typeof model === 'string' ? this.behaviour.byModel?.[model] : undefined;
    const b: FakeBehaviour = override ? { ...this.behaviour, ...override } : this.behaviour;
    // failNext counts down where it was set (the override, or the provider's knobs).
    const counter: { failNext?: number | undefined } = override && 'failNext' in override ? (override as { failNext?: number | undefined }) : this.behaviour;
    if (b.hang) return; // the socket stays open and silent until the client gives up
    if (b.resetBeforeHeaders) {
      req.socket.destroy();
      return;
    }
    const latency = b.latencyMs + (b.latencyJitterMs ? Math.random() * b.latencyJitterMs : 0);
    if (latency > 0) await sleep(latency);
    const failing = b.status !== undefined && (b.failNext === undefined || b.failNext > 0);
    if (counter.failNext !== undefined && counter.failNext > 0) counter.failNext--;
    if (failing && b.status !== undefined) {
      const extra = b.retryAfterSeconds === undefined ? undefined : { 'retry-after': String(b.retryAfterSeconds) };
      return json(res, b.status, { error: { message: `fake provider answered ${b.status}`, type: 'api_error', code: 'fake' } }, extra);
    }
    const request = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const route = path.split('?')[0] ?? '';
    if (route.endsWith('/chat/completions')) return this.chat(request, res, b);
    if (route.endsWith('/embeddings')) return embeddings(request, res);
    json(res, 404, { error: { message: `fake provider has no ${path}`, type: 'invalid_request_error', code: 'unknown_url' } });
  }

  private async chat(request: Record<string, unknown>, res: ServerResponse, b: FakeBehaviour): Promise<void> {
    const model = String(request['model'] ?? 'unknown');
    const id = `chatcmpl-${this.name}-${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = Math.max(1, Math.ceil(JSON.stringify(request['messages'] ?? '').length / 4));
    // Like a real provider, the answer stops at max_completion_tokens (or max_tokens), one token per
    // chunk, with finish_reason "length".
    const cap = request['max_completion_tokens'] ?? request['max_tokens'];
    const planned = b.pieces ? [...b.pieces] : Array.from({ length: b.chunks }, (_, i) => WORDS[i % WORDS.length] as string);
    const n = typeof cap === 'number' && cap >= 0 ? Math.min(planned.length, Math.floor(cap)) : planned.length;
    const finish = n < planned.length ? 'length' : 'stop';
    const pieces = planned.slice(0, n);
    const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
    const report = (stream: boolean): void => {
      if (!this.behaviour.record) return; // the bench turns recording off
      if (this.reported.length >= RECORD_LIMIT) this.reported.shift();
      this.reported.push({ promptTokens, completionTokens: n, stream });
    };
    if (request['stream'] !== true) {
      if (b.sendUsage !== false) report(false);
      return json(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, finish_reason: finish }],
        ...(b.sendUsage !== false ? { usage } : {}),
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const base = { id, object: 'chat.completion.chunk', created, model };
    const send = (payload: unknown): void => {
      res.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    // Content chunks are the bulk of a stream: serialise the shared part once (same bytes as `send`),
    // so the fake stays cheap with hundreds of concurrent streams.
    const head = `data: ${JSON.stringify(base).slice(0, -1)},"choices":[{"index":0,"delta":{"content":`;
    let sent = 0;
    for (const piece of pieces) {
      if (res.destroyed) {
        this.abortedStreams++;
        return;
      }
      if (b.resetAfterChunks !== undefined && sent >= b.resetAfterChunks) {
        await pause(b.chunkIntervalMs);
        res.socket?.destroy();
        return;
      }
      sent++;
      await pause(b.chunkIntervalMs);
      res.write(`${head}${JSON.stringify(piece)}},"finish_reason":null}]}\n\n`);
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: finish }] });
    const options = request['stream_options'] as { include_usage?: boolean } | undefined;
    if (options?.include_usage && b.sendUsage !== false) {
      send({ ...base, choices: [], usage });
      report(true);
    }
    res.end('data: [DONE]\n\n');
  }
}

function embeddings(request: Record<string, unknown>, res: ServerResponse): void {
  const input = request['input'];
  const inputs = Array.isArray(input) ? input : [input];
  const data = inputs.map((item, index) => ({
    object: 'embedding',
    index,
    embedding: Array.from({ length: 8 }, (_, i) => Number(((String(item).length * (i + 1)) % 97 / 97).toFixed(6))),
  }));
  const tokens = inputs.reduce<number>((sum, item) => sum + Math.max(1, Math.ceil(String(item).length / 4)), 0);
  json(res, 200, { object: 'list', data, model: String(request['model']), usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

function json(res: ServerResponse, status: number, payload: unknown, extra?: Readonly<Record<string, string>>): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

/** Waits between chunks; 0 means one event-loop turn, so chunks still leave one by one. */
function pause(ms: number): Promise<void> {
  if (ms <= 0) return new Promise((resolve) => setImmediate(resolve));
  return sleep(ms);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
