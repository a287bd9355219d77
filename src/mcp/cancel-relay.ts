/**
 * Cross-replica cancellation of MCP tool calls. A Streamable HTTP client sends notifications/cancelled
 * in a new HTTP request, which (no sticky routing) may reach another replica than the one running the
 * call. A replica that finds no such call locally publishes the call's id on a Redis channel; every
 * replica listens and ends the call if it runs it. Ids are published hashed (SHA-256 of session id,
 * key, endpoint and request id), never the session id itself.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { RedisClient } from '../ratelimit/redis.js';

/** Carries cancellations between replicas. */
export interface CancelRelay {
  /** Tells every replica that the call with this (hashed) id was cancelled. */
  publish(callId: string): void;
  /** `handler` runs for every cancellation published by any replica (this one included). */
  subscribe(handler: (callId: string) => void): void;
  close(): Promise<void>;
}

/** Longest id accepted from the channel (a hex SHA-256 is 64 characters). */
const MAX_ID = 128;

export class RedisCancelRelay implements CancelRelay {
  private readonly channel: string;
  private readonly sub: RedisClient;
  private handler: ((callId: string) => void) | undefined;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}mcp:cancel`;
    // A subscribed connection can run no other command: a connection of its own.
    this.sub = redis.duplicate() as RedisClient;
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel && message.length <= MAX_ID) this.handler?.(message);
    });
    // Subscribes on every (re)connection: the client queues no command while it is down.
    this.sub.on('ready', () => {
      (this.sub as Redis).subscribe(this.channel).catch((err: unknown) => {
        this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'MCP cancellation channel: subscribe failed');
      });
    });
  }

  publish(callId: string): void {
    this.redis.publish(this.channel, callId).catch((err: unknown) => {
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'MCP cancellation not relayed to other replicas');
    });
  }

  subscribe(handler: (callId: string) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    this.handler = undefined;
    this.sub.disconnect();
  }
}
