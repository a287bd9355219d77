/**
 * Kubernetes mode end to end, against a real kube-apiserver + etcd started by the harness:
 * `helm install` the chart (CRDs, RBAC, ConfigMaps really created), then run the pod's two
 * processes here: Tollgate `--source kubernetes` authenticated with a TokenRequest token of the
 * chart's ServiceAccount, and a real Envoy with the bootstrap the chart rendered. Traffic goes
 * through Envoy with the official openai client; resources change through kubectl.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FakeProvider } from '../../src/dev/fake-provider.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { hashKey } from '../../src/config/snapshot.js';
import {
  fakeListenHost,
  fakeUrl,
  installChart,
  KIND_CLUSTER,
  startChartGateway,
  startControlPlane,
  type AuditEvent,
  type ChartGateway,
  type ControlPlane,
} from '../harness/control-plane.js';

const NS = 'tollgate-e2e';
const RELEASE = 'tg';
const SA_USER = `system:serviceaccount:${NS}:${RELEASE}-tollgate`;
const BASE_KEY = 'tg-e2e-base-key-0001';
const LABEL = '{ tollgate.dev/secret: "true" }';

function secret(name: string, data: Record<string, string>, labelled = true): string {
  const entries = Object.entries(data)
    .map(([k, v]) => `${k}: "${v}"`)
    .join(', ');
  return `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${NS}${labelled ? `, labels: ${LABEL}` : ''} }\nstringData: { ${entries} }\n`;
}
function apiKey(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name}, namespace: ${NS} }\nspec: ${spec}\n`;
}
function mcpServer(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: ${name}, namespace: ${NS} }\nspec: ${spec}\n`;
}
function promptTemplate(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: PromptTemplate\nmetadata: { name: ${name}, namespace: ${NS} }\nspec: ${spec}\n`;
}
function provider(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: { name: ${name}, namespace: ${NS} }\nspec: ${spec}\n`;
}

describe('Kubernetes mode: Helm chart + controller against a real API server', () => {
  let cp: ControlPlane;
  let gw: ChartGateway;
  const primary = new FakeProvider({}, 'primary');
  // Every API server restart, as [from, to] in ms: each test that restarts it adds one window.
  const restartWindows: { from: number; to: number }[] = [];

  const apply = async (...docs: string[]): Promise<void> => {
    await cp.kubectl(['apply', '-f', '-'], { input: docs.join('---\n') });
  };
  /** HTTP status the gateway answers for this key on an authenticated call (/v1/models). */
  const keyStatus = async (key: string): Promise<number> => {
    try {
      await gw.client(key).models.list();
      return 200;
    } catch (err) {
      if (err instanceof OpenAI.APIError) return err.status ?? 0;
      throw err;
    }
  };
  const ready = async (kind: string, name: string): Promise<{ status: string; reason: string; message: string; observed: string; generation: string }> => {
    const path =
      '{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].reason}|' +
      '{.status.conditions[?(@.type=="Ready")].message}|{.status.observedGeneration}|{.metadata.generation}';
    const out = (await cp.kubectl(['get', kind, name, '-n', NS, '-o', `jsonpath=${path}`])).stdout.split('|');
    return { status: out[0] ?? '', reason: out[1] ?? '', message: out[2] ?? '', observed: out[3] ?? '', generation: out[4] ?? '' };
  };

  before(async () => {
    await primary.start(0, fakeListenHost());
    cp = await startControlPlane();
    await installChart(cp, { namespace: NS, release: RELEASE, set: ['gateway.modelMappings.fast=gpt-4o-mini'] });
    await apply(
      secret('primary-cred', { token: 'upstream-primary-v1' }),
      provider('primary', `{ type: openai, endpoint: "${fakeUrl(primary)}", credentialSecretRef: { name: primary-cred, key: token }, models: [{ name: gpt-4o-mini, pricing: { input: "150000", output: "600000" } }] }`),
      secret('base-key', { key: BASE_KEY }),
      apiKey('base', '{ secretRef: { name: base-key, key: key } }'),
    );
    process.env['TOLLGATE_USAGE_STATUS_SECONDS'] = '1'; // usage status on a fast timer for the test below
    gw = await startChartGateway(cp, { namespace: NS, release: RELEASE, name: 'replica-a' });
  });
  after(async () => {
    await gw?.stop();
    await cp?.stop();
    await primary.stop();
  });

  it('helm install created the CRDs, RBAC and config objects in the API server', async () => {
    const crds = (await cp.kubectl(['get', 'crd', '-o', 'name'])).stdout;
    assert.match(crds, /apikeys\.tollgate\.dev/);
    assert.match(crds, /modelproviders\.tollgate\.dev/);
    for (const obj of ['serviceaccount/tg-tollgate', 'role/tg-tollgate', 'rolebinding/tg-tollgate', 'configmap/tg-tollgate-envoy', 'configmap/tg-tollgate-gateway', 'deployment/tg-tollgate', 'service/tg-tollgate', 'poddisruptionbudget/tg-tollgate']) {
      await cp.kubectl(['get', obj, '-n', NS]);
    }
    const status = (await cp.helm(['status', RELEASE, '-n', NS, '-o', 'json'])).stdout;
    assert.equal((JSON.parse(status) as { info: { status: string } }).info.status, 'deployed');
  });

  it('serves through Envoy with the chart config: global mapping from values, upstream sees only the provider credential', async () => {
    const res = await gw.client(BASE_KEY).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(res.object, 'chat.completion');
    const seen = primary.received('/chat/completions').at(-1);
    assert.equal(seen?.headers['authorization'], 'Bearer upstream-primary-v1');
    assert.equal((seen?.body as { model?: string }).model, 'gpt-4o-mini');
    assert.ok(!JSON.stringify(seen?.headers).includes(BASE_KEY));
    assert.equal(await gw.envoyReady(), 200, 'Envoy /ready through the chart health listener');
  });

  it('writes month-to-date usage and lineage into ApiKey status (kubectl get apikeys)', async () => {
    for (let i = 0; i < 2; i++) await gw.client(BASE_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
    const path = '{.status.usage.month}|{.status.usage.requests}|{.status.usage.totalTokens}|{.status.lineage}|{.status.usage.cost}|{.status.usage.currency}|{.status.usage.promptTokens}|{.status.usage.completionTokens}';
    let out: string[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      out = (await cp.kubectl(['get', 'apikey', 'base', '-n', NS, '-o', `jsonpath=${path}`])).stdout.split('|');
      if (Number(out[1]) >= 2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(out[0], new Date().toISOString().slice(0, 7));
    assert.ok(Number(out[1]) >= 2, `requests in status: ${out.join('|')}`);
    assert.ok(Number(out[2]) > 0, `tokens in status: ${out.join('|')}`);
    assert.equal(out[3], '.base.');
    // Month-to-date cost (prices of 0.15 / 0.60 per token, so whole cents): exact, next to the tokens.
    const cost = (Number(out[6]) * 150_000 + Number(out[7]) * 600_000) / 1e6;
    assert.equal(Number(out[4]), cost, `cost in status: ${out.join('|')}`);
    assert.equal(out[5], 'USD');
    const table = (await cp.kubectl(['get', 'apikeys', '-n', NS])).stdout;
    const [header = '', ...lines] = table.trim().split('\n');
    assert.match(header, /\bTOKENS\s+BUDGET\s+COST\b/, header);
    const base = lines.find((l) => l.startsWith('base '));
    assert.ok(base?.includes(String(out[4])), `kubectl get apikeys shows the cost: ${table}`);
  });

  it('applies a new global model mapping from the chart values (GatewayConfig ConfigMap) without a restart', async () => {
    const ask = (model: string): Promise<unknown> => gw.client(BASE_KEY).chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(ask('speedy'), (err: unknown) => err instanceof OpenAI.APIError && err.status === 404);
    await gw.setGlobalMappings({ fast: 'gpt-4o-mini', speedy: 'gpt-4o-mini' });
    // Locally the file swap is immediate; in kind the kubelet syncs ConfigMap volumes within ~1 min.
    await waitFor('new mapping applied', async () => ask('speedy').then(() => true, () => false), KIND_CLUSTER ? 120_000 : 2000);
    assert.equal((primary.received('/chat/completions').at(-1)?.body as { model?: string }).model, 'gpt-4o-mini');
  });

  it('serves a new key within 2 s of creation and refuses it within 2 s of disable and of deletion', async () => {
    const key = 'tg-e2e-new-key-0002';
    assert.equal(await keyStatus(key), 401);
    await apply(apiKey('new', `{ keyHash: "${hashKey(key)}" }`));
    await waitFor('new key served', async () => (await keyStatus(key)) === 200, 2000);

    await cp.kubectl(['patch', 'apikey', 'new', '-n', NS, '--type=merge', '-p', '{"spec":{"disabled":true}}']);
    await waitFor('disabled key refused', async () => (await keyStatus(key)) === 403 || (await keyStatus(key)) === 401, 2000);

    await cp.kubectl(['patch', 'apikey', 'new', '-n', NS, '--type=merge', '-p', '{"spec":{"disabled":false}}']);
    await waitFor('re-enabled key served', async () => (await keyStatus(key)) === 200, 2000);
    await cp.kubectl(['delete', 'apikey', 'new', '-n', NS]);
    await waitFor('deleted key refused', async () => (await keyStatus(key)) === 401, 2000);
  });

  it('debounces a burst of changes into a few snapshot rebuilds', async () => {
    const applied = async (): Promise<number> => (await gw.logs()).filter((l) => l['msg'] === 'config applied').length;
    const before = await applied();
    const keys = Array.from({ length: 20 }, (_, i) => `tg-e2e-burst-${String(i).padStart(4, '0')}`);
    await apply(...keys.map((k, i) => apiKey(`burst-${i}`, `{ keyHash: "${hashKey(k)}" }`)));
    await waitFor('whole burst served', async () => (await keyStatus(keys[19] ?? '')) === 200 && (await keyStatus(keys[0] ?? '')) === 200, 2000);
    // Log lines reach the file a moment after the swap: wait for them, then let stragglers land.
    await waitFor('rebuild logged', async () => (await applied()) > before, 5000);
    await new Promise((r) => setTimeout(r, 500));
    const rebuilds = (await applied()) - before;
    assert.ok(rebuilds >= 1 && rebuilds <= 5, `20 objects created in one apply caused ${rebuilds} rebuilds`);
    process.stdout.write(`# 20 ApiKeys in one kubectl apply -> ${rebuilds} snapshot rebuild(s)\n`);
    await cp.kubectl(['delete', 'apikey', '-n', NS, ...keys.map((_, i) => `burst-${i}`)]);
  });

  it('picks up rotated Secrets: the client key and the provider credential', async () => {
    const rotated = 'tg-e2e-base-key-0002';
    await apply(secret('base-key', { key: rotated }));
    await waitFor('rotated key served', async () => (await keyStatus(rotated)) === 200, 2000);
    assert.equal(await keyStatus(BASE_KEY), 401, 'the old key stops working');

    await apply(secret('primary-cred', { token: 'upstream-primary-v2' }));
    await waitFor(
      'new provider credential used',
      async () => {
        await gw.client(rotated).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
        return primary.received('/chat/completions').at(-1)?.headers['authorization'] === 'Bearer upstream-primary-v2';
      },
      2000,
    );
    await apply(secret('base-key', { key: BASE_KEY }));
    await waitFor('base key back', async () => (await keyStatus(BASE_KEY)) === 200, 2000);
  });

  it('marks valid-but-wrong resources not Ready with the reason and leaves them out, while the rest keeps serving', async () => {
    await apply(
      apiKey('orphan', '{ secretRef: { name: no-such-secret, key: key } }'),
      apiKey('dup', `{ keyHash: "${hashKey(BASE_KEY)}", models: [nothing-allowed] }`),
      provider('broken', '{ type: openai, endpoint: "http://127.0.0.1:9/v1", credentialSecretRef: { name: missing-cred, key: token }, models: [{ name: broken-model }] }'),
      // A Secret without the label is invisible to the controller (least privilege by selector).
      secret('unlabelled', { key: 'tg-e2e-unlabelled-0003' }, false),
      apiKey('unlabelled', '{ secretRef: { name: unlabelled, key: key } }'),
      // Matches the schema's pattern, but is no IANA time zone: Invalid, found when building the snapshot.
      apiKey('badzone', `{ keyHash: "${hashKey('tg-e2e-badzone-0005')}", limits: { tokensPerMonth: 1000, monthTimeZone: Mars/Olympus_Mons } }`),
      // MCPServers go through the same path: served (Ready) or left out with the reason.
      mcpServer('docs', '{ httpTools: [{ name: lookup, url: "http://127.0.0.1:9/lookup?q={{q}}" }] }'),
      mcpServer('nocred', '{ url: "http://127.0.0.1:9/mcp", credential: { secretRef: { name: missing-mcp-cred, key: token } } }'),
      mcpServer('unreach', '{ url: "http://127.0.0.1:9/mcp", timeoutSeconds: 1 }'),
      // PromptTemplates too: a Liquid syntax error is found when compiling the snapshot.
      promptTemplate('greet', '{ model: gpt-4o-mini, version: "1", variables: { type: object, required: [who] }, messages: [{ role: user, content: "Greet {{ who }}" }] }'),
      promptTemplate('badliquid', '{ model: gpt-4o-mini, messages: [{ role: user, content: "{% if who %}unclosed" }] }'),
    );
    await waitFor('status conditions written', async () => (await ready('apikey', 'dup')).reason === 'DuplicateKey', 10_000);
    const orphan = await ready('apikey', 'orphan');
    assert.equal(orphan.status, 'False');
    assert.equal(orphan.reason, 'SecretNotFound');
    assert.match(orphan.message, /no-such-secret/);
    assert.equal((await ready('apikey', 'unlabelled')).reason, 'SecretNotFound');
    assert.match((await ready('apikey', 'dup')).message, /same key as ApiKey tollgate-e2e\/base/);
    await waitFor('provider condition', async () => (await ready('modelprovider', 'broken')).reason === 'SecretNotFound', 5000);
    const badzone = await ready('apikey', 'badzone');
    assert.equal(badzone.reason, 'Invalid');
    assert.match(badzone.message, /unknown time zone "Mars\/Olympus_Mons"/);
    assert.equal(await keyStatus('tg-e2e-badzone-0005'), 401, 'an Invalid key is not served');

    const base = await ready('apikey', 'base');
    assert.equal(base.status, 'True');
    assert.equal(base.observed, base.generation, 'observedGeneration follows the spec generation');
    assert.equal((await ready('modelprovider', 'primary')).status, 'True');
    const wide = (await cp.kubectl(['get', 'apikeys', '-n', NS, '-o', 'wide'])).stdout;
    assert.match(wide, /dup\s.*False\s+DuplicateKey/);

    // The duplicate did not take over the original's identity (its allow-list would refuse gpt-4o-mini).
    const res = await gw.client(BASE_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(res.object, 'chat.completion');
    await assert.rejects(
      gw.client(BASE_KEY).chat.completions.create({ model: 'broken-model', messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 404,
    );
    assert.equal(await keyStatus('tg-e2e-unlabelled-0003'), 401);
    await cp.kubectl(['delete', 'apikey', 'orphan', 'dup', 'unlabelled', 'badzone', '-n', NS]);
    await cp.kubectl(['delete', 'modelprovider', 'broken', '-n', NS]);
    await waitFor('MCPServer conditions', async () => (await ready('mcpserver', 'nocred')).reason === 'SecretNotFound', 5000);
    assert.match((await ready('mcpserver', 'nocred')).message, /missing-mcp-cred/);
    assert.equal((await ready('mcpserver', 'docs')).status, 'True');
    // Discovery status, written by the leader: tools published, or why the upstream was not reached.
    const discovery = async (name: string): Promise<string> =>
      (await cp.kubectl(['get', 'mcpserver', name, '-n', NS, '-o', 'jsonpath={.status.tools}|{.status.conditions[?(@.type=="ToolsDiscovered")].status}|{.status.conditions[?(@.type=="ToolsDiscovered")].reason}'])).stdout;
    await waitFor('MCPServer discovery status', async () => (await discovery('docs')) === '1|True|Discovered' && (await discovery('unreach')).endsWith('|False|UpstreamUnavailable'), 15_000);
    const listed = (await cp.kubectl(['get', 'mcpservers', '-n', NS])).stdout;
    assert.match(listed, /docs\s+1\s+True\s+True/);
    assert.equal((await ready('mcpserver', 'unreach')).status, 'True', 'served (Ready) even while its upstream is down');
    // The chart's Envoy routes /mcp to the MCP listener, which authenticates with the same keys.
    const catalog = await fetch(`${gw.baseUrl}/mcp/catalog`, { headers: { authorization: `Bearer ${BASE_KEY}` } });
    assert.equal(catalog.status, 403);
    assert.match(((await catalog.json()) as { error: { message: string } }).error.message, /has no MCP access/);
    await cp.kubectl(['delete', 'mcpserver', 'docs', 'nocred', 'unreach', '-n', NS]);

    await waitFor('PromptTemplate conditions', async () => (await ready('prompttemplate', 'badliquid')).reason === 'Invalid', 5000);
    assert.match((await ready('prompttemplate', 'badliquid')).message, /spec\.messages\[0\]\.content: template does not parse/);
    assert.equal((await ready('prompttemplate', 'greet')).status, 'True');
    assert.match((await cp.kubectl(['get', 'prompttemplates', '-n', NS])).stdout, /greet\s+gpt-4o-mini\s+1\s+True/);
    const render = (name: string, body: unknown): Promise<Response> =>
      fetch(`${gw.baseUrl}/v1/templates/${name}`, { method: 'POST', headers: { authorization: `Bearer ${BASE_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const greeted = await render('greet', { variables: { who: 'Ada' } });
    assert.equal(greeted.status, 200, await greeted.text());
    assert.deepEqual((primary.received('/chat/completions').at(-1)?.body as { messages?: unknown } | undefined)?.messages, [{ role: 'user', content: 'Greet Ada' }]);
    assert.equal((await render('greet', { variables: {} })).status, 400);
    assert.equal((await render('badliquid', { variables: { who: 'x' } })).status, 404, 'a template that is not Ready is not served');
    await cp.kubectl(['delete', 'prompttemplate', 'greet', 'badliquid', '-n', NS]);
  });

  it('lets a long stream in flight finish unharmed while its ApiKey and ModelProvider are updated', async () => {
    primary.behaviour.chunks = 80; // 8 s: room for two kubectl patches on a busy machine
    primary.behaviour.chunkIntervalMs = 100;
    try {
      const stream = await gw.client(BASE_KEY).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'long' }],
        stream: true,
      });
      let text = '';
      let chunks = 0;
      const consumed = (async () => {
        for await (const chunk of stream) {
          chunks += 1;
          text += chunk.choices[0]?.delta?.content ?? '';
        }
      })();
      await waitFor('stream started', async () => chunks > 2);
      const versionBefore = (await gw.logs()).filter((l) => l['msg'] === 'config applied').length;
      const keyBefore = (await ready('apikey', 'base')).generation;
      const providerBefore = (await ready('modelprovider', 'primary')).generation;
      await cp.kubectl(['patch', 'apikey', 'base', '-n', NS, '--type=merge', '-p', '{"spec":{"description":"updated mid-stream","models":["gpt-4o*"]}}']);
      await cp.kubectl(['patch', 'modelprovider', 'primary', '-n', NS, '--type=merge', '-p', '{"spec":{"weight":5}}']);
      // The controller debounces events: both patches may land in one rebuild or in two. Applied =
      // a new snapshot, and both resources' status written for their new generation after it.
      await waitFor(
        'both updates applied',
        async () => {
          if ((await gw.logs()).filter((l) => l['msg'] === 'config applied').length <= versionBefore) return false;
          const key = await ready('apikey', 'base');
          const provider = await ready('modelprovider', 'primary');
          return key.generation !== keyBefore && key.observed === key.generation && provider.generation !== providerBefore && provider.observed === provider.generation;
        },
        5000,
      );
      assert.ok(chunks < 80, 'the updates landed while the stream was still open');
      await consumed;
      assert.ok(chunks >= 80, `all content chunks arrived (${chunks})`);
      assert.ok(text.length > 0);
    } finally {
      primary.behaviour.chunks = 5;
      primary.behaviour.chunkIntervalMs = 20;
    }
  });

  it('keeps serving the last snapshot while the API server is down, then reconnects and resyncs', async () => {
    const restartWindow = { from: Date.now(), to: Number.MAX_SAFE_INTEGER };
    restartWindows.push(restartWindow);
    await cp.stopApiServer();
    try {
      // Down: traffic and readiness continue on the last snapshot.
      const res = await gw.client(BASE_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(res.object, 'chat.completion');
      assert.equal(await gw.tollgateReady(), 200);
      await new Promise((r) => setTimeout(r, 1500)); // let the watches notice and back off
      assert.equal(await keyStatus(BASE_KEY), 200);
    } finally {
      await cp.startApiServer();
      // A stopping or just-started API server may answer 403 while its RBAC caches are (re)filled.
      restartWindow.to = Date.now() + 5000;
    }
    // Back: a change made now is picked up by the re-established watches.
    const key = 'tg-e2e-after-restart-0004';
    await apply(secret('after-restart', { key }), apiKey('after-restart', '{ secretRef: { name: after-restart, key: key } }'));
    const started = Date.now();
    await waitFor('key created after the restart is served', async () => (await keyStatus(key)) === 200, 30_000);
    const logs = await gw.logs();
    assert.ok(logs.some((l) => l['msg'] === 'watch re-established'), 'the controller logged its reconnection');
    assert.equal(await keyStatus(BASE_KEY), 200);
    process.stdout.write(`# new key served ${Date.now() - started} ms after creation following an API server restart\n`);
  });

  it('relists after 410 Gone: changes missed while its resourceVersion went stale are applied', async () => {
    const gone = 'tg-e2e-gone-0006';
    const added = 'tg-e2e-added-0007';
    await apply(apiKey('gone', `{ keyHash: "${hashKey(gone)}" }`));
    await waitFor('key to be removed later is served', async () => (await keyStatus(gone)) === 200, 2000);
    const lists = async (): Promise<number> => (await gw.logs()).filter((l) => l['msg'] === 'listing' && l['informer'] === 'ApiKey').length;
    const listsBefore = await lists();

    // Frozen, the controller misses a delete and a create; the restarted API server's watch cache
    // starts at the current revision, so the controller's old resourceVersion is now too old.
    await gw.pause();
    try {
      await cp.kubectl(['delete', 'apikey', 'gone', '-n', NS]);
      await apply(apiKey('added', `{ keyHash: "${hashKey(added)}" }`));
      const restartWindow = { from: Date.now(), to: Number.MAX_SAFE_INTEGER };
      restartWindows.push(restartWindow);
      await cp.stopApiServer();
      await cp.startApiServer();
      restartWindow.to = Date.now() + 5000;
    } finally {
      await gw.resume();
    }
    await waitFor('missed create applied', async () => (await keyStatus(added)) === 200, 30_000);
    await waitFor('missed delete applied', async () => (await keyStatus(gone)) === 401, 5000);
    await waitFor('relist logged', async () => (await lists()) > listsBefore, 5000);
    process.stdout.write(`# ApiKey lists before/after the 410: ${listsBefore}/${await lists()}\n`);
    await cp.kubectl(['delete', 'apikey', 'added', '-n', NS]);
  });

  it('RBAC: the controller is never denied, and the chart Role grants no verb the code does not use', async () => {
    // Let at least one Lease renewal (update) happen.
    await waitFor(
      'lease renewed',
      async () => (await cp.auditEvents()).some((e) => e.user.username === SA_USER && e.objectRef?.resource === 'leases' && e.verb === 'update'),
      15_000,
    );
    const events = (await cp.auditEvents()).filter((e) => e.user.username === SA_USER);
    const duringRestart = (e: AuditEvent): boolean => {
      const t = Date.parse(e.stageTimestamp ?? '');
      return restartWindows.some((w) => t >= w.from && t <= w.to);
    };
    const denied = events.filter((e) => e.responseStatus?.code === 403 && !duringRestart(e));
    assert.deepEqual(
      denied.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''}`),
      [],
      'the controller was denied something it needs',
    );
    const role = JSON.parse((await cp.kubectl(['get', 'role', `${RELEASE}-tollgate`, '-n', NS, '-o', 'json'])).stdout) as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const used = (group: string, resource: string, verb: string): boolean => {
      const [res, sub] = resource.split('/');
      return events.some(
        (e: AuditEvent) =>
          e.verb === verb &&
          (e.objectRef?.apiGroup ?? '') === group &&
          e.objectRef?.resource === res &&
          (e.objectRef?.subresource ?? undefined) === sub &&
          (e.responseStatus?.code ?? 0) < 300,
      );
    };
    const unused: string[] = [];
    for (const rule of role.rules) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) if (!used(group, resource, verb)) unused.push(`${verb} ${group}/${resource}`);
        }
      }
    }
    assert.deepEqual(unused, [], 'the Role grants verbs the controller never used');
    // And nothing cluster-wide: the controller only ever asked about its own namespace.
    assert.deepEqual(events.filter((e) => e.objectRef?.namespace !== NS).map((e) => e.requestURI), []);
  });

  it('two replicas: both serve, only the Lease holder writes status, and another takes over when it stops', async () => {
    const b = await startChartGateway(cp, { namespace: NS, release: RELEASE, name: 'replica-b', replica: 1 });
    try {
      const viaB = await b.client(BASE_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'b' }] });
      assert.equal(viaB.object, 'chat.completion', 'the second replica serves traffic');
      const holder = async (): Promise<string> =>
        (await cp.kubectl(['get', 'lease', `${RELEASE}-tollgate-status-writer`, '-n', NS, '-o', 'jsonpath={.spec.holderIdentity}'])).stdout;
      // Leadership as each replica last logged it; wait until exactly one leads.
      const leads = (logs: Record<string, unknown>[]): boolean =>
        logs.filter((l) => l['msg'] === 'became status writer' || l['msg'] === 'stopped being status writer').at(-1)?.['msg'] === 'became status writer';
      await waitFor('exactly one status writer', async () => leads(await gw.logs()) !== leads(await b.logs()), 20_000);
      const first = await holder();
      assert.ok(first.length > 0);

      await apply(apiKey('orphan2', '{ secretRef: { name: missing-a, key: key } }'));
      await waitFor('condition written', async () => (await ready('apikey', 'orphan2')).message.includes('missing-a'), 10_000);
      const written = (logs: Record<string, unknown>[]): boolean => logs.some((l) => l['msg'] === 'status written' && l['resource'] === `ApiKey/${NS}/orphan2`);
      await waitFor('status write logged', async () => written(await gw.logs()) || written(await b.logs()), 5000);
      await new Promise((r) => setTimeout(r, 500));
      const [aLogs, bLogs] = [await gw.logs(), await b.logs()];
      assert.ok(written(aLogs) !== written(bLogs), 'exactly one replica wrote the status');
      assert.equal(written(aLogs), leads(aLogs), 'the writer is the Lease holder');

      // The writer stops (SIGTERM releases the Lease): another replica takes over and writes.
      const writer = written(aLogs) ? gw : b;
      const other = writer === gw ? b : gw;
      await writer.stop();
      await cp.kubectl(['patch', 'apikey', 'orphan2', '-n', NS, '--type=merge', '-p', '{"spec":{"secretRef":{"name":"missing-b","key":"key"}}}']);
      await waitFor('condition written by the new holder', async () => (await ready('apikey', 'orphan2')).message.includes('missing-b'), 15_000);
      const second = await holder();
      assert.ok(second.length > 0 && second !== first, `the Lease changed hands (${first} -> ${second})`);
      const stillServing = await other.client(BASE_KEY).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'c' }] });
      assert.equal(stillServing.object, 'chat.completion');
    } finally {
      await b.stop();
    }
  });
});
