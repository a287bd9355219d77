/**
 * Compiled prices and the cost of one request. Pure. A price is built once per snapshot from the
 * user's decimal strings (ModelProvider models[].pricing, or GatewayConfig's default table) and read
 * by the hot path as plain integers.
 */
import type { ModelPricing } from '../config/types.js';
import { DEFAULT_CURRENCY, parseMicros } from './money.js';

/** Picos (1e-12 of the currency) per token, one field per kind of token. */
export interface CompiledPrice {
  readonly currency: string;
  readonly input: bigint;
  readonly output: bigint;
  /** Prompt tokens read from the provider's cache (default: the input price). */
  readonly cachedRead: bigint;
  /** Prompt tokens written into the provider's cache (default: the input price). */
  readonly cachedWrite: bigint;
  /** Reasoning tokens, when billed apart (default: the output price). */
  readonly reasoning: bigint;
  /** Highest completion price (output or reasoning) as micro-units per token, a double (admission maths: money left -> tokens). */
  readonly completionMicrosPerToken: number;
  /** Input price as micro-units per token, a double. */
  readonly inputMicrosPerToken: number;
}

/** Tokens of one response, by kind, as the provider reported them. */
export interface BilledUsage {
  /** All prompt tokens, cached ones included (OpenAI's prompt_tokens). */
  readonly promptTokens: number;
  /** All completion tokens, reasoning included (OpenAI's completion_tokens). */
  readonly completionTokens: number;
  /** Of the prompt: read from cache. */
  readonly cachedReadTokens?: number;
  /** Of the prompt: written to cache. */
  readonly cachedWriteTokens?: number;
  /** Of the completion: reasoning. */
  readonly reasoningTokens?: number;
}

/** Compiles a user price; returns the field that is malformed when one is. */
export function compilePrice(p: ModelPricing, defaultCurrency = DEFAULT_CURRENCY): CompiledPrice | { readonly error: string } {
  const input = parseMicros(p.input);
  if (input === undefined) return { error: 'input' };
  const output = parseMicros(p.output);
  if (output === undefined) return { error: 'output' };
  const opt = (text: string | undefined, fallback: bigint): bigint | undefined => (text === undefined ? fallback : parseMicros(text));
  const cachedRead = opt(p.cachedInputRead, input);
  if (cachedRead === undefined) return { error: 'cachedInputRead' };
  const cachedWrite = opt(p.cachedInputWrite, input);
  if (cachedWrite === undefined) return { error: 'cachedInputWrite' };
  const reasoning = opt(p.reasoning, output);
  if (reasoning === undefined) return { error: 'reasoning' };
  return {
    currency: p.currency ?? defaultCurrency,
    input,
    output,
    cachedRead,
    cachedWrite,
    reasoning,
    completionMicrosPerToken: Number(output > reasoning ? output : reasoning) / 1e6,
    inputMicrosPerToken: Number(input) / 1e6,
  };
}

function clamp(n: number | undefined, max: number): bigint {
  if (n === undefined || !Number.isFinite(n) || n <= 0) return 0n;
  return BigInt(Math.min(Math.floor(n), Math.max(0, Math.floor(max))));
}

/**
 * Exact cost in picos. Cached tokens are part of the prompt count and billed at their own price;
 * reasoning tokens are part of the completion count and billed at theirs. Counts the provider
 * reports inconsistently (cached > prompt) are clamped, never negative.
 */
export function costOf(price: CompiledPrice, u: BilledUsage): bigint {
  const prompt = clamp(u.promptTokens, Number.MAX_SAFE_INTEGER);
  const completion = clamp(u.completionTokens, Number.MAX_SAFE_INTEGER);
  const read = clamp(u.cachedReadTokens, Number(prompt));
  const write = clamp(u.cachedWriteTokens, Number(prompt - read));
  const reasoning = clamp(u.reasoningTokens, Number(completion));
  return (
    (prompt - read - write) * price.input +
    read * price.cachedRead +
    write * price.cachedWrite +
    (completion - reasoning) * price.output +
    reasoning * price.reasoning
  );
}

/** The most expensive of several prices, field by field (admission when the provider is not known yet). */
export function maxPrice(prices: readonly CompiledPrice[]): CompiledPrice | undefined {
  const first = prices[0];
  if (!first) return undefined;
  const big = (f: (p: CompiledPrice) => bigint): bigint => prices.reduce((m, p) => (f(p) > m ? f(p) : m), f(first));
  const input = big((p) => p.input);
  const output = big((p) => p.output);
  const reasoning = big((p) => p.reasoning);
  return {
    currency: first.currency,
    input,
    output,
    cachedRead: big((p) => p.cachedRead),
    cachedWrite: big((p) => p.cachedWrite),
    reasoning,
    completionMicrosPerToken: Number(output > reasoning ? output : reasoning) / 1e6,
    inputMicrosPerToken: Number(input) / 1e6,
  };
}
