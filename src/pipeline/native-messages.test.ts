import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { providerYaml, secretYaml, validSnapshot } from '../config/test-fixtures.js';
import { isGatewayError } from '../errors.js';
import { upstreamFor } from '../providers/front-doors.js';
import { vertexNativeMessages } from '../providers/gcp-vertex-ai/messages.js';
import { readRequestBody } from './request-body.js';
import { betaValues, upstreamRewrite, type UpstreamRewrite } from './rewrite.js';

const CLAUDE = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const snapshot = validSnapshot(
  providerYaml(
    'bedrock',
    `type: aws-bedrock\nendpoint: https://bedrock-runtime.eu-central-1.amazonaws.com\ncredentialSecretRef: { name: aws, key: credentials }\nmodels: [{ name: bclaude, upstreamModel: "${CLAUDE}" }, { name: bnova, upstreamModel: "amazon.nova-pro-v1:0" }]`,
  ) + secretYaml('aws', { credentials: JSON.stringify({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }) }),
);

async function rewriteOf(model: string, text: string, beta?: string): Promise<UpstreamRewrite> {
  const route = snapshot.routesByModel.get(model)?.[0]?.routes[0];
  assert.ok(route);
  const body = readRequestBody(Buffer.from(text), 'application/json');
  assert.ok(!isGatewayError(body));
  const out = await upstreamRewrite(route, 'messages', beta === undefined ? body : { ...body, anthropicBeta: beta }, 'req-1');
  assert.ok(!isGatewayError(out), JSON.stringify(out));
  return out;
}

describe('/v1/messages to Claude on Bedrock and Vertex AI: sent natively', () => {
  it('Claude models on aws-bedrock and gcp-vertex-ai are native; other models there are translated; anthropic passes through', () => {
    assert.equal(upstreamFor('messages', 'aws-bedrock', CLAUDE).kind, 'native');
    assert.equal(upstreamFor('messages/count_tokens', 'aws-bedrock', 'anthropic.claude-3-haiku-20240307-v1:0').kind, 'native');
    assert.equal(upstreamFor('messages', 'aws-bedrock', 'amazon.nova-pro-v1:0').kind, 'translate');
    assert.equal(upstreamFor('messages/count_tokens', 'aws-bedrock', 'amazon.nova-pro-v1:0').kind, 'unsupported');
    assert.equal(upstreamFor('messages', 'gcp-vertex-ai', 'claude-sonnet-4-5@20250929').kind, 'native');
    assert.equal(upstreamFor('messages', 'gcp-vertex-ai', 'gemini-2.5-pro').kind, 'translate');
    assert.equal(upstreamFor('messages', 'anthropic', 'claude-sonnet-4-5').kind, 'passthrough');
    assert.equal(upstreamFor('chat/completions', 'aws-bedrock', CLAUDE).kind, 'translate', 'chat completions to Claude on Bedrock stays on Converse');
  });

  it('Bedrock stream: InvokeModelWithResponseStream, the client bytes with model and stream cut and the version and betas added, signed', async () => {
    const text = '{"model": "bclaude", "max_tokens": 9,\n "messages": [{"role":"user","content":[{"type":"text","text":"h\\u00e9","cache_control":{"type":"ephemeral"}}]}], "stream": true}';
    const r = await rewriteOf('bclaude', text, 'a-1, b-2');
    const headers = Object.fromEntries(r.setHeaders);
    assert.equal(headers[':path'], `/model/${encodeURIComponent(CLAUDE)}/invoke-with-response-stream`);
    assert.equal(headers['accept'], 'application/vnd.amazon.eventstream');
    assert.equal(headers['x-amzn-bedrock-accept'], 'application/json');
    assert.match(headers['authorization'] ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-central-1\/bedrock\/aws4_request, SignedHeaders=[^,]*x-amzn-bedrock-accept/);
    assert.equal(r.body?.toString('utf8'), '{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["a-1","b-2"],"max_tokens": 9,\n "messages": [{"role":"user","content":[{"type":"text","text":"h\\u00e9","cache_control":{"type":"ephemeral"}}]}]}');
    assert.equal(headers['content-length'], String(r.body?.length));
    assert.ok(r.removeHeaders.includes('anthropic-version') && r.removeHeaders.includes('anthropic-beta'));
    assert.equal(r.translation?.api, 'anthropic');
    assert.equal(r.translation?.translator.passes?.(200, true), false, 'the event stream is converted');
  });

  it('Bedrock non-streamed: InvokeModel, and its JSON passes unread; Nova is translated to Converse', async () => {
    const r = await rewriteOf('bclaude', '{"model":"bclaude","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}');
    assert.equal(Object.fromEntries(r.setHeaders)[':path'], `/model/${encodeURIComponent(CLAUDE)}/invoke`);
    assert.equal(r.translation?.translator.passes?.(200, false), true);
    const nova = await rewriteOf('bnova', '{"model":"bnova","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}');
    assert.equal(Object.fromEntries(nova.setHeaders)[':path'], `/model/${encodeURIComponent('amazon.nova-pro-v1:0')}/converse`);
  });

  it('Vertex AI: model out (or, for count-tokens, the upstream model in), the Vertex version in, anthropic-beta passed as a header', () => {
    assert.deepEqual(vertexNativeMessages.edits('messages', 'claude-x@1', ['a']), { drop: ['model'], set: [['anthropic_version', 'vertex-2023-10-16']] });
    assert.deepEqual(vertexNativeMessages.edits('messages/count_tokens', 'claude-x@1', []), { drop: [], set: [['anthropic_version', 'vertex-2023-10-16'], ['model', 'claude-x@1']] });
    assert.deepEqual(vertexNativeMessages.passHeaders, ['anthropic-beta']);
    const r = vertexNativeMessages.response('messages');
    assert.equal(r.passes?.(200, true), true);
    assert.equal(r.error(429, Buffer.from('[{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}]')).toString(), '{"type":"error","error":{"type":"rate_limit_error","message":"Quota exceeded"}}');
    const claude = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
    assert.equal(r.error(529, Buffer.from(claude)).toString(), claude, "Claude's own errors pass as they are");
    assert.deepEqual(betaValues(' x , ,y'), ['x', 'y']);
    assert.deepEqual(betaValues(undefined), []);
  });
});
