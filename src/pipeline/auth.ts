/** Key authentication: Bearer token or x-api-key, looked up by SHA-256 in the snapshot. */
import { gatewayError, type GatewayError } from '../errors.js';
import { hashKey, type KeyEntry, type Snapshot } from '../config/snapshot.js';

const BEARER = /^\s*Bearer\s+(\S+)\s*$/i;

/** Extracts the client key from `Authorization: Bearer` or `x-api-key`. */
export function extractKey(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  if (authorization !== undefined) {
    const m = BEARER.exec(authorization);
    if (m?.[1]) return m[1];
  }
  const k = xApiKey?.trim();
  return k ? k : undefined;
}

/** Authenticates a request against the snapshot at time `nowMs`. */
export function authenticate(clearKey: string | undefined, snapshot: Snapshot, nowMs: number): KeyEntry | GatewayError {
  if (clearKey === undefined) {
    return gatewayError('missing_api_key', "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.");
  }
  const key = snapshot.keysByHash.get(hashKey(clearKey));
  if (!key) return gatewayError('invalid_api_key', 'Incorrect API key provided.');
  if (key.disabled) return gatewayError('key_disabled', 'This API key has been disabled.');
  if (key.expiresAtMs !== undefined && nowMs >= key.expiresAtMs) {
    return gatewayError('key_expired', 'This API key has expired.');
  }
  return key;
}
