/** Maps a provider type to its adapter. Adding a provider is adding a folder and a line here. */
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
