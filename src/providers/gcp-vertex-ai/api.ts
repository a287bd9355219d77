/**
 * Google Vertex AI (provider type `gcp-vertex-ai`): Gemini models through the Vertex AI
 * generateContent and streamGenerateContent?alt=sse methods, authenticated with OAuth2 access tokens
 * minted from a service-account key in the credential Secret, or, without one, from the Pod's own
 * identity (Application Default Credentials: GKE Workload Identity, workload identity federation) (token.ts). The request and response shapes are Gemini's, so
 * the Gemini translator serves both (../gemini/chat.ts).
 *
 * Behaviour follows Google's published API reference:
 *   - generateContent:  https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent
 *   - streamGenerateContent: https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/streamGenerateContent
 *   - Service-account tokens: https://developers.google.com/identity/protocols/oauth2/service-account
 *   - Application Default Credentials: https://cloud.google.com/docs/authentication/application-default-credentials
 *   - GKE Workload Identity: https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
 *   - Claude on Vertex AI: https://docs.anthropic.com/en/api/claude-on-vertex-ai (rawPredict, streamRawPredict)
 * Claude models (upstream names starting with `claude`) go to Anthropic's publisher (chat.ts); the
 * `/v1/messages` front door sends them the client's Anthropic body natively (messages.ts).
 * The endpoint is the location base, for example
 * https://us-central1-aiplatform.googleapis.com/v1/projects/<project>/locations/us-central1.
 * Embeddings: text-embedding models through :predict (embeddings.ts,
 * https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api).
 */
import type { ProviderEntry } from '../../config/snapshot.js';
import type { ProviderAdapter } from '../types.js';
import { isClaude, vertexChat } from './chat.js';
import { vertexEmbeddings } from './embeddings.js';
import { vertexNativeMessages } from './messages.js';
import { defaultTokenSourceFor, tokenSourceFor, type TokenSource } from './token.js';

/** The token source of each provider entry, looked up once (snapshots are immutable: a new entry looks again). */
const entrySources = new WeakMap<ProviderEntry, TokenSource | Error>();

function tokenSourceOf(provider: ProviderEntry): TokenSource | Error {
  let source = entrySources.get(provider);
  if (!source) {
    // No credential Secret: the Pod's own identity (Application Default Credentials).
    source = provider.credential === undefined ? defaultTokenSourceFor(provider.endpoint.basePath) : tokenSourceFor(provider.credential);
    entrySources.set(provider, source);
  }
  return source;
}

export const vertexAdapter: ProviderAdapter = {
  type: 'gcp-vertex-ai',
  target(provider, operation, upstreamModel, stream) {
    const { scheme, authority, basePath } = provider.endpoint;
    const model = encodeURIComponent(upstreamModel);
    const path = operation === 'embeddings'
      ? `${basePath}/publishers/google/models/${model}:predict`
      : operation === 'messages/count_tokens'
      ? `${basePath}/publishers/anthropic/models/count-tokens:rawPredict`
      : isClaude(upstreamModel)
      ? `${basePath}/publishers/anthropic/models/${model}:${stream ? 'streamRawPredict' : 'rawPredict'}`
      : `${basePath}/publishers/google/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`;
    return {
      scheme,
      authority,
      path,
      headers: [
        ['content-type', 'application/json'],
        ['accept-encoding', 'identity'],
      ],
    };
  },
  /** The bearer token: cached, refreshed in the background before it expires. */
  async sign(provider) {
    const source = tokenSourceOf(provider);
    if (source instanceof Error) throw source;
    const token = source.get();
    return [['authorization', `Bearer ${typeof token === 'string' ? token : await token}`]];
  },
  /** Fetches the provider's first token now (key or Pod identity), not at the first request. */
  warm(provider) {
    const source = tokenSourceOf(provider);
    if (!(source instanceof Error)) void Promise.resolve(source.get()).catch(() => undefined);
  },
  chat: vertexChat,
  embeddings: vertexEmbeddings,
  nativeMessages: vertexNativeMessages,
};
