/**
 * A fake Anthropic Messages API server for tests, the bench and `npm start`, built from Anthropic's
 * published API reference (https://docs.anthropic.com/en/api/messages, .../messages-streaming,
 * .../errors). It VERIFIES what it receives the way the real API does, and answers 400/401 with
 * Anthropic's error shape when a request is wrong: the auth and version headers, required fields
 * (model, max_tokens, messages), no unknown top-level fields, role and content block shapes, image
 * sources and media types, tool definitions, tool_use/tool_result pairing by id, sampling ranges,
 * thinking budgets, tool input schemas (compiled as JSON Schema), thinking blocks sent back (their
 * signature present and matching their text; with thinking on, the assistant turn a tool result
 * answers must start with its thinking block, as Claude requires), no forced tool with thinking.
 * A tool call's input matches the tool's schema (fake-schema.ts); with native structured outputs
 * (output_config.format) the text answer is JSON matching the schema. Native structured outputs and
 * strict tools (`strict: true`) take Claude 4.5 and later and the structured outputs schema subset
 * (every object closed by additionalProperties: false, no numeric, length or size constraints). Streams use the real event types (message_start, content_block_*, message_delta,
 * message_stop, ping) and are written in small pieces so events split across network chunks.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeFake, guardedHandler, listenFake } from './fake-listen.js';
import { compileSchema, inputFor, strictSchemaProblem, thinkingSignature } from './fake-schema.js';
import type { ValidateFunction } from 'ajv';

/** Knobs; change them between requests. */
export interface AnthropicBehaviour {
  /** The x-api-key the fake accepts. */
  apiKey: string;
  /** Text of a plain answer. */
  text: string;
  /** Input of the tool call the fake makes when the request offers tools (JSON object). */
  toolInput: Readonly<Record<string, unknown>>;
  /** Parallel tool calls in one answer. */
  toolCalls: number;
  /** Thinking text sent when the request enables extended thinking. */
  thinking: string;
  /** Answer every request with this status and Anthropic's error body (529 = overloaded_error ...). */
  status: number | undefined;
  /** With `status`: only the next this-many requests fail (counts down). */
  failNext: number | undefined;
  retryAfterSeconds: number | undefined;
  /** Streams: bytes per network write (0 = one write per event). */
  writeBytes: number;
  /** Streams: pause between writes. */
  writeIntervalMs: number;
  /** When set, the plain answer is this many text_delta events (bench), cycling through a word list. */
  textChunks: number | undefined;
  /** Reported as usage.cache_read_input_tokens. */
  cacheReadTokens: number;
  /** Streams: close the connection after this many events (a break mid-stream). */
  resetAfterEvents: number | undefined;
  /** Keep requests for inspection (the bench turns it off). */
  record: boolean;
  /**
   * Claude on Vertex AI mode (rawPredict / streamRawPredict under /v1/projects/.../publishers/anthropic):
   * bearer tokens checked with `authorize` (the fake token endpoint's), model in the path,
   * `anthropic_version: vertex-2023-10-16` in the body.
   */
  vertex: { readonly authorize: (token: string) => boolean } | undefined;
}

export interface AnthropicRecordedRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  /** The body exactly as it arrived (byte-for-byte checks of pass-through). */
  readonly raw: string;
  /** The status the fake answered. */
  status: number;
}

/** Versions the fake knows (https://docs.anthropic.com/en/api/versioning). */
const VERSIONS: ReadonlySet<string> = new Set(['2023-06-01', '2023-01-01', '2026-10-21']);
const TOP_LEVEL: ReadonlySet<string> = new Set([
  'model', 'messages', 'max_tokens', 'system', 'metadata', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k',
  'tools', 'tool_choice', 'thinking', 'service_tier', 'output_config',
]);
/** Models with native structured outputs (output_config.format): Claude 4.5 and later. */
const STRUCTURED_OUTPUT_MODELS = /claude-(?:sonnet|opus|haiku)-(?:4-[5-9]|[5-9])/;
const MEDIA_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};
const WORDS = ['Hello', ' from', ' the', ' fake', ' Anthropic', ' model', '.'];
const RECORD_LIMIT = 1000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A request the real API would refuse: the fake answers 400 with this message. */
class Invalid extends Error {}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Invalid(message);
}

