import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArgumentsWindow, checkArguments } from './arguments.js';
import { compileGuardrail, type CompiledGuardrail } from './compile.js';
import { checkRequest } from './request.js';
import { JsonGuard, SseGuard, type GuardOutput } from './response.js';
import type { Finding } from './scan.js';

function compiled(spec: Parameters<typeof compileGuardrail>[0]): CompiledGuardrail {
  const g = compileGuardrail(spec);
  assert.ok(!Array.isArray(g), String(g));
  return g;
}

/** A mask with every character JSON must escape, so a careless splice would break the arguments. */
const MASKER = compiled({
  name: 'm',
  mask: 'x"\\y\n',
  keywords: { action: 'mask', words: ['top secret'] },
  pii: { email: 'mask', phone: 'mask', paymentCard: 'mask', iban: 'mask', ipAddress: 'mask', usSsn: 'mask' },
});
const BLOCKER = compiled({ name: 'b', keywords: { action: 'block', words: ['forbidden'] } });

// Escapes inside strings (\n, \", \u0040 for "@", \u00e9), a card written as a JSON number, nested values.
const ARGS = '{"to":"bob@example.org","note":"line\\nTOP\\u0020SECRET call +44 20 7946 0958 caf\\u00e9","q":"say \\"hi\\"","cc":["al\\u0069ce\\u0040example.com"],"n":4111111111111111,"ok":true,"ip":"10.1.2.3"}';
const EXPECTED = { to: '[EMAIL]', note: 'line\n**** call [PHONE] café', q: 'say "hi"', cc: ['[EMAIL]'], n: '[CARD]', ok: true, ip: '[IP]' };

/** Runs argument deltas through a window; the accumulated text, or 'BLOCKED' appended. */
function stream(g: CompiledGuardrail, pieces: readonly string[]): string {
  const w = new ArgumentsWindow([g], g.window, () => undefined);
  let out = '';
  for (const p of pieces) {
    const r = w.push(p);
    if (r.blocked) return out + 'BLOCKED';
    out += r.text;
    assert.ok(w.heldLength <= g.window + 16, 'the window stays bounded');
  }
  const r = w.flush();
  return r.blocked ? out + 'BLOCKED' : out + r.text;
}

