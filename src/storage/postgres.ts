/**
 * PostgreSQL {@link Storage} on top of `pg` (an optional dependency, loaded only when
 * {@link createPostgresStorage} opens its own pool — importing this module never needs it).
 *
 * - A connection pool with sane defaults: at most 10 connections, idle ones closed after 30 s,
 *   5 s to connect (or to wait for a free connection), `statement_timeout` 10 s on the server and
 *   a client-side query timeout a little above it, TCP keep-alive. The pool replaces broken
 *   connections by itself: when PostgreSQL comes back, the next queries succeed again.
 * - Migrations are applied at start, each once and in its own transaction, while holding a
 *   PostgreSQL advisory lock (one per schema), so several instances may start together; they are
 *   recorded in `<schema>.schema_migrations`.
 * - Every table lives in one schema (default `public`; `schema` option): tests and side-by-side
 *   deployments share a database without seeing each other's rows.
 * - Structured fields (the client record, claims, grant and artifact data, public JWKs) are JSON
 *   text, as in the SQLite backend: byte-exact round trips and no server-side parsing; ids, times
 *   and the columns used in queries are real columns (`BIGINT` seconds, `TEXT COLLATE "C"` ids).
 *   Optional fields come back absent (never `null`).
 * - Hot statements are named prepared statements (parsed once per connection); set
 *   `preparedStatements: false` behind a pooler in transaction mode (PgBouncer).
 * - Driver errors that mean "the store cannot be reached" (connection refused / reset / timed out,
 *   pool exhausted, SQLSTATE class 08, 57P01–57P03 shutdowns, 53xxx resources, 57014 statement
 *   timeout, 40001 / 40P01 conflicts, 25006 read-only standby) become
 *   {@link StorageUnavailableError} whose message names only the code (never SQL or parameters);
 *   the driver error is its `cause`. Other errors (constraint violations, bad arguments) are
 *   rethrown as they are.
 *
 * Atomic operations are single statements: consume is `UPDATE … WHERE consumed_at IS NULL AND
 * expires_at > $now RETURNING …`; `revokeGrant` is one statement (a CTE updating the grant and its
 * artifacts); `recordOnce` is `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <= $now
 * RETURNING`; `hitRateLimit` is one upsert. `sweepExpired` deletes in bounded batches, one
 * autocommit statement per kind, skipping rows locked by running requests (`SKIP LOCKED`).
 *
 * Semantics beyond the contract are those of the SQLite backend (duplicates rejected, usernames
 * unique, `updateKey` ignores `undefined` fields, the first `revoked_at` kept).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
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

// -------------------------------------------------------------------------------------------------
// The part of `pg` this backend uses, typed structurally (a `pg.Pool` fits).

/** A query as `pg` takes it: with a `name`, a prepared statement reused per connection. */
export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
}

export interface PgQueryResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

export interface PgPoolClient {
  query(config: PgQueryConfig): Promise<PgQueryResult>;
  /** With an argument the connection is destroyed instead of returned to the pool. */
  release(destroy?: Error | boolean): void;
}

/** The part of a `pg.Pool` this backend uses. */
export interface PgPool {
  query(config: PgQueryConfig): Promise<PgQueryResult>;
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
}

/** Pool settings used when the storage opens its own pool. */
export interface PostgresPoolSettings {
  /** Most connections at once (default 10). */
  max?: number;
  /** Close a connection idle this long (default 30,000 ms). */
  idleTimeoutMillis?: number;
  /** Give up connecting, or waiting for a free connection, after this long (default 5,000 ms). */
  connectionTimeoutMillis?: number;
  /** Server-side `statement_timeout` (default 10,000 ms); the client gives up 2 s later. */
  statementTimeoutMillis?: number;
  /** Passed to `pg` as is (`true`, or `{ rejectUnauthorized, ca, … }`); also settable with `sslmode` in the URL. */
  ssl?: unknown;
  /** Shown in `pg_stat_activity` (default `portcullis`). */
  applicationName?: string;
}

