import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { editTopLevel, findTopLevelValues, replaceTopLevelString, stringEnd } from './json-patch.js';

function patch(text: string, value: string): string {
  const raw = Buffer.from(text);
  return replaceTopLevelString(raw, JSON.parse(text) as Record<string, unknown>, 'model', value).toString('utf8');
}

describe('json-patch: replace the top-level model in place', () => {
  it('splices the value and keeps every other byte (formatting, key order)', () => {
    const text = '{ "messages": [ {"role":"user","content":"hi"} ],\n  "model" :  "alias", "stream":true }';
    assert.equal(patch(text, 'gpt-4o-2024'), text.replace('"alias"', '"gpt-4o-2024"'));
  });
  it('leaves nested "model" keys alone', () => {
    const text = '{"tools":[{"model":"inner"}],"metadata":{"model":"meta"},"model":"outer"}';
    const out = JSON.parse(patch(text, 'up')) as { model: string; tools: { model: string }[]; metadata: { model: string } };
    assert.equal(out.model, 'up');
    assert.equal(out.tools[0]!.model, 'inner');
    assert.equal(out.metadata.model, 'meta');
  });
  it('is not fooled by "model" inside strings, escaped quotes or braces in strings', () => {
    const text = '{"messages":[{"role":"user","content":"say \\"model\\": \\"x\\" {[ ok"}],"model":"m"}';
    const out = JSON.parse(patch(text, 'up')) as { model: string; messages: { content: string }[] };
    assert.equal(out.model, 'up');
    assert.equal(out.messages[0]!.content, 'say "model": "x" {[ ok');
    const asValue = '{"content":"model","model":"m"}';
    assert.deepEqual(JSON.parse(patch(asValue, 'up')), { content: 'model', model: 'up' });
  });
  it('escapes the new value as JSON', () => {
    const out = JSON.parse(patch('{"model":"m"}', 'a"b\\c')) as { model: string };
    assert.equal(out.model, 'a"b\\c');
  });
  it('handles values with escapes and unicode in the old value', () => {
    const text = '{"model":"caf\\u00e9-\\"q\\"","x":"é"}';
    assert.deepEqual(JSON.parse(patch(text, 'up')), { model: 'up', x: 'é' });
  });
  it('re-serialises when the key is duplicated, so upstream and gateway agree on one model', () => {
    const text = '{"model":"cheap","model":"expensive"}';
    assert.equal(findTopLevelValues(Buffer.from(text), 'model').length, 2);
    const out = patch(text, 'up');
    assert.equal(out.match(/"model"/g)?.length, 1);
    assert.deepEqual(JSON.parse(out), { model: 'up' });
  });
  it('recognises an escaped spelling of the key ("mod\\u0065l") as the same key', () => {
    const text = '{"model":"a","mod\\u0065l":"b"}';
    assert.equal(findTopLevelValues(Buffer.from(text), 'model').length, 2);
    assert.deepEqual(JSON.parse(patch(text, 'up')), { model: 'up' });
    const single = '{"mod\\u0065l":"b","x":1}';
    assert.deepEqual(JSON.parse(patch(single, 'up')), { model: 'up', x: 1 });
  });
  it('re-serialises when the top-level model is not a string', () => {
    const text = '{"model":5,"model":"m"}';
    assert.deepEqual(JSON.parse(patch(text, 'up')), { model: 'up' });
  });
  it('adds the key when the body has none', () => {
    assert.deepEqual(JSON.parse(patch('{"input":"x"}', 'up')), { input: 'x', model: 'up' });
  });
});

describe('json-patch: the end of a string', () => {
  const end = (text: string): number => stringEnd(Buffer.from(text), 0);
  it('finds the closing quote of short and long strings, escaped quotes and backslashes included', () => {
    for (const inner of ['', 'a', 'x\\"y', 'x\\\\', 'x\\\\\\"y', '\\\\\\\\']) {
      for (const pad of [0, 60, 63, 64, 65, 5000]) {
        const text = `"${'p'.repeat(pad)}${inner}"` + ',"after":"z"';
        const expected = JSON.stringify(JSON.parse(text.slice(0, text.indexOf(',"after"')))).length;
        assert.equal(end(text), expected, `pad ${pad}, inner ${inner}`);
      }
    }
  });
  it('an escaped quote right after a long run of backslashes pairs correctly', () => {
    const text = `"${'a'.repeat(100)}${'\\\\'.repeat(10)}\\"${'b'.repeat(100)}" tail`;
    assert.equal(end(text), text.indexOf('" tail') + 1);
  });
  it('an unterminated string ends at the end of the body', () => {
    assert.equal(end(`"${'a'.repeat(200)}`), 201);
    assert.equal(end(`"${'a'.repeat(200)}\\"`), 203);
  });
  it('a multi-MiB prompt with the model after it is still patched', () => {
    const text = JSON.stringify({ messages: [{ role: 'user', content: 'say "hi" \\ '.repeat(200_000) }], model: 'alias' });
    const out = JSON.parse(patch(text, 'up')) as { model: string; messages: { content: string }[] };
    assert.equal(out.model, 'up');
    assert.equal(out.messages[0]!.content.length, 'say "hi" \\ '.repeat(200_000).length);
  });
});

