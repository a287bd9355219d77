/**
 * A fake AWS Bedrock runtime (Converse and ConverseStream) for tests, built from AWS's published API
 * reference (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
 * API_runtime_ConverseStream.html, CommonErrors.html). It VERIFIES what it receives like the real
 * service: it recomputes the SigV4 signature with @smithy/signature-v4 from the request it got
 * (403 InvalidSignatureException / UnrecognizedClientException otherwise, clock skew over 5 minutes
 * refused) and validates the Converse body (ValidationException 400: unknown fields, roles, content
 * block unions, image formats, toolUse/toolResult pairing, toolConfig with tool input schemas compiled
 * as JSON Schema (toolSpec.strict and outputConfig.textFormat: Claude 4.5 and later, the structured
 * outputs schema subset), inferenceConfig ranges, reasoningContent blocks sent back with a signature that
 * matches their text, and with thinking on, the assistant turn a tool result answers starting with
 * its reasoning block, as Claude requires). A tool call's input matches the tool's schema.
 * ConverseStream answers in AWS event-stream binary frames (@smithy/eventstream-codec), written in
 * small pieces so frames split across network chunks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { SignatureV4 } from '@smithy/signature-v4';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { FakeAnthropic, validateMessages } from './fake-anthropic.js';
import { closeFake, guardedHandler, listenFake } from './fake-listen.js';
import { compileSchema, inputFor, strictSchemaProblem, thinkingSignature } from './fake-schema.js';
import type { ValidateFunction } from 'ajv';

export interface BedrockBehaviour {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
  region: string;
  text: string;
  toolInput: Readonly<Record<string, unknown>>;
  toolCalls: number;
  /** Answer with this status and the matching AWS error (429 ThrottlingException ...). */
  status: number | undefined;
  failNext: number | undefined;
  /** Stream: bytes per network write (0 = the whole stream in one write, unless `writePerEvent`). */
  writeBytes: number;
  /** Stream: one network write per event frame, as the service sends them (the bench); overrides `writeBytes`. */
  writePerEvent: boolean;
  /** Stream: pause between writes (ms; 0 = the next turn of the event loop). */
  writeIntervalMs: number;
  /** When set, the plain answer is this many text deltas (bench), cycling through a word list. */
  textChunks: number | undefined;
  cacheReadTokens: number;
  /** Reasoning text a Claude model answers with when extended thinking is enabled. */
  reasoning: string;
  record: boolean;
  /** InvokeModelWithResponseStream: after this many chunk events, send this exception frame and end (throttlingException ...). */
  streamException: { readonly name: string; readonly afterEvents: number } | undefined;
  /**
   * CountTokens refuses these foundation model ids as the service does for models it cannot count
   * for (400 ValidationException "The provided model doesn't support counting tokens.").
   */
  countTokensUnsupported: readonly string[];
  /** With `status`: the exception named instead of the status's usual one (ModelNotReadyException with 429 ...). */
  errorType: string | undefined;
}

export interface BedrockRecordedRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  status: number;
}

const ERRORS: Readonly<Record<number, string>> = {
  400: 'ValidationException',
  403: 'AccessDeniedException',
  404: 'ResourceNotFoundException',
  408: 'ModelTimeoutException',
  429: 'ThrottlingException',
  500: 'InternalServerException',
  503: 'ServiceUnavailableException',
};
const TOP_LEVEL: ReadonlySet<string> = new Set(['messages', 'system', 'inferenceConfig', 'toolConfig', 'guardrailConfig', 'additionalModelRequestFields', 'promptVariables', 'additionalModelResponseFieldPaths', 'requestMetadata', 'performanceConfig', 'outputConfig']);
/** Claude models with structured outputs (outputConfig.textFormat): 4.5 and later. */
const STRUCTURED_OUTPUT_MODELS = /anthropic\.claude-(?:sonnet|opus|haiku)-(?:4-[5-9]|[5-9])/;
const TOOL_SPEC_KEYS: ReadonlySet<string> = new Set(['name', 'description', 'inputSchema', 'strict']);
const BLOCK_KEYS: ReadonlySet<string> = new Set(['text', 'image', 'document', 'video', 'toolUse', 'toolResult', 'guardContent', 'reasoningContent', 'cachePoint']);
const INFERENCE_KEYS: ReadonlySet<string> = new Set(['maxTokens', 'temperature', 'topP', 'stopSequences']);
const codec = new EventStreamCodec(toUtf8, fromUtf8);
/** The words of a `textChunks` answer: each is one `\s*\S+` piece, so one text delta. */
const BENCH_WORDS = [' Hello', ' from', ' the', ' Tollgate', ' fake', ' Bedrock', ' model.'];
const MAX_SKEW_MS = 5 * 60_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Refusal(400, 'ValidationException', message);
}

