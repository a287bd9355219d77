import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IncrementalSnapshotBuilder, type ResourceChange } from './incremental.js';
import { catalogFor } from './model-lists.js';
import { PersistentMap } from './persistent-map.js';
import { Slicer } from './slicer.js';
import { buildSnapshot, hashKey, type KeyEntry, type ResourceProblem, type Snapshot } from './snapshot.js';
import { API_VERSION, type ApiKey, type ModelProvider, type SecretData } from './types.js';

/** Small deterministic PRNG (mulberry32), so a failing sequence can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['default', 'team'];
const KEY_NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const SECRET_NAMES = ['s1', 's2', 's3'];
const PROVIDER_NAMES = ['p1', 'p2', 'p3'];
const CLEAR_KEYS = ['sk-1', 'sk-2', 'sk-3', 'sk-4'];

function randomChange(r: () => number): ResourceChange {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
  const ns = pick(NAMESPACES);
  const remove = r() < 0.2;
  const roll = r();
  if (roll < 0.6) {
    const name = pick(KEY_NAMES);
    const accountOnly = r() < 0.15;
    const hashSpec = accountOnly ? {} : r() < 0.6 ? { keyHash: hashKey(pick(CLEAR_KEYS)) } : { secretRef: { name: pick(SECRET_NAMES), key: pick(['key', 'other']) } };
    const limits =
      r() < 0.5
        ? {
            requestsPerMinute: pick([10, 20]),
            ...(r() < 0.3 ? { tokensPerMonth: 1000 } : {}),
            ...(r() < 0.3 ? { costPerMonth: pick(['5', '0.5']) } : {}),
            ...(r() < 0.2 ? { costPerDay: '1' } : {}),
            ...(r() < 0.2 ? { perModel: [{ model: pick(['gpt-*', 'm1']), tokensPerDay: 5 }] } : {}),
            ...(r() < 0.15 ? { monthTimeZone: pick(['Europe/Berlin', 'Mars/Olympus']) } : {}),
          }
        : undefined;
    const key: ApiKey = {
      apiVersion: API_VERSION,
      kind: 'ApiKey',
      metadata: { name, namespace: ns, creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z']) },
      spec: {
        ...hashSpec,
        ...(accountOnly ? { accountOnly: true } : {}),
        ...(r() < 0.5 ? { parent: pick(KEY_NAMES) } : {}),
        ...(r() < 0.5 ? { models: r() < 0.5 ? ['gpt-4o*'] : ['m1', 'm2'] } : {}),
        ...(r() < 0.2 ? { modelMappings: { fast: 'm1' } } : {}),
        ...(r() < 0.2 ? { disabled: true } : {}),
        ...(limits ? { limits } : {}),
      },
    };
    return { kind: 'ApiKey', name: `${ns}/${name}`, value: remove ? undefined : key };
  }
  if (roll < 0.8) {
    const name = pick(SECRET_NAMES);
    const data = new Map<string, string>([['key', pick(CLEAR_KEYS)]]);
    if (r() < 0.3) data.set('other', pick(CLEAR_KEYS));
    const secret: SecretData = { namespace: ns, name, data };
    return { kind: 'Secret', name: `${ns}/${name}`, value: remove ? undefined : secret };
  }
  if (roll < 0.95) {
    const name = pick(PROVIDER_NAMES);
    const provider: ModelProvider = {
      apiVersion: API_VERSION,
      kind: 'ModelProvider',
      // (Always a creationTimestamp: without one the incremental builder counts from when it first saw the provider.)
      metadata: { name, namespace: ns, creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z']) },
      spec: {
        type: 'openai',
        endpoint: `http://${name}.example/v1`,
        priority: pick([0, 1]),
        weight: pick([1, 2]),
        ...(r() < 0.5 ? { credentialSecretRef: { name: pick(SECRET_NAMES), key: 'key' } } : {}),
        models:
          r() < 0.5
            ? [{ name: 'm1', ...(r() < 0.5 ? { pricing: { input: pick(['1', '2.5']), output: '4', ...(r() < 0.2 ? { currency: 'EUR' } : {}) } } : {}) }, { name: 'm2', upstreamModel: 'up-m2', limits: { requestsPerMinute: 5 } }]
            : [{ name: 'm1' }],
      },
    };
    return { kind: 'ModelProvider', name: `${ns}/${name}`, value: remove ? undefined : provider };
  }
  return {
    kind: 'GatewayConfig',
    name: 'gateway',
    value: remove
      ? undefined
      : {
          modelMappings: { [pick(['fast', 'cheap'])]: 'm1' },
          resilience: { maxAttempts: pick([1, 2, 3]) },
          ...(r() < 0.5 ? { tenants: [{ name: 't', hosts: ['t.example'], ...(r() < 0.5 ? { modelMappings: { fast: 'm2', m1: pick(['gone', 'm2']) } } : {}) }] } : {}),
          ...(r() < 0.5 ? { pricing: { ...(r() < 0.3 ? { currency: 'EUR' } : {}), models: [{ model: pick(['m*', 'up-*']), input: pick(['0.1', '3']), output: '1' }] } } : {}),
        },
  };
}

/** A comparable view of a key entry (matchers and mappings hold closures, so compare their sources). */
function entryView(e: KeyEntry | undefined): unknown {
  if (!e) return undefined;
  const m = e.allowedModels as unknown as { matchesAll: boolean; exact: Set<string>; patterns: { source: string }[] };
  const map = e.mapping as unknown as { exact: Map<string, string>; wildcards: { source: string; target: string }[] };
  return {
    name: e.name,
    disabled: e.disabled,
    expiresAtMs: e.expiresAtMs,
    allowed: [m.matchesAll, [...m.exact].sort(), m.patterns.map((p) => p.source)],
    mapping: [[...map.exact], map.wildcards.map((w) => [w.source, w.target])],
    lineage: e.lineage,
    scopes: e.limitScopes.map((s) => ({ id: s.id, rules: s.rules, perModel: s.perModel.map((p) => [p.pattern, p.rules]), tz: s.monthTimeZone })),
    hasLimits: e.hasLimits,
    hasTokenLimits: e.hasTokenLimits,
    midStreamPolicy: e.midStreamPolicy,
  };
}

