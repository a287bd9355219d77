/**
 * OpenAI chat completions <-> Gemini generateContent: the request and the non-streamed response
 * (the stream part is stream.ts). References are listed in api.ts.
 *
 * Request: system/developer -> systemInstruction; user/assistant -> contents with roles user/model
 * (text, inlineData from data-URL images, fileData from https image URLs, functionCall from
 * tool_calls); `tool` messages -> functionResponse parts (the function name is found through the
 * tool_call_id in the assistant message that made the call); tools -> functionDeclarations with the
 * JSON Schema cleaned to Gemini's OpenAPI subset (keywords it rejects are dropped; `$ref` is refused);
 * tool_choice -> functionCallingConfig; response_format json_object/json_schema -> responseMimeType
 * and responseSchema (always enforced by Gemini: `json_schema.strict` and `function.strict` are
 * checked to be booleans and not sent, Gemini has no such switch); reasoning_effort -> thinkingConfig. Thought parts come back as reasoning_content.
 */
import { gatewayError, type GatewayError, isGatewayError } from '../../errors.js';
import {
  type ChatTranslator,
  type FinishReason,
  invalid,
  isObject,
  type Json,
  type JsonObject,
  openAIErrorJson,
  openAIErrorType,
  openAIUsage,
  optionalNumber,
  optionalPositiveInt,
  parseDataUrl,
  readStrict,
  textOfContent,
  type ProviderUsage,
  type ResponseOptions,
  type TranslatedResponse,
  type TranslationContext,
  unsupported,
} from '../translation.js';
import { GeminiStreamTranslator } from './stream.js';

const PROVIDER = 'Gemini';
/** Inline data limit of a generateContent request (20 MB in total); per image we stop at 15 MB. */
export const MAX_IMAGE_BYTES = 15 * 1024 * 1024;
const IMAGE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/heic', 'image/heif', 'image/gif']);
const TOOL_NAME = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;
const THINKING_BUDGET: Readonly<Record<string, number>> = { minimal: 512, low: 1024, medium: 8192, high: 24576 };
/** Schema keywords Gemini's `parameters`/`responseSchema` accept (its OpenAPI subset). */
const SCHEMA_KEYS: ReadonlySet<string> = new Set([
  'type', 'format', 'title', 'description', 'nullable', 'enum', 'maxItems', 'minItems', 'properties', 'required',
  'minProperties', 'maxProperties', 'minLength', 'maxLength', 'pattern', 'example', 'anyOf', 'propertyOrdering',
  'default', 'items', 'minimum', 'maximum',
]);
const MAX_STOP = 5;

type Part = Record<string, unknown>;
interface Turn {
  role: 'user' | 'model';
  parts: Part[];
}

/** OpenAI finish_reason for a Gemini finishReason (`toolCalls`: the answer called functions). */
export function finishReason(reason: unknown, toolCalls: boolean): FinishReason {
  switch (reason) {
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
    case 'IMAGE_SAFETY':
      return 'content_filter';
    default:
      return toolCalls ? 'tool_calls' : 'stop';
  }
}

/** Gemini usageMetadata (promptTokenCount includes cached tokens) -> normalised usage. */
export function readUsage(u: unknown): ProviderUsage | undefined {
  if (!isObject(u)) return undefined;
  const n = (k: string): number => (typeof u[k] === 'number' ? (u[k] as number) : 0);
  const thoughts = n('thoughtsTokenCount');
  return { promptTokens: n('promptTokenCount'), completionTokens: n('candidatesTokenCount') + thoughts, cachedTokens: n('cachedContentTokenCount'), reasoningTokens: thoughts };
}

/** Deterministic tool call id for a Gemini function call without one (the n-th call of an answer). */
export function callId(part: JsonObject, n: number): string {
  return typeof part['id'] === 'string' && part['id'] !== '' ? part['id'] : `call_${n}`;
}

