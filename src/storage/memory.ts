/**
 * In-memory {@link Storage}: for tests, development and single-process deployments that can
 * afford to lose every grant on restart.
 *
 * Records are deep-copied (`structuredClone`) on the way in and on the way out, so callers can
 * never mutate stored state. Every check-and-set runs synchronously (no `await` between the check
 * and the write), which makes the atomic operations atomic on the single JavaScript thread.
 *
 * Semantics shared with the SQLite backend (see `./sqlite.ts`):
 * - optional fields passed as `undefined` are not stored: they come back absent;
 * - `saveArtifact` / `createGrant` reject an id that already exists (an artifact is never reset);
 * - `upsertUser` rejects a username that belongs to another user;
 * - `updateKey` ignores fields whose value is `undefined` (they stay unchanged);
 * - `revokeArtifact` / `revokeGrant` keep an earlier `revoked_at`;
 * - `sweepExpired` deletes at most `limit` rows of each kind per call (artifacts, replay records,
 *   rate-limit windows, expired grants, expired signing keys) and returns the total.
 * - after `close()`, every call except `close()` rejects with {@link StorageUnavailableError}.
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

/** Default number of rows of each kind that one `sweepExpired` call deletes. */
const DEFAULT_SWEEP_LIMIT = 1000;

function artifactKey(kind: ArtifactKind, id: string): string {
  return `${kind}\u0000${id}`;
}

/** Deep copy without own properties whose value is `undefined` (they read as absent). */
function copyIn<T extends object>(value: T): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const key of Object.keys(copy)) {
    if (copy[key] === undefined) delete copy[key];
  }
  return copy as T;
}

function copyOut<T>(value: T): T {
  return structuredClone(value);
}

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.max(0, Math.floor(limit));
}

function checkWindow(windowSeconds: number): void {
  if (!Number.isInteger(windowSeconds) || windowSeconds <= 0) {
    throw new RangeError('windowSeconds must be a positive integer');
  }
}

/** A {@link Storage} that keeps everything in `Map`s of the current process. */
export class MemoryStorage implements Storage {
  readonly name = 'memory';

  #closed = false;
  readonly #clients = new Map<string, ClientRecord>();
  readonly #users = new Map<string, UserRecord>();
  /** username → user id */
  readonly #usernames = new Map<string, string>();
  readonly #grants = new Map<string, GrantRecord>();
  /** `kind\0id` → artifact */
  readonly #artifacts = new Map<string, ArtifactRecord>();
  /** grant id → keys of its artifacts in {@link #artifacts} */
  readonly #artifactsByGrant = new Map<string, Set<string>>();
  /** key → expires_at */
  readonly #records = new Map<string, number>();
  readonly #rateLimits = new Map<string, RateLimitResult>();
  readonly #keys = new Map<string, KeyRecord>();

  #check(): void {
    if (this.#closed) throw new StorageUnavailableError('memory storage is closed');
  }

