/**
 * Who is the one ledger writer. In Kubernetes mode with a status Lease, the Lease holder (the
 * controller's existing leader election, src/controller/leader.ts). Without a Lease (file mode, or
 * a Lease disabled), a Redis lock shared by the replicas that share the Redis stream: SET NX with a
 * TTL, renewed by its holder, taken over only after it lapsed.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../ratelimit/redis.js';

export interface WriterElection {
  /** True while this replica is the writer (may renew or acquire as a side effect). */
  leading(): Promise<boolean>;
  /** Gives the role up (shutdown), so another replica takes over at once. */
  release(): Promise<void>;
}

/** The Lease holder writes. */
export class LeaseElection implements WriterElection {
  constructor(private readonly isLeader: () => boolean) {}
  leading(): Promise<boolean> {
    return Promise.resolve(this.isLeader());
  }
  release(): Promise<void> {
    return Promise.resolve();
  }
}

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** The holder of a Redis lock writes. */
export class RedisLockElection implements WriterElection {
  private readonly token = randomBytes(12).toString('hex');
  private readonly key: string;

  constructor(
    private readonly client: RedisClient,
    prefix: string,
    private readonly ttlMs = 15_000,
  ) {
    this.key = `${prefix}{tollgate}:ledger:writer`;
  }

  async leading(): Promise<boolean> {
    try {
      if (Number(await this.client.eval(RENEW, 1, this.key, this.token, this.ttlMs)) === 1) return true;
      return (await this.client.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
    } catch {
      return false; // Redis unreachable: nobody can read the stream anyway
    }
  }

  async release(): Promise<void> {
    await this.client.eval(RELEASE, 1, this.key, this.token).catch(() => undefined);
  }
}