function snapshotView(s: Snapshot): unknown {
  const sortedEntries = (m: ReadonlyMap<string, KeyEntry>): unknown[] =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, entryView(v)]);
  return {
    keysByHash: sortedEntries(s.keysByHash),
    keysByName: sortedEntries(s.keysByName),
    sizes: [s.keysByHash.size, s.keysByName.size],
    routes: [...s.routesByModel.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([model, tiers]) => [
        model,
        tiers.map((t) => ({
          priority: t.priority,
          totalWeight: t.totalWeight,
          routes: t.routes.map((r) => ({ p: r.provider, up: r.upstreamModel, limits: r.limits, scope: r.limitScopeId, price: r.price })),
        })),
      ]),
    servedModels: s.servedModels,
    modelLists: [undefined, ...s.tenants.all].map((t) => {
      const c = catalogFor(s.modelLists, t);
      return { candidates: c.candidates, routable: c.routable, mapping: [...c.mapping.exactEntries()] };
    }),
    modelCreated: [...s.modelLists.createdSeconds].sort(([a], [b]) => (a < b ? -1 : 1)),
    mapping: [...s.globalMapping.exactEntries()],
    resilience: s.resilience,
    currency: s.currency,
    admissionPrice: [...s.admissionPrice.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
  };
}

const problemsView = (ps: readonly ResourceProblem[]): string[] => ps.map((p) => JSON.stringify(p)).sort();

