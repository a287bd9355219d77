/** OpenAI: `Authorization: Bearer <key>`, paths under the endpoint's base path (usually /v1). */
import type { ProviderEntry } from '../../config/snapshot.js';
import type { Operation, ProviderAdapter, UpstreamTarget } from '../types.js';

/** Target for OpenAI-style APIs; shared with OpenAI-compatible engines. */
export function openAITarget(provider: ProviderEntry, operation: Operation): UpstreamTarget {
  const { scheme, authority, basePath } = provider.endpoint;
  const headers: (readonly [string, string])[] = [];
  if (provider.credential !== undefined) headers.push(['authorization', `Bearer ${provider.credential}`]);
  return { scheme, authority, path: `${basePath}/${operation}`, headers };
}

export const openAIAdapter: ProviderAdapter = {
  type: 'openai',
  target: (provider, operation) => openAITarget(provider, operation),
};
