/**
 * Request-headers step after authentication: the key's IP allow-list (and its ancestors') against
 * the client address Envoy determined (`source.address`, see envoy.yaml request_attributes).
 */
import type { KeyEntry } from '../config/snapshot.js';
import { gatewayError, type GatewayError } from '../errors.js';
import { parseSourceAddress } from '../guardrails/cidr.js';

/** The ext_proc filter's attribute namespace in ProcessingRequest.attributes. */
export const EXTPROC_ATTRIBUTES = 'envoy.filters.http.ext_proc';
export const SOURCE_ADDRESS = 'source.address';
/** Header Envoy sets (overwriting any client value) on the routes that bypass ext_proc (/mcp). */
export const CLIENT_ADDRESS_HEADER = 'x-tollgate-client-address';

/** undefined when the key may be used from `sourceAddress`, else a 403 ip_not_allowed. */
export function checkClientAddress(key: KeyEntry, sourceAddress: string | undefined): GatewayError | undefined {
  const list = key.allowList;
  if (!list) return undefined;
  const ip = sourceAddress === undefined ? undefined : parseSourceAddress(sourceAddress);
  const refusedBy = list.refusedBy(ip);
  if (refusedBy === undefined) return undefined;
  // The message names neither the address nor the ranges (the client should not learn the list).
  return gatewayError(
    'ip_not_allowed',
    ip ? 'This API key may not be used from your network address.' : 'The gateway could not determine your network address; this API key is restricted by address.',
  );
}
