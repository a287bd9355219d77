/**
 * External moderation hook of a guardrail, through real Envoy with the official openai client: an
 * OpenAI-moderation-compatible server (a fake at the edge) up, flagging, slow (past the timeout) and
 * down, under failureMode closed and open.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/config/snapshot.js';
import { guardedHandler } from '../../src/dev/fake-listen.js';
import { freePort, waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { startStack, type Stack } from '../harness/stack.js';

/** A moderation endpoint with knobs; records what it was sent. */
class FakeModeration {
  mode: 'clean' | 'flagged' | 'slow' | 'error' = 'clean';
  /** With mode clean: flag / fail (HTTP 500) only when some input contains this text. */
  flagWhen: string | undefined;
  failWhen: string | undefined;
  readonly received: { authorization: string | undefined; body: { model?: string; input?: string[] } }[] = [];
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer(guardedHandler((req, res) => this.handle(req, res)));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { input?: string[] };
    this.received.push({ authorization: req.headers.authorization, body });
    const has = (needle: string | undefined): boolean => needle !== undefined && (body.input ?? []).some((t) => t.includes(needle));
    if (this.mode === 'slow') await new Promise((r) => setTimeout(r, 1500));
    if (res.destroyed) return;
    if (this.mode === 'error' || has(this.failWhen)) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"down"}}');
      return;
    }
    const flagged = this.mode === 'flagged' || has(this.flagWhen);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'modr-1', model: 'omni-moderation-latest', results: [{ flagged, categories: { violence: flagged, hate: false } }] }),
    );
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

const KEYS = { closed: 'sk-mod-closed-01', open: 'sk-mod-open-02', downClosed: 'sk-mod-down-closed-03', downOpen: 'sk-mod-down-open-04' } as const;

function files(modPort: number, deadPort: number): Record<string, string> {
  const hook = (port: number, mode: string): string =>
    `{ endpoint: "http://127.0.0.1:${port}/v1/moderations", model: omni-moderation-latest, credentialEnv: TEST_MODERATION_TOKEN, timeoutMs: 300, failureMode: ${mode} }`;
  const key = (name: string, secret: string, guardrail: string): string =>
    `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n  keyHash: "${hashKey(secret)}"\n  guardrails: [${guardrail}]\n---\n`;
  return {
    'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  guardrails:
    - { name: mod-closed, moderation: ${hook(modPort, 'closed')} }
    - { name: mod-open, moderation: ${hook(modPort, 'open')} }
    - { name: down-closed, moderation: ${hook(deadPort, 'closed')} }
    - { name: down-open, moderation: ${hook(deadPort, 'open')} }
`,
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }]
`,
    'keys.yaml':
      key('closed', KEYS.closed, 'mod-closed') + key('open', KEYS.open, 'mod-open') + key('down-closed', KEYS.downClosed, 'down-closed') + key('down-open', KEYS.downOpen, 'down-open'),
  };
}

describe('external moderation hook', () => {
  let stack: Stack;
  const moderation = new FakeModeration();
  const ask = (k: string, content = 'hello there') => stack.client(k).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
  const upstreamCount = (): number => stack.fakes.primary?.received('/chat/completions').length ?? 0;

  before(async () => {
    await moderation.start();
    stack = await startStack({ files: files(moderation.port, await freePort()), fakes: { primary: {} }, env: { TEST_MODERATION_TOKEN: 'mod-token-1' } });
  });
  after(async () => {
    await stack?.stop();
    await moderation.stop();
  });

  it('sends the request text with the model and token, and lets a clean request through', async () => {
    moderation.mode = 'clean';
    const res = await ask(KEYS.closed, 'is this fine?');
    assert.ok(res.choices[0]);
    const last = moderation.received.at(-1);
    assert.equal(last?.authorization, 'Bearer mod-token-1');
    assert.deepEqual(last?.body, { model: 'omni-moderation-latest', input: ['is this fine?'] });
  });

  it('refuses a flagged request with 400 content_policy_violation; the provider is not called', async () => {
    moderation.mode = 'flagged';
    const before = upstreamCount();
    const err = await assertSdkError(ask(KEYS.closed), 400, 'content_policy_violation');
    assert.match(err.message, /mod-closed/);
    await assertSdkError(ask(KEYS.open), 400, 'content_policy_violation');
    assert.equal(upstreamCount(), before);
    // The log is written asynchronously: wait for the line.
    await waitFor('the moderation decision in the log', async () =>
      (await stack.logs()).some((l) => l['msg'] === 'guardrail decision' && l['rule'] === 'moderation' && JSON.stringify(l['categories']) === '["violence"]'),
      10_000,
    );
  });

  it('a slow hook (past timeoutMs): closed refuses with 503 moderation_unavailable, open lets the request through', async () => {
    moderation.mode = 'slow';
    const started = Date.now();
    await assertSdkError(ask(KEYS.closed), 503, 'moderation_unavailable');
    assert.ok(Date.now() - started < 1400, 'the timeout, not the slow answer, decided');
    const res = await ask(KEYS.open);
    assert.ok(res.choices[0]);
  });

  it('a failing or unreachable hook: closed refuses, open lets the request through', async () => {
    moderation.mode = 'error';
    await assertSdkError(ask(KEYS.closed), 503, 'moderation_unavailable');
    assert.ok((await ask(KEYS.open)).choices[0]);
    await assertSdkError(ask(KEYS.downClosed), 503, 'moderation_unavailable');
    assert.ok((await ask(KEYS.downOpen)).choices[0]);
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/down-open",guardrail="down-open",rule="moderation-unavailable",action="log",phase="request"\} 1\b/);
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/down-closed",guardrail="down-closed",rule="moderation-unavailable",action="block",phase="request"\} 1\b/);
  });
});

