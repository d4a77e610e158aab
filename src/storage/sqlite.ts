/**
 * SQLite {@link Storage} on top of `better-sqlite3` (an optional dependency, loaded only when
 * {@link createSqliteStorage} opens a file — importing this module never needs it).
 *
 * - The connection runs in WAL mode with `synchronous = NORMAL`, `busy_timeout = 5000`,
 *   `foreign_keys = ON` and an 8 MiB page cache ({@link DEFAULT_SQLITE_CACHE_MIB}, option
 *   `cacheSizeMiB`); several processes may share one database file.
 * - Migrations are applied at open, each once, in its own `BEGIN IMMEDIATE` transaction, and
 *   recorded in `schema_migrations`.
 * - Every statement is prepared once, in the constructor.
 * - Group commit: writes are queued and run together when the event loop next turns
 *   (`setImmediate`), in one `BEGIN IMMEDIATE … COMMIT` when there are several; each caller's
 *   promise settles only after that commit (or with the error of its own statement, whose effects
 *   SQLite undoes). A commit costs far more than an insert, so concurrent requests share one.
 *   Reads run at once and see what is committed (or already written in this connection).
 * - Checkpoints run in the background: for a database file, a worker thread with its own
 *   connection copies the WAL into the database (`wal_checkpoint(PASSIVE)`) every
 *   {@link CHECKPOINT_INTERVAL_MS} ms, so the request path never stops for one (or for the fsync
 *   that goes with it); the request connection's own automatic checkpoint waits for 10,000 pages
 *   (a backstop should the thread fall behind) instead of 1,000 while the thread runs.
 *   See docs/performance.md.
 * - Structured fields (arrays, objects) are JSON text; ids, times and the columns used in
 *   queries are real columns. Optional fields come back absent (never `null`).
 * - Driver errors that mean "the store cannot be reached" (`SQLITE_BUSY*`, `SQLITE_LOCKED*`,
 *   `SQLITE_CANTOPEN*`, `SQLITE_IOERR*`, a closed connection) become
 *   {@link StorageUnavailableError} (the driver error is its `cause`); other errors (constraint
 *   violations, bad arguments) are rethrown as they are.
 *
 * Semantics beyond the contract (the same as the memory backend's):
 * - `saveArtifact` / `createGrant` reject an id that already exists (an artifact is never reset);
 * - `upsertUser` rejects a username that belongs to another user (`UNIQUE` constraint);
 * - `saveKey` replaces a key with the same `kid`;
 * - `updateKey` ignores fields whose value is `undefined` (they stay unchanged);
 * - `revokeArtifact` / `revokeGrant` keep an earlier `revoked_at`;
 * - `sweepExpired(now, limit)` deletes at most `limit` rows of each kind per call (artifacts,
 *   replay records, rate-limit windows, expired grants, expired signing keys) and returns the
 *   total; call it again while it returns more than zero.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
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

/** The part of a `better-sqlite3` statement this backend uses. */
export interface SqliteStatement {
  /** Return only the first column's value (better-sqlite3). */
  pluck(toggle?: boolean): SqliteStatement;
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A `better-sqlite3` transaction function: call `.immediate(...)` to run it in `BEGIN IMMEDIATE`. */
export interface SqliteTransaction<A extends unknown[], R> {
  (...args: A): R;
  immediate(...args: A): R;
}

/**
 * The part of a `better-sqlite3` `Database` this backend uses (typed structurally so that the
 * public API does not depend on the driver's type package).
 */
export interface SqliteDatabase {
  readonly open: boolean;
  /** Whether a transaction is open on the connection (SQLite may roll one back by itself on some errors). */
  readonly inTransaction: boolean;
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqliteTransaction<A, R>;
  close(): unknown;
}

/**
 * Open (or create) a database file — `:memory:` for a private in-memory database — or adopt an open
 * connection. `cacheSizeMiB`: the connection's page cache (default {@link DEFAULT_SQLITE_CACHE_MIB}).
 */
export type SqliteStorageOptions = { filename: string; cacheSizeMiB?: number } | { database: SqliteDatabase; cacheSizeMiB?: number };

/**
 * The page cache of the request connection, in MiB, unless `cacheSizeMiB` says otherwise: 4 times
 * SQLite's 2 MiB. It holds every interior page of the indexes of a million tokens; stamped token
 * ids keep new rows on a few leaves at the end of the index (docs/performance.md). The cache is
 * the server's memory (SQLite's own allocations), filled once and kept.
 */
export const DEFAULT_SQLITE_CACHE_MIB = 8;

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Ordered schema migrations. Append only: never edit an applied one. @internal (exported for migration tests) */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE clients (
  client_id TEXT PRIMARY KEY,
  client_secret_hash TEXT,
  client_name TEXT,
  redirect_uris TEXT NOT NULL,
  grant_types TEXT NOT NULL,
  response_types TEXT NOT NULL,
  token_endpoint_auth_method TEXT NOT NULL,
  scope TEXT,
  jwks TEXT,
  jwks_uri TEXT,
  token_endpoint_auth_signing_alg TEXT,
  access_token_format TEXT,
  rotate_refresh_tokens INTEGER,
  resource_server_audiences TEXT,
  extra TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT,
  claims TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  user_id TEXT,
  scope TEXT NOT NULL,
  grant_type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  auth_time INTEGER,
  data TEXT
);
CREATE INDEX grants_expires_at ON grants (expires_at);
CREATE TABLE artifacts (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  grant_id TEXT,
  client_id TEXT NOT NULL,
  user_id TEXT,
  scope TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER,
  revoked_at INTEGER,
  data TEXT,
  PRIMARY KEY (kind, id)
);
CREATE INDEX artifacts_grant_id ON artifacts (grant_id);
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);
CREATE TABLE replay_records (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX replay_records_expires_at ON replay_records (expires_at);
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  reset_at INTEGER NOT NULL
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  activates_at INTEGER NOT NULL,
  deactivated_at INTEGER,
  expires_at INTEGER
);
`,
  },
  {
    version: 2,
    name: 'clients as one JSON record (RFC 7591 metadata grows without schema changes)',
    sql: `
