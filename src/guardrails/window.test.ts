import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileGuardrail, type CompiledGuardrail } from './compile.js';
import { JsonGuard, SseGuard, type GuardOutput } from './response.js';
import { checkRequest } from './request.js';
import type { Finding } from './scan.js';
import { StreamWindow } from './window.js';

function compiled(spec: Parameters<typeof compileGuardrail>[0]): CompiledGuardrail {
  const g = compileGuardrail(spec);
  assert.ok(!Array.isArray(g), String(g));
  return g;
}

const MASKER = compiled({
  name: 'm',
  keywords: { action: 'mask', words: ['top secret'] },
  pii: { email: 'mask', phone: 'mask', paymentCard: 'mask', iban: 'mask', ipAddress: 'mask', cnResidentId: 'mask', usSsn: 'mask' },
});
const BLOCKER = compiled({ name: 'b', keywords: { action: 'block', words: ['forbidden'] }, pii: { usSsn: 'block' } });

const TEXT = 'To bob@example.org: TOP SECRET card 4111 1111 1111 1111, ssn 123-45-6789, iban DE89370400440532013000, ip 10.1.2.3, id 11010519491231002X, tel +44 20 7946 0958!';
const MASKED = 'To [EMAIL]: **** card [CARD], ssn [SSN], iban [IBAN], ip [IP], id [ID], tel [PHONE]!';

/** Runs `pieces` through a window; returns the released text (or 'BLOCKED'). */
function throughWindow(g: CompiledGuardrail, pieces: readonly string[], reports: Finding[] = []): string {
  const w = new StreamWindow([g], g.window, (f) => reports.push(f));
  let out = '';
  for (const p of pieces) {
    const r = w.push(p);
    if (r.blocked) return out + 'BLOCKED';
    out += r.text;
    assert.ok(w.heldLength <= g.window - 1 + 96, 'the window stays bounded');
  }
  const r = w.flush();
  return r.blocked ? out + 'BLOCKED' : out + r.text;
}

describe('streaming window', () => {
  it('masks exactly as on the whole text when split in two at every position', () => {
    for (let p = 0; p <= TEXT.length; p++) assert.equal(throughWindow(MASKER, [TEXT.slice(0, p), TEXT.slice(p)]), MASKED, `split at ${p}`);
  });

  it('masks exactly as on the whole text when split in three at every pair of positions (every 3rd)', () => {
    for (let p = 0; p <= TEXT.length; p += 3) {
      for (let q = p; q <= TEXT.length; q += 2) assert.equal(throughWindow(MASKER, [TEXT.slice(0, p), TEXT.slice(p, q), TEXT.slice(q)]), MASKED, `split at ${p},${q}`);
    }
  });

  it('masks with one character per chunk, and reports each finding once', () => {
    const reports: Finding[] = [];
    assert.equal(throughWindow(MASKER, [...TEXT], reports), MASKED);
    assert.deepEqual(reports.map((f) => f.rule.detector.rule).sort(), ['keywords', 'pii:cnResidentId', 'pii:email', 'pii:iban', 'pii:ipAddress', 'pii:paymentCard', 'pii:phone', 'pii:usSsn']);
  });

  it('blocks a keyword or SSN split anywhere, before any of it is released', () => {
    for (const text of ['well, the forbidden thing', 'ssn 123-45-6789 ok']) {
      for (let p = 0; p <= text.length; p++) {
        const out = throughWindow(BLOCKER, [text.slice(0, p), text.slice(p)]);
        assert.ok(out.endsWith('BLOCKED'), `split at ${p}: ${out}`);
        assert.ok(!out.includes('forbid') && !out.includes('123-45'), `leaked at ${p}: ${out}`);
      }
    }
  });

  it('holds back at most window - 1 characters', () => {
    const w = new StreamWindow([BLOCKER], BLOCKER.window, () => undefined);
    const r = w.push('a'.repeat(100));
    assert.ok(!r.blocked);
    assert.equal(r.text.length, 100 - (BLOCKER.window - 1));
    assert.equal(w.heldLength, BLOCKER.window - 1);
  });
});