describe('tool-call arguments', () => {
  it('masks inside JSON strings (decoded, escapes included) and numbers; the result parses to the masked values', () => {
    const r = checkArguments(ARGS, [MASKER], () => undefined);
    assert.ok(!r.blocked);
    assert.deepEqual(JSON.parse(r.text), { ...EXPECTED, note: 'line\nx"\\y\n call [PHONE] café' });
    const std = compiled({ name: 's', keywords: { action: 'mask', words: ['top secret'] }, pii: { email: 'mask', phone: 'mask', paymentCard: 'mask', ipAddress: 'mask' } });
    assert.deepEqual(JSON.parse((checkArguments(ARGS, [std], () => undefined) as { text: string }).text), EXPECTED);
  });

  it('split in two at every position: the accumulated arguments stay valid JSON and equal masking the whole', () => {
    const whole = (checkArguments(ARGS, [MASKER], () => undefined) as { text: string }).text;
    for (let p = 0; p <= ARGS.length; p++) {
      const out = stream(MASKER, [ARGS.slice(0, p), ARGS.slice(p)]);
      assert.deepEqual(JSON.parse(out), JSON.parse(whole), `split at ${p}`);
    }
  });

  it('one character per delta, and three pieces at many pairs of positions: still valid and equal', () => {
    const whole = JSON.parse((checkArguments(ARGS, [MASKER], () => undefined) as { text: string }).text) as unknown;
    assert.deepEqual(JSON.parse(stream(MASKER, [...ARGS])), whole);
    for (let p = 0; p <= ARGS.length; p += 5) {
      for (let q = p; q <= ARGS.length; q += 7) assert.deepEqual(JSON.parse(stream(MASKER, [ARGS.slice(0, p), ARGS.slice(p, q), ARGS.slice(q)])), whole, `split at ${p},${q}`);
    }
  });

  it('every prefix the client holds is a prefix of the final arguments (nothing is rewritten later)', () => {
    const w = new ArgumentsWindow([MASKER], MASKER.window, () => undefined);
    let out = '';
    const prefixes: string[] = [];
    for (const ch of ARGS) {
      const r = w.push(ch);
      assert.ok(!r.blocked);
      out += r.text;
      prefixes.push(out);
    }
    const r = w.flush();
    assert.ok(!r.blocked);
    out += r.text;
    for (const p of prefixes) assert.ok(out.startsWith(p));
    assert.doesNotMatch(out, /bob@|alice|7946|4111|10\.1\.2/);
  });

  it('blocks a keyword split across deltas at every position, before any of it is released', () => {
    const args = '{"q":"the FORBIDDEN plan","k":1}';
    for (let p = 0; p <= args.length; p++) {
      const out = stream(BLOCKER, [args.slice(0, p), args.slice(p)]);
      assert.ok(out.endsWith('BLOCKED'), `split at ${p}: ${out}`);
      assert.ok(!/forbid/i.test(out.slice(0, -7)), `leaked at ${p}: ${out}`);
    }
  });

  it('arguments that are not JSON are checked and masked as raw text', () => {
    const r = checkArguments('send top secret to bob@example.org now', [MASKER], () => undefined);
    assert.deepEqual(r, { blocked: undefined, text: 'send x"\\y\n to [EMAIL] now' });
    assert.equal(stream(MASKER, ['send top sec', 'ret to bob@exa', 'mple.org now']), 'send x"\\y\n to [EMAIL] now');
    // Numbers and spaces look like JSON tokens until a second value follows: still one phone number.
    for (const text of ['0044 20 7946 0958', '+44 20 7946 0958', 'true +44 20 7946 0958']) {
      for (let p = 0; p <= text.length; p++) assert.match(stream(MASKER, [text.slice(0, p), text.slice(p)]), /^(true )?\[PHONE\]$/, `${text} split at ${p}`);
    }
  });

  it('reports each finding once, whole or streamed', () => {
    const whole: Finding[] = [];
    checkArguments(ARGS, [MASKER], (f) => whole.push(f));
    const streamed: Finding[] = [];
    const w = new ArgumentsWindow([MASKER], MASKER.window, (f) => streamed.push(f));
    for (const ch of ARGS) w.push(ch);
    w.flush();
    const rules = (fs: Finding[]): string[] => fs.map((f) => f.rule.detector.rule).sort();
    assert.deepEqual(rules(streamed), rules(whole));
    assert.deepEqual(rules(whole), ['keywords', 'pii:email', 'pii:email', 'pii:ipAddress', 'pii:paymentCard', 'pii:phone']);
  });
});

// ---- streamed answers: the three front doors' event formats ----

function feed(guard: SseGuard, wire: string, cut: number): { out: string; blocked: boolean } {
  const bytes = Buffer.from(wire);
  let out = '';
  for (const [a, b, end] of [
    [0, cut, false],
    [cut, bytes.length, true],
  ] as const) {
    const r: GuardOutput = guard.push(bytes.subarray(a, b), end);
    out += r.body.toString('utf8');
    if (r.kind === 'blocked') return { out, blocked: true };
  }
  return { out, blocked: false };
}

function dataOf(bytes: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const event of bytes.split('\n\n')) {
    const line = event.split('\n').find((l) => l.startsWith('data: '));
    if (!line || line === 'data: [DONE]') continue;
    out.push(JSON.parse(line.slice(6)) as Record<string, unknown>);
  }
  return out;
}

type ChatDelta = { content?: string; reasoning_content?: string; refusal?: string; tool_calls?: { index: number; function?: { arguments?: string } }[] };

/** What the OpenAI SDK accumulates from chat chunks: content, reasoning, refusal, each tool call's arguments. */
function chatAccumulate(bytes: string): { content: string; reasoning: string; refusal: string; args: string[]; error: boolean } {
  const acc = { content: '', reasoning: '', refusal: '', args: [] as string[], error: false };
  for (const obj of dataOf(bytes)) {
    if (obj['error']) acc.error = true;
    for (const c of (obj['choices'] ?? []) as { delta?: ChatDelta }[]) {
      const d = c.delta ?? {};
      acc.content += d.content ?? '';
      acc.reasoning += d.reasoning_content ?? '';
      acc.refusal += d.refusal ?? '';
      for (const t of d.tool_calls ?? []) acc.args[t.index] = (acc.args[t.index] ?? '') + (t.function?.arguments ?? '');
    }
  }
  return acc;
}

