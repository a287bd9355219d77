/** The Gemini translator on its own: schema cleaning, usage, and a recorded stream split at every byte. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../errors.js';
import { cleanSchema, geminiChat } from './chat.js';

const options = { created: 1, includeUsage: true, model: 'gemini-x' };
const RECORDED = [
  { candidates: [{ content: { role: 'model', parts: [{ text: 'Hmm', thought: true }] }, index: 0 }], responseId: 'r1', modelVersion: 'gemini-x-001' },
  { candidates: [{ content: { role: 'model', parts: [{ text: 'Grüße, ' }] }, index: 0 }], responseId: 'r1', modelVersion: 'gemini-x-001' },
  { candidates: [{ content: { role: 'model', parts: [{ text: 'Welt 🌍' }, { functionCall: { name: 'w', args: { city: 'Paris' } } }] }, index: 0 }], responseId: 'r1', modelVersion: 'gemini-x-001' },
  { candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'STOP', index: 0 }], usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 4, thoughtsTokenCount: 2, cachedContentTokenCount: 8 }, responseId: 'r1', modelVersion: 'gemini-x-001' },
];
const TEXT = Buffer.from(RECORDED.map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`).join(''));

describe('gemini translation', () => {
  it('cleans JSON Schema to the subset Gemini accepts and refuses $ref', () => {
    const cleaned = cleanSchema({ $schema: 'x', type: 'object', additionalProperties: false, properties: { a: { type: ['integer', 'null'], examples: [1] }, b: { type: 'array', items: { type: 'string', const: 'x' } } } }, 'p');
    assert.deepEqual(cleaned, { type: 'object', properties: { a: { type: 'integer', nullable: true }, b: { type: 'array', items: { type: 'string' } } } });
    assert.ok(isGatewayError(cleanSchema({ type: 'object', properties: { a: { $ref: '#/x' } } }, 'p')));
  });

  it('json_schema.strict and function.strict: checked to be booleans, not sent (Gemini always enforces responseSchema)', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
    const ctx = { upstreamModel: 'gemini-2.5-flash', defaultMaxTokens: undefined };
    const body = (strict: unknown): Record<string, unknown> => ({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'a', schema, strict } }, tools: [{ type: 'function', function: { name: 'w', parameters: schema, strict } }] });
    const sent = geminiChat.request(body(true), ctx);
    assert.ok(!isGatewayError(sent), isGatewayError(sent) ? sent.message : '');
    assert.equal(sent.toString(), (geminiChat.request(body(false), ctx) as Buffer).toString(), 'strict true and false send the same request');
    const parsed = JSON.parse(sent.toString()) as { generationConfig: Record<string, unknown>; tools: { functionDeclarations: Record<string, unknown>[] }[] };
    assert.deepEqual(parsed.generationConfig['responseSchema'], { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] });
    assert.ok(!sent.toString().includes('strict'));
    const bad = geminiChat.request(body('yes'), ctx);
    assert.ok(isGatewayError(bad) && bad.code === 'invalid_value' && /strict/.test(bad.message), isGatewayError(bad) ? bad.message : 'accepted');
  });

  it('translates a recorded stream split at every byte boundary identically', () => {
    const whole = geminiChat.stream(options);
    const reference = Buffer.concat([whole.push(TEXT), whole.end()]).toString();
    assert.match(reference, /"reasoning_content":"Hmm"/);
    assert.match(reference, /"content":"Grüße, "/);
    assert.match(reference, /"tool_calls":\[\{"index":0,"id":"call_0","type":"function","function":\{"name":"w","arguments":"\{\\"city\\":\\"Paris\\"\}"\}\}\]/);
    assert.match(reference, /"finish_reason":"tool_calls"/);
    assert.match(reference, /"usage":\{"prompt_tokens":20,"completion_tokens":6,"total_tokens":26,"prompt_tokens_details":\{"cached_tokens":8\},"completion_tokens_details":\{"reasoning_tokens":2\}\}/);
    assert.ok(reference.endsWith('data: [DONE]\n\n'));
    for (let cut = 1; cut < TEXT.length; cut++) {
      const t = geminiChat.stream(options);
      assert.equal(Buffer.concat([t.push(TEXT.subarray(0, cut)), t.push(TEXT.subarray(cut)), t.end()]).toString(), reference, `split at ${cut}`);
    }
  });

  it('a stream without a finishReason ends with an error event; errors keep their status meaning', () => {
    const t = geminiChat.stream(options);
    const out = Buffer.concat([t.push(Buffer.from(`data: ${JSON.stringify(RECORDED[1])}\n\n`)), t.end()]).toString();
    assert.match(out, /stream_interrupted/);
    const err = JSON.parse(geminiChat.error(429, Buffer.from('{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}')).toString()) as { error: Record<string, unknown> };
    assert.deepEqual(err.error, { message: 'quota', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' });
  });
});