function sse(content: string, extra = ''): string {
  return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}${extra}\n\n`;
}
const FINISH = 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n';

/** Client-side view of a guarded SSE byte stream: the content text and whether an error event came. */
function clientView(bytes: string): { text: string; error: string | undefined; done: boolean } {
  let text = '';
  let error: string | undefined;
  let done = false;
  for (const event of bytes.split('\n\n')) {
    const data = event.startsWith('data: ') ? event.slice(6) : undefined;
    if (data === undefined) continue;
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const obj = JSON.parse(data) as { error?: { code: string }; choices?: { delta?: { content?: string } }[] };
    if (obj.error) error = obj.error.code;
    for (const c of obj.choices ?? []) text += c.delta?.content ?? '';
  }
  return { text, error, done };
}

function runSse(g: CompiledGuardrail, wire: Buffer, cuts: readonly number[]): string {
  const guard = new SseGuard([g], g.window, () => undefined);
  let out = '';
  let last = 0;
  for (const c of [...cuts, wire.length]) {
    const r: GuardOutput = guard.push(wire.subarray(last, c), c === wire.length);
    out += r.body.toString('utf8');
    if (r.kind === 'blocked') return out;
    last = c;
  }
  return out;
}

describe('SSE response guard', () => {
  // Content split over events, and bytes of those events split anywhere (UTF-8 included).
  const pieces = ['Mail bob@exa', 'mple.org — ünïcode ok, TOP ', 'SECRET and 4111 1111 ', '1111 1111 end'];
  const wire = Buffer.from(pieces.map((p) => sse(p)).join('') + FINISH + 'data: [DONE]\n\n');

  it('masks matches split across events, with the byte stream cut at every position', () => {
    for (let p = 0; p <= wire.length; p++) {
      const view = clientView(runSse(MASKER, wire, [p]));
      assert.equal(view.text, 'Mail [EMAIL] — ünïcode ok, **** and [CARD] end', `cut at byte ${p}`);
      assert.ok(view.done);
      assert.equal(view.error, undefined);
    }
  });

  it('releases held text at the end even without finish_reason or [DONE]', () => {
    const view = clientView(runSse(MASKER, Buffer.from(sse('hello bob@example.org')), []));
    assert.equal(view.text, 'hello [EMAIL]');
  });

  it('ends with an error event on a block; nothing blocked is shown', () => {
    const blockWire = Buffer.from(sse('this is forb') + sse('idden text') + FINISH + 'data: [DONE]\n\n');
    for (let p = 0; p <= blockWire.length; p += 7) {
      const out = runSse(BLOCKER, blockWire, [p]);
      const view = clientView(out);
      assert.equal(view.error, 'content_policy_violation', `cut at ${p}`);
      assert.ok(!view.text.includes('forb'), view.text);
      assert.equal(view.done, false);
    }
  });

  it('Anthropic events: masks text deltas split at every byte, keeps event lines, releases at content_block_stop', () => {
    const ev = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const delta = (text: string): string => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
    const wire = Buffer.from(
      ev('message_start', { message: { id: 'm', content: [] } }) +
        ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
        delta('Mail bob@exa') + delta('mple.org, TOP SEC') + delta('RET ok') +
        ev('content_block_stop', { index: 0 }) + ev('message_delta', { delta: { stop_reason: 'end_turn' } }) + ev('message_stop', {}),
    );
    for (let p = 0; p <= wire.length; p += 3) {
      const guard = new SseGuard([MASKER], MASKER.window, () => undefined, 'anthropic');
      const out = guard.push(wire.subarray(0, p), false).body.toString() + guard.push(wire.subarray(p), true).body.toString();
      let text = '';
      for (const event of out.split('\n\n').filter(Boolean)) {
        const [eventLine, dataLine] = event.split('\n');
        const obj = JSON.parse((dataLine ?? '').slice(6)) as { type: string; delta?: { text?: string } };
        assert.equal(eventLine, `event: ${obj.type}`, 'event lines are kept');
        if (obj.type === 'content_block_delta') text += obj.delta?.text ?? '';
      }
      assert.equal(text, 'Mail [EMAIL], **** ok', `cut at ${p}`);
      assert.ok(out.indexOf('content_block_stop') > out.lastIndexOf('content_block_delta'), 'held text is released before the block stops');
    }
    const blocked = new SseGuard([BLOCKER], BLOCKER.window, () => undefined, 'anthropic').push(Buffer.from(delta('so forbid') + delta('den')), false);
    assert.equal(blocked.kind, 'blocked');
    assert.match(blocked.body.toString(), /event: error\ndata: \{"type":"error"/);
  });

  it('Responses events: masks output_text deltas split at every byte, and every event that repeats the whole text', () => {
    let seq = 0;
    const ev = (type: string, data: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
    const ids = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    const full = 'Mail bob@example.org, TOP SECRET ok';
    const part = { type: 'output_text', text: full, annotations: [] };
    const item = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [part] };
    const wire = Buffer.from(
      ev('response.created', { response: { id: 'resp_1', status: 'in_progress', output: [] } }) +
        ev('response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }) +
        ev('response.content_part.added', { ...ids, part: { type: 'output_text', text: '', annotations: [] } }) +
        ['Mail bob@exa', 'mple.org, TOP SEC', 'RET ok'].map((delta) => ev('response.output_text.delta', { ...ids, delta })).join('') +
        ev('response.output_text.done', { ...ids, text: full }) +
        ev('response.content_part.done', { ...ids, part }) +
        ev('response.output_item.done', { output_index: 0, item }) +
        ev('response.completed', { response: { id: 'resp_1', status: 'completed', output: [item], usage: { input_tokens: 3, output_tokens: 9 } } }),
    );
    const masked = 'Mail [EMAIL], **** ok';
    for (let p = 0; p <= wire.length; p += 3) {
      const guard = new SseGuard([MASKER], MASKER.window, () => undefined, 'responses');
      const out = guard.push(wire.subarray(0, p), false).body.toString() + guard.push(wire.subarray(p), true).body.toString();
      assert.ok(!out.includes('bob@') && !/top secret/i.test(out), `nothing unmasked leaves (cut at ${p})`);
      let deltas = '';
      const whole: string[] = [];
      for (const event of out.split('\n\n').filter(Boolean)) {
        const [eventLine, dataLine] = event.split('\n');
        const obj = JSON.parse((dataLine ?? '').slice(6)) as { type: string; delta?: string; text?: string; part?: { text: string }; item?: { content: { text: string }[] }; response?: { output: { content: { text: string }[] }[] } };
        assert.equal(eventLine, `event: ${obj.type}`, 'event lines are kept');
        if (obj.type === 'response.output_text.delta') deltas += obj.delta ?? '';
        if (obj.type === 'response.output_text.done') whole.push(obj.text ?? '');
        if (obj.type === 'response.content_part.done') whole.push(obj.part?.text ?? '');
        if (obj.type === 'response.output_item.done') whole.push(obj.item?.content[0]?.text ?? '');
        if (obj.type === 'response.completed') whole.push(obj.response?.output[0]?.content[0]?.text ?? '');
      }
      assert.equal(deltas, masked, `cut at ${p}`);
      assert.deepEqual(whole, [masked, masked, masked, masked]);
      assert.ok(out.indexOf('response.output_text.done') > out.lastIndexOf('response.output_text.delta'), 'held text is released before the part is done');
    }
    seq = 41;
    const blocked = new SseGuard([BLOCKER], BLOCKER.window, () => undefined, 'responses').push(
      Buffer.from(ev('response.output_text.delta', { ...ids, delta: 'so forbid' }) + ev('response.output_text.delta', { ...ids, delta: 'den' })),
      false,
    );
    assert.equal(blocked.kind, 'blocked');
    assert.match(blocked.body.toString(), /event: error\ndata: \{"type":"error","code":"content_policy_violation","message":"[^"]*guardrail b, rule keywords[^"]*","param":null,"sequence_number":43\}\n\n$/);
    assert.ok(!blocked.body.toString().includes('forbid'), 'the held start of the match never left');
  });

  it('passes usage-only, comment and non-JSON events through unchanged', () => {
    const other = ': keep-alive\n\ndata: {"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\nevent: x\ndata: not json\n\n';
    assert.equal(runSse(MASKER, Buffer.from(other), []), other);
  });
});

describe('non-streamed answers and requests', () => {
  it('masks every choice of a JSON answer and blocks with an error body', () => {
    const body = Buffer.from(JSON.stringify({ id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'mail bob@example.org' } }, { index: 1, message: { content: 'fine' } }] }));
    const g = new JsonGuard([MASKER], () => undefined);
    assert.equal(g.push(body.subarray(0, 10), false), undefined);
    const out = g.push(body.subarray(10), true);
    assert.equal(out?.kind, 'bytes');
    const parsed = JSON.parse(out?.body.toString() ?? '') as { choices: { message: { content: string } }[] };
    assert.equal(parsed.choices[0]?.message.content, 'mail [EMAIL]');
    assert.equal(parsed.choices[1]?.message.content, 'fine');
    const blocked = new JsonGuard([BLOCKER], () => undefined).push(Buffer.from('{"choices":[{"message":{"content":"FORBIDDEN"}}]}'), true);
    assert.equal(blocked?.kind, 'blocked');
    const anthropic = new JsonGuard([MASKER], () => undefined, 'anthropic').push(Buffer.from('{"type":"message","content":[{"type":"text","text":"to bob@example.org"}]}'), true);
    assert.equal(anthropic?.body.toString(), '{"type":"message","content":[{"type":"text","text":"to [EMAIL]"}]}');
    const responses = new JsonGuard([MASKER], () => undefined).push(
      Buffer.from('{"object":"response","output":[{"type":"reasoning","summary":[]},{"type":"message","content":[{"type":"output_text","text":"to bob@example.org","annotations":[]}]}]}'),
      true,
    );
    assert.equal(responses?.body.toString(), '{"object":"response","output":[{"type":"reasoning","summary":[]},{"type":"message","content":[{"type":"output_text","text":"to [EMAIL]","annotations":[]}]}]}');
  });

  it('checks message strings and parts, tool calls, tool results, input and prompt; masks in place', () => {
    const json: Record<string, unknown> = {
      messages: [
        { role: 'system', content: 'top secret' },
        { role: 'user', content: [{ type: 'text', text: 'me: bob@example.org' }, { type: 'image_url', image_url: { url: 'https://x/bob@example.org' } }] },
        { role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{"ssn":"123-45-6789"}' } }] },
        { role: 'tool', content: 'ip 10.0.0.1' },
      ],
      input: ['card 4111111111111111'],
      prompt: 'iban DE89370400440532013000',
    };
    const v = checkRequest(json, [MASKER], () => undefined);
    assert.deepEqual(v, { kind: 'pass', changed: true });
    const text = JSON.stringify(json);
    for (const m of ['"****"', 'me: [EMAIL]', '{\\"ssn\\":\\"[SSN]\\"}', 'ip [IP]', 'card [CARD]', 'iban [IBAN]']) assert.ok(text.includes(m), `${m} in ${text}`);
    assert.ok(text.includes('https://x/bob@example.org'), 'image URLs are not message text');
    const blocked = checkRequest({ messages: [{ role: 'tool', content: 'the FORBIDDEN word' }] }, [BLOCKER], () => undefined);
    assert.equal(blocked.kind, 'blocked');
  });
});