/** Cleans a JSON Schema to Gemini's subset: unknown keywords dropped, `$ref` refused. */
export function cleanSchema(schema: Json, where: string): Json | GatewayError {
  if (Array.isArray(schema)) {
    const out: Json[] = [];
    for (const [i, s] of schema.entries()) {
      const c = cleanSchema(s, `${where}[${i}]`);
      if (isGatewayError(c)) return c;
      out.push(c);
    }
    return out;
  }
  if (!isObject(schema)) return schema;
  if ('$ref' in schema) return unsupported(`${where}.$ref`, PROVIDER, 'schemas with $ref cannot be translated; inline the definition');
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (!SCHEMA_KEYS.has(k)) continue;
    if (k === 'properties' && isObject(v)) {
      const props: Record<string, Json> = {};
      for (const [name, sub] of Object.entries(v)) {
        const c = cleanSchema(sub, `${where}.properties.${name}`);
        if (isGatewayError(c)) return c;
        props[name] = c;
      }
      out[k] = props;
    } else if (k === 'items' || k === 'anyOf') {
      const c = cleanSchema(v, `${where}.${k}`);
      if (isGatewayError(c)) return c;
      out[k] = c;
    } else if (k === 'type' && Array.isArray(v)) {
      // ["string", "null"] -> type string, nullable (Gemini takes one type).
      const types = v.filter((t) => t !== 'null');
      if (types.length !== 1) return unsupported(`${where}.type`, PROVIDER, 'a schema with several types; use anyOf');
      out['type'] = types[0] as Json;
      if (types.length !== v.length) out['nullable'] = true;
    } else {
      out[k] = v;
    }
  }
  return out;
}


