/**
 * PostgreSQL + Redis: the conformance suite on the composite storage (short-lived kinds, replay
 * records and rate limits in Redis; the rest in PostgreSQL), routing, revocation across both
 * stores, races, and Redis outages (dead port, connection cut and restored).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/core/errors.js';
import { composeStorage, CompositeStorage, DEFAULT_EPHEMERAL_KINDS } from '../../src/storage/composite.js';
import { runStorageConformance } from '../../src/storage/conformance.js';
import type { ArtifactRecord, Storage } from '../../src/storage/contract.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { createRedisPostgresStorage, createRedisStore, mapRedisError, RedisStore } from '../../src/storage/redis.js';
import { POSTGRES_URL, REDIS_URL, dropSchema, dropStaleTestData, postgresAvailable, redisAvailable, serviceGate, truncateSchema, uniqueSchema, withPg } from './pg-helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const require = createRequire(import.meta.url);
const T = 1_000_000;
const [pgUp, redisUp] = await Promise.all([postgresAvailable(), redisAvailable()]);
const gate = serviceGate(!pgUp && !redisUp ? 'PostgreSQL and Redis' : !pgUp ? 'PostgreSQL' : 'Redis', pgUp && redisUp);
const suite = gate.skip === false ? describe : describe.skip;
if (gate.skip === false) await dropStaleTestData({ redis: true });

const schemas: string[] = [];
const prefixes: string[] = [];
function fresh(): { schema: string; prefix: string } {
  const schema = uniqueSchema('pcr');
  const prefix = `portcullis-test:${process.pid}:${randomBytes(4).toString('hex')}:`;
  schemas.push(schema);
  prefixes.push(prefix);
  return { schema, prefix };
}

type RawRedis = import('redis').RedisClientType;
let raw: RawRedis;

async function deleteKeys(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const reply = (await raw.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
    cursor = reply[0];
    if (reply[1].length > 0) await raw.sendCommand(['DEL', ...reply[1]]);
  } while (cursor !== '0');
}

function open(where: { schema: string; prefix: string }, redisUrl = REDIS_URL): Promise<CompositeStorage> {
  return createRedisPostgresStorage({
    postgres: { connectionString: POSTGRES_URL, schema: where.schema },
    redis: { url: redisUrl, prefix: where.prefix },
  });
}

function code(id: string, fields: Partial<ArtifactRecord> = {}): ArtifactRecord {
  return { kind: 'authorization_code', id, client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600, ...fields };
}

suite('PostgreSQL + Redis storage', () => {
  before(async () => {
    const { createClient } = require('redis') as typeof import('redis');
    raw = createClient({ url: REDIS_URL }) as RawRedis;
    raw.on('error', () => undefined);
    await raw.connect();
  });
  after(async () => {
    try {
      for (const prefix of prefixes) await deleteKeys(prefix);
      raw.destroy();
    } finally {
      for (const schema of schemas) await dropSchema(schema);
    }
  });

  const shared = fresh();
  runStorageConformance('postgres+redis', () => open(shared), {
    cleanup: async () => {
      await truncateSchema(shared.schema);
      await deleteKeys(shared.prefix);
    },
  });

  // The composite over any durable store: SQLite/memory without per-kind sweep counts.
  const overMemory = fresh();
  describe('composite over a durable store without per-kind sweep counts', () => {
    it('routes and revokes like the PostgreSQL one', async () => {
      const redis = await createRedisStore({ url: REDIS_URL, prefix: overMemory.prefix });
      const s = composeStorage({ durable: createMemoryStorage(), ephemeral: redis });
      try {
        assert.equal(s.name, 'memory+redis');
        await s.createGrant({ id: 'g', client_id: 'c', scope: '', grant_type: 'authorization_code', created_at: T, expires_at: T + 999 });
        await s.saveArtifact(code('c1', { grant_id: 'g' }));
        await s.saveArtifact(code('r1', { kind: 'refresh_token', grant_id: 'g' }));
        assert.equal(await s.revokeGrant('g', T + 1), true);
        assert.equal((await s.findArtifact('authorization_code', 'c1', T + 2))?.revoked_at, T + 1);
        assert.equal((await s.findArtifact('refresh_token', 'r1', T + 2))?.revoked_at, T + 1);
        await s.saveArtifact(code('old', { expires_at: T }));
        assert.equal(await s.sweepExpired(T, 10), 1);
      } finally {
        await s.close();
      }
    });
  });

  describe('CompositeStorage', () => {
    it('is named postgres+redis and keeps short-lived kinds, replay records and counters in Redis only', async () => {
      const where = fresh();
      const s = await open(where);
      try {
        assert.equal(s.name, 'postgres+redis');
        assert.ok(s.ephemeral instanceof RedisStore);
        for (const kind of DEFAULT_EPHEMERAL_KINDS) assert.equal(s.isEphemeral(kind), true, kind);
        for (const kind of ['refresh_token', 'access_token', 'consent', 'server_secret'] as const) assert.equal(s.isEphemeral(kind), false, kind);
        await s.saveArtifact(code('c1'));
        await s.saveArtifact(code('r1', { kind: 'refresh_token' }));
        await s.recordOnce('client_assertion:x', T + 60, T);
        await s.recordOnce('revoked_at_jti:j1', T + 60, T);
        await s.hitRateLimit('login:alice', 60, T);
        assert.equal(await raw.exists(`${where.prefix}a:authorization_code:c1`), 1);
        assert.equal(await raw.exists(`${where.prefix}a:refresh_token:r1`), 0);
        assert.equal(await raw.exists(`${where.prefix}r:client_assertion:x`), 1);
        assert.equal(await raw.exists(`${where.prefix}r:revoked_at_jti:j1`), 0, 'revocations are durable');
        assert.equal(await raw.exists(`${where.prefix}l:login:alice`), 1);
        const ttl = await raw.pTTL(`${where.prefix}a:authorization_code:c1`);
        assert.ok(ttl > 600_000 && ttl <= 900_000, `TTL ${ttl} ms: the lifetime plus a grace period`);
        await withPg(async (c) => {
          const kinds = (await c.query(`SELECT kind FROM "${where.schema}".artifacts ORDER BY kind`)).rows.map((r) => r.kind);
          assert.deepEqual(kinds, ['refresh_token']);
          const keys = (await c.query(`SELECT key FROM "${where.schema}".replay_records`)).rows.map((r) => r.key);
          assert.deepEqual(keys, ['revoked_at_jti:j1']);
          assert.equal((await c.query(`SELECT count(*)::int AS n FROM "${where.schema}".rate_limits`)).rows[0].n, 0);
        });
        assert.equal(await s.hasRecord('revoked_at_jti:j1', T), true);
        assert.equal(await s.hasRecord('client_assertion:x', T), true);
      } finally {
        await s.close();
      }
    });

    it('refuses to keep refresh tokens or server secrets in Redis', () => {
      const memory = createMemoryStorage();
      assert.throws(() => composeStorage({ durable: memory, ephemeral: {} as RedisStore, ephemeralKinds: ['refresh_token'] }), /must stay in the durable store/);
    });

    it('revokeGrant reaches artifacts in both stores; sweeping a code drops it from its grant\'s set', async () => {
      const where = fresh();
      const s = await open(where);
      try {
        await s.createGrant({ id: 'g', client_id: 'c', scope: '', grant_type: 'authorization_code', created_at: T, expires_at: T + 999 });
        await s.saveArtifact(code('c1', { grant_id: 'g' }));
        await s.saveArtifact(code('c2', { grant_id: 'g', expires_at: T + 5 }));
        await s.saveArtifact(code('r1', { kind: 'refresh_token', grant_id: 'g' }));
        assert.deepEqual((await raw.sMembers(`${where.prefix}g:g`)).sort(), ['authorization_code:c1', 'authorization_code:c2']);
        assert.equal(await s.sweepExpired(T + 5, 10), 1);
        assert.deepEqual(await raw.sMembers(`${where.prefix}g:g`), ['authorization_code:c1']);
        assert.equal(await s.revokeGrant('g', T + 6), true);
        assert.equal((await s.findArtifact('authorization_code', 'c1', T + 7))?.revoked_at, T + 6);
        assert.equal((await s.findArtifact('refresh_token', 'r1', T + 7))?.revoked_at, T + 6);
        assert.equal(await s.revokeGrant('g', T + 9), false);
        assert.equal((await s.findArtifact('authorization_code', 'c1', T + 10))?.revoked_at, T + 6);
      } finally {
        await s.close();
      }
    });

    it('two storages (two Redis connections, two pools) racing 20 consumes of one code: exactly one wins', async () => {
      const where = fresh();
      const a = await open(where);
      const b = await open(where);
      try {
        await a.saveArtifact(code('race'));
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).consumeArtifact('authorization_code', 'race', T + 1 + i)));
        assert.equal(results.filter((r) => r.status === 'consumed').length, 1);
        assert.equal(results.filter((r) => r.status === 'already_consumed').length, 19);
        const at = new Set(results.map((r) => (r.status === 'not_found' ? -1 : r.record.consumed_at)));
        assert.equal(at.size, 1);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('a dead Redis port fails fast with StorageUnavailableError and closes the PostgreSQL pool again', async () => {
      const where = fresh();
      const started = Date.now();
      await assert.rejects(open(where, 'redis://127.0.0.1:1'), (err: unknown) => {
        assert.ok(err instanceof StorageUnavailableError, String(err));
        assert.equal(err.message, 'Redis storage unavailable (ECONNREFUSED)');
        return true;
      });
      assert.ok(Date.now() - started < 3000, `failed in ${Date.now() - started} ms`);
    });

    it('Redis cut during use: StorageUnavailableError at once (no queueing), then it recovers by itself', async () => {
      const where = fresh();
      const proxy = await TcpProxy.start(Number(new URL(REDIS_URL).port || 6379));
      const s = await open(where, `redis://127.0.0.1:${proxy.port}`);
      try {
        await s.saveArtifact(code('before'));
        proxy.cut();
        await new Promise((r) => setTimeout(r, 50));
        const started = Date.now();
        for (const call of [
          () => s.consumeArtifact('authorization_code', 'before', T + 1),
          () => s.recordOnce('jti', T + 60, T),
          () => s.hitRateLimit('k', 60, T),
          () => s.ping(),
          () => s.revokeGrant('g', T),
        ]) {
          await assert.rejects(call(), (err: unknown) => {
            assert.ok(err instanceof StorageUnavailableError, String(err));
            assert.match(err.message, /^Redis storage unavailable \(/);
            return true;
          });
        }
        assert.ok(Date.now() - started < 3000, `failed in ${Date.now() - started} ms`);
        // Durable state stays reachable meanwhile.
        assert.deepEqual(await s.listClients(), []);
        proxy.restore();
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            await s.ping();
            break;
          } catch (err) {
            assert.ok(err instanceof StorageUnavailableError);
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        assert.equal((await s.consumeArtifact('authorization_code', 'before', T + 2)).status, 'consumed', 'nothing was half-written');
      } finally {
        await s.close();
        await proxy.close();
      }
    });

    it('maps client errors: offline, closed, timeouts, LOADING; not script errors', () => {
      class ClientOfflineError extends Error {}
      class TimeoutError extends Error {}
      assert.ok(mapRedisError(new ClientOfflineError('The client is offline')) instanceof StorageUnavailableError);
      assert.ok(mapRedisError(new TimeoutError('Timeout')) instanceof StorageUnavailableError);
      assert.ok(mapRedisError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) instanceof StorageUnavailableError);
      assert.ok(mapRedisError(new Error('LOADING Redis is loading the dataset in memory')) instanceof StorageUnavailableError);
      assert.ok(!(mapRedisError(new Error('ERR Error running script')) instanceof StorageUnavailableError));
    });

    it('close is idempotent; calls after close throw StorageUnavailableError', async () => {
      const where = fresh();
      const s: Storage = await open(where);
      await s.close();
      await s.close();
      await assert.rejects(s.ping(), StorageUnavailableError);
      await assert.rejects(s.consumeArtifact('authorization_code', 'x', T), StorageUnavailableError);
      await assert.rejects(s.hitRateLimit('k', 60, T), StorageUnavailableError);
    });
  });
});