const ENV = '"id":"c1","object":"chat.completion.chunk","created":1,"model":"m"';
const chunk = (delta: unknown, finish: string | null = null): string => `data: {${ENV},"choices":[{"index":0,"delta":${JSON.stringify(delta)},"finish_reason":${JSON.stringify(finish)}}]}\n\n`;

describe('streamed answers: reasoning, refusal and tool-call arguments', () => {
  const second = '{"city":"Paris","contact":"+44 20 7946 0958"}';
  const pieces = [ARGS.slice(0, 9), ARGS.slice(9, 40), ARGS.slice(40, 41), ARGS.slice(41, 90), ARGS.slice(90)];
  const chatWire =
    chunk({ role: 'assistant', content: null }) +
    chunk({ reasoning_content: 'Mail bob@exa' }) +
    chunk({ reasoning_content: 'mple.org said the TOP SEC' }) +
    chunk({ reasoning_content: 'RET thing.' }) +
    chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'send', arguments: '' } }] }) +
    pieces.map((p) => chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] })).join('') +
    chunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'call', arguments: second.slice(0, 30) } }] }) +
    chunk({ tool_calls: [{ index: 1, function: { arguments: second.slice(30) } }] }) +
    chunk({}, 'tool_calls') +
    'data: [DONE]\n\n';
  const std = compiled({ name: 's', keywords: { action: 'mask', words: ['top secret'] }, pii: { email: 'mask', phone: 'mask', paymentCard: 'mask', ipAddress: 'mask' } });

  it('chat: reasoning_content and every tool call masked, with the byte stream cut at every position; arguments stay valid JSON', () => {
    for (let p = 0; p <= chatWire.length; p += 3) {
      const { out, blocked } = feed(new SseGuard([std], std.window, () => undefined), chatWire, p);
      assert.ok(!blocked);
      const acc = chatAccumulate(out);
      assert.equal(acc.reasoning, 'Mail [EMAIL] said the **** thing.', `cut ${p}`);
      assert.deepEqual(JSON.parse(acc.args[0] as string), EXPECTED, `cut ${p}`);
      assert.deepEqual(JSON.parse(acc.args[1] as string), { city: 'Paris', contact: '[PHONE]' });
    }
  });

  it('chat: tool calls past index 127 keep their own windows: each call accumulates its own masked JSON', () => {
    const calls = 200;
    const args = (i: number): string => `{"n":${i},"to":"user${i}@example.org"}`;
    let wire = '';
    for (let i = 0; i < calls; i++) {
      const a = args(i);
      wire += chunk({ tool_calls: [{ index: i, id: `call_${i}`, type: 'function', function: { name: 'send', arguments: a.slice(0, 12) } }] });
      wire += chunk({ tool_calls: [{ index: i, function: { arguments: a.slice(12) } }] });
    }
    wire += chunk({}, 'tool_calls') + 'data: [DONE]\n\n';
    const { out, blocked } = feed(new SseGuard([std], std.window, () => undefined), wire, 0);
    assert.ok(!blocked);
    const acc = chatAccumulate(out);
    assert.equal(acc.args.length, calls);
    for (let i = 0; i < calls; i++) assert.deepEqual(JSON.parse(acc.args[i] as string), { n: i, to: '[EMAIL]' }, `call ${i}`);
  });

  it('chat: a blocked keyword in tool arguments ends the stream with an error event, none of it released', () => {
    const wire = chunk({ tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '{"q":"the forb' } }] }) + chunk({ tool_calls: [{ index: 0, function: { arguments: 'idden plan"}' } }] }) + chunk({}, 'tool_calls');
    const { out, blocked } = feed(new SseGuard([BLOCKER], BLOCKER.window, () => undefined), wire, 0);
    assert.ok(blocked);
    const acc = chatAccumulate(out);
    assert.ok(acc.error);
    assert.doesNotMatch(acc.args.join(''), /forb/);
  });

  it('chat: refusal deltas and reasoning blocks (block action) are checked like content', () => {
    const wire = chunk({ refusal: 'I cannot mail bob@' }) + chunk({ refusal: 'example.org' }) + chunk({}, 'stop') + 'data: [DONE]\n\n';
    const acc = chatAccumulate(feed(new SseGuard([std], std.window, () => undefined), wire, 10).out);
    assert.equal(acc.refusal, 'I cannot mail [EMAIL]');
    const r = feed(new SseGuard([BLOCKER], BLOCKER.window, () => undefined), chunk({ reasoning_content: 'forbi' }) + chunk({ reasoning_content: 'dden' }) + chunk({}, 'stop'), 0);
    assert.ok(r.blocked);
    assert.doesNotMatch(chatAccumulate(r.out).reasoning, /forbi/);
  });

  it('chat: without [DONE] or finish_reason, held arguments are released at the end of the body', () => {
    const wire = chunk({ tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '{"to":"bob@example.org"}' } }] });
    const acc = chatAccumulate(feed(new SseGuard([std], std.window, () => undefined), wire, 5).out);
    assert.deepEqual(JSON.parse(acc.args[0] as string), { to: '[EMAIL]' });
  });

  it('Anthropic Messages: input_json_delta and thinking_delta masked per block, cut at every position', () => {
    const ev = (type: string, data: unknown): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    const wire =
      ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }) +
      ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'ask bob@ex' } }) +
      ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'ample.org' } }) +
      ev('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      ev('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 't', name: 'send', input: {} } }) +
      pieces.map((p) => ev('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: p } })).join('') +
      ev('content_block_stop', { type: 'content_block_stop', index: 1 }) +
      ev('message_stop', { type: 'message_stop' });
    for (let p = 0; p <= wire.length; p += 7) {
      const { out } = feed(new SseGuard([std], std.window, () => undefined, 'anthropic'), wire, p);
      let thinking = '';
      let json = '';
      for (const o of dataOf(out)) {
        const d = o['delta'] as { thinking?: string; partial_json?: string } | undefined;
        if (o['type'] !== 'content_block_delta' || !d) continue;
        thinking += d.thinking ?? '';
        json += d.partial_json ?? '';
      }
      assert.equal(thinking, 'ask [EMAIL]', `cut ${p}`);
      assert.deepEqual(JSON.parse(json), EXPECTED, `cut ${p}`);
    }
  });

  it('Responses API: function_call_arguments and reasoning summary deltas masked, and every event that repeats them', () => {
    const ev = (data: Record<string, unknown>): string => `event: ${String(data['type'])}\ndata: ${JSON.stringify(data)}\n\n`;
    const item = { id: 'fc_1', type: 'function_call', call_id: 'call_1', name: 'send', arguments: ARGS, status: 'completed' };
    const reasoning = { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: 'mail bob@example.org' }] };
    const wire =
      ev({ type: 'response.reasoning_summary_text.delta', item_id: 'rs_1', output_index: 0, summary_index: 0, delta: 'mail bob@' }) +
      ev({ type: 'response.reasoning_summary_text.delta', item_id: 'rs_1', output_index: 0, summary_index: 0, delta: 'example.org' }) +
      ev({ type: 'response.reasoning_summary_text.done', item_id: 'rs_1', output_index: 0, summary_index: 0, text: 'mail bob@example.org' }) +
      ev({ type: 'response.reasoning_summary_part.done', item_id: 'rs_1', output_index: 0, summary_index: 0, part: reasoning.summary[0] }) +
      ev({ type: 'response.output_item.done', output_index: 0, item: reasoning }) +
      pieces.map((p) => ev({ type: 'response.function_call_arguments.delta', item_id: 'fc_1', output_index: 1, delta: p })).join('') +
      ev({ type: 'response.function_call_arguments.done', item_id: 'fc_1', output_index: 1, arguments: ARGS }) +
      ev({ type: 'response.output_item.done', output_index: 1, item }) +
      ev({ type: 'response.completed', response: { id: 'r', object: 'response', output: [reasoning, item] } });
    for (let p = 0; p <= wire.length; p += 11) {
      const { out } = feed(new SseGuard([std], std.window, () => undefined, 'responses'), wire, p);
      assert.doesNotMatch(out, /bob@|7946|4111/, `cut ${p}`);
      let args = '';
      let summary = '';
      for (const o of dataOf(out)) {
        if (o['type'] === 'response.function_call_arguments.delta') args += o['delta'] as string;
        if (o['type'] === 'response.reasoning_summary_text.delta') summary += o['delta'] as string;
        if (o['type'] === 'response.function_call_arguments.done') assert.deepEqual(JSON.parse(o['arguments'] as string), EXPECTED);
        if (o['type'] === 'response.completed') {
          const output = (o['response'] as { output: { arguments?: string; summary?: { text: string }[] }[] }).output;
          assert.deepEqual(JSON.parse(output[1]?.arguments as string), EXPECTED);
          assert.equal(output[0]?.summary?.[0]?.text, 'mail [EMAIL]');
        }
      }
      assert.deepEqual(JSON.parse(args), EXPECTED, `cut ${p}`);
      assert.equal(summary, 'mail [EMAIL]');
    }
  });
});