/** Claude model ids: foundation models, inference profiles (`us.`, `global.` ...) and ARNs naming them. */
const CLAUDE_ID = /(?:^|[/.])anthropic\.claude/;
const BETA = /^[a-z0-9-]+$/;

/**
 * An InvokeModel body for Claude -> the Messages request it stands for (ValidationException otherwise):
 * `anthropic_version` must be bedrock-2023-05-31, `model` and `stream` are not permitted (the model is
 * in the path, the operation says whether it streams), `anthropic_beta` is a list of beta names.
 */
/** Anthropic's name of a Bedrock Claude id (`us.anthropic.claude-sonnet-4-5-20250929-v1:0` -> `claude-sonnet-4-5-20250929-v1:0`). */
function claudeName(model: string): string {
  return model.replace(/^.*anthropic\./, '');
}

function claudeRequest(body: Obj, model: string): Obj {
  check(body['anthropic_version'] === 'bedrock-2023-05-31', 'Malformed input request: #: required key [anthropic_version] not found (it must be bedrock-2023-05-31)');
  for (const k of ['model', 'stream']) check(!(k in body), `Malformed input request: #: extraneous key [${k}] is not permitted, please reformat your input and try again.`);
  const betas = body['anthropic_beta'];
  check(betas === undefined || (Array.isArray(betas) && betas.every((b) => typeof b === 'string' && BETA.test(b))), 'Malformed input request: #/anthropic_beta: expected a list of beta names');
  const { anthropic_version: _version, anthropic_beta: _betas, ...rest } = body;
  const request = { ...rest, model: claudeName(model) };
  try {
    validateMessages(request);
  } catch (err) {
    throw new Refusal(400, 'ValidationException', err instanceof Error ? err.message : String(err));
  }
  return rest;
}

export class FakeBedrock {
  readonly requests: BedrockRecordedRequest[] = [];
  readonly behaviour: BedrockBehaviour;
  /** Claude's Messages API (InvokeModel): validated and answered as the Anthropic fake does. */
  private readonly claude = new FakeAnthropic({ writeBytes: 0 });
  private invocations = 0;
  private server: Server | undefined;
  private portNumber = 0;

  constructor(behaviour: Partial<BedrockBehaviour> = {}) {
    this.behaviour = {
      accessKeyId: 'AKIDFAKEBEDROCK',
      secretAccessKey: 'fake-secret-access-key',
      sessionToken: undefined,
      region: 'us-east-1',
      text: 'Hello from the fake Bedrock model.',
      toolInput: { city: 'Paris', unit: 'celsius' },
      toolCalls: 1,
      status: undefined,
      failNext: undefined,
      writeBytes: 9,
      writePerEvent: false,
      writeIntervalMs: 0,
      textChunks: undefined,
      cacheReadTokens: 0,
      reasoning: 'Let me think about the weather first.',
      record: true,
      streamException: undefined,
      countTokensUnsupported: [],
      errorType: undefined,
      ...behaviour,
    };
  }

  get port(): number {
    return this.portNumber;
  }

  /** The endpoint a ModelProvider names (no path: Converse paths start at /model). */
  get url(): string {
    return `http://127.0.0.1:${this.portNumber}`;
  }

  /** The credential Secret value for this fake. */
  credentialJson(): string {
    const b = this.behaviour;
    return JSON.stringify({ accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, ...(b.sessionToken ? { sessionToken: b.sessionToken } : {}) });
  }

  async start(port = 0, host = '127.0.0.1'): Promise<void> {
    const server = createServer(guardedHandler((req, res) => this.handle(req, res)));
    this.portNumber = await listenFake(server, port, host);
    this.server = server;
  }

  async stop(): Promise<void> {
    await closeFake(this.server);
  }

