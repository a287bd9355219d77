/**
 * What MCP replicas tell each other over Redis pub/sub.
 *
 * Cross-replica cancellation of MCP tool calls. A Streamable HTTP client sends notifications/cancelled
 * in a new HTTP request, which (no sticky routing) may reach another replica than the one running the
 * call. A replica that finds no such call locally publishes the call's id on a Redis channel; every
 * replica listens and ends the call if it runs it. Ids are published hashed (SHA-256 of session id,
 * key, endpoint and request id), never the session id itself.
 *
 * Log levels: a client session's logging/setLevel lands on one replica, its later calls on any. The
 * replica that got it publishes the session's (hashed) name, level and servers; every replica keeps
 * it for filtering and tells its own upstream connections.
 */
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { RedisClient } from '../ratelimit/redis.js';
import { isLogLevel } from './log-levels.js';
import { channelObject } from './channel-json.js';

/** Carries cancellations between replicas. */
export interface CancelRelay {
  /** Tells every replica that the call with this (hashed) id was cancelled. */
  publish(callId: string): void;
  /** `handler` runs for every cancellation published by any replica (this one included). */
  subscribe(handler: (callId: string) => void): void;
  /** Tells every replica a session's log level (undefined: the session ended). */
  publishLevel(change: LevelChange): void;
  /** `handler` runs for every level change published by any replica (this one included). */
  subscribeLevels(handler: (change: LevelChange) => void): void;
  close(): Promise<void>;
}

/** A session's log level as replicas exchange it. */
export interface LevelChange {
  /** The hashed session name (RequestScope.logSession). */
  readonly session: string;
  readonly level: LoggingLevel | undefined;
  /** Ids of the MCPServers the session covers. */
  readonly servers: readonly string[];
}

/** Longest level message accepted from the channel. */
const MAX_LEVEL_MESSAGE = 256 * 1024;

/** Parses a level change from the channel; undefined for anything malformed. */
export function parseLevelChange(message: string): LevelChange | undefined {
  const v = channelObject(message, MAX_LEVEL_MESSAGE);
  if (!v) return undefined;
  const { s, l, v: servers } = v;
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_ID) return undefined;
  if (l !== null && !isLogLevel(l)) return undefined;
  if (!Array.isArray(servers) || !servers.every((x): x is string => typeof x === 'string')) return undefined;
  return { session: s, level: l === null ? undefined : l, servers };
}

/** Longest id accepted from the channel (a hex SHA-256 is 64 characters). */
const MAX_ID = 128;

export class RedisCancelRelay implements CancelRelay {
  private readonly channel: string;
  private readonly levelChannel: string;
  private readonly sub: RedisClient;
  private handler: ((callId: string) => void) | undefined;
  private levelHandler: ((change: LevelChange) => void) | undefined;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}mcp:cancel`;
    this.levelChannel = `${prefix}mcp:loglevel`;
    // A subscribed connection can run no other command: a connection of its own.
    this.sub = redis.duplicate() as RedisClient;
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel && message.length <= MAX_ID) this.handler?.(message);
      else if (channel === this.levelChannel) {
        const change = parseLevelChange(message);
        if (change) this.levelHandler?.(change);
      }
    });
    // Subscribes on every (re)connection: the client queues no command while it is down.
    this.sub.on('ready', () => {
      (this.sub as Redis).subscribe(this.channel, this.levelChannel).catch((err: unknown) => {
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

  publishLevel(change: LevelChange): void {
    const message = JSON.stringify({ s: change.session, l: change.level ?? null, v: change.servers });
    this.redis.publish(this.levelChannel, message).catch((err: unknown) => {
      this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'MCP log level not relayed to other replicas');
    });
  }

  subscribeLevels(handler: (change: LevelChange) => void): void {
    this.levelHandler = handler;
  }

  async close(): Promise<void> {
    this.handler = undefined;
    this.levelHandler = undefined;
    this.sub.disconnect();
  }
}
