/**
 * The PostgreSQL backend: the conformance suite plus what only a shared SQL server has —
 * migrations under an advisory lock when instances start together, two pools racing on one row,
 * and outages (a dead port, a pool exhausted) reported as StorageUnavailableError, fast.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/core/errors.js';
import { runStorageConformance } from '../../src/storage/conformance.js';
import type { ArtifactRecord } from '../../src/storage/contract.js';
import {
  POSTGRES_MIGRATIONS,
  POSTGRES_SCHEMA_VERSION,
  PostgresStorage,
  createPostgresStorage,
  mapPostgresError,
  migrationLockKey,
} from '../../src/storage/postgres.js';
import { TcpProxy } from './tcp-proxy.js';
import { POSTGRES_URL, dropSchema, dropStaleTestData, postgresAvailable, serviceGate, truncateSchema, uniqueSchema, withPg } from './pg-helpers.js';

const require = createRequire(import.meta.url);
const T = 1_000_000;
const gate = serviceGate('PostgreSQL', await postgresAvailable());
const suite = gate.skip === false ? describe : describe.skip;
if (gate.skip === false) await dropStaleTestData();

const schemas: string[] = [];
function freshSchema(): string {
  const schema = uniqueSchema();
  schemas.push(schema);
  return schema;
}

after(async () => {
  if (gate.skip !== false) return;
  for (const schema of schemas) await dropSchema(schema);
});

function code(id: string, fields: Partial<ArtifactRecord> = {}): ArtifactRecord {
  return { kind: 'authorization_code', id, client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600, ...fields };
}

suite('PostgreSQL storage', () => {
  const shared = freshSchema();
  runStorageConformance('postgres', () => createPostgresStorage({ connectionString: POSTGRES_URL, schema: shared }), {
    cleanup: () => truncateSchema(shared),
  });

  const adopted = freshSchema();
  const { Pool } = require('pg') as typeof import('pg');
  let pool: import('pg').Pool;
  before(() => {
    pool = new Pool({ connectionString: POSTGRES_URL, max: 4 });
    pool.on('error', () => undefined);
  });
  after(async () => {
    await pool?.end();
  });
  runStorageConformance('postgres adopted pool, no prepared statements', () => createPostgresStorage({ pool, schema: adopted, preparedStatements: false }), {
    cleanup: () => truncateSchema(adopted),
  });

  describe('PostgresStorage', () => {
    it('is named postgres, creates its schema and records each migration once', async () => {
      const schema = freshSchema();
      const storage = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      try {
        assert.ok(storage instanceof PostgresStorage);
        assert.equal(storage.name, 'postgres');
        assert.equal(storage.schema, schema);
      } finally {
        await storage.close();
      }
      for (let i = 0; i < 2; i++) await (await createPostgresStorage({ connectionString: POSTGRES_URL, schema })).close();
      await withPg(async (c) => {
        const rows = (await c.query(`SELECT version, name, applied_at FROM "${schema}".schema_migrations ORDER BY version`)).rows;
        assert.deepEqual(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((m) => m.version));
        assert.equal(rows.at(-1)?.version, POSTGRES_SCHEMA_VERSION);
        const tables = (await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])).rows.map((r) => r.table_name);
        assert.deepEqual(tables, ['artifacts', 'clients', 'grants', 'rate_limits', 'replay_records', 'schema_migrations', 'signing_keys', 'users']);
        const indexes = (await c.query('SELECT indexname FROM pg_indexes WHERE schemaname = $1', [schema])).rows.map((r) => r.indexname as string);
        for (const index of ['artifacts_pkey', 'artifacts_grant_id', 'artifacts_expires_at', 'grants_expires_at', 'replay_records_expires_at', 'rate_limits_reset_at', 'users_username_key']) {
          assert.ok(indexes.includes(index), `index ${index}`);
        }
      });
    });

    it('migrations run once when many storages start together on a fresh schema', async () => {
      const schema = freshSchema();
      const storages = await Promise.all(Array.from({ length: 6 }, () => createPostgresStorage({ connectionString: POSTGRES_URL, schema })));
      try {
        await storages[0]!.saveArtifact(code('c'));
        for (const s of storages) assert.equal((await s.findArtifact('authorization_code', 'c', T))?.id, 'c');
      } finally {
        await Promise.all(storages.map((s) => s.close()));
      }
      await withPg(async (c) => {
        const rows = (await c.query(`SELECT version FROM "${schema}".schema_migrations`)).rows;
        assert.equal(rows.length, POSTGRES_MIGRATIONS.length);
      });
    });

    it('waits for the advisory lock held by another instance before migrating', async () => {
      const schema = freshSchema();
      await withPg(async (holder) => {
        await holder.query('SELECT pg_advisory_lock($1::bigint)', [migrationLockKey(schema)]);
        let settled = false;
        const opening = createPostgresStorage({ connectionString: POSTGRES_URL, schema }).finally(() => {
          settled = true;
        });
        await new Promise((r) => setTimeout(r, 600));
        assert.equal(settled, false, 'the storage waits while the lock is held');
        const before = (await holder.query('SELECT to_regclass($1) AS t', [`"${schema}".artifacts`])).rows[0].t;
        assert.equal(before, null, 'nothing was created while the lock was held');
        await holder.query('SELECT pg_advisory_unlock($1::bigint)', [migrationLockKey(schema)]);
        const storage = await opening;
        await storage.ping();
        await storage.close();
      });
    });

    it('two pools racing 20 consumes of one code: exactly one is consumed', async () => {
      const schema = freshSchema();
      const a = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      const b = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      try {
        await a.saveArtifact(code('shared'));
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? b : a).consumeArtifact('authorization_code', 'shared', T + 1 + i)),
        );
        const winners = results.filter((r) => r.status === 'consumed');
        assert.equal(winners.length, 1);
        assert.equal(results.filter((r) => r.status === 'already_consumed').length, 19);
        const at = winners[0]!.status === 'consumed' ? winners[0]!.record.consumed_at : undefined;
        for (const r of results) {
          assert.ok(r.status !== 'not_found');
          assert.equal(r.record.consumed_at, at, 'every loser sees the winner\'s consumed_at');
        }
        // recordOnce and rate limits across pools too.
        const once = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).recordOnce('jti', T + 60, T)));
        assert.equal(once.filter(Boolean).length, 1);
        const hits = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).hitRateLimit('k', 60, T)));
        assert.deepEqual(hits.map((h) => h.count).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
        // Revocation through one pool is visible through the other at once.
        await a.createGrant({ id: 'g', client_id: 'client-1', scope: '', grant_type: 'authorization_code', created_at: T, expires_at: T + 999 });
        await a.saveArtifact(code('rt', { kind: 'refresh_token', grant_id: 'g' }));
        assert.equal(await b.revokeGrant('g', T + 5), true);
        assert.equal(await a.revokeGrant('g', T + 6), false);
        assert.equal((await a.findArtifact('refresh_token', 'rt', T + 7))?.revoked_at, T + 5);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('keys with NUL characters or backslashes: lookups find nothing, replay and rate-limit keys stay distinct', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      try {
        assert.equal(await s.getClient('a\u0000b'), undefined);
        assert.equal(await s.getUserByUsername('al\u0000ice'), undefined);
        assert.equal(await s.findArtifact('authorization_code', 'x\u0000', T), undefined);
        assert.deepEqual(await s.consumeArtifact('authorization_code', 'x\u0000', T), { status: 'not_found' });
        assert.equal(await s.revokeGrant('g\u0000', T), false);
        assert.equal(await s.recordOnce('jti\u0000', T + 60, T), true);
        assert.equal(await s.recordOnce('jti\\0', T + 60, T), true, 'a literal backslash-zero is another key');
        assert.equal(await s.recordOnce('jti\u0000', T + 60, T), false);
        assert.equal(await s.hasRecord('jti\u0000', T), true);
        assert.equal(await s.hasRecord('jti', T), false);
        assert.equal((await s.hitRateLimit('ip:\u0000', 60, T)).count, 1);
        assert.equal((await s.hitRateLimit('ip:\\0', 60, T)).count, 1);
        assert.equal((await s.hitRateLimit('ip:\u0000', 60, T)).count, 2);
      } finally {
        await s.close();
      }
    });

    it('rethrows other errors as they are (a duplicate artifact, a username taken)', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      try {
        await s.saveArtifact(code('c'));
        await assert.rejects(s.saveArtifact(code('c')), (err: unknown) => {
          assert.ok(!(err instanceof StorageUnavailableError));
          assert.equal((err as { code?: string }).code, '23505');
          return true;
        });
        await assert.rejects(s.hitRateLimit('k', 0, T), RangeError);
      } finally {
        await s.close();
      }
    });

    it('a storage pointed at a dead port fails fast with StorageUnavailableError, without SQL in the message', async () => {
      const started = Date.now();
      await assert.rejects(createPostgresStorage({ connectionString: 'postgres://postgres@127.0.0.1:1/test' }), (err: unknown) => {
        assert.ok(err instanceof StorageUnavailableError, String(err));
        assert.match(err.message, /^PostgreSQL storage unavailable \(ECONNREFUSED\)$/);
        return true;
      });
      assert.ok(Date.now() - started < 3000, `failed in ${Date.now() - started} ms`);
    });

    it('PostgreSQL cut during use: StorageUnavailableError fast, then the pool recovers by itself', async () => {
      const schema = freshSchema();
      const proxy = await TcpProxy.start(Number(new URL(POSTGRES_URL).port || 5432));
      const url = new URL(POSTGRES_URL);
      url.port = String(proxy.port);
      const s = await createPostgresStorage({ connectionString: url.href, schema });
      try {
        await s.saveArtifact(code('before'));
        await Promise.all(Array.from({ length: 5 }, () => s.ping())); // several pooled connections
        proxy.cut();
        const started = Date.now();
        for (let i = 0; i < 5; i++) {
          await assert.rejects(s.consumeArtifact('authorization_code', 'before', T + 1), (err: unknown) => {
            assert.ok(err instanceof StorageUnavailableError, String(err));
            assert.match(err.message, /^PostgreSQL storage unavailable \([^)]*\)$/);
            assert.ok(!/SELECT|UPDATE|artifacts/.test(err.message));
            return true;
          });
        }
        assert.ok(Date.now() - started < 3000, `failed in ${Date.now() - started} ms`);
        proxy.restore();
        assert.equal((await s.consumeArtifact('authorization_code', 'before', T + 2)).status, 'consumed', 'nothing was half-written');
      } finally {
        await s.close();
        await proxy.close();
      }
    });

    it('an exhausted pool reports StorageUnavailableError after the connection timeout, then recovers', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({
        connectionString: POSTGRES_URL,
        schema,
        poolSettings: { max: 1, connectionTimeoutMillis: 300 },
      });
      try {
        await withPg(async (locker) => {
          // Hold the row lock of a code from another session: the storage's only connection blocks on it.
          await s.saveArtifact(code('locked'));
          await locker.query('BEGIN');
          await locker.query(`SELECT 1 FROM "${schema}".artifacts WHERE id = 'locked' FOR UPDATE`);
          const blocked = s.consumeArtifact('authorization_code', 'locked', T + 1);
          const started = Date.now();
          await assert.rejects(s.ping(), (err: unknown) => {
            assert.ok(err instanceof StorageUnavailableError);
            assert.equal(err.message, 'PostgreSQL storage unavailable (timeout)');
            return true;
          });
          assert.ok(Date.now() - started < 2000);
          await locker.query('ROLLBACK');
          assert.equal((await blocked).status, 'consumed');
        });
        await s.ping();
      } finally {
        await s.close();
      }
    });

    it('a statement running past statement_timeout becomes StorageUnavailableError', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({ connectionString: POSTGRES_URL, schema, poolSettings: { statementTimeoutMillis: 300 } });
      try {
        await withPg(async (locker) => {
          await s.saveArtifact(code('locked'));
          await locker.query('BEGIN');
          await locker.query(`SELECT 1 FROM "${schema}".artifacts WHERE id = 'locked' FOR UPDATE`);
          await assert.rejects(s.consumeArtifact('authorization_code', 'locked', T + 1), (err: unknown) => {
            assert.ok(err instanceof StorageUnavailableError);
            assert.equal(err.message, 'PostgreSQL storage unavailable (57014)');
            return true;
          });
          await locker.query('ROLLBACK');
        });
        // Nothing half-written: the code is still there to be consumed.
        assert.equal((await s.consumeArtifact('authorization_code', 'locked', T + 2)).status, 'consumed');
      } finally {
        await s.close();
      }
    });

    it('throws StorageUnavailableError once closed; close is idempotent and leaves an adopted pool open', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      await s.close();
      await s.close();
      await assert.rejects(s.ping(), StorageUnavailableError);
      await assert.rejects(s.getClient('c'), StorageUnavailableError);
      await assert.rejects(s.getClient('c\u0000'), StorageUnavailableError);
      await assert.rejects(s.sweepExpired(T), StorageUnavailableError);
      const own = new Pool({ connectionString: POSTGRES_URL, max: 1 });
      const adoptedStorage = await createPostgresStorage({ pool: own, schema });
      await adoptedStorage.close();
      assert.equal((await own.query('SELECT 1 AS one')).rows[0].one, 1);
      await own.end();
    });

    it('maps driver errors: network codes, SQLSTATE classes 08 and 53, shutdowns; not constraint violations', () => {
      const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
      for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '08006', '08001', '57P01', '57P03', '53300', '57014', '40001']) {
        const mapped = mapPostgresError(withCode(code));
        assert.ok(mapped instanceof StorageUnavailableError, code);
        assert.equal(mapped.message, `PostgreSQL storage unavailable (${code})`);
      }
      assert.ok(mapPostgresError(new Error('Connection terminated unexpectedly')) instanceof StorageUnavailableError);
      assert.ok(mapPostgresError(new Error('timeout exceeded when trying to connect')) instanceof StorageUnavailableError);
      assert.ok(mapPostgresError(new AggregateError([withCode('ECONNREFUSED')], 'x')) instanceof StorageUnavailableError);
      for (const code of ['23505', '22021', '42P01']) assert.ok(!(mapPostgresError(withCode(code)) instanceof StorageUnavailableError), code);
      assert.ok(!(mapPostgresError(new TypeError('bad')) instanceof StorageUnavailableError));
    });

    it('sweeps in bounded batches and skips rows locked by a running request', async () => {
      const schema = freshSchema();
      const s = await createPostgresStorage({ connectionString: POSTGRES_URL, schema });
      try {
        for (let i = 0; i < 5; i++) await s.saveArtifact(code(`e${i}`, { expires_at: T }));
        await withPg(async (locker) => {
          await locker.query('BEGIN');
          await locker.query(`SELECT 1 FROM "${schema}".artifacts WHERE id = 'e0' FOR UPDATE`);
          const started = Date.now();
          assert.equal(await s.sweepExpired(T, 100), 4);
          assert.ok(Date.now() - started < 2000, 'the sweep did not wait for the lock');
          await locker.query('ROLLBACK');
        });
        assert.equal(await s.sweepExpired(T, 100), 1);
      } finally {
        await s.close();
      }
    });
  });
});
