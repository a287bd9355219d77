/** What the bench runs: the scenarios, their request bodies and fake-provider behaviour, and durations. */
import type { FakesBehaviour } from './fake-server.js';
import { UNIQUE_MARK } from './unique-body.js';

export type ScenarioName =
  | 'chat'
  | 'stream100'
  | 'stream100-anthropic'
  | 'stream100-bedrock'
  | 'messages-stream100'
  | 'messages-anthropic'
  | 'messages-bedrock'
  | 'responses'
  | 'responses-stream100'
  | 'responses-anthropic'
  | 'responses-stream100-anthropic'
  | 'embeddings'
  | 'prompt1m'
  | 'slow1000'
  | 'slow1000-responses-anthropic'
  | 'slow1000-bedrock'
  | 'streams500';
export type TargetName = 'direct' | 'envoy' | 'envoy-echo' | 'tollgate' | 'tollgate-limits' | 'tollgate-guardrails';

/** The default targets. `tollgate-guardrails` runs only when named in --targets (docs/safety.md). */
export const TARGETS: readonly TargetName[] = ['direct', 'envoy', 'envoy-echo', 'tollgate', 'tollgate-limits'];

export const TARGET_TITLES: Readonly<Record<TargetName, string>> = {
  direct: 'direct to fake upstream (floor)',
  envoy: 'bare Envoy (no ext_proc)',
  'envoy-echo': 'Envoy + do-nothing ext_proc (floor: the same exchanges, no work)',
  tollgate: 'Tollgate: auth + mapping + rewrite',
  'tollgate-limits': 'Tollgate + limits + usage (Redis)',
  'tollgate-guardrails': 'Tollgate + a guardrail (20 keywords + 7 PII detectors, request and response)',
};

interface ScenarioBase {
  readonly name: ScenarioName;
  readonly title: string;
  readonly path: string;
  readonly body: string;
  readonly stream: boolean;
  readonly fake: FakesBehaviour;
  /** The last event of a complete stream contains this (default `[DONE]`). */
  readonly streamEnd?: string;
  /** Only these targets run the scenario (default: all). */
  readonly targets?: readonly TargetName[];
  /** In a --smoke run, only these targets run it (keeps CI short). */
  readonly smokeTargets?: readonly TargetName[];
}

/** Max throughput (wrk) and latency at a fixed rate (open loop). */
export interface RequestScenario extends ScenarioBase {
  readonly kind: 'request';
  /** Fixed rate for the latency run when it differs from `--rate` (streams cost far more per request). */
  readonly rate?: number;
  /** wrk connections for max throughput when they differ from `--connections`. */
  readonly connections?: number;
}

/** Many concurrent slow streams: time to first byte, durations, memory per open stream, CPU. */
export interface StreamsScenario extends ScenarioBase {
  readonly kind: 'streams';
  readonly concurrency: number;
  readonly rampMs: number;
  /** 0: one round of streams; otherwise streams are re-opened until this elapses. */
  readonly durationS: number;
}

export type Scenario = RequestScenario | StreamsScenario;

const PROMPT =
  `Note ${UNIQUE_MARK}. ` +
  'Summarise the following note for a busy engineer in three bullet points, keeping every number exact. ' +
  'The gateway sits between in-cluster services and several model providers; it checks the key, maps the ' +
  'model name, picks a provider by priority and weight, rewrites the upstream headers and forwards the ' +
  'body. Streams pass through without buffering. Limits are enforced per key across all replicas.';

/** About 1 MiB of prose: prompts of several MiB are normal (documents, long conversations, code). */
const LONG_PROMPT = `Note ${UNIQUE_MARK}. Summarise this document. ` + 'The gateway forwards the body unchanged except for the model name. '.repeat(15_600);

function chatBody(stream: boolean, model = 'fast'): string {
  return JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: PROMPT },
    ],
    max_tokens: 256,
    temperature: 0.2,
    ...(stream ? { stream: true } : {}),
  });
}

/** The same request as chatBody's, as an Anthropic Messages stream. */
function messagesBody(model: string): string {
  return JSON.stringify({ model, system: 'You are a concise assistant.', messages: [{ role: 'user', content: PROMPT }], max_tokens: 256, temperature: 0.2, stream: true });
}

/** The same request as chatBody's, as an OpenAI Responses create (`store` left at its default: true). */
function responsesBody(stream: boolean, model: string): string {
  return JSON.stringify({ model, instructions: 'You are a concise assistant.', input: PROMPT, max_output_tokens: 256, temperature: 0.2, ...(stream ? { stream: true } : {}) });
}

