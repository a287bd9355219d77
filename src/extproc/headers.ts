/** Helpers for Envoy's HeaderMap: Envoy sends values in raw_value (bytes) or value (string). */
import type { HeaderMap__Output } from '../generated/envoy/config/core/v3/HeaderMap.js';
import type { HeaderValueOption } from '../generated/envoy/config/core/v3/HeaderValueOption.js';

/** Headers of one message as a plain lowercase-keyed map (Envoy already lowercases names). */
export function headerMap(map: HeaderMap__Output | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of map?.headers ?? []) {
    const key = h.key;
    if (!key) continue;
    const value = h.rawValue && h.rawValue.length > 0 ? h.rawValue.toString('latin1') : (h.value ?? '');
    out.set(key, value);
  }
  return out;
}

/** A header to set, overwriting any value the client sent. */
export function setHeader(key: string, value: string): HeaderValueOption {
  return { header: { key, rawValue: Buffer.from(value, 'latin1') }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}
