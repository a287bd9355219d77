/**
 * HTTP+SSE sessions across replicas (Redis pub/sub).
 *
 * The older MCP transport answers every POST on the client's SSE stream, which lives in the replica
 * that accepted `GET .../sse`. A POST that reaches another replica is relayed to it: the owner
 * subscribes to a channel per session, named by a SHA-256 of the session id (never the id itself),
 * for as long as the stream is open; the receiving replica publishes the message there and waits (at
 * most RELAY_TIMEOUT_MS) for the owner's verdict on a reply channel of its own. PUBLISH counts the
 * subscribers: none means no replica holds the session (unknown, or its stream closed).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { RedisClient } from '../ratelimit/redis.js';
import { channelObject } from './channel-json.js';

/** What a relayed message carries to the owner (the key's name, never the key). */
export interface RelayedMessage {
  /** ApiKey `namespace/name` the receiving replica authenticated. */
  readonly key: string;
  /** The MCP endpoint the POST was sent to (`/mcp` or `/mcp/<ns>/<name>`). */
  readonly endpoint: string;
  /** The receiving replica's request id (for the logs). */
  readonly requestId: string;
  /** The POST body as received (already checked to be JSON within the size limit). */
  readonly body: string;
}

/** The owner's verdict: 202 (accepted: the answer goes on the stream) or a JSON-RPC error. */
export type RelayAnswer = { readonly status: 202 } | { readonly status: number; readonly code: number; readonly message: string };

/** Carries HTTP+SSE POSTs to the replica holding the stream. */
export interface SseRelay {
  /**
   * Owner side: receive this session's messages from other replicas until the returned function runs.
   * Resolves once Redis confirmed the subscription (or after SUBSCRIBE_WAIT_MS), so the client learns
   * its message URL only when other replicas can reach the session.
   */
  hold(sessionId: string, handler: (message: RelayedMessage) => Promise<RelayAnswer>): Promise<() => void>;
  /** Receiving side: sends a message to the session's owner; resolves with its verdict, never hangs. */
  send(sessionId: string, message: RelayedMessage): Promise<RelayAnswer>;
  close(): Promise<void>;
}

/** How long a receiving replica waits for the owner's verdict before answering 503. */
export const RELAY_TIMEOUT_MS = 5000;
/** How long opening a stream waits for Redis to confirm the session's subscription. */
const SUBSCRIBE_WAIT_MS = 2000;
/** Relayed POSTs a replica waits for at once; more get 503 at once. */
export const MAX_PENDING_RELAYS = 1000;

const NOT_FOUND: RelayAnswer = {
  status: 404,
  code: -32600,
  message: 'Session not found: no replica holds an open stream for this session id (unknown, or its stream closed). Open a new stream (GET .../sse).',
};
const ERROR_CODE = -32603;

/** The channel-name part for a session: a hash, so Redis never sees the id. */
export function sessionChannelId(sessionId: string): string {
  return createHash('sha256').update(`tollgate-mcp-sse\n${sessionId}`).digest('hex');
}

interface Wire {
  readonly r: string; // reply channel id of the sender
  readonly n: string; // nonce
  readonly d: number; // sender's deadline (epoch ms): later, the owner drops it
  readonly k: string;
  readonly e: string;
  readonly q: string;
  readonly b: string;
}

const HEX = /^[0-9a-f]{1,64}$/;

/** Parses a relayed message from the channel; undefined for anything malformed or too long. */
export function parseWire(message: string, maxBody: number): Wire | undefined {
  const w: Partial<Record<keyof Wire, unknown>> | undefined = channelObject(message, maxBody * 2 + 4096);
  if (!w) return undefined;
  if (typeof w.r !== 'string' || !HEX.test(w.r) || typeof w.n !== 'string' || !HEX.test(w.n) || typeof w.d !== 'number') return undefined;
  if (typeof w.k !== 'string' || typeof w.e !== 'string' || typeof w.q !== 'string' || typeof w.b !== 'string') return undefined;
  if (w.k.length > 512 || w.e.length > 512 || w.q.length > 256 || Buffer.byteLength(w.b) > maxBody) return undefined;
  return { r: w.r, n: w.n, d: w.d, k: w.k, e: w.e, q: w.q, b: w.b };
}

/** Parses an owner's verdict; undefined for anything malformed. */
export function parseAnswer(message: string): { nonce: string; answer: RelayAnswer } | undefined {
  const v = channelObject(message, 4096);
  if (!v) return undefined;
  const { n, s, c, m } = v;
  if (typeof n !== 'string' || typeof s !== 'number' || !Number.isInteger(s) || s < 200 || s > 599) return undefined;
  if (s === 202) return { nonce: n, answer: { status: 202 } };
  if (typeof c !== 'number' || typeof m !== 'string') return undefined;
  return { nonce: n, answer: { status: s, code: c, message: m } };
}

interface Pending {
  readonly resolve: (answer: RelayAnswer) => void;
  readonly timer: NodeJS.Timeout;
}

