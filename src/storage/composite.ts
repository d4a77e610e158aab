/**
 * One {@link Storage} made of two stores: a durable one (SQL: PostgreSQL, SQLite) for what must
 * survive, and an ephemeral one (Redis) for short-lived, hot state, routed per artifact kind.
 *
 * Routing (defaults):
 * - ephemeral: artifacts of the kinds in {@link DEFAULT_EPHEMERAL_KINDS} (authorization codes,
 *   device codes and user codes, interactions, browser sessions), replay records (`recordOnce` /
 *   `hasRecord`) and rate-limit counters;
 * - durable: clients, users, grants, signing keys, artifacts of every other kind (refresh tokens,
 *   opaque access tokens, consents, server secrets), and replay records whose key starts with one
 *   of {@link DEFAULT_DURABLE_RECORD_PREFIXES} (revocations of JWT access tokens: a revocation
 *   must not be forgotten when Redis restarts).
 *
 * `revokeGrant` revokes in both stores: the durable store revokes the grant and its artifacts in
 * one statement, then the ephemeral store marks the grant's artifacts it holds (it keeps a set of
 * them per grant id, with a TTL). The two steps are not one transaction: when the second fails the
 * call throws {@link StorageUnavailableError} and a retry completes it (both steps are
 * idempotent). Nothing is lost in between: a code redeemed meanwhile is refused, because the
 * authorization-code grant checks the grant itself after consuming the code.
 *
 * `sweepExpired(now, limit)` keeps the contract's bound of `limit` rows per kind over both stores
 * when the durable store reports per-kind counts (`sweepExpiredCounts`, as the PostgreSQL backend
 * does); otherwise each store sweeps up to `limit` of each kind.
 */
import { StorageUnavailableError } from '../core/errors.js';
import type {
  ArtifactKind,
  ArtifactRecord,
  ClientRecord,
  ConsumeResult,
  GrantRecord,
  KeyRecord,
  RateLimitResult,
  Storage,
  UserRecord,
} from './contract.js';

/** The artifact kinds kept in the ephemeral store by default. */
export const DEFAULT_EPHEMERAL_KINDS: readonly ArtifactKind[] = Object.freeze([
  'authorization_code',
  'device_code',
  'user_code',
  'interaction',
  'session',
] as ArtifactKind[]);

/** Replay-record keys kept in the durable store by default (revoked JWT access tokens). */
export const DEFAULT_DURABLE_RECORD_PREFIXES: readonly string[] = Object.freeze(['revoked_at_jti:']);

/** Kinds that must stay durable: the composite refuses to route them to the ephemeral store. */
const ALWAYS_DURABLE: ReadonlySet<ArtifactKind> = new Set(['refresh_token', 'server_secret']);

const DEFAULT_SWEEP_LIMIT = 1000;

export interface EphemeralSweepCounts {
  artifacts: number;
  records: number;
  rateLimits: number;
}

/** What an ephemeral store (Redis) provides: artifacts, replay records and rate limits. */
export interface EphemeralStore {
  readonly name: string;
  saveArtifact(record: ArtifactRecord): Promise<void>;
  findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined>;
  consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult>;
  revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean>;
  updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean>;
  /** Mark every artifact of the grant held here revoked (an earlier `revoked_at` stays). Returns how many changed. */
  revokeGrantArtifacts(grantId: string, now: number): Promise<number>;
  recordOnce(key: string, expiresAt: number, now: number): Promise<boolean>;
  hasRecord(key: string, now: number): Promise<boolean>;
  hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult>;
  resetRateLimit(key: string): Promise<void>;
  /** Delete up to the given number of expired rows of each kind. */
  sweepExpiredCounts(now: number, limits: EphemeralSweepCounts): Promise<EphemeralSweepCounts>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A durable store that can say how many rows of each kind one sweep deleted. */
interface CountingSweeper {
  sweepExpiredCounts(now: number, limit?: number): Promise<{ artifacts: number; records: number; rateLimits: number; grants: number; keys: number }>;
}

function isCountingSweeper(storage: Storage): storage is Storage & CountingSweeper {
  return typeof (storage as Partial<CountingSweeper>).sweepExpiredCounts === 'function';
}

export interface ComposeStorageOptions {
  durable: Storage;
  ephemeral: EphemeralStore;
  /** Artifact kinds kept in the ephemeral store (default {@link DEFAULT_EPHEMERAL_KINDS}). */
  ephemeralKinds?: readonly ArtifactKind[];
  /** Replay-record key prefixes kept in the durable store (default {@link DEFAULT_DURABLE_RECORD_PREFIXES}). */
  durableRecordPrefixes?: readonly string[];
  /** Storage name for logs (default `<durable>+<ephemeral>`, e.g. `postgres+redis`). */
  name?: string;
}

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.max(0, Math.floor(limit));
}

/** A {@link Storage} routing each kind of state to the durable or the ephemeral store. */
export class CompositeStorage implements Storage {
  readonly name: string;
  readonly durable: Storage;
  readonly ephemeral: EphemeralStore;
  readonly #ephemeralKinds: ReadonlySet<ArtifactKind>;
  readonly #durablePrefixes: readonly string[];
  #closed = false;

