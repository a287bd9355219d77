/**
 * Azure OpenAI: the upstream model name is the deployment, carried in the path; the credential goes
 * in `api-key`; `api-version` is a required query parameter.
 */
import type { ProviderAdapter } from '../types.js';

/** Used when the ModelProvider does not set spec.apiVersion. */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

export const azureOpenAIAdapter: ProviderAdapter = {
  type: 'azure-openai',
  target(provider, operation, upstreamModel) {
    const { scheme, authority, basePath } = provider.endpoint;
    const version = encodeURIComponent(provider.apiVersion ?? DEFAULT_AZURE_API_VERSION);
    const path = `${basePath}/openai/deployments/${encodeURIComponent(upstreamModel)}/${operation}?api-version=${version}`;
    const headers: (readonly [string, string])[] = [];
    if (provider.credential !== undefined) headers.push(['api-key', provider.credential]);
    return { scheme, authority, path, headers };
  },
};
