/**
 * A fake Google Gemini API (generateContent, streamGenerateContent?alt=sse) for tests and `npm start`,
 * built from Google's published reference (https://ai.google.dev/api/generate-content). It VERIFIES
 * what it receives like the real API: the x-goog-api-key, the path and `alt=sse` for streams, no
 * unknown fields (400 INVALID_ARGUMENT "Invalid JSON payload received. Unknown name ..."), roles
 * user/model, one data field per part, functionResponse names matching the previous model turn's
 * calls, function declaration schemas limited to Gemini's OpenAPI subset, generationConfig ranges.
 * Streams are SSE events of partial responses written in small pieces.
 *
 * Vertex AI mode (`vertex` set): the same generateContent shapes under
 * /v1/projects/<p>/locations/<l>/publishers/google/models/<m>, authenticated with bearer tokens this
 * fake issues itself at POST /token (Google's OAuth2 JWT-bearer grant: the assertion's RS256
 * signature is checked with the service account's public key, its iss, aud, scope and expiry too).
 */
import { createVerify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeFake, guardedHandler, listenFake } from './fake-listen.js';

export interface GeminiBehaviour {
  apiKey: string;
  text: string;
  toolArgs: Readonly<Record<string, unknown>>;
  toolCalls: number;
  thought: string;
  /** Answer with this status and Google's error body (429 RESOURCE_EXHAUSTED ...). */
  status: number | undefined;
  failNext: number | undefined;
  writeBytes: number;
  cachedTokens: number;
  record: boolean;
  /** Vertex AI mode: the service account allowed to get tokens (its public key, PEM). */
  vertex: { readonly clientEmail: string; readonly publicKeyPem: string } | undefined;
  /** Vertex AI mode: lifetime of issued tokens. */
  tokenLifetimeS: number;
}

export interface GeminiRecordedRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  status: number;
}

const STATUS_NAMES: Readonly<Record<number, string>> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };
const TOP_LEVEL: ReadonlySet<string> = new Set(['contents', 'systemInstruction', 'tools', 'toolConfig', 'generationConfig', 'safetySettings', 'cachedContent']);
const PART_DATA: ReadonlySet<string> = new Set(['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult']);
const PART_META: ReadonlySet<string> = new Set(['thought', 'thoughtSignature', 'videoMetadata']);
const GEN_KEYS: ReadonlySet<string> = new Set(['temperature', 'topP', 'topK', 'maxOutputTokens', 'stopSequences', 'candidateCount', 'responseMimeType', 'responseSchema', 'seed', 'presencePenalty', 'frequencyPenalty', 'thinkingConfig', 'responseLogprobs']);
const SCHEMA_KEYS: ReadonlySet<string> = new Set(['type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties', 'required', 'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf', 'propertyOrdering', 'default', 'items', 'minimum', 'maximum']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Refusal(400, message);
}

function checkSchema(schema: unknown, where: string): void {
  check(isObj(schema), `${where}: schema must be an object`);
  for (const [k, v] of Object.entries(schema)) {
    check(SCHEMA_KEYS.has(k), `Invalid JSON payload received. Unknown name "${k}" at '${where}': Cannot find field.`);
    if (k === 'properties') for (const [name, sub] of Object.entries(v as Obj)) checkSchema(sub, `${where}.properties[${name}]`);
    if (k === 'items') checkSchema(v, `${where}.items`);
    if (k === 'type') check(typeof v === 'string', `${where}.type must be one type`);
  }
}

export class FakeGemini {
  readonly requests: GeminiRecordedRequest[] = [];
  /** Vertex AI mode: tokens issued at /token, with their expiry (ms). */
  readonly tokens = new Map<string, number>();
  readonly behaviour: GeminiBehaviour;
  private server: Server | undefined;
  private portNumber = 0;

  constructor(behaviour: Partial<GeminiBehaviour> = {}) {
    this.behaviour = {
      apiKey: 'fake-gemini-key',
      text: 'Hello from the fake Gemini model.',
      toolArgs: { city: 'Paris' },
      toolCalls: 1,
      thought: 'Thinking it over.',
      status: undefined,
      failNext: undefined,
      writeBytes: 11,
      cachedTokens: 0,
      record: true,
      vertex: undefined,
      tokenLifetimeS: 3600,
      ...behaviour,
    };
  }

  get port(): number {
    return this.portNumber;
  }

