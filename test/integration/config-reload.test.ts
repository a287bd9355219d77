/**
 * Live config reload through real Envoy: a change applies to the next request without cutting a
 * stream in flight; a broken file keeps the old config and the log says file, resource and field.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertSdkError } from '../harness/http.js';
import { startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const provider = (fake: string, credential: string): string => `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: main }
spec:
  type: openai
  endpoint: "{{FAKE:${fake}}}"
  credentialSecretRef: { name: upstream, key: token }
  models: [{ name: gpt-4o-mini }]
---
apiVersion: v1
kind: Secret
metadata: { name: upstream }
stringData: { token: ${credential} }
`;
const keys = (extraSpec = ''): string => `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-a }
spec:
  secretRef: { name: team-a-key, key: key }
${extraSpec}---
apiVersion: v1
kind: Secret
metadata: { name: team-a-key }
stringData: { key: ${TEST_KEY} }
`;

describe('config reload through real Envoy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: { 'providers.yaml': provider('old', 'cred-v1'), 'keys.yaml': keys() },
      fakes: { old: { chunks: 10, chunkIntervalMs: 100 }, new: { chunks: 3, chunkIntervalMs: 5 } },
    });
  });
  after(() => stack?.stop());

  const ask = () => stack.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

  it('a change while a stream is in flight: the stream completes, the next request uses the new config', async () => {
    const stream = await stack.client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'long answer' }],
      stream: true,
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);

    // Move the model to another provider with another credential while the stream runs.
    await stack.writeConfig('providers.yaml', provider('new', 'cred-v2'));
    await stack.waitForConfigVersion(2);
    const inFlight = stack.fakes['old']!.received('/chat/completions')[0]!;
    assert.equal(inFlight.completedAt, undefined, 'the config changed while the stream was still running');

    let text = '';
    let finish: string | null | undefined;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      text += r.value.choices[0]?.delta.content ?? '';
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, 'Hello from the Tollgate fake provider.Hello from the');
    assert.equal(finish, 'stop', 'the stream ended normally');
    assert.equal(inFlight.headers['authorization'], 'Bearer cred-v1');

    const next = await ask();
    assert.equal(next.choices[0]?.message.content, 'Hello from the');
    const seen = stack.fakes['new']!.received('/chat/completions');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers['authorization'], 'Bearer cred-v2');
    assert.equal(stack.fakes['old']!.requests.length, 1);
  });

  it('a broken file keeps the old config in force and the log names file, resource and field', async () => {
    await stack.writeConfig('keys.yaml', keys('  modelz: ["gpt-4o-mini"]\n'));
    let rejection: Record<string, unknown> | undefined;
    await waitFor('config rejection in the log', async () => {
      rejection = (await stack.logs()).find((l) => l['msg'] === 'config rejected; keeping the last good config');
      return rejection !== undefined;
    });
    assert.deepEqual(rejection!['issues'], [`${stack.configDir}/keys.yaml: ApiKey default/team-a: spec.modelz: unknown field`]);
    assert.equal(rejection!['keptVersion'], 2);
    assert.equal(rejection!['level'], 50, 'logged as an error');
    const res = await ask();
    assert.ok(res.choices[0]?.message.content, 'still served with the last good config');
    assert.equal((await fetch(`${stack.adminUrl}/readyz`)).status, 200);
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_config_reloads_total\{result="rejected"\} 1/);
  });

  it('a valid fix applies again, and revoking a key takes effect on the next request', async () => {
    await stack.writeConfig('keys.yaml', keys('  disabled: true\n'));
    await stack.waitForConfigVersion(3);
    await assertSdkError(ask(), 403, 'key_disabled');
    await stack.removeConfig('keys.yaml');
    await stack.waitForConfigVersion(4);
    await assertSdkError(ask(), 401, 'invalid_api_key');
  });
});
