/**
 * IP allow-lists (ApiKey.spec.allowedCidrs): CIDR parsing and matching for IPv4 and IPv6, built once
 * per snapshot. Addresses are kept as bigints (128 bits for IPv6, 32 for IPv4; an IPv4-mapped IPv6
 * client address `::ffff:a.b.c.d` matches IPv4 ranges), so a check is a mask and a compare per range.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed address: family and value. */
export interface IpAddress {
  readonly v6: boolean;
  readonly value: bigint;
}

/** One CIDR range. */
export interface CidrRange {
  readonly v6: boolean;
  readonly base: bigint;
  readonly mask: bigint;
  /** The range as written (for messages). */
  readonly text: string;
}

const V4_ALL = (1n << 32n) - 1n;
const V6_ALL = (1n << 128n) - 1n;

function v4Value(text: string): bigint {
  let v = 0n;
  for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function v6Value(text: string): bigint {
  let t = text;
  const zone = t.indexOf('%');
  if (zone >= 0) t = t.slice(0, zone);
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hextets.
  const lastColon = t.lastIndexOf(':');
  const tail = t.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = v4Value(tail);
    t = `${t.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = t.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - left.length - right.length;
  const groups = rest === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

/** Parses an IPv4 or IPv6 address (no port); undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { v6: false, value: v4Value(text) };
  if (isIPv6(text)) {
    const value = v6Value(text);
    // IPv4-mapped: compare against IPv4 ranges.
    if (value >> 32n === 0xffffn) return { v6: false, value: value & V4_ALL };
    return { v6: true, value };
  }
  return undefined;
}

/**
 * Parses `a.b.c.d/n` or `x:y::z/n` (a bare address is a /32 or /128). Returns an error message for
 * anything else; host bits set below the prefix are an error too (`10.0.0.1/8` is a typo more often
 * than not).
 */
export function parseCidr(text: string): CidrRange | string {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const v6 = isIPv6(addrText);
  if (!v6 && !isIPv4(addrText)) return `"${text}" is not an IPv4 or IPv6 CIDR (for example 10.0.0.0/8 or 2001:db8::/32)`;
  const bits = v6 ? 128 : 32;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return `"${text}": prefix length must be 0-${bits}`;
    prefix = Number(p);
  }
  const all = v6 ? V6_ALL : V4_ALL;
  const mask = prefix === 0 ? 0n : (all << BigInt(bits - prefix)) & all;
  const base = v6 ? v6Value(addrText) : v4Value(addrText);
  if ((base & mask) !== base) return `"${text}" has host bits set below the /${prefix} prefix`;
  // An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
  if (v6 && prefix >= 96 && base >> 32n === 0xffffn) {
    return { v6: false, base: base & V4_ALL, mask: mask & V4_ALL, text };
  }
  return { v6, base, mask, text };
}

/** A set of ranges: an address is allowed when any range holds it. */
export class CidrSet {
  constructor(readonly ranges: readonly CidrRange[]) {}

  contains(ip: IpAddress): boolean {
    for (const r of this.ranges) if (r.v6 === ip.v6 && (ip.value & r.mask) === r.base) return true;
    return false;
  }

  toString(): string {
    return this.ranges.map((r) => r.text).join(', ');
  }
}

/**
 * The allow-lists of a key and its ancestors. Each level that has a list must allow the address
 * (an intersection: a child can narrow what its account allows, never widen it).
 */
export class AllowList {
  constructor(readonly levels: readonly { readonly owner: string; readonly set: CidrSet }[]) {}

  /** undefined when allowed, else the level that refused it. */
  refusedBy(ip: IpAddress | undefined): string | undefined {
    for (const level of this.levels) if (!ip || !level.set.contains(ip)) return level.owner;
    return undefined;
  }
}

/**
 * The client address from Envoy's `source.address` attribute: `1.2.3.4:5678`, `[2001:db8::1]:5678`
 * (or without a port). This is the address Envoy decided on (the TCP peer, or the X-Forwarded-For
 * entry xff_num_trusted_hops designates), never a header value the client controls.
 */
export function parseSourceAddress(text: string): IpAddress | undefined {
  let host = text;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    host = close < 0 ? '' : host.slice(1, close);
  } else {
    const colon = host.indexOf(':');
    // One colon = IPv4 with a port; more = an IPv6 address without brackets.
    if (colon >= 0 && host.indexOf(':', colon + 1) < 0) host = host.slice(0, colon);
  }
  return parseIp(host);
}

/**
 * The same test as the CRD's CEL rule (schema.ts CIDR_RULE): a CIDR without host bits or a single
 * address; no zone, no IPv4-mapped IPv6 address (the Kubernetes IP library refuses both).
 */
export function isCidrOrAddress(text: string): boolean {
  if (text.includes('%') || /::ffff:[0-9.]+/i.test(text)) return false;
  return typeof parseCidr(text) !== 'string';
}
