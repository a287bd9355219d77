/**
 * The Vertex AI translator: Gemini models speak the Gemini API's shapes (../gemini/chat.ts);
 * Anthropic Claude models (upstream names starting with `claude`) speak the Anthropic Messages API
 * through rawPredict / streamRawPredict (../anthropic/chat.ts), with two differences from
 * Anthropic's own endpoint (https://docs.anthropic.com/en/api/claude-on-vertex-ai): the model is in
 * the path, not the body, and the body carries `anthropic_version: "vertex-2023-10-16"`.
 */
import { isGatewayError, type GatewayError } from '../../errors.js';
import { anthropicChat, messagesRequest } from '../anthropic/chat.js';
import { geminiChat } from '../gemini/chat.js';
import { isObject, type ChatTranslator, type TranslationContext } from '../translation.js';

/** The Messages API version Vertex AI expects in the body. */
export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

/** Claude models on Vertex are served by Anthropic's publisher. */
export function isClaude(upstreamModel: string): boolean {
  return upstreamModel.startsWith('claude');
}

function claudeRequest(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const out = messagesRequest(body, ctx);
  if (isGatewayError(out)) return out;
  delete out['model'];
  return Buffer.from(JSON.stringify({ anthropic_version: VERTEX_ANTHROPIC_VERSION, ...out }));
}

export const vertexChat: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request: (body, ctx) => (isClaude(ctx.upstreamModel) ? claudeRequest(body, ctx) : geminiChat.request(body, ctx)),
  // Only Anthropic's publisher answers 529 (overloaded); Google's statuses pass unchanged.
  status: (s) => anthropicChat.status(s),
  response: (raw, options) => (isClaude(options.model) ? anthropicChat.response(raw, options) : geminiChat.response(raw, options)),
  error: (status, raw) => {
    // Google's errors carry a string `status` (RESOURCE_EXHAUSTED ...); Anthropic's a `type`.
    let google = true;
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      google = !(isObject(parsed) && parsed['type'] === 'error');
    } catch {
      google = true;
    }
    return google ? geminiChat.error(status, raw) : anthropicChat.error(status, raw);
  },
  stream: (options) => (isClaude(options.model) ? anthropicChat.stream(options) : geminiChat.stream(options)),
};