export class FakeAnthropic {
  readonly requests: AnthropicRecordedRequest[] = [];
  readonly behaviour: AnthropicBehaviour;
  private server: Server | undefined;
  private portNumber = 0;
  private counter = 0;
  private readonly cache = new PromptCache();

  constructor(behaviour: Partial<AnthropicBehaviour> = {}) {
    this.behaviour = {
      apiKey: 'sk-ant-fake',
      text: 'Hello from the fake Anthropic model.',
      toolInput: { city: 'Paris', unit: 'celsius' },
      toolCalls: 1,
      thinking: 'Let me think about this.',
      status: undefined,
      failNext: undefined,
      retryAfterSeconds: undefined,
      writeBytes: 7,
      writeIntervalMs: 0,
      textChunks: undefined,
      cacheReadTokens: 0,
      resetAfterEvents: undefined,
      record: true,
      vertex: undefined,
      ...behaviour,
    };
  }

  get port(): number {
    return this.portNumber;
  }

  /** Base URL with /v1, as a ModelProvider endpoint names it. */
  get url(): string {
    // Claude on Vertex AI: the location base, as a gcp-vertex-ai ModelProvider endpoint names it.
    return this.behaviour.vertex ? `http://127.0.0.1:${this.portNumber}/v1/projects/fake-project/locations/us-east5` : `http://127.0.0.1:${this.portNumber}/v1`;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<void> {
    const server = createServer(guardedHandler((req, res) => this.handle(req, res)));
    server.keepAliveTimeout = 60_000;
    this.portNumber = await listenFake(server, port, host);
    this.server = server;
  }

  async stop(): Promise<void> {
    await closeFake(this.server);
  }

  /** Requests that reached /v1/messages. */
  received(): AnthropicRecordedRequest[] {
    return this.requests.filter((r) => /\/messages$|:(stream)?[rR]awPredict$/.test(r.path.split('?')[0] ?? ''));
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
    const record: AnthropicRecordedRequest = { path: req.url ?? '/', headers: { ...req.headers }, body, raw: text, status: 0 };
    if (this.behaviour.record) {
      if (this.requests.length >= RECORD_LIMIT) this.requests.shift();
      this.requests.push(record);
    }
    const answer = (status: number, type: string, message: string, extra?: Record<string, string>): void => {
      record.status = status;
      sendJson(res, status, { type: 'error', error: { type, message } }, extra);
    };
    if (this.behaviour.vertex) return this.vertex(req, res, body, text.length, record, answer);
    const countTokens = req.method === 'POST' && (req.url ?? '').split('?')[0]?.endsWith('/v1/messages/count_tokens');
    if (!countTokens && (req.method !== 'POST' || !(req.url ?? '').split('?')[0]?.endsWith('/v1/messages'))) {
      return answer(404, 'not_found_error', `Not found: ${req.method} ${req.url}`);
    }
    const key = req.headers['x-api-key'];
    if (key === undefined) return answer(401, 'authentication_error', 'x-api-key header is required');
    if (key !== this.behaviour.apiKey) return answer(401, 'authentication_error', 'invalid x-api-key');
    if (req.headers['authorization'] !== undefined) return answer(400, 'invalid_request_error', 'unexpected Authorization header (the gateway leaked a client credential)');
    const version = req.headers['anthropic-version'];
    if (typeof version !== 'string') return answer(400, 'invalid_request_error', 'anthropic-version: header is required');
    if (!VERSIONS.has(version)) return answer(400, 'invalid_request_error', `anthropic-version: unknown version ${version}`);
    if (!String(req.headers['content-type'] ?? '').includes('application/json')) return answer(400, 'invalid_request_error', 'content-type must be application/json');
    const b = this.behaviour;
    if (b.status !== undefined && (b.failNext === undefined || b.failNext > 0)) {
      if (b.failNext !== undefined) b.failNext--;
      const extra = b.retryAfterSeconds === undefined ? undefined : { 'retry-after': String(b.retryAfterSeconds) };
      const type = ERROR_TYPES[b.status] ?? 'api_error';
      return answer(b.status, type, type === 'overloaded_error' ? 'Overloaded' : `fake Anthropic answered ${b.status}`, extra);
    }
    if (countTokens) {
      // https://docs.anthropic.com/en/api/messages-count-tokens: model and messages required, no max_tokens.
      if (!isObj(body) || typeof body['model'] !== 'string' || !Array.isArray(body['messages'])) return answer(400, 'invalid_request_error', 'model and messages: Field required');
      record.status = 200;
      return sendJson(res, 200, { input_tokens: Math.max(1, Math.ceil(text.length / 4)) });
    }
    try {
      check(isObj(body), 'request body must be a JSON object');
      validate(body);
    } catch (err) {
      if (err instanceof Invalid) return answer(400, 'invalid_request_error', err.message);
      throw err;
    }
    record.status = 200;
    const message = this.reply(body, text.length);
    if (body['stream'] === true) return this.stream(res, message);
    sendJson(res, 200, message, { 'request-id': `req_fake_${this.counter}` });
  }

  /** Claude on Vertex AI: rawPredict / streamRawPredict with a bearer token. */
  private vertex(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    bytes: number,
    record: AnthropicRecordedRequest,
    answer: (status: number, type: string, message: string) => void,
  ): void | Promise<void> {
    const m = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) return answer(404, 'not_found_error', `Not found: ${req.method} ${req.url}`);
    const auth = req.headers['authorization'];
    const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!this.behaviour.vertex?.authorize(token)) return answer(401, 'authentication_error', 'Request had invalid authentication credentials.');
    if (req.headers['x-api-key'] !== undefined) return answer(400, 'invalid_request_error', 'x-api-key is not used on Vertex AI');
    const b = this.behaviour;
    if (b.status !== undefined && (b.failNext === undefined || b.failNext > 0)) {
      if (b.failNext !== undefined) b.failNext--;
      record.status = b.status;
      // Vertex AI's own quota refusals are Google-shaped; Claude's (overloaded ...) are Anthropic's.
      if (b.status === 429) return sendJson(res, 429, { error: { code: 429, message: 'Quota exceeded for aiplatform.googleapis.com/online_prediction_input_tokens_per_minute_per_base_model with base model: anthropic-claude. Please submit a quota increase request.', status: 'RESOURCE_EXHAUSTED' } });
      const type = ERROR_TYPES[b.status] ?? 'api_error';
      return answer(b.status, type, type === 'overloaded_error' ? 'Overloaded' : `fake Vertex AI Claude answered ${b.status}`);
    }
    const beta = req.headers['anthropic-beta'];
    if (beta !== undefined && (typeof beta !== 'string' || !/^[a-z0-9-]+(,\s*[a-z0-9-]+)*$/.test(beta))) return answer(400, 'invalid_request_error', `anthropic-beta: malformed ${String(beta)}`);
    try {
      check(isObj(body), 'request body must be a JSON object');
      check(body['anthropic_version'] === 'vertex-2023-10-16', 'anthropic_version: must be vertex-2023-10-16 on Vertex AI');
      if (m[1] === 'count-tokens') {
        // count-tokens:rawPredict names the model in the body.
        check(typeof body['model'] === 'string' && /^claude-/.test(body['model']), 'model: Field required (the Claude model to count for)');
        check(Array.isArray(body['messages']) && body['messages'].length > 0, 'messages: Field required');
        check(m[2] === 'rawPredict', 'count-tokens is served by rawPredict');
        record.status = 200;
        return sendJson(res, 200, { input_tokens: Math.max(1, Math.ceil(bytes / 4)) });
      }
      check(body['model'] === undefined, 'model: Extra inputs are not permitted (the model is in the URL on Vertex AI)');
      const stream = m[2] === 'streamRawPredict';
      check(stream === (body['stream'] === true), 'streamRawPredict requires stream: true (and rawPredict no stream)');
      const { anthropic_version: _version, ...rest } = body;
      const request = { ...rest, model: decodeURIComponent(m[1] as string) };
      validate(request);
      record.status = 200;
      const message = this.reply(request, bytes);
      if (stream) return this.stream(res, message);
      sendJson(res, 200, message);
    } catch (err) {
      if (err instanceof Invalid) return answer(400, 'invalid_request_error', err.message);
      throw err;
    }
  }

  /** The message the fake answers `body` with (public for the Bedrock fake, which serves Claude's Messages natively). */
  message(body: Obj, bodyBytes: number): Obj {
    return this.reply(body, bodyBytes);
  }

  private reply(body: Obj, bodyBytes: number): Obj {
    const b = this.behaviour;
    const messages = body['messages'] as Obj[];
    const last = messages[messages.length - 1] as Obj;
    const lastBlocks = Array.isArray(last['content']) ? (last['content'] as Obj[]) : [];
    const results = lastBlocks.filter((x) => x['type'] === 'tool_result');
    const tools = Array.isArray(body['tools']) ? (body['tools'] as Obj[]) : [];
    const choice = isObj(body['tool_choice']) ? body['tool_choice'] : { type: 'auto' };
    const forced = choice['type'] === 'any' || choice['type'] === 'tool';
    const content: Obj[] = [];
    if (isObj(body['thinking'])) content.push({ type: 'thinking', thinking: b.thinking, signature: thinkingSignature(b.thinking) });
    let stop = 'end_turn';
    let outputTokens = 0;
    if (tools.length > 0 && choice['type'] !== 'none' && (forced || results.length === 0)) {
      const name = choice['type'] === 'tool' ? String(choice['name']) : String((tools[0] as Obj)['name']);
      const schema = (tools.find((t) => t['name'] === name) as Obj)['input_schema'];
      const input = inputFor(compileSchema(schema) as ValidateFunction, schema, b.toolInput);
      const calls = choice['disable_parallel_tool_use'] === true ? 1 : b.toolCalls;
      for (let i = 0; i < calls; i++) content.push({ type: 'tool_use', id: `toolu_fake_${i}`, name, input });
      stop = 'tool_use';
      outputTokens = 10 * calls;
    } else {
      let pieces = b.textChunks === undefined ? splitWords(results.length > 0 ? `Tool said: ${results.map(resultText).join(' | ')}` : b.text) : Array.from({ length: b.textChunks }, (_, i) => WORDS[i % WORDS.length] as string);
      const max = body['max_tokens'] as number;
      if (pieces.length > max) {
        pieces = pieces.slice(0, max);
        stop = 'max_tokens';
      }
      let textOut = pieces.join('');
      const format = isObj(body['output_config']) ? body['output_config']['format'] : undefined;
      if (isObj(format) && results.length === 0) {
        textOut = JSON.stringify(inputFor(compileSchema(format['schema']) as ValidateFunction, format['schema'], b.toolInput));
        pieces = splitJson(textOut);
      }
      for (const s of Array.isArray(body['stop_sequences']) ? (body['stop_sequences'] as string[]) : []) {
        const at = textOut.indexOf(s);
        if (at >= 0) {
          textOut = textOut.slice(0, at);
          stop = 'stop_sequence';
        }
      }
      outputTokens = pieces.length;
      content.push({ type: 'text', text: textOut });
    }
    this.counter++;
    const cached = this.cache.use(body);
    const input = Math.max(1, Math.ceil(bodyBytes / 4));
    return {
      id: `msg_fake_${this.counter}`,
      type: 'message',
      role: 'assistant',
      model: body['model'],
      content,
      stop_reason: stop,
      stop_sequence: null,
      // With cache_control, the prefix up to the last breakpoint is written once, then read
      // (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching): input_tokens is the rest.
      usage: {
        input_tokens: Math.max(1, input - cached.created - cached.read),
        cache_creation_input_tokens: cached.created,
        cache_read_input_tokens: cached.read + b.cacheReadTokens,
        output_tokens: outputTokens,
      },
    };
  }

  private async stream(res: ServerResponse, message: Obj): Promise<void> {
    const events = this.events(message).map((e) => `event: ${String(e['type'])}\ndata: ${JSON.stringify(e)}\n\n`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': `req_fake_${this.counter}` });
    const b = this.behaviour;
    const cut = b.resetAfterEvents;
    const sendable = cut === undefined ? events : events.slice(0, cut);
    const writes = b.writeBytes > 0 ? splitBytes(sendable.join(''), b.writeBytes) : sendable;
    for (const w of writes) {
      if (res.destroyed) return;
      res.write(w);
      await pause(b.writeIntervalMs);
    }
    if (cut !== undefined) {
      res.socket?.destroy();
      return;
    }
    res.end();
  }

  /** The stream events (objects with their `type`) that carry `message` (Anthropic's sequence; Bedrock's fake wraps them in chunk frames). */
  events(message: Obj): Obj[] {
    const events: Obj[] = [];
    const event = (type: string, data: Obj): void => {
      events.push({ type, ...data });
    };
    const usage = message['usage'] as Obj;
    event('message_start', { message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } });
    event('ping', {});
    (message['content'] as Obj[]).forEach((block, index) => {
      if (block['type'] === 'text') {
        event('content_block_start', { index, content_block: { type: 'text', text: '' } });
        const n = this.behaviour.textChunks;
        const pieces = n === undefined ? splitWords(String(block['text'])) : Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length] as string);
        for (const text of pieces) event('content_block_delta', { index, delta: { type: 'text_delta', text } });
      } else if (block['type'] === 'tool_use') {
        event('content_block_start', { index, content_block: { type: 'tool_use', id: block['id'], name: block['name'], input: {} } });
        const json = JSON.stringify(block['input']);
        const third = Math.ceil(json.length / 3);
        for (const partial of ['', json.slice(0, third), json.slice(third, 2 * third), json.slice(2 * third)]) {
          event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: partial } });
        }
      } else if (block['type'] === 'thinking') {
        event('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } });
        for (const thinking of splitWords(String(block['thinking']))) event('content_block_delta', { index, delta: { type: 'thinking_delta', thinking } });
        event('content_block_delta', { index, delta: { type: 'signature_delta', signature: block['signature'] } });
      }
      event('content_block_stop', { index });
    });
    event('message_delta', { delta: { stop_reason: message['stop_reason'], stop_sequence: null }, usage: { output_tokens: usage['output_tokens'] } });
    event('message_stop', {});
    return events;
  }
}

