/**
 * Anthropic Messages (the client, `/v1/messages`) <-> OpenAI chat completions (the provider): the
 * request and the non-streamed response; the stream part is messages-stream.ts. The reverse of
 * providers/anthropic/chat.ts, sharing its stop-reason and usage vocabulary.
 *
 * Request: `system` (string or text blocks) -> a system message; user turns -> text and image_url
 * parts (base64 sources as data URLs, url sources as URLs), tool_result blocks -> `tool` messages
 * (ids round-trip unchanged); assistant turns -> content and tool_calls (thinking blocks of earlier
 * turns are dropped for OpenAI-style providers, which cannot take them back; composed with a Claude
 * translator, signed blocks go as the message's `thinking_blocks`, which Claude needs back in a
 * tool loop); tools/tool_choice
 * (disable_parallel_tool_use -> parallel_tool_calls false); max_tokens, stop_sequences, temperature,
 * top_p, metadata.user_id -> user; extended thinking -> reasoning_effort. What chat completions
 * cannot honour (documents, server tools, top_k, MCP servers...) is a clear 400 before anything is
 * sent. Streams always ask for `stream_options.include_usage` (Anthropic streams always carry usage).
 *
 * Response: thinking_blocks (with signatures) or else reasoning_content -> thinking blocks, content -> a text block, tool_calls -> tool_use
 * blocks (arguments parsed into `input`); finish_reason -> stop_reason; usage -> Anthropic usage
 * (cached prompt tokens reported apart as cache_read_input_tokens, as Anthropic does).
 */
import { openAIStrictProblem } from './strict-schema.js';
import { gatewayError, isGatewayError, type GatewayError } from '../../errors.js';
import { THINKING_BUDGET } from '../anthropic/chat.js';
import { checkMessagesRequest } from '../anthropic/messages-request.js';
import {
  type ChatTranslator,
  invalid,
  isObject,
  type JsonObject,
  optionalNumber,
  type ResponseOptions,
  type TranslatedResponse,
  type TranslationContext,
} from '../translation.js';
import { MessagesStreamTranslator } from './messages-stream.js';

const PROVIDER = 'OpenAI chat completions';

type Part = Record<string, unknown>;
type ChatMessage = Record<string, unknown>;

/** 400 for a Messages feature the chat completions API has no counterpart for. */
function untranslatable(param: string, why: string): GatewayError {
  return gatewayError('unsupported_parameter', `'${param}' is not supported for models served by the ${PROVIDER} API: ${why}.`);
}

function textOfBlocks(blocks: unknown, where: string): string | GatewayError {
  if (typeof blocks === 'string') return blocks;
  if (!Array.isArray(blocks)) return invalid(where, 'expected a string or an array of text blocks.');
  let text = '';
  for (const [i, b] of blocks.entries()) {
    if (!isObject(b) || b['type'] !== 'text' || typeof b['text'] !== 'string') {
      return untranslatable(`${where}[${i}]`, 'only text blocks are translated here');
    }
    text += (text ? '\n' : '') + b['text'];
  }
  return text;
}

function imagePart(block: JsonObject, where: string): Part | GatewayError {
  const source = block['source'];
  if (!isObject(source)) return invalid(`${where}.source`, 'Field required.');
  if (source['type'] === 'base64') {
    if (typeof source['media_type'] !== 'string' || typeof source['data'] !== 'string') return invalid(`${where}.source`, 'expected {type: "base64", media_type, data}.');
    return { type: 'image_url', image_url: { url: `data:${source['media_type']};base64,${source['data']}` } };
  }
  if (source['type'] === 'url') {
    if (typeof source['url'] !== 'string') return invalid(`${where}.source.url`, 'expected a URL.');
    return { type: 'image_url', image_url: { url: source['url'] } };
  }
  return untranslatable(`${where}.source.type`, `image source '${String(source['type'])}' (base64 and url are translated)`);
}

