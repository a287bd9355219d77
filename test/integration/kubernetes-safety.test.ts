/**
 * Safety and tenancy in Kubernetes mode: the chart's gateway values (guardrails, tenants,
 * envoy.xffNumTrustedHops) and ApiKey resources with allowedCidrs, guardrails and hosts, applied to
 * a real kube-apiserver; traffic through the Envoy bootstrap the chart rendered, with the official
 * openai client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { FakeProvider } from '../../src/dev/fake-provider.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { fakeListenHost, fakeUrl, installChart, startChartGateway, startControlPlane, type ChartGateway, type ControlPlane } from '../harness/control-plane.js';

const NS = 'tollgate-safety';
const RELEASE = 'tgs';
const KEY = 'tg-safety-key-0001';
const ELSEWHERE = 'tg-safety-elsewhere-0002';
const LABEL = '{ tollgate.dev/secret: "true" }';

const doc = (kind: string, name: string, spec: string): string => `apiVersion: tollgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: ${NS} }\nspec: ${spec}\n`;
const secret = (name: string, key: string): string => `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${NS}, labels: ${LABEL} }\nstringData: { key: "${key}" }\n`;

describe('Kubernetes mode: allow-lists, guardrails and tenants from the chart and the CRDs', () => {
  let cp: ControlPlane;
  let gw: ChartGateway;
  const primary = new FakeProvider({}, 'primary');
  const ask = (key: string, xff: string, content: string) =>
    gw.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] }, { headers: { 'x-forwarded-for': xff } });

  before(async () => {
    await primary.start(0, fakeListenHost());
    cp = await startControlPlane();
    await installChart(cp, {
      namespace: NS,
      release: RELEASE,
      set: ['envoy.xffNumTrustedHops=1', 'gateway.guardrails[0].name=pii', 'gateway.guardrails[0].pii.email=mask', 'gateway.guardrails[0].keywords.action=block', 'gateway.guardrails[0].keywords.words[0]=badword', 'gateway.tenants[0].name=acme', 'gateway.tenants[0].hosts[0]=acme.example.test'],
    });
    await cp.kubectl(['apply', '-f', '-'], {
      input: [
        doc('ModelProvider', 'primary', `{ type: openai, endpoint: "${fakeUrl(primary)}", models: [{ name: gpt-4o-mini }] }`),
        secret('key', KEY),
        doc('ApiKey', 'guarded', '{ secretRef: { name: key, key: key }, allowedCidrs: ["198.51.100.0/24"], guardrails: [pii] }'),
        secret('elsewhere', ELSEWHERE),
        doc('ApiKey', 'elsewhere', '{ secretRef: { name: elsewhere, key: key }, hosts: [acme.example.test] }'),
      ].join('---\n'),
    });
    gw = await startChartGateway(cp, { namespace: NS, release: RELEASE, name: 'replica-a' });
  });
  after(async () => {
    await gw?.stop();
    await cp?.stop();
    await primary.stop();
  });

  it('applies the allow-list to the address the trusted proxy appended, and the guardrail from the chart values', async () => {
    await waitFor('the guarded key is served', async () => {
      try {
        await ask(KEY, '198.51.100.7', 'hi');
        return true;
      } catch {
        return false;
      }
    });
    await ask(KEY, '198.51.100.7', 'mail me at jane@corp.example');
    assert.ok(JSON.stringify(primary.received('/chat/completions').at(-1)?.body).includes('mail me at [EMAIL]'));
    await assert.rejects(ask(KEY, '198.51.100.7', 'a badword'), (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && e.code === 'content_policy_violation');
    await assert.rejects(ask(KEY, '198.51.100.7, 203.0.113.9', 'hi'), (e: unknown) => e instanceof OpenAI.APIError && e.status === 403 && e.code === 'ip_not_allowed');
  });

  it('refuses a key bound to a tenant host on the gateway address (401)', async () => {
    await assert.rejects(ask(ELSEWHERE, '198.51.100.7', 'hi'), (e: unknown) => e instanceof OpenAI.APIError && e.status === 401 && e.code === 'invalid_api_key');
  });
});
