import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListSplitter, withoutManagedFields } from './list-stream.js';

/** A list whose items hold the bytes that trip a naive splitter: braces and brackets in strings, escapes, UTF-8. */
function list(n: number): Record<string, unknown> {
  const items = [];
  for (let i = 0; i < n; i++) {
    items.push({
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name: `key-${i}`, namespace: 'ns', managedFields: [{ fieldsV1: { 'f:spec': { 'f:models': {} } }, manager: 'kubectl' }] },
      spec: { description: `a "quoted" {brace} [bracket] \\ back\\slash ü 漢字 🙂 ${i}`, models: ['gpt-4o*', '}]'], limits: { requestsPerMinute: i } },
    });
  }
  return { apiVersion: 'tollgate.dev/v1alpha1', items, kind: 'ApiKeyList', metadata: { continue: 'tok', resourceVersion: '42' } };
}

function split(body: Buffer, cuts: readonly number[]): { items: unknown[]; rest: Record<string, unknown> } {
  const items: unknown[] = [];
  const s = new ListSplitter((item) => items.push(item));
  let from = 0;
  for (const cut of [...cuts, body.length]) {
    // A copy per chunk, then scribbled over: the splitter must not keep views of a chunk's memory.
    const chunk = Buffer.from(body.subarray(from, cut));
    s.push(chunk);
    chunk.fill(0x20);
    from = cut;
  }
  return { items, rest: s.end() };
}

describe('ListSplitter', () => {
  const value = list(50);
  // Items arrive without metadata.managedFields (cut before parsing).
  const expected = (value['items'] as { metadata: Record<string, unknown> }[]).map((i) => {
    const { managedFields: _, ...metadata } = i.metadata;
    return { ...i, metadata };
  });
  for (const [label, body] of [
    ['compact JSON', Buffer.from(JSON.stringify(value))],
    ['indented JSON (what curl gets)', Buffer.from(JSON.stringify(value, null, 2))],
  ] as const) {
    it(`yields every item and the list metadata, in one chunk and in chunks cut anywhere (${label})`, () => {
      const whole = split(body, []);
      assert.deepEqual(whole.items, expected);
      assert.deepEqual(whole.rest, { ...value, items: [] });
      for (const size of [1, 2, 3, 7, 64, 1000]) {
        const cuts: number[] = [];
        for (let c = size; c < body.length; c += size) cuts.push(c);
        const r = split(body, cuts);
        assert.deepEqual(r.items, expected, `chunks of ${size} bytes`);
        assert.deepEqual(r.rest, { ...value, items: [] });
      }
      let seed = 7;
      for (let round = 0; round < 20; round++) {
        const cuts = new Set<number>();
        for (let k = 0; k < 40; k++) cuts.add(1 + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % (body.length - 1)));
        assert.deepEqual(split(body, [...cuts].sort((a, b) => a - b)).items, expected);
      }
    });
  }

  it('handles an empty list, and keys before and after items', () => {
    const r = split(Buffer.from('{"kind":"List","items":[],"metadata":{"resourceVersion":"1"}}'), [9]);
    assert.deepEqual(r.items, []);
    assert.deepEqual(r.rest, { kind: 'List', items: [], metadata: { resourceVersion: '1' } });
    const nulls = split(Buffer.from('{"items":null,"metadata":{"resourceVersion":"2"}}'), []);
    assert.deepEqual(nulls.items, []);
    assert.deepEqual(nulls.rest, { items: null, metadata: { resourceVersion: '2' } });
  });

  it('refuses a body cut short, inside an item or inside the list', () => {
    const body = Buffer.from(JSON.stringify(list(3)));
    for (const end of [body.length - 1, Math.floor(body.length / 2), 20]) {
      const s = new ListSplitter(() => undefined);
      s.push(body.subarray(0, end));
      assert.throws(() => s.end(), /ended in the middle|JSON/);
    }
  });
});

describe('withoutManagedFields', () => {
  const cases: Record<string, unknown>[] = [
    { metadata: { creationTimestamp: 't', managedFields: [{ fieldsV1: { 'f:spec': {} }, manager: 'x]"' }], name: 'a' }, spec: { v: '"managedFields":[' } },
    { metadata: { name: 'a', managedFields: [] } },
    { metadata: { managedFields: [{ a: [[], {}] }] } },
    { metadata: { name: 'no managed fields' }, spec: { s: 'x' } },
  ];
  for (const c of cases) {
    it(`cuts the field and its comma: ${JSON.stringify(c)}`, () => {
      const { managedFields: _, ...metadata } = c['metadata'] as Record<string, unknown>;
      const want = { ...c, metadata };
      assert.deepEqual(JSON.parse(withoutManagedFields(Buffer.from(JSON.stringify(c))).toString()), want);
      assert.deepEqual(JSON.parse(withoutManagedFields(Buffer.from(JSON.stringify(c, null, 2))).toString()), want);
    });
  }
});
