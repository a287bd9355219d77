/**
 * Google Gemini API (provider type `gemini`, Google AI Studio keys): generateContent and
 * streamGenerateContent?alt=sse.
 *
 * Behaviour follows Google's published API reference:
 *   - generateContent:  https://ai.google.dev/api/generate-content
 *   - Content / Part:   https://ai.google.dev/api/caching#Content
 *   - Function calling: https://ai.google.dev/gemini-api/docs/function-calling
 *   - Schema subset:    https://ai.google.dev/api/caching#Schema (the OpenAPI subset `parameters` accepts)
 *   - Thinking:         https://ai.google.dev/gemini-api/docs/thinking
 *   - Errors:           https://ai.google.dev/gemini-api/docs/troubleshooting (RESOURCE_EXHAUSTED ...)
 * The credential goes in `x-goog-api-key`. The endpoint is the API base with its version, for example
 * https://generativelanguage.googleapis.com/v1beta. Embeddings: batchEmbedContents (embeddings.ts).
 */
import type { ProviderAdapter } from '../types.js';
import { geminiChat } from './chat.js';
import { geminiEmbeddings } from './embeddings.js';

export const geminiAdapter: ProviderAdapter = {
  type: 'gemini',
  target(provider, operation, upstreamModel, stream) {
    const { scheme, authority, basePath } = provider.endpoint;
    const model = encodeURIComponent(upstreamModel);
    const method = operation === 'embeddings' ? 'batchEmbedContents' : stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
    const path = `${basePath}/models/${model}:${method}`;
    const headers: (readonly [string, string])[] = [
      ['content-type', 'application/json'],
      ['accept-encoding', 'identity'],
    ];
    if (provider.credential !== undefined) headers.push(['x-goog-api-key', provider.credential]);
    return { scheme, authority, path, headers };
  },
  chat: geminiChat,
  embeddings: geminiEmbeddings,
};
