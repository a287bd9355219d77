import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IncrementalSnapshotBuilder } from '../config/incremental.js';
import { hashKey, type KeyEntry, type Snapshot } from '../config/snapshot.js';
import { apiKeyYaml, validSnapshot } from '../config/test-fixtures.js';
import { API_VERSION, type ModelProvider } from '../config/types.js';
import { anthropicErrorBody, errorBody, isGatewayError, statusFor, type ClientApi } from '../errors.js';
import { answerModels, listModelsForKey, pageOf, parsePageQuery, type ModelsRequest } from './models-list.js';
import { apiOfRequest, classifyRoute } from './route.js';

/** Two providers created at known times; `m-both` is served by both (the older one counts). */
const provider = (name: string, created: string, models: string[]): string =>
  `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name}, namespace: default, creationTimestamp: "${created}" }
spec:
  type: openai-compatible
  endpoint: http://${name}/v1
  models: [${models.map((m) => `{ name: ${m} }`).join(', ')}]
---
`;
const OLD = '2025-03-01T10:00:00Z';
const NEW = '2026-01-15T08:30:00Z';
const snapshot = validSnapshot(
  provider('old', OLD, ['m-a', 'm-both']) +
    provider('new', NEW, ['m-b', 'm-both', 'm-c', 'm-d', 'm-e']) +
    `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  modelMappings: { alias-a: m-a, ghost: nowhere }
---
` +
    apiKeyYaml('any', `keyHash: "${hashKey('any')}"`) +
    apiKeyYaml('some', `keyHash: "${hashKey('some')}"\nmodels: [m-a, m-b]`),
);
const key = (secret: string): KeyEntry => snapshot.keysByHash.get(hashKey(secret))!;
const seconds = (iso: string): number => Date.parse(iso) / 1000;

/** The 200 body of an answer, parsed; fails on a refusal. */
function ok(request: ModelsRequest, api: ClientApi, k: KeyEntry, s: Snapshot = snapshot): Record<string, unknown> {
  const a = answerModels(request, api, k, s);
  assert.ok(!isGatewayError(a), `refused: ${JSON.stringify(a)}`);
  return JSON.parse(a.body) as Record<string, unknown>;
}
const list = (query = ''): ModelsRequest => ({ kind: 'list-models', query });
const retrieve = (model: string): ModelsRequest => ({ kind: 'retrieve-model', model });

