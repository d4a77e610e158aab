/**
 * `--storage postgres`: the Portcullis targets on PostgreSQL. Every server gets a fresh schema
 * (`bench_<timestamp>_<target>_<mode>`) in the database of `--pg-url`, created by the server's own
 * migrations; every schema the run created is dropped at its end (and, synchronously, on any exit).
 *
 * - `--growth`: 1,000,000 refresh tokens, each with its grant, written server-side by
 *   `INSERT … SELECT … FROM generate_series(…)` as copies of a refresh-token row and its grant row
 *   that the server wrote itself (every column copied; fresh ids, creation times spread over ten
 *   days, as in the SQLite path), then `VACUUM (ANALYZE)` and a `CHECKPOINT`.
 * - The CPU time of the PostgreSQL backends serving one server: each server connects with its own
 *   `application_name` (a URL parameter the server passes to `pg`), so its backends are found in
 *   `pg_stat_activity` and their utime + stime read from `/proc/<pid>/stat` (PostgreSQL on this
 *   machine only; elsewhere the figure is absent).
 *
 * `pg` is the server's optional dependency, resolved from the repository's node_modules.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { ownCpuMicros } from './proc.mjs';

const require = createRequire(import.meta.url);

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function driver() {
  try {
    return require('pg');
  } catch {
    throw new Error('--storage postgres needs the `pg` package (an optional dependency of Portcullis: npm install in the repository root)');
  }
}

/** A connected `pg` client (close it with `end()`). */
export async function connect(url, applicationName = 'portcullis-bench') {
  const { Client } = driver();
  const client = new Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 5000 });
  await client.connect();
  return client;
}

/** A schema name from parts: lower case, letters, digits and `_`, at most 63 characters. */
export function schemaName(...parts) {
  const name = parts.join('_').toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  if (!SCHEMA_NAME.test(name)) throw new Error(`bench: not a usable schema name: ${name}`);
  return name;
}

/** The server's DATABASE_URL for one schema; `application_name` tags its connections. */
export function databaseUrl(url, schema, applicationName = schema) {
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  u.searchParams.set('application_name', applicationName);
  return u.href;
}

