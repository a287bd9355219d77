import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { BedrockMessagesStream, bedrockCountRefused, bedrockMessagesStatus, bedrockNativeMessages, chunkEvent, countTokensModel, isBedrockClaude } from './messages.js';
import { ResponseTranslation } from '../../pipeline/translation.js';
import { MAX_FRAME_BYTES } from './event-stream.js';

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** A `chunk` frame as InvokeModelWithResponseStream sends it. */
function chunk(event: Record<string, unknown>): Buffer {
  const bytes = Buffer.from(JSON.stringify(event)).toString('base64');
  return Buffer.from(
    codec.encode({
      headers: { ':event-type': { type: 'string', value: 'chunk' }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'event' } },
      body: fromUtf8(JSON.stringify({ bytes, p: 'abcd' })),
    }),
  );
}

function exception(name: string, message: string): Buffer {
  return Buffer.from(
    codec.encode({
      headers: { ':exception-type': { type: 'string', value: name }, ':content-type': { type: 'string', value: 'application/json' }, ':message-type': { type: 'string', value: 'exception' } },
      body: fromUtf8(JSON.stringify({ message })),
    }),
  );
}

const EVENTS: Record<string, unknown>[] = [
  { type: 'message_start', message: { id: 'msg_bdrk_1', type: 'message', role: 'assistant', model: 'claude', content: [], stop_reason: null, usage: { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 90, output_tokens: 1 } } },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hé "quoted"\nline' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } },
  { type: 'message_stop', 'amazon-bedrock-invocationMetrics': { inputTokenCount: 10, outputTokenCount: 3 } },
];

function sse(events: readonly Record<string, unknown>[]): string {
  return events.map((e) => `event: ${String(e['type'])}\ndata: ${JSON.stringify(e)}\n\n`).join('');
}

describe('Claude on Bedrock natively: InvokeModelWithResponseStream -> Anthropic SSE', () => {
  it('every chunk event becomes its Anthropic event, unchanged, whatever the network split (down to 1 byte)', () => {
    const all = Buffer.concat(EVENTS.map(chunk));
    for (const size of [1, 3, 17, all.length]) {
      const s = new BedrockMessagesStream();
      let out = '';
      for (let i = 0; i < all.length; i += size) out += s.push(all.subarray(i, i + size)).toString('utf8');
      out += s.end().toString('utf8');
      assert.equal(out, sse(EVENTS), `split every ${size} bytes`);
    }
  });

  it('an exception frame (throttlingException) ends the stream with an Anthropic error event', () => {
    const s = new BedrockMessagesStream();
    const out = s.push(Buffer.concat([chunk(EVENTS[0]!), exception('throttlingException', 'Too many tokens, please wait.')])).toString('utf8') + s.end().toString('utf8');
    assert.equal(out, `${sse([EVENTS[0]!])}event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens, please wait."}}\n\n`);
    assert.equal(s.push(chunk(EVENTS[1]!)).length, 0, 'nothing after the error');
  });

  it('a stream that ends before message_stop ends with an error event; a corrupt frame too', () => {
    const s = new BedrockMessagesStream();
    const out = s.push(Buffer.concat(EVENTS.slice(0, 3).map(chunk))).toString('utf8') + s.end().toString('utf8');
    assert.match(out, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"The provider ended the stream before the message was complete."\}\}\n\n$/);
    const bad = chunk(EVENTS[0]!);
    bad.writeUInt8((bad.at(-1) ?? 0) ^ 0xff, bad.length - 1); // message CRC
    const c = new BedrockMessagesStream();
    assert.match(c.push(bad).toString('utf8'), /^event: error\n.*corrupt event-stream frame/);
  });

  it('holds at most one incomplete frame; a frame announcing more than the bound is refused', () => {
    const s = new BedrockMessagesStream();
    const head = Buffer.alloc(12);
    head.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    assert.match(s.push(head).toString('utf8'), /cannot read/);
    const t = new BedrockMessagesStream();
    const frame = chunk(EVENTS[2]!);
    assert.equal(t.push(frame.subarray(0, frame.length - 1)).length, 0);
    assert.equal(t.push(frame.subarray(frame.length - 1)).toString('utf8'), sse([EVENTS[2]!]));
  });

  it('chunk payloads in another key order are parsed; a pretty-printed event is put on one line', () => {
    const pretty = Buffer.from(JSON.stringify({ type: 'ping' }, null, 2)).toString('base64');
    const got = chunkEvent(Buffer.from(JSON.stringify({ p: 'x', bytes: pretty })));
    assert.deepEqual(got && { type: got.type, json: got.json.toString('utf8') }, { type: 'ping', json: '{"type":"ping"}' });
    assert.equal(chunkEvent(Buffer.from('not json')), undefined);
  });
});

