/**
 * OAuth2 access tokens for Vertex AI, from google-auth-library, in one of two ways:
 *   - a service-account key (the JSON Google issues) in the ModelProvider's credential Secret: the
 *     library's JWT client (JWT-bearer grant). The key's `token_uri` is honoured (Google's is the
 *     default), which is also how tests point the library at a local token endpoint;
 *   - no credential Secret: the Pod's own identity through Application Default Credentials
 *     (https://cloud.google.com/docs/authentication/application-default-credentials), found by the
 *     library in its order: GOOGLE_APPLICATION_CREDENTIALS (a key, or an `external_account` file for
 *     workload identity federation from another cloud or cluster), gcloud's well-known file, then the
 *     metadata server (GKE Workload Identity, Compute Engine, Cloud Run). GCE_METADATA_HOST /
 *     GCE_METADATA_IP move the metadata server (the library reads them; tests use a fake).
 * Either way a token is fetched once and reused, refreshed in the background before it expires
 * (../refreshing.ts), so a request waits for a token endpoint only when no valid token exists.
 */
import { gaxios, gcpMetadata, GoogleAuth, JWT } from 'google-auth-library';
import { Refreshing, REFRESH_BEFORE_MS, RETRY_MS, type Expiring } from '../refreshing.js';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Tokens without a stated lifetime are kept this long (Google's access tokens live an hour). */
const DEFAULT_LIFETIME_MS = 3_600_000;
/** Token sources kept (one per distinct service-account key or project); the oldest goes beyond it. */
const MAX_SOURCES = 256;
const PROJECT_IN_PATH = /\/projects\/([^/]+)\//;

export { REFRESH_BEFORE_MS };

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

/** A cached, background-refreshed access token. */
export type TokenSource = Refreshing<string>;

/** Fetches tokens with a service-account key (JWT-bearer grant at the key's token_uri). */
export function serviceAccountFetcher(key: ServiceAccountKey, now: () => number = Date.now): () => Promise<Expiring<string>> {
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
  const client = new JWT({ email: key.client_email, key: key.private_key, ...(key.private_key_id ? { keyId: key.private_key_id } : {}), scopes: [SCOPE], transporter });
  return async () => {
    const credentials = await client.authorize();
    if (!credentials.access_token) throw new Error('the token endpoint returned no access_token');
    return { value: credentials.access_token, expiresAt: credentials.expiry_date ?? now() + DEFAULT_LIFETIME_MS };
  };
}

/**
 * Fetches tokens with Application Default Credentials. `projectId` (the project of the Vertex
 * endpoint) spares the library its own project discovery, which would run the gcloud CLI.
 */
export function applicationDefaultFetcher(projectId: string | undefined, now: () => number = Date.now): () => Promise<Expiring<string>> {
  // The library refreshes a cached token only inside its own eager window: make it wider than ours,
  // so that when we ask for a fresh token it fetches one.
  const options = { scopes: [SCOPE], clientOptions: { eagerRefreshThresholdMillis: REFRESH_BEFORE_MS + 60_000 }, ...(projectId ? { projectId } : {}) };
  let auth: GoogleAuth | undefined;
  let failedDiscovery: { readonly at: number; readonly error: Error } | undefined;
  return async () => {
    // Discovery can take seconds where there is no metadata server (the library probes it with a
    // timeout): after a failure, requests fail at once for RETRY_MS instead of each probing again.
    if (failedDiscovery && now() - failedDiscovery.at < RETRY_MS) throw failedDiscovery.error;
    auth ??= new GoogleAuth(options);
    let client;
    try {
      client = await auth.getClient();
      failedDiscovery = undefined;
    } catch (err) {
      // The library (and gcp-metadata, process-wide) remember a failed discovery: forget it, so a
      // metadata server that was not ready when the Pod started is found by a later request.
      auth = undefined;
      gcpMetadata.resetIsAvailableCache();
      const error = new Error(`no Application Default Credentials (GKE Workload Identity metadata server, GOOGLE_APPLICATION_CREDENTIALS): ${err instanceof Error ? err.message : String(err)}`);
      failedDiscovery = { at: now(), error };
      throw error;
    }
    const { token } = await client.getAccessToken();
    if (!token) throw new Error('Application Default Credentials returned no access token');
    const expiry = client.credentials.expiry_date;
    return { value: token, expiresAt: typeof expiry === 'number' && expiry > 0 ? expiry : now() + DEFAULT_LIFETIME_MS };
  };
}

const sources = new Map<string, TokenSource | Error>();

function remember(id: string, make: () => TokenSource | Error): TokenSource | Error {
  let source = sources.get(id);
  if (!source) {
    source = make();
    if (sources.size >= MAX_SOURCES) sources.delete(sources.keys().next().value as string);
    sources.set(id, source);
  }
  return source;
}

/** The token source of a service-account key (shared by every provider using the same key). */
export function tokenSourceFor(credential: string): TokenSource | Error {
  return remember(`key:${credential}`, () => {
    const key = parseServiceAccount(credential);
    return key instanceof Error ? key : new Refreshing<string>(`service account ${key.client_email}`, serviceAccountFetcher(key));
  });
}

/** The Pod's own identity (Application Default Credentials), one source per Vertex project. */
export function defaultTokenSourceFor(endpointPath: string): TokenSource | Error {
  const projectId = PROJECT_IN_PATH.exec(endpointPath)?.[1];
  return remember(`adc:${projectId ?? ''}`, () => new Refreshing<string>('Application Default Credentials', applicationDefaultFetcher(projectId)));
}
