/** Helpers for the routing unit tests: a seeded random source, a capturing logger, fixtures. */
import { Writable } from 'node:stream';
import { resilienceConfig, type ModelRoute, type ProviderEntry, type ResilienceConfig, type RouteTier } from '../config/snapshot.js';
import type { ResilienceSpec } from '../config/types.js';
import { createLogger, type Logger } from '../observability/logger.js';

/** mulberry32: a small deterministic PRNG in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A logger whose JSON lines are kept in `lines`. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('test', sink), lines };
}

export function provider(name: string, opts: Partial<ProviderEntry> = {}): ProviderEntry {
  return {
    name,
    type: 'openai',
    endpoint: { scheme: 'http', authority: `${name}.example:80`, basePath: '/v1' },
    credential: `cred-${name}`,
    apiVersion: undefined,
    priority: 0,
    weight: 1,
    firstByteTimeoutMs: undefined,
    service: undefined,
    ...opts,
  };
}

/** Tiers from providers (grouped by priority, ascending). */
export function tiersOf(...providers: ProviderEntry[]): RouteTier[] {
  const by = new Map<number, ModelRoute[]>();
  for (const p of providers) by.set(p.priority, [...(by.get(p.priority) ?? []), { provider: p, upstreamModel: `${p.name}-model`, limits: [], limitScopeId: `provider:${p.name}:m` }]);
  return [...by.entries()].sort(([a], [b]) => a - b).map(([priority, routes]) => ({ priority, routes, totalWeight: routes.reduce((s, r) => s + r.provider.weight, 0) }));
}

export function config(spec: ResilienceSpec = {}): ResilienceConfig {
  return resilienceConfig(spec);
}

/** A settable clock. */
export function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}