/** Checks a Messages request as the API does (400 with its message otherwise); exported for the Bedrock fake's InvokeModel. */
export function validateMessages(body: Obj): void {
  validate(body);
}

/** Every cache_control of a request is {type: ephemeral, ttl?: 5m | 1h}; at most 4 breakpoints. */
function checkCacheControl(body: Obj): void {
  let found = 0;
  const look = (block: unknown, at: string): void => {
    if (!isObj(block) || block['cache_control'] === undefined) return;
    const c = block['cache_control'];
    check(isObj(c) && c['type'] === 'ephemeral' && Object.keys(c).every((k) => k === 'type' || k === 'ttl') && (c['ttl'] === undefined || c['ttl'] === '5m' || c['ttl'] === '1h'), `${at}.cache_control: Input tag does not match the expected tag 'ephemeral' (ttl '5m' or '1h')`);
    found++;
  };
  if (Array.isArray(body['tools'])) (body['tools'] as unknown[]).forEach((t, i) => look(t, `tools.${i}`));
  if (Array.isArray(body['system'])) (body['system'] as unknown[]).forEach((b, i) => look(b, `system.${i}`));
  (body['messages'] as Obj[]).forEach((m, i) => {
    if (Array.isArray(m['content'])) (m['content'] as unknown[]).forEach((b, j) => look(b, `messages.${i}.content.${j}`));
  });
  check(found <= 4, `A maximum of 4 blocks with cache_control may be provided. Found ${found}.`);
}

