/**
 * Redis for short-lived, hot state: an {@link EphemeralStore} (artifacts of the short-lived
 * kinds, replay records, rate-limit counters) on top of `redis` (node-redis v5/v6, an optional
 * dependency loaded only when {@link createRedisStore} opens its own client), and
 * {@link createRedisPostgresStorage}, the whole {@link Storage} contract over PostgreSQL + Redis.
 *
 * Layout (every key under `prefix`, default `portcullis:`):
 * - `a:<kind>:<id>` — a hash per artifact: `r` the immutable part of the record (JSON), `d` its
 *   data (JSON), `x` expires_at, `c` consumed_at, `v` revoked_at, `g` grant id;
 * - `g:<grant id>` — the set of the grant's artifacts held here (for `revokeGrant`);
 * - `r:<key>` — a replay record (its value: expires_at); `l:<key>` — a rate-limit window (`n`, `t`);
 * - `z:a`, `z:r`, `z:l` — sorted sets by expiry, so `sweepExpired` finds expired rows in bounded
 *   batches without scanning.
 *
 * Every check-and-set is one Lua script (consume, recordOnce, hitRateLimit, revoke, …), atomic on
 * the Redis server. Expiry is decided with the caller's `now` (one clock, the core's), never with
 * Redis's: the Redis TTL (`PEXPIRE`) only reclaims memory, a grace period (5 minutes) after the
 * record's own lifetime. Scripts touch keys they compute from the prefix, so a single Redis (or a
 * replicated primary, Sentinel) is supported; Redis Cluster is not.
 *
 * Errors that mean "Redis cannot be reached" (client closed or offline — commands are not queued
 * while reconnecting —, connection refused or reset, command timeout (default 2 s), LOADING,
 * BUSY, READONLY, MASTERDOWN, …) become {@link StorageUnavailableError} naming only the reason.
 * The client reconnects by itself (backoff up to 2 s) when Redis returns.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { StorageUnavailableError } from '../core/errors.js';
import type { ArtifactKind, ArtifactRecord, ConsumeResult, RateLimitResult } from './contract.js';
import { CompositeStorage, type ComposeStorageOptions, type EphemeralStore, type EphemeralSweepCounts } from './composite.js';
import { createPostgresStorage, type PostgresStorage, type PostgresStorageOptions } from './postgres.js';

/** The part of a node-redis client this store uses (typed structurally). */
export interface RedisCommandClient {
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

/** A client the store opened itself: it also connects and closes. */
interface OwnedRedisClient extends RedisCommandClient {
  connect(): Promise<unknown>;
  destroy(): void;
  close?(): Promise<unknown>;
  quit?(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  readonly isReady?: boolean;
}

interface CommonRedisOptions {
  /** Prefix of every key (default `portcullis:`): several deployments (or test runs) share one Redis. */
  prefix?: string;
  /** Give up on a command after this long (default 2,000 ms). */
  commandTimeoutMillis?: number;
}

/**
 * `{ url }` (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS) opens a client owned
 * by the store: `close()` closes it. `{ client }` adopts a connected node-redis client you manage
 * (`close()` leaves it open; give it `disableOfflineQueue: true` so that commands fail fast during
 * an outage instead of waiting, and no `keyPrefix`: use `prefix` here instead).
 */
export type RedisStoreOptions = CommonRedisOptions &
  (
    | {
        url: string;
        /** Give up connecting after this long (default 5,000 ms). */
        connectTimeoutMillis?: number;
        /** Errors of the connection (it reconnects by itself); default: ignored. */
        onError?: (err: Error) => void;
      }
    | { client: RedisCommandClient }
  );

export const DEFAULT_REDIS_PREFIX = 'portcullis:';
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Keys live this long past their record's own lifetime before Redis reclaims them. */
const GRACE_MS = 5 * 60_000;
const DEFAULT_SWEEP_LIMIT = 1000;

// -------------------------------------------------------------------------------------------------
// scripts

class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

const SAVE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local f = {'r', ARGV[1], 'x', ARGV[3]}
if ARGV[2] ~= '' then f[#f + 1] = 'd'; f[#f + 1] = ARGV[2] end
if ARGV[4] ~= '' then f[#f + 1] = 'c'; f[#f + 1] = ARGV[4] end
if ARGV[5] ~= '' then f[#f + 1] = 'v'; f[#f + 1] = ARGV[5] end
if ARGV[8] ~= '' then f[#f + 1] = 'g'; f[#f + 1] = ARGV[8] end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[7])
if KEYS[3] then
  redis.call('SADD', KEYS[3], ARGV[7])
  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
end
return 1
`);

const CONSUME = new Script(`
local h = redis.call('HMGET', KEYS[1], 'r', 'd', 'x', 'c', 'v')
if not h[1] or tonumber(h[3]) <= tonumber(ARGV[1]) then return {0} end
if h[4] then return {2, h[1], h[2], h[3], h[4], h[5]} end
redis.call('HSET', KEYS[1], 'c', ARGV[1])
return {1, h[1], h[2], h[3], ARGV[1], h[5]}
`);

const REVOKE = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'v', ARGV[1])
return 1
`);

const UPDATE_DATA = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return 1
`);

const REVOKE_GRANT = new Script(`
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[2] .. m
  if redis.call('EXISTS', k) == 1 and redis.call('HSETNX', k, 'v', ARGV[1]) == 1 then n = n + 1 end
end
return n
`);

const RECORD_ONCE = new Script(`
local e = redis.call('GET', KEYS[1])
if e and tonumber(e) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
return 1
`);

const HIT = new Script(`
local t = redis.call('HGET', KEYS[1], 't')
if (not t) or tonumber(t) <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'n', 1, 't', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
  return {1, ARGV[1]}
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), t}
`);

const RESET = new Script(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

const SWEEP_ARTIFACTS = new Script(`
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  local k = ARGV[3] .. m
  local g = redis.call('HGET', k, 'g')
  if g then redis.call('SREM', ARGV[4] .. g, m) end
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], m)
end
return #members
`);

const SWEEP_KEYS = new Script(`
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  redis.call('DEL', ARGV[3] .. m)
  redis.call('ZREM', KEYS[1], m)
end
return #members
`);

// -------------------------------------------------------------------------------------------------
// errors

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN']);
const UNAVAILABLE_CLASSES = new Set([
  'ClientClosedError',
  'ClientOfflineError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'SocketClosedUnexpectedlyError',
  'DisconnectsClientError',
  'ReconnectStrategyError',
  'TimeoutError',
  'AbortError',
  'RootNodesUnavailableError',
]);
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF|OOM)\b/;
const UNAVAILABLE_MESSAGE = /^(The client is (closed|offline)|Connection timeout|Socket closed unexpectedly|Timeout|The queue is full)/;

function unavailableReason(err: unknown, depth = 0): string | undefined {
  if (!(err instanceof Error) || depth > 3) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  // node-redis wraps the socket error when its reconnect strategy gives up: name that instead.
  const wrapped = (err as { originalError?: unknown; socketError?: unknown }).originalError ?? (err as { socketError?: unknown }).socketError;
  if (wrapped !== undefined && wrapped !== err) {
    const inner = unavailableReason(wrapped, depth + 1);
    if (inner !== undefined) return inner;
  }
  const cls = err.constructor?.name;
  if (cls !== undefined && UNAVAILABLE_CLASSES.has(cls)) return cls.replace(/Error$/, '');
  const reply = UNAVAILABLE_REPLIES.exec(err.message)?.[1];
  if (reply !== undefined) return reply;
  if (UNAVAILABLE_MESSAGE.test(err.message)) return 'connection lost';
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const reason = unavailableReason(inner, depth + 1);
      if (reason !== undefined) return reason;
    }
  }
  return err.cause === undefined ? undefined : unavailableReason(err.cause, depth + 1);
}

/** Map a client error to {@link StorageUnavailableError} when it means Redis is unreachable. */
export function mapRedisError(err: unknown): unknown {
  if (err instanceof StorageUnavailableError) return err;
  const reason = unavailableReason(err);
  return reason === undefined ? err : new StorageUnavailableError(`Redis storage unavailable (${reason})`, { cause: err });
}

// -------------------------------------------------------------------------------------------------

type Reply = string | number | null | Reply[];

function ttlMs(seconds: number): string {
  return String(Math.max(0, Math.ceil(seconds * 1000)) + GRACE_MS);
}

function checkWindow(windowSeconds: number): void {
  if (!Number.isInteger(windowSeconds) || windowSeconds <= 0) throw new RangeError('windowSeconds must be a positive integer');
}

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.max(0, Math.floor(limit));
}

function str(value: Reply | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** Rebuild a record from the hash fields r, d, x, c, v. */
function toArtifact(r: string, d: string | undefined, c: string | undefined, v: string | undefined): ArtifactRecord {
  const record = JSON.parse(r) as ArtifactRecord;
  if (d !== undefined) record.data = JSON.parse(d) as Record<string, unknown>;
  if (c !== undefined) record.consumed_at = Number(c);
  if (v !== undefined) record.revoked_at = Number(v);
  return record;
}

/** The {@link EphemeralStore} on Redis. Create it with {@link createRedisStore}. */
export class RedisStore implements EphemeralStore {
  readonly name = 'redis';
  readonly prefix: string;
  readonly #client: RedisCommandClient;
  readonly #owned: OwnedRedisClient | undefined;
  readonly #timeout: number;
  readonly #keys: { artifactsByExpiry: string; recordsByExpiry: string; limitsByExpiry: string; artifact: string; grant: string; record: string; limit: string };
  #closed = false;

  /** @internal use {@link createRedisStore} */
  constructor(client: RedisCommandClient, options: { prefix: string; commandTimeoutMillis: number; owned?: OwnedRedisClient }) {
    this.#client = client;
    this.#owned = options.owned;
    this.#timeout = options.commandTimeoutMillis;
    this.prefix = options.prefix;
    const p = options.prefix;
    this.#keys = {
      artifactsByExpiry: `${p}z:a`,
      recordsByExpiry: `${p}z:r`,
      limitsByExpiry: `${p}z:l`,
      artifact: `${p}a:`,
      grant: `${p}g:`,
      record: `${p}r:`,
      limit: `${p}l:`,
    };
  }

  async #send(args: string[]): Promise<Reply> {
    if (this.#closed) throw new StorageUnavailableError('Redis storage is closed');
    try {
      return (await this.#client.sendCommand(args, { timeout: this.#timeout })) as Reply;
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  async #eval(script: Script, keys: string[], args: string[]): Promise<Reply> {
    try {
      return await this.#send(['EVALSHA', script.sha, String(keys.length), ...keys, ...args]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.#send(['EVAL', script.source, String(keys.length), ...keys, ...args]);
    }
  }

  #member(kind: ArtifactKind, id: string): string {
    return `${kind}:${id}`;
  }

  // artifacts

  async saveArtifact(a: ArtifactRecord): Promise<void> {
    const { consumed_at, revoked_at, data, ...rest } = a;
    const member = this.#member(a.kind, a.id);
    const keys = [this.#keys.artifact + member, this.#keys.artifactsByExpiry];
    if (a.grant_id !== undefined) keys.push(this.#keys.grant + a.grant_id);
    const saved = await this.#eval(SAVE, keys, [
      JSON.stringify(rest),
      data === undefined ? '' : JSON.stringify(data),
      String(a.expires_at),
      consumed_at === undefined ? '' : String(consumed_at),
      revoked_at === undefined ? '' : String(revoked_at),
      ttlMs(a.expires_at - a.created_at),
      member,
      a.grant_id ?? '',
    ]);
    if (saved !== 1) throw new Error('artifact already exists');
  }

  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    const h = await this.#send(['HMGET', this.#keys.artifact + this.#member(kind, id), 'r', 'd', 'x', 'c', 'v']);
    if (!Array.isArray(h)) return undefined;
    const r = str(h[0]);
    const x = str(h[2]);
    if (r === undefined || x === undefined || Number(x) <= now) return undefined;
    return toArtifact(r, str(h[1]), str(h[3]), str(h[4]));
  }

  async consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    const reply = await this.#eval(CONSUME, [this.#keys.artifact + this.#member(kind, id)], [String(now)]);
    if (!Array.isArray(reply) || reply[0] === 0 || reply[0] === undefined) return { status: 'not_found' };
    const record = toArtifact(str(reply[1])!, str(reply[2]), str(reply[4]), str(reply[5]));
    return { status: Number(reply[0]) === 1 ? 'consumed' : 'already_consumed', record };
  }

  async revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    return (await this.#eval(REVOKE, [this.#keys.artifact + this.#member(kind, id)], [String(now)])) === 1;
  }

  async updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    return (await this.#eval(UPDATE_DATA, [this.#keys.artifact + this.#member(kind, id)], [JSON.stringify(data)])) === 1;
  }

  async revokeGrantArtifacts(grantId: string, now: number): Promise<number> {
    return Number(await this.#eval(REVOKE_GRANT, [this.#keys.grant + grantId], [String(now), this.#keys.artifact]));
  }

  // replay records

  async recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    const reply = await this.#eval(RECORD_ONCE, [this.#keys.record + key, this.#keys.recordsByExpiry], [
      String(expiresAt),
      String(now),
      ttlMs(expiresAt - now),
      key,
    ]);
    return reply === 1;
  }

  async hasRecord(key: string, now: number): Promise<boolean> {
    const value = str(await this.#send(['GET', this.#keys.record + key]));
    return value !== undefined && Number(value) > now;
  }

  // rate limits

  async hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    checkWindow(windowSeconds);
    const resetAt = now - (now % windowSeconds) + windowSeconds;
    const reply = await this.#eval(HIT, [this.#keys.limit + key, this.#keys.limitsByExpiry], [String(resetAt), String(now), ttlMs(resetAt - now), key]);
    if (!Array.isArray(reply)) throw new Error('unexpected reply from the rate-limit script');
    return { count: Number(reply[0]), reset_at: Number(reply[1]) };
  }

  async resetRateLimit(key: string): Promise<void> {
    await this.#eval(RESET, [this.#keys.limit + key, this.#keys.limitsByExpiry], [key]);
  }

  // maintenance

  async sweepExpiredCounts(now: number, limits: EphemeralSweepCounts): Promise<EphemeralSweepCounts> {
    if (this.#closed) throw new StorageUnavailableError('Redis storage is closed');
    const counts: EphemeralSweepCounts = { artifacts: 0, records: 0, rateLimits: 0 };
    const artifacts = clampLimit(limits.artifacts);
    if (artifacts > 0) {
      counts.artifacts = Number(
        await this.#eval(SWEEP_ARTIFACTS, [this.#keys.artifactsByExpiry], [String(now), String(artifacts), this.#keys.artifact, this.#keys.grant]),
      );
    }
    const records = clampLimit(limits.records);
    if (records > 0) {
      counts.records = Number(await this.#eval(SWEEP_KEYS, [this.#keys.recordsByExpiry], [String(now), String(records), this.#keys.record]));
    }
    const rateLimits = clampLimit(limits.rateLimits);
    if (rateLimits > 0) {
      counts.rateLimits = Number(await this.#eval(SWEEP_KEYS, [this.#keys.limitsByExpiry], [String(now), String(rateLimits), this.#keys.limit]));
    }
    return counts;
  }

  /** Delete up to `limit` expired rows of each kind; returns the total. */
  async sweepExpired(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<number> {
    const c = await this.sweepExpiredCounts(now, { artifacts: limit, records: limit, rateLimits: limit });
    return c.artifacts + c.records + c.rateLimits;
  }

  async ping(): Promise<void> {
    await this.#send(['PING']);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#owned;
    if (client === undefined) return;
    try {
      if (client.isReady === true && client.close !== undefined) await client.close();
      else if (client.isReady === true && client.quit !== undefined) await client.quit();
      else client.destroy();
    } catch {
      client.destroy();
    }
  }
}

interface RedisModule {
  createClient(options: Record<string, unknown>): OwnedRedisClient;
}

function loadDriver(): RedisModule {
  const require = createRequire(import.meta.url);
  try {
    return require('redis') as RedisModule;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new Error('The Redis store needs the package redis: npm install redis', { cause: err });
    }
    throw err;
  }
}

/**
 * Open a {@link RedisStore}. With `{ url }` the client is created here (RESP2, no offline queue,
 * TCP keep-alive, reconnecting with backoff up to 2 s after it has connected once) and connected
 * before this resolves; with `{ client }` the store uses your client as it is.
 * @throws StorageUnavailableError when Redis cannot be reached at start.
 */
export async function createRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  const commandTimeoutMillis = options.commandTimeoutMillis ?? DEFAULT_COMMAND_TIMEOUT_MS;
  if ('client' in options) return new RedisStore(options.client, { prefix, commandTimeoutMillis });

  const { createClient } = loadDriver();
  const connectTimeout = options.connectTimeoutMillis ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let connected = false;
  const client = createClient({
    url: options.url,
    RESP: 2,
    disableOfflineQueue: true,
    socket: {
      connectTimeout,
      keepAlive: true,
      // At start, fail (the caller reports the outage); once connected, reconnect forever.
      reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(50 * 2 ** Math.min(retries, 6), 2_000) : cause),
    },
  });
  const onError = options.onError ?? (() => undefined);
  client.on('error', (err) => onError(err));
  try {
    await client.connect();
    // Connected is not usable: a server that wants a password answers NOAUTH only to commands.
    await client.sendCommand(['PING'], { timeout: commandTimeoutMillis });
    connected = true;
  } catch (err) {
    try {
      client.destroy();
    } catch {
      // already closed
    }
    // Redis answered but refused (WRONGPASS, NOAUTH, …): a configuration error, not an outage.
    const inner = (err as { originalError?: unknown } | null)?.originalError ?? err;
    if (inner instanceof Error && /^[A-Z]+ /.test(inner.message) && !(mapRedisError(inner) instanceof StorageUnavailableError)) {
      throw new Error(`Redis refused the connection: ${inner.message}`, { cause: err });
    }
    const mapped = mapRedisError(err);
    throw mapped instanceof StorageUnavailableError ? mapped : new StorageUnavailableError('Redis storage unavailable (connect failed)', { cause: err });
  }
  return new RedisStore(client, { prefix, commandTimeoutMillis, owned: client });
}

export interface RedisPostgresStorageOptions extends Partial<Omit<ComposeStorageOptions, 'durable' | 'ephemeral'>> {
  postgres: PostgresStorageOptions;
  redis: RedisStoreOptions;
}

/**
 * The whole {@link Storage} contract on PostgreSQL (durable records) plus Redis (short-lived, hot
 * state), routed per kind (see `./composite.ts`). Named `postgres+redis`.
 * @throws StorageUnavailableError when either store cannot be reached (the other is closed again).
 */
export async function createRedisPostgresStorage(options: RedisPostgresStorageOptions): Promise<CompositeStorage> {
  const { postgres, redis, ...compose } = options;
  const durable: PostgresStorage = await createPostgresStorage(postgres);
  let ephemeral: RedisStore;
  try {
    ephemeral = await createRedisStore(redis);
  } catch (err) {
    await durable.close().catch(() => undefined);
    throw err;
  }
  return new CompositeStorage({ ...compose, durable, ephemeral });
}