/** Server version and the settings that matter for the growth measurement. */
export async function describeServer(url) {
  const client = await connect(url);
  try {
    const { rows } = await client.query(
      "SELECT current_setting('server_version') AS version, current_setting('shared_buffers') AS shared_buffers, " +
        "current_setting('autovacuum') AS autovacuum, current_setting('synchronous_commit') AS synchronous_commit, " +
        "current_setting('max_connections') AS max_connections, inet_server_addr()::text AS addr",
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

/** Whether a schema exists already (the run wants fresh ones). */
export async function schemaExists(url, schema) {
  const client = await connect(url);
  try {
    return (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount > 0;
  } finally {
    await client.end();
  }
}

function dropSql(schema) {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`bench: refusing to drop ${schema}`);
  return `DROP SCHEMA IF EXISTS "${schema}" CASCADE`;
}

// Connections of this run still open (a server killed mid-transaction, a growth statement cut
// short): every one has an application_name starting with the run's prefix. Ended first, so that
// DROP SCHEMA does not wait for their locks.
const TERMINATE_SQL = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE starts_with(application_name, $1) AND pid <> pg_backend_pid()";

/** Drop the schemas (after their servers stopped); `prefix`: the application_name prefix of this run's connections. */
export async function dropSchemas(url, schemas, prefix) {
  if (schemas.length === 0) return;
  const client = await connect(url);
  try {
    await client.query("SET lock_timeout = '30s'");
    if (prefix !== undefined) await client.query(TERMINATE_SQL, [prefix]);
    for (const s of schemas) await client.query(dropSql(s));
  } finally {
    await client.end();
  }
}

/** The same, synchronously (for the exit handler, when the event loop is gone). Returns an error text or ''. */
export function dropSchemasSync(url, schemas, prefix) {
  if (schemas.length === 0) return '';
  const pg = require.resolve('pg');
  const script = `
    const { Client } = require(${JSON.stringify(pg)});
    const c = new Client({ connectionString: ${JSON.stringify(url)}, application_name: 'portcullis-bench-cleanup', connectionTimeoutMillis: 5000 });
    (async () => {
      await c.connect();
      await c.query("SET lock_timeout = '30s'");
      if (${JSON.stringify(prefix ?? null)} !== null) await c.query(${JSON.stringify(TERMINATE_SQL)}, [${JSON.stringify(prefix ?? null)}]);
      for (const sql of ${JSON.stringify(schemas.map(dropSql))}) await c.query(sql);
      await c.end();
    })().catch((e) => { console.error(e.message); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 90_000 });
  return r.status === 0 ? '' : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

async function columns(client, schema, table) {
  const { rows } = await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [schema, table]);
  if (rows.length === 0) throw new Error(`growth: no table ${schema}.${table}`);
  return rows.map((r) => r.column_name);
}

/**
 * Add `count` refresh tokens, each with its own grant, to a stopped server's schema: copies of a
 * refresh-token row and its grant that the server wrote (every column), with fresh ids (grant: a
 * UUID; token: base64url SHA-256, as the server stores them) and creation times spread over the
 * past ten days, in batches of 100,000 (one statement, one transaction each). Then VACUUM
 * (ANALYZE) (autovacuum may be off, and must not start in the middle of a measurement) and a
 * CHECKPOINT (so the dirty pages are not written during the measured windows).
 */
export async function growPostgres(url, schema, count, log = () => {}) {
  const client = await connect(url, `${schema}_growth`);
  const started = Date.now();
  const S = `"${schema}"`;
  try {
    await client.query('SET synchronous_commit = off');
    await client.query("SET maintenance_work_mem = '256MB'");
    const template = (await client.query(`SELECT kind, id, grant_id FROM ${S}.artifacts WHERE kind = 'refresh_token' AND consumed_at IS NULL AND revoked_at IS NULL AND grant_id IS NOT NULL ORDER BY created_at DESC LIMIT 1`)).rows[0];
    if (template === undefined) throw new Error('growth: no refresh token in the database to copy');
    const grantFound = (await client.query(`SELECT 1 FROM ${S}.grants WHERE id = $1`, [template.grant_id])).rowCount;
    if (grantFound !== 1) throw new Error('growth: the refresh token has no grant');
    const grantColumns = await columns(client, schema, 'grants');
    const artifactColumns = await columns(client, schema, 'artifacts');
    const grantOverride = { id: 's.grant_id', created_at: 't.created_at - s.age' };
    const artifactOverride = { id: 's.token_id', grant_id: 's.grant_id', created_at: 't.created_at - s.age', expires_at: 't.expires_at - s.age' };
    const list = (cols) => cols.map((c) => `"${c}"`).join(', ');
    const select = (cols, override) => cols.map((c) => override[c] ?? `t."${c}"`).join(', ');
    const sql = `
      WITH s AS MATERIALIZED (
        SELECT gen_random_uuid()::text AS grant_id,
               translate(rtrim(encode(sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())), 'base64'), '='), '+/', '-_') AS token_id,
               (i % 864000)::bigint AS age
        FROM generate_series($1::bigint, $2::bigint) AS i
      ), g AS (
        INSERT INTO ${S}.grants (${list(grantColumns)})
        SELECT ${select(grantColumns, grantOverride)} FROM s CROSS JOIN (SELECT * FROM ${S}.grants WHERE id = $3) AS t
        RETURNING 1
      )
      INSERT INTO ${S}.artifacts (${list(artifactColumns)})
      SELECT ${select(artifactColumns, artifactOverride)} FROM s CROSS JOIN (SELECT * FROM ${S}.artifacts WHERE kind = $4 AND id = $5) AS t`;
    const step = 100_000;
    for (let from = 0; from < count; from += step) {
      const to = Math.min(count, from + step);
      const r = await client.query(sql, [from, to - 1, template.grant_id, template.kind, template.id]);
      if (r.rowCount !== to - from) throw new Error(`growth: ${r.rowCount} rows inserted, expected ${to - from}`);
      log(`  growth: ${to.toLocaleString('en-US')} refresh tokens written (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    const inserted = (Date.now() - started) / 1000;
    await client.query(`VACUUM (ANALYZE) ${S}.grants, ${S}.artifacts`);
    let checkpoint = true;
    try {
      await client.query('CHECKPOINT');
    } catch {
      checkpoint = false; // not permitted: fine, only noisier
    }
    const rows = Number((await client.query(`SELECT count(*) AS n FROM ${S}.artifacts WHERE kind = 'refresh_token'`)).rows[0].n);
    const size = (await client.query(`SELECT pg_size_pretty(pg_total_relation_size('${S}.artifacts') + pg_total_relation_size('${S}.grants')) AS s`)).rows[0].s;
    log(`  growth: VACUUM (ANALYZE)${checkpoint ? ' and CHECKPOINT' : ''} done (${((Date.now() - started) / 1000).toFixed(0)} s); artifacts + grants: ${size}`);
    return { added: count, refreshTokens: rows, seconds: (Date.now() - started) / 1000, insertSeconds: inserted, checkpoint, size };
  } finally {
    await client.end();
  }
}

/**
 * CPU time of the PostgreSQL backends of one server (by `application_name`): a snapshot is
 * { pid → µs }. `monitor` is a connected client (its own backend is not counted).
 */
export async function backendPids(monitor, applicationName) {
  const { rows } = await monitor.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
  return rows.map((r) => Number(r.pid));
}

export function backendSnapshot(pids) {
  const out = new Map();
  for (const pid of pids) {
    const us = ownCpuMicros(pid);
    if (us !== undefined) out.set(pid, us);
  }
  return out;
}

/** µs of CPU between two snapshots (backends that appeared meanwhile count whole; gone ones are lost). */
export function backendMicros(before, after) {
  let sum = 0;
  for (const [pid, us] of after) sum += us - (before.get(pid) ?? 0);
  return sum;
}