describe('non-streamed answers and requests: tool calls, refusals, reasoning', () => {
  const std = compiled({ name: 's', keywords: { action: 'mask', words: ['top secret'] }, pii: { email: 'mask', phone: 'mask', paymentCard: 'mask', ipAddress: 'mask' } });
  const body = (obj: unknown, g: CompiledGuardrail, api: 'openai' | 'anthropic' = 'openai'): GuardOutput | undefined => new JsonGuard([g], () => undefined, api).push(Buffer.from(JSON.stringify(obj)), true);

  it('chat: tool-call arguments (valid JSON after masking), refusal and reasoning_content', () => {
    const r = body({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: 'no, bob@example.org', reasoning_content: 'TOP SECRET', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: ARGS } }] } }] }, std);
    assert.equal(r?.kind, 'bytes');
    const m = (JSON.parse(r.body.toString()) as { choices: { message: { refusal: string; reasoning_content: string; tool_calls: { function: { arguments: string } }[] } }[] }).choices[0]?.message;
    assert.equal(m?.refusal, 'no, [EMAIL]');
    assert.equal(m?.reasoning_content, '****');
    assert.deepEqual(JSON.parse(m?.tool_calls[0]?.function.arguments as string), EXPECTED);
    const blocked = body({ choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"q":"Forbidden"}' } }] } }] }, BLOCKER);
    assert.equal(blocked?.kind, 'blocked');
    assert.doesNotMatch(blocked?.body.toString() ?? '', /forbidden/i);
  });

  it('Anthropic: tool_use input (an object) and thinking; Responses: function_call arguments and refusal parts', () => {
    const a = body({ content: [{ type: 'thinking', thinking: 'bob@example.org', signature: 's' }, { type: 'tool_use', id: 't', name: 'f', input: JSON.parse(ARGS) as unknown }] }, std, 'anthropic');
    const ac = (JSON.parse(a?.body.toString() ?? '') as { content: { thinking?: string; input?: unknown }[] }).content;
    assert.equal(ac[0]?.thinking, '[EMAIL]');
    assert.deepEqual(ac[1]?.input, EXPECTED);
    const r = body({ object: 'response', output: [{ type: 'function_call', arguments: ARGS }, { type: 'message', content: [{ type: 'refusal', refusal: 'ask bob@example.org' }] }] }, std);
    const out = (JSON.parse(r?.body.toString() ?? '') as { output: { arguments?: string; content?: { refusal: string }[] }[] }).output;
    assert.deepEqual(JSON.parse(out[0]?.arguments as string), EXPECTED);
    assert.equal(out[1]?.content?.[0]?.refusal, 'ask [EMAIL]');
  });

  it('requests: tool messages, earlier tool calls (still valid JSON), Responses function_call_output and function_call, Anthropic tool_use and tool_result', () => {
    const chat = {
      messages: [
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: ARGS } }] },
        { role: 'tool', tool_call_id: 'c', content: 'sent to bob@example.org' },
      ],
    };
    assert.equal(checkRequest(chat, [std], () => undefined).kind, 'pass');
    assert.deepEqual(JSON.parse(chat.messages[0]?.tool_calls?.[0]?.function.arguments as string), EXPECTED);
    assert.equal(chat.messages[1]?.content, 'sent to [EMAIL]');
    const responses = {
      input: [
        { type: 'function_call', call_id: 'c', name: 'f', arguments: '{"to":"bob@example.org"}' },
        { type: 'function_call_output', call_id: 'c', output: 'TOP SECRET delivered' },
        { type: 'function_call_output', call_id: 'd', output: [{ type: 'input_text', text: 'call +44 20 7946 0958' }] },
      ],
    };
    assert.equal(checkRequest(responses, [std], () => undefined).kind, 'pass');
    assert.deepEqual(JSON.parse(responses.input[0]?.arguments as string), { to: '[EMAIL]' });
    assert.equal(responses.input[1]?.output, '**** delivered');
    assert.deepEqual(responses.input[2]?.output, [{ type: 'input_text', text: 'call [PHONE]' }]);
    const anthropic = {
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { to: 'bob@example.org', n: 4111111111111111 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'ip 10.1.2.3' }] }] },
      ],
    };
    assert.equal(checkRequest(anthropic, [std], () => undefined).kind, 'pass');
    assert.deepEqual(anthropic.messages[0]?.content[0], { type: 'tool_use', id: 't', name: 'f', input: { to: '[EMAIL]', n: '[CARD]' } });
    assert.deepEqual(anthropic.messages[1]?.content[0], { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'ip [IP]' }] });
    const refused = checkRequest({ input: [{ type: 'function_call_output', call_id: 'c', output: 'the forbidden file' }] }, [BLOCKER], () => undefined);
    assert.equal(refused.kind, 'blocked');
  });
});