describe('incremental snapshot builder', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`equals a full rebuild after every step of a random change sequence (seed ${seed})`, async () => {
      const r = rng(seed);
      const builder = new IncrementalSnapshotBuilder();
      const keys = new Map<string, ApiKey>();
      const providers = new Map<string, ModelProvider>();
      const secrets = new Map<string, SecretData>();
      let gateway: ResourceChange['value'];
      let kept: { snapshot: Snapshot; view: unknown } | undefined;
      for (let step = 0; step < 400; step++) {
        const change = randomChange(r);
        builder.apply(change);
        const target: Map<string, unknown> | undefined =
          change.kind === 'ApiKey' ? keys : change.kind === 'ModelProvider' ? providers : change.kind === 'Secret' ? secrets : undefined;
        if (target) {
          if (change.value) target.set(change.name, change.value);
          else target.delete(change.name);
        } else gateway = change.value;
        if (r() < 0.4) continue; // several changes per build, as a debounced burst
        const incremental = await builder.build(step, new Slicer(r() < 0.5 ? 0 : 0.001));
        const full = buildSnapshot(
          {
            apiKeys: [...keys.values()],
            providers: [...providers.values()],
            secrets: [...secrets.values()],
            ...(gateway ? { gatewayConfig: gateway as never } : {}),
          },
          step,
        );
        assert.deepEqual(snapshotView(incremental.snapshot), snapshotView(full.snapshot), `seed ${seed} step ${step}`);
        assert.deepEqual(problemsView(incremental.problems), problemsView(full.problems), `problems, seed ${seed} step ${step}`);
        assert.equal(builder.problemCount, full.problems.length);
        if (kept) assert.deepEqual(snapshotView(kept.snapshot), kept.view, 'an earlier snapshot never changes');
        if (!kept || r() < 0.05) kept = { snapshot: incremental.snapshot, view: snapshotView(incremental.snapshot) };
      }
    });
  }

  it('reports which resources changed their problem', async () => {
    const builder = new IncrementalSnapshotBuilder();
    const key = (name: string, parent?: string): ApiKey => ({
      apiVersion: API_VERSION,
      kind: 'ApiKey',
      metadata: { name, namespace: 'default' },
      spec: { keyHash: hashKey(name), ...(parent ? { parent } : {}) },
    });
    builder.apply({ kind: 'ApiKey', name: 'default/child', value: key('child', 'acct') });
    let result = await builder.build(1);
    assert.deepEqual([...result.changedProblems], ['ApiKey/default/child']);
    assert.equal(result.snapshot.keysByHash.size, 0);
    builder.apply({ kind: 'ApiKey', name: 'default/acct', value: key('acct') });
    result = await builder.build(2);
    assert.deepEqual([...result.changedProblems], ['ApiKey/default/child'], 'the parent appeared: the child is served again');
    assert.equal(result.snapshot.keysByName.get('default/child')?.lineage, '.acct.child.');
    assert.equal(result.recomputedKeys, 2);
  });
});

describe('persistent map', () => {
  it('behaves like a Map and leaves earlier versions untouched', async () => {
    const r = rng(42);
    const model = new Map<string, number>();
    let map = PersistentMap.empty<number>();
    const history: [PersistentMap<number>, [string, number][]][] = [];
    for (let round = 0; round < 50; round++) {
      const changes = new Map<string, number | undefined>();
      const n = round % 10 === 0 ? 5000 : 1 + Math.floor(r() * 20);
      for (let i = 0; i < n; i++) {
        const k = `k${Math.floor(r() * 3000)}`;
        const v = r() < 0.3 ? undefined : Math.floor(r() * 100);
        changes.set(k, v);
      }
      for (const [k, v] of changes) {
        if (v === undefined) model.delete(k);
        else model.set(k, v);
      }
      map = round % 2 === 0 ? map.update(changes) : await map.updateSliced(changes, new Slicer(0.001));
      assert.equal(map.size, model.size);
      assert.deepEqual(new Map(map), model);
      for (const k of ['k1', 'k2', 'k2999']) assert.equal(map.get(k), model.get(k));
      history.push([map, [...model.entries()].sort()]);
    }
    for (const [old, entries] of history) assert.deepEqual([...old.entries()].sort(), entries);
  });
});