/** A tool_result's content: its text for the tool message, its images for the user message after it. */
function toolResultContent(content: unknown, where: string): { text: string; images: Part[] } | GatewayError {
  if (content === undefined || content === null) return { text: '', images: [] };
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) return invalid(where, 'expected a string or an array of text and image blocks.');
  let text = '';
  const images: Part[] = [];
  for (const [i, b] of content.entries()) {
    if (isObject(b) && b['type'] === 'text' && typeof b['text'] === 'string') text += (text ? '\n' : '') + b['text'];
    else if (isObject(b) && b['type'] === 'image') {
      const part = imagePart(b, `${where}[${i}]`);
      if (isGatewayError(part)) return part;
      images.push(part);
    } else return untranslatable(`${where}[${i}]`, 'only text and image blocks are translated in a tool_result');
  }
  return { text, images };
}

/** One user turn: tool results become `tool` messages (first, as chat completions requires), the rest one user message. */
function userMessages(content: unknown, where: string, out: ChatMessage[]): GatewayError | undefined {
  if (typeof content === 'string') {
    out.push({ role: 'user', content });
    return undefined;
  }
  const parts: Part[] = [];
  for (const [i, raw] of (content as unknown[]).entries()) {
    const at = `${where}.content[${i}]`;
    const block = raw as JsonObject;
    switch (block['type']) {
      case 'text':
        if (typeof block['text'] !== 'string') return invalid(`${at}.text`, 'expected a string.');
        parts.push({ type: 'text', text: block['text'] });
        break;
      case 'image': {
        const part = imagePart(block, at);
        if (isGatewayError(part)) return part;
        parts.push(part);
        break;
      }
      case 'tool_result': {
        const id = block['tool_use_id'];
        if (typeof id !== 'string' || id === '') return invalid(`${at}.tool_use_id`, 'Field required.');
        const result = toolResultContent(block['content'], `${at}.content`);
        if (isGatewayError(result)) return result;
        out.push({ role: 'tool', tool_call_id: id, content: block['is_error'] === true ? `Error: ${result.text}` : result.text });
        // A tool message holds text only: images a tool returned (screenshots, files read) follow in the user message.
        parts.push(...result.images);
        break;
      }
      default:
        return untranslatable(`${at}.type`, `content block type '${String(block['type'])}' in a user turn (text, image and tool_result are translated)`);
    }
  }
  if (parts.length > 0) out.push({ role: 'user', content: parts.length === 1 && parts[0]?.['type'] === 'text' ? parts[0]['text'] : parts });
  return undefined;
}

function assistantMessage(content: unknown, where: string, carryThinking: boolean): ChatMessage | GatewayError {
  if (typeof content === 'string') return { role: 'assistant', content };
  let text = '';
  const calls: Part[] = [];
  const thinking: Part[] = [];
  for (const [i, raw] of (content as unknown[]).entries()) {
    const at = `${where}.content[${i}]`;
    const block = raw as JsonObject;
    switch (block['type']) {
      case 'text':
        if (typeof block['text'] !== 'string') return invalid(`${at}.text`, 'expected a string.');
        text += block['text'];
        break;
      case 'tool_use': {
        if (typeof block['id'] !== 'string' || typeof block['name'] !== 'string') return invalid(at, 'expected {type: "tool_use", id, name, input}.');
        const input = block['input'] ?? {};
        if (!isObject(input)) return invalid(`${at}.input`, 'expected an object.');
        calls.push({ id: block['id'], type: 'function', function: { name: block['name'], arguments: JSON.stringify(input) } });
        break;
      }
      case 'thinking':
        // Signed by Claude (an empty signature is what the gateway gives other providers' reasoning).
        if (carryThinking && typeof block['thinking'] === 'string' && typeof block['signature'] === 'string' && block['signature'] !== '') {
          thinking.push({ type: 'thinking', thinking: block['thinking'], signature: block['signature'] });
        }
        break;
      case 'redacted_thinking':
        if (carryThinking && typeof block['data'] === 'string' && block['data'] !== '') thinking.push({ type: 'redacted_thinking', data: block['data'] });
        break;
      default:
        return untranslatable(`${at}.type`, `content block type '${String(block['type'])}' in an assistant turn (text, tool_use and thinking are translated)`);
    }
  }
  const msg: ChatMessage = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text };
  if (calls.length > 0) msg['tool_calls'] = calls;
  if (thinking.length > 0) msg['thinking_blocks'] = thinking;
  return msg;
}