/**
 * Prompt caching as the API reports it (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching):
 * the request's prefix up to its last cache_control breakpoint (tools, then system, then messages)
 * is written to the cache the first time (cache_creation_input_tokens) and read afterwards
 * (cache_read_input_tokens). Bounded: the fake forgets everything past 1000 prefixes.
 */
class PromptCache {
  private readonly seen = new Set<string>();

  use(body: Obj): { readonly created: number; readonly read: number } {
    const prefix = cachedPrefix(body);
    if (prefix === undefined) return { created: 0, read: 0 };
    const tokens = Math.max(1, Math.ceil(prefix.length / 4));
    const key = createHash('sha256').update(prefix).digest('hex');
    if (this.seen.has(key)) return { created: 0, read: tokens };
    if (this.seen.size >= 1000) this.seen.clear();
    this.seen.add(key);
    return { created: tokens, read: 0 };
  }
}

/** The request up to its last cache_control breakpoint, in cache order; undefined without one. */
function cachedPrefix(body: Obj): string | undefined {
  const parts: unknown[] = [];
  let last = -1;
  const visit = (block: unknown): void => {
    parts.push(block);
    if (isObj(block) && block['cache_control'] !== undefined) last = parts.length;
  };
  if (Array.isArray(body['tools'])) (body['tools'] as unknown[]).forEach(visit);
  if (Array.isArray(body['system'])) (body['system'] as unknown[]).forEach(visit);
  else if (body['system'] !== undefined) parts.push(body['system']);
  for (const m of body['messages'] as Obj[]) {
    if (Array.isArray(m['content'])) (m['content'] as unknown[]).forEach(visit);
    else parts.push(m['content']);
  }
  return last < 0 ? undefined : JSON.stringify(parts.slice(0, last));
}

