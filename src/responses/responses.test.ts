import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeyEntry, ModelRoute, RouteTier } from '../config/snapshot.js';
import { pinTiers, storedPath } from '../pipeline/stored-responses.js';
import { mayAccess, MemoryResponseDirectory, type StoredResponse } from './directory.js';
import { MAX_HEAD_BYTES, ResponseIdCapture, stringAtPath } from './id-capture.js';

const entry = (over: Partial<StoredResponse> = {}): StoredResponse => ({ provider: 'default/a', upstreamModel: 'gpt-4.1', model: 'm', consumer: 'default/team', lineage: '.org.team.', ...over });

describe('ResponseIdCapture', () => {
  it('reads the top-level id of a JSON response, whatever comes before it, split anywhere', () => {
    const body = Buffer.from('{"object":"response","meta":{"id":"nested","list":["id",{"id":"x"}]},"n":1.5,"ok":true,"id" : "resp_top","output":[]}');
    for (let cut = 1; cut < body.length; cut += 7) {
      const c = new ResponseIdCapture(false);
      const first = c.push(body.subarray(0, cut));
      const second = c.done ? undefined : c.push(body.subarray(cut));
      assert.equal(first ?? second, 'resp_top', `cut at ${cut}`);
      assert.ok(c.done);
    }
  });

  it('reads response.id from the first event of a stream, split anywhere', () => {
    const stream = Buffer.from('event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_s1","object":"response","tools":[{"id":"t"}]}}\n\nevent: response.in_progress\ndata: {"response":{"id":"other"}}\n\n');
    for (let cut = 1; cut < stream.length; cut += 5) {
      const c = new ResponseIdCapture(true);
      let id = c.push(stream.subarray(0, cut));
      if (!c.done) id = c.push(stream.subarray(cut));
      assert.equal(id, 'resp_s1', `cut at ${cut}`);
    }
  });

  it('gives up on a body without an id, or when the head grows past the bound', () => {
    const none = new ResponseIdCapture(false);
    assert.equal(none.push(Buffer.from('{"object":"list","data":[]}')), undefined);
    assert.ok(none.done);
    const big = new ResponseIdCapture(false);
    big.push(Buffer.from(`{"instructions":"${'x'.repeat(MAX_HEAD_BYTES - 100)}`));
    assert.ok(!big.done);
    big.push(Buffer.from('y'.repeat(1024)));
    assert.ok(big.done);
    assert.equal(big.id, undefined);
  });

  it('stringAtPath: escapes inside strings do not confuse it', () => {
    const b = Buffer.from('{"a":"x\\"}\\\\","id":"r\\u0031"}');
    assert.equal(stringAtPath(b, 0, b.length, ['id']), 'r1');
  });
});

describe('response directory', () => {
  it('the LRU keeps the most recently used entries and forgets expired ones', async () => {
    let now = 1_000;
    const d = new MemoryResponseDirectory(60_000, 2, () => now);
    d.put('a', entry());
    d.put('b', entry());
    assert.ok(await d.get('a')); // a is now the most recent
    d.put('c', entry());
    assert.equal(await d.get('b'), undefined);
    assert.ok(await d.get('a'));
    assert.ok(await d.get('c'));
    now += 60_001;
    assert.equal(await d.get('a'), undefined);
    assert.equal(d.size, 1);
  });

  it('mayAccess: the creating key and its ancestor accounts, never a sibling or another namespace', () => {
    const key = (name: string, lineage: string): KeyEntry => ({ name, lineage }) as KeyEntry;
    const e = entry({ consumer: 'default/team', lineage: '.org.team.' });
    assert.ok(mayAccess(key('default/team', '.org.team.'), e));
    assert.ok(mayAccess(key('default/org', '.org.'), e));
    assert.ok(!mayAccess(key('default/other', '.org.other.'), e));
    assert.ok(!mayAccess(key('default/team2', '.org.team2.'), e), 'a name that only starts like the owner');
    assert.ok(!mayAccess(key('prod/org', '.org.'), e), 'same account name, another namespace');
  });
});

describe('stored-response routing', () => {
  it('storedPath inserts the id and action before the provider query and keeps the client query', () => {
    assert.equal(storedPath('/v1/responses', 'resp_1', 'retrieve', ''), '/v1/responses/resp_1');
    assert.equal(storedPath('/v1/responses', 'resp_1', 'input_items', '?limit=2&order=asc'), '/v1/responses/resp_1/input_items?limit=2&order=asc');
    assert.equal(storedPath('/openai/responses?api-version=2025-04-01-preview', 'resp_1', 'cancel', ''), '/openai/responses/resp_1/cancel?api-version=2025-04-01-preview');
    assert.equal(storedPath('/openai/responses?api-version=v', 'resp_1', 'retrieve', '?stream=true'), '/openai/responses/resp_1?api-version=v&stream=true');
  });

  it('pinTiers: only the storing provider, unless store is false (then it comes first, the rest fail over)', () => {
    const route = (name: string): ModelRoute => ({ provider: { name, weight: 1 }, upstreamModel: `u-${name}` }) as unknown as ModelRoute;
    const tiers: RouteTier[] = [
      { priority: 0, routes: [route('default/a')], totalWeight: 1 },
      { priority: 1, routes: [route('default/b'), route('default/c')], totalWeight: 2 },
    ];
    const pinned = pinTiers(tiers, entry({ provider: 'default/b' }), true);
    assert.deepEqual(pinned?.map((t) => t.routes.map((r) => r.provider.name)), [['default/b']]);
    const loose = pinTiers(tiers, entry({ provider: 'default/b' }), false);
    assert.deepEqual(loose?.map((t) => t.routes.map((r) => r.provider.name)), [['default/b'], ['default/a'], ['default/c']]);
    assert.equal(pinTiers(tiers, entry({ provider: 'default/z' }), true), undefined);
  });
});
