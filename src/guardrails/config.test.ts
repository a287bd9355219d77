import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseResources } from '../config/parse.js';
import { buildSnapshot, hashKey } from '../config/snapshot.js';
import { selectGuardrails } from './compile.js';

const docs = (text: string) => text.split('\n---\n').map((t) => ({ source: 'test.yaml', doc: parse(t) as unknown }));

const CONFIG = `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  guardrails:
    - { name: everyone, global: true, models: ["gpt-4*"], pii: { email: mask } }
    - { name: team, keywords: { action: block, words: [x] }, response: false }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: acct }
spec: { accountOnly: true, guardrails: [team], allowedCidrs: ["10.0.0.0/8"] }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: k }
spec: { keyHash: "${hashKey('k')}", parent: acct, allowedCidrs: ["10.1.0.0/16"] }`;

describe('guardrail and allow-list config', () => {
  it('file mode refuses a GatewayConfig whose pattern does not compile, naming the guardrail', () => {
    const r = parseResources(docs(`apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  guardrails: [{ name: bad, patterns: [{ name: p, regex: "([", action: block }] }]`));
    assert.equal(r.resources.gatewayConfig, undefined);
    assert.equal(r.issues[0]?.field, 'spec.guardrails[0]');
    assert.match(r.issues[0]?.message ?? '', /pattern p is not a valid regular expression/);
    const unknownAction = parseResources(docs(`apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  guardrails: [{ name: bad, pii: { email: redact } }]`));
    assert.match(unknownAction.issues[0]?.message ?? '', /must be one of: block, mask, log/);
  });

  it("a key inherits its account's guardrails and allow-list; global guardrails apply by model", () => {
    const r = parseResources(docs(CONFIG));
    assert.deepEqual(r.issues, []);
    const { snapshot } = buildSnapshot(r.resources, 1);
    const key = snapshot.keysByHash.get(hashKey('k'));
    assert.ok(key);
    assert.deepEqual(key.guardrails, ['team']);
    assert.deepEqual(key.allowList?.levels.map((l) => l.owner), ['default/k', 'default/acct']);
    const gpt4 = selectGuardrails(snapshot.guardrails, key, 'gpt-4o');
    assert.ok(!('missing' in gpt4));
    assert.deepEqual(gpt4.request.map((g) => g.name), ['everyone', 'team']);
    assert.deepEqual(gpt4.response.map((g) => g.name), ['everyone']);
    const other = selectGuardrails(snapshot.guardrails, key, 'llama');
    assert.ok(!('missing' in other));
    assert.deepEqual(other.request.map((g) => g.name), ['team']);
  });

  it('moderation of answers: nonStreamed is accepted; streamed answers are refused with why, and so is nonStreamed with response: false', () => {
    const gateway = (moderation: string, extra = ''): ReturnType<typeof parseResources> =>
      parseResources(docs(`apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  guardrails: [{ name: m, ${extra}moderation: { endpoint: "https://mod.example/v1/moderations", ${moderation} } }]`));
    const ok = gateway('responses: nonStreamed, failureMode: open');
    assert.deepEqual(ok.issues, []);
    const { snapshot } = buildSnapshot(ok.resources, 1);
    assert.equal(snapshot.guardrails.byName.get('m')?.moderation?.responses, 'nonStreamed');
    assert.equal(snapshot.guardrails.byName.get('m')?.moderation?.failureMode, 'open');
    for (const value of ['streamed', 'all']) {
      const bad = gateway(`responses: ${value}`);
      assert.equal(bad.resources.gatewayConfig, undefined, value);
      assert.equal(bad.issues[0]?.field, 'spec.guardrails[0].moderation.responses');
      assert.match(bad.issues[0]?.message ?? '', /must be none or nonStreamed, got "[a-z]+": .*a streamed answer reaches the client as it is generated/);
    }
    const off = gateway('responses: nonStreamed', 'response: false, ');
    assert.match(off.issues[0]?.message ?? '', /nonStreamed needs response checks on/);
  });
});