describe('GET /v1/models in OpenAI shape', () => {
  it('lists exactly what listModelsForKey computes, each model created when its oldest provider was', () => {
    const body = ok(list('?limit=1'), 'openai', key('any'));
    assert.equal(body['object'], 'list');
    assert.deepEqual(body['data'], [
      { id: 'alias-a', object: 'model', created: seconds(OLD), owned_by: 'tollgate' },
      { id: 'm-a', object: 'model', created: seconds(OLD), owned_by: 'tollgate' },
      { id: 'm-b', object: 'model', created: seconds(NEW), owned_by: 'tollgate' },
      { id: 'm-both', object: 'model', created: seconds(OLD), owned_by: 'tollgate' },
      { id: 'm-c', object: 'model', created: seconds(NEW), owned_by: 'tollgate' },
      { id: 'm-d', object: 'model', created: seconds(NEW), owned_by: 'tollgate' },
      { id: 'm-e', object: 'model', created: seconds(NEW), owned_by: 'tollgate' },
    ], 'OpenAI lists everything at once, whatever the query');
    const names = (ok(list(), 'openai', key('some'))['data'] as { id: string }[]).map((m) => m.id);
    assert.deepEqual(names, listModelsForKey(key('some'), snapshot));
    assert.deepEqual(names, ['alias-a', 'm-a', 'm-b']);
  });

  it('retrieves one listed model; a name not listed for the key is 404 model_not_found', () => {
    assert.deepEqual(ok(retrieve('alias-a'), 'openai', key('some')), { id: 'alias-a', object: 'model', created: seconds(OLD), owned_by: 'tollgate' });
    for (const name of ['m-c', 'ghost', 'nope', '']) {
      const a = answerModels(retrieve(name), 'openai', key('some'), snapshot);
      assert.ok(isGatewayError(a) && a.code === 'model_not_found', name);
      assert.equal(statusFor('openai', a.code), 404);
      assert.deepEqual(JSON.parse(errorBody(a)), {
        error: { message: `The model '${name}' does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' },
      });
    }
  });
});

describe("GET /v1/models in Anthropic's shape", () => {
  const anthropic = (query: string, k = key('any')): { data: { type: string; id: string; display_name: string; created_at: string }[]; has_more: boolean; first_id: string | null; last_id: string | null } =>
    ok(list(query), 'anthropic', k) as never;

  it('answers model objects with RFC 3339 created_at, 20 per page by default', () => {
    const page = anthropic('');
    assert.deepEqual(page.data.slice(0, 3), [
      { type: 'model', id: 'alias-a', display_name: 'alias-a', created_at: OLD },
      { type: 'model', id: 'm-a', display_name: 'm-a', created_at: OLD },
      { type: 'model', id: 'm-b', display_name: 'm-b', created_at: NEW },
    ]);
    assert.equal(page.data.length, 7);
    assert.deepEqual([page.has_more, page.first_id, page.last_id], [false, 'alias-a', 'm-e']);
  });

  it('pages forward with limit and after_id, backward with before_id; has_more looks in the paging direction', () => {
    const one = anthropic('?limit=3');
    assert.deepEqual([one.data.map((m) => m.id), one.has_more, one.first_id, one.last_id], [['alias-a', 'm-a', 'm-b'], true, 'alias-a', 'm-b']);
    const second = anthropic('?limit=3&after_id=m-b');
    assert.deepEqual([second.data.map((m) => m.id), second.has_more, second.first_id, second.last_id], [['m-both', 'm-c', 'm-d'], true, 'm-both', 'm-d']);
    const last = anthropic('?limit=3&after_id=m-d');
    assert.deepEqual([last.data.map((m) => m.id), last.has_more], [['m-e'], false]);
    const beyond = anthropic('?after_id=m-e');
    assert.deepEqual([beyond.data, beyond.has_more, beyond.first_id, beyond.last_id], [[], false, null, null]);
    const back = anthropic('?limit=2&before_id=m-both');
    assert.deepEqual([back.data.map((m) => m.id), back.has_more, back.first_id], [['m-a', 'm-b'], true, 'm-a']);
    const first = anthropic('?limit=2&before_id=m-a');
    assert.deepEqual([first.data.map((m) => m.id), first.has_more], [['alias-a'], false]);
    // The key's filter applies before paging.
    const some = anthropic('?limit=2', key('some'));
    assert.deepEqual([some.data.map((m) => m.id), some.has_more, some.last_id], [['alias-a', 'm-a'], true, 'm-a']);
  });

  it('a cursor is a position in name order: a cursor that left the list (or never was in it) still pages', () => {
    assert.deepEqual(anthropic('?limit=2&after_id=m-bb').data.map((m) => m.id), ['m-both', 'm-c']);
    assert.deepEqual(anthropic('?limit=2&before_id=m-bb').data.map((m) => m.id), ['m-a', 'm-b']);
  });

  it('walking every page forward and backward at every limit yields the whole list once, in order', () => {
    const all = listModelsForKey(key('any'), snapshot);
    for (let limit = 1; limit <= all.length + 1; limit++) {
      const forward: string[] = [];
      let q = `?limit=${limit}`;
      for (let n = 0; n < 20; n++) {
        const p = anthropic(q);
        forward.push(...p.data.map((m) => m.id));
        if (!p.has_more) break;
        q = `?limit=${limit}&after_id=${encodeURIComponent(p.last_id!)}`;
      }
      assert.deepEqual(forward, all, `forward, limit ${limit}`);
      const backward: string[] = [];
      q = `?limit=${limit}&before_id=${encodeURIComponent('\uffff')}`;
      for (let n = 0; n < 20; n++) {
        const p = anthropic(q);
        backward.unshift(...p.data.map((m) => m.id));
        if (!p.has_more) break;
        q = `?limit=${limit}&before_id=${encodeURIComponent(p.first_id!)}`;
      }
      assert.deepEqual(backward, all, `backward, limit ${limit}`);
    }
  });

  it('refuses a bad limit or both cursors with 400 invalid_request_error in Anthropic shape', () => {
    for (const [query, message] of [
      ['?limit=0', 'limit: Input should be greater than or equal to 1.'],
      ['?limit=1001', 'limit: Input should be less than or equal to 1000.'],
      ['?limit=abc', "limit: Input should be a valid integer, got 'abc'."],
      ['?limit=-1', "limit: Input should be a valid integer, got '-1'."],
      ['?limit=2.5', "limit: Input should be a valid integer, got '2.5'."],
      ['?limit=', "limit: Input should be a valid integer, got ''."],
      ['?after_id=a&before_id=b', 'Only one of after_id and before_id may be given.'],
    ] as const) {
      const a = answerModels(list(query), 'anthropic', key('any'), snapshot);
      assert.ok(isGatewayError(a), query);
      assert.equal(statusFor('anthropic', a.code), 400, query);
      assert.deepEqual(JSON.parse(anthropicErrorBody(a)), { type: 'error', error: { type: 'invalid_request_error', message } }, query);
    }
    assert.deepEqual(parsePageQuery('limit=1000&after_id=x&other=1'), { limit: 1000, afterId: 'x' });
    assert.deepEqual(parsePageQuery(''), { limit: 20 });
  });

  it('retrieves one model; unknown or not allowed is not_found_error', () => {
    assert.deepEqual(ok(retrieve('m-both'), 'anthropic', key('any')), { type: 'model', id: 'm-both', display_name: 'm-both', created_at: OLD });
    const a = answerModels(retrieve('m-c'), 'anthropic', key('some'), snapshot);
    assert.ok(isGatewayError(a));
    assert.equal(statusFor('anthropic', a.code), 404);
    assert.equal((JSON.parse(anthropicErrorBody(a)) as { error: { type: string } }).error.type, 'not_found_error');
  });

  it('pageOf on an empty list', () => {
    assert.deepEqual(pageOf([], { limit: 5 }), { items: [], hasMore: false });
    assert.deepEqual(pageOf([], { limit: 5, beforeId: 'x' }), { items: [], hasMore: false });
  });
});

describe('routes and client API of /v1/models', () => {
  it('classifies the list with its query and one model by its decoded name', () => {
    assert.deepEqual(classifyRoute('GET', '/v1/models?limit=2&after_id=x'), { kind: 'list-models', query: '?limit=2&after_id=x' });
    assert.deepEqual(classifyRoute('GET', '/v1/models/'), { kind: 'list-models', query: '' });
    assert.deepEqual(classifyRoute('GET', '/v1/models/gpt-4o?x=1'), { kind: 'retrieve-model', model: 'gpt-4o' });
    assert.deepEqual(classifyRoute('GET', '/v1/models/org%2Fmodel'), { kind: 'retrieve-model', model: 'org/model' });
    assert.deepEqual(classifyRoute('GET', '/v1/models/org/model'), { kind: 'retrieve-model', model: 'org/model' });
    assert.deepEqual(classifyRoute('GET', '/v1/models/%E0%A4%A'), { kind: 'retrieve-model', model: '%E0%A4%A' });
    for (const [m, p] of [['POST', '/v1/models'], ['DELETE', '/v1/models/x']] as const) {
      const r = classifyRoute(m, p);
      assert.ok(isGatewayError(r) && r.code === 'method_not_allowed', `${m} ${p}`);
    }
  });

  it("is Anthropic's API on /v1/models only when anthropic-version is sent", () => {
    assert.equal(apiOfRequest('/v1/models', '2023-06-01'), 'anthropic');
    assert.equal(apiOfRequest('/v1/models/x?y', '2023-06-01'), 'anthropic');
    assert.equal(apiOfRequest('/v1/models', undefined), 'openai');
    assert.equal(apiOfRequest('/v1/messages', undefined), 'anthropic');
    assert.equal(apiOfRequest('/v1/chat/completions', '2023-06-01'), 'openai');
  });
});

describe('model creation times across config reloads', () => {
  const p = (name: string, models: string[], creationTimestamp?: string): ModelProvider => ({
    apiVersion: API_VERSION,
    kind: 'ModelProvider',
    metadata: { name, namespace: 'default', ...(creationTimestamp ? { creationTimestamp } : {}) },
    spec: { type: 'openai', endpoint: `http://${name}.example/v1`, models: models.map((n) => ({ name: n })) },
  });
  const t0 = Date.now() - 3_600_000;
  const at = (offsetMs: number): Date => new Date(t0 + offsetMs);

  it('a provider without creationTimestamp (file config) keeps its first-seen time until it is removed', async () => {
    const b = new IncrementalSnapshotBuilder();
    b.apply({ kind: 'ModelProvider', name: 'default/f', value: p('f', ['m1']) });
    const first = (await b.build(1, undefined, at(0))).snapshot;
    assert.equal(first.modelLists.createdSeconds.get('m1'), Math.floor(t0 / 1000));
    // A GatewayConfig change and a change of the provider itself rebuild the lists, later.
    b.apply({ kind: 'GatewayConfig', name: 'gateway', value: { modelMappings: { fast: 'm1' } } });
    b.apply({ kind: 'ModelProvider', name: 'default/f', value: p('f', ['m1', 'm2']) });
    const second = (await b.build(2, undefined, at(60_000))).snapshot;
    assert.deepEqual([...second.modelLists.createdSeconds], [['m1', Math.floor(t0 / 1000)], ['m2', Math.floor(t0 / 1000)]]);
    // Another provider joining later does not make m1 younger; its own model is as young as it.
    b.apply({ kind: 'ModelProvider', name: 'default/g', value: p('g', ['m1', 'm3']) });
    const third = (await b.build(3, undefined, at(120_000))).snapshot;
    assert.equal(third.modelLists.createdSeconds.get('m1'), Math.floor(t0 / 1000));
    assert.equal(third.modelLists.createdSeconds.get('m3'), Math.floor((t0 + 120_000) / 1000));
    // Removed and added back: a new provider, first seen again.
    b.apply({ kind: 'ModelProvider', name: 'default/f', value: undefined });
    await b.build(4, undefined, at(180_000));
    b.apply({ kind: 'ModelProvider', name: 'default/f', value: p('f', ['m2']) });
    const fifth = (await b.build(5, undefined, at(240_000))).snapshot;
    assert.equal(fifth.modelLists.createdSeconds.get('m2'), Math.floor((t0 + 240_000) / 1000));
    assert.equal(fifth.modelLists.createdSeconds.get('m1'), Math.floor((t0 + 120_000) / 1000));
  });

  it('a Kubernetes provider counts from its creationTimestamp, whenever it is seen', async () => {
    const b = new IncrementalSnapshotBuilder();
    b.apply({ kind: 'ModelProvider', name: 'default/k', value: p('k', ['m1'], '2025-05-05T05:05:05Z') });
    const s = (await b.build(1, undefined, at(0))).snapshot;
    assert.equal(s.modelLists.createdSeconds.get('m1'), seconds('2025-05-05T05:05:05Z'));
  });
});
