/**
 * What a provider adapter does: say where one attempt goes (scheme, authority, path) and which
 * headers carry its credential. Adapters know nothing of Envoy or gRPC.
 */
import type { ProviderEntry } from '../config/snapshot.js';
import type { ProviderType } from '../config/types.js';
import type { ChatTranslator } from './translation.js';

/** The OpenAI-compatible operations Tollgate forwards. */
export type Operation = 'chat/completions' | 'embeddings';

/** Where and how to send one upstream attempt. */
export interface UpstreamTarget {
  readonly scheme: 'http' | 'https';
  readonly authority: string;
  /** Path including query string. */
  readonly path: string;
  /** Headers to set (credential and provider-specific headers). */
  readonly headers: readonly (readonly [name: string, value: string])[];
}

export interface ProviderAdapter {
  readonly type: ProviderType;
  /** Builds the upstream target for one attempt (`stream`: the client asked for a stream). */
  target(provider: ProviderEntry, operation: Operation, upstreamModel: string, stream: boolean): UpstreamTarget;
  /**
   * Signs a translated request (AWS SigV4): the headers to add for this exact target and body.
   * Asynchronous (the signer hashes with WebCrypto); absent = the target's headers carry the credential.
   */
  sign?(provider: ProviderEntry, target: UpstreamTarget, body: Buffer): Promise<readonly (readonly [string, string])[]>;
  /**
   * Set for providers whose API is not OpenAI's: chat completions are translated (translation.ts).
   * Absent = OpenAI wire format, bodies pass through.
   */
  readonly chat?: ChatTranslator;
}

/** Headers that may carry a client or provider credential; stripped before the provider's are set. */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'x-api-key', 'api-key', 'x-amz-security-token', 'x-goog-api-key'];
