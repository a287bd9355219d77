/**
 * Checks an Anthropic Messages request (the `/v1/messages` front door) before anything is sent
 * upstream, whichever provider serves it: what Anthropic's API itself would refuse with a 400
 * (https://docs.anthropic.com/en/api/messages): `max_tokens` missing or not a positive integer,
 * `messages` not a non-empty array of user/assistant turns, a content block of a type the API does
 * not define, a malformed `system`. Pure; the translators (providers/openai/messages.ts) check the
 * finer points of what they can translate.
 */
import { type GatewayError } from '../../errors.js';
import { invalid, isObject } from '../translation.js';

/** Content block types of the Messages API (request side), as documented. */
export const MESSAGE_BLOCK_TYPES: ReadonlySet<string> = new Set([
  'text',
  'image',
  'document',
  'search_result',
  'tool_use',
  'tool_result',
  'thinking',
  'redacted_thinking',
  'server_tool_use',
  'web_search_tool_result',
  'web_fetch_tool_result',
  'code_execution_tool_result',
  'bash_code_execution_tool_result',
  'text_editor_code_execution_tool_result',
  'mcp_tool_use',
  'mcp_tool_result',
  'container_upload',
]);

/** A well-formed Messages request, or the 400 Anthropic would answer. */
export function checkMessagesRequest(body: Readonly<Record<string, unknown>>): GatewayError | undefined {
  const max = body['max_tokens'];
  if (max === undefined || max === null) return invalid('max_tokens', 'Field required.');
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) return invalid('max_tokens', 'expected a positive integer.');
  const stream = body['stream'];
  if (stream !== undefined && typeof stream !== 'boolean') return invalid('stream', 'expected a boolean.');
  const system = body['system'];
  if (system !== undefined && typeof system !== 'string') {
    if (!Array.isArray(system)) return invalid('system', 'expected a string or an array of text blocks.');
    for (const [i, block] of system.entries()) {
      if (!isObject(block) || block['type'] !== 'text' || typeof block['text'] !== 'string') return invalid(`system[${i}]`, 'expected a text block {type: "text", text}.');
    }
  }
  return checkMessages(body['messages']);
}

/** `messages` of a Messages or count_tokens request. */
export function checkMessages(messages: unknown): GatewayError | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages', 'expected a non-empty array of messages.');
  for (const [i, msg] of messages.entries()) {
    const at = `messages[${i}]`;
    if (!isObject(msg)) return invalid(at, 'expected a message object {role, content}.');
    const role = msg['role'];
    if (role !== 'user' && role !== 'assistant') return invalid(`${at}.role`, `expected 'user' or 'assistant', got ${JSON.stringify(role ?? null)}.`);
    const content = msg['content'];
    if (typeof content === 'string') continue;
    if (!Array.isArray(content)) return invalid(`${at}.content`, 'expected a string or an array of content blocks.');
    for (const [j, block] of content.entries()) {
      const where = `${at}.content[${j}]`;
      if (!isObject(block)) return invalid(where, 'expected a content block object.');
      const type = block['type'];
      if (typeof type !== 'string') return invalid(`${where}.type`, 'Field required.');
      if (!MESSAGE_BLOCK_TYPES.has(type)) return invalid(`${where}.type`, `unknown content block type '${type}'.`);
    }
  }
  return undefined;
}