  received(): BedrockRecordedRequest[] {
    return this.requests.filter((r) => /\/(converse(-stream)?|invoke(-with-response-stream)?|count-tokens)$/.test(r.path));
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
    const record: BedrockRecordedRequest = { path, headers: { ...req.headers }, body, status: 0 };
    if (this.behaviour.record) this.requests.push(record);
    const refuse = (status: number, type: string, message: string): void => {
      record.status = status;
      const text = JSON.stringify({ message });
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const match = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$/.exec(path);
      if (req.method !== 'POST' || !match) throw new Refusal(404, 'UnknownOperationException', `no operation at ${req.method} ${path}`);
      await this.verifySignature(req, path, raw);
      const b = this.behaviour;
      if (b.status !== undefined && (b.failNext === undefined || b.failNext > 0)) {
        if (b.failNext !== undefined) b.failNext--;
        throw new Refusal(b.status, b.errorType ?? ERRORS[b.status] ?? 'InternalServerException', b.status === 429 ? 'Too many requests, please wait before trying again.' : `fake Bedrock answered ${b.status}`);
      }
      check(isObj(body), 'Malformed input request: request body must be a JSON object');
      const modelId = decodeURIComponent(match[1] as string);
      if (match[2] === 'count-tokens') return this.countTokens(modelId, body, res, record);
      if (match[2] === 'invoke-with-response-stream' || (match[2] === 'invoke' && CLAUDE_ID.test(modelId))) return await this.invokeClaude(modelId, match[2] !== 'invoke', req, body, raw.length, res, record);
      if (match[2] === 'invoke') return this.invoke(decodeURIComponent(match[1] as string), body, res, record);
      validate(body, decodeURIComponent(match[1] as string));
      validateThinking(body, decodeURIComponent(match[1] as string));
      validateOutputConfig(body, decodeURIComponent(match[1] as string));
      record.status = 200;
      const message = this.reply(body, raw.length);
      if (match[2] === 'converse-stream') return await this.stream(res, message);
      const text = JSON.stringify(message);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } catch (err) {
      if (err instanceof Refusal) return refuse(err.status, err.type, err.message);
      throw err;
    }
  }