function translateTools(body: Readonly<Record<string, unknown>>, out: Record<string, unknown>): GatewayError | undefined {
  const tools = body['tools'];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) return invalid('tools', 'expected an array of tools.');
    const list: Part[] = [];
    for (const [i, tool] of tools.entries()) {
      const at = `tools[${i}]`;
      if (!isObject(tool)) return invalid(at, 'expected a tool object.');
      if (tool['type'] !== undefined && tool['type'] !== 'custom') return untranslatable(`${at}.type`, `server tool '${String(tool['type'])}' (only client tools with an input_schema are translated)`);
      if (typeof tool['name'] !== 'string' || tool['name'] === '') return invalid(`${at}.name`, 'Field required.');
      const schema = tool['input_schema'];
      if (!isObject(schema)) return invalid(`${at}.input_schema`, 'Field required.');
      const fn: Part = { name: tool['name'], parameters: schema };
      if (typeof tool['description'] === 'string') fn['description'] = tool['description'];
      const strict = tool['strict'];
      if (strict !== undefined && strict !== null && typeof strict !== 'boolean') return invalid(`${at}.strict`, 'Input should be a valid boolean.');
      // OpenAI's strict mode takes a narrower schema than Anthropic's (strict-schema.ts): outside it,
      // `strict` is dropped (the tool is still offered, unenforced) rather than the request refused.
      if (strict === true && openAIStrictProblem(schema) === undefined) fn['strict'] = true;
      list.push({ type: 'function', function: fn });
    }
    if (list.length > 0) out['tools'] = list;
  }
  const choice = body['tool_choice'];
  if (choice === undefined || choice === null) return undefined;
  if (!isObject(choice)) return invalid('tool_choice', 'expected an object {type}.');
  switch (choice['type']) {
    case 'auto':
      out['tool_choice'] = 'auto';
      break;
    case 'any':
      out['tool_choice'] = 'required';
      break;
    case 'none':
      out['tool_choice'] = 'none';
      break;
    case 'tool':
      if (typeof choice['name'] !== 'string') return invalid('tool_choice.name', 'Field required.');
      out['tool_choice'] = { type: 'function', function: { name: choice['name'] } };
      break;
    default:
      return invalid('tool_choice.type', "expected 'auto', 'any', 'tool' or 'none'.");
  }
  if (choice['disable_parallel_tool_use'] === true && out['tools'] !== undefined) out['parallel_tool_calls'] = false;
  return undefined;
}

/** Top-level Messages fields chat completions has no counterpart for. */
const UNTRANSLATABLE: readonly (readonly [string, string])[] = [
  ['top_k', 'chat completions has no top_k'],
  ['mcp_servers', 'the MCP connector is an Anthropic API feature'],
  ['container', 'code execution containers are an Anthropic API feature'],
];

