/**
 * Vertex AI tokens: fetched once from the token endpoint (a local fake that verifies the signed
 * assertion), reused while valid, refreshed in the background before expiry without making a
 * request wait.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FakeGemini } from '../../dev/fake-gemini.js';
import { Refreshing } from '../refreshing.js';
import { parseServiceAccount, serviceAccountFetcher } from './token.js';

const keySource = (k: Exclude<ReturnType<typeof parseServiceAccount>, Error>): Refreshing<string> => new Refreshing<string>('service account', serviceAccountFetcher(k));

/** Polls `check` until it holds (a background refresh finishing on a busy machine), failing after 10 s. */
async function eventually(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Vertex AI token source', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const fake = new FakeGemini({ vertex: { clientEmail: 'gw@proj.iam.gserviceaccount.com', publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
  before(() => fake.start());
  after(() => fake.stop());
  const key = (): ReturnType<typeof parseServiceAccount> =>
    parseServiceAccount(JSON.stringify({ type: 'service_account', client_email: 'gw@proj.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), token_uri: fake.tokenUri }));

  it('fetches once, then answers synchronously from the cache', async () => {
    const k = key();
    assert.ok(!(k instanceof Error));
    const source = keySource(k);
    const first = source.get();
    assert.ok(first instanceof Promise, 'no token yet: the first request waits');
    const token = await first;
    assert.ok(fake.tokens.has(token), 'a token the endpoint issued');
    for (let i = 0; i < 5; i++) assert.equal(source.get(), token, 'cached, synchronous');
    assert.equal(fake.tokens.size, 1);
  });

  it('refreshes in the background when the token is close to expiry, still serving the valid one', async () => {
    fake.behaviour.tokenLifetimeS = 120; // inside the 5-minute refresh window from the start
    const k = key();
    assert.ok(!(k instanceof Error));
    const source = keySource(k);
    const t1 = await source.get();
    fake.behaviour.tokenLifetimeS = 3600;
    const issued = fake.tokens.size;
    const again = source.get();
    assert.equal(again, t1, 'the valid token is used at once while a refresh runs');
    assert.equal(source.get(), t1, 'no second refresh while one runs');
    await eventually('the background refresh', () => source.get() !== t1);
    assert.equal(fake.tokens.size, issued + 1, 'one background refresh');
    const t2 = source.get();
    assert.equal(typeof t2, 'string');
    assert.notEqual(t2, t1);
  });

  it('refuses keys without client_email or private_key, and a key the endpoint rejects fails the fetch', async () => {
    assert.ok(parseServiceAccount('{"client_email":"x"}') instanceof Error);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const k = parseServiceAccount(JSON.stringify({ client_email: 'gw@proj.iam.gserviceaccount.com', private_key: other.export({ type: 'pkcs8', format: 'pem' }).toString(), token_uri: fake.tokenUri }));
    assert.ok(!(k instanceof Error));
    await assert.rejects(async () => keySource(k).get());
  });
});