function validate(body: Obj): void {
  for (const k of Object.keys(body)) check(TOP_LEVEL.has(k), `${k}: Extra inputs are not permitted`);
  check(typeof body['model'] === 'string' && body['model'] !== '', 'model: Field required');
  const max = body['max_tokens'];
  check(max !== undefined, 'max_tokens: Field required');
  check(typeof max === 'number' && Number.isInteger(max) && max >= 1, 'max_tokens: must be a positive integer');
  const messages = body['messages'];
  check(Array.isArray(messages), 'messages: Field required');
  check(messages.length > 0, 'messages: at least one message is required');
  if (body['system'] !== undefined) {
    const s = body['system'];
    check(typeof s === 'string' || (Array.isArray(s) && s.every((x) => isObj(x) && x['type'] === 'text' && typeof x['text'] === 'string' && x['text'] !== '')), 'system: must be a string or a list of text blocks');
  }
  let previousToolIds: string[] = [];
  messages.forEach((m: unknown, i: number) => {
    check(isObj(m), `messages.${i}: must be an object`);
    for (const k of Object.keys(m)) check(k === 'role' || k === 'content', `messages.${i}.${k}: Extra inputs are not permitted`);
    const role = m['role'];
    check(role === 'user' || role === 'assistant', `messages.${i}.role: Input should be 'user' or 'assistant'`);
    const content = m['content'];
    const blocks: Obj[] = typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? (content as Obj[]) : [];
    check(typeof content === 'string' || Array.isArray(content), `messages.${i}.content: must be a string or a list of content blocks`);
    check(blocks.length > 0, `messages.${i}: all messages must have non-empty content`);
    const results: string[] = [];
    const uses: string[] = [];
    blocks.forEach((block, j) => {
      const at = `messages.${i}.content.${j}`;
      check(isObj(block), `${at}: must be an object`);
      switch (block['type']) {
        case 'text':
          check(typeof block['text'] === 'string' && block['text'] !== '', `${at}.text: text content blocks must be non-empty`);
          break;
        case 'image': {
          check(role === 'user', `${at}: image blocks are only allowed in user messages`);
          const src = block['source'];
          check(isObj(src), `${at}.source: Field required`);
          if (src['type'] === 'base64') {
            check(MEDIA_TYPES.has(String(src['media_type'])), `${at}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
            check(typeof src['data'] === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(src['data']), `${at}.source.data: invalid base64 data`);
            check(Buffer.from(src['data'], 'base64').length <= 5 * 1024 * 1024, `${at}: image exceeds 5 MB maximum`);
          } else {
            check(src['type'] === 'url' && typeof src['url'] === 'string' && src['url'].startsWith('https://'), `${at}.source: expected a base64 or url source`);
          }
          break;
        }
        case 'tool_use':
          check(role === 'assistant', `${at}: tool_use blocks are only allowed in assistant messages`);
          check(typeof block['id'] === 'string' && /^[a-zA-Z0-9_-]+$/.test(block['id']), `${at}.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
          check(typeof block['name'] === 'string' && TOOL_NAME.test(block['name']), `${at}.name: invalid tool name`);
          check(isObj(block['input']), `${at}.input: Input should be a valid dictionary`);
          uses.push(block['id']);
          break;
        case 'tool_result':
          check(role === 'user', `${at}: tool_result blocks are only allowed in user messages`);
          check(typeof block['tool_use_id'] === 'string', `${at}.tool_use_id: Field required`);
          check(previousToolIds.includes(block['tool_use_id']), `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${block['tool_use_id']}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
          results.push(block['tool_use_id']);
          break;
        case 'thinking':
          check(role === 'assistant', `${at}: thinking blocks are only allowed in assistant messages`);
          check(typeof block['thinking'] === 'string', `${at}.thinking.thinking: Field required`);
          check(typeof block['signature'] === 'string', `${at}.thinking.signature: Field required`);
          check(block['signature'] === thinkingSignature(block['thinking']), `${at}: Invalid \`signature\` in \`thinking\` block`);
          break;
        case 'document': {
          check(role === 'user', `${at}: document blocks are only allowed in user messages`);
          const src = block['source'];
          check(isObj(src), `${at}.source: Field required`);
          if (src['type'] === 'base64') check(src['media_type'] === 'application/pdf' && typeof src['data'] === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(src['data']), `${at}.source: a base64 document must be application/pdf with base64 data`);
          else if (src['type'] === 'text') check(src['media_type'] === 'text/plain' && typeof src['data'] === 'string', `${at}.source: a text document needs media_type text/plain and data`);
          else check(src['type'] === 'url' && typeof src['url'] === 'string' && src['url'].startsWith('https://'), `${at}.source: expected a base64, text or url source`);
          const citations = block['citations'];
          check(citations === undefined || (isObj(citations) && typeof citations['enabled'] === 'boolean'), `${at}.citations: expected {enabled: boolean}`);
          break;
        }
        case 'redacted_thinking':
          check(role === 'assistant', `${at}: thinking blocks are only allowed in assistant messages`);
          check(typeof block['data'] === 'string' && block['data'] !== '', `${at}.redacted_thinking.data: Field required`);
          break;
        default:
          throw new Invalid(`${at}.type: Input tag '${String(block['type'])}' does not match any of the expected tags`);
      }
    });
    const missing = previousToolIds.filter((id) => !results.includes(id));
    check(missing.length === 0, `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
    previousToolIds = uses;
  });
  if (body['temperature'] !== undefined) check(typeof body['temperature'] === 'number' && body['temperature'] >= 0 && body['temperature'] <= 1, 'temperature: Input should be less than or equal to 1');
  if (body['top_p'] !== undefined) check(typeof body['top_p'] === 'number' && body['top_p'] >= 0 && body['top_p'] <= 1, 'top_p: Input should be less than or equal to 1');
  if (body['stop_sequences'] !== undefined) check(Array.isArray(body['stop_sequences']) && body['stop_sequences'].every((s) => typeof s === 'string'), 'stop_sequences: Input should be a valid list of strings');
  if (body['stream'] !== undefined) check(typeof body['stream'] === 'boolean', 'stream: Input should be a valid boolean');
  if (body['metadata'] !== undefined) check(isObj(body['metadata']) && Object.keys(body['metadata']).every((k) => k === 'user_id'), 'metadata: only user_id is permitted');
  const names: string[] = [];
  if (body['tools'] !== undefined) {
    check(Array.isArray(body['tools']), 'tools: Input should be a valid list');
    (body['tools'] as unknown[]).forEach((t, i) => {
      check(isObj(t), `tools.${i}: must be an object`);
      for (const k of Object.keys(t)) check(['name', 'description', 'input_schema', 'cache_control', 'type', 'strict'].includes(k), `tools.${i}.${k}: Extra inputs are not permitted`);
      check(typeof t['name'] === 'string' && TOOL_NAME.test(t['name']), `tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      check(isObj(t['input_schema']) && t['input_schema']['type'] === 'object', `tools.${i}.input_schema: Input should be a JSON Schema with type 'object'`);
      const compiled = compileSchema(t['input_schema']);
      check(typeof compiled !== 'string', `tools.${i}.custom.input_schema: JSON schema is invalid - please consult https://json-schema.org or our documentation at https://docs.anthropic.com/en/docs/tool-use (${String(compiled)})`);
      if (t['strict'] !== undefined) {
        // Strict tool use: grammar-constrained input, on the models with structured outputs, for the schema subset they take.
        check(typeof t['strict'] === 'boolean', `tools.${i}.custom.strict: Input should be a valid boolean`);
        if (t['strict']) {
          check(STRUCTURED_OUTPUT_MODELS.test(String(body['model'])), `'${String(body['model'])}' does not support strict tools.`);
          const problem = strictSchemaProblem(t['input_schema'], `tools.${i}.custom.input_schema`);
          check(problem === undefined, `${String(problem)} (strict tool use)`);
        }
      }
      names.push(t['name']);
    });
  }
  if (body['tool_choice'] !== undefined) {
    const c = body['tool_choice'];
    check(isObj(c) && ['auto', 'any', 'tool', 'none'].includes(String(c['type'])), 'tool_choice: Input tag does not match any of the expected tags');
    if (c['type'] === 'tool') check(names.includes(String(c['name'])), `tool_choice.name: tool '${String(c['name'])}' not found in tools`);
    check(c['type'] === 'none' || names.length > 0, 'tool_choice may only be specified while providing tools');
  }
  if (body['output_config'] !== undefined) {
    const c = body['output_config'];
    check(isObj(c) && Object.keys(c).every((k) => k === 'format' || k === 'effort'), 'output_config: Extra inputs are not permitted');
    const f = c['format'];
    if (f !== undefined) {
      check(STRUCTURED_OUTPUT_MODELS.test(String(body['model'])), `'${String(body['model'])}' does not support output format.`);
      check(isObj(f) && f['type'] === 'json_schema' && isObj(f['schema']) && Object.keys(f).every((k) => k === 'type' || k === 'schema'), 'output_config.format: expected {type: json_schema, schema}');
      check(typeof compileSchema(f['schema']) !== 'string', 'output_config.format.schema: JSON schema is invalid');
      const problem = strictSchemaProblem(f['schema'], 'output_config.format.schema');
      check(problem === undefined, String(problem));
    }
  }
  if (body['thinking'] !== undefined) {
    const t = body['thinking'];
    check(isObj(t) && t['type'] === 'enabled' && typeof t['budget_tokens'] === 'number', 'thinking: expected {type: enabled, budget_tokens}');
    check((t['budget_tokens'] as number) >= 1024, 'thinking.budget_tokens: Input should be greater than or equal to 1024');
    check((t['budget_tokens'] as number) < (max as number), '`max_tokens` must be greater than `thinking.budget_tokens`');
    check(body['temperature'] === undefined || body['temperature'] === 1, 'temperature may only be set to 1 when thinking is enabled');
    const choice = body['tool_choice'];
    check(!isObj(choice) || (choice['type'] !== 'any' && choice['type'] !== 'tool'), 'Thinking may not be enabled when tool_choice forces tool use.');
    checkThinkingTurn(messages as Obj[]);
  }
  checkCacheControl(body);
}

/**
 * With thinking on, an assistant turn whose tool calls the last message answers must start with its
 * thinking block (Claude verifies the block's signature: see the block checks above).
 */
function checkThinkingTurn(messages: readonly Obj[]): void {
  const last = messages[messages.length - 1];
  const previous = messages[messages.length - 2];
  if (!last || !previous || last['role'] !== 'user' || previous['role'] !== 'assistant') return;
  const answersTools = Array.isArray(last['content']) && (last['content'] as Obj[]).some((b) => isObj(b) && b['type'] === 'tool_result');
  if (!answersTools || !Array.isArray(previous['content'])) return;
  const first = (previous['content'] as Obj[])[0];
  const type = isObj(first) ? first['type'] : undefined;
  check(
    type === 'thinking' || type === 'redacted_thinking',
    `messages.${messages.length - 2}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`.`,
  );
}

/** Splits JSON text into a few pieces (how a model streams it). */
function splitJson(text: string): string[] {
  const size = Math.max(1, Math.ceil(text.length / 4));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function resultText(block: Obj): string {
  const c = block['content'];
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return (c as Obj[]).map((x) => String(x['text'] ?? '')).join('');
  return '';
}

/** Splits text into words with their leading space (how models stream). */
function splitWords(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [text];
}

function splitBytes(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function sendJson(res: ServerResponse, status: number, payload: unknown, extra?: Readonly<Record<string, string>>): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function pause(ms: number): Promise<void> {
  if (ms <= 0) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, ms));
}
