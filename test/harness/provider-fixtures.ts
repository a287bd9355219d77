/**
 * Config and comparison fixtures shared by the provider-type integration tests (anthropic, bedrock,
 * gemini) and the front-door tests, so each test file only states what is particular to it.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';

/**
 * A GatewayConfig whose circuit breaker never opens: tests that provoke upstream failures on purpose
 * keep every target in rotation, so one test's errors cannot change the next test's routing.
 */
export const NEVER_OPEN_BREAKER_GATEWAY = `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  resilience:
    circuitBreaker: { consecutiveFailures: 1000 }
`;

/**
 * An OpenAI provider (fake `primary`) at priority 0 serving `chat` as gpt-4o, with its Secret: the
 * first hop of a cross-type failover test whose second hop is the provider type under test.
 * Ends with a document separator, so the next document can follow directly.
 */
export const OPENAI_PRIMARY_SERVING_CHAT = `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: openai-primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  credentialSecretRef: { name: primary-cred, key: token }
  priority: 0
  models:
    - name: chat
      upstreamModel: gpt-4o
---
apiVersion: v1
kind: Secret
metadata: { name: primary-cred }
stringData: { token: sk-upstream-primary }
---
`;

/**
 * What a user compares between a streamed answer (accumulated by the SDK) and a non-streamed one:
 * model, text, finish reason and tool calls with parsed arguments. The SDK does not accumulate
 * reasoning_content, so it is left out.
 */
export function chatEssence(c: OpenAI.Chat.Completions.ChatCompletion): unknown {
  const choice = c.choices[0]!;
  const msg = choice.message;
  return {
    model: c.model,
    content: msg.content ?? null,
    finish: choice.finish_reason,
    tools: (msg.tool_calls ?? []).map((t) => (t.type === 'function' ? { id: t.id, name: t.function.name, args: JSON.parse(t.function.arguments) as unknown } : t)),
  };
}

/** Puts fakes back to their default behaviour and forgets what they received (call in beforeEach). */
export function resetFakes<B extends object>(fakes: Iterable<{ behaviour: B; requests: unknown[] }>, defaults: Partial<B>): void {
  for (const fake of fakes) {
    Object.assign(fake.behaviour, defaults);
    fake.requests.length = 0;
  }
}

/**
 * An `aws-bedrock` ModelProvider (fake `bedrock`, eu-central-1) with no credential Secret, serving
 * `claude-bedrock` as `upstreamModel`: its credentials come from the environment (IRSA, Pod Identity).
 */
export function ambientCredentialsBedrock(upstreamModel: string): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bedrock}}"
  region: eu-central-1
  models:
    - name: claude-bedrock
      upstreamModel: ${upstreamModel}
`;
}

/** A weather tool in Anthropic's shape, for the `/v1/messages` tests' tool loops. */
export const ANTHROPIC_WEATHER_TOOL: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
};