CREATE TABLE clients_v2 (
  client_id TEXT PRIMARY KEY,
  record TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO clients_v2 (client_id, record, created_at, updated_at)
SELECT client_id,
  json_patch(
    json_object(
      'client_id', client_id,
      'redirect_uris', json(redirect_uris),
      'grant_types', json(grant_types),
      'response_types', json(response_types),
      'token_endpoint_auth_method', token_endpoint_auth_method,
      'created_at', created_at,
      'updated_at', updated_at),
    json_object(
      'client_secret_hash', client_secret_hash,
      'client_name', client_name,
      'scope', scope,
      'jwks', json(jwks),
      'jwks_uri', jwks_uri,
      'token_endpoint_auth_signing_alg', token_endpoint_auth_signing_alg,
      'access_token_format', access_token_format,
      'rotate_refresh_tokens', CASE WHEN rotate_refresh_tokens IS NULL THEN NULL WHEN rotate_refresh_tokens != 0 THEN json('true') ELSE json('false') END,
      'resource_server_audiences', json(resource_server_audiences),
      'extra', json(extra))),
  created_at, updated_at
FROM clients;
DROP TABLE clients;
ALTER TABLE clients_v2 RENAME TO clients;
`,
  },
  {
    version: 3,
    // Tokens without a grant (client_credentials access tokens) no longer write an index entry:
    // one b-tree fewer per INSERT. Revoke-by-grant (grant_id = ?) still uses the index.
    name: 'artifacts_grant_id indexes only the artifacts that have a grant',
    sql: `
DROP INDEX artifacts_grant_id;
CREATE INDEX artifacts_grant_id ON artifacts (grant_id) WHERE grant_id IS NOT NULL;
`,
  },
];

/** The schema version this code creates (the highest migration). */
export const SQLITE_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

const DEFAULT_SWEEP_LIMIT = 1000;

const CLIENT_COLUMNS = 'client_id, record, created_at, updated_at';
const USER_COLUMNS = 'id, username, password_hash, claims, created_at, updated_at';
const GRANT_COLUMNS =
  'id, client_id, user_id, scope, grant_type, created_at, expires_at, revoked_at, auth_time, data';
const ARTIFACT_COLUMNS =
  'kind, id, grant_id, client_id, user_id, scope, created_at, expires_at, consumed_at, revoked_at, data';
const KEY_COLUMNS =
  'kid, alg, public_jwk, private_jwk, created_at, activates_at, deactivated_at, expires_at';

type Nullable<T> = T | null;

interface ClientRow {
  client_id: string;
  /** The whole ClientRecord as JSON (absent optional fields are simply not there). */
  record: string;
  created_at: number;
  updated_at: number;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: Nullable<string>;
  claims: string;
  created_at: number;
  updated_at: number;
}

interface GrantRow {
  id: string;
  client_id: string;
  user_id: Nullable<string>;
  scope: string;
  grant_type: string;
  created_at: number;
  expires_at: number;
  revoked_at: Nullable<number>;
  auth_time: Nullable<number>;
  data: Nullable<string>;
}

interface ArtifactRow {
  kind: ArtifactKind;
  id: string;
  grant_id: Nullable<string>;
  client_id: string;
  user_id: Nullable<string>;
  scope: string;
  created_at: number;
  expires_at: number;
  consumed_at: Nullable<number>;
  revoked_at: Nullable<number>;
  data: Nullable<string>;
}

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk: string;
  created_at: number;
  activates_at: number;
  deactivated_at: Nullable<number>;
  expires_at: Nullable<number>;
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function opt<T>(value: T | undefined): T | null {
  return value === undefined ? null : value;
}

function toClient(row: ClientRow): ClientRecord {
  return JSON.parse(row.record) as ClientRecord;
}

function toUser(row: UserRow): UserRecord {
  const user: UserRecord = {
    id: row.id,
    username: row.username,
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
  if (row.password_hash !== null) user.password_hash = row.password_hash;
  return user;
}

function toGrant(row: GrantRow): GrantRecord {
  const grant: GrantRecord = {
    id: row.id,
    client_id: row.client_id,
    scope: row.scope,
    grant_type: row.grant_type,
    created_at: row.created_at,
    expires_at: row.expires_at,
  };
  if (row.user_id !== null) grant.user_id = row.user_id;
  if (row.revoked_at !== null) grant.revoked_at = row.revoked_at;
  if (row.auth_time !== null) grant.auth_time = row.auth_time;
  if (row.data !== null) grant.data = JSON.parse(row.data) as Record<string, unknown>;
  return grant;
}

function toArtifact(row: ArtifactRow): ArtifactRecord {
  const artifact: ArtifactRecord = {
    kind: row.kind,
    id: row.id,
    client_id: row.client_id,
    scope: row.scope,
    created_at: row.created_at,
    expires_at: row.expires_at,
  };
  if (row.grant_id !== null) artifact.grant_id = row.grant_id;
  if (row.user_id !== null) artifact.user_id = row.user_id;
  if (row.consumed_at !== null) artifact.consumed_at = row.consumed_at;
  if (row.revoked_at !== null) artifact.revoked_at = row.revoked_at;
  if (row.data !== null) artifact.data = JSON.parse(row.data) as Record<string, unknown>;
  return artifact;
}

function toKey(row: KeyRow): KeyRecord {
  const key: KeyRecord = {
    kid: row.kid,
    alg: row.alg,
    public_jwk: JSON.parse(row.public_jwk) as Record<string, unknown>,
    private_jwk: row.private_jwk,
    created_at: row.created_at,
    activates_at: row.activates_at,
  };
  if (row.deactivated_at !== null) key.deactivated_at = row.deactivated_at;
  if (row.expires_at !== null) key.expires_at = row.expires_at;
  return key;
}

const UNAVAILABLE_CODE = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR)/;
const UNAVAILABLE_MESSAGE = /database connection is not open|Cannot open database/;

/** Map a driver error to {@link StorageUnavailableError} when it means the store is unreachable. */
function mapError(err: unknown): unknown {
  if (err instanceof StorageUnavailableError) return err;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (
      (typeof code === 'string' && UNAVAILABLE_CODE.test(code)) ||
      (code === undefined && UNAVAILABLE_MESSAGE.test(err.message))
    ) {
      return new StorageUnavailableError(
        `SQLite storage unavailable${typeof code === 'string' ? ` (${code})` : ''}`,
        { cause: err },
      );
    }
  }
  return err;
}

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.max(0, Math.floor(limit));
}

function prepareStatements(db: SqliteDatabase) {
  return {
    ping: db.prepare('SELECT 1'),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),

    getClient: db.prepare(`SELECT ${CLIENT_COLUMNS} FROM clients WHERE client_id = ?`),
    upsertClient: db.prepare(
      `INSERT INTO clients (${CLIENT_COLUMNS}) VALUES (?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET
         record = excluded.record,
         created_at = excluded.created_at,
         updated_at = excluded.updated_at`,
    ),
    deleteClient: db.prepare('DELETE FROM clients WHERE client_id = ?'),
    listClients: db.prepare(`SELECT ${CLIENT_COLUMNS} FROM clients ORDER BY client_id`),

    getUser: db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`),
    getUserByUsername: db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE username = ?`),
    upsertUser: db.prepare(
      `INSERT INTO users (${USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         username = excluded.username,
         password_hash = excluded.password_hash,
         claims = excluded.claims,
         created_at = excluded.created_at,
         updated_at = excluded.updated_at`,
    ),
    deleteUser: db.prepare('DELETE FROM users WHERE id = ?'),
    listUsers: db.prepare(`SELECT ${USER_COLUMNS} FROM users ORDER BY id`),

    createGrant: db.prepare(
      `INSERT INTO grants (${GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getGrant: db.prepare(`SELECT ${GRANT_COLUMNS} FROM grants WHERE id = ?`),
    revokeGrant: db.prepare('UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    revokeGrantArtifacts: db.prepare(
      'UPDATE artifacts SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL',
    ),

    saveArtifact: db.prepare(
      `INSERT INTO artifacts (${ARTIFACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    findArtifact: db.prepare(
      `SELECT ${ARTIFACT_COLUMNS} FROM artifacts WHERE kind = ? AND id = ? AND expires_at > ?`,
    ),
    consumeArtifact: db.prepare(
      `UPDATE artifacts SET consumed_at = ?
       WHERE kind = ? AND id = ? AND consumed_at IS NULL AND expires_at > ?
       RETURNING ${ARTIFACT_COLUMNS}`,
    ),
    revokeArtifact: db.prepare(
      'UPDATE artifacts SET revoked_at = coalesce(revoked_at, ?) WHERE kind = ? AND id = ?',
    ),
    updateArtifactData: db.prepare('UPDATE artifacts SET data = ? WHERE kind = ? AND id = ?'),

    recordOnce: db.prepare(
      `INSERT INTO replay_records (key, expires_at) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
       WHERE replay_records.expires_at <= ?`,
    ),
    hasRecord: db.prepare('SELECT 1 FROM replay_records WHERE key = ? AND expires_at > ?'),

    hitRateLimit: db.prepare(
      `INSERT INTO rate_limits (key, count, reset_at) VALUES (?, 1, ?)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN rate_limits.reset_at <= ? THEN 1 ELSE rate_limits.count + 1 END,
         reset_at = CASE WHEN rate_limits.reset_at <= ? THEN excluded.reset_at ELSE rate_limits.reset_at END
       RETURNING count, reset_at`,
    ),
    resetRateLimit: db.prepare('DELETE FROM rate_limits WHERE key = ?'),

    listKeys: db.prepare(`SELECT ${KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid`),
    saveKey: db.prepare(
      `INSERT INTO signing_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kid) DO UPDATE SET
         alg = excluded.alg,
         public_jwk = excluded.public_jwk,
         private_jwk = excluded.private_jwk,
         created_at = excluded.created_at,
         activates_at = excluded.activates_at,
         deactivated_at = excluded.deactivated_at,
         expires_at = excluded.expires_at`,
    ),
    updateKey: db.prepare(
      `UPDATE signing_keys SET
         activates_at = coalesce(?, activates_at),
         deactivated_at = coalesce(?, deactivated_at),
         expires_at = coalesce(?, expires_at)
       WHERE kid = ?`,
    ),
    deleteKey: db.prepare('DELETE FROM signing_keys WHERE kid = ?'),

    sweepArtifacts: db.prepare(
      'DELETE FROM artifacts WHERE rowid IN (SELECT rowid FROM artifacts WHERE expires_at <= ? LIMIT ?)',
    ),
    sweepRecords: db.prepare(
      'DELETE FROM replay_records WHERE rowid IN (SELECT rowid FROM replay_records WHERE expires_at <= ? LIMIT ?)',
    ),
    sweepRateLimits: db.prepare(
      'DELETE FROM rate_limits WHERE rowid IN (SELECT rowid FROM rate_limits WHERE reset_at <= ? LIMIT ?)',
    ),
    sweepGrants: db.prepare(
      'DELETE FROM grants WHERE rowid IN (SELECT rowid FROM grants WHERE expires_at <= ? LIMIT ?)',
    ),
    sweepKeys: db.prepare(
      'DELETE FROM signing_keys WHERE rowid IN (SELECT rowid FROM signing_keys WHERE expires_at <= ? LIMIT ?)',
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Create `schema_migrations` and apply every migration not yet recorded, each once. */
function migrate(db: SqliteDatabase): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)',
  );
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  for (const migration of MIGRATIONS) {
    if (isApplied.get(migration.version) !== undefined) continue;
    db.transaction(() => {
      // Another connection may have applied it between the check above and our write lock.
      if (isApplied.get(migration.version) !== undefined) return;
      db.exec(migration.sql);
      record.run(migration.version, Math.floor(Date.now() / 1000));
    }).immediate();
  }
}

/**
 * A {@link Storage} backed by one SQLite connection. Prefer {@link createSqliteStorage}; the
 * constructor adopts an open `better-sqlite3` connection, sets its pragmas, applies the
 * migrations and prepares every statement. The storage owns the connection: `close()` closes it.
 */
export class SqliteStorage implements Storage {
  readonly name = 'sqlite';

  readonly #db: SqliteDatabase;
  readonly #s: Statements;
  readonly #revokeGrant: SqliteTransaction<[string, number], boolean>;
  readonly #sweep: SqliteTransaction<[number, number], number>;
  readonly #begin: SqliteStatement;
  readonly #commit: SqliteStatement;
  readonly #rollback: SqliteStatement;
  /** Writes waiting for the next flush (group commit). */
  #queue: QueuedWrite[] = [];
  readonly #flushQueue = (): void => this.#flush();
  #checkpointer: Worker | undefined;
  /** Exact caches of client and user records: see #cacheCurrent. */
  readonly #clientCache = new Map<string, ClientRecord>();
  readonly #userCache = new Map<string, UserRecord>();
  #cacheVersion = -1;
  #cacheChecked = false;
  readonly #uncheckCache = (): void => {
    this.#cacheChecked = false;
  };

  constructor(db: SqliteDatabase, options: { cacheSizeMiB?: number } = {}) {
    this.#db = db;
    const cacheMiB = options.cacheSizeMiB ?? DEFAULT_SQLITE_CACHE_MIB;
    if (!Number.isFinite(cacheMiB) || cacheMiB < 1) throw new RangeError(`cacheSizeMiB: must be a number of MiB, at least 1 (got ${String(cacheMiB)})`);
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // Negative: a size in KiB rather than in pages.
      db.pragma(`cache_size = ${-Math.round(cacheMiB * 1024)}`);
      db.pragma('foreign_keys = ON');
      migrate(db);
      const s = prepareStatements(db);
      this.#s = s;
      this.#begin = db.prepare('BEGIN IMMEDIATE');
      this.#commit = db.prepare('COMMIT');
      this.#rollback = db.prepare('ROLLBACK');
      this.#revokeGrant = db.transaction((grantId: string, now: number): boolean => {
        const changed = s.revokeGrant.run(now, grantId).changes > 0;
        s.revokeGrantArtifacts.run(now, grantId);
        return changed;
      });
      this.#sweep = db.transaction((now: number, limit: number): number => {
        return (
          s.sweepArtifacts.run(now, limit).changes +
          s.sweepRecords.run(now, limit).changes +
          s.sweepRateLimits.run(now, limit).changes +
          s.sweepGrants.run(now, limit).changes +
          s.sweepKeys.run(now, limit).changes
        );
      });
    } catch (err) {
      throw mapError(err);
    }
  }

  /**
   * Queue a write for the next flush; the promise settles once it is committed (see the module
   * comment). `op` runs inside the batch's transaction: a multi-statement op must be a
   * `db.transaction` (a savepoint there), so that its failure undoes all of it.
   */
  #write<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (this.#queue.length === 1) setImmediate(this.#flushQueue);
      else if (this.#queue.length >= MAX_BATCH) this.#flush();
    });
  }

  /** Run the queued writes: alone in autocommit, or several in one transaction. */
  #flush(): void {
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    if (batch.length === 1) {
      const only = batch[0]!;
      try {
        only.resolve(only.op());
      } catch (err) {
        only.reject(mapError(err));
      }
      return;
    }
    try {
      this.#begin.run();
    } catch (err) {
      const failure = mapError(err);
      for (const w of batch) w.reject(failure);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    for (const w of batch) {
      try {
        outcomes.push({ ok: true, value: w.op() });
      } catch (err) {
        if (!this.#db.inTransaction) {
          // SQLite rolled the whole transaction back (I/O error, full disk…): nothing was written.
          const failure = mapError(err);
          for (const x of batch) x.reject(failure);
          return;
        }
        outcomes.push({ ok: false, error: err });
      }
    }
    try {
      this.#commit.run();
    } catch (err) {
      if (this.#db.inTransaction) {
        try {
          this.#rollback.run();
        } catch {
          // the connection is gone; the transaction went with it
        }
      }
      const failure = mapError(err);
      for (const w of batch) w.reject(failure);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome.ok) batch[i]!.resolve(outcome.value);
      else batch[i]!.reject(mapError(outcome.error));
    }
  }

  // clients

  /**
   * A client record, from a cache that is exact (see {@link #cacheCurrent}). Cached records are
   * deeply frozen and shared.
   */
  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    try {
      this.#cacheCurrent();
      const cached = this.#clientCache.get(clientId);
      if (cached !== undefined) return cached;
      const row = this.#s.getClient.get(clientId) as ClientRow | undefined;
      if (row === undefined) return undefined;
      return remember(this.#clientCache, clientId, toClient(row));
    } catch (err) {
      throw mapError(err);
    }
  }

  /**
   * Keep the record caches (clients, users by id) exact: they are emptied whenever another
   * connection (another process: a worker, the CLI) has committed anything since they were filled,
   * which `PRAGMA data_version` tells; this connection's own client and user writes empty them
   * too. The check runs once per event-loop turn: a request whose bytes arrive after another
   * process's commit is read in a later turn, so it always sees that commit.
   */
  #cacheCurrent(): void {
    if (this.#cacheChecked) return;
    this.#cacheChecked = true;
    setImmediate(this.#uncheckCache);
    const version = this.#s.dataVersion.get() as number;
    if (version !== this.#cacheVersion) {
      this.#clientCache.clear();
      this.#userCache.clear();
      this.#cacheVersion = version;
    }
  }

  upsertClient(c: ClientRecord): Promise<void> {
    return this.#write(() => {
      this.#clientCache.clear();
      this.#s.upsertClient.run(c.client_id, JSON.stringify(c), c.created_at, c.updated_at);
    });
  }

  deleteClient(clientId: string): Promise<boolean> {
    return this.#write(() => {
      this.#clientCache.clear();
      return this.#s.deleteClient.run(clientId).changes > 0;
    });
  }

  async listClients(): Promise<ClientRecord[]> {
    try {
      return (this.#s.listClients.all() as ClientRow[]).map(toClient);
    } catch (err) {
      throw mapError(err);
    }
  }

  // users

  /** A user record, from the exact cache (see {@link #cacheCurrent}); cached records are deeply frozen and shared. */
  async getUser(id: string): Promise<UserRecord | undefined> {
    try {
      this.#cacheCurrent();
      const cached = this.#userCache.get(id);
      if (cached !== undefined) return cached;
      const row = this.#s.getUser.get(id) as UserRow | undefined;
      if (row === undefined) return undefined;
      return remember(this.#userCache, id, toUser(row));
    } catch (err) {
      throw mapError(err);
    }
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    try {
      const row = this.#s.getUserByUsername.get(username) as UserRow | undefined;
      return row === undefined ? undefined : toUser(row);
    } catch (err) {
      throw mapError(err);
    }
  }

  upsertUser(u: UserRecord): Promise<void> {
    return this.#write(() => {
      this.#userCache.clear();
      this.#s.upsertUser.run(
        u.id,
        u.username,
        opt(u.password_hash),
        JSON.stringify(u.claims),
        u.created_at,
        u.updated_at,
      );
    });
  }

  deleteUser(id: string): Promise<boolean> {
    return this.#write(() => {
      this.#userCache.clear();
      return this.#s.deleteUser.run(id).changes > 0;
    });
  }

  async listUsers(): Promise<UserRecord[]> {
    try {
      return (this.#s.listUsers.all() as UserRow[]).map(toUser);
    } catch (err) {
      throw mapError(err);
    }
  }

  // grants

  createGrant(g: GrantRecord): Promise<void> {
    return this.#write(() => {
      this.#s.createGrant.run(
        g.id,
        g.client_id,
        opt(g.user_id),
        g.scope,
        g.grant_type,
        g.created_at,
        g.expires_at,
        opt(g.revoked_at),
        opt(g.auth_time),
        json(g.data),
      );
    });
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    try {
      const row = this.#s.getGrant.get(id) as GrantRow | undefined;
      return row === undefined ? undefined : toGrant(row);
    } catch (err) {
      throw mapError(err);
    }
  }

  revokeGrant(grantId: string, now: number): Promise<boolean> {
    return this.#write(() => {
      return this.#revokeGrant.immediate(grantId, now);
    });
  }

  // artifacts

  saveArtifact(a: ArtifactRecord): Promise<void> {
    return this.#write(() => {
      this.#s.saveArtifact.run(
        a.kind,
        a.id,
        opt(a.grant_id),
        a.client_id,
        opt(a.user_id),
        a.scope,
        a.created_at,
        a.expires_at,
        opt(a.consumed_at),
        opt(a.revoked_at),
        json(a.data),
      );
    });
  }

  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    try {
      const row = this.#s.findArtifact.get(kind, id, now) as ArtifactRow | undefined;
      return row === undefined ? undefined : toArtifact(row);
    } catch (err) {
      throw mapError(err);
    }
  }

  consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    return this.#write(() => {
      const consumed = this.#s.consumeArtifact.get(now, kind, id, now) as ArtifactRow | undefined;
      if (consumed !== undefined) return { status: 'consumed', record: toArtifact(consumed) };
      // Not updated: either unknown/expired, or consumed before (by us or another connection).
      const row = this.#s.findArtifact.get(kind, id, now) as ArtifactRow | undefined;
      if (row === undefined || row.consumed_at === null) return { status: 'not_found' };
      return { status: 'already_consumed', record: toArtifact(row) };
    });
  }

  revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    return this.#write(() => {
      return this.#s.revokeArtifact.run(now, kind, id).changes > 0;
    });
  }

  updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    return this.#write(() => {
      return this.#s.updateArtifactData.run(JSON.stringify(data), kind, id).changes > 0;
    });
  }

  // replay protection

  recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.#write(() => {
      return this.#s.recordOnce.run(key, expiresAt, now).changes > 0;
    });
  }

  async hasRecord(key: string, now: number): Promise<boolean> {
    try {
      return this.#s.hasRecord.get(key, now) !== undefined;
    } catch (err) {
      throw mapError(err);
    }
  }

  // rate limits

  async hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    if (!Number.isInteger(windowSeconds) || windowSeconds <= 0) {
      throw new RangeError('windowSeconds must be a positive integer');
    }
    return this.#write(() => {
      const resetAt = now - (now % windowSeconds) + windowSeconds;
      const row = this.#s.hitRateLimit.get(key, resetAt, now, now) as RateLimitResult;
      return { count: row.count, reset_at: row.reset_at };
    });
  }

  resetRateLimit(key: string): Promise<void> {
    return this.#write(() => {
      this.#s.resetRateLimit.run(key);
    });
  }

  // signing keys

  async listKeys(): Promise<KeyRecord[]> {
    try {
      return (this.#s.listKeys.all() as KeyRow[]).map(toKey);
    } catch (err) {
      throw mapError(err);
    }
  }

  saveKey(k: KeyRecord): Promise<void> {
    return this.#write(() => {
      this.#s.saveKey.run(
        k.kid,
        k.alg,
        JSON.stringify(k.public_jwk),
        k.private_jwk,
        k.created_at,
        k.activates_at,
        opt(k.deactivated_at),
        opt(k.expires_at),
      );
    });
  }

  updateKey(
    kid: string,
    fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>,
  ): Promise<boolean> {
    return this.#write(() => {
      return (
        this.#s.updateKey.run(
          opt(fields.activates_at),
          opt(fields.deactivated_at),
          opt(fields.expires_at),
          kid,
        ).changes > 0
      );
    });
  }

  deleteKey(kid: string): Promise<boolean> {
    return this.#write(() => {
      return this.#s.deleteKey.run(kid).changes > 0;
    });
  }

  // maintenance

  async sweepExpired(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<number> {
    const max = clampLimit(limit);
    if (max === 0) return 0;
    return this.#write(() => this.#sweep.immediate(now, max));
  }

  async ping(): Promise<void> {
    try {
      this.#s.ping.get();
    } catch (err) {
      throw mapError(err);
    }
  }

  /**
   * Move WAL checkpoints off the request path: a worker thread, with its own connection to
   * `filename`, checkpoints in the background; this connection's automatic checkpoint only backs it
   * up (10,000 pages instead of 1,000) while the worker runs, and is back to 1,000 if it stops. @internal (called by createSqliteStorage)
   */
  startBackgroundCheckpoints(filename: string, driverPath: string): void {
    if (this.#checkpointer !== undefined) return;
    const worker = new Worker(CHECKPOINT_WORKER, {
      eval: true,
      workerData: { filename, driverPath, intervalMs: CHECKPOINT_INTERVAL_MS },
      // The worker keeps no event loop of its own alive beyond its timer; never hold the process.
      stdout: false,
      stderr: false,
    });
    worker.unref();
    this.#checkpointer = worker;
    // A backstop, not the rule: should the thread fall far behind, this connection checkpoints itself.
    this.#db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT}`);
    const restore = (): void => {
      if (this.#checkpointer !== worker) return;
      this.#checkpointer = undefined;
      if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`);
    };
    worker.on('error', restore);
    worker.on('exit', restore);
  }

  async close(): Promise<void> {
    const checkpointer = this.#checkpointer;
    this.#checkpointer = undefined;
    if (checkpointer !== undefined) await checkpointer.terminate();
    // Writes still queued are run (and committed) first.
    if (this.#db.open) this.#flush();
    else for (const w of this.#queue.splice(0)) w.reject(mapError(new TypeError('The database connection is not open')));
    if (this.#db.open) this.#db.close();
  }
}

/** A write waiting for the next flush. */
interface QueuedWrite {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/** Records per cache at most (a full cache is emptied). */
const MAX_CACHED_RECORDS = 1000;

/** Freeze `record` all the way down, keep it in `cache` under `key`, and return it. */
function remember<T>(cache: Map<string, T>, key: string, record: T): T {
  if (cache.size >= MAX_CACHED_RECORDS) cache.clear();
  cache.set(key, deepFreeze(record));
  return record;
}

/** Freeze an object and everything in it (JSON data: objects and arrays). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/** Writes per transaction at most; a fuller queue is flushed at once. */
const MAX_BATCH = 256;

/** How often the background checkpointer copies the WAL into the database file. */
export const CHECKPOINT_INTERVAL_MS = 200;
/** SQLite's default `wal_autocheckpoint` (pages), restored if the background checkpointer stops. */
const DEFAULT_AUTOCHECKPOINT = 1000;
/** The request connection's `wal_autocheckpoint` while the thread runs: only if the WAL reaches ~40 MB. */
const BACKSTOP_AUTOCHECKPOINT = 10_000;

/**
 * The background checkpointer (a worker thread, CommonJS, evaluated from this string): its own
 * connection, `wal_checkpoint(PASSIVE)` on a timer. PASSIVE never waits for readers or writers; a
 * checkpoint that finds the database busy (another process checkpointing) simply tries again next
 * time. A connection that cannot be opened ends the worker, which turns automatic checkpoints
 * back on in the request connection.
 */
const CHECKPOINT_WORKER = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
const db = new Database(workerData.filename, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
setInterval(() => {
  try { checkpoint.get(); } catch (err) {
    if (!/^SQLITE_(BUSY|LOCKED)/.test(String(err && err.code))) throw err;
  }
}, workerData.intervalMs);
`;

type DatabaseConstructor = new (filename: string) => SqliteDatabase;

function loadDriver(): DatabaseConstructor {
  const require = createRequire(import.meta.url);
  try {
    return require('better-sqlite3') as DatabaseConstructor;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new Error('The SQLite storage needs the package better-sqlite3: npm install better-sqlite3', {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Open a {@link SqliteStorage} (synchronously).
 *
 * - `{ filename }`: opens or creates the file (its parent directory is created when missing);
 *   `':memory:'` gives a private in-memory database. Needs the optional dependency
 *   `better-sqlite3`, loaded here on first use.
 * - `{ database }`: adopts an already open `better-sqlite3` connection; the storage owns it from
 *   then on and closes it in `close()`.
 *
 * Pragmas and migrations are applied before this returns.
 * @throws StorageUnavailableError when the file cannot be opened or the database stays busy.
 */
export function createSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  const settings = options.cacheSizeMiB === undefined ? {} : { cacheSizeMiB: options.cacheSizeMiB };
  if ('database' in options) return new SqliteStorage(options.database, settings);
  const { filename } = options;
  const Database = loadDriver();
  if (filename !== ':memory:' && filename !== '' && !filename.startsWith('file:')) {
    mkdirSync(dirname(resolve(filename)), { recursive: true });
  }
  let db: SqliteDatabase;
  try {
    db = new Database(filename);
  } catch (err) {
    throw mapError(err);
  }
  let storage: SqliteStorage;
  try {
    storage = new SqliteStorage(db, settings);
  } catch (err) {
    db.close();
    throw err;
  }
  if (filename !== ':memory:' && filename !== '' && !filename.startsWith('file:')) {
    storage.startBackgroundCheckpoints(resolve(filename), createRequire(import.meta.url).resolve('better-sqlite3'));
  }
  return storage;
}