describe('the gateway\'s own encrypted_content (Claude thinking on the Responses API)', () => {
  it('masks the thinking inside it, whole and in stream events, so decoding it does not reveal what the summary masked', async () => {
    const { encryptedThinking, thinkingOf } = await import('../providers/openai/responses.js');
    const std = compiled({ name: 's', pii: { email: 'mask' } });
    const item = { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: 'ask bob@example.org' }], encrypted_content: encryptedThinking([{ type: 'thinking', thinking: 'ask bob@example.org', signature: 'sig' }]) };
    const r = new JsonGuard([std], () => undefined).push(Buffer.from(JSON.stringify({ object: 'response', output: [item] })), true);
    const out = (JSON.parse(r?.body.toString() ?? '') as { output: { encrypted_content: string }[] }).output[0];
    assert.deepEqual(thinkingOf(out?.encrypted_content), [{ type: 'thinking', thinking: 'ask [EMAIL]', signature: 'sig' }]);
    const wire = `event: response.output_item.done\ndata: ${JSON.stringify({ type: 'response.output_item.done', output_index: 0, item })}\n\n`;
    const s = new SseGuard([std], std.window, () => undefined, 'responses').push(Buffer.from(wire), true);
    const ev = dataOf(s.body.toString())[0] as { item: { encrypted_content: string } };
    assert.deepEqual(thinkingOf(ev.item.encrypted_content), [{ type: 'thinking', thinking: 'ask [EMAIL]', signature: 'sig' }]);
    // Another provider's opaque value is left alone.
    const other = new JsonGuard([std], () => undefined).push(Buffer.from(JSON.stringify({ output: [{ type: 'reasoning', summary: [], encrypted_content: 'gAAAA-opaque' }] })), true);
    assert.match(other?.body.toString() ?? '', /gAAAA-opaque/);
  });
});