/** The Messages request as a chat completions request (an object: the estimator and composed translators read it). */
export function messagesToChat(
  body: Readonly<Record<string, unknown>>,
  upstreamModel: string,
  maxTokensField: 'max_tokens' | 'max_completion_tokens',
  /**
   * The model's `maxTokens` (ModelProvider models[].maxTokens): a cap on the client's max_tokens.
   * Anthropic clients such as Claude Code ask for more output than many other models allow (32000
   * where gpt-4o takes 16384); the provider would refuse the request otherwise.
   */
  maxTokensCap?: number,
  /** Signed thinking blocks go on as `thinking_blocks` (only for the gateway's own Claude translators). */
  carryThinking = false,
): Record<string, unknown> | GatewayError {
  const refused = checkMessagesRequest(body);
  if (refused) return refused;
  for (const [field, why] of UNTRANSLATABLE) {
    if (body[field] !== undefined && body[field] !== null) return untranslatable(field, why);
  }
  const messages: ChatMessage[] = [];
  const system = body['system'];
  if (system !== undefined) {
    const text = textOfBlocks(system, 'system');
    if (isGatewayError(text)) return text;
    if (text !== '') messages.push({ role: 'system', content: text });
  }
  for (const [i, raw] of (body['messages'] as unknown[]).entries()) {
    const msg = raw as JsonObject;
    const where = `messages[${i}]`;
    if (msg['role'] === 'user') {
      const refusedTurn = userMessages(msg['content'], where, messages);
      if (refusedTurn) return refusedTurn;
    } else {
      const m = assistantMessage(msg['content'], where, carryThinking);
      if (isGatewayError(m)) return m;
      messages.push(m);
    }
  }
  const asked = body['max_tokens'] as number;
  const out: Record<string, unknown> = { model: upstreamModel, messages, [maxTokensField]: maxTokensCap !== undefined && maxTokensCap < asked ? maxTokensCap : asked };
  const refusedTools = translateTools(body, out);
  if (refusedTools) return refusedTools;
  const temperature = optionalNumber(body, 'temperature', 0, 1);
  if (isGatewayError(temperature)) return temperature;
  if (temperature !== undefined) out['temperature'] = temperature;
  const topP = optionalNumber(body, 'top_p', 0, 1);
  if (isGatewayError(topP)) return topP;
  if (topP !== undefined) out['top_p'] = topP;
  const stop = body['stop_sequences'];
  if (stop !== undefined && stop !== null) {
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) return invalid('stop_sequences', 'expected an array of strings.');
    if (stop.length > 4) return untranslatable('stop_sequences', 'chat completions takes at most 4 stop sequences');
    if (stop.length > 0) out['stop'] = stop;
  }
  const metadata = body['metadata'];
  if (isObject(metadata) && typeof metadata['user_id'] === 'string') out['user'] = metadata['user_id'];
  const thinking = body['thinking'];
  if (isObject(thinking) && thinking['type'] === 'enabled') {
    const budget = typeof thinking['budget_tokens'] === 'number' ? thinking['budget_tokens'] : 0;
    out['reasoning_effort'] = budget <= (THINKING_BUDGET['low'] ?? 2048) ? 'low' : budget <= (THINKING_BUDGET['medium'] ?? 8192) ? 'medium' : 'high';
  }
  if (body['stream'] === true) {
    out['stream'] = true;
    out['stream_options'] = { include_usage: true };
  }
  return out;
}

// ---- response ----------------------------------------------------------------------------------

