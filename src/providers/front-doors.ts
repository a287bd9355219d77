/**
 * Which provider API serves each front door, per provider type: passed through (the provider speaks
 * the client's API), translated (a translator per client API and provider API pair, composed through
 * chat completions where no direct one exists), or not served (a clear 400 naming what is).
 *
 *   /v1/chat/completions   OpenAI-style providers pass through; others use their `chat` translator.
 *   /v1/embeddings         OpenAI-style providers pass through; `gemini` and `aws-bedrock` are translated (their `embeddings` translators).
 *   /v1/messages           `anthropic` passes through; Claude on `aws-bedrock` (InvokeModel) and
 *                          `gcp-vertex-ai` (rawPredict) is sent natively (the client's body with a few
 *                          top-level edits, ProviderAdapter.nativeMessages); OpenAI-style providers are
 *                          translated (providers/openai/messages.ts); other types through their chat translator.
 *   /v1/messages/count_tokens  `anthropic` passes through; Claude on Bedrock / Vertex AI goes to the
 *                          cloud's token counting; for others the gateway answers itself.
 *   /v1/responses          `openai` and `azure-openai` pass through; other types are translated to chat
 *                          completions (providers/openai/responses.ts), chained with their chat translator.
 */
import type { ProviderType } from '../config/types.js';
import { messagesToOpenAI, messagesToOpenAICompatible, messagesToTranslatedChat } from './openai/messages.js';
import { responsesToOpenAICompatible } from './openai/responses.js';
import { adapterFor } from './registry.js';
import { composeTranslators, type ChatTranslator } from './translation.js';
import type { MessagesOperation, NativeMessages, Operation } from './types.js';

export type Upstream =
  /** The body goes to `operation` of the provider unchanged but for the model name. */
  | { readonly kind: 'passthrough'; readonly operation: Operation }
  /**
   * The client's Anthropic body goes to `operation` of a cloud that serves the model natively, with
   * `native`'s top-level edits; the response is read only where `native` must (errors, Bedrock streams).
   */
  | { readonly kind: 'native'; readonly operation: MessagesOperation; readonly native: NativeMessages }
  /** The body is translated for `operation` of the provider, and the response back. */
  | { readonly kind: 'translate'; readonly operation: Operation; readonly translator: ChatTranslator }
  /** This provider type does not serve the front door; `supported` names the types that do. */
  | { readonly kind: 'unsupported'; readonly supported: string };

const RESPONSES_TYPES: ReadonlySet<ProviderType> = new Set(['openai', 'azure-openai']);
const OPENAI_STYLE: ReadonlySet<ProviderType> = new Set(['openai', 'azure-openai', 'openai-compatible']);
const composed = new Map<ProviderType, ChatTranslator>();
const composedResponses = new Map<ProviderType, ChatTranslator>();

/**
 * How a request of `operation` reaches a provider of `type` serving `upstreamModel` (the model
 * matters only for Messages on clouds that serve some models natively).
 */
export function upstreamFor(operation: Operation, type: ProviderType, upstreamModel = ''): Upstream {
  const adapter = adapterFor(type);
  const chat = adapter.chat;
  if ((operation === 'messages' || operation === 'messages/count_tokens') && adapter.nativeMessages?.serves(upstreamModel)) {
    return { kind: 'native', operation, native: adapter.nativeMessages };
  }
  switch (operation) {
    case 'chat/completions':
      return chat ? { kind: 'translate', operation, translator: chat } : { kind: 'passthrough', operation };
    case 'embeddings': {
      const embeddings = adapterFor(type).embeddings;
      if (embeddings) return { kind: 'translate', operation, translator: embeddings };
      return chat ? { kind: 'unsupported', supported: 'openai, azure-openai, openai-compatible, gemini, gcp-vertex-ai and aws-bedrock' } : { kind: 'passthrough', operation };
    }
    case 'responses': {
      if (RESPONSES_TYPES.has(type)) return { kind: 'passthrough', operation };
      if (!chat) return { kind: 'translate', operation: 'chat/completions', translator: responsesToOpenAICompatible };
      let t = composedResponses.get(type);
      if (!t) {
        t = composeTranslators(responsesToOpenAICompatible, chat);
        composedResponses.set(type, t);
      }
      return { kind: 'translate', operation: 'chat/completions', translator: t };
    }
    case 'messages/count_tokens':
      return type === 'anthropic' ? { kind: 'passthrough', operation } : { kind: 'unsupported', supported: 'anthropic' };
    case 'messages': {
      if (type === 'anthropic') return { kind: 'passthrough', operation };
      if (type === 'openai' || type === 'azure-openai') return { kind: 'translate', operation: 'chat/completions', translator: messagesToOpenAI };
      if (OPENAI_STYLE.has(type) || !chat) return { kind: 'translate', operation: 'chat/completions', translator: messagesToOpenAICompatible };
      let t = composed.get(type);
      if (!t) {
        t = composeTranslators(messagesToTranslatedChat, chat);
        composed.set(type, t);
      }
      return { kind: 'translate', operation: 'chat/completions', translator: t };
    }
  }
}