describe('Claude on Bedrock natively: models, bodies, errors', () => {
  it('Claude ids: foundation models, inference profiles, ARNs; others are not', () => {
    for (const id of ['anthropic.claude-3-5-sonnet-20240620-v1:0', 'us.anthropic.claude-3-7-sonnet-20250219-v1:0', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'us-gov.anthropic.claude-3-haiku-20240307-v1:0', 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-20250514-v1:0']) {
      assert.ok(isBedrockClaude(id), id);
    }
    for (const id of ['amazon.nova-pro-v1:0', 'meta.llama3-70b-instruct-v1:0', 'us.amazon.nova-lite-v1:0', 'mistral.claude-lookalike']) assert.ok(!isBedrockClaude(id), id);
    assert.equal(countTokensModel('us.anthropic.claude-3-7-sonnet-20250219-v1:0'), 'anthropic.claude-3-7-sonnet-20250219-v1:0');
    assert.equal(countTokensModel('global.anthropic.claude-sonnet-4-5-20250929-v1:0'), 'anthropic.claude-sonnet-4-5-20250929-v1:0');
    assert.equal(countTokensModel('anthropic.claude-3-haiku-20240307-v1:0'), 'anthropic.claude-3-haiku-20240307-v1:0');
  });

  it('edits: no model or stream, the Bedrock version, betas in the body; CountTokens wraps the body in base64', () => {
    assert.deepEqual(bedrockNativeMessages.edits('messages', 'm', ['a', 'b']), { drop: ['model', 'stream'], set: [['anthropic_version', 'bedrock-2023-05-31'], ['anthropic_beta', ['a', 'b']]] });
    const wrapped = bedrockNativeMessages.wrap?.('messages/count_tokens', Buffer.from('{"x":1}'));
    assert.deepEqual(JSON.parse(String(wrapped)), { input: { invokeModel: { body: Buffer.from('{"x":1}').toString('base64') } } });
    const count = bedrockNativeMessages.response('messages/count_tokens');
    assert.equal(count.response(Buffer.from('{"inputTokens":42}'), { model: 'm', created: 0, includeUsage: false }).body.toString(), '{"input_tokens":42}');
  });

  it("Bedrock's errors become Anthropic's, status kept; non-streamed 2xx passes unread", () => {
    const r = bedrockNativeMessages.response('messages');
    assert.equal(r.error(429, Buffer.from('{"message":"Too many requests, please wait before trying again."}')).toString(), '{"type":"error","error":{"type":"rate_limit_error","message":"Too many requests, please wait before trying again."}}');
    assert.equal(r.error(400, Buffer.from('{"Message":"Malformed input request"}')).toString(), '{"type":"error","error":{"type":"invalid_request_error","message":"Malformed input request"}}');
    assert.equal(r.error(503, Buffer.from('<html>')).toString(), '{"type":"error","error":{"type":"overloaded_error","message":"Bedrock answered HTTP 503."}}');
    assert.equal(r.passes?.(200, false), true);
    assert.equal(r.passes?.(200, true), false);
    assert.equal(r.passes?.(429, false), false);
  });
});

describe('Claude on Bedrock natively: CountTokens refusing a model', () => {
  const UNSUPPORTED = Buffer.from('{"message":"The provided model doesn\'t support counting tokens."}');
  const VALIDATION = 'ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/';

  it("only the service's refusal of the model counts as one; malformed bodies, other errors and other statuses do not", () => {
    assert.equal(bedrockCountRefused(400, VALIDATION, UNSUPPORTED), true);
    assert.equal(bedrockCountRefused(400, undefined, UNSUPPORTED), true, 'no type header: the message decides');
    assert.equal(bedrockCountRefused(400, VALIDATION, Buffer.from('{"Message":"The provided model doesn\u2019t support counting tokens."}')), true);
    assert.equal(bedrockCountRefused(400, VALIDATION, Buffer.from('{"message":"Malformed input request: #/messages: expected minimum item count: 1"}')), false);
    assert.equal(bedrockCountRefused(400, VALIDATION, Buffer.from('{"message":"prompt is too long: 300000 tokens > 200000 maximum"}')), false);
    assert.equal(bedrockCountRefused(403, 'AccessDeniedException', UNSUPPORTED), false);
    assert.equal(bedrockCountRefused(400, 'AccessDeniedException:x', UNSUPPORTED), false);
    assert.equal(bedrockCountRefused(429, 'ThrottlingException', UNSUPPORTED), false);
    assert.equal(bedrockCountRefused(400, VALIDATION, Buffer.from('not json')), false);
  });

  const plan = { translator: bedrockNativeMessages.response('messages/count_tokens'), stream: false, includeUsage: false, upstreamModel: 'anthropic.claude-sonnet-4-6', api: 'anthropic' } as const;
  const options = { created: 0, includeUsage: false, model: plan.upstreamModel };

  it("a refusal of the model is held and answered with the gateway's estimate, marked as one", () => {
    const t = new ResponseTranslation(plan, options, () => '{"input_tokens":12}');
    const h = t.headers(400, 'application/json', VALIDATION);
    assert.equal(h.held, true);
    const answer = t.held(UNSUPPORTED);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.toString(), '{"input_tokens":12}');
    assert.deepEqual(answer.setHeaders, [['content-type', 'application/json'], ['x-tollgate-token-count', 'estimate']]);
  });

  it("another 400 that was held stays the client's Anthropic error with its status", () => {
    const t = new ResponseTranslation(plan, options, () => '{"input_tokens":12}');
    assert.equal(t.headers(400, 'application/json', VALIDATION).held, true);
    const answer = t.held(Buffer.from('{"message":"Malformed input request: #/messages: expected minimum item count: 1"}'));
    assert.equal(answer.status, undefined);
    assert.deepEqual(answer.setHeaders, [['content-type', 'application/json']]);
    assert.equal(answer.body.toString(), '{"type":"error","error":{"type":"invalid_request_error","message":"Malformed input request: #/messages: expected minimum item count: 1"}}');
  });

  it('without an estimate, or for statuses other than 400, nothing is held', () => {
    assert.notEqual(new ResponseTranslation(plan, options).headers(400, 'application/json', VALIDATION).held, true);
    assert.notEqual(new ResponseTranslation(plan, options, () => '{}').headers(429, 'application/json', 'ThrottlingException').held, true);
    assert.equal(new ResponseTranslation(plan, options, () => '{}').headers(200, 'application/json').held, undefined);
  });
});

describe('Claude on Bedrock natively: status classes', () => {
  it("ServiceUnavailableException and ModelNotReadyException are Anthropic's 529 overloaded_error; ThrottlingException stays 429", () => {
    const r = bedrockNativeMessages.response('messages');
    assert.equal(bedrockMessagesStatus(503), 529);
    assert.equal(bedrockMessagesStatus(429, 'ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 529);
    assert.equal(bedrockMessagesStatus(429, 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 429);
    assert.equal(bedrockMessagesStatus(429), 429);
    assert.equal(r.status(503), 529);
    assert.equal(r.error(429, Buffer.from('{"message":"Model is not ready"}'), 'ModelNotReadyException').toString(), '{"type":"error","error":{"type":"overloaded_error","message":"Model is not ready"}}');
    assert.equal(r.error(429, Buffer.from('{"message":"Too many requests"}'), 'ThrottlingException').toString(), '{"type":"error","error":{"type":"rate_limit_error","message":"Too many requests"}}');
  });
});