/** Anthropic `stop_reason` for an OpenAI `finish_reason`. */
export function stopReason(finish: unknown): string {
  switch (finish) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/** Anthropic usage for an OpenAI usage object (cached prompt tokens apart, as Anthropic reports them). */
export function anthropicUsage(usage: unknown): { input_tokens: number; output_tokens: number; cache_read_input_tokens?: number } {
  if (!isObject(usage)) return { input_tokens: 0, output_tokens: 0 };
  const prompt = typeof usage['prompt_tokens'] === 'number' ? usage['prompt_tokens'] : 0;
  const completion = typeof usage['completion_tokens'] === 'number' ? usage['completion_tokens'] : 0;
  const details = usage['prompt_tokens_details'];
  const cached = isObject(details) && typeof details['cached_tokens'] === 'number' ? details['cached_tokens'] : 0;
  return cached > 0 ? { input_tokens: prompt - cached, output_tokens: completion, cache_read_input_tokens: cached } : { input_tokens: prompt, output_tokens: completion };
}

/** Parses streamed or whole tool-call arguments into Anthropic's `input` object. */
export function toolInput(args: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(args);
    return isObject(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return {};
  }
}

function translateResponse(raw: Buffer, _options: ResponseOptions): TranslatedResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return badUpstream('The provider answered with a body that is not JSON.');
  }
  if (!isObject(parsed) || !Array.isArray(parsed['choices'])) return badUpstream('The provider answered without choices.');
  const choice = parsed['choices'][0];
  const message = isObject(choice) && isObject(choice['message']) ? choice['message'] : {};
  const content: Part[] = [];
  const blocks = message['thinking_blocks'];
  const reasoning = message['reasoning_content'];
  if (Array.isArray(blocks) && blocks.length > 0) {
    // Claude's own blocks (through Bedrock or Vertex AI), signatures kept for the next turn.
    for (const b of blocks) {
      if (isObject(b) && b['type'] === 'thinking' && typeof b['thinking'] === 'string') content.push({ type: 'thinking', thinking: b['thinking'], signature: typeof b['signature'] === 'string' ? b['signature'] : '' });
      else if (isObject(b) && b['type'] === 'redacted_thinking' && typeof b['data'] === 'string') content.push({ type: 'redacted_thinking', data: b['data'] });
    }
  } else if (typeof reasoning === 'string' && reasoning !== '') content.push({ type: 'thinking', thinking: reasoning, signature: '' });
  const text = message['content'];
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  const calls = message['tool_calls'];
  if (Array.isArray(calls)) {
    for (const call of calls) {
      if (!isObject(call) || !isObject(call['function'])) continue;
      const fn = call['function'];
      content.push({ type: 'tool_use', id: call['id'] ?? '', name: fn['name'] ?? '', input: toolInput(typeof fn['arguments'] === 'string' ? fn['arguments'] : '') });
    }
  }
  const out = {
    id: typeof parsed['id'] === 'string' ? parsed['id'] : '',
    type: 'message',
    role: 'assistant',
    model: typeof parsed['model'] === 'string' ? parsed['model'] : '',
    content,
    stop_reason: stopReason(isObject(choice) ? choice['finish_reason'] : undefined),
    stop_sequence: null,
    // Last, as Anthropic puts it: the usage meter reads it from the tail of the body.
    usage: anthropicUsage(parsed['usage']),
  };
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

function badUpstream(message: string): TranslatedResponse {
  return { status: 502, body: Buffer.from(anthropicErrorJson('api_error', message)) };
}

/** Anthropic's error body. */
export function anthropicErrorJson(type: string, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}

/** Anthropic error `type` for an HTTP status (what Anthropic itself answers with it). */
export function anthropicErrorType(status: number): string {
  if (status === 400 || status === 422) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 529 || status === 503) return 'overloaded_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

/** An OpenAI-shaped (or any) provider error body -> Anthropic's error shape, the provider's message kept. */
function translateError(status: number, raw: Buffer): Buffer {
  let message = '';
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (isObject(parsed) && isObject(parsed['error']) && typeof parsed['error']['message'] === 'string') message = parsed['error']['message'];
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return Buffer.from(anthropicErrorJson(anthropicErrorType(status), message || `The provider (${PROVIDER} API) answered HTTP ${status}.`));
}

function translator(maxTokensField: 'max_tokens' | 'max_completion_tokens', carryThinking = false): ChatTranslator {
  return {
    streamContentType: 'text/event-stream',
    request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
      const chat = messagesToChat(body, ctx.upstreamModel, maxTokensField, ctx.defaultMaxTokens, carryThinking);
      return isGatewayError(chat) ? chat : Buffer.from(JSON.stringify(chat));
    },
    status: (s) => s,
    response: translateResponse,
    error: translateError,
    stream: () => new MessagesStreamTranslator(),
  };
}

/**
 * Messages -> OpenAI's own API and Azure OpenAI: `max_completion_tokens` (the only cap OpenAI's
 * reasoning models accept).
 */
export const messagesToOpenAI: ChatTranslator = translator('max_completion_tokens');
/** Messages -> OpenAI-compatible engines (vLLM, Ollama...): `max_tokens`, which all of them read. */
export const messagesToOpenAICompatible: ChatTranslator = translator('max_tokens');
/**
 * Messages -> the gateway's own chat translators (Bedrock, Gemini, Vertex AI; composed in
 * front-doors.ts): as for OpenAI-compatible engines, plus signed thinking blocks as `thinking_blocks`,
 * which the Claude translators send back to Claude.
 */
export const messagesToTranslatedChat: ChatTranslator = translator('max_tokens', true);
