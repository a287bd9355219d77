/**
 * A fake OpenAI-compatible provider: a real HTTP server for `npm start` (works offline) and for
 * tests, which read what it received and turn its knobs (latency, chunk count and rate, status).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { closeFake, guardedHandler, listenFake } from './fake-listen.js';

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
  /** Tool call answers: the arguments in exactly these deltas (or their concatenation), instead of FAKE_TOOL_ARGUMENTS in three. */
  toolArguments?: readonly string[] | undefined;
  /** Reasoning text for requests with reasoning_effort, instead of FAKE_REASONING (streamed word by word). */
  reasoning?: string | undefined;
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
/** Stored responses kept (the oldest go first), so a long bench run stays bounded. */
const STORED_LIMIT = 10_000;
const WORDS = ['Hello', ' from', ' the', ' Tollgate', ' fake', ' provider', '.'];

export class FakeProvider {
  readonly requests: RecordedRequest[] = [];
  /** Usage of every response that carried usage (bounded like `requests`). */
  readonly reported: ReportedUsage[] = [];
  /** Streams the client (the gateway) closed before the fake had sent everything. */
  abortedStreams = 0;
  /** Responses this fake stored (`store` not false), by id: what retrieve, delete, input_items and cancel see. */
  readonly stored = new Map<string, StoredFakeResponse>();
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
    const handler = guardedHandler((req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    const server: Server = this.tls ? createTlsServer({ cert: this.tls.cert, key: this.tls.key }, handler) : createServer(handler);
    server.keepAliveTimeout = 60_000;
    this.portNumber = await listenFake(server, port, host);
    this.server = server;
  }

  async stop(): Promise<void> {
    await closeFake(this.server);
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
    if (route.endsWith('/chat/completions')) {
      const wrong = checkChatRequest(request);
      if (wrong) return json(res, 400, { error: { message: wrong, type: 'invalid_request_error', param: null, code: null } });
      if (wantsToolCall(request)) return this.toolCall(request, res, b);
      return this.chat(request, res, b);
    }
    if (route.endsWith('/responses')) return this.responses(request, res, b);
    const stored = STORED_PATH.exec(route);
    if (stored) return this.storedResponse(req.method ?? '', stored[1] as string, stored[2], body, res);
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
    // A request with reasoning_effort gets reasoning text too (`reasoning_content`, as DeepSeek and vLLM send it).
    const reasoning = typeof request['reasoning_effort'] === 'string' ? (b.reasoning ?? FAKE_REASONING) : undefined;
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
        choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), ...(reasoning ? { reasoning_content: reasoning } : {}) }, finish_reason: finish }],
        ...(b.sendUsage !== false ? { usage } : {}),
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const base = { id, object: 'chat.completion.chunk', created, model };
    const send = (payload: unknown): void => {
      res.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    // Reasoning first, as engines that stream it (DeepSeek, vLLM) send `reasoning_content`.
    if (reasoning) for (const r of reasoning.match(/\s*\S+/g) ?? []) send({ ...base, choices: [{ index: 0, delta: { reasoning_content: r }, finish_reason: null }] });
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

  /** A tool call answer (streamed: id and name first, then the arguments in three pieces, as OpenAI does). */
  private async toolCall(request: Record<string, unknown>, res: ServerResponse, b: FakeBehaviour): Promise<void> {
    const model = String(request['model'] ?? 'unknown');
    const id = `chatcmpl-${this.name}-tool-${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const tools = request['tools'] as Record<string, Record<string, unknown>>[];
    const name = String(tools[0]?.['function']?.['name']);
    const callId = `call_fake_${this.requests.length}`;
    const promptTokens = Math.max(1, Math.ceil(JSON.stringify(request['messages'] ?? '').length / 4));
    const usage = { prompt_tokens: promptTokens, completion_tokens: 12, total_tokens: promptTokens + 12 };
    if (request['stream'] !== true) {
      return json(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name, arguments: b.toolArguments ? b.toolArguments.join('') : FAKE_TOOL_ARGUMENTS } }] }, finish_reason: 'tool_calls' }],
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const base = { id, object: 'chat.completion.chunk', created, model };
    const send = (choices: unknown[], extra: Record<string, unknown> = {}): void => void res.write(`data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`);
    send([{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [{ index: 0, id: callId, type: 'function', function: { name, arguments: '' } }] }, finish_reason: null }]);
    const third = Math.ceil(FAKE_TOOL_ARGUMENTS.length / 3);
    for (const piece of b.toolArguments ?? [FAKE_TOOL_ARGUMENTS.slice(0, third), FAKE_TOOL_ARGUMENTS.slice(third, 2 * third), FAKE_TOOL_ARGUMENTS.slice(2 * third)]) {
      await pause(b.chunkIntervalMs);
      send([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null }]);
    }
    send([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]);
    const options = request['stream_options'] as { include_usage?: boolean } | undefined;
    if (options?.include_usage) send([], { usage });
    res.end('data: [DONE]\n\n');
  }

  /**
   * The stored-response endpoints of OpenAI's Responses API, verified like the real one: the right
   * method for each, no body, and an id this provider stored (else OpenAI's 404).
   */
  private storedResponse(method: string, id: string, sub: string | undefined, body: unknown, res: ServerResponse): void {
    const notFound = (): void => json(res, 404, { error: { message: `No response found with id '${id}'.`, type: 'invalid_request_error', param: null, code: null } });
    const expected = sub === 'cancel' ? ['POST'] : sub === 'input_items' ? ['GET'] : ['GET', 'DELETE'];
    if (!expected.includes(method)) return json(res, 405, { error: { message: `Method ${method} not allowed.`, type: 'invalid_request_error', param: null, code: null } });
    if (body !== undefined && !(sub === 'cancel' && typeof body === 'object' && body !== null && Object.keys(body).length === 0)) {
      return json(res, 400, { error: { message: 'This endpoint takes no request body.', type: 'invalid_request_error', param: null, code: null } });
    }
    const entry = this.stored.get(id);
    if (!entry) return notFound();
    if (sub === 'input_items') {
      const data = entry.inputItems;
      return json(res, 200, { object: 'list', data, first_id: data[0]?.['id'] ?? null, last_id: data.at(-1)?.['id'] ?? null, has_more: false });
    }
    if (sub === 'cancel') {
      if (entry.response['background'] !== true) return json(res, 400, { error: { message: 'Only responses created with background=true can be cancelled.', type: 'invalid_request_error', param: null, code: null } });
      entry.response = { ...entry.response, status: 'cancelled' };
      return json(res, 200, entry.response);
    }
    if (method === 'DELETE') {
      this.stored.delete(id);
      return json(res, 200, { id, object: 'response.deleted', deleted: true });
    }
    json(res, 200, entry.response);
  }

  /**
   * OpenAI's Responses API (POST /v1/responses), verified like the real one: `model` and `input`
   * required, no chat-only fields. Streams send the documented event sequence ending with
   * `response.completed`, whose `response.usage` is the usage.
   */
  private async responses(request: Record<string, unknown>, res: ServerResponse, b: FakeBehaviour): Promise<void> {
    const bad = (message: string): void => json(res, 400, { error: { message, type: 'invalid_request_error', param: null, code: null } });
    if (typeof request['model'] !== 'string') return bad("Missing required parameter: 'model'.");
    const input = request['input'];
    if (typeof input !== 'string' && !Array.isArray(input)) return bad("Missing required parameter: 'input'.");
    for (const chatOnly of ['messages', 'max_tokens', 'stream_options', 'n']) {
      if (request[chatOnly] !== undefined) return bad(`Unknown parameter: '${chatOnly}'.`);
    }
    const model = request['model'];
    const previous = request['previous_response_id'];
    if (previous !== undefined && previous !== null) {
      // Like OpenAI: a previous response must exist here (this provider stored it).
      if (typeof previous !== 'string' || !this.stored.has(previous)) {
        return json(res, 404, { error: { message: `Previous response with id '${String(previous)}' not found.`, type: 'invalid_request_error', param: 'previous_response_id', code: 'previous_response_not_found' } });
      }
    }
    const background = request['background'] === true;
    const pieces = b.pieces ? [...b.pieces] : Array.from({ length: b.chunks }, (_, i) => WORDS[i % WORDS.length] as string);
    const n = pieces.length;
    const text = pieces.join('');
    const inputTokens = Math.max(1, Math.ceil(JSON.stringify(input).length / 4));
    const usage = { input_tokens: inputTokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: n, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inputTokens + n };
    // Unique across fakes and runs: a misrouted retrieve must not find a namesake at another fake.
    const id = `resp_${this.name.replace(/[^A-Za-z0-9]/g, '')}_${randomBytes(8).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const item = { id: `msg_${id}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
    const response = (status: string, withOutput: boolean): Record<string, unknown> => ({
      id,
      object: 'response',
      created_at: created,
      status,
      model,
      output: withOutput ? [item] : [],
      parallel_tool_calls: true,
      tool_choice: 'auto',
      tools: [],
      usage: withOutput ? usage : null,
      metadata: {},
      previous_response_id: typeof previous === 'string' ? previous : null,
      store: request['store'] !== false,
      background,
    });
    const keep = (r: Record<string, unknown>): void => {
      if (request['store'] === false) return;
      const items = typeof input === 'string' ? [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }] : (input as unknown[]);
      if (this.stored.size >= STORED_LIMIT) this.stored.delete(this.stored.keys().next().value as string);
      this.stored.set(id, { response: r, inputItems: items.map((it, i) => ({ id: `msg_in_${i}_${id}`, ...(it as Record<string, unknown>) })) });
    };
    if (background) {
      // A background response is queued; it completes only when asked (never, here) or is cancelled.
      const queued = response('queued', false);
      keep(queued);
      return json(res, 200, queued);
    }
    if (request['stream'] !== true) {
      if (this.behaviour.record) this.reported.push({ promptTokens: inputTokens, completionTokens: n, stream: false });
      const done = response('completed', true);
      keep(done);
      return json(res, 200, done);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let seq = 0;
    const send = (type: string, data: Record<string, unknown>): void => void res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
    send('response.created', { response: response('in_progress', false) });
    send('response.in_progress', { response: response('in_progress', false) });
    send('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } });
    send('response.content_part.added', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (const delta of pieces) {
      await pause(b.chunkIntervalMs);
      send('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta });
    }
    send('response.output_text.done', { item_id: item.id, output_index: 0, content_index: 0, text });
    send('response.content_part.done', { item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
    send('response.output_item.done', { output_index: 0, item });
    const done = response('completed', true);
    keep(done);
    send('response.completed', { response: done });
    if (this.behaviour.record) this.reported.push({ promptTokens: inputTokens, completionTokens: n, stream: true });
    res.end();
  }
}

/** A response the fake stored: what it answered, and the input items it was given. */
export interface StoredFakeResponse {
  response: Record<string, unknown>;
  readonly inputItems: readonly Record<string, unknown>[];
}

/** `/responses/{id}`, `/responses/{id}/input_items`, `/responses/{id}/cancel` (any base path). */
const STORED_PATH = /\/responses\/([^/]+)(?:\/(input_items|cancel))?$/;

/**
 * What OpenAI itself refuses in a chat request (enough to catch a bad translation): roles, tool
 * messages answering an earlier assistant tool call, tool definitions, one completion cap.
 */
function checkChatRequest(request: Record<string, unknown>): string | undefined {
  const messages = request['messages'];
  if (!Array.isArray(messages) || messages.length === 0) return "'messages' must be a non-empty array";
  if (request['max_tokens'] !== undefined && request['max_completion_tokens'] !== undefined) return "only one of 'max_tokens' and 'max_completion_tokens' may be set";
  const callIds = new Set<string>();
  for (const [i, m] of (messages as Record<string, unknown>[]).entries()) {
    const role = m['role'];
    if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(String(role))) return `messages[${i}].role: invalid role '${String(role)}'`;
    if (role === 'assistant' && Array.isArray(m['tool_calls'])) {
      for (const c of m['tool_calls'] as Record<string, unknown>[]) {
        const fn = c['function'] as Record<string, unknown> | undefined;
        if (c['type'] !== 'function' || typeof c['id'] !== 'string' || typeof fn?.['arguments'] !== 'string') return `messages[${i}].tool_calls: malformed tool call`;
        callIds.add(c['id']);
      }
    }
    if (role === 'tool' && !callIds.has(String(m['tool_call_id']))) return `messages[${i}]: a 'tool' message must answer a preceding assistant tool call (tool_call_id ${String(m['tool_call_id'])})`;
    if (role !== 'assistant' && role !== 'tool' && (m['content'] === undefined || m['content'] === null)) return `messages[${i}].content: required`;
  }
  if (request['tools'] !== undefined) {
    if (!Array.isArray(request['tools'])) return "'tools' must be an array";
    for (const t of request['tools'] as Record<string, unknown>[]) {
      const fn = t['function'] as Record<string, unknown> | undefined;
      if (t['type'] !== 'function' || typeof fn?.['name'] !== 'string') return "'tools' entries must be {type: 'function', function: {name, parameters}}";
      if (fn['strict'] !== undefined && fn['strict'] !== null && typeof fn['strict'] !== 'boolean') return `Invalid type for 'tools[].function.strict': expected a boolean`;
      if (fn['strict'] === true) {
        const problem = strictParametersProblem(fn['parameters'], '()');
        if (problem) return `Invalid schema for function '${fn['name']}': ${problem}`;
      }
    }
  }
  return undefined;
}

/**
 * OpenAI's check of a strict function's parameters (Structured Outputs, "Supported schemas"), with
 * its messages: every object closes `additionalProperties` and requires every property.
 */
function strictParametersProblem(schema: unknown, context: string): string | undefined {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const s = schema as Record<string, unknown>;
  if (context === '()' && s['type'] !== 'object') return "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"" + String(s['type']) + "\"'.";
  for (const k of ['allOf', 'not', 'if', 'then', 'else', 'dependentRequired', 'dependentSchemas', 'patternProperties']) if (k in s) return `In context=${context}, '${k}' is not permitted.`;
  const props = s['properties'];
  const isObject = s['type'] === 'object' || (Array.isArray(s['type']) && s['type'].includes('object')) || (typeof props === 'object' && props !== null);
  if (isObject) {
    if (s['additionalProperties'] !== false) return `In context=${context}, 'additionalProperties' is required to be supplied and to be false.`;
    const required = Array.isArray(s['required']) ? (s['required'] as unknown[]) : [];
    const missing = Object.keys((props as Record<string, unknown> | undefined) ?? {}).find((k) => !required.includes(k));
    if (missing !== undefined) return `In context=${context}, 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
  }
  const subs: [unknown, string][] = [];
  if (typeof props === 'object' && props !== null) for (const [k, v] of Object.entries(props)) subs.push([v, `${context === '()' ? '(' : context.slice(0, -1) + ", "}'properties', '${k}')`]);
  if (s['items'] !== undefined) subs.push([s['items'], `${context === '()' ? '(' : context.slice(0, -1) + ', '}'items')`]);
  if (Array.isArray(s['anyOf'])) (s['anyOf'] as unknown[]).forEach((v, i) => subs.push([v, `${context === '()' ? '(' : context.slice(0, -1) + ', '}'anyOf', '${i}')`]));
  for (const k of ['$defs', 'definitions']) {
    const defs = s[k];
    if (typeof defs === 'object' && defs !== null) for (const [n, v] of Object.entries(defs)) subs.push([v, `('${k}', '${n}')`]);
  }
  for (const [sub, where] of subs) {
    const problem = strictParametersProblem(sub, where);
    if (problem) return problem;
  }
  return undefined;
}

/** The request offers tools and the conversation does not end with a tool result: the fake calls the first tool. */
function wantsToolCall(request: Record<string, unknown>): boolean {
  const tools = request['tools'];
  if (!Array.isArray(tools) || tools.length === 0 || request['tool_choice'] === 'none') return false;
  const messages = request['messages'] as Record<string, unknown>[];
  return messages[messages.length - 1]?.['role'] !== 'tool';
}

/** Reasoning text of an answer to a request with reasoning_effort. */
export const FAKE_REASONING = 'Thinking it over carefully.';

/** Arguments of the fake's tool call. */
export const FAKE_TOOL_ARGUMENTS = '{"city":"Paris","unit":"celsius"}';

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