/** The last event of a Responses stream (passed through or translated). */
const RESPONSES_END = 'event: response.completed';

/** What the limits probe sends (to /v1/chat/completions), whatever scenario runs first. */
export const PROBE_BODY = chatBody(false);

/** Durations in seconds; `--quick` and `--smoke` shorten all of them. */
export interface Durations {
  readonly wrkWarmupS: number;
  readonly wrkS: number;
  readonly rateWarmupS: number;
  readonly rateS: number;
  readonly slowChunks: number;
  readonly streams500S: number;
}

export const FULL: Durations = { wrkWarmupS: 1, wrkS: 8, rateWarmupS: 2, rateS: 10, slowChunks: 30, streams500S: 10 };
export const QUICK: Durations = { wrkWarmupS: 1, wrkS: 3, rateWarmupS: 1, rateS: 4, slowChunks: 10, streams500S: 4 };
/**
 * `--smoke` (CI): a second or two per target, enough to prove every target starts and answers (the
 * 20 warm-up requests every measurement starts with stand in for the warm-up runs).
 */
export const SMOKE: Durations = { wrkWarmupS: 0, wrkS: 1, rateWarmupS: 0, rateS: 1, slowChunks: 3, streams500S: 1 };
/** The scenarios a smoke run covers unless --scenarios names others. */
export const SMOKE_SCENARIOS: readonly ScenarioName[] = ['chat', 'stream100', 'responses-stream100'];

