/**
 * The log levels clients set with logging/setLevel, per client session, and what that means for the
 * upstreams. An upstream connection is shared by every client session of a replica (upstreams.ts),
 * so it is told the most verbose level any live session that covers it asked for, and the gateway
 * drops, per session, the messages below that session's own level before relaying them.
 *
 * Sessions are named by an opaque key (a hash, never the session id) and forgotten after
 * SESSION_MAX_AGE_MS (sealed sessions expire then) or when the client ends the session; at most
 * MAX_SESSIONS are kept (the oldest go first).
 */
import { LoggingLevelSchema, type LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import { SESSION_MAX_AGE_MS } from './session.js';

/** RFC 5424 levels from the most verbose (debug) to the least (emergency). */
export const LOG_LEVELS: readonly LoggingLevel[] = LoggingLevelSchema.options;

const SEVERITY: ReadonlyMap<string, number> = new Map(LOG_LEVELS.map((l, i) => [l, i]));

/** Sessions with a level kept at most per replica. */
export const MAX_SESSIONS = 100_000;

/** True when `level` is a logging level MCP defines. */
export function isLogLevel(level: unknown): level is LoggingLevel {
  return typeof level === 'string' && SEVERITY.has(level);
}

/** True when a message at `level` is below `min` (the session does not want it). */
export function belowLevel(level: string, min: LoggingLevel | undefined): boolean {
  if (min === undefined) return false;
  // A level the gateway does not know is relayed (the SDK validated it on the way in).
  return (SEVERITY.get(level) ?? LOG_LEVELS.length) < (SEVERITY.get(min) ?? 0);
}

interface SessionLevel {
  readonly level: LoggingLevel;
  /** Ids of the MCPServers the session covers. */
  readonly servers: readonly string[];
  readonly atMs: number;
}

export class LogLevels {
  /** In insertion order: the oldest entry is first (an update moves it to the end). */
  private readonly sessions = new Map<string, SessionLevel>();
  /** Server id -> how many sessions asked for each level (index = severity). */
  private readonly counts = new Map<string, number[]>();

  /** The level the session asked for, if any. */
  get(session: string | undefined): LoggingLevel | undefined {
    return session === undefined ? undefined : this.sessions.get(session)?.level;
  }

  /**
   * Sets (or, with `level` undefined, forgets) a session's level over `servers`. Returns the ids of
   * the servers whose upstream level may have changed.
   */
  set(session: string, level: LoggingLevel | undefined, servers: readonly string[], nowMs: number): Set<string> {
    const touched = new Set<string>();
    this.expire(nowMs, touched);
    this.remove(session, touched);
    if (level !== undefined) {
      this.sessions.set(session, { level, servers, atMs: nowMs });
      this.count(servers, level, 1, touched);
      while (this.sessions.size > MAX_SESSIONS) {
        const oldest = this.sessions.keys().next().value as string;
        this.remove(oldest, touched);
      }
    }
    return touched;
  }

  /** The most verbose level a live session covering this server asked for (undefined: none did). */
  upstreamLevel(serverId: string): LoggingLevel | undefined {
    const counts = this.counts.get(serverId);
    if (!counts) return undefined;
    const i = counts.findIndex((n) => n > 0);
    return i < 0 ? undefined : LOG_LEVELS[i];
  }

  get size(): number {
    return this.sessions.size;
  }

  private remove(session: string, touched: Set<string>): void {
    const old = this.sessions.get(session);
    if (!old) return;
    this.sessions.delete(session);
    this.count(old.servers, old.level, -1, touched);
  }

  private expire(nowMs: number, touched: Set<string>): void {
    for (const [session, entry] of this.sessions) {
      if (nowMs - entry.atMs <= SESSION_MAX_AGE_MS) break;
      this.remove(session, touched);
    }
  }

  private count(servers: readonly string[], level: LoggingLevel, delta: number, touched: Set<string>): void {
    const i = SEVERITY.get(level) ?? 0;
    for (const id of servers) {
      let counts = this.counts.get(id);
      if (!counts) {
        counts = LOG_LEVELS.map(() => 0);
        this.counts.set(id, counts);
      }
      counts[i] = (counts[i] ?? 0) + delta;
      if (counts.every((n) => n === 0)) this.counts.delete(id);
      touched.add(id);
    }
  }
}
