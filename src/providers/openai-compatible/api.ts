/**
 * OpenAI-compatible engines (vLLM, SGLang, Ollama, DeepSeek, DashScope compatible mode, Moonshot ...):
 * same wire format and auth as OpenAI; the credential is optional for self-hosted engines.
 */
import { openAITarget } from '../openai/api.js';
import type { ProviderAdapter } from '../types.js';

export const openAICompatibleAdapter: ProviderAdapter = {
  type: 'openai-compatible',
  target: (provider, operation) => openAITarget(provider, operation),
};
