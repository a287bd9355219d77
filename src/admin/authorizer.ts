/**
 * Who may call an action on Tollgate's admin port. Read-only endpoints (/metrics, /healthz, /readyz)
 * are open to whoever reaches the port (probes, Prometheus); everything that changes state is
 * behind a bearer token that grants named scopes (docs/security.md).
 *
 * Credentials are named token holders with a closed set of scopes. Today there is one: the pod
 * credential, a random token Tollgate writes at start into a file on a volume only the pod's own
 * containers mount (the chart's in-memory emptyDir), granting `lifecycle` (POST /drain from Envoy's
 * preStop hook). Other admin APIs (the billing issue's usage reports) add a scope to the union and a
 * credential that carries it (for example an operator token read from a mounted Secret), and guard
 * their routes with `authorize(header, scope)` exactly as /drain does.
 *
 * Tokens are compared as SHA-256 digests with a constant-time compare, so neither content nor length
 * leaks through timing; only digests are kept in memory after start-up.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * What a credential may do. `lifecycle`: start a drain (the pod's own shutdown path). `reports`:
 * read usage and cost reports (GET /admin/usage), granted by the operator token (--admin-token-file).
 */
export type AdminScope = 'lifecycle' | 'reports';

/** A token holder: a name for logs and the scopes it grants. */
export interface AdminCredential {
  readonly name: string;
  readonly scopes: readonly AdminScope[];
  /** SHA-256 of the token. */
  readonly digest: Buffer;
}

/** Why a request was refused; `missing` and `invalid` are 401, `scope` is 403. */
export type DenyReason = 'missing' | 'invalid' | 'scope';

export type AuthDecision =
  | { readonly allowed: true; readonly credential: string }
  | { readonly allowed: false; readonly status: 401 | 403; readonly reason: DenyReason };

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** Makes a credential from a token (the token itself is not kept). */
export function credentialFromToken(name: string, token: string, scopes: readonly AdminScope[]): AdminCredential {
  if (token.length < 32) throw new Error(`admin credential ${name}: token too short (at least 32 characters)`);
  return { name, scopes: [...scopes], digest: digest(token) };
}

/** Decides admin requests against a fixed set of credentials. */
export class AdminAuthorizer {
  private readonly credentials: readonly AdminCredential[];

  constructor(credentials: readonly AdminCredential[]) {
    this.credentials = [...credentials];
  }

  /** True when some credential could ever grant `scope` (else the action is off in this process). */
  grants(scope: AdminScope): boolean {
    return this.credentials.some((c) => c.scopes.includes(scope));
  }

  /**
   * Checks an `Authorization` header value for `scope`: 401 when there is no bearer token or it
   * matches no credential, 403 when it matches one that lacks the scope.
   */
  authorize(authorization: string | undefined, scope: AdminScope): AuthDecision {
    const token = bearerToken(authorization);
    if (token === undefined) return { allowed: false, status: 401, reason: 'missing' };
    const presented = digest(token);
    // Compare with every credential (no early exit), so timing does not tell which one matched.
    let match: AdminCredential | undefined;
    for (const c of this.credentials) if (timingSafeEqual(presented, c.digest) && !match) match = c;
    if (!match) return { allowed: false, status: 401, reason: 'invalid' };
    if (!match.scopes.includes(scope)) return { allowed: false, status: 403, reason: 'scope' };
    return { allowed: true, credential: match.name };
  }
}

/** The token of `Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
  return m?.[1];
}

/**
 * The pod credential: a fresh random token written to `file` (mode 0600, replaced atomically, so a
 * reader never sees half a token and a restarted process never honours its predecessor's token).
 * The file belongs on a volume only the pod's containers mount.
 */
export async function createPodCredential(file: string): Promise<AdminCredential> {
  const token = randomBytes(32).toString('base64url');
  const tmp = join(dirname(file), `.${process.pid}.pod-token.tmp`);
  try {
    await writeFile(tmp, `${token}\n`, { mode: 0o600, flag: 'w' });
    // writeFile's mode applies only to new files; make sure a leftover temp file is private too.
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new Error(`cannot write the pod token file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return credentialFromToken('pod', token, ['lifecycle']);
}

/**
 * The operator credential: a token read from `file` (a mounted Secret key), granting `reports`.
 * Read once at start; rotating the Secret takes a restart.
 */
export async function operatorCredentialFromFile(file: string): Promise<AdminCredential> {
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new Error(`cannot read the admin token file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return credentialFromToken('operator', token, ['reports']);
}
