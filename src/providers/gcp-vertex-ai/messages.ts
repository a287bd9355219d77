/**
 * Claude on Vertex AI through Anthropic's own Messages API (the front door `/v1/messages`), instead
 * of the chat translation: rawPredict / streamRawPredict on Anthropic's publisher answer Anthropic's
 * JSON and SSE as they are, so they pass to the client unread; only errors are read (Google's shape
 * -> Anthropic's). Token counting: `publishers/anthropic/models/count-tokens:rawPredict` with the
 * model in the body.
 *
 * Behaviour follows the published references:
 *   - Claude on Vertex AI: https://docs.anthropic.com/en/api/claude-on-vertex-ai (no `model` in the
 *     body, `anthropic_version: "vertex-2023-10-16"`, `anthropic-beta` as a header)
 *   - Count tokens: https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens
 *   - Errors: https://cloud.google.com/apis/design/errors (`{"error":{code,message,status}}`)
 */
import { cloudErrorToAnthropic, IdentityStream } from '../anthropic/native.js';
import type { ResponseTranslator } from '../translation.js';
import type { BodyEdits, MessagesOperation, NativeMessages } from '../types.js';
import { isClaude, VERTEX_ANTHROPIC_VERSION } from './chat.js';

/** The Anthropic publisher's answers (JSON, SSE, token counts) are already the client's: only errors are read. */
const response: ResponseTranslator = {
  streamContentType: 'text/event-stream',
  passes: (status) => status >= 200 && status < 300,
  status: (s) => s,
  response: (body) => ({ status: 200, body }),
  error: (status, body) => cloudErrorToAnthropic('Vertex AI', status, body),
  stream: () => new IdentityStream(),
};

export const vertexNativeMessages: NativeMessages = {
  serves: isClaude,
  edits(operation: MessagesOperation, upstreamModel: string): BodyEdits {
    const version: readonly [string, unknown] = ['anthropic_version', VERTEX_ANTHROPIC_VERSION];
    // count-tokens names the model in the body (its path names none); Messages in the path.
    return operation === 'messages/count_tokens' ? { drop: [], set: [version, ['model', upstreamModel]] } : { drop: ['model'], set: [version] };
  },
  passHeaders: ['anthropic-beta'],
  response: () => response,
};