  /** Base URL as a ModelProvider endpoint names it (Vertex: the location base). */
  get url(): string {
    return this.behaviour.vertex ? `http://127.0.0.1:${this.portNumber}/v1/projects/fake-project/locations/us-central1` : `http://127.0.0.1:${this.portNumber}/v1beta`;
  }

  /** Vertex AI mode: the token endpoint for the service-account key's token_uri. */
  get tokenUri(): string {
    return `http://127.0.0.1:${this.portNumber}/token`;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<void> {
    const server = createServer(guardedHandler((req, res) => this.handle(req, res)));
    this.portNumber = await listenFake(server, port, host);
    this.server = server;
  }

  async stop(): Promise<void> {
    await closeFake(this.server);
  }

  received(): GeminiRecordedRequest[] {
    return this.requests.filter((r) => r.path.includes(':generateContent') || r.path.includes(':streamGenerateContent') || r.path.includes(':batchEmbedContents') || r.path.includes(':predict'));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = raw.toString('utf8');
    }
    const path = req.url ?? '/';
    const record: GeminiRecordedRequest = { path, headers: { ...req.headers }, body, status: 0 };
    if (this.behaviour.record) this.requests.push(record);
    try {
      if (this.behaviour.vertex && path === '/token' && req.method === 'POST') return this.issueToken(raw, res);
      const m = this.behaviour.vertex
        ? /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent|predict)(\?alt=sse)?$/.exec(path)
        : /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)(\?alt=sse)?$/.exec(path);
      if (req.method !== 'POST' || !m) throw new Refusal(404, `The requested URL ${path} was not found on this server.`);
      const stream = m[2] === 'streamGenerateContent';
      check(stream === (m[3] !== undefined), 'streamGenerateContent needs alt=sse (and generateContent takes no alt)');
      if (this.behaviour.vertex) {
        const auth = req.headers['authorization'];
        const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
        const expires = token === undefined ? undefined : this.tokens.get(token);
        if (expires === undefined || expires <= Date.now()) throw new Refusal(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
        if (req.headers['x-goog-api-key'] !== undefined) throw new Refusal(400, 'unexpected x-goog-api-key on Vertex AI');
      } else {
        const key = req.headers['x-goog-api-key'];
        if (key === undefined) throw new Refusal(403, 'Method doesn\'t allow unregistered callers. Please use API Key or other form of API consumer identity to call this API.');
        if (key !== this.behaviour.apiKey) throw new Refusal(400, 'API key not valid. Please pass a valid API key.');
        if (req.headers['authorization'] !== undefined) throw new Refusal(401, 'unexpected Authorization header (the gateway leaked a client credential)');
      }
      const b = this.behaviour;
      if (b.status !== undefined && (b.failNext === undefined || b.failNext > 0)) {
        if (b.failNext !== undefined) b.failNext--;
        throw new Refusal(b.status, b.status === 429 ? 'Resource has been exhausted (e.g. check quota).' : `fake Gemini answered ${b.status}`);
      }
      check(isObj(body), 'Invalid JSON payload received.');
      if (m[2] === 'batchEmbedContents') return this.embed(body, decodeURIComponent(m[1] as string), res, record);
      if (m[2] === 'predict') return this.predictEmbeddings(body, decodeURIComponent(m[1] as string), res, record);
      validate(body);
      record.status = 200;
      const answer = this.reply(body, raw.length, decodeURIComponent(m[1] as string));
      if (!stream) {
        const text = JSON.stringify(answer);
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      await this.stream(res, answer);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      record.status = err.status;
      const text = JSON.stringify({ error: { code: err.status, message: err.message, status: STATUS_NAMES[err.status] ?? 'UNKNOWN' } });
      res.writeHead(err.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  }

  /**
   * Vertex AI text embeddings (:predict, https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api):
   * instances [{content, task_type?, title?}] (at most 250; 1 for gemini-embedding models), parameters
   * {autoTruncate?, outputDimensionality?}; one vector per instance with its token count (words here).
   */
  private predictEmbeddings(body: Obj, model: string, res: ServerResponse, record: GeminiRecordedRequest): void {
    for (const k of Object.keys(body)) check(k === 'instances' || k === 'parameters', `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    check(model.includes('embedding'), `Model ${model} does not support predict for embeddings`);
    const instances = body['instances'];
    const max = model.startsWith('gemini-embedding') ? 1 : 250;
    check(Array.isArray(instances) && instances.length > 0 && instances.length <= max, `instances: between 1 and ${max} instances`);
    const parameters = body['parameters'] ?? {};
    check(isObj(parameters) && Object.keys(parameters).every((k) => ['autoTruncate', 'outputDimensionality'].includes(k)), 'Invalid JSON payload received. Unknown name in "parameters": Cannot find field.');
    const dims = parameters['outputDimensionality'];
    check(dims === undefined || (Number.isInteger(dims) && (dims as number) > 0 && (dims as number) <= 768), 'parameters.outputDimensionality must be between 1 and 768');
    const predictions = (instances as unknown[]).map((inst, i) => {
      check(isObj(inst) && typeof inst['content'] === 'string' && inst['content'] !== '', `instances[${i}].content: a non-empty string is required`);
      for (const k of Object.keys(inst)) check(['content', 'task_type', 'title'].includes(k), `Invalid JSON payload received. Unknown name "${k}" at 'instances[${i}]': Cannot find field.`);
      const text = inst['content'] as string;
      const n = typeof dims === 'number' ? dims : 8;
      const values = Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 97) / 97).toFixed(6)));
      return { embeddings: { statistics: { truncated: false, token_count: text.split(/\s+/).filter(Boolean).length }, values } };
    });
    record.status = 200;
    const out = JSON.stringify({ predictions, metadata: { billableCharacterCount: (instances as Obj[]).reduce((a, x) => a + String(x['content']).length, 0) } });
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  }

  /** batchEmbedContents: one vector per request, derived from its text (deterministic). */
  private embed(body: Obj, model: string, res: ServerResponse, record: GeminiRecordedRequest): void {
    for (const k of Object.keys(body)) check(k === 'requests', `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    const requests = body['requests'];
    check(Array.isArray(requests) && requests.length > 0 && requests.length <= 100, '* BatchEmbedContentsRequest.requests: between 1 and 100 requests');
    const embeddings = (requests as unknown[]).map((r, i) => {
      check(isObj(r) && r['model'] === `models/${model}`, `* BatchEmbedContentsRequest.requests[${i}].model: Model names should start with 'models/' and match the batch's model`);
      for (const k of Object.keys(r)) check(['model', 'content', 'taskType', 'title', 'outputDimensionality'].includes(k), `Invalid JSON payload received. Unknown name "${k}" at 'requests[${i}]': Cannot find field.`);
      const parts = isObj(r['content']) ? r['content']['parts'] : undefined;
      check(Array.isArray(parts) && parts.length > 0 && parts.every((p) => isObj(p) && typeof p['text'] === 'string'), `* BatchEmbedContentsRequest.requests[${i}].content: text parts required`);
      const text = (parts as Obj[]).map((p) => p['text'] as string).join('');
      const n = typeof r['outputDimensionality'] === 'number' ? r['outputDimensionality'] : 8;
      return { values: Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 97) / 97).toFixed(6))) };
    });
    record.status = 200;
    const out = JSON.stringify({ embeddings });
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  }

  /**
   * Vertex AI mode: a new access token this fake accepts for `lifetimeS`. Its own /token endpoint
   * issues them, and so does a fake metadata server (fake-gce-metadata.ts) standing for the same
   * Google identity platform.
   */
  mintToken(lifetimeS: number): string {
    const token = `ya29.fake-${this.tokens.size + 1}-${Date.now()}`;
    this.tokens.set(token, Date.now() + lifetimeS * 1000);
    return token;
  }

  /** OAuth2 JWT-bearer grant: verifies the service account's signed assertion, issues a token. */
  private issueToken(raw: Buffer, res: ServerResponse): void {
    const vertex = this.behaviour.vertex as { clientEmail: string; publicKeyPem: string };
    const form = new URLSearchParams(raw.toString('utf8'));
    const deny = (description: string): void => {
      const text = JSON.stringify({ error: 'invalid_grant', error_description: description });
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return deny('unsupported grant_type');
    const [head, payload, signature] = (form.get('assertion') ?? '').split('.');
    if (!head || !payload || !signature) return deny('malformed assertion');
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${head}.${payload}`);
    if (!verifier.verify(vertex.publicKeyPem, Buffer.from(signature, 'base64url'))) return deny('Invalid JWT Signature.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Obj;
    const now = Date.now() / 1000;
    if (claims['iss'] !== vertex.clientEmail) return deny('Invalid issuer');
    if (claims['aud'] !== 'https://oauth2.googleapis.com/token') return deny('Invalid audience');
    if (!String(claims['scope'] ?? '').includes('https://www.googleapis.com/auth/cloud-platform')) return deny('missing cloud-platform scope');
    if (typeof claims['exp'] !== 'number' || claims['exp'] < now) return deny('Invalid JWT: Token must be a short-lived token and in a reasonable timeframe');
    const token = this.mintToken(this.behaviour.tokenLifetimeS);
    const text = JSON.stringify({ access_token: token, expires_in: this.behaviour.tokenLifetimeS, token_type: 'Bearer' });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private reply(body: Obj, bytes: number, model: string): Obj {
    const b = this.behaviour;
    const contents = body['contents'] as Obj[];
    const lastParts = (contents[contents.length - 1] as Obj)['parts'] as Obj[];
    const responses = lastParts.filter((p) => isObj(p['functionResponse'])).map((p) => p['functionResponse'] as Obj);
    const tools = Array.isArray(body['tools']) ? (body['tools'] as Obj[]) : [];
    const decls = tools.flatMap((t) => (Array.isArray(t['functionDeclarations']) ? (t['functionDeclarations'] as Obj[]) : []));
    const config = isObj(body['toolConfig']) && isObj(body['toolConfig']['functionCallingConfig']) ? body['toolConfig']['functionCallingConfig'] : { mode: 'AUTO' };
    const gen = isObj(body['generationConfig']) ? body['generationConfig'] : {};
    const parts: Obj[] = [];
    if (isObj(gen['thinkingConfig']) && gen['thinkingConfig']['includeThoughts'] === true) parts.push({ text: b.thought, thought: true });
    let thoughts = parts.length > 0 ? 5 : 0;
    if (decls.length > 0 && config['mode'] !== 'NONE' && (config['mode'] === 'ANY' || responses.length === 0)) {
      const allowed = Array.isArray(config['allowedFunctionNames']) ? (config['allowedFunctionNames'] as string[]) : [];
      const name = allowed[0] ?? String((decls[0] as Obj)['name']);
      for (let i = 0; i < b.toolCalls; i++) parts.push({ functionCall: { name, args: b.toolArgs } });
    } else if (gen['responseMimeType'] === 'application/json') {
      parts.push({ text: JSON.stringify({ answer: b.text }) });
    } else {
      parts.push({ text: responses.length > 0 ? `Tool said: ${responses.map((r) => JSON.stringify(r['response'])).join(' | ')}` : b.text });
    }
    const out = parts.filter((p) => typeof p['text'] === 'string' && p['thought'] !== true).reduce((n, p) => n + ((p['text'] as string).match(/\S+/g) ?? []).length, 0) + 3 * parts.filter((p) => 'functionCall' in p).length;
    thoughts = parts.some((p) => p['thought'] === true) ? thoughts : 0;
    const prompt = Math.max(1, Math.ceil(bytes / 4)) + b.cachedTokens;
    return {
      candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: prompt, candidatesTokenCount: out, totalTokenCount: prompt + out + thoughts, ...(b.cachedTokens ? { cachedContentTokenCount: b.cachedTokens } : {}), ...(thoughts ? { thoughtsTokenCount: thoughts } : {}) },
      modelVersion: model,
      responseId: 'resp-fake-gemini',
    };
  }

  private async stream(res: ServerResponse, answer: Obj): Promise<void> {
    const candidate = (answer['candidates'] as Obj[])[0] as Obj;
    const parts = (candidate['content'] as Obj)['parts'] as Obj[];
    const events: Obj[] = [];
    const base = { modelVersion: answer['modelVersion'], responseId: answer['responseId'] };
    for (const part of parts) {
      if (typeof part['text'] === 'string') {
        for (const piece of (part['text'] as string).match(/\s*\S+/g) ?? []) events.push({ candidates: [{ content: { role: 'model', parts: [{ ...part, text: piece }] }, index: 0 }], ...base });
      } else {
        events.push({ candidates: [{ content: { role: 'model', parts: [part] }, index: 0 }], ...base });
      }
    }
    events.push({ candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'STOP', index: 0 }], usageMetadata: answer['usageMetadata'], ...base });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const all = Buffer.from(events.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(''));
    const size = this.behaviour.writeBytes > 0 ? this.behaviour.writeBytes : all.length;
    for (let i = 0; i < all.length; i += size) {
      if (res.destroyed) return;
      res.write(all.subarray(i, i + size));
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.end();
  }
}

function validate(body: Obj): void {
  for (const k of Object.keys(body)) check(TOP_LEVEL.has(k), `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
  const contents = body['contents'];
  check(Array.isArray(contents) && contents.length > 0, '* GenerateContentRequest.contents: contents is not specified');
  if (body['systemInstruction'] !== undefined) check(isObj(body['systemInstruction']) && Array.isArray(body['systemInstruction']['parts']), 'systemInstruction must be a Content with parts');
  let previousCalls: string[] = [];
  (contents as unknown[]).forEach((c, i) => {
    check(isObj(c) && (c['role'] === 'user' || c['role'] === 'model'), `* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`);
    const parts = c['parts'];
    check(Array.isArray(parts) && parts.length > 0, `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
    const calls: string[] = [];
    const responses: string[] = [];
    (parts as unknown[]).forEach((p, j) => {
      check(isObj(p), `contents[${i}].parts[${j}] must be an object`);
      const data = Object.keys(p).filter((k) => PART_DATA.has(k));
      for (const k of Object.keys(p)) check(PART_DATA.has(k) || PART_META.has(k), `Invalid JSON payload received. Unknown name "${k}" at 'contents[${i}].parts[${j}]': Cannot find field.`);
      check(data.length === 1, `* GenerateContentRequest.contents[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field`);
      if (isObj(p['inlineData'])) check(typeof p['inlineData']['mimeType'] === 'string' && typeof p['inlineData']['data'] === 'string', `contents[${i}].parts[${j}].inlineData needs mimeType and data`);
      if (isObj(p['functionCall'])) {
        check(c['role'] === 'model', `contents[${i}].parts[${j}]: functionCall parts belong to model turns`);
        calls.push(String(p['functionCall']['name']));
      }
      if (isObj(p['functionResponse'])) {
        check(c['role'] === 'user', `contents[${i}].parts[${j}]: functionResponse parts belong to user turns`);
        const name = String(p['functionResponse']['name']);
        check(previousCalls.includes(name), `* GenerateContentRequest.contents[${i}].parts[${j}].function_response.name: ${name} does not match a function call of the previous turn.`);
        check(isObj(p['functionResponse']['response']), `contents[${i}].parts[${j}].functionResponse.response must be an object`);
        responses.push(name);
      }
    });
    const missing = previousCalls.filter((n) => !responses.includes(n));
    check(missing.length === 0, `Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn (missing: ${missing.join(', ')}).`);
    previousCalls = calls;
  });
  if (body['tools'] !== undefined) {
    check(Array.isArray(body['tools']), 'tools must be a list');
    for (const [i, t] of (body['tools'] as unknown[]).entries()) {
      check(isObj(t) && Array.isArray(t['functionDeclarations']), `tools[${i}] needs functionDeclarations`);
      for (const [j, d] of (t['functionDeclarations'] as unknown[]).entries()) {
        check(isObj(d) && typeof d['name'] === 'string' && /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(d['name']), `* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name.`);
        if (d['parameters'] !== undefined) checkSchema(d['parameters'], `tools[${i}].function_declarations[${j}].parameters`);
      }
    }
  }
  if (body['toolConfig'] !== undefined) {
    const c = body['toolConfig'];
    check(isObj(c) && isObj(c['functionCallingConfig']) && ['AUTO', 'ANY', 'NONE', 'VALIDATED'].includes(String(c['functionCallingConfig']['mode'])), 'toolConfig.functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED');
  }
  if (body['generationConfig'] !== undefined) {
    const g = body['generationConfig'];
    check(isObj(g), 'generationConfig must be an object');
    for (const k of Object.keys(g)) check(GEN_KEYS.has(k), `Invalid JSON payload received. Unknown name "${k}" at 'generation_config': Cannot find field.`);
    if (g['temperature'] !== undefined) check(typeof g['temperature'] === 'number' && g['temperature'] >= 0 && g['temperature'] <= 2, 'generation_config.temperature must be in [0, 2]');
    if (g['stopSequences'] !== undefined) check(Array.isArray(g['stopSequences']) && g['stopSequences'].length <= 5, 'generation_config.stop_sequences: at most 5');
    if (g['candidateCount'] !== undefined) check(g['candidateCount'] === 1, 'Only one candidate can be specified');
    if (g['responseSchema'] !== undefined) checkSchema(g['responseSchema'], 'generation_config.response_schema');
  }
}