  constructor(options: ComposeStorageOptions) {
    const kinds = new Set(options.ephemeralKinds ?? DEFAULT_EPHEMERAL_KINDS);
    for (const kind of kinds) {
      if (ALWAYS_DURABLE.has(kind)) throw new TypeError(`ephemeralKinds: ${kind} must stay in the durable store`);
    }
    this.durable = options.durable;
    this.ephemeral = options.ephemeral;
    this.#ephemeralKinds = kinds;
    this.#durablePrefixes = [...(options.durableRecordPrefixes ?? DEFAULT_DURABLE_RECORD_PREFIXES)];
    this.name = options.name ?? `${options.durable.name}+${options.ephemeral.name}`;
  }

  #check(): void {
    if (this.#closed) throw new StorageUnavailableError(`${this.name} storage is closed`);
  }

  #artifacts(kind: ArtifactKind): Pick<Storage, 'saveArtifact' | 'findArtifact' | 'consumeArtifact' | 'revokeArtifact' | 'updateArtifactData'> {
    this.#check();
    return this.#ephemeralKinds.has(kind) ? this.ephemeral : this.durable;
  }

  #records(key: string): Pick<Storage, 'recordOnce' | 'hasRecord'> {
    this.#check();
    return this.#durablePrefixes.some((prefix) => key.startsWith(prefix)) ? this.durable : this.ephemeral;
  }

  /** Whether artifacts of `kind` live in the ephemeral store. */
  isEphemeral(kind: ArtifactKind): boolean {
    return this.#ephemeralKinds.has(kind);
  }

  // clients, users, grants, keys: durable

  getClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.durable.getClient(clientId);
  }
  upsertClient(client: ClientRecord): Promise<void> {
    return this.durable.upsertClient(client);
  }
  deleteClient(clientId: string): Promise<boolean> {
    return this.durable.deleteClient(clientId);
  }
  listClients(): Promise<ClientRecord[]> {
    return this.durable.listClients();
  }
  getUser(id: string): Promise<UserRecord | undefined> {
    return this.durable.getUser(id);
  }
  getUserByUsername(username: string): Promise<UserRecord | undefined> {
    return this.durable.getUserByUsername(username);
  }
  upsertUser(user: UserRecord): Promise<void> {
    return this.durable.upsertUser(user);
  }
  deleteUser(id: string): Promise<boolean> {
    return this.durable.deleteUser(id);
  }
  listUsers(): Promise<UserRecord[]> {
    return this.durable.listUsers();
  }
  createGrant(grant: GrantRecord): Promise<void> {
    return this.durable.createGrant(grant);
  }
  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.durable.getGrant(id);
  }
  listKeys(): Promise<KeyRecord[]> {
    return this.durable.listKeys();
  }
  saveKey(key: KeyRecord): Promise<void> {
    return this.durable.saveKey(key);
  }
  updateKey(kid: string, fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>): Promise<boolean> {
    return this.durable.updateKey(kid, fields);
  }
  deleteKey(kid: string): Promise<boolean> {
    return this.durable.deleteKey(kid);
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    this.#check();
    const changed = await this.durable.revokeGrant(grantId, now);
    await this.ephemeral.revokeGrantArtifacts(grantId, now);
    return changed;
  }

  // artifacts: by kind

  async saveArtifact(record: ArtifactRecord): Promise<void> {
    return this.#artifacts(record.kind).saveArtifact(record);
  }
  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    return this.#artifacts(kind).findArtifact(kind, id, now);
  }
  async consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    return this.#artifacts(kind).consumeArtifact(kind, id, now);
  }
  async revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    return this.#artifacts(kind).revokeArtifact(kind, id, now);
  }
  async updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    return this.#artifacts(kind).updateArtifactData(kind, id, data);
  }

  // replay records: ephemeral, except durable prefixes

  async recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.#records(key).recordOnce(key, expiresAt, now);
  }
  async hasRecord(key: string, now: number): Promise<boolean> {
    return this.#records(key).hasRecord(key, now);
  }

  // rate limits: ephemeral

  async hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    this.#check();
    return this.ephemeral.hitRateLimit(key, windowSeconds, now);
  }
  async resetRateLimit(key: string): Promise<void> {
    this.#check();
    return this.ephemeral.resetRateLimit(key);
  }

  // maintenance

  async sweepExpired(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<number> {
    this.#check();
    const max = clampLimit(limit);
    if (max === 0) return 0;
    if (isCountingSweeper(this.durable)) {
      const d = await this.durable.sweepExpiredCounts(now, max);
      const e = await this.ephemeral.sweepExpiredCounts(now, {
        artifacts: max - d.artifacts,
        records: max - d.records,
        rateLimits: max - d.rateLimits,
      });
      return d.artifacts + d.records + d.rateLimits + d.grants + d.keys + e.artifacts + e.records + e.rateLimits;
    }
    const durable = await this.durable.sweepExpired(now, max);
    const e = await this.ephemeral.sweepExpiredCounts(now, { artifacts: max, records: max, rateLimits: max });
    return durable + e.artifacts + e.records + e.rateLimits;
  }

  async ping(): Promise<void> {
    this.#check();
    await Promise.all([this.durable.ping(), this.ephemeral.ping()]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const results = await Promise.allSettled([this.durable.close(), this.ephemeral.close()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

/** Compose a durable and an ephemeral store into one {@link Storage}. */
export function composeStorage(options: ComposeStorageOptions): CompositeStorage {
  return new CompositeStorage(options);
}