function userParts(content: unknown, where: string): Part[] | GatewayError {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content) || content.length === 0) return invalid(`${where}.content`, 'expected a string or a non-empty array of content parts.');
  const parts: Part[] = [];
  for (const [i, part] of content.entries()) {
    const at = `${where}.content[${i}]`;
    if (!isObject(part)) return invalid(at, 'expected a content part object.');
    if (part['type'] === 'text' && typeof part['text'] === 'string') parts.push({ text: part['text'] });
    else if (part['type'] === 'image_url') {
      const url = isObject(part['image_url']) ? part['image_url']['url'] : undefined;
      if (typeof url !== 'string') return invalid(`${at}.image_url.url`, 'expected an https URL or a data URL.');
      if (url.startsWith('data:')) {
        const data = parseDataUrl(url);
        if (!data || !IMAGE_TYPES.has(data.mediaType)) return invalid(`${at}.image_url.url`, 'expected a base64 data URL of a png, jpeg, webp, heic, heif or gif image.');
        if (data.bytes > MAX_IMAGE_BYTES) return invalid(`${at}.image_url.url`, `the image is ${data.bytes} bytes; at most ${MAX_IMAGE_BYTES} bytes per image are sent to the ${PROVIDER} API.`);
        parts.push({ inlineData: { mimeType: data.mediaType, data: data.base64 } });
      } else if (url.startsWith('https://')) {
        const ext = /\.(png|jpe?g|webp|gif)(?:[?#]|$)/i.exec(url)?.[1]?.toLowerCase();
        parts.push({ fileData: { mimeType: ext === 'jpg' || ext === 'jpeg' ? 'image/jpeg' : `image/${ext ?? 'jpeg'}`, fileUri: url } });
      } else {
        return invalid(`${at}.image_url.url`, 'expected an https URL or a data URL.');
      }
    } else {
      return gatewayError('unsupported_parameter', `Content part type '${String(part['type'])}' (${at}) is not supported for models served by the ${PROVIDER} API (text and image_url are).`);
    }
  }
  return parts;
}

function pushTurn(turns: Turn[], role: 'user' | 'model', parts: Part[]): void {
  const last = turns[turns.length - 1];
  if (last && last.role === role) last.parts.push(...parts);
  else turns.push({ role, parts });
}

function translateMessages(messages: unknown): { system: Part[]; turns: Turn[] } | GatewayError {
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages', 'expected a non-empty array of messages.');
  const system: Part[] = [];
  const turns: Turn[] = [];
  /** tool_call_id -> function name, from the assistant messages seen so far. */
  const names = new Map<string, string>();
  for (const [i, msg] of messages.entries()) {
    const where = `messages[${i}]`;
    if (!isObject(msg)) return invalid(where, 'expected a message object.');
    const role = msg['role'];
    if (role === 'system' || role === 'developer') {
      const text = textOfContent(msg['content'], where);
      if (isGatewayError(text)) return text;
      if (text !== '') system.push({ text });
    } else if (role === 'user') {
      const parts = userParts(msg['content'], where);
      if (isGatewayError(parts)) return parts;
      pushTurn(turns, 'user', parts);
    } else if (role === 'assistant') {
      const parts: Part[] = [];
      if (msg['content'] !== undefined && msg['content'] !== null) {
        const text = textOfContent(msg['content'], where);
        if (isGatewayError(text)) return text;
        if (text !== '') parts.push({ text });
      }
      const calls = msg['tool_calls'];
      if (Array.isArray(calls)) {
        for (const [j, call] of calls.entries()) {
          const at = `${where}.tool_calls[${j}]`;
          if (!isObject(call) || !isObject(call['function']) || typeof call['id'] !== 'string') return invalid(at, 'expected {id, type: "function", function: {name, arguments}}.');
          const fn = call['function'];
          if (typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) return invalid(`${at}.function.name`, 'expected a function name.');
          let args: unknown = {};
          if (typeof fn['arguments'] === 'string' && fn['arguments'].trim() !== '') {
            try {
              args = JSON.parse(fn['arguments']);
            } catch {
              return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
            }
          }
          if (!isObject(args)) return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
          names.set(call['id'], fn['name']);
          parts.push({ functionCall: { name: fn['name'], args } });
        }
      }
      if (parts.length === 0) return invalid(where, 'an assistant message needs content or tool_calls.');
      pushTurn(turns, 'model', parts);
    } else if (role === 'tool') {
      const id = msg['tool_call_id'];
      const name = typeof id === 'string' ? names.get(id) : undefined;
      if (name === undefined) return invalid(`${where}.tool_call_id`, 'it must name a tool call of an earlier assistant message in this request (Gemini needs the function name).');
      const text = textOfContent(msg['content'], where);
      if (isGatewayError(text)) return text;
      let response: unknown;
      try {
        response = JSON.parse(text);
      } catch {
        response = undefined;
      }
      pushTurn(turns, 'user', [{ functionResponse: { name, response: isObject(response) ? response : { content: text } } }]);
    } else if (role === 'function') {
      return unsupported(`${where}.role`, PROVIDER, "the deprecated 'function' role; use tool messages");
    } else {
      return invalid(`${where}.role`, `unknown role '${String(role)}'.`);
    }
  }
  if (turns.length === 0) return invalid('messages', 'at least one user or assistant message is required besides system messages.');
  return { system, turns };
}

function translateTools(body: Readonly<Record<string, unknown>>): { tools?: Part[]; toolConfig?: Part } | GatewayError {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  const out: { tools?: Part[]; toolConfig?: Part } = {};
  const names = new Set<string>();
  if (Array.isArray(tools) && tools.length > 0) {
    const declarations: Part[] = [];
    for (const [i, tool] of tools.entries()) {
      const at = `tools[${i}]`;
      if (!isObject(tool) || tool['type'] !== 'function' || !isObject(tool['function'])) return unsupported(`${at}.type`, PROVIDER, 'only function tools are translated');
      const fn = tool['function'];
      if (typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) return invalid(`${at}.function.name`, 'expected a function name (letters, digits, _ . : -, starting with a letter or _).');
      // function.strict: validated, not sent (Gemini's function declarations have no strict switch).
      const strict = readStrict(fn, `${at}.function.strict`);
      if (isGatewayError(strict)) return strict;
      const decl: Record<string, unknown> = { name: fn['name'] };
      if (typeof fn['description'] === 'string') decl['description'] = fn['description'];
      if (fn['parameters'] !== undefined) {
        if (!isObject(fn['parameters']) || fn['parameters']['type'] !== 'object') return invalid(`${at}.function.parameters`, `the ${PROVIDER} API requires a JSON Schema of type 'object' for tool parameters.`);
        const cleaned = cleanSchema(fn['parameters'], `${at}.function.parameters`);
        if (isGatewayError(cleaned)) return cleaned;
        decl['parameters'] = cleaned;
      }
      names.add(fn['name']);
      declarations.push(decl);
    }
    out.tools = [{ functionDeclarations: declarations }];
  } else if (tools !== undefined && tools !== null && !Array.isArray(tools)) {
    return invalid('tools', 'expected an array of tools.');
  }
  if (choice !== undefined && choice !== null) {
    if (!out.tools && choice !== 'none') return invalid('tool_choice', "tool_choice is only allowed when 'tools' are given.");
    let config: Part | undefined;
    if (choice === 'auto') config = { mode: 'AUTO' };
    else if (choice === 'none') config = { mode: 'NONE' };
    else if (choice === 'required') config = { mode: 'ANY' };
    else if (isObject(choice) && isObject(choice['function']) && typeof choice['function']['name'] === 'string') {
      const name = choice['function']['name'];
      if (!names.has(name)) return invalid('tool_choice', `the named function '${name}' is not among the tools.`);
      config = { mode: 'ANY', allowedFunctionNames: [name] };
    } else {
      return unsupported('tool_choice', PROVIDER, "expected 'auto', 'none', 'required' or {type: 'function', function: {name}}");
    }
    if (out.tools) out.toolConfig = { functionCallingConfig: config };
  }
  return out;
}

function translateRequest(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const n = body['n'];
  if (n !== undefined && n !== null && n !== 1) return unsupported('n', PROVIDER, 'n must be 1 (one candidate per request is translated)');
  if (body['logprobs'] === true) return unsupported('logprobs', PROVIDER);
  const bias = body['logit_bias'];
  if (isObject(bias) && Object.keys(bias).length > 0) return unsupported('logit_bias', PROVIDER);
  if (body['audio'] !== undefined && body['audio'] !== null) return unsupported('audio', PROVIDER);
  const messages = translateMessages(body['messages']);
  if (isGatewayError(messages)) return messages;
  const tools = translateTools(body);
  if (isGatewayError(tools)) return tools;
  const gen: Record<string, unknown> = {};
  const temperature = optionalNumber(body, 'temperature', 0, 2);
  if (isGatewayError(temperature)) return temperature;
  const topP = optionalNumber(body, 'top_p', 0, 1);
  if (isGatewayError(topP)) return topP;
  const maxCompletion = optionalPositiveInt(body, 'max_completion_tokens');
  if (isGatewayError(maxCompletion)) return maxCompletion;
  const maxTokens = optionalPositiveInt(body, 'max_tokens');
  if (isGatewayError(maxTokens)) return maxTokens;
  const presence = optionalNumber(body, 'presence_penalty', -2, 2);
  if (isGatewayError(presence)) return presence;
  const frequency = optionalNumber(body, 'frequency_penalty', -2, 2);
  if (isGatewayError(frequency)) return frequency;
  if (temperature !== undefined) gen['temperature'] = temperature;
  if (topP !== undefined) gen['topP'] = topP;
  const max = maxCompletion ?? maxTokens ?? ctx.defaultMaxTokens;
  if (max !== undefined) gen['maxOutputTokens'] = max;
  if (presence !== undefined && presence !== 0) gen['presencePenalty'] = presence;
  if (frequency !== undefined && frequency !== 0) gen['frequencyPenalty'] = frequency;
  if (typeof body['seed'] === 'number' && Number.isInteger(body['seed'])) gen['seed'] = body['seed'];
  const stop = body['stop'];
  const stops = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : stop === undefined || stop === null ? [] : undefined;
  if (!stops || !stops.every((s) => typeof s === 'string' && s !== '')) return invalid('stop', 'expected a string or an array of non-empty strings.');
  if (stops.length > MAX_STOP) return invalid('stop', `the ${PROVIDER} API takes at most ${MAX_STOP} stop sequences.`);
  if (stops.length > 0) gen['stopSequences'] = stops;
  const format = body['response_format'];
  if (isObject(format) && format['type'] === 'json_object') gen['responseMimeType'] = 'application/json';
  else if (isObject(format) && format['type'] === 'json_schema') {
    const spec = format['json_schema'];
    const schema = isObject(spec) ? spec['schema'] : undefined;
    if (!isObject(spec) || !isObject(schema)) return invalid('response_format.json_schema.schema', 'expected a JSON Schema object.');
    // strict: validated, not sent: Gemini always constrains the answer to responseSchema (controlled
    // generation), strict or not; keywords cleanSchema drops are not enforced either way.
    const strict = readStrict(spec, 'response_format.json_schema.strict');
    if (isGatewayError(strict)) return strict;
    const cleaned = cleanSchema(schema, 'response_format.json_schema.schema');
    if (isGatewayError(cleaned)) return cleaned;
    gen['responseMimeType'] = 'application/json';
    gen['responseSchema'] = cleaned;
  } else if (format !== undefined && format !== null && !(isObject(format) && format['type'] === 'text')) {
    return invalid('response_format', "expected type 'text', 'json_object' or 'json_schema'.");
  }
  const effort = body['reasoning_effort'];
  if (effort !== undefined && effort !== null) {
    if (effort === 'none') gen['thinkingConfig'] = { thinkingBudget: 0 };
    else {
      const budget = typeof effort === 'string' ? THINKING_BUDGET[effort] : undefined;
      if (budget === undefined) return invalid('reasoning_effort', "expected 'none', 'minimal', 'low', 'medium' or 'high'.");
      gen['thinkingConfig'] = { thinkingBudget: budget, includeThoughts: true };
    }
  }
  const out: Record<string, unknown> = { contents: messages.turns };
  if (messages.system.length > 0) out['systemInstruction'] = { parts: messages.system };
  if (tools.tools) out['tools'] = tools.tools;
  if (tools.toolConfig) out['toolConfig'] = tools.toolConfig;
  if (Object.keys(gen).length > 0) out['generationConfig'] = gen;
  return Buffer.from(JSON.stringify(out));
}

function translateResponse(raw: Buffer, options: ResponseOptions): TranslatedResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    msg = undefined;
  }
  if (!isObject(msg)) return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned a malformed response.`, 'api_error', 'bad_upstream_response')) };
  const candidate = Array.isArray(msg['candidates']) && isObject(msg['candidates'][0]) ? msg['candidates'][0] : undefined;
  const parts = candidate && isObject(candidate['content']) && Array.isArray(candidate['content']['parts']) ? candidate['content']['parts'] : [];
  let text = '';
  let reasoning = '';
  const toolCalls: Record<string, unknown>[] = [];
  for (const part of parts) {
    if (!isObject(part)) continue;
    if (typeof part['text'] === 'string') {
      if (part['thought'] === true) reasoning += part['text'];
      else text += part['text'];
    } else if (isObject(part['functionCall'])) {
      const call = part['functionCall'];
      toolCalls.push({ id: callId(call, toolCalls.length), type: 'function', function: { name: call['name'], arguments: JSON.stringify(call['args'] ?? {}) } });
    }
  }
  const blocked = isObject(msg['promptFeedback']) && typeof msg['promptFeedback']['blockReason'] === 'string';
  const message: Record<string, unknown> = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null };
  if (reasoning) message['reasoning_content'] = reasoning;
  if (toolCalls.length > 0) message['tool_calls'] = toolCalls;
  const usage = readUsage(msg['usageMetadata']);
  const out: Record<string, unknown> = {
    id: typeof msg['responseId'] === 'string' ? msg['responseId'] : `chatcmpl-gemini-${options.created}`,
    object: 'chat.completion',
    created: options.created,
    model: typeof msg['modelVersion'] === 'string' ? msg['modelVersion'] : options.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: blocked ? 'content_filter' : finishReason(candidate?.['finishReason'], toolCalls.length > 0) }],
  };
  if (usage) out['usage'] = openAIUsage(usage);
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

const CODES: Readonly<Record<string, string>> = {
  INVALID_ARGUMENT: 'invalid_request_error',
  FAILED_PRECONDITION: 'invalid_request_error',
  UNAUTHENTICATED: 'invalid_api_key',
  PERMISSION_DENIED: 'permission_denied',
  NOT_FOUND: 'model_not_found',
  RESOURCE_EXHAUSTED: 'rate_limit_exceeded',
  INTERNAL: 'provider_error',
  UNAVAILABLE: 'provider_overloaded',
  DEADLINE_EXCEEDED: 'provider_timeout',
};

function translateError(status: number, raw: Buffer): Buffer {
  let message = '';
  let code: string | null = null;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    const e = Array.isArray(parsed) ? parsed[0] : parsed; // some proxies wrap it in an array
    if (isObject(e) && isObject(e['error'])) {
      if (typeof e['error']['message'] === 'string') message = e['error']['message'];
      if (typeof e['error']['status'] === 'string') code = CODES[e['error']['status']] ?? e['error']['status'];
    }
  } catch {
    // Not JSON: the status says enough.
  }
  return Buffer.from(openAIErrorJson(message || `The provider (${PROVIDER} API) answered HTTP ${status}.`, openAIErrorType(status), code));
}

export const geminiChat: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request: translateRequest,
  status: (s) => s,
  response: translateResponse,
  error: translateError,
  stream: (options) => new GeminiStreamTranslator(options),
};