describe('external moderation of answers (moderation.responses: nonStreamed)', () => {
  let stack: Stack;
  const moderation = new FakeModeration();
  const ANSWER_KEYS = { closed: 'sk-ans-closed-05', open: 'sk-ans-open-06' } as const;
  const ask = (k: string) => stack.client(k).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'please reply' }] });
  const upstreamCount = (): number => stack.fakes.primary?.received('/chat/completions').length ?? 0;

  before(async () => {
    await moderation.start();
    const hook = (mode: string): string =>
      `{ endpoint: "http://127.0.0.1:${moderation.port}/v1/moderations", timeoutMs: 500, failureMode: ${mode}, responses: nonStreamed }`;
    const key = (name: string, secret: string, guardrail: string): string =>
      `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n  keyHash: "${hashKey(secret)}"\n  guardrails: [${guardrail}]\n---\n`;
    const base = files(moderation.port, await freePort());
    stack = await startStack({
      files: {
        ...base,
        'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  guardrails:
    - { name: ans-closed, moderation: ${hook('closed')} }
    - { name: ans-open, moderation: ${hook('open')} }
`,
        'keys.yaml': key('ans-closed', ANSWER_KEYS.closed, 'ans-closed') + key('ans-open', ANSWER_KEYS.open, 'ans-open'),
      },
      // The fake's answer: "Hello there, the answer is forty-two."
      fakes: { primary: { pieces: ['Hello there, ', 'the answer is ', 'forty-two.'] } },
    });
  });
  after(async () => {
    await stack?.stop();
    await moderation.stop();
  });

  it('sends the answer text to the hook after the request text, and a clean answer reaches the client unchanged', async () => {
    moderation.flagWhen = undefined;
    moderation.failWhen = undefined;
    const sent = moderation.received.length;
    const res = await ask(ANSWER_KEYS.closed);
    assert.equal(res.choices[0]?.message.content, 'Hello there, the answer is forty-two.');
    assert.deepEqual(moderation.received.slice(sent).map((r) => r.body.input), [['please reply'], ['Hello there, the answer is forty-two.']]);
  });

  it('a flagged answer is replaced by 400 content_policy_violation (the provider answered; the client never sees the text)', async () => {
    moderation.flagWhen = 'forty-two';
    moderation.failWhen = undefined;
    const before = upstreamCount();
    for (const k of [ANSWER_KEYS.closed, ANSWER_KEYS.open]) {
      const err = await assertSdkError(ask(k), 400, 'content_policy_violation');
      assert.match(err.message, /response was stopped .*rule moderation/);
      assert.doesNotMatch(err.message, /forty/);
    }
    assert.equal(upstreamCount(), before + 2, 'the requests themselves passed the hook');
  });

  it('a hook failing on the answer: closed withholds it (503 moderation_unavailable), open lets it through', async () => {
    moderation.flagWhen = undefined;
    moderation.failWhen = 'forty-two';
    await assertSdkError(ask(ANSWER_KEYS.closed), 503, 'moderation_unavailable');
    assert.equal((await ask(ANSWER_KEYS.open)).choices[0]?.message.content, 'Hello there, the answer is forty-two.');
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/ans-closed",guardrail="ans-closed",rule="moderation-unavailable",action="block",phase="response"\} 1\b/);
    assert.match(metrics, /tollgate_guardrail_decisions_total\{consumer="default\/ans-open",guardrail="ans-open",rule="moderation-unavailable",action="log",phase="response"\} 1\b/);
  });

  it('streams cannot be held for the hook: closed refuses a streamed request before the provider is called, open streams it unmoderated (logged)', async () => {
    moderation.flagWhen = 'forty-two';
    moderation.failWhen = undefined;
    const before = upstreamCount();
    const stream = (k: string) => stack.client(k).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'please reply' }], stream: true });
    const err = await assertSdkError(stream(ANSWER_KEYS.closed), 400, 'content_policy_violation');
    assert.match(err.message, /cannot check a streamed answer; send the request with "stream": false/);
    assert.equal(upstreamCount(), before);
    let text = '';
    for await (const chunk of await stream(ANSWER_KEYS.open)) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello there, the answer is forty-two.', 'streamed, not judged by the hook');
    await waitFor('the skipped stream in the log', async () =>
      (await stack.logs()).some((l) => l['msg'] === 'guardrail decision' && l['guardrail'] === 'ans-open' && l['reason'] === 'streamed answer' && l['action'] === 'log'),
      10_000,
    );
  });
});