describe('json-patch: top-level edits for native Messages bodies (Claude on Bedrock / Vertex AI)', () => {
  const edit = (text: string, drop: string[], set: [string, unknown][]): string =>
    editTopLevel(Buffer.from(text), JSON.parse(text) as Record<string, unknown>, { drop, set }).toString('utf8');
  const bedrock: [string, unknown][] = [['anthropic_version', 'bedrock-2023-05-31']];

  it('drops model and stream and adds anthropic_version first, every other byte kept', () => {
    const text = '{ "max_tokens" : 50,\n  "model":"claude", "messages":[{"role":"user","content":"h\\u00e9llo  \\"model\\":1"}], "stream" : true ,"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}';
    const out = edit(text, ['model', 'stream'], bedrock);
    assert.equal(out, '{"anthropic_version":"bedrock-2023-05-31", "max_tokens" : 50,\n  "messages":[{"role":"user","content":"h\\u00e9llo  \\"model\\":1"}], "system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}');
    assert.deepEqual(Object.keys(JSON.parse(out) as object), ['anthropic_version', 'max_tokens', 'messages', 'system']);
  });
  it('drops the last member with the comma before it; a first member with the comma after it', () => {
    assert.deepEqual(JSON.parse(edit('{"messages":[],"model":"m"}', ['model'], bedrock)), { anthropic_version: 'bedrock-2023-05-31', messages: [] });
    assert.equal(edit('{"model":"m","stream":false,"max_tokens":1}', ['model', 'stream'], []), '{"max_tokens":1}');
    assert.equal(edit('{"model":"m"}', ['model'], bedrock), '{"anthropic_version":"bedrock-2023-05-31"}');
  });
  it('replaces an existing string member in place (Vertex count-tokens model) and adds arrays (anthropic_beta)', () => {
    const out = edit('{"model":"alias","messages":[]}', [], [['anthropic_version', 'vertex-2023-10-16'], ['model', 'claude-x@1']]);
    assert.equal(out, '{"anthropic_version":"vertex-2023-10-16","model":"claude-x@1","messages":[]}');
    assert.deepEqual(JSON.parse(edit('{"model":"m","messages":[]}', ['model'], [...bedrock, ['anthropic_beta', ['a-1', 'b-2']]])), { anthropic_version: 'bedrock-2023-05-31', anthropic_beta: ['a-1', 'b-2'], messages: [] });
  });
  it('re-serialises when a key is duplicated or spelled with escapes twice, or a set key holds a non-string', () => {
    const dup = edit('{"model":"a","mod\\u0065l":"b","messages":[]}', ['model'], bedrock);
    assert.deepEqual(JSON.parse(dup), { anthropic_version: 'bedrock-2023-05-31', messages: [] });
    const clash = edit('{"anthropic_version":5,"messages":[]}', [], bedrock);
    assert.deepEqual(JSON.parse(clash), { anthropic_version: 'bedrock-2023-05-31', messages: [] });
    const nested = edit('{"stream":{"x":1},"messages":[]}', ['stream'], []);
    assert.deepEqual(JSON.parse(nested), { messages: [] });
  });
  it('nested keys of the same name are left alone', () => {
    const out = JSON.parse(edit('{"tools":[{"model":"inner","stream":true}],"model":"outer"}', ['model', 'stream'], bedrock)) as Record<string, unknown>;
    assert.deepEqual(out, { anthropic_version: 'bedrock-2023-05-31', tools: [{ model: 'inner', stream: true }] });
  });
});

describe('json-patch: edits at the start of the body', () => {
  it('a first member dropped where the new members go is still spliced, not re-serialised', () => {
    const text = '{"model": "m", "max_tokens": 9,\n "x": "h\\u00e9"}';
    const out = editTopLevel(Buffer.from(text), JSON.parse(text) as Record<string, unknown>, { drop: ['model'], set: [['anthropic_version', 'v']] }).toString('utf8');
    assert.equal(out, '{"anthropic_version":"v","max_tokens": 9,\n "x": "h\\u00e9"}');
  });
});
