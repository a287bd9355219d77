/**
 * Content guardrails through real Envoy and Tollgate with the official openai client: keyword and
 * pattern lists (with Unicode tricks), every PII detector, block and mask on requests and on
 * answers (streamed and not), matches split across stream chunks at every position, inheritance
 * down the account lineage, decisions in logs and metrics without the matched text.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { APIError } from 'openai';
import { hashKey } from '../../src/config/snapshot.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEYS = {
  blocker: 'sk-guard-blocker-0001',
  masker: 'sk-guard-masker-0002',
  child: 'sk-guard-child-0003',
  missing: 'sk-guard-missing-0004',
  plain: 'sk-guard-plain-0005',
  cards: 'sk-guard-cards-0006',
} as const;

const GATEWAY = `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  guardrails:
    - name: words-block
      keywords: { action: block, words: ["forbidden topic", "badword"] }
    - name: pii-mask
      mask: "[MASKED]"
      keywords: { action: mask, words: ["secret project"] }
      patterns: [{ name: ticket, regex: "tkt-\\\\d{6}", action: mask, maxLength: 10 }]
      pii: { email: mask, phone: mask, paymentCard: mask, iban: mask, ipAddress: mask, cnResidentId: mask, usSsn: mask }
    - name: cards-block
      request: false
      pii: { paymentCard: block, email: log }
`;

function key(name: string, secret: string, extra: string): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: ${name} }
spec:
  keyHash: "${hashKey(secret)}"
${extra}---
`;
}

const FILES = {
  'gateway.yaml': GATEWAY,
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: claude }
spec:
  type: anthropic
  endpoint: "{{FAKE:claude}}"
  credentialSecretRef: { name: ant-cred, key: token }
  models: [{ name: claude, upstreamModel: claude-sonnet-4-5 }]
---
apiVersion: v1
kind: Secret
metadata: { name: ant-cred }
stringData: { token: sk-ant-fake }
`,
  'keys.yaml':
    key('blocker', KEYS.blocker, '  guardrails: [words-block]\n') +
    key('masker', KEYS.masker, '  guardrails: [pii-mask]\n') +
    `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: account }
spec:
  accountOnly: true
  guardrails: [words-block]
---
` +
    key('child', KEYS.child, '  parent: account\n') +
    key('missing', KEYS.missing, '  guardrails: [nope]\n') +
    key('cards', KEYS.cards, '  guardrails: [cards-block]\n') +
    key('plain', KEYS.plain, ''),
};

/** Every PII kind once, with what the upstream (or client) must see instead. */
const PII_TEXT =
  'Mail john.doe@example.com, call +49 30 1234567, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, ' +
  'host 192.168.1.20 or 2001:db8::7, ID 11010519491231002X, SSN 123-45-6789.';
const PII_MASKED = 'Mail [EMAIL], call [PHONE], card [CARD], IBAN [IBAN], host [IP] or [IP], ID [ID], SSN [SSN].';
const SECRETS = ['john.doe@example.com', '1234567', '4111 1111', 'DE89', '192.168.1.20', '2001:db8::7', '11010519491231002X', '123-45-6789'];