  /** Recomputes the SigV4 signature of what arrived (headers named in SignedHeaders, path, body). */
  private async verifySignature(req: IncomingMessage, path: string, raw: Buffer): Promise<void> {
    const b = this.behaviour;
    const auth = req.headers['authorization'];
    if (typeof auth !== 'string') throw new Refusal(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new Refusal(403, 'IncompleteSignatureException', 'Authorization header requires Credential, SignedHeaders and Signature');
    const [, keyId, , region, service, signedHeaders] = m as unknown as [string, string, string, string, string, string];
    if (keyId !== b.accessKeyId) throw new Refusal(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (service !== 'bedrock' || region !== b.region) throw new Refusal(403, 'InvalidSignatureException', `Credential should be scoped to a valid region (${b.region}) and service (bedrock).`);
    const amzDate = req.headers['x-amz-date'];
    if (typeof amzDate !== 'string') throw new Refusal(403, 'IncompleteSignatureException', 'x-amz-date is required');
    const at = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_SKEW_MS) throw new Refusal(403, 'InvalidSignatureException', 'Signature expired: the request time is too far from the server time.');
    if (b.sessionToken !== undefined && req.headers['x-amz-security-token'] !== b.sessionToken) throw new Refusal(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    const names = signedHeaders.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) throw new Refusal(403, 'InvalidSignatureException', 'host and x-amz-date must be signed');
    const headers: Record<string, string> = {};
    for (const name of names) {
      const v = req.headers[name];
      if (typeof v !== 'string') throw new Refusal(403, 'InvalidSignatureException', `signed header ${name} is missing`);
      headers[name] = v;
    }
    const signer = new SignatureV4({
      credentials: { accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, ...(b.sessionToken ? { sessionToken: b.sessionToken } : {}) },
      region: b.region,
      service: 'bedrock',
      sha256: Sha256,
    });
    const [hostname = '', port] = (headers['host'] ?? '').split(':');
    const expected = await signer.sign(
      { method: 'POST', protocol: 'http:', hostname, ...(port ? { port: Number(port) } : {}), path, query: {}, headers, body: raw },
      { signingDate: new Date(at) },
    );
    if (expected.headers['authorization'] !== auth) {
      throw new Refusal(403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
    }
  }

  /**
   * Claude's own Messages API through InvokeModel / InvokeModelWithResponseStream
   * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html):
   * the Messages body without `model` and `stream`, `anthropic_version: bedrock-2023-05-31`, betas in
   * `anthropic_beta`; validated and answered like Anthropic's API (prompt caching included). The
   * stream is event-stream `chunk` frames, each `{"bytes": base64(one Anthropic event)}`, written in
   * small pieces so frames split across network chunks; message_stop carries the invocation metrics.
   */
  private async invokeClaude(model: string, stream: boolean, req: IncomingMessage, body: Obj, bytes: number, res: ServerResponse, record: BedrockRecordedRequest): Promise<void> {
    check(CLAUDE_ID.test(model), `The provided model identifier is invalid for the Messages API: ${model}`);
    const request = claudeRequest(body, model);
    if (stream) {
      check(req.headers['accept'] === 'application/vnd.amazon.eventstream', 'InvokeModelWithResponseStream answers application/vnd.amazon.eventstream (Accept)');
      const inner = req.headers['x-amzn-bedrock-accept'];
      check(inner === undefined || inner === 'application/json' || inner === '*/*', `X-Amzn-Bedrock-Accept ${String(inner)} is not supported`);
    }
    const b = this.behaviour;
    Object.assign(this.claude.behaviour, { text: b.text, thinking: b.reasoning, toolInput: b.toolInput, toolCalls: b.toolCalls, cacheReadTokens: b.cacheReadTokens, textChunks: b.textChunks });
    const message: Obj = { ...this.claude.message({ ...request, model: claudeName(model) }, bytes), id: `msg_bdrk_${String(++this.invocations).padStart(8, '0')}` };
    const usage = message['usage'] as Obj;
    record.status = 200;
    const counts = { 'x-amzn-bedrock-input-token-count': String(usage['input_tokens']), 'x-amzn-bedrock-output-token-count': String(usage['output_tokens']) };
    if (!stream) {
      const text = JSON.stringify(message);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...counts });
      res.end(text);
      return;
    }
    const frames: Uint8Array[] = [];
    const events = this.claude.events(message);
    const cut = b.streamException;
    for (const [i, event] of events.entries()) {
      if (cut && i === cut.afterEvents) {
        frames.push(codec.encode({
          headers: { ':exception-type': { type: 'string', value: cut.name }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'exception' } },
          body: fromUtf8(JSON.stringify({ message: cut.name === 'throttlingException' ? 'Too many tokens, please wait before trying again.' : `fake Bedrock stream ${cut.name}` })),
        }));
        break;
      }
      const payload = event['type'] === 'message_stop' ? { ...event, 'amazon-bedrock-invocationMetrics': { inputTokenCount: usage['input_tokens'], outputTokenCount: usage['output_tokens'], invocationLatency: 1, firstByteLatency: 1 } } : event;
      frames.push(codec.encode({
        headers: { ':event-type': { type: 'string', value: 'chunk' }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'event' } },
        body: fromUtf8(JSON.stringify({ bytes: Buffer.from(JSON.stringify(payload)).toString('base64'), p: 'abcdefghij' })),
      }));
    }
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-bedrock-content-type': 'application/json' });
    await this.writeFrames(res, frames);
  }

  /**
   * CountTokens (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html):
   * foundation model ids only (an inference profile is refused), `{"input":{"invokeModel":{"body": base64}}}`
   * whose body is an InvokeModel body (max_tokens included) -> `{"inputTokens": N}`.
   */
  private countTokens(model: string, body: Obj, res: ServerResponse, record: BedrockRecordedRequest): void {
    check(/^anthropic\.claude/.test(model) && !this.behaviour.countTokensUnsupported.includes(model), "The provided model doesn't support counting tokens.");
    const input = body['input'];
    check(isObj(body) && Object.keys(body).length === 1 && isObj(input) && isObj(input['invokeModel']) && typeof input['invokeModel']['body'] === 'string', 'Malformed input request: input.invokeModel.body (base64) is required');
    const decoded = Buffer.from(input['invokeModel']['body'] as string, 'base64');
    let inner: unknown;
    try {
      inner = JSON.parse(decoded.toString('utf8'));
    } catch {
      throw new Refusal(400, 'ValidationException', 'Unable to parse request body');
    }
    check(isObj(inner), 'Malformed input request: the InvokeModel body must be a JSON object');
    claudeRequest(inner, model);
    record.status = 200;
    const text = JSON.stringify({ inputTokens: Math.max(1, Math.ceil(decoded.length / 4)) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** InvokeModel for Titan and Cohere embedding models (their own body shapes). */
  private invoke(model: string, body: Obj, res: ServerResponse, record: BedrockRecordedRequest): void {
    const vector = (text: string, n: number): number[] => Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 89) / 89).toFixed(6)));
    let out: Obj;
    if (model.startsWith('amazon.titan-embed')) {
      for (const k of Object.keys(body)) check(['inputText', 'dimensions', 'normalize', 'embeddingTypes'].includes(k), `Malformed input request: extraneous key [${k}] is not permitted`);
      check(typeof body['inputText'] === 'string' && body['inputText'] !== '', 'Malformed input request: #/inputText: expected a non-empty string');
      const n = body['dimensions'] === undefined ? 8 : (body['dimensions'] as number);
      check([8, 256, 512, 1024, 4].includes(n), 'Malformed input request: #/dimensions: 256, 512 or 1024');
      const text = body['inputText'] as string;
      out = { embedding: vector(text, n), inputTextTokenCount: (text.match(/\S+/g) ?? []).length };
    } else if (model.startsWith('cohere.embed')) {
      for (const k of Object.keys(body)) check(['texts', 'input_type', 'truncate', 'embedding_types', 'images'].includes(k), `Malformed input request: extraneous key [${k}] is not permitted`);
      check(Array.isArray(body['texts']) && body['texts'].length > 0 && body['texts'].length <= 96, 'Malformed input request: #/texts: 1 to 96 texts');
      check(['search_document', 'search_query', 'classification', 'clustering'].includes(String(body['input_type'])), 'Malformed input request: #/input_type is required');
      out = { id: 'fake', texts: body['texts'], embeddings: (body['texts'] as string[]).map((t) => vector(t, 8)), response_type: 'embeddings_floats' };
    } else {
      throw new Refusal(400, 'ValidationException', `The provided model identifier is invalid for InvokeModel embeddings: ${model}`);
    }
    record.status = 200;
    const text = JSON.stringify(out);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private reply(body: Obj, bytes: number): Obj {
    const b = this.behaviour;
    const messages = body['messages'] as Obj[];
    const last = (messages[messages.length - 1] as Obj)['content'] as Obj[];
    const results = last.filter((x) => isObj(x['toolResult'])).map((x) => x['toolResult'] as Obj);
    const config = isObj(body['toolConfig']) ? body['toolConfig'] : undefined;
    const tools = (config?.['tools'] as Obj[] | undefined) ?? [];
    const choice = isObj(config?.['toolChoice']) ? (config['toolChoice'] as Obj) : { auto: {} };
    const content: Obj[] = [];
    let stopReason = 'end_turn';
    let output = 0;
    if (tools.length > 0 && ('any' in choice || 'tool' in choice || results.length === 0)) {
      const name = isObj(choice['tool']) ? String(choice['tool']['name']) : String(((tools[0] as Obj)['toolSpec'] as Obj)['name']);
      const spec = tools.map((t) => t['toolSpec'] as Obj).find((t) => t['name'] === name) as Obj;
      const schema = (spec['inputSchema'] as Obj)['json'];
      const input = inputFor(compileSchema(schema) as ValidateFunction, schema, b.toolInput);
      for (let i = 0; i < b.toolCalls; i++) content.push({ toolUse: { toolUseId: `tooluse_fake_${i}`, name, input } });
      stopReason = 'tool_use';
      output = 10 * b.toolCalls;
    } else {
      const plain = b.textChunks === undefined ? b.text : Array.from({ length: b.textChunks }, (_, i) => BENCH_WORDS[i % BENCH_WORDS.length] as string).join('');
      let text = results.length > 0 ? `Tool said: ${results.map((r) => ((r['content'] as Obj[])[0] as Obj)['text']).join(' | ')}` : plain;
      const inference = isObj(body['inferenceConfig']) ? body['inferenceConfig'] : {};
      for (const s of (inference['stopSequences'] as string[] | undefined) ?? []) {
        const i = text.indexOf(s);
        if (i >= 0) {
          text = text.slice(0, i);
          stopReason = 'stop_sequence';
        }
      }
      const format = outputSchema(body);
      if (format !== undefined && results.length === 0) text = JSON.stringify(inputFor(compileSchema(format) as ValidateFunction, format, b.toolInput));
      content.push({ text });
      output = (text.match(/\S+/g) ?? []).length;
    }
    const thinking = isObj(body['additionalModelRequestFields']) ? body['additionalModelRequestFields']['thinking'] : undefined;
    if (isObj(thinking)) {
      content.unshift({ reasoningContent: { reasoningText: { text: b.reasoning, signature: thinkingSignature(b.reasoning) } } });
      output += (b.reasoning.match(/\S+/g) ?? []).length;
    }
    const input = Math.max(1, Math.ceil(bytes / 4));
    return {
      output: { message: { role: 'assistant', content } },
      stopReason,
      usage: { inputTokens: input, outputTokens: output, totalTokens: input + output + b.cacheReadTokens, cacheReadInputTokens: b.cacheReadTokens, cacheWriteInputTokens: 0 },
      metrics: { latencyMs: 1 },
    };
  }

  private async stream(res: ServerResponse, message: Obj): Promise<void> {
    const frames: Uint8Array[] = [];
    const event = (type: string, payload: Obj): void => {
      frames.push(
        codec.encode({
          headers: {
            ':event-type': { type: 'string', value: type },
            ':content-type': { type: 'string', value: 'application/json' },
            ':message-type': { type: 'string', value: 'event' },
          },
          body: fromUtf8(JSON.stringify({ ...payload, p: 'abcdefgh' })),
        }),
      );
    };
    event('messageStart', { role: 'assistant' });
    const content = ((message['output'] as Obj)['message'] as Obj)['content'] as Obj[];
    content.forEach((block, i) => {
      const reasoning = isObj(block['reasoningContent']) ? block['reasoningContent']['reasoningText'] : undefined;
      if (isObj(reasoning)) {
        for (const piece of String(reasoning['text']).match(/\s*\S+/g) ?? []) event('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: piece } } });
        event('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { signature: reasoning['signature'] } } });
      } else if (typeof block['text'] === 'string') {
        for (const piece of (block['text'] as string).match(/\s*\S+/g) ?? []) event('contentBlockDelta', { contentBlockIndex: i, delta: { text: piece } });
      } else if (isObj(block['toolUse'])) {
        const t = block['toolUse'];
        event('contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId: t['toolUseId'], name: t['name'] } } });
        const json = JSON.stringify(t['input']);
        const half = Math.ceil(json.length / 2);
        for (const input of [json.slice(0, half), json.slice(half)]) event('contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input } } });
      }
      event('contentBlockStop', { contentBlockIndex: i });
    });
    event('messageStop', { stopReason: message['stopReason'] });
    event('metadata', { usage: message['usage'], metrics: { latencyMs: 1 } });
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    await this.writeFrames(res, frames);
  }

  /**
   * Writes encoded frames as the behaviour says: one write per frame, or the whole stream cut into
   * `writeBytes` pieces (frames split anywhere), `writeIntervalMs` apart; then ends the answer.
   */
  private async writeFrames(res: ServerResponse, frames: readonly Uint8Array[]): Promise<void> {
    const b = this.behaviour;
    const all = Buffer.concat(frames);
    const size = b.writeBytes > 0 ? b.writeBytes : all.length;
    const writes = b.writePerEvent ? frames : Array.from({ length: Math.ceil(all.length / size) }, (_, i) => all.subarray(i * size, (i + 1) * size));
    for (const piece of writes) {
      if (res.destroyed) return;
      res.write(piece);
      await new Promise((resolve) => (b.writeIntervalMs > 0 ? setTimeout(resolve, b.writeIntervalMs) : setImmediate(resolve)));
    }
    res.end();
  }
}

/**
 * Claude extended thinking through additionalModelRequestFields
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html):
 * Claude 3.7+ only, {type: enabled, budget_tokens >= 1024} below maxTokens, no temperature other
 * than 1, top_p in [0.95, 1], no forced tool use.
 */
function validateThinking(body: Obj, model: string): void {
  const extra = body['additionalModelRequestFields'];
  if (extra === undefined) return;
  check(isObj(extra) && Object.keys(extra).every((k) => k === 'thinking'), 'Malformed input request: additionalModelRequestFields: extraneous key, please reformat your input and try again.');
  const t = extra['thinking'];
  if (t === undefined) return;
  check(/anthropic\.claude-(?!instant|v2|3-(?:haiku|sonnet|opus)|3-5-)/.test(model), `The model ${model} does not support thinking.`);
  check(isObj(t) && t['type'] === 'enabled' && Object.keys(t).every((k) => k === 'type' || k === 'budget_tokens'), 'thinking: type must be enabled, with budget_tokens');
  const budget = t['budget_tokens'];
  check(Number.isInteger(budget) && (budget as number) >= 1024, 'thinking.budget_tokens: Input should be greater than or equal to 1024');
  const inference = isObj(body['inferenceConfig']) ? body['inferenceConfig'] : {};
  check(typeof inference['maxTokens'] === 'number' && inference['maxTokens'] > (budget as number), '`max_tokens` must be greater than `thinking.budget_tokens`.');
  check(inference['temperature'] === undefined || inference['temperature'] === 1, '`temperature` may only be set to 1 when thinking is enabled.');
  check(inference['topP'] === undefined || (inference['topP'] as number) >= 0.95, '`top_p` must be greater than or equal to 0.95 when thinking is enabled.');
  const choice = isObj(body['toolConfig']) ? body['toolConfig']['toolChoice'] : undefined;
  check(!isObj(choice) || !('any' in choice || 'tool' in choice), 'Thinking may not be enabled when tool_choice forces tool use.');
  // The assistant turn the last message's tool results answer must start with its reasoning block.
  const messages = body['messages'] as Obj[];
  const last = messages[messages.length - 1];
  const previous = messages[messages.length - 2];
  if (!last || !previous || previous['role'] !== 'assistant') return;
  if (!(last['content'] as Obj[]).some((b) => isObj(b) && 'toolResult' in b)) return;
  const first = (previous['content'] as Obj[])[0];
  const found = isObj(first) ? (Object.keys(first)[0] ?? 'nothing') : 'nothing';
  check(
    found === 'reasoningContent',
    `messages.${messages.length - 2}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${found === 'toolUse' ? 'tool_use' : found}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`.`,
  );
}

/** The parsed schema of outputConfig.textFormat (validated), if any. */
function outputSchema(body: Obj): unknown {
  const c = body['outputConfig'];
  if (!isObj(c) || !isObj(c['textFormat'])) return undefined;
  const json = ((c['textFormat']['structure'] as Obj)['jsonSchema'] as Obj)['schema'] as string;
  return JSON.parse(json) as unknown;
}

/**
 * Structured outputs (https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html):
 * outputConfig.textFormat {type: json_schema, structure: {jsonSchema: {schema: <JSON text>, name?,
 * description?}}}, Claude 4.5 and later here, every object closed by additionalProperties: false.
 */
function validateOutputConfig(body: Obj, model: string): void {
  const c = body['outputConfig'];
  if (c === undefined) return;
  check(isObj(c) && Object.keys(c).every((k) => k === 'textFormat'), 'Malformed input request: outputConfig: extraneous key');
  const f = c['textFormat'];
  if (f === undefined) return;
  check(STRUCTURED_OUTPUT_MODELS.test(model), `This model doesn't support the outputConfig.textFormat field. Remove outputConfig.textFormat and try again.`);
  check(isObj(f) && f['type'] === 'json_schema' && isObj(f['structure']) && isObj(f['structure']['jsonSchema']), 'Malformed input request: outputConfig.textFormat needs type json_schema and structure.jsonSchema');
  const def = f['structure']['jsonSchema'] as Obj;
  check(Object.keys(def).every((k) => ['schema', 'name', 'description'].includes(k)) && typeof def['schema'] === 'string', 'Malformed input request: structure.jsonSchema.schema must be a string');
  let schema: unknown;
  try {
    schema = JSON.parse(def['schema'] as string);
  } catch {
    throw new Refusal(400, 'ValidationException', 'outputConfig.textFormat.structure.jsonSchema.schema is not valid JSON');
  }
  check(typeof compileSchema(schema) !== 'string', 'outputConfig.textFormat.structure.jsonSchema.schema is not a valid JSON Schema');
  const problem = strictSchemaProblem(schema, 'schema');
  check(problem === undefined, String(problem));
}

function validate(body: Obj, model: string): void {
  for (const k of Object.keys(body)) check(TOP_LEVEL.has(k), `Malformed input request: extraneous key [${k}] is not permitted, please reformat your input and try again.`);
  const messages = body['messages'];
  check(Array.isArray(messages) && messages.length > 0, 'Malformed input request: messages is required and must not be empty');
  if (body['system'] !== undefined) check(Array.isArray(body['system']) && body['system'].every((s) => isObj(s) && typeof s['text'] === 'string'), 'Malformed input request: system must be a list of text blocks');
  let previousUses: string[] = [];
  (messages as unknown[]).forEach((m, i) => {
    check(isObj(m) && (m['role'] === 'user' || m['role'] === 'assistant'), `Malformed input request: messages.${i}.role must be user or assistant`);
    for (const k of Object.keys(m)) check(k === 'role' || k === 'content', `Malformed input request: extraneous key [${k}] in messages.${i}`);
    const content = m['content'];
    check(Array.isArray(content) && content.length > 0, `Malformed input request: messages.${i}.content must be a non-empty list of content blocks`);
    const uses: string[] = [];
    const results: string[] = [];
    (content as unknown[]).forEach((block, j) => {
      check(isObj(block) && Object.keys(block).length === 1 && BLOCK_KEYS.has(Object.keys(block)[0] as string), `Malformed input request: messages.${i}.content.${j} must set exactly one of ${[...BLOCK_KEYS].join(', ')}`);
      const b = block as Obj;
      if ('text' in b) check(typeof b['text'] === 'string' && b['text'] !== '', `The text field in the ContentBlock object at messages.${i}.content.${j} is blank.`);
      if ('image' in b) {
        const img = b['image'];
        check(m['role'] === 'user' && isObj(img) && ['png', 'jpeg', 'gif', 'webp'].includes(String(img['format'])) && isObj(img['source']) && typeof img['source']['bytes'] === 'string', `Malformed input request: messages.${i}.content.${j}.image needs format png|jpeg|gif|webp and source.bytes`);
      }
      if ('reasoningContent' in b) {
        const r = b['reasoningContent'];
        check(m['role'] === 'assistant' && isObj(r) && Object.keys(r).length === 1, `Malformed input request: messages.${i}.content.${j}.reasoningContent must set exactly one of reasoningText, redactedContent (assistant turns only)`);
        if (isObj(r['reasoningText'])) {
          const t = r['reasoningText'];
          check(typeof t['text'] === 'string', `Malformed input request: messages.${i}.content.${j}.reasoningContent.reasoningText.text is required`);
          check(typeof t['signature'] === 'string', `messages.${i}.content.${j}.thinking.signature: Field required`);
          check(t['signature'] === thinkingSignature(t['text'] as string), `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`);
        } else {
          check(typeof r['redactedContent'] === 'string' && r['redactedContent'] !== '', `Malformed input request: messages.${i}.content.${j}.reasoningContent needs reasoningText or redactedContent`);
        }
      }
      if ('toolUse' in b) {
        const t = b['toolUse'];
        check(m['role'] === 'assistant' && isObj(t) && typeof t['toolUseId'] === 'string' && typeof t['name'] === 'string' && isObj(t['input']), `Malformed input request: messages.${i}.content.${j}.toolUse needs toolUseId, name and an input object`);
        uses.push(t['toolUseId'] as string);
      }
      if ('toolResult' in b) {
        const t = b['toolResult'];
        check(m['role'] === 'user' && isObj(t) && typeof t['toolUseId'] === 'string' && Array.isArray(t['content']), `Malformed input request: messages.${i}.content.${j}.toolResult needs toolUseId and content`);
        check(previousUses.includes(t['toolUseId'] as string), `The toolUseId ${String(t['toolUseId'])} in messages.${i} does not match a toolUse block in the previous turn.`);
        results.push(t['toolUseId'] as string);
      }
    });
    const missing = previousUses.filter((id) => !results.includes(id));
    check(missing.length === 0, `Expected toolResult blocks at messages.${i}.content for the following Ids: ${missing.join(', ')}`);
    previousUses = uses;
  });
  if (body['inferenceConfig'] !== undefined) {
    const c = body['inferenceConfig'];
    check(isObj(c) && Object.keys(c).every((k) => INFERENCE_KEYS.has(k)), 'Malformed input request: inferenceConfig allows maxTokens, temperature, topP, stopSequences');
    if (c['maxTokens'] !== undefined) check(Number.isInteger(c['maxTokens']) && (c['maxTokens'] as number) >= 1, 'inferenceConfig.maxTokens must be >= 1');
    if (c['temperature'] !== undefined) check(typeof c['temperature'] === 'number' && c['temperature'] >= 0 && c['temperature'] <= 1, 'inferenceConfig.temperature must be between 0 and 1');
    if (c['topP'] !== undefined) check(typeof c['topP'] === 'number' && c['topP'] >= 0 && c['topP'] <= 1, 'inferenceConfig.topP must be between 0 and 1');
    if (c['stopSequences'] !== undefined) check(Array.isArray(c['stopSequences']) && c['stopSequences'].every((s) => typeof s === 'string'), 'inferenceConfig.stopSequences must be a list of strings');
  }
  if (body['toolConfig'] !== undefined) {
    const t = body['toolConfig'];
    check(isObj(t) && Array.isArray(t['tools']) && t['tools'].length > 0, 'Malformed input request: toolConfig.tools must be a non-empty list');
    const names: string[] = [];
    for (const tool of t['tools'] as unknown[]) {
      const spec = isObj(tool) ? tool['toolSpec'] : undefined;
      check(isObj(spec) && typeof spec['name'] === 'string' && /^[a-zA-Z0-9_-]{1,64}$/.test(spec['name']) && isObj(spec['inputSchema']) && isObj(spec['inputSchema']['json']), 'Malformed input request: each tool needs toolSpec {name, inputSchema: {json}}');
      const extra = Object.keys(spec).find((k) => !TOOL_SPEC_KEYS.has(k));
      check(extra === undefined, `Malformed input request: #/toolConfig/tools/${names.length}/toolSpec: extraneous key [${String(extra)}] is not permitted`);
      const schema = (spec['inputSchema'] as Obj)['json'] as Obj;
      check(schema['type'] === 'object', `The value at toolConfig.tools.${names.length}.toolSpec.inputSchema.json.type must be object`);
      check(typeof compileSchema(schema) !== 'string', `The value at toolConfig.tools.${names.length}.toolSpec.inputSchema.json is not a valid JSON Schema`);
      if (spec['strict'] !== undefined) {
        // Strict tool use: structured output enforcement on the tool's input, for the models and schemas structured outputs take.
        check(typeof spec['strict'] === 'boolean', `Malformed input request: #/toolConfig/tools/${names.length}/toolSpec/strict: expected type: Boolean`);
        if (spec['strict']) {
          check(STRUCTURED_OUTPUT_MODELS.test(model), `This model doesn't support the toolConfig.tools.${names.length}.toolSpec.strict field. Remove strict and try again.`);
          const problem = strictSchemaProblem(schema, `toolConfig.tools.${names.length}.toolSpec.inputSchema.json`);
          check(problem === undefined, `${String(problem)} (strict tool use)`);
        }
      }
      names.push(spec['name'] as string);
    }
    if (t['toolChoice'] !== undefined) {
      const c = t['toolChoice'];
      check(isObj(c) && Object.keys(c).length === 1 && ['auto', 'any', 'tool'].includes(Object.keys(c)[0] as string), 'Malformed input request: toolChoice must set exactly one of auto, any, tool');
      if (isObj(c['tool'])) check(names.includes(String(c['tool']['name'])), `toolChoice.tool.name ${String(c['tool']['name'])} is not among the tools`);
    }
  }
}