describe('a Responses stream with many parts', () => {
  it('each part keeps its own window to its done event, past 128 parts (parallel tool calls): every part\'s argument deltas are its masked JSON, sent before its done', () => {
    const std = compiled({ name: 's', pii: { email: 'mask' } });
    const ev = (data: Record<string, unknown>): string => `event: ${String(data['type'])}\ndata: ${JSON.stringify(data)}\n\n`;
    const parts = 200;
    let wire = '';
    for (let i = 0; i < parts; i++) {
      const ids = { item_id: `fc_${i}`, output_index: i };
      wire += ev({ type: 'response.function_call_arguments.delta', ...ids, delta: '{"to":"bob@' });
      wire += ev({ type: 'response.function_call_arguments.delta', ...ids, delta: 'example.org"}' });
      wire += ev({ type: 'response.function_call_arguments.done', ...ids, arguments: '{"to":"bob@example.org"}' });
    }
    wire += ev({ type: 'response.completed', response: { id: 'r', object: 'response', output: [] } });
    const guard = new SseGuard([std], std.window, () => undefined, 'responses');
    const out = guard.push(Buffer.from(wire), true).body.toString('utf8');
    assert.doesNotMatch(out, /bob@/);
    const args = new Map<string, string>();
    const done = new Set<string>();
    for (const o of dataOf(out)) {
      const id = String(o['item_id']);
      if (o['type'] === 'response.function_call_arguments.delta') {
        assert.ok(!done.has(id), `a delta of ${id} after its done event`);
        args.set(id, (args.get(id) ?? '') + String(o['delta']));
      }
      if (o['type'] === 'response.function_call_arguments.done') done.add(id);
    }
    for (let i = 0; i < parts; i++) assert.deepEqual(JSON.parse(args.get(`fc_${i}`) ?? 'null'), { to: '[EMAIL]' }, `part ${i}`);
  });
});

