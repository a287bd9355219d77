/**
 * Sealed MCP session ids: the id a client holds is the session itself, encrypted and authenticated
 * (AES-256-GCM) with a secret every replica shares, so any replica can serve the next request without
 * sticky routing or a session store, and a forged or tampered id is refused. A session is bound to
 * the API key that opened it: the same id presented with another key is refused.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** What a session id carries. */
export interface SessionClaims {
  /** ApiKey `namespace/name` that opened the session. */
  readonly key: string;
  /** The endpoint the session belongs to (`/mcp` or `/mcp/<namespace>/<name>`). */
  readonly endpoint: string;
  /** Epoch ms when the session was opened. */
  readonly issuedAtMs: number;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Sessions older than this are refused (the client re-initialises). */
export const SESSION_MAX_AGE_MS = 24 * 3600_000;

export class SessionSealer {
  private readonly key: Buffer;

  /** `secret`: any text (hashed to the AES key); undefined = a random key for this process only. */
  constructor(secret: string | undefined) {
    this.key = secret === undefined ? randomBytes(32) : createHash('sha256').update('tollgate-mcp-session\0' + secret).digest();
  }

  /** A new session id (base64url, visible ASCII as MCP requires). */
  seal(claims: SessionClaims): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const plain = Buffer.from(JSON.stringify([claims.key, claims.endpoint, claims.issuedAtMs]), 'utf8');
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The claims of a genuine, unexpired id; undefined for anything forged, tampered or expired. */
  open(id: string, nowMs: number): SessionClaims | undefined {
    if (id.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
      const parsed: unknown = JSON.parse(plain);
      if (!Array.isArray(parsed) || parsed.length !== 3) return undefined;
      const [key, endpoint, issuedAtMs] = parsed as unknown[];
      if (typeof key !== 'string' || typeof endpoint !== 'string' || typeof issuedAtMs !== 'number') return undefined;
      if (nowMs - issuedAtMs > SESSION_MAX_AGE_MS || issuedAtMs - nowMs > 60_000) return undefined;
      return { key, endpoint, issuedAtMs };
    } catch {
      return undefined; // authentication failed: forged or tampered
    }
  }
}
