/**
 * OAuth2 access tokens for Vertex AI from a service-account key (the JSON Google issues), through
 * google-auth-library's JWT client. A token is fetched once and reused; when it has less than
 * REFRESH_BEFORE_MS left, the next request starts a refresh in the background and still uses the
 * valid token, so a request waits for the token endpoint only when no valid token exists (the first
 * request, or after a failed refresh let it expire). The key's `token_uri` is honoured (Google's is
 * the default), which is also how tests point the library at a local token endpoint.
 */
import { gaxios, JWT } from 'google-auth-library';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Refresh this long before expiry (tokens live an hour). */
export const REFRESH_BEFORE_MS = 5 * 60_000;
/** Token sources kept (one per distinct service-account key); the oldest goes beyond it. */
const MAX_SOURCES = 256;

interface ServiceAccountKey {
  readonly client_email: string;
  readonly private_key: string;
  readonly private_key_id?: string;
  readonly token_uri?: string;
}

/** Parses a service-account key JSON; an error says what is missing (never the key). */
export function parseServiceAccount(text: string | undefined): ServiceAccountKey | Error {
  if (text === undefined) return new Error('no credentialSecretRef (service-account key JSON) is configured');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return new Error('the credential Secret must hold a service-account key JSON');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (typeof o['client_email'] !== 'string' || typeof o['private_key'] !== 'string') return new Error('the service-account key JSON needs client_email and private_key');
  return o as unknown as ServiceAccountKey;
}

export class TokenSource {
  private token: string | undefined;
  private expiresAt = 0;
  private refreshing: Promise<string> | undefined;
  private readonly client: JWT;

  constructor(
    key: ServiceAccountKey,
    private readonly now: () => number = Date.now,
  ) {
    const transporter = new gaxios.Gaxios();
    const tokenUri = key.token_uri;
    if (tokenUri && tokenUri !== GOOGLE_TOKEN_URL) {
      transporter.interceptors.request.add({
        resolved: (options) => {
          if (String(options.url) === GOOGLE_TOKEN_URL) options.url = new URL(tokenUri);
          return Promise.resolve(options);
        },
      });
    }
    this.client = new JWT({ email: key.client_email, key: key.private_key, ...(key.private_key_id ? { keyId: key.private_key_id } : {}), scopes: [SCOPE], transporter });
  }

  /** A valid token now (synchronously) when one is cached; otherwise the pending fetch. */
  get(): string | Promise<string> {
    const left = this.expiresAt - this.now();
    if (this.token !== undefined && left > 0) {
      if (left < REFRESH_BEFORE_MS) void this.refresh().catch(() => undefined);
      return this.token;
    }
    return this.refresh();
  }

  private refresh(): Promise<string> {
    this.refreshing ??= this.client.authorize().then(
      (credentials) => {
        this.refreshing = undefined;
        if (!credentials.access_token) throw new Error('the token endpoint returned no access_token');
        this.token = credentials.access_token;
        this.expiresAt = credentials.expiry_date ?? this.now() + 3_600_000;
        return this.token;
      },
      (err: unknown) => {
        this.refreshing = undefined;
        throw err instanceof Error ? err : new Error(String(err));
      },
    );
    return this.refreshing;
  }
}

const sources = new Map<string, TokenSource | Error>();

/** The token source of a service-account key (shared by every provider using the same key). */
export function tokenSourceFor(credential: string | undefined): TokenSource | Error {
  const id = credential ?? '';
  let source = sources.get(id);
  if (!source) {
    const key = parseServiceAccount(credential);
    source = key instanceof Error ? key : new TokenSource(key);
    if (sources.size >= MAX_SOURCES) sources.delete(sources.keys().next().value as string);
    sources.set(id, source);
  }
  return source;
}
