/**
 * Raw HTTP calls to the gateway for what the OpenAI client cannot send (malformed JSON, no key,
 * oversized bodies) and assertions on the OpenAI error shape every refusal must have.
 */
import assert from 'node:assert/strict';
import { APIError } from 'openai';

export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** Sends one request; `key` goes in `Authorization: Bearer`. */
export async function rawRequest(
  baseUrl: string,
  path: string,
  init: { method?: string; key?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.key !== undefined) headers['authorization'] = `Bearer ${init.key}`;
  if (init.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const res = await fetch(baseUrl + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Asserts an OpenAI-shaped error: JSON `{"error":{"message","type","code"}}` with this status and code. */
export function assertOpenAIError(res: RawResponse, status: number, code: string): { message: string; type: string; code: string } {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `content-type of ${res.text}`);
  const body = JSON.parse(res.text) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
  const e = body.error;
  assert.ok(e && typeof e === 'object', `no error object in ${res.text}`);
  assert.equal(typeof e.message, 'string');
  assert.ok((e.message as string).length > 0, 'empty error message');
  assert.equal(typeof e.type, 'string');
  assert.equal(e.code, code, `error code in ${res.text}`);
  return e as { message: string; type: string; code: string };
}

/** Runs an OpenAI client call that must fail, and checks the SDK saw this status and code. */
export async function assertSdkError(call: Promise<unknown>, status: number, code: string): Promise<APIError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof APIError, `expected an APIError, got ${String(err)}`);
    assert.equal(err.status, status, `status of ${err.message}`);
    assert.equal(err.code, code, `code of ${err.message}`);
    assert.equal(typeof err.type, 'string');
    return err;
  }
  assert.fail(`expected ${status} ${code}, but the call succeeded`);
}
