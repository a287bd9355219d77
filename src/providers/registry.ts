/** Maps a provider type to its adapter. Adding a provider is adding a folder and a line here. */
import type { Snapshot } from '../config/snapshot.js';
import type { ProviderType } from '../config/types.js';
import { anthropicAdapter } from './anthropic/api.js';
import { bedrockAdapter } from './aws-bedrock/api.js';
import { azureOpenAIAdapter } from './azure-openai/api.js';
import { vertexAdapter } from './gcp-vertex-ai/api.js';
import { geminiAdapter } from './gemini/api.js';
import { openAICompatibleAdapter } from './openai-compatible/api.js';
import { openAIAdapter } from './openai/api.js';
import type { ProviderAdapter } from './types.js';

const ADAPTERS: Readonly<Record<ProviderType, ProviderAdapter>> = {
  openai: openAIAdapter,
  'azure-openai': azureOpenAIAdapter,
  'openai-compatible': openAICompatibleAdapter,
  anthropic: anthropicAdapter,
  'aws-bedrock': bedrockAdapter,
  gemini: geminiAdapter,
  'gcp-vertex-ai': vertexAdapter,
};

export function adapterFor(type: ProviderType): ProviderAdapter {
  return ADAPTERS[type];
}

/** Warms the credentials of every provider of a new snapshot that has expiring ones (ProviderAdapter.warm). */
export function warmCredentials(snapshot: Snapshot): void {
  const seen = new Set<object>();
  for (const tiers of snapshot.routesByModel.values()) {
    for (const tier of tiers) {
      for (const route of tier.routes) {
        if (seen.has(route.provider)) continue;
        seen.add(route.provider);
        ADAPTERS[route.provider.type].warm?.(route.provider);
      }
    }
  }
}