describe('guardrails through Envoy', () => {
  let stack: Stack;
  const client = (k: string): OpenAI => stack.client(k);
  const fake = () => {
    const f = stack.fakes.primary;
    assert.ok(f);
    return f;
  };
  const lastUpstreamBody = (): string => JSON.stringify(fake().received('/chat/completions').at(-1)?.body);
  const ask = (k: string, content: string) => client(k).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });

  /** Streams with the fake answering `pieces`; returns the text the client got, or the error. */
  async function stream(k: string, pieces: readonly string[]): Promise<{ text: string; error: APIError | undefined }> {
    fake().behaviour.pieces = pieces;
    fake().behaviour.chunkIntervalMs = 0;
    let text = '';
    try {
      const s = await client(k).chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
      return { text, error: undefined };
    } catch (err) {
      if (err instanceof APIError) return { text, error: err };
      throw err;
    } finally {
      fake().behaviour.pieces = undefined;
    }
  }

  before(async () => {
    stack = await startStack({ files: FILES, fakes: { primary: {} }, anthropicFakes: { claude: { writeBytes: 7 } } });
  });
  after(() => stack?.stop());

  it('blocks a request with a keyword, also written full-width, in capitals or with zero-width characters inside', async () => {
    const before = fake().received('/chat/completions').length;
    for (const text of ['tell me about the forbidden topic', 'the ＦＯＲＢＩＤＤＥＮ　ＴＯＰＩＣ please', 'a bad\u200bword', 'BadWord']) {
      const err = await assertSdkError(ask(KEYS.blocker, text), 400, 'content_policy_violation');
      assert.match(err.message, /words-block/);
      assert.doesNotMatch(err.message, /forbidden|badword/i, 'the refusal does not echo the matched text');
    }
    assert.equal(fake().received('/chat/completions').length, before, 'blocked requests never reach the provider');
    const ok = await ask(KEYS.blocker, 'a harmless question');
    assert.ok(ok.choices[0]?.message.content);
  });

  it('checks tool results and system messages too, and inherits guardrails from the account', async () => {
    await assertSdkError(
      client(KEYS.blocker).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: 'look it up' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: 'result: badword' }] },
        ],
      }),
      400,
      'content_policy_violation',
    );
    await assertSdkError(ask(KEYS.child, 'the forbidden topic'), 400, 'content_policy_violation');
    await ask(KEYS.plain, 'the forbidden topic'); // no guardrail on this key
  });

  it('masks every PII kind, keywords and patterns in the request before it goes upstream', async () => {
    await client(KEYS.masker).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'About the Secret Project, ticket TKT-123456.' },
        { role: 'user', content: [{ type: 'text', text: PII_TEXT }] },
      ],
    });
    const upstream = lastUpstreamBody();
    assert.ok(upstream.includes('About the [MASKED], ticket [MASKED].'), upstream);
    assert.ok(upstream.includes(PII_MASKED), upstream);
    for (const s of SECRETS) assert.ok(!upstream.includes(s), `${s} reached the provider: ${upstream}`);
  });

  it('masks a non-streamed answer and blocks one with a 400', async () => {
    fake().behaviour.pieces = [PII_TEXT];
    try {
      const res = await ask(KEYS.masker, 'hi');
      assert.equal(res.choices[0]?.message.content, PII_MASKED);
      fake().behaviour.pieces = ['here is a badword for you'];
      await assertSdkError(ask(KEYS.blocker, 'hi'), 400, 'content_policy_violation');
    } finally {
      fake().behaviour.pieces = undefined;
    }
  });

  it('masks a streamed answer whose matches are split across chunks at every position', async () => {
    const text = 'Reach john.doe@example.com or card 4111 1111 1111 1111 now.';
    const expected = 'Reach [EMAIL] or card [CARD] now.';
    for (let p = 6; p < 55; p++) {
      const r = await stream(KEYS.masker, [text.slice(0, p), text.slice(p)]);
      assert.equal(r.error, undefined);
      assert.equal(r.text, expected, `split at ${p}`);
    }
    // One character per chunk.
    const r = await stream(KEYS.masker, [...text]);
    assert.equal(r.text, expected);
  });

  it('ends a stream with an explicit error event when a split keyword or card appears; the client never sees it', async () => {
    const r = await stream(KEYS.blocker, ['this is a bad', 'wo', 'rd indeed and more']);
    assert.ok(r.error, 'the client got an error');
    assert.equal(r.error.code, 'content_policy_violation');
    assert.ok(!r.text.includes('badword') && !r.text.includes('bad'), r.text);
    const c = await stream(KEYS.cards, ['pay with 4111 11', '11 1111 1111 thanks']);
    assert.equal(c.error?.code, 'content_policy_violation');
    assert.ok(!c.text.includes('4111'), c.text);
    // Streams keep working afterwards.
    const ok = await stream(KEYS.blocker, ['all ', 'fine']);
    assert.equal(ok.text, 'all fine');
  });

  const TOOLS = [{ type: 'function' as const, function: { name: 'send_mail', parameters: { type: 'object', properties: { to: { type: 'string' }, body: { type: 'string' } } } } }];

  it('masks an e-mail in streamed tool-call arguments split at every position; the SDK accumulates valid JSON', async () => {
    const args = '{"to":"john.doe@example.com","body":"call +49 30 1234567\\nthanks"}';
    const expected = { to: '[EMAIL]', body: 'call [PHONE]\nthanks' };
    try {
      for (let p = 1; p < args.length; p++) {
        fake().behaviour.toolArguments = [args.slice(0, p), args.slice(p)];
        const s = client(KEYS.masker).chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail john' }], tools: TOOLS });
        const done = await s.finalChatCompletion();
        const call = done.choices[0]?.message.tool_calls?.[0];
        assert.ok(call && call.type === 'function', `split at ${p}`);
        assert.deepEqual(JSON.parse(call.function.arguments), expected, `split at ${p}: ${call.function.arguments}`);
      }
      // One character per delta.
      fake().behaviour.toolArguments = [...args];
      const done = await client(KEYS.masker).chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail john' }], tools: TOOLS }).finalChatCompletion();
      const call = done.choices[0]?.message.tool_calls?.[0];
      assert.deepEqual(call?.type === 'function' ? JSON.parse(call.function.arguments) : undefined, expected);
      // Not streamed: the same arguments, masked inside the JSON strings.
      const whole = await client(KEYS.masker).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail john' }], tools: TOOLS });
      const wc = whole.choices[0]?.message.tool_calls?.[0];
      assert.deepEqual(wc?.type === 'function' ? JSON.parse(wc.function.arguments) : undefined, expected);
    } finally {
      fake().behaviour.toolArguments = undefined;
    }
  });

  it('blocks a keyword in tool-call arguments, streamed (error event, the SDK raises) and not streamed (400)', async () => {
    try {
      fake().behaviour.toolArguments = ['{"to":"all","body":"about the forbid', 'den topic"}'];
      let seen = '';
      const s = client(KEYS.blocker).chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail' }], tools: TOOLS });
      s.on('tool_calls.function.arguments.delta', (e) => (seen += e.arguments_delta));
      await assert.rejects(s.finalChatCompletion(), (err: unknown) => err instanceof APIError && /content policy/.test(err.message));
      assert.ok(!seen.includes('forbid'), seen);
      await assertSdkError(client(KEYS.blocker).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'mail' }], tools: TOOLS }), 400, 'content_policy_violation');
    } finally {
      fake().behaviour.toolArguments = undefined;
    }
  });

  it('checks the tool loop on requests: earlier tool-call arguments (still valid JSON) and tool results', async () => {
    const res = await client(KEYS.masker).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'user', content: 'mail john' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'send_mail', arguments: '{"to":"john.doe@example.com","n":4111111111111111}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'delivered to john.doe@example.com' },
      ],
      tools: TOOLS,
    });
    assert.ok(res.choices[0]);
    const upstream = fake().received('/chat/completions').at(-1)?.body as { messages: { content: string | null; tool_calls?: { function: { arguments: string } }[] }[] };
    assert.deepEqual(JSON.parse(upstream.messages[1]?.tool_calls?.[0]?.function.arguments ?? ''), { to: '[EMAIL]', n: '[CARD]' });
    assert.equal(upstream.messages[2]?.content, 'delivered to [EMAIL]');
    await assertSdkError(
      client(KEYS.blocker).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'send_mail', arguments: '{"body":"badword"}' } }] }, { role: 'tool', tool_call_id: 'c', content: 'ok' }] }),
      400,
      'content_policy_violation',
    );
  });

  it('masks streamed and whole reasoning_content like content', async () => {
    fake().behaviour.reasoning = 'I will write to john.doe@example.com about it.';
    try {
      let reasoning = '';
      const s = await client(KEYS.masker).chat.completions.create({ model: 'gpt-4o-mini', stream: true, reasoning_effort: 'low', messages: [{ role: 'user', content: 'hi' }] });
      for await (const chunk of s) reasoning += (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
      assert.equal(reasoning, 'I will write to [EMAIL] about it.');
      const whole = await client(KEYS.masker).chat.completions.create({ model: 'gpt-4o-mini', reasoning_effort: 'low', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal((whole.choices[0]?.message as { reasoning_content?: string } | undefined)?.reasoning_content, 'I will write to [EMAIL] about it.');
    } finally {
      fake().behaviour.reasoning = undefined;
    }
  });

  it('masks tool_use input on the Anthropic Messages front door (streamed input_json_delta and whole), as valid JSON', async () => {
    const anthropic = new Anthropic({ baseURL: stack.baseUrl, apiKey: KEYS.masker, maxRetries: 0, timeout: 30_000 });
    const tools = [{ name: 'send_mail', input_schema: { type: 'object' as const, properties: { to: { type: 'string' } } } }];
    fake().behaviour.toolArguments = ['{"to":"john.doe@exa', 'mple.com"}'];
    try {
      const s = anthropic.messages.stream({ model: 'gpt-4o-mini', max_tokens: 50, tools, messages: [{ role: 'user', content: 'mail john' }] });
      const msg = await s.finalMessage();
      const use = msg.content.find((b) => b.type === 'tool_use');
      assert.deepEqual(use?.type === 'tool_use' ? use.input : undefined, { to: '[EMAIL]' });
      const whole = await anthropic.messages.create({ model: 'gpt-4o-mini', max_tokens: 50, tools, messages: [{ role: 'user', content: 'mail john' }] });
      const wu = whole.content.find((b) => b.type === 'tool_use');
      assert.deepEqual(wu?.type === 'tool_use' ? wu.input : undefined, { to: '[EMAIL]' });
    } finally {
      fake().behaviour.toolArguments = undefined;
    }
  });

  it('guards the Anthropic Messages front door: system prompt checked, streamed and whole answers masked, blocks as Anthropic errors', async () => {
    const anthropic = (k: string): Anthropic => new Anthropic({ baseURL: stack.baseUrl, apiKey: k, maxRetries: 0, timeout: 30_000 });
    await assert.rejects(
      anthropic(KEYS.blocker).messages.create({ model: 'gpt-4o-mini', max_tokens: 50, system: 'Talk about the forbidden topic.', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => err instanceof Anthropic.APIError && err.status === 400 && /content policy/.test(err.message),
    );
    fake().behaviour.pieces = ['Reach john.doe@exa', 'mple.com today'];
    try {
      const whole = await anthropic(KEYS.masker).messages.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      assert.deepEqual(whole.content.map((b) => (b.type === 'text' ? b.text : '')), ['Reach [EMAIL] today']);
      let text = '';
      const s = anthropic(KEYS.masker).messages.stream({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      s.on('text', (t) => (text += t));
      await s.finalMessage();
      assert.equal(text, 'Reach [EMAIL] today');
      fake().behaviour.pieces = ['a bad', 'word here'];
      let seen = '';
      const blocked = anthropic(KEYS.blocker).messages.stream({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      blocked.on('text', (t) => (seen += t));
      await assert.rejects(blocked.finalMessage());
      assert.ok(!seen.includes('bad'), seen);
    } finally {
      fake().behaviour.pieces = undefined;
    }
  });

  it('masks embeddings input and returns the embeddings unchanged (no answer text to inspect)', async () => {
    const res = await client(KEYS.masker).embeddings.create({ model: 'gpt-4o-mini', input: ['mail bob@example.org', 'plain'] });
    assert.equal(res.data.length, 2);
    const upstream = JSON.stringify(fake().received('/embeddings').at(-1)?.body);
    assert.ok(upstream.includes('mail [EMAIL]') && !upstream.includes('bob@'), upstream);
  });

  it('guards the Responses API: input checked, whole and streamed answers masked in every event, blocks as a stream error', async () => {
    const before = fake().received('/responses').length;
    await assertSdkError(client(KEYS.blocker).responses.create({ model: 'gpt-4o-mini', input: 'the forbidden topic' }), 400, 'content_policy_violation');
    await assertSdkError(client(KEYS.blocker).responses.create({ model: 'gpt-4o-mini', instructions: 'say badword', input: 'hi' }), 400, 'content_policy_violation');
    assert.equal(fake().received('/responses').length, before, 'blocked requests never reach the provider');
    fake().behaviour.chunkIntervalMs = 0;
    try {
      const text = 'Reach john.doe@example.com or card 4111 1111 1111 1111 now.';
      const expected = 'Reach [EMAIL] or card [CARD] now.';
      fake().behaviour.pieces = [text];
      const whole = await client(KEYS.masker).responses.create({ model: 'gpt-4o-mini', input: 'hi' });
      assert.equal(whole.output_text, expected);
      for (const p of [6, 12, 20, 27, 40, 50]) {
        fake().behaviour.pieces = [text.slice(0, p), text.slice(p)];
        let deltas = '';
        const s = client(KEYS.masker).responses.stream({ model: 'gpt-4o-mini', input: 'hi' });
        s.on('response.output_text.delta', (e) => (deltas += e.delta));
        const final = await s.finalResponse();
        assert.equal(deltas, expected, `split at ${p}`);
        assert.equal(final.output_text, expected, 'the final response (response.completed) is masked too');
      }
      fake().behaviour.pieces = ['a bad', 'word here'];
      let seen = '';
      const blocked = client(KEYS.blocker).responses.stream({ model: 'gpt-4o-mini', input: 'hi' });
      blocked.on('response.output_text.delta', (e) => (seen += e.delta));
      await assert.rejects(blocked.finalResponse(), (err: unknown) => err instanceof APIError && err.code === 'content_policy_violation');
      assert.ok(!seen.includes('bad'), seen);
    } finally {
      fake().behaviour.pieces = undefined;
    }
  });

  it('masks a stored Responses API response read back (retrieve), which the provider keeps unmasked', async () => {
    fake().behaviour.pieces = ['Reach john.doe@example.com ', 'or card 4111 1111 1111 1111 now.'];
    try {
      const created = await client(KEYS.masker).responses.create({ model: 'gpt-4o-mini', input: 'hi' });
      assert.equal(created.output_text, 'Reach [EMAIL] or card [CARD] now.');
      const again = await client(KEYS.masker).responses.retrieve(created.id);
      assert.equal(again.output_text, 'Reach [EMAIL] or card [CARD] now.');
      assert.ok(!JSON.stringify(again).includes('john.doe'), 'nothing of the stored text leaks');
    } finally {
      fake().behaviour.pieces = undefined;
    }
  });

  it('guards /v1/responses answers translated from an Anthropic provider (the inspection sees the events the client gets)', async () => {
    const claude = stack.anthropic['claude'];
    assert.ok(claude);
    claude.behaviour.text = 'Reach john.doe@example.com or card 4111 1111 1111 1111 now.';
    const expected = 'Reach [EMAIL] or card [CARD] now.';
    const whole = await client(KEYS.masker).responses.create({ model: 'claude', input: 'hi', max_output_tokens: 100 });
    assert.equal(whole.output_text, expected);
    let deltas = '';
    const s = client(KEYS.masker).responses.stream({ model: 'claude', input: 'hi', max_output_tokens: 100 });
    s.on('response.output_text.delta', (e) => (deltas += e.delta));
    const final = await s.finalResponse();
    assert.equal(deltas, expected);
    assert.equal(final.output_text, expected);
  });

  it('guards tool calls and reasoning on /v1/responses translated from Claude: arguments stay valid JSON, summaries and encrypted thinking masked', async () => {
    const claude = stack.anthropic['claude'];
    assert.ok(claude);
    const saved = { input: claude.behaviour.toolInput, thinking: claude.behaviour.thinking };
    claude.behaviour.toolInput = { to: 'john.doe@example.com', body: 'card 4111 1111 1111 1111' };
    claude.behaviour.thinking = 'I should mail john.doe@example.com now.';
    const tools = [{ type: 'function' as const, name: 'send_mail', strict: false, parameters: { type: 'object', properties: { to: { type: 'string' }, body: { type: 'string' } } } }];
    const expected = { to: '[EMAIL]', body: 'card [CARD]' };
    try {
      let args = '';
      let summary = '';
      const s = client(KEYS.masker).responses.stream({ model: 'claude', input: 'mail john', tools, reasoning: { effort: 'low' }, max_output_tokens: 2000 });
      s.on('response.function_call_arguments.delta', (e) => (args += e.delta));
      s.on('response.reasoning_summary_text.delta', (e) => (summary += e.delta));
      const final = await s.finalResponse();
      assert.deepEqual(JSON.parse(args), expected);
      assert.equal(summary, 'I should mail [EMAIL] now.');
      const call = final.output.find((o) => o.type === 'function_call');
      assert.deepEqual(call?.type === 'function_call' ? JSON.parse(call.arguments) : undefined, expected);
      const raw = JSON.stringify(final);
      assert.ok(!raw.includes('john.doe') && !raw.includes('4111'), raw);
      const reasoning = final.output.find((o) => o.type === 'reasoning');
      const encrypted = reasoning?.type === 'reasoning' ? reasoning.encrypted_content : undefined;
      assert.ok(encrypted, 'the translated reasoning item carries the thinking blocks');
      assert.doesNotMatch(Buffer.from(encrypted.slice(encrypted.indexOf(':') + 1), 'base64').toString(), /john\.doe/);
      const whole = await client(KEYS.masker).responses.create({ model: 'claude', input: 'mail john', tools, reasoning: { effort: 'low' }, max_output_tokens: 2000 });
      const wc = whole.output.find((o) => o.type === 'function_call');
      assert.deepEqual(wc?.type === 'function_call' ? JSON.parse(wc.arguments) : undefined, expected);
      assert.ok(!JSON.stringify(whole).includes('john.doe'));
    } finally {
      claude.behaviour.toolInput = saved.input;
      claude.behaviour.thinking = saved.thinking;
    }
  });

  it('refuses a key that references a guardrail the gateway does not define (fails closed)', async () => {
    await assertSdkError(ask(KEYS.missing, 'hi'), 500, 'internal_error');
  });

  it('logs and counts decisions by consumer, guardrail, rule and action, never the matched text', async () => {
    await ask(KEYS.cards, 'mail me: jane@corp.example'); // cards-block logs e-mails on the response only
    fake().behaviour.pieces = ['write to jane@corp.example'];
    try {
      await ask(KEYS.cards, 'hi');
    } finally {
      fake().behaviour.pieces = undefined;
    }
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/masker",guardrail="pii-mask",rule="pii:email",action="mask",phase="request"\} [1-9]/);
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/blocker",guardrail="words-block",rule="keywords",action="block",phase="response"\} [1-9]/);
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/cards",guardrail="cards-block",rule="pii:email",action="log",phase="response"\} 1\b/);
    // The log is written asynchronously: wait for the line.
    await waitFor('the decision in the log', async () =>
      (await stack.logs()).some((l) => l['msg'] === 'guardrail decision' && l['consumer'] === 'default/masker' && l['rule'] === 'pii:iban' && typeof l['requestId'] === 'string'),
      10_000,
    );
    const raw = await readFile(stack.gateway.logFile, 'utf8');
    for (const s of [...SECRETS, 'jane@corp.example', 'badword', 'forbidden topic']) assert.ok(!raw.includes(s), `the log contains ${s}`);
  });
});