/** The scenarios in the order they run (memory per stream first, while processes are fresh). */
export function scenarios(d: Durations): Scenario[] {
  // Translated streams open more slowly (two ext_proc streams each, a SigV4 signature for Bedrock):
  // a longer ramp and longer streams, so all 1,000 are open at once when memory is read.
  const translatedChunks = Math.max(d.slowChunks, 40);
  return [
    {
      kind: 'streams',
      name: 'slow1000',
      title: `1,000 concurrent slow streams (${d.slowChunks} chunks, 5 chunks/s)`,
      path: '/v1/chat/completions',
      body: chatBody(true),
      stream: true,
      fake: { latencyMs: 0, chunks: d.slowChunks, chunkIntervalMs: 200 },
      concurrency: 1000,
      rampMs: 2000,
      durationS: 0,
    },
    {
      kind: 'streams',
      name: 'slow1000-responses-anthropic',
      title: `1,000 concurrent slow Responses streams translated to Anthropic (${translatedChunks} text deltas, 5 events/s, opened over 5 s)`,
      path: '/v1/responses',
      body: responsesBody(true, 'claude-bench'),
      stream: true,
      streamEnd: RESPONSES_END,
      fake: { anthropic: { textChunks: translatedChunks, writeBytes: 0, writeIntervalMs: 200 } },
      targets: ['tollgate', 'tollgate-limits'],
      concurrency: 1000,
      rampMs: 5000,
      durationS: 0,
    },
    {
      kind: 'streams',
      name: 'slow1000-bedrock',
      title: `1,000 concurrent slow chat streams translated from Bedrock ConverseStream (${translatedChunks} text deltas, 5 frames/s, opened over 5 s)`,
      path: '/v1/chat/completions',
      body: chatBody(true, 'claude-bedrock-bench'),
      stream: true,
      fake: { bedrock: { textChunks: translatedChunks, writeIntervalMs: 200 } },
      targets: ['tollgate', 'tollgate-limits'],
      concurrency: 1000,
      rampMs: 5000,
      durationS: 0,
    },
    {
      kind: 'request',
      name: 'chat',
      title: 'Non-streaming chat completion',
      path: '/v1/chat/completions',
      body: chatBody(false),
      stream: false,
      fake: { latencyMs: 0, chunks: 20 },
    },
    {
      kind: 'request',
      name: 'stream100',
      title: 'Streaming chat completion (100 chunks, back to back)',
      path: '/v1/chat/completions',
      body: chatBody(true),
      stream: true,
      fake: { latencyMs: 0, chunks: 100, chunkIntervalMs: 0 },
      rate: 100,
    },
    {
      kind: 'request',
      name: 'stream100-anthropic',
      title: 'Streaming chat completion translated from the Anthropic Messages API (100 text deltas, back to back)',
      path: '/v1/chat/completions',
      body: chatBody(true, 'claude-bench'),
      stream: true,
      // One network write per Anthropic event, as the real API sends them.
      fake: { anthropic: { textChunks: 100, writeBytes: 0, writeIntervalMs: 0 } },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'stream100-bedrock',
      title: 'Streaming chat completion translated from Bedrock ConverseStream (100 text deltas, one event-stream frame per write)',
      path: '/v1/chat/completions',
      body: chatBody(true, 'claude-bedrock-bench'),
      stream: true,
      fake: { bedrock: { textChunks: 100, writeIntervalMs: 0 } },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'messages-stream100',
      title: 'Anthropic Messages stream (/v1/messages) translated to an OpenAI provider (100 chunks, back to back)',
      path: '/v1/messages',
      body: messagesBody('fast'),
      stream: true,
      streamEnd: 'message_stop',
      fake: { latencyMs: 0, chunks: 100, chunkIntervalMs: 0 },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'messages-anthropic',
      title: 'Anthropic Messages stream (/v1/messages) passed through to an Anthropic provider (100 text deltas)',
      path: '/v1/messages',
      body: messagesBody('claude-bench'),
      stream: true,
      streamEnd: 'message_stop',
      fake: { anthropic: { textChunks: 100, writeBytes: 0, writeIntervalMs: 0 } },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'messages-bedrock',
      title: 'Anthropic Messages stream (/v1/messages) sent natively to Claude on Bedrock (InvokeModelWithResponseStream, 100 text deltas, one chunk frame per write)',
      path: '/v1/messages',
      body: messagesBody('claude-bedrock-bench'),
      stream: true,
      streamEnd: 'message_stop',
      fake: { bedrock: { textChunks: 100, writePerEvent: true, writeIntervalMs: 0 } },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'responses',
      title: 'Non-streaming Responses create (/v1/responses) passed through to an OpenAI provider',
      path: '/v1/responses',
      body: responsesBody(false, 'fast'),
      stream: false,
      fake: { latencyMs: 0, chunks: 20 },
    },
    {
      kind: 'request',
      name: 'responses-stream100',
      title: 'Responses stream (/v1/responses) passed through to an OpenAI provider (100 text deltas, back to back)',
      path: '/v1/responses',
      body: responsesBody(true, 'fast'),
      stream: true,
      streamEnd: RESPONSES_END,
      fake: { latencyMs: 0, chunks: 100, chunkIntervalMs: 0 },
      rate: 100,
      smokeTargets: ['tollgate'],
    },
    {
      kind: 'request',
      name: 'responses-anthropic',
      title: 'Non-streaming Responses create (/v1/responses) translated to an Anthropic provider',
      path: '/v1/responses',
      body: responsesBody(false, 'claude-bench'),
      stream: false,
      fake: { anthropic: { textChunks: 20, writeBytes: 0, writeIntervalMs: 0 } },
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'responses-stream100-anthropic',
      title: 'Responses stream (/v1/responses) translated to an Anthropic provider (100 text deltas, one write per event)',
      path: '/v1/responses',
      body: responsesBody(true, 'claude-bench'),
      stream: true,
      streamEnd: RESPONSES_END,
      fake: { anthropic: { textChunks: 100, writeBytes: 0, writeIntervalMs: 0 } },
      rate: 100,
      targets: ['tollgate', 'tollgate-limits'],
    },
    {
      kind: 'request',
      name: 'embeddings',
      title: 'Embeddings',
      path: '/v1/embeddings',
      body: JSON.stringify({ model: 'text-embedding-3-small', input: ['The quick brown fox jumps over the lazy dog.', PROMPT] }),
      stream: false,
      fake: { latencyMs: 0 },
    },
    {
      kind: 'request',
      name: 'prompt1m',
      title: 'Chat completion with a 1 MiB prompt (wrk: 8 connections)',
      path: '/v1/chat/completions',
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: LONG_PROMPT }], max_tokens: 256 }),
      stream: false,
      fake: { latencyMs: 0, chunks: 20 },
      rate: 20,
      connections: 8,
    },
    {
      kind: 'streams',
      name: 'streams500',
      title: '500 concurrent streams at 50 chunks/s (100 chunks each, re-opened)',
      path: '/v1/chat/completions',
      body: chatBody(true),
      stream: true,
      fake: { latencyMs: 0, chunks: 100, chunkIntervalMs: 20 },
      concurrency: 500,
      rampMs: 2000,
      durationS: d.streams500S,
    },
  ];
}