describe('an Anthropic stream with many content blocks', () => {
  it('blocks past index 127 (web search citations, many tool calls) keep their own windows: each block\'s deltas carry its own masked text, none after its stop', () => {
    const std = compiled({ name: 's', pii: { email: 'mask' } });
    const ev = (data: Record<string, unknown>): string => `event: ${String(data['type'])}\ndata: ${JSON.stringify(data)}\n\n`;
    const blocks = 200;
    let wire = ev({ type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', content: [], model: 'c', usage: { input_tokens: 1, output_tokens: 0 } } });
    for (let i = 0; i < blocks; i++) {
      const tool = i % 2 === 1;
      wire += ev({ type: 'content_block_start', index: i, content_block: tool ? { type: 'tool_use', id: `t${i}`, name: 'send', input: {} } : { type: 'text', text: '' } });
      const parts = tool ? ['{"to":"bob@', 'example.org"}'] : ['mail bob@', 'example.org'];
      for (const p of parts) wire += ev({ type: 'content_block_delta', index: i, delta: tool ? { type: 'input_json_delta', partial_json: p } : { type: 'text_delta', text: p } });
      wire += ev({ type: 'content_block_stop', index: i });
    }
    wire += ev({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }) + ev({ type: 'message_stop' });
    const out = new SseGuard([std], std.window, () => undefined, 'anthropic').push(Buffer.from(wire), true).body.toString('utf8');
    assert.doesNotMatch(out, /bob@/);
    const texts = new Map<number, string>();
    const stopped = new Set<number>();
    for (const o of dataOf(out)) {
      const index = o['index'] as number;
      if (o['type'] === 'content_block_delta') {
        assert.ok(!stopped.has(index), `a delta of block ${index} after its stop`);
        const d = o['delta'] as Record<string, string>;
        texts.set(index, (texts.get(index) ?? '') + (d['text'] ?? d['partial_json'] ?? ''));
      }
      if (o['type'] === 'content_block_stop') stopped.add(index);
    }
    for (let i = 0; i < blocks; i++) {
      if (i % 2 === 1) assert.deepEqual(JSON.parse(texts.get(i) ?? 'null'), { to: '[EMAIL]' }, `block ${i}`);
      else assert.equal(texts.get(i), 'mail [EMAIL]', `block ${i}`);
    }
  });
});

describe('tool-call arguments that run on in whitespace', () => {
  it('whitespace after a number is not held without bound (a model stuck writing newlines): released once past a token\'s length, still valid JSON, the number still checked', () => {
    const std = compiled({ name: 's', pii: { email: 'mask', paymentCard: 'mask' } });
    const w = new ArgumentsWindow([std], std.window, () => undefined);
    const textOf = (r: ReturnType<ArgumentsWindow['push']>): string => {
      if (r.blocked) throw new Error('blocked');
      return r.text;
    };
    let out = textOf(w.push('{"n":4111111111111111'));
    for (let i = 0; i < 2000; i++) {
      out += textOf(w.push('\n \n '));
      assert.ok(w.heldLength <= 1024 + std.window, `held ${w.heldLength} characters`);
    }
    out += textOf(w.push(',"to":"bob@example.org"}'));
    out += textOf(w.flush());
    assert.deepEqual(JSON.parse(out), { n: '[CARD]', to: '[EMAIL]' });
    assert.equal((checkArguments(`{"n":4111111111111111${'\n '.repeat(4000)},"to":"x"}`, [std], () => undefined) as { text: string }).text.replace(/\s/g, ''), '{"n":"[CARD]","to":"x"}');
  });
});