  // clients

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    this.#check();
    const client = this.#clients.get(clientId);
    return client === undefined ? undefined : copyOut(client);
  }

  async upsertClient(client: ClientRecord): Promise<void> {
    this.#check();
    this.#clients.set(client.client_id, copyIn(client));
  }

  async deleteClient(clientId: string): Promise<boolean> {
    this.#check();
    return this.#clients.delete(clientId);
  }

  async listClients(): Promise<ClientRecord[]> {
    this.#check();
    return [...this.#clients.values()]
      .sort((a, b) => compare(a.client_id, b.client_id))
      .map(copyOut);
  }

  // users

  async getUser(id: string): Promise<UserRecord | undefined> {
    this.#check();
    const user = this.#users.get(id);
    return user === undefined ? undefined : copyOut(user);
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    this.#check();
    const id = this.#usernames.get(username);
    const user = id === undefined ? undefined : this.#users.get(id);
    return user === undefined ? undefined : copyOut(user);
  }

  async upsertUser(user: UserRecord): Promise<void> {
    this.#check();
    const owner = this.#usernames.get(user.username);
    if (owner !== undefined && owner !== user.id) {
      throw new Error('username already belongs to another user');
    }
    const previous = this.#users.get(user.id);
    if (previous !== undefined && previous.username !== user.username) {
      this.#usernames.delete(previous.username);
    }
    this.#users.set(user.id, copyIn(user));
    this.#usernames.set(user.username, user.id);
  }

  async deleteUser(id: string): Promise<boolean> {
    this.#check();
    const user = this.#users.get(id);
    if (user === undefined) return false;
    this.#users.delete(id);
    this.#usernames.delete(user.username);
    return true;
  }

  async listUsers(): Promise<UserRecord[]> {
    this.#check();
    return [...this.#users.values()].sort((a, b) => compare(a.id, b.id)).map(copyOut);
  }

  // grants

  async createGrant(grant: GrantRecord): Promise<void> {
    this.#check();
    if (this.#grants.has(grant.id)) throw new Error('grant already exists');
    this.#grants.set(grant.id, copyIn(grant));
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    this.#check();
    const grant = this.#grants.get(id);
    return grant === undefined ? undefined : copyOut(grant);
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    this.#check();
    const grant = this.#grants.get(grantId);
    let changed = false;
    if (grant !== undefined && grant.revoked_at === undefined) {
      grant.revoked_at = now;
      changed = true;
    }
    const keys = this.#artifactsByGrant.get(grantId);
    if (keys !== undefined) {
      for (const key of keys) {
        const artifact = this.#artifacts.get(key);
        if (artifact !== undefined && artifact.revoked_at === undefined) artifact.revoked_at = now;
      }
    }
    return changed;
  }

  // artifacts

  async saveArtifact(record: ArtifactRecord): Promise<void> {
    this.#check();
    const key = artifactKey(record.kind, record.id);
    if (this.#artifacts.has(key)) throw new Error('artifact already exists');
    this.#artifacts.set(key, copyIn(record));
    if (record.grant_id !== undefined) {
      let keys = this.#artifactsByGrant.get(record.grant_id);
      if (keys === undefined) {
        keys = new Set();
        this.#artifactsByGrant.set(record.grant_id, keys);
      }
      keys.add(key);
    }
  }

  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    this.#check();
    const artifact = this.#artifacts.get(artifactKey(kind, id));
    if (artifact === undefined || artifact.expires_at <= now) return undefined;
    return copyOut(artifact);
  }

  async consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    this.#check();
    const artifact = this.#artifacts.get(artifactKey(kind, id));
    if (artifact === undefined || artifact.expires_at <= now) return { status: 'not_found' };
    if (artifact.consumed_at !== undefined) {
      return { status: 'already_consumed', record: copyOut(artifact) };
    }
    artifact.consumed_at = now;
    return { status: 'consumed', record: copyOut(artifact) };
  }

  async revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    this.#check();
    const artifact = this.#artifacts.get(artifactKey(kind, id));
    if (artifact === undefined) return false;
    if (artifact.revoked_at === undefined) artifact.revoked_at = now;
    return true;
  }

  async updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    this.#check();
    const artifact = this.#artifacts.get(artifactKey(kind, id));
    if (artifact === undefined) return false;
    artifact.data = structuredClone(data);
    return true;
  }

  // replay protection

  async recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    this.#check();
    const existing = this.#records.get(key);
    if (existing !== undefined && existing > now) return false;
    this.#records.set(key, expiresAt);
    return true;
  }

  async hasRecord(key: string, now: number): Promise<boolean> {
    this.#check();
    const existing = this.#records.get(key);
    return existing !== undefined && existing > now;
  }

  // rate limits

  async hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    this.#check();
    checkWindow(windowSeconds);
    const existing = this.#rateLimits.get(key);
    if (existing === undefined || existing.reset_at <= now) {
      const window = { count: 1, reset_at: now - (now % windowSeconds) + windowSeconds };
      this.#rateLimits.set(key, window);
      return { ...window };
    }
    existing.count += 1;
    return { ...existing };
  }

  async resetRateLimit(key: string): Promise<void> {
    this.#check();
    this.#rateLimits.delete(key);
  }

  // signing keys

  async listKeys(): Promise<KeyRecord[]> {
    this.#check();
    return [...this.#keys.values()]
      .sort((a, b) => a.created_at - b.created_at || compare(a.kid, b.kid))
      .map(copyOut);
  }

  async saveKey(key: KeyRecord): Promise<void> {
    this.#check();
    this.#keys.set(key.kid, copyIn(key));
  }

  async updateKey(
    kid: string,
    fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>,
  ): Promise<boolean> {
    this.#check();
    const key = this.#keys.get(kid);
    if (key === undefined) return false;
    if (fields.activates_at !== undefined) key.activates_at = fields.activates_at;
    if (fields.deactivated_at !== undefined) key.deactivated_at = fields.deactivated_at;
    if (fields.expires_at !== undefined) key.expires_at = fields.expires_at;
    return true;
  }

  async deleteKey(kid: string): Promise<boolean> {
    this.#check();
    return this.#keys.delete(kid);
  }

  // maintenance

  async sweepExpired(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<number> {
    this.#check();
    const max = clampLimit(limit);
    let deleted = 0;

    let n = 0;
    for (const [key, artifact] of this.#artifacts) {
      if (n >= max) break;
      if (artifact.expires_at <= now) {
        this.#artifacts.delete(key);
        if (artifact.grant_id !== undefined) {
          const keys = this.#artifactsByGrant.get(artifact.grant_id);
          keys?.delete(key);
          if (keys !== undefined && keys.size === 0) this.#artifactsByGrant.delete(artifact.grant_id);
        }
        n++;
      }
    }
    deleted += n;

    deleted += sweepMap(this.#records, max, (expiresAt) => expiresAt <= now);
    deleted += sweepMap(this.#rateLimits, max, (window) => window.reset_at <= now);
    deleted += sweepMap(this.#grants, max, (grant) => grant.expires_at <= now);
    deleted += sweepMap(
      this.#keys,
      max,
      (key) => key.expires_at !== undefined && key.expires_at <= now,
    );
    return deleted;
  }

  async ping(): Promise<void> {
    this.#check();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sweepMap<V>(map: Map<string, V>, max: number, expired: (value: V) => boolean): number {
  let n = 0;
  for (const [key, value] of map) {
    if (n >= max) break;
    if (expired(value)) {
      map.delete(key);
      n++;
    }
  }
  return n;
}

/** A fresh, empty {@link MemoryStorage}. */
export function createMemoryStorage(): MemoryStorage {
  return new MemoryStorage();
}
