import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseResources } from '../config/parse.js';
import { buildSnapshot } from '../config/snapshot.js';
import type { PromptTemplate, PromptTemplateSpec } from '../config/types.js';
import { compileTemplates, isRenderError, TemplateCompiler, OUTPUT_LIMIT_BYTES, renderRequest, type CompiledTemplate, type TemplateProblem } from './compile.js';

function template(spec: Partial<PromptTemplateSpec>, name = 'reply'): PromptTemplate {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'PromptTemplate',
    metadata: { name, namespace: 'team-a' },
    spec: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...spec },
  };
}

function compile(spec: Partial<PromptTemplateSpec>): CompiledTemplate {
  const problems: TemplateProblem[] = [];
  const index = compileTemplates([template(spec)], problems);
  assert.deepEqual(problems, []);
  const t = index.byName.get('team-a/reply');
  assert.ok(t);
  return t;
}

function render(t: CompiledTemplate, body: unknown): Record<string, unknown> {
  const out = renderRequest(t, Buffer.from(JSON.stringify(body)));
  if (isRenderError(out)) assert.fail(`render error: ${out.message}`);
  return JSON.parse(out.toString('utf8')) as Record<string, unknown>;
}

function renderFails(t: CompiledTemplate, body: unknown): { reason: string; message: string } {
  const out = renderRequest(t, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
  assert.ok(isRenderError(out), 'expected a render error');
  return out;
}

const REPLY: Partial<PromptTemplateSpec> = {
  version: '3',
  model: 'gpt-4o-mini',
  parameters: { temperature: 0.2, max_tokens: 200 },
  variables: {
    type: 'object',
    required: ['text', 'tone'],
    properties: {
      text: { type: 'string', maxLength: 1000 },
      tone: { type: 'string', enum: ['formal', 'casual'] },
      points: { type: 'array', items: { type: 'string' } },
      customer: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
    },
    additionalProperties: false,
  },
  messages: [
    { role: 'system', content: 'Answer in English, {{ tone }} tone.' },
    { role: 'user', content: '{{ text }}{% if points %} ({{ points | len }} points: {{ points | jsonify }}){% endif %}' },
  ],
};

describe('prompt templates: rendering', () => {
  it('renders every message with the input and adds the model and default parameters', () => {
    const chat = render(compile(REPLY), { variables: { text: 'Bonjour', tone: 'formal', points: ['a', 'b'] } });
    assert.deepEqual(chat, {
      temperature: 0.2,
      max_tokens: 200,
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer in English, formal tone.' },
        { role: 'user', content: 'Bonjour (2 points: ["a","b"])' },
      ],
    });
  });

  it("the schema's defaults fill absent input fields before rendering", () => {
    const t = compile({
      variables: { type: 'object', properties: { tone: { type: 'string', default: 'formal' } } },
      messages: [{ role: 'user', content: '{{ tone }}' }],
    });
    assert.equal((render(t, { variables: {} })['messages'] as { content: string }[])[0]?.content, 'formal');
    assert.equal((render(t, { variables: { tone: 'casual' } })['messages'] as { content: string }[])[0]?.content, 'casual');
  });

  it('stream: true asks for a stream; absent or false does not', () => {
    const t = compile(REPLY);
    assert.equal(render(t, { variables: { text: 'x', tone: 'casual' }, stream: true })['stream'], true);
    assert.equal(render(t, { variables: { text: 'x', tone: 'casual' }, stream: false })['stream'], undefined);
  });

  it('filters: len, jsonify, make_json_object, slice_to_index_map', () => {
    const t = compile({
      messages: [
        {
          role: 'user',
          content:
            '{{ name | len }}|{{ items | len }}|{{ obj | len }}|{{ obj | jsonify }}|{{ "a" | make_json_object: 1, "b", name | jsonify }}|{{ items | slice_to_index_map | jsonify }}|{{ name | upcase }}',
        },
      ],
    });
    const chat = render(t, { variables: { name: 'ada', items: ['x', 'y', 'z'], obj: { k: 1, j: [2] } } });
    const content = (chat['messages'] as { content: string }[])[0]?.content;
    assert.equal(content, '3|3|2|{"k":1,"j":[2]}|{"a":1,"b":"ada"}|{"0":"x","1":"y","2":"z"}|ADA');
  });

  it('input failing the schema names the field', () => {
    const t = compile(REPLY);
    assert.match(renderFails(t, { variables: { tone: 'formal' } }).message, /variables\.text: must have required property 'text'/);
    assert.match(renderFails(t, { variables: { text: 1, tone: 'formal' } }).message, /variables\.text: must be string/);
    assert.match(renderFails(t, { variables: { text: 'x', tone: 'rude' } }).message, /variables\.tone: must be equal to one of the allowed values/);
    assert.match(renderFails(t, { variables: { text: 'x', tone: 'formal', points: ['a', 2] } }).message, /variables\.points\[1\]: must be string/);
    assert.match(renderFails(t, { variables: { text: 'x', tone: 'formal', customer: {} } }).message, /variables\.customer\.name: must have required property/);
    assert.match(renderFails(t, { variables: { text: 'x', tone: 'formal', extra: 1 } }).message, /variables\.extra: must NOT have additional properties/);
    assert.equal(renderFails(t, { variables: { tone: 'formal' } }).reason, 'invalid_input');
  });

  it('a body that is not {variables, stream} is refused, never thrown', () => {
    const t = compile(REPLY);
    assert.match(renderFails(t, '{"variables":').message, /could not parse/);
    assert.match(renderFails(t, [1]).message, /must be a JSON object/);
    assert.match(renderFails(t, { variables: [] }).message, /'variables' must be a JSON object/);
    assert.match(renderFails(t, { variables: {}, model: 'gpt-5' }).message, /Unknown field 'model'/);
    assert.match(renderFails(t, { variables: {}, stream: 'yes' }).message, /'stream' must be true or false/);
  });

  it('an undefined variable outside if is a template error (strict variables); inside if it is false', () => {
    const t = compile({ messages: [{ role: 'user', content: '{% if missing %}yes{% else %}no{% endif %} {{ other }}' }] });
    const err = renderFails(t, { variables: {} });
    assert.equal(err.reason, 'template');
    assert.match(err.message, /undefined variable: other/);
    const ok = render(t, { variables: { other: 'o' } });
    assert.equal((ok['messages'] as { content: string }[])[0]?.content, 'no o');
  });

  it('sandbox: include and render read no file; prototype properties are not reachable', () => {
    const inc = compile({ messages: [{ role: 'user', content: "{% include '/etc/passwd' %}" }] });
    assert.equal(renderFails(inc, { variables: {} }).reason, 'template');
    const rnd = compile({ messages: [{ role: 'user', content: "{% render '../../package.json' %}" }] });
    assert.equal(renderFails(rnd, { variables: {} }).reason, 'template');
    const proto = compile({ messages: [{ role: 'user', content: '{% if x.constructor %}leak{% else %}safe{% endif %}' }] });
    assert.equal((render(proto, { variables: { x: {} } })['messages'] as { content: string }[])[0]?.content, 'safe');
  });

  it('render time and output size are capped (400, not a hang or a 500)', () => {
    const slow = compile({ messages: [{ role: 'user', content: '{% for a in (1..3000) %}{% for b in (1..3000) %}{{ b }}{% endfor %}{% endfor %}' }] });
    const started = Date.now();
    const err = renderFails(slow, { variables: {} });
    assert.ok(Date.now() - started < 2000, 'render stopped early');
    assert.ok(err.reason === 'template' || err.reason === 'too_large', err.reason);
    const big = compile({ messages: [{ role: 'user', content: '{% for a in (1..40) %}{{ s }}{% endfor %}' }] });
    const huge = 'x'.repeat(Math.ceil(OUTPUT_LIMIT_BYTES / 20));
    assert.match(renderFails(big, { variables: { s: huge } }).message, /more than|memory|limit/i);
  });
});