export class RedisSseRelay implements SseRelay {
  private readonly sub: RedisClient;
  private readonly replyId = randomBytes(16).toString('hex');
  private readonly replyChannel: string;
  private readonly sessionPrefix: string;
  /** Sessions held here, by channel name. */
  private readonly held = new Map<string, (message: RelayedMessage) => Promise<RelayAnswer>>();
  private readonly pending = new Map<string, Pending>();
  /**
   * Channels released while the subscriber connection was down (or whose UNSUBSCRIBE failed): the
   * client library subscribes again on reconnect whatever it had, so they are unsubscribed then.
   */
  private readonly stale = new Set<string>();
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly maxBodyBytes: number,
    private readonly timeoutMs = RELAY_TIMEOUT_MS,
  ) {
    this.replyChannel = `${prefix}mcp:sse-reply:${this.replyId}`;
    this.sessionPrefix = `${prefix}mcp:sse:`;
    // A subscribed connection can run no other command: a connection of its own.
    this.sub = redis.duplicate() as RedisClient;
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.replyChannel) this.onAnswer(message);
      // A session whose stream just closed (its UNSUBSCRIBE still on the way) answers 404 at once.
      else if (channel.startsWith(this.sessionPrefix)) void this.onMessage(this.held.get(channel) ?? notHeld, message);
    });
    // Subscribes on every (re)connection: a lost connection dropped every subscription.
    this.sub.on('ready', () => {
      (this.sub as Redis).subscribe(this.replyChannel, ...this.held.keys()).catch((err: unknown) => this.warn(err, 'subscribe failed'));
      if (this.stale.size > 0) {
        const channels = [...this.stale];
        this.stale.clear();
        (this.sub as Redis).unsubscribe(...channels).catch(() => {
          for (const c of channels) if (!this.held.has(c)) this.stale.add(c);
        });
      }
    });
  }

  async hold(sessionId: string, handler: (message: RelayedMessage) => Promise<RelayAnswer>): Promise<() => void> {
    const channel = this.sessionPrefix + sessionChannelId(sessionId);
    this.held.set(channel, handler);
    // Not connected: the 'ready' handler subscribes every held session when the connection is back.
    if (this.sub.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        (this.sub as Redis).subscribe(channel).catch((err: unknown) => this.warn(err, 'subscribe failed')),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    return () => {
      if (this.held.get(channel) !== handler) return;
      this.held.delete(channel);
      if (this.closed) return;
      if (this.sub.status !== 'ready') this.stale.add(channel);
      else (this.sub as Redis).unsubscribe(channel).catch(() => this.stale.add(channel));
    };
  }

  send(sessionId: string, message: RelayedMessage): Promise<RelayAnswer> {
    if (this.closed) return Promise.resolve(unavailable('this replica is shutting down'));
    if (this.pending.size >= MAX_PENDING_RELAYS) return Promise.resolve(unavailable('too many messages waiting for other replicas'));
    const nonce = randomBytes(12).toString('hex');
    const deadline = Date.now() + this.timeoutMs;
    const wire: Wire = { r: this.replyId, n: nonce, d: deadline, k: message.key, e: message.endpoint, q: message.requestId, b: message.body };
    return new Promise<RelayAnswer>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(nonce);
        resolve(unavailable(`the replica holding the stream did not accept the message within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      const done = (answer: RelayAnswer): void => {
        if (this.pending.get(nonce)?.timer !== timer) return;
        clearTimeout(timer);
        this.pending.delete(nonce);
        resolve(answer);
      };
      this.pending.set(nonce, { resolve: done, timer });
      this.redis.publish(this.sessionPrefix + sessionChannelId(sessionId), JSON.stringify(wire)).then(
        (receivers) => {
          if (receivers === 0) done(NOT_FOUND);
        },
        (err: unknown) => {
          this.warn(err, 'publish failed');
          done(unavailable('Redis could not be reached to relay it to the replica holding the stream'));
        },
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [nonce, p] of this.pending) {
      this.pending.delete(nonce);
      clearTimeout(p.timer);
      p.resolve(unavailable('this replica is shutting down'));
    }
    this.held.clear();
    this.stale.clear();
    this.sub.disconnect();
  }

  private async onMessage(handler: (message: RelayedMessage) => Promise<RelayAnswer>, raw: string): Promise<void> {
    const wire = parseWire(raw, this.maxBodyBytes);
    if (!wire) {
      this.logger.warn('MCP SSE relay: malformed message dropped');
      return;
    }
    // The sender answered 503 already: the client must not see it run after being told it did not.
    if (Date.now() > wire.d) {
      this.logger.warn({ requestId: wire.q }, 'MCP SSE relay: message arrived after the sender gave up; dropped');
      return;
    }
    let answer: RelayAnswer;
    try {
      answer = await handler({ key: wire.k, endpoint: wire.e, requestId: wire.q, body: wire.b });
    } catch (err) {
      this.logger.error({ err, requestId: wire.q }, 'MCP SSE relay: unexpected error handling a relayed message');
      answer = { status: 500, code: ERROR_CODE, message: 'The gateway failed to process this request.' };
    }
    const reply = 'code' in answer ? { n: wire.n, s: answer.status, c: answer.code, m: answer.message } : { n: wire.n, s: 202 };
    this.redis.publish(`${this.prefix}mcp:sse-reply:${wire.r}`, JSON.stringify(reply)).catch((err: unknown) => this.warn(err, 'reply failed'));
  }

  private onAnswer(raw: string): void {
    const parsed = parseAnswer(raw);
    if (parsed) this.pending.get(parsed.nonce)?.resolve(parsed.answer);
  }

  private warn(err: unknown, what: string): void {
    this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, `MCP SSE relay: ${what}`);
  }
}

async function notHeld(): Promise<RelayAnswer> {
  return NOT_FOUND;
}

function unavailable(why: string): RelayAnswer {
  return { status: 503, code: ERROR_CODE, message: `Session relay unavailable: ${why}. Retry, or open a new stream (GET .../sse).` };
}
