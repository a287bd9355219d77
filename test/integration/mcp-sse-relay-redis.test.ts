/**
 * The HTTP+SSE relay's Redis subscriptions against a real redis-server that goes away: a session
 * whose stream closes while the relay's subscriber connection is down must not stay subscribed once
 * the connection is back (the client library resubscribes what it had on reconnect).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../src/dev/local-stack.js';
import { RedisSseRelay, sessionChannelId, type RelayAnswer } from '../../src/mcp/sse-relay.js';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisClient, whenReady, type RedisClient } from '../../src/ratelimit/redis.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const PREFIX = 'tg-sse-test:';
const silent = new Writable({ write: (_chunk, _enc, done) => done() });

describe('MCP HTTP+SSE relay subscriptions across a Redis outage', () => {
  let redis: RedisServer;
  let client: RedisClient;
  let relay: RedisSseRelay;

  before(async () => {
    redis = await startRedis();
    client = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 500, prefix: PREFIX });
    assert.ok(await whenReady(client, 5000), 'Redis client ready');
    relay = new RedisSseRelay(client, PREFIX, createLogger('test', silent), 65536);
  });
  after(async () => {
    await relay?.close();
    client?.disconnect();
    await redis?.stop();
  });

  const subscribers = async (sessionId: string): Promise<number> => {
    const reply = (await redis.client.pubsub('NUMSUB', `${PREFIX}mcp:sse:${sessionChannelId(sessionId)}`)) as [string, number];
    return Number(reply[1]);
  };
  const accept = async (): Promise<RelayAnswer> => ({ status: 202 });

  it('a session released while Redis is down is not subscribed again when Redis is back', async () => {
    const closing = 'c4f3a0e2-0000-4000-8000-00000000000a';
    const release = await relay.hold(closing, accept);
    await waitFor('the session subscribed', async () => (await subscribers(closing)) === 1);

    await redis.kill();
    // The stream closes during the outage.
    release();
    await redis.restart();

    // A session opened after the outage works: the relay is subscribed again.
    const open = 'c4f3a0e2-0000-4000-8000-00000000000b';
    const releaseOpen = await relay.hold(open, accept);
    await waitFor('the new session subscribed', async () => (await subscribers(open)) === 1);
    // (Once the publishing connection is back too: until then a send answers 503.)
    await waitFor('a message for the new session accepted', async () => (await relay.send(open, { key: 'tools/all', endpoint: '/mcp', requestId: 'r1', body: '{}' })).status === 202);

    // The closed one is not: other replicas get 404 for it from PUBLISH counting no receiver.
    await waitFor('the closed session unsubscribed', async () => (await subscribers(closing)) === 0, 3000);
    const answer = await relay.send(closing, { key: 'tools/all', endpoint: '/mcp', requestId: 'r2', body: '{}' });
    assert.equal(answer.status, 404);
    releaseOpen();
    await waitFor('the open session unsubscribed on release', async () => (await subscribers(open)) === 0, 3000);
  });
});