describe('prompt templates: config', () => {
  it('a template that does not parse, or a variables schema Ajv refuses, is not served and names the field', () => {
    const problems: TemplateProblem[] = [];
    const index = compileTemplates(
      [
        template({ messages: [{ role: 'user', content: '{% if x %}unclosed' }] }, 'bad-liquid'),
        template({ variables: { type: 'object', properties: { a: { type: 'strin' } } } }, 'bad-schema'),
        template({ variables: { type: 'array' } }, 'not-object'),
        template({}, 'good'),
      ],
      problems,
    );
    assert.deepEqual([...index.byName.keys()], ['team-a/good']);
    assert.deepEqual(
      problems.map((p) => [p.name, p.message.split(':')[0]]),
      [
        ['team-a/bad-liquid', 'spec.messages[0].content'],
        ['team-a/bad-schema', 'spec.variables'],
        ['team-a/not-object', 'spec.variables.type'],
      ],
    );
  });

  it('recompiles only templates that changed; two templates may use the same $id', () => {
    const compiler = new TemplateCompiler();
    const withId = (name: string, max: number): PromptTemplate =>
      template({ variables: { $id: 'https://example.test/input', type: 'object', properties: { q: { type: 'string', maxLength: max } } } }, name);
    const a = withId('a', 5);
    const b = withId('b', 10);
    const first = compiler.compile([a, b], []);
    const problems: TemplateProblem[] = [];
    const b2 = withId('b', 1);
    const second = compiler.compile([a, b2], problems);
    assert.deepEqual(problems, []);
    assert.equal(second.byName.get('team-a/a'), first.byName.get('team-a/a'), 'unchanged: the same compiled template');
    assert.notEqual(second.byName.get('team-a/b'), first.byName.get('team-a/b'));
    const b2c = second.byName.get('team-a/b');
    assert.ok(b2c && isRenderError(renderRequest(b2c, Buffer.from('{"variables":{"q":"xy"}}'))));
    const ac = second.byName.get('team-a/a');
    assert.ok(ac && !isRenderError(renderRequest(ac, Buffer.from('{"variables":{"q":"xy"}}'))));
    assert.equal(compiler.compile([], []).byName.size, 0);
  });

  it('file documents are parsed and validated (CEL rules included) into the snapshot', () => {
    const doc = (name: string, spec: unknown): { source: string; doc: unknown } => ({
      source: 'templates.yaml',
      doc: { apiVersion: 'tollgate.dev/v1alpha1', kind: 'PromptTemplate', metadata: { name, namespace: 'team-a' }, spec },
    });
    const parsed = parseResources([
      doc('ok', { model: 'gpt-4o-mini', version: '1', messages: [{ role: 'user', content: '{{ q }}' }], parameters: { temperature: 0.5 } }),
      doc('no-user', { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'x' }] }),
      doc('both-max', { model: 'm', messages: [{ role: 'user', content: 'x' }], parameters: { max_tokens: 1, max_completion_tokens: 2 } }),
      doc('hot', { model: 'm', messages: [{ role: 'user', content: 'x' }], parameters: { temperature: 3 } }),
    ]);
    assert.deepEqual(
      parsed.issues.map((i) => `${i.resource}: ${i.field}: ${i.message}`),
      [
        'PromptTemplate team-a/no-user: spec.messages: at least one message must have role user',
        'PromptTemplate team-a/both-max: spec.parameters: set max_tokens or max_completion_tokens, not both',
        'PromptTemplate team-a/hot: spec.parameters.temperature: must be <= 2',
      ],
    );
    const { snapshot, problems } = buildSnapshot(parsed.resources, 1);
    assert.deepEqual(problems, []);
    assert.equal(snapshot.templates.byName.get('team-a/ok')?.version, '1');
  });
});
