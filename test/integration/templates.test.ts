/**
 * Prompt templates through real Envoy and Tollgate: POST /v1/templates/<name> renders the
 * PromptTemplate and runs it as a chat completion through the normal pipeline (key allow-list,
 * guardrails, limits, routing, usage), streamed or not; bad input and template errors are 400s
 * naming the cause, an unknown template 404, a key not allowed the template's model 403.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashKey } from '../../src/config/snapshot.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { startStack, type Stack } from '../harness/stack.js';

const KEYS = { main: 'sk-templates-main-0001', other: 'sk-templates-other-0002', limited: 'sk-templates-limited-0003' } as const;

const key = (name: string, secret: string, extra = ''): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n  keyHash: "${hashKey(secret)}"\n${extra}---\n`;

const FILES = {
  'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  guardrails:
    - { name: no-secrets, keywords: { action: block, words: [topsecret] } }
`,
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: gpt-4o-mini }, { name: gpt-4o }, { name: shared }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: secondary }
spec:
  type: openai
  endpoint: "{{FAKE:secondary}}"
  models: [{ name: shared }]
`,
  'keys.yaml':
    key('main', KEYS.main, '  guardrails: [no-secrets]\n') +
    key('other-model', KEYS.other, '  models: [gpt-4o]\n') +
    key('limited', KEYS.limited, '  limits: { requestsPerMinute: 1 }\n'),
  'templates.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: PromptTemplate
metadata: { name: reply-to-en }
spec:
  version: "2"
  model: gpt-4o-mini
  parameters: { temperature: 0.3, max_tokens: 300 }
  variables:
    type: object
    required: [text]
    additionalProperties: false
    properties:
      text: { type: string, maxLength: 2000 }
      tone: { type: string, enum: [formal, casual] }
      facts: { type: array, items: { type: string } }
  messages:
    - role: system
      content: "Translate to English{% if tone %} in a {{ tone }} tone{% endif %}."
    - role: user
      content: "{{ text }}{% if facts %} Facts ({{ facts | len }}): {{ facts | slice_to_index_map | jsonify }}{% endif %}"
---
apiVersion: tollgate.dev/v1alpha1
kind: PromptTemplate
metadata: { name: broken-at-render }
spec:
  model: gpt-4o-mini
  messages:
    - { role: user, content: "{{ name }} and {{ nowhere }}" }
---
apiVersion: tollgate.dev/v1alpha1
kind: PromptTemplate
metadata: { name: two-providers }
spec:
  model: shared
  messages:
    - { role: user, content: "{{ q | make_json_object: n | jsonify }}" }
---
apiVersion: tollgate.dev/v1alpha1
kind: PromptTemplate
metadata: { name: elsewhere, namespace: team-b }
spec:
  model: gpt-4o-mini
  messages: [{ role: user, content: hi }]
`,
};

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly type: string };
}

describe('prompt templates (POST /v1/templates/<name>)', () => {
  let stack: Stack;
  const post = (name: string, body: unknown, apiKey: string = KEYS.main): Promise<Response> =>
    fetch(`${stack.baseUrl}/v1/templates/${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const refused = async (res: Response, status: number, code: string): Promise<string> => {
    const text = await res.text();
    assert.equal(res.status, status, text);
    const body = JSON.parse(text) as ErrorBody;
    assert.equal(body.error.code, code, text);
    return body.error.message;
  };
  const lastUpstream = (): Record<string, unknown> | undefined => stack.fakes.primary?.received('/chat/completions').at(-1)?.body as Record<string, unknown> | undefined;

  before(async () => {
    stack = await startStack({ files: FILES, fakes: { primary: {}, secondary: {} } });
  });
  after(() => stack?.stop());

  it('renders the template and the provider receives the rendered chat request', async () => {
    const before = stack.fakes.primary?.received('/chat/completions').length ?? 0;
    const res = await post('reply-to-en', { variables: { text: 'Bonjour', tone: 'formal', facts: ['a', 'b'] } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const answer = JSON.parse(text) as { object: string; choices: { message: { content: string } }[]; usage: { prompt_tokens: number } };
    assert.equal(answer.object, 'chat.completion');
    assert.ok(answer.choices[0]?.message.content);
    assert.equal(stack.fakes.primary?.received('/chat/completions').length, before + 1);
    const upstream = lastUpstream();
    assert.equal(upstream?.['model'], 'gpt-4o-mini');
    assert.equal(upstream?.['temperature'], 0.3);
    assert.equal(upstream?.['max_tokens'], 300);
    assert.deepEqual(upstream?.['messages'], [
      { role: 'system', content: 'Translate to English in a formal tone.' },
      { role: 'user', content: 'Bonjour Facts (2): {"0":"a","1":"b"}' },
    ]);
    assert.equal(upstream?.['variables'], undefined);
  });

  it('stream: true streams the answer as chat completion chunks', async () => {
    const res = await post('reply-to-en', { variables: { text: 'Hallo' }, stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    assert.match(text, /"object":"chat\.completion\.chunk"/);
    assert.match(text, /data: \[DONE\]/);
    const upstream = lastUpstream();
    assert.equal(upstream?.['stream'], true);
    assert.deepEqual(upstream?.['messages'], [
      { role: 'system', content: 'Translate to English.' },
      { role: 'user', content: 'Hallo' },
    ]);
  });

  it('works with the official openai client (its generic post), streamed or not', async () => {
    const client = stack.client(KEYS.main);
    const answer = (await client.post('/templates/reply-to-en', { body: { variables: { text: 'Hej' } } })) as { object: string; choices: { message: { content: string } }[] };
    assert.equal(answer.object, 'chat.completion');
    assert.ok(answer.choices[0]?.message.content);
    const stream = (await client.post('/templates/reply-to-en', { body: { variables: { text: 'Hej' }, stream: true }, stream: true })) as AsyncIterable<{ object: string; choices: { delta: { content?: string } }[] }>;
    let text = '';
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      text += chunk.choices[0]?.delta.content ?? '';
    }
    assert.ok(text.length > 0);
    assert.deepEqual((lastUpstream()?.['messages'] as { content: string }[])[1], { role: 'user', content: 'Hej' });
  });

  it('a model with several providers (the attempt stage, failover) gets the rendered body too', async () => {
    const seen = (): number => (stack.fakes.primary?.received('/chat/completions').length ?? 0) + (stack.fakes.secondary?.received('/chat/completions').length ?? 0);
    const before = seen();
    for (let i = 0; i < 4; i++) {
      const res = await post('two-providers', { variables: { q: 'key', n: i } });
      assert.equal(res.status, 200, await res.text());
    }
    assert.equal(seen(), before + 4);
    const bodies = [...(stack.fakes.primary?.received('/chat/completions') ?? []), ...(stack.fakes.secondary?.received('/chat/completions') ?? [])]
      .map((r) => r.body as { model?: string; messages?: { content: string }[] })
      .filter((b) => b.model === 'shared');
    assert.deepEqual(bodies.map((b) => b.messages?.[0]?.content).sort(), ['{"key":0}', '{"key":1}', '{"key":2}', '{"key":3}']);
  });

  it('input failing the schema is a 400 naming the field, and nothing reaches the provider', async () => {
    const before = stack.fakes.primary?.received('/chat/completions').length ?? 0;
    assert.match(await refused(await post('reply-to-en', { variables: { tone: 'formal' } }), 400, 'invalid_template_input'), /variables\.text: must have required property 'text'/);
    assert.match(await refused(await post('reply-to-en', { variables: { text: 'x', tone: 'rude' } }), 400, 'invalid_template_input'), /variables\.tone/);
    assert.match(await refused(await post('reply-to-en', { variables: { text: 'x', facts: [1] } }), 400, 'invalid_template_input'), /variables\.facts\[0\]: must be string/);
    assert.match(await refused(await post('reply-to-en', '{"variables": '), 400, 'invalid_template_input'), /could not parse/);
    assert.equal(stack.fakes.primary?.received('/chat/completions').length, before);
  });

  it('a template error is a 400, never a 500', async () => {
    assert.match(await refused(await post('broken-at-render', { variables: { name: 'n' } }), 400, 'template_error'), /undefined variable: nowhere/);
  });

  it('an unknown template, or one in another namespace, is a 404; a bad name is an unknown URL; GET is 405', async () => {
    assert.match(await refused(await post('no-such-template', { variables: {} }), 404, 'template_not_found'), /'no-such-template' does not exist/);
    await refused(await post('elsewhere', { variables: {} }), 404, 'template_not_found');
    await refused(await post('Bad_Name', { variables: {} }), 404, 'unknown_url');
    const get = await fetch(`${stack.baseUrl}/v1/templates/reply-to-en`, { headers: { authorization: `Bearer ${KEYS.main}` } });
    await refused(get, 405, 'method_not_allowed');
  });

  it("auth, the key's model allow-list, guardrails and limits apply to the rendered request", async () => {
    await refused(await post('reply-to-en', { variables: { text: 'x' } }, 'sk-not-a-key'), 401, 'invalid_api_key');
    await refused(await post('reply-to-en', { variables: { text: 'x' } }, KEYS.other), 403, 'model_not_allowed');
    await refused(await post('reply-to-en', { variables: { text: 'this is topsecret' } }), 400, 'content_policy_violation');
    const first = await post('reply-to-en', { variables: { text: 'x' } }, KEYS.limited);
    assert.equal(first.status, 200, await first.text());
    await refused(await post('reply-to-en', { variables: { text: 'x' } }, KEYS.limited), 429, 'rate_limit_exceeded');
  });

  it('counts template requests under api="template" and logs the template and its version', async () => {
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_requests_total\{[^}]*api="template"[^}]*\} \d+/);
    await waitFor(
      'an access log line naming the template',
      async () => (await stack.logs()).some((l) => l['msg'] === 'request' && l['template'] === 'reply-to-en' && l['templateVersion'] === '2' && l['status'] === 200),
      10_000,
    );
  });

  it('file mode: a changed template is served after the reload; a broken one is refused and the last good config keeps serving', async () => {
    const changed = FILES['templates.yaml'].replace('content: "Translate to English{% if tone %}', 'content: "Now in English{% if tone %}');
    assert.notEqual(changed, FILES['templates.yaml']);
    await stack.writeConfig('templates.yaml', changed);
    await stack.waitForConfigVersion(2);
    const res = await post('reply-to-en', { variables: { text: 'Ciao' } });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual((lastUpstream()?.['messages'] as { content: string }[])[0], { role: 'system', content: 'Now in English.' });
    await stack.writeConfig('templates.yaml', changed.replace('{{ text }}', '{{ text | no_such_filter }}'));
    await waitFor(
      'the broken template refused',
      async () => (await stack.logs()).some((l) => JSON.stringify(l).includes('spec.messages[1].content: template does not parse')),
      10_000,
    );
    const still = await post('reply-to-en', { variables: { text: 'Ciao' } });
    assert.equal(still.status, 200, await still.text());
  });
});
