/**
 * Azure OpenAI: the upstream model name is the deployment, carried in the path; the credential goes
 * in `api-key`; `api-version` is a required query parameter.
 */
import type { ProviderAdapter } from '../types.js';

/** Used when the ModelProvider does not set spec.apiVersion. */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

/**
 * The Responses API is served at /openai/responses (the deployment is the body's `model`) from this
 * preview version on; used for it when the ModelProvider does not set spec.apiVersion.
 */
export const DEFAULT_AZURE_RESPONSES_API_VERSION = '2025-04-01-preview';

export const azureOpenAIAdapter: ProviderAdapter = {
  type: 'azure-openai',
  target(provider, operation, upstreamModel) {
    const { scheme, authority, basePath } = provider.endpoint;
    const responses = operation === 'responses';
    const version = encodeURIComponent(provider.apiVersion ?? (responses ? DEFAULT_AZURE_RESPONSES_API_VERSION : DEFAULT_AZURE_API_VERSION));
    const path = responses
      ? `${basePath}/openai/responses?api-version=${version}`
      : `${basePath}/openai/deployments/${encodeURIComponent(upstreamModel)}/${operation}?api-version=${version}`;
    const headers: (readonly [string, string])[] = [];
    if (provider.credential !== undefined) headers.push(['api-key', provider.credential]);
    return { scheme, authority, path, headers };
  },
};
