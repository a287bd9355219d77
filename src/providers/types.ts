/**
 * What a provider adapter does: say where one attempt goes (scheme, authority, path) and which
 * headers carry its credential. Adapters know nothing of Envoy or gRPC.
 */
import type { ProviderEntry } from '../config/snapshot.js';
import type { ProviderType } from '../config/types.js';
import type { ChatTranslator, ResponseTranslator } from './translation.js';

/**
 * The operations Tollgate forwards: OpenAI's chat completions, embeddings and Responses, and
 * Anthropic's Messages (and its count_tokens). A front door's operation is also what an adapter
 * builds the upstream path for: a Messages request to an OpenAI provider targets its
 * `chat/completions`.
 */
export type Operation = 'chat/completions' | 'embeddings' | 'responses' | 'messages' | 'messages/count_tokens';

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
  /**
   * Builds the upstream target for one attempt (`stream`: the client asked for a stream).
   * `anthropicVersion` is the `anthropic-version` a Messages client sent (passed on when the provider
   * speaks Anthropic's API).
   */
  target(provider: ProviderEntry, operation: Operation, upstreamModel: string, stream: boolean, anthropicVersion?: string): UpstreamTarget;
  /**
   * Signs a translated request (AWS SigV4): the headers to add for this exact target and body.
   * Asynchronous (the signer hashes with WebCrypto); absent = the target's headers carry the credential.
   */
  sign?(provider: ProviderEntry, target: UpstreamTarget, body: Buffer): Promise<readonly (readonly [string, string])[]>;
  /**
   * Starts fetching the provider's expiring credentials (STS, a token endpoint) when a configuration
   * is loaded, so the first request finds them cached and a problem shows in the log at start.
   * Fire and forget: never throws, never blocks.
   */
  warm?(provider: ProviderEntry): void;
  /**
   * Set for providers whose API is not OpenAI's: chat completions are translated (translation.ts).
   * Absent = OpenAI wire format, bodies pass through.
   */
  readonly chat?: ChatTranslator;
  /**
   * Set for providers whose embeddings API is not OpenAI's: /v1/embeddings is translated (the
   * translator's stream part is never used). Absent with `chat` set = embeddings are not served.
   */
  readonly embeddings?: ChatTranslator;
  /**
   * Set for clouds that serve some models' Anthropic Messages natively (Claude on Bedrock's
   * InvokeModel, on Vertex AI's rawPredict): /v1/messages to those models sends the client's body
   * with a few top-level edits instead of translating it through chat completions.
   */
  readonly nativeMessages?: NativeMessages;
}

/** Top-level edits of a JSON body (applied to the bytes by the pipeline: the rest stays byte for byte). */
export interface BodyEdits {
  readonly drop: readonly string[];
  /** Set these members (replaced in place, or added first). */
  readonly set: readonly (readonly [string, unknown])[];
}

/** The Messages operations a cloud may serve natively. */
export type MessagesOperation = 'messages' | 'messages/count_tokens';

/** How a cloud takes a client's Anthropic Messages body as it is (ProviderAdapter.nativeMessages). */
export interface NativeMessages {
  /** True for the upstream models this cloud serves with Anthropic's own Messages API (Claude). */
  serves(upstreamModel: string): boolean;
  /** The edits that turn the client's body into the cloud's (`betas`: the client's anthropic-beta values). */
  edits(operation: MessagesOperation, upstreamModel: string, betas: readonly string[]): BodyEdits;
  /** Wraps the edited body when the cloud's operation nests it (Bedrock CountTokens); absent = sent as it is. */
  wrap?(operation: MessagesOperation, body: Buffer): Buffer;
  /** Client headers passed on unchanged (Vertex AI takes `anthropic-beta` as a header); the other Anthropic headers are removed. */
  readonly passHeaders: readonly string[];
  /** The response side of an operation: what passes as it is, what is decoded (Bedrock streams), errors in Anthropic's shape. */
  response(operation: MessagesOperation): ResponseTranslator;
}

/** Headers that may carry a client or provider credential; stripped before the provider's are set. */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'x-api-key', 'api-key', 'x-amz-security-token', 'x-goog-api-key'];
