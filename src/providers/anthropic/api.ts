/**
 * Anthropic (provider type `anthropic`): the Messages API.
 *
 * Behaviour follows Anthropic's published API reference:
 *   - Messages:            https://docs.anthropic.com/en/api/messages
 *   - Streaming Messages:  https://docs.anthropic.com/en/api/messages-streaming (event types)
 *   - Errors:              https://docs.anthropic.com/en/api/errors (529 overloaded_error ...)
 *   - Versions:            https://docs.anthropic.com/en/api/versioning (`anthropic-version`)
 *   - Vision:              https://docs.anthropic.com/en/docs/build-with-claude/vision (image sources, 5 MB limit)
 *   - Tool use:            https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
 *   - Extended thinking:   https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
 * Files: api.ts (where and with which headers), chat.ts (request/response translation), stream.ts
 * (the SSE stream translator). OpenAI chat completions is the client side of every translation.
 */
import type { ProviderAdapter } from '../types.js';
import { anthropicChat } from './chat.js';

/** `anthropic-version` sent when the ModelProvider does not set spec.apiVersion. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

export const anthropicAdapter: ProviderAdapter = {
  type: 'anthropic',
  target(provider, operation, _upstreamModel, _stream, clientVersion) {
    const { scheme, authority, basePath } = provider.endpoint;
    const headers: (readonly [string, string])[] = [
      // A Messages client's own anthropic-version is passed on (its body is written for it).
      ['anthropic-version', clientVersion ?? provider.apiVersion ?? DEFAULT_ANTHROPIC_VERSION],
      // The response is translated: it must arrive uncompressed whatever the client accepts.
      ['accept-encoding', 'identity'],
    ];
    if (provider.credential !== undefined) headers.push(['x-api-key', provider.credential]);
    // The endpoint is the API base with its version, like OpenAI's: https://api.anthropic.com/v1.
    return { scheme, authority, path: operation === 'messages/count_tokens' ? `${basePath}/messages/count_tokens` : `${basePath}/messages`, headers };
  },
  chat: anthropicChat,
};
