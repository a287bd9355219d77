/**
 * Tenants by domain: which hostnames a key may be used on (ApiKey.spec.hosts), and which tenant of
 * GatewayConfig.spec.tenants a request's Host belongs to (its own model mappings and guardrails).
 * Host patterns are exact names or `*.example.com` (any name below example.com, not the apex);
 * an exact name wins over a wildcard, a longer wildcard over a shorter one. Compiled per snapshot.
 */
import { ModelMapping } from '../config/mapping.js';
import type { TenantSpec } from '../config/types.js';

/** The host of an `:authority` value: lower-cased, without port (IPv6 brackets kept). */
export function hostOf(authority: string | undefined): string {
  if (!authority) return '';
  let host = authority.trim().toLowerCase();
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close < 0 ? host : host.slice(0, close + 1);
  }
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** Exact names and `*.` suffixes. */
export class HostMatcher {
  private readonly exact: ReadonlySet<string>;
  /** `.example.com` for `*.example.com`, longest first. */
  private readonly suffixes: readonly string[];

  constructor(readonly patterns: readonly string[]) {
    const lower = patterns.map((p) => p.toLowerCase());
    this.exact = new Set(lower.filter((p) => !p.startsWith('*.')));
    this.suffixes = lower.filter((p) => p.startsWith('*.')).map((p) => p.slice(1)).sort((a, b) => b.length - a.length);
  }

  matches(host: string): boolean {
    if (this.exact.has(host)) return true;
    for (const s of this.suffixes) if (host.length > s.length && host.endsWith(s)) return true;
    return false;
  }
}

/** A tenant as the hot path sees it. */
export interface Tenant {
  readonly name: string;
  /** Replaces the global mapping for requests on the tenant's hosts (per-key mappings still come first). */
  readonly mapping: ModelMapping | undefined;
  /** Guardrail names that apply to every request on the tenant's hosts. */
  readonly guardrails: readonly string[];
}

export class TenantIndex {
  private readonly exact = new Map<string, Tenant>();
  private readonly wildcards: { readonly suffix: string; readonly tenant: Tenant }[] = [];
  /** Every tenant, in config order (per-tenant precomputation such as the /v1/models lists). */
  readonly all: readonly Tenant[];

  constructor(specs: readonly TenantSpec[] | undefined) {
    const all: Tenant[] = [];
    for (const spec of specs ?? []) {
      const tenant: Tenant = {
        name: spec.name,
        mapping: spec.modelMappings ? new ModelMapping(spec.modelMappings) : undefined,
        guardrails: spec.guardrails ?? [],
      };
      all.push(tenant);
      for (const h of spec.hosts) {
        const p = h.toLowerCase();
        if (p.startsWith('*.')) this.wildcards.push({ suffix: p.slice(1), tenant });
        else if (!this.exact.has(p)) this.exact.set(p, tenant);
      }
    }
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.all = all;
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.wildcards.length === 0;
  }

  /** The tenant of a host, or undefined (the gateway-wide defaults apply). */
  tenantFor(host: string): Tenant | undefined {
    const t = this.exact.get(host);
    if (t) return t;
    for (const w of this.wildcards) if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.tenant;
    return undefined;
  }
}

/** Two tenants claiming the same host pattern: the result would depend on order, so it is refused. */
export function tenantIssues(specs: readonly TenantSpec[] | undefined): { field: string; message: string }[] {
  const owner = new Map<string, string>();
  const out: { field: string; message: string }[] = [];
  (specs ?? []).forEach((spec, i) => {
    for (const h of spec.hosts) {
      const p = h.toLowerCase();
      const prev = owner.get(p);
      if (prev !== undefined && prev !== spec.name) out.push({ field: `spec.tenants[${i}].hosts`, message: `host ${p} already belongs to tenant ${prev}` });
      owner.set(p, spec.name);
    }
  });
  return out;
}

export const NO_TENANTS = new TenantIndex(undefined);
