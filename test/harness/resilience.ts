/** Config fixtures for the resilience tests (failover, circuit breaking, balancing). */
import { basicConfig } from './stack.js';

/** Primary (priority 0) and secondary (priority 1) serving `chat` under different upstream names. */
export function twoProviders(opts: { resilience?: string; primaryExtra?: string; samePriority?: boolean; weights?: [number, number] } = {}): Record<string, string> {
  const keys = basicConfig()['keys.yaml'] as string;
  const provider = (name: string, priority: number, weight: number, extra = ''): string => `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: openai
  endpoint: "{{FAKE:${name}}}"
  credentialSecretRef: { name: ${name}-cred, key: token }
  priority: ${priority}
  weight: ${weight}
${extra}  models:
    - name: chat
      upstreamModel: ${name}-model
---
apiVersion: v1
kind: Secret
metadata: { name: ${name}-cred }
stringData: { token: sk-upstream-${name} }
`;
  const [wp, ws] = opts.weights ?? [1, 1];
  return {
    'providers.yaml': `${provider('primary', 0, wp, opts.primaryExtra ?? '')}---\n${provider('secondary', opts.samePriority ? 0 : 1, ws)}`,
    'keys.yaml': keys,
    'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  resilience:
${opts.resilience ?? '    circuitBreaker: { consecutiveFailures: 1000 }'}
`,
  };
}

