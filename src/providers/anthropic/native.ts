/**
 * Shared parts of the clouds that serve Claude with Anthropic's own Messages API (Bedrock InvokeModel,
 * Vertex AI rawPredict): the client's Messages body goes there nearly as it is (see
 * ProviderAdapter.nativeMessages), and the answer comes back in Anthropic's shapes. What differs is
 * the cloud's errors (AWS `{"message"}`, Google `{"error":{code,message,status}}`), turned here into
 * Anthropic's `{"type":"error","error":{type,message}}` with the cloud's status kept.
 */
import { anthropicErrorJson, anthropicErrorType } from '../openai/messages.js';
import { isObject, type StreamTranslator } from '../translation.js';

/** The message of a cloud's error body: AWS `message` / `Message`, Google `error.message` (also in a one-element array), Anthropic `error.message`. */
export function cloudErrorMessage(raw: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined; // not JSON (a proxy's page): the status says enough
  }
  if (Array.isArray(parsed)) parsed = parsed[0];
  if (!isObject(parsed)) return undefined;
  if (typeof parsed['message'] === 'string') return parsed['message'];
  if (typeof parsed['Message'] === 'string') return parsed['Message'];
  const error = parsed['error'];
  return isObject(error) && typeof error['message'] === 'string' ? error['message'] : undefined;
}

/** True when a body already is Anthropic's error shape (Claude itself refused: passed on as it is). */
export function isAnthropicError(raw: Buffer): boolean {
  // A cheap look first: Anthropic's errors start with their type.
  const head = raw.subarray(0, 64).toString('utf8');
  if (!head.includes('"type"')) return false;
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return isObject(parsed) && parsed['type'] === 'error' && isObject(parsed['error']) && typeof parsed['error']['type'] === 'string';
  } catch {
    return false;
  }
}

/** A cloud's error body -> Anthropic's error body, the cloud's message kept (`clientStatus`: the status the client gets, when it differs). */
export function cloudErrorToAnthropic(cloud: string, status: number, raw: Buffer, clientStatus = status): Buffer {
  if (isAnthropicError(raw)) return raw;
  const message = cloudErrorMessage(raw) ?? `${cloud} answered HTTP ${status}.`;
  return Buffer.from(anthropicErrorJson(anthropicErrorType(clientStatus), message));
}

/** An Anthropic SSE `error` event. */
export function anthropicErrorEvent(type: string, message: string): string {
  return `event: error\ndata: ${anthropicErrorJson(type, message)}\n\n`;
}

const EMPTY = Buffer.alloc(0);

/** A stream already in Anthropic's SSE (Vertex AI's streamRawPredict): the bytes as they are. */
export class IdentityStream implements StreamTranslator {
  push(chunk: Buffer): Buffer {
    // Copied: the chunk's memory belongs to the caller.
    return Buffer.from(chunk);
  }

  end(): Buffer {
    return EMPTY;
  }
}