interface CommonOptions {
  /**
   * The schema holding the tables (default `public`); created when missing. Letters, digits and
   * `_` only, at most 63 characters.
   */
  schema?: string;
  /** Named prepared statements (default true). Turn off behind a transaction-mode pooler. */
  preparedStatements?: boolean;
  /** Called with errors of idle pooled connections (default: ignored; the pool replaces them). */
  onPoolError?: (err: Error) => void;
}

/**
 * `{ connectionString }` (a `postgres://` URL, `pg` / libpq syntax) opens a pool owned by the
 * storage: `close()` ends it. `{ pool }` adopts a pool you manage: `close()` leaves it open.
 */
export type PostgresStorageOptions = CommonOptions &
  ({ connectionString: string; poolSettings?: PostgresPoolSettings } | { pool: PgPool });

interface Migration {
  version: number;
  name: string;
  /** `__SCHEMA__` stands for the quoted schema. */
  sql: string;
}

/** Ordered schema migrations. Append only: never edit an applied one. @internal (exported for tests) */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE __SCHEMA__.clients (
  client_id TEXT COLLATE "C" PRIMARY KEY,
  record TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE __SCHEMA__.users (
  id TEXT COLLATE "C" PRIMARY KEY,
  username TEXT COLLATE "C" NOT NULL UNIQUE,
  password_hash TEXT,
  claims TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE __SCHEMA__.grants (
  id TEXT COLLATE "C" PRIMARY KEY,
  client_id TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C",
  scope TEXT NOT NULL,
  grant_type TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  auth_time BIGINT,
  data TEXT
);
CREATE INDEX grants_expires_at ON __SCHEMA__.grants (expires_at);
CREATE TABLE __SCHEMA__.artifacts (
  kind TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  grant_id TEXT COLLATE "C",
  client_id TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C",
  scope TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed_at BIGINT,
  revoked_at BIGINT,
  data TEXT,
  PRIMARY KEY (kind, id)
) WITH (fillfactor = 90);
CREATE INDEX artifacts_grant_id ON __SCHEMA__.artifacts (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX artifacts_expires_at ON __SCHEMA__.artifacts (expires_at);
CREATE TABLE __SCHEMA__.replay_records (
  key TEXT COLLATE "C" PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX replay_records_expires_at ON __SCHEMA__.replay_records (expires_at);
CREATE TABLE __SCHEMA__.rate_limits (
  key TEXT COLLATE "C" PRIMARY KEY,
  count BIGINT NOT NULL,
  reset_at BIGINT NOT NULL
);
CREATE INDEX rate_limits_reset_at ON __SCHEMA__.rate_limits (reset_at);
CREATE TABLE __SCHEMA__.signing_keys (
  kid TEXT COLLATE "C" PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  activates_at BIGINT NOT NULL,
  deactivated_at BIGINT,
  expires_at BIGINT
);
CREATE INDEX signing_keys_expires_at ON __SCHEMA__.signing_keys (expires_at) WHERE expires_at IS NOT NULL;
`,
  },
];

/** The schema version this code creates (the highest migration). */
export const POSTGRES_SCHEMA_VERSION: number = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]?.version ?? 0;

export const DEFAULT_POSTGRES_SCHEMA = 'public';
export const DEFAULT_POOL_SETTINGS = Object.freeze({
  max: 10,
  idleTimeoutMillis: 30_000,
  connectionTimeoutMillis: 5_000,
  statementTimeoutMillis: 10_000,
});

const DEFAULT_SWEEP_LIMIT = 1000;
/** How long a starting instance waits for another one's migrations before giving up. */
const MIGRATION_LOCK_WAIT_MS = 5 * 60_000;
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Per-kind counts of one sweep (the composite storage needs them to keep its per-kind bound). */
export interface SweepCounts {
  artifacts: number;
  records: number;
  rateLimits: number;
  grants: number;
  keys: number;
}

/**
 * The advisory-lock key guarding the migrations of one schema (a signed 64-bit integer, as text).
 * @internal exported for tests
 */
export function migrationLockKey(schema: string): string {
  const digest = createHash('sha256').update(`portcullis:migrations:${schema}`).digest();
  return BigInt.asIntN(64, digest.readBigUInt64BE(0)).toString();
}

/** Whether a string can name the schema. */
export function isValidSchemaName(schema: string): boolean {
  return SCHEMA_NAME.test(schema);
}

// -------------------------------------------------------------------------------------------------
// rows

type Row = Record<string, unknown>;

const CLIENT_COLUMNS = 'client_id, record, created_at, updated_at';
const USER_COLUMNS = 'id, username, password_hash, claims, created_at, updated_at';
const GRANT_COLUMNS = 'id, client_id, user_id, scope, grant_type, created_at, expires_at, revoked_at, auth_time, data';
const ARTIFACT_COLUMNS = 'kind, id, grant_id, client_id, user_id, scope, created_at, expires_at, consumed_at, revoked_at, data';
const KEY_COLUMNS = 'kid, alg, public_jwk, private_jwk, created_at, activates_at, deactivated_at, expires_at';

/** BIGINT arrives as a string from `pg` (unless a type parser says otherwise). */
function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function present(value: unknown): boolean {
  return value !== null && value !== undefined;
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function opt<T>(value: T | undefined): T | null {
  return value === undefined ? null : value;
}

function parse<T>(value: unknown): T {
  return JSON.parse(String(value)) as T;
}

function toClient(row: Row): ClientRecord {
  return parse<ClientRecord>(row.record);
}

function toUser(row: Row): UserRecord {
  const user: UserRecord = {
    id: String(row.id),
    username: String(row.username),
    claims: parse<Record<string, unknown>>(row.claims),
    created_at: num(row.created_at),
    updated_at: num(row.updated_at),
  };
  if (present(row.password_hash)) user.password_hash = String(row.password_hash);
  return user;
}

function toGrant(row: Row): GrantRecord {
  const grant: GrantRecord = {
    id: String(row.id),
    client_id: String(row.client_id),
    scope: String(row.scope),
    grant_type: String(row.grant_type),
    created_at: num(row.created_at),
    expires_at: num(row.expires_at),
  };
  if (present(row.user_id)) grant.user_id = String(row.user_id);
  if (present(row.revoked_at)) grant.revoked_at = num(row.revoked_at);
  if (present(row.auth_time)) grant.auth_time = num(row.auth_time);
  if (present(row.data)) grant.data = parse<Record<string, unknown>>(row.data);
  return grant;
}

function toArtifact(row: Row): ArtifactRecord {
  const artifact: ArtifactRecord = {
    kind: String(row.kind) as ArtifactKind,
    id: String(row.id),
    client_id: String(row.client_id),
    scope: String(row.scope),
    created_at: num(row.created_at),
    expires_at: num(row.expires_at),
  };
  if (present(row.grant_id)) artifact.grant_id = String(row.grant_id);
  if (present(row.user_id)) artifact.user_id = String(row.user_id);
  if (present(row.consumed_at)) artifact.consumed_at = num(row.consumed_at);
  if (present(row.revoked_at)) artifact.revoked_at = num(row.revoked_at);
  if (present(row.data)) artifact.data = parse<Record<string, unknown>>(row.data);
  return artifact;
}

function toKey(row: Row): KeyRecord {
  const key: KeyRecord = {
    kid: String(row.kid),
    alg: String(row.alg),
    public_jwk: parse<Record<string, unknown>>(row.public_jwk),
    private_jwk: String(row.private_jwk),
    created_at: num(row.created_at),
    activates_at: num(row.activates_at),
  };
  if (present(row.deactivated_at)) key.deactivated_at = num(row.deactivated_at);
  if (present(row.expires_at)) key.expires_at = num(row.expires_at);
  return key;
}

// -------------------------------------------------------------------------------------------------
// errors

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
]);
/** SQLSTATEs that mean "try again later", besides class 08 and class 53. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '40001', '40P01', '25006', '55P03']);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable|Cannot use a pool after calling end|connection timeout|the database system is (?:starting up|shutting down|in recovery mode)/i;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The reason a driver error means "unreachable", or undefined when it does not. */
function unavailableReason(err: unknown, depth = 0): string | undefined {
  if (!(err instanceof Error) || depth > 3) return undefined;
  const code = codeOf(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code)) return code;
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || code.startsWith('53') || UNAVAILABLE_SQLSTATES.has(code))) return code;
  }
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const reason = unavailableReason(inner, depth + 1);
      if (reason !== undefined) return reason;
    }
  }
  if (UNAVAILABLE_MESSAGE.test(err.message)) return /timeout/i.test(err.message) ? 'timeout' : 'connection lost';
  if (err.cause !== undefined) return unavailableReason(err.cause, depth + 1);
  return undefined;
}

/** Map a driver error to {@link StorageUnavailableError} when it means the store is unreachable. */
export function mapPostgresError(err: unknown): unknown {
  if (err instanceof StorageUnavailableError) return err;
  const reason = unavailableReason(err);
  if (reason === undefined) return err;
  return new StorageUnavailableError(`PostgreSQL storage unavailable (${reason})`, { cause: err });
}

// -------------------------------------------------------------------------------------------------
// helpers

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.max(0, Math.floor(limit));
}

/** PostgreSQL text cannot hold NUL: a key with one cannot exist, so lookups of it find nothing. */
function hasNul(...values: string[]): boolean {
  for (const v of values) if (v.includes('\u0000')) return true;
  return false;
}

/**
 * Replay and rate-limit keys are opaque strings that may carry anything a client sent: store them
 * with `\` and NUL escaped (an injective mapping: escaped keys always contain `\`, others never do).
 */
function storedKey(key: string): string {
  return /[\\\u0000]/.test(key) ? key.replace(/\\/g, '\\\\').replace(/\u0000/g, '\\0') : key;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function prepare(schema: string) {
  const S = `"${schema}"`;
  return {
    ping: 'SELECT 1',

    getClient: `SELECT ${CLIENT_COLUMNS} FROM ${S}.clients WHERE client_id = $1`,
    upsertClient: `INSERT INTO ${S}.clients (${CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4)
      ON CONFLICT (client_id) DO UPDATE SET record = EXCLUDED.record, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
    deleteClient: `DELETE FROM ${S}.clients WHERE client_id = $1`,
    listClients: `SELECT ${CLIENT_COLUMNS} FROM ${S}.clients ORDER BY client_id`,

    getUser: `SELECT ${USER_COLUMNS} FROM ${S}.users WHERE id = $1`,
    getUserByUsername: `SELECT ${USER_COLUMNS} FROM ${S}.users WHERE username = $1`,
    upsertUser: `INSERT INTO ${S}.users (${USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, password_hash = EXCLUDED.password_hash,
        claims = EXCLUDED.claims, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
    deleteUser: `DELETE FROM ${S}.users WHERE id = $1`,
    listUsers: `SELECT ${USER_COLUMNS} FROM ${S}.users ORDER BY id`,

    createGrant: `INSERT INTO ${S}.grants (${GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    getGrant: `SELECT ${GRANT_COLUMNS} FROM ${S}.grants WHERE id = $1`,
    // One statement: both updates see the same snapshot and commit together.
    revokeGrant: `WITH g AS (
        UPDATE ${S}.grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING 1
      ), a AS (
        UPDATE ${S}.artifacts SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL RETURNING 1
      )
      SELECT (SELECT count(*) FROM g) AS changed`,

    saveArtifact: `INSERT INTO ${S}.artifacts (${ARTIFACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    findArtifact: `SELECT ${ARTIFACT_COLUMNS} FROM ${S}.artifacts WHERE kind = $1 AND id = $2 AND expires_at > $3`,
    consumeArtifact: `UPDATE ${S}.artifacts SET consumed_at = $1
      WHERE kind = $2 AND id = $3 AND consumed_at IS NULL AND expires_at > $1
      RETURNING ${ARTIFACT_COLUMNS}`,
    revokeArtifact: `UPDATE ${S}.artifacts SET revoked_at = coalesce(revoked_at, $1) WHERE kind = $2 AND id = $3`,
    updateArtifactData: `UPDATE ${S}.artifacts SET data = $1 WHERE kind = $2 AND id = $3`,

    recordOnce: `INSERT INTO ${S}.replay_records AS r (key, expires_at) VALUES ($1, $2)
      ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE r.expires_at <= $3
      RETURNING 1`,
    hasRecord: `SELECT 1 FROM ${S}.replay_records WHERE key = $1 AND expires_at > $2`,

    hitRateLimit: `INSERT INTO ${S}.rate_limits AS r (key, count, reset_at) VALUES ($1, 1, $2)
      ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN r.reset_at <= $3 THEN 1 ELSE r.count + 1 END,
        reset_at = CASE WHEN r.reset_at <= $3 THEN EXCLUDED.reset_at ELSE r.reset_at END
      RETURNING count, reset_at`,
    resetRateLimit: `DELETE FROM ${S}.rate_limits WHERE key = $1`,

    listKeys: `SELECT ${KEY_COLUMNS} FROM ${S}.signing_keys ORDER BY created_at, kid`,
    saveKey: `INSERT INTO ${S}.signing_keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (kid) DO UPDATE SET alg = EXCLUDED.alg, public_jwk = EXCLUDED.public_jwk,
        private_jwk = EXCLUDED.private_jwk, created_at = EXCLUDED.created_at, activates_at = EXCLUDED.activates_at,
        deactivated_at = EXCLUDED.deactivated_at, expires_at = EXCLUDED.expires_at`,
    updateKey: `UPDATE ${S}.signing_keys SET
        activates_at = coalesce($1::bigint, activates_at),
        deactivated_at = coalesce($2::bigint, deactivated_at),
        expires_at = coalesce($3::bigint, expires_at)
      WHERE kid = $4`,
    deleteKey: `DELETE FROM ${S}.signing_keys WHERE kid = $1`,

    // Bounded batches; rows a running request holds are left for the next sweep.
    sweepArtifacts: sweep(S, 'artifacts', 'expires_at'),
    sweepRecords: sweep(S, 'replay_records', 'expires_at'),
    sweepRateLimits: sweep(S, 'rate_limits', 'reset_at'),
    sweepGrants: sweep(S, 'grants', 'expires_at'),
    sweepKeys: sweep(S, 'signing_keys', 'expires_at'),
  };
}

function sweep(S: string, table: string, column: string): string {
  return `DELETE FROM ${S}.${table} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM ${S}.${table} WHERE ${column} <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`;
}

type Statements = ReturnType<typeof prepare>;
type StatementName = keyof Statements;

// -------------------------------------------------------------------------------------------------

/**
 * A {@link Storage} on a PostgreSQL database. Create it with {@link createPostgresStorage}, which
 * applies the migrations before it resolves.
 */
export class PostgresStorage implements Storage {
  readonly name = 'postgres';
  /** The schema holding the tables. */
  readonly schema: string;

  readonly #pool: PgPool;
  readonly #ownsPool: boolean;
  readonly #sql: Statements;
  readonly #names: Record<StatementName, string | undefined>;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @internal use {@link createPostgresStorage} */
  constructor(pool: PgPool, options: { schema: string; ownsPool: boolean; preparedStatements: boolean }) {
    if (!isValidSchemaName(options.schema)) {
      throw new TypeError('schema must be letters, digits and "_" (not starting with a digit), at most 63 characters');
    }
    this.#pool = pool;
    this.#ownsPool = options.ownsPool;
    this.schema = options.schema;
    this.#sql = prepare(options.schema);
    const names = {} as Record<StatementName, string | undefined>;
    for (const [key, text] of Object.entries(this.#sql) as [StatementName, string][]) {
      // The name covers the text: two storages on one pool (other schemas) never collide.
      names[key] = options.preparedStatements ? `portcullis_${createHash('sha256').update(text).digest('hex').slice(0, 24)}` : undefined;
    }
    this.#names = names;
  }

  async #query(statement: StatementName, values: unknown[] = []): Promise<PgQueryResult> {
    if (this.#closed) throw new StorageUnavailableError('PostgreSQL storage is closed');
    const name = this.#names[statement];
    const config: PgQueryConfig = { text: this.#sql[statement], values };
    if (name !== undefined) config.name = name;
    try {
      return await this.#pool.query(config);
    } catch (err) {
      throw mapPostgresError(err);
    }
  }

  async #one(statement: StatementName, values: unknown[]): Promise<Row | undefined> {
    return (await this.#query(statement, values)).rows[0];
  }

  async #changes(statement: StatementName, values: unknown[]): Promise<number> {
    return (await this.#query(statement, values)).rowCount ?? 0;
  }

  /** Create the schema and apply missing migrations under the schema's advisory lock. @internal */
  async migrate(): Promise<void> {
    if (this.#closed) throw new StorageUnavailableError('PostgreSQL storage is closed');
    const S = `"${this.schema}"`;
    let client: PgPoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw mapPostgresError(err);
    }
    let broken: unknown;
    const q = async (text: string, values?: unknown[]): Promise<PgQueryResult> => {
      try {
        return await client.query(values === undefined ? { text } : { text, values });
      } catch (err) {
        if (unavailableReason(err) !== undefined) broken = err;
        throw mapPostgresError(err);
      }
    };
    try {
      // Fast path: everything applied already (migrations only ever add).
      if (await this.#upToDate(q)) return;
      const key = migrationLockKey(this.schema);
      // Try-lock in a loop rather than pg_advisory_lock: each statement stays short, so the
      // statement timeout never cancels a long wait while another instance migrates.
      const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
      for (;;) {
        const got = (await q('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key])).rows[0]?.locked;
        if (got === true) break;
        if (Date.now() > deadline) throw new Error(`PostgreSQL storage: another instance holds the migration lock of schema ${this.schema}`);
        await sleep(100);
      }
      try {
        const exists = await q('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
        if (exists.rows.length === 0) await q(`CREATE SCHEMA IF NOT EXISTS ${S}`);
        await q(
          `CREATE TABLE IF NOT EXISTS ${S}.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
        );
        const applied = new Set((await q(`SELECT version FROM ${S}.schema_migrations`)).rows.map((r) => num(r.version)));
        for (const migration of POSTGRES_MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          await q('BEGIN');
          try {
            await q('SET LOCAL statement_timeout = 0');
            await q(migration.sql.replaceAll('__SCHEMA__', S));
            await q(`INSERT INTO ${S}.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, [
              migration.version,
              migration.name,
              Math.floor(Date.now() / 1000),
            ]);
            await q('COMMIT');
          } catch (err) {
            await q('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }
      } finally {
        await q('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => undefined);
      }
    } finally {
      // A connection that failed mid-way is not handed back to the pool.
      client.release(broken === undefined ? undefined : true);
    }
  }

  async #upToDate(q: (text: string, values?: unknown[]) => Promise<PgQueryResult>): Promise<boolean> {
    const table = (await q('SELECT to_regclass($1) AS t', [`"${this.schema}".schema_migrations`])).rows[0]?.t;
    if (!present(table)) return false;
    const max = (await q(`SELECT max(version) AS v FROM "${this.schema}".schema_migrations`)).rows[0]?.v;
    return present(max) && num(max) >= POSTGRES_SCHEMA_VERSION;
  }

  // clients

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    if (hasNul(clientId)) return this.#absent();
    const row = await this.#one('getClient', [clientId]);
    return row === undefined ? undefined : toClient(row);
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    await this.#query('upsertClient', [c.client_id, JSON.stringify(c), c.created_at, c.updated_at]);
  }

  async deleteClient(clientId: string): Promise<boolean> {
    if (hasNul(clientId)) return this.#absent(false);
    return (await this.#changes('deleteClient', [clientId])) > 0;
  }

  async listClients(): Promise<ClientRecord[]> {
    return (await this.#query('listClients')).rows.map(toClient);
  }

  // users

  async getUser(id: string): Promise<UserRecord | undefined> {
    if (hasNul(id)) return this.#absent();
    const row = await this.#one('getUser', [id]);
    return row === undefined ? undefined : toUser(row);
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    if (hasNul(username)) return this.#absent();
    const row = await this.#one('getUserByUsername', [username]);
    return row === undefined ? undefined : toUser(row);
  }

  async upsertUser(u: UserRecord): Promise<void> {
    await this.#query('upsertUser', [u.id, u.username, opt(u.password_hash), JSON.stringify(u.claims), u.created_at, u.updated_at]);
  }

  async deleteUser(id: string): Promise<boolean> {
    if (hasNul(id)) return this.#absent(false);
    return (await this.#changes('deleteUser', [id])) > 0;
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.#query('listUsers')).rows.map(toUser);
  }

  // grants

  async createGrant(g: GrantRecord): Promise<void> {
    await this.#query('createGrant', [
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
    ]);
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    if (hasNul(id)) return this.#absent();
    const row = await this.#one('getGrant', [id]);
    return row === undefined ? undefined : toGrant(row);
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    if (hasNul(grantId)) return this.#absent(false);
    const row = await this.#one('revokeGrant', [grantId, now]);
    return num(row?.changed ?? 0) > 0;
  }

  // artifacts

  async saveArtifact(a: ArtifactRecord): Promise<void> {
    await this.#query('saveArtifact', [
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
    ]);
  }

  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    if (hasNul(kind, id)) return this.#absent();
    const row = await this.#one('findArtifact', [kind, id, now]);
    return row === undefined ? undefined : toArtifact(row);
  }

  async consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    if (hasNul(kind, id)) return this.#absent({ status: 'not_found' });
    const won = await this.#one('consumeArtifact', [now, kind, id]);
    if (won !== undefined) return { status: 'consumed', record: toArtifact(won) };
    // Not updated: unknown, expired, or consumed before. A fresh statement (a fresh snapshot in
    // READ COMMITTED) sees the winner's consumed_at.
    const row = await this.#one('findArtifact', [kind, id, now]);
    if (row === undefined || !present(row.consumed_at)) return { status: 'not_found' };
    return { status: 'already_consumed', record: toArtifact(row) };
  }

  async revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    if (hasNul(kind, id)) return this.#absent(false);
    return (await this.#changes('revokeArtifact', [now, kind, id])) > 0;
  }

  async updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    if (hasNul(kind, id)) return this.#absent(false);
    return (await this.#changes('updateArtifactData', [JSON.stringify(data), kind, id])) > 0;
  }

  // replay protection

  async recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return (await this.#query('recordOnce', [storedKey(key), expiresAt, now])).rows.length > 0;
  }

  async hasRecord(key: string, now: number): Promise<boolean> {
    return (await this.#query('hasRecord', [storedKey(key), now])).rows.length > 0;
  }

  // rate limits

  async hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    if (!Number.isInteger(windowSeconds) || windowSeconds <= 0) {
      throw new RangeError('windowSeconds must be a positive integer');
    }
    const resetAt = now - (now % windowSeconds) + windowSeconds;
    const row = await this.#one('hitRateLimit', [storedKey(key), resetAt, now]);
    return { count: num(row?.count), reset_at: num(row?.reset_at) };
  }

  async resetRateLimit(key: string): Promise<void> {
    await this.#query('resetRateLimit', [storedKey(key)]);
  }

  // signing keys

  async listKeys(): Promise<KeyRecord[]> {
    return (await this.#query('listKeys')).rows.map(toKey);
  }

  async saveKey(k: KeyRecord): Promise<void> {
    await this.#query('saveKey', [
      k.kid,
      k.alg,
      JSON.stringify(k.public_jwk),
      k.private_jwk,
      k.created_at,
      k.activates_at,
      opt(k.deactivated_at),
      opt(k.expires_at),
    ]);
  }

  async updateKey(kid: string, fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>): Promise<boolean> {
    if (hasNul(kid)) return this.#absent(false);
    return (await this.#changes('updateKey', [opt(fields.activates_at), opt(fields.deactivated_at), opt(fields.expires_at), kid])) > 0;
  }

  async deleteKey(kid: string): Promise<boolean> {
    if (hasNul(kid)) return this.#absent(false);
    return (await this.#changes('deleteKey', [kid])) > 0;
  }

  // maintenance

  async sweepExpired(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<number> {
    const counts = await this.sweepExpiredCounts(now, limit);
    return counts.artifacts + counts.records + counts.rateLimits + counts.grants + counts.keys;
  }

  /** {@link sweepExpired}, reporting what it deleted of each kind. */
  async sweepExpiredCounts(now: number, limit: number = DEFAULT_SWEEP_LIMIT): Promise<SweepCounts> {
    const max = clampLimit(limit);
    const counts: SweepCounts = { artifacts: 0, records: 0, rateLimits: 0, grants: 0, keys: 0 };
    if (max === 0) {
      if (this.#closed) throw new StorageUnavailableError('PostgreSQL storage is closed');
      return counts;
    }
    // One autocommit statement per kind: no lock is held across kinds.
    counts.artifacts = await this.#changes('sweepArtifacts', [now, max]);
    counts.records = await this.#changes('sweepRecords', [now, max]);
    counts.rateLimits = await this.#changes('sweepRateLimits', [now, max]);
    counts.grants = await this.#changes('sweepGrants', [now, max]);
    counts.keys = await this.#changes('sweepKeys', [now, max]);
    return counts;
  }

  async ping(): Promise<void> {
    await this.#query('ping');
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#ownsPool) return;
    this.#closing ??= this.#pool.end().catch(() => undefined);
    await this.#closing;
  }

  /** The answer for a key that cannot exist (it holds NUL), after the closed check. */
  async #absent<T = undefined>(value?: T): Promise<T> {
    if (this.#closed) throw new StorageUnavailableError('PostgreSQL storage is closed');
    return value as T;
  }
}

// -------------------------------------------------------------------------------------------------

interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPool & { on(event: 'error', listener: (err: Error) => void): unknown };
}

function loadDriver(): PgModule {
  const require = createRequire(import.meta.url);
  try {
    return require('pg') as PgModule;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new Error('The PostgreSQL storage needs the package pg: npm install pg', { cause: err });
    }
    throw err;
  }
}

/**
 * Open a {@link PostgresStorage}: connect, create the schema when missing and apply the
 * migrations (under an advisory lock), then resolve.
 *
 * - `{ connectionString }`: a pool owned by the storage ({@link DEFAULT_POOL_SETTINGS}, override
 *   with `poolSettings`); `close()` ends it. Needs the optional dependency `pg`, loaded here.
 * - `{ pool }`: adopts your `pg.Pool` (or anything with its `query` / `connect` / `end`);
 *   `close()` leaves it open. Give it your own timeouts and an `error` listener.
 *
 * @throws StorageUnavailableError when PostgreSQL cannot be reached (the pool is ended again).
 */
export async function createPostgresStorage(options: PostgresStorageOptions): Promise<PostgresStorage> {
  const schema = options.schema ?? DEFAULT_POSTGRES_SCHEMA;
  if (!isValidSchemaName(schema)) {
    throw new TypeError('schema must be letters, digits and "_" (not starting with a digit), at most 63 characters');
  }
  const preparedStatements = options.preparedStatements ?? true;
  let storage: PostgresStorage;
  if ('pool' in options) {
    storage = new PostgresStorage(options.pool, { schema, ownsPool: false, preparedStatements });
  } else {
    const { Pool } = loadDriver();
    const settings = { ...DEFAULT_POOL_SETTINGS, ...options.poolSettings };
    const config: Record<string, unknown> = {
      connectionString: options.connectionString,
      max: settings.max,
      idleTimeoutMillis: settings.idleTimeoutMillis,
      connectionTimeoutMillis: settings.connectionTimeoutMillis,
      statement_timeout: settings.statementTimeoutMillis,
      query_timeout: settings.statementTimeoutMillis + 2_000,
      keepAlive: true,
      application_name: settings.applicationName ?? 'portcullis',
    };
    if (settings.ssl !== undefined) config.ssl = settings.ssl;
    const pool = new Pool(config);
    // An idle connection that breaks (server restart, network cut) is dropped by the pool; without
    // a listener the 'error' event would crash the process.
    const onError = options.onPoolError ?? (() => undefined);
    pool.on('error', (err) => onError(err));
    storage = new PostgresStorage(pool, { schema, ownsPool: true, preparedStatements });
  }
  try {
    await storage.migrate();
  } catch (err) {
    await storage.close();
    throw err;
  }
  return storage;
}
