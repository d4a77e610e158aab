import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StorageUnavailableError } from '../../src/core/errors.js';
import { runStorageConformance } from '../../src/storage/conformance.js';
import type { ArtifactRecord, ConsumeResult } from '../../src/storage/contract.js';
import { MIGRATIONS, SQLITE_SCHEMA_VERSION, SqliteStorage, createSqliteStorage } from '../../src/storage/sqlite.js';

const T = 1_000_000;

let tempRoot = '';
let fileCounter = 0;
/** A fresh database path in a directory that does not exist yet (createSqliteStorage makes it). */
function tempDbPath(): string {
  fileCounter += 1;
  return join(tempRoot, `case-${fileCounter}`, 'nested', 'portcullis.db');
}

/** A fresh database path whose directory exists (for opening it with the raw driver). */
function tempDbPathWithDir(): string {
  const path = tempDbPath();
  mkdirSync(dirname(path), { recursive: true });
  return path;
}

before(() => {
  tempRoot = mkdtempSync(join(tmpdir(), 'portcullis-sqlite-'));
});

after(() => {
  if (tempRoot !== '') rmSync(tempRoot, { recursive: true, force: true });
});

runStorageConformance('sqlite :memory:', () => createSqliteStorage({ filename: ':memory:' }));
runStorageConformance('sqlite file', () => createSqliteStorage({ filename: tempDbPath() }));
runStorageConformance('sqlite adopted connection', () =>
  createSqliteStorage({ database: new Database(':memory:') }),
);

function code(id: string, fields: Partial<ArtifactRecord> = {}): ArtifactRecord {
  return {
    kind: 'authorization_code',
    id,
    client_id: 'client-1',
    scope: 'openid',
    created_at: T,
    expires_at: T + 600,
    ...fields,
  };
}

describe('SqliteStorage', () => {
  it('is named sqlite and creates the parent directory of the file', async () => {
    const path = tempDbPath();
    assert.equal(existsSync(path), false);
    const storage = createSqliteStorage({ filename: path });
    try {
      assert.ok(storage instanceof SqliteStorage);
      assert.equal(storage.name, 'sqlite');
      assert.equal(existsSync(path), true);
    } finally {
      await storage.close();
    }
  });

  it('keeps data across close and reopen of the same file', async () => {
    const path = tempDbPath();
    const first = createSqliteStorage({ filename: path });
    await first.upsertClient({
      client_id: 'c1',
      redirect_uris: ['https://a.example/cb'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      rotate_refresh_tokens: true,
      created_at: T,
      updated_at: T,
    });
    await first.saveArtifact(code('c'));
    assert.equal((await first.consumeArtifact('authorization_code', 'c', T + 1)).status, 'consumed');
    assert.equal(await first.recordOnce('jti', T + 60, T), true);
    await first.close();

    const second = createSqliteStorage({ filename: path });
    try {
      assert.equal((await second.getClient('c1'))?.rotate_refresh_tokens, true);
      assert.deepStrictEqual(await second.consumeArtifact('authorization_code', 'c', T + 2), {
        status: 'already_consumed',
        record: code('c', { consumed_at: T + 1 }),
      });
      assert.equal(await second.recordOnce('jti', T + 60, T + 1), false);
    } finally {
      await second.close();
    }
  });

  it('applies each migration once: reopening does not re-apply them', async () => {
    const path = tempDbPath();
    for (let i = 0; i < 3; i++) await createSqliteStorage({ filename: path }).close();
    const raw = new Database(path, { readonly: true });
    try {
      const rows = raw.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as {
        version: number;
        applied_at: number;
      }[];
      assert.ok(SQLITE_SCHEMA_VERSION >= 1);
      assert.deepStrictEqual(
        rows.map((r) => r.version),
        Array.from({ length: SQLITE_SCHEMA_VERSION }, (_, i) => i + 1),
      );
      for (const row of rows) assert.equal(typeof row.applied_at, 'number');
      const tables = (
        raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]
      ).map((r) => r.name);
      for (const table of ['artifacts', 'clients', 'grants', 'rate_limits', 'replay_records', 'schema_migrations', 'signing_keys', 'users']) {
        assert.ok(tables.includes(table), `missing table ${table}`);
      }
    } finally {
      raw.close();
    }
  });

  it('migration 3 makes artifacts_grant_id partial: existing rows keep working and revoke-by-grant still uses the index', async () => {
    const path = tempDbPathWithDir();
    const raw = new Database(path);
    raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)');
    raw.exec(MIGRATIONS[0]!.sql);
    raw.exec(MIGRATIONS[1]!.sql);
    raw.prepare('INSERT INTO schema_migrations VALUES (1, 0), (2, 0)').run();
    raw.prepare('INSERT INTO grants (id, client_id, scope, grant_type, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run('g1', 'c1', 'a', 'authorization_code', T, T + 1000);
    const artifact = raw.prepare('INSERT INTO artifacts (kind, id, grant_id, client_id, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    artifact.run('refresh_token', 'r1', 'g1', 'c1', 'a', T, T + 1000);
    artifact.run('access_token', 'a1', 'g1', 'c1', 'a', T, T + 1000);
    artifact.run('access_token', 'a2', null, 'c1', 'a', T, T + 1000);
    raw.close();
    const storage = createSqliteStorage({ filename: path });
    try {
      assert.equal(await storage.revokeGrant('g1', T + 1), true);
      assert.equal((await storage.findArtifact('refresh_token', 'r1', T + 2))?.revoked_at, T + 1);
      assert.equal((await storage.findArtifact('access_token', 'a1', T + 2))?.revoked_at, T + 1);
      assert.equal((await storage.findArtifact('access_token', 'a2', T + 2))?.revoked_at, undefined, 'a token without a grant is untouched');
    } finally {
      await storage.close();
    }
    const check = new Database(path, { readonly: true });
    try {
      const index = check.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'artifacts_grant_id'").get() as { sql: string };
      assert.match(index.sql, /WHERE grant_id IS NOT NULL/);
      const plan = check.prepare('EXPLAIN QUERY PLAN UPDATE artifacts SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL').all(1, 'g1') as { detail: string }[];
      assert.ok(plan.some((step) => step.detail.includes('USING INDEX artifacts_grant_id')), JSON.stringify(plan));
      assert.deepStrictEqual(check.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), [{ version: 1 }, { version: 2 }, { version: 3 }]);
    } finally {
      check.close();
    }
  });

  it('migration 2 carries version-1 client rows over to JSON records, with absent fields still absent', async () => {
    const path = tempDbPathWithDir();
    const raw = new Database(path);
    raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)');
    raw.exec(MIGRATIONS[0]!.sql);
    raw.prepare('INSERT INTO schema_migrations VALUES (1, 0)').run();
    const insert = raw.prepare(
      `INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, response_types,
        token_endpoint_auth_method, scope, jwks, jwks_uri, token_endpoint_auth_signing_alg, access_token_format,
        rotate_refresh_tokens, resource_server_audiences, extra, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('full', 'sha256$s$d', 'Full', '["https://a/cb"]', '["authorization_code"]', '["code"]', 'client_secret_basic', 'openid', '{"keys":[{"kty":"EC"}]}', null, 'ES256', 'opaque', 0, '["https://api"]', '{"logo_uri":"https://a/l.png"}', T, T + 1);
    insert.run('min', null, null, '[]', '["client_credentials"]', '[]', 'none', null, null, null, null, null, null, null, null, T, T);
    raw.close();
    const storage = createSqliteStorage({ filename: path });
    try {
      assert.deepStrictEqual(await storage.getClient('full'), {
        client_id: 'full',
        client_secret_hash: 'sha256$s$d',
        client_name: 'Full',
        redirect_uris: ['https://a/cb'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid',
        jwks: { keys: [{ kty: 'EC' }] },
        token_endpoint_auth_signing_alg: 'ES256',
        access_token_format: 'opaque',
        rotate_refresh_tokens: false,
        resource_server_audiences: ['https://api'],
        extra: { logo_uri: 'https://a/l.png' },
        created_at: T,
        updated_at: T + 1,
      });
      assert.deepStrictEqual(await storage.getClient('min'), {
        client_id: 'min',
        redirect_uris: [],
        grant_types: ['client_credentials'],
        response_types: [],
        token_endpoint_auth_method: 'none',
        created_at: T,
        updated_at: T,
      });
    } finally {
      await storage.close();
    }
  });

  it('uses WAL mode and the connection pragmas on a file database', async () => {
    const path = tempDbPathWithDir();
    const db = new Database(path);
    const storage = createSqliteStorage({ database: db });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('synchronous', { simple: true }), 1); // NORMAL
      assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('cache_size', { simple: true }), -8192); // 8 MiB
    } finally {
      await storage.close();
    }
    assert.equal(db.open, false, 'close() closes the adopted connection');
    const bigger = createSqliteStorage({ filename: path, cacheSizeMiB: 64 });
    await bigger.close();
    const adopted = new Database(path);
    const custom = createSqliteStorage({ database: adopted, cacheSizeMiB: 3 });
    try {
      assert.equal(adopted.pragma('cache_size', { simple: true }), -3072, 'cacheSizeMiB sets the page cache');
    } finally {
      await custom.close();
    }
    assert.throws(() => createSqliteStorage({ filename: path, cacheSizeMiB: 0 }), /cacheSizeMiB: must be a number of MiB, at least 1/);
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('throws StorageUnavailableError once closed (and close stays idempotent)', async () => {
    const storage = createSqliteStorage({ filename: ':memory:' });
    await storage.saveArtifact(code('c'));
    await storage.close();
    await storage.close();
    await assert.rejects(storage.ping(), StorageUnavailableError);
    await assert.rejects(storage.getClient('c1'), StorageUnavailableError);
    await assert.rejects(storage.consumeArtifact('authorization_code', 'c', T), StorageUnavailableError);
    await assert.rejects(storage.revokeGrant('g', T), StorageUnavailableError);
    await assert.rejects(storage.hitRateLimit('k', 60, T), StorageUnavailableError);
    await assert.rejects(storage.sweepExpired(T), StorageUnavailableError);
  });

  it('throws StorageUnavailableError when the adopted connection is closed underneath', async () => {
    const db = new Database(':memory:');
    const storage = createSqliteStorage({ database: db });
    db.close();
    await assert.rejects(storage.ping(), (err: unknown) => {
      assert.ok(err instanceof StorageUnavailableError);
      assert.ok(err.cause instanceof TypeError);
      return true;
    });
    await storage.close();
  });

  it('throws StorageUnavailableError when the database stays busy', async () => {
    const path = tempDbPathWithDir();
    const db = new Database(path);
    const storage = createSqliteStorage({ database: db });
    db.pragma('busy_timeout = 20'); // keep the test fast
    const blocker = new Database(path);
    try {
      blocker.exec('BEGIN IMMEDIATE');
      await assert.rejects(storage.saveArtifact(code('c')), (err: unknown) => {
        assert.ok(err instanceof StorageUnavailableError);
        assert.match(String((err.cause as { code?: unknown }).code), /^SQLITE_BUSY/);
        return true;
      });
      await assert.rejects(storage.revokeGrant('g', T), StorageUnavailableError);
      blocker.exec('ROLLBACK');
      await storage.saveArtifact(code('c'));
      assert.equal((await storage.findArtifact('authorization_code', 'c', T))?.id, 'c');
    } finally {
      if (blocker.open) blocker.close();
      await storage.close();
    }
  });

  it('throws StorageUnavailableError when the file cannot be opened', () => {
    // A directory is not a database file.
    assert.throws(() => createSqliteStorage({ filename: tempRoot }), StorageUnavailableError);
  });

  it('rethrows other driver errors as they are (a duplicate artifact is not reset)', async () => {
    const storage = createSqliteStorage({ filename: ':memory:' });
    try {
      await storage.saveArtifact(code('c'));
      assert.equal((await storage.consumeArtifact('authorization_code', 'c', T + 1)).status, 'consumed');
      await assert.rejects(storage.saveArtifact(code('c')), (err: unknown) => {
        assert.ok(!(err instanceof StorageUnavailableError));
        assert.match(String((err as { code?: unknown }).code), /^SQLITE_CONSTRAINT/);
        return true;
      });
      assert.equal((await storage.consumeArtifact('authorization_code', 'c', T + 2)).status, 'already_consumed');
      await assert.rejects(storage.hitRateLimit('k', 0, T), RangeError);
    } finally {
      await storage.close();
    }
  });

  it('two connections to one file: of 20 interleaved consumes exactly one is consumed', async () => {
    const path = tempDbPath();
    const a = createSqliteStorage({ filename: path });
    const b = createSqliteStorage({ filename: path });
    try {
      await a.saveArtifact(code('shared'));
      assert.equal((await b.findArtifact('authorization_code', 'shared', T))?.id, 'shared');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? b : a).consumeArtifact('authorization_code', 'shared', T + 1 + i)),
      );
      assert.equal(results.filter((r) => r.status === 'consumed').length, 1);
      assert.equal(results.filter((r) => r.status === 'already_consumed').length, 19);
      for (const r of results) {
        assert.ok(r.status !== 'not_found');
        assert.equal(r.record.consumed_at, T + 1); // the first call (on b) won
      }
      // Revocation through one connection is visible through the other.
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

  it('four worker threads racing on one file: exactly one consume and one recordOnce win', async () => {
    const path = tempDbPath();
    const setup = createSqliteStorage({ filename: path });
    await setup.saveArtifact(code('race'));
    await setup.close();

    const moduleUrl = pathToFileURL(join(import.meta.dirname, '../../src/storage/sqlite.ts')).href;
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const workerCode = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        // Workers do not inherit the test runner's TypeScript loader: load the module through tsx.
        const { tsImport } = await import('tsx/esm/api');
        const { createSqliteStorage } = await tsImport(workerData.moduleUrl, workerData.moduleUrl);
        const storage = createSqliteStorage({ filename: workerData.path });
        parentPort.postMessage({ ready: true });
        Atomics.wait(workerData.gate, 0, 0);
        const consumes = [];
        const records = [];
        for (let i = 0; i < 5; i++) {
          consumes.push(await storage.consumeArtifact('authorization_code', 'race', ${T} + 1));
          records.push(await storage.recordOnce('jti', ${T} + 60, ${T}));
        }
        await storage.close();
        parentPort.postMessage({ consumes, records });
      })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
    `;
    const workers = Array.from(
      { length: 4 },
      () => new Worker(workerCode, { eval: true, workerData: { moduleUrl, path, gate } }),
    );
    type Outcome = { consumes: ConsumeResult[]; records: boolean[] };
    const ready: Promise<void>[] = [];
    const done: Promise<Outcome>[] = [];
    for (const worker of workers) {
      let markReady!: () => void;
      ready.push(new Promise<void>((resolve) => (markReady = resolve)));
      done.push(
        new Promise<Outcome>((resolve, reject) => {
          worker.on('message', (msg: { ready?: true; error?: string } & Partial<Outcome>) => {
            if (msg.ready) markReady();
            else if (msg.error !== undefined) reject(new Error(msg.error));
            else resolve(msg as Outcome);
          });
          worker.on('error', reject);
        }),
      );
    }
    try {
      await Promise.race([Promise.all(ready), Promise.all(done)]);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      const outcomes = await Promise.all(done);
      const consumes = outcomes.flatMap((o) => o.consumes);
      const records = outcomes.flatMap((o) => o.records);
      assert.equal(consumes.length, 20);
      assert.equal(consumes.filter((r) => r.status === 'consumed').length, 1);
      assert.equal(consumes.filter((r) => r.status === 'already_consumed').length, 19);
      assert.equal(records.filter((r) => r).length, 1);
      assert.equal(records.filter((r) => !r).length, 19);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});

describe('SqliteStorage group commit', () => {
  /** Frames in the WAL file, read through a second connection (each commit appends at least one). */
  function walFrames(path: string): number {
    const raw = new Database(path);
    try {
      const [row] = raw.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
      return row!.log;
    } finally {
      raw.close();
    }
  }

  it('commits concurrent writes together, and each promise settles only once they are committed', async () => {
    const path = tempDbPathWithDir();
    const storage = createSqliteStorage({ filename: path });
    const other = new Database(path, { readonly: true });
    try {
      const writes = Array.from({ length: 20 }, (_, i) => storage.saveArtifact(code(`batch-${i}`)));
      // Nothing is written before the event loop turns: a second connection sees none of them yet.
      assert.equal((other.prepare("SELECT count(*) AS n FROM artifacts WHERE id LIKE 'batch-%'").get() as { n: number }).n, 0);
      await Promise.all(writes);
      assert.equal((other.prepare("SELECT count(*) AS n FROM artifacts WHERE id LIKE 'batch-%'").get() as { n: number }).n, 20);
    } finally {
      other.close();
      await storage.close();
    }
  });

  it('uses one transaction for a burst of writes, not one per write', async () => {
    const path = tempDbPathWithDir();
    const storage = createSqliteStorage({ filename: path });
    try {
      // One write alone, to learn what a commit costs in WAL frames on this page size.
      await storage.saveArtifact(code('alone'));
      const raw = new Database(path);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      await storage.saveArtifact(code('alone-2'));
      const perCommit = walFrames(path);
      assert.ok(perCommit >= 1);
      const truncate = new Database(path);
      truncate.pragma('wal_checkpoint(TRUNCATE)');
      truncate.close();
      await Promise.all(Array.from({ length: 50 }, (_, i) => storage.saveArtifact(code(`burst-${i}`))));
      const frames = walFrames(path);
      // 50 commits would append at least 50 × perCommit frames; one transaction appends a few pages.
      assert.ok(frames < 10 * perCommit, `${frames} WAL frames for 50 writes (${perCommit} per commit)`);
      for (let i = 0; i < 50; i++) assert.equal((await storage.findArtifact('authorization_code', `burst-${i}`, T))?.id, `burst-${i}`);
    } finally {
      await storage.close();
    }
  });

  it('rejects only the write that fails; the others in the batch are committed', async () => {
    const path = tempDbPathWithDir();
    const storage = createSqliteStorage({ filename: path });
    try {
      await storage.saveArtifact(code('taken'));
      const results = await Promise.allSettled([
        storage.saveArtifact(code('fresh-1')),
        storage.saveArtifact(code('taken')), // duplicate id: the constraint fails
        storage.saveArtifact(code('fresh-2')),
      ]);
      assert.equal(results[0].status, 'fulfilled');
      assert.equal(results[1].status, 'rejected');
      assert.ok(!((results[1] as PromiseRejectedResult).reason instanceof StorageUnavailableError), 'a constraint failure is not an outage');
      assert.equal(results[2].status, 'fulfilled');
      const reopened = createSqliteStorage({ filename: path });
      try {
        assert.equal((await reopened.findArtifact('authorization_code', 'fresh-1', T))?.id, 'fresh-1');
        assert.equal((await reopened.findArtifact('authorization_code', 'fresh-2', T))?.id, 'fresh-2');
      } finally {
        await reopened.close();
      }
    } finally {
      await storage.close();
    }
  });

  it('consumes an artifact once when two consumes share a batch', async () => {
    const storage = createSqliteStorage({ filename: tempDbPath() });
    try {
      await storage.saveArtifact(code('once'));
      const results = await Promise.all(Array.from({ length: 5 }, () => storage.consumeArtifact('authorization_code', 'once', T + 1)));
      assert.deepEqual(
        results.map((r) => r.status).sort(),
        ['already_consumed', 'already_consumed', 'already_consumed', 'already_consumed', 'consumed'],
      );
    } finally {
      await storage.close();
    }
  });

  it('rejects every write of a batch with StorageUnavailableError when the database is locked, then recovers', async () => {
    const path = tempDbPathWithDir();
    const db = new Database(path);
    const storage = createSqliteStorage({ database: db });
    db.pragma('busy_timeout = 20');
    const blocker = new Database(path);
    try {
      blocker.exec('BEGIN IMMEDIATE');
      const results = await Promise.allSettled([storage.saveArtifact(code('l1')), storage.saveArtifact(code('l2')), storage.revokeGrant('g', T)]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok((r as PromiseRejectedResult).reason instanceof StorageUnavailableError);
      }
      blocker.exec('ROLLBACK');
      await Promise.all([storage.saveArtifact(code('l1')), storage.saveArtifact(code('l2'))]);
      assert.equal((await storage.findArtifact('authorization_code', 'l2', T))?.id, 'l2');
    } finally {
      blocker.close();
      await storage.close();
    }
  });

  it('runs the writes still queued when it is closed', async () => {
    const path = tempDbPathWithDir();
    const storage = createSqliteStorage({ filename: path });
    const pending = [storage.saveArtifact(code('late-1')), storage.saveArtifact(code('late-2'))];
    await storage.close();
    await Promise.all(pending);
    const reopened = createSqliteStorage({ filename: path });
    try {
      assert.equal((await reopened.findArtifact('authorization_code', 'late-2', T))?.id, 'late-2');
    } finally {
      await reopened.close();
    }
  });
});

describe('SqliteStorage background checkpoints', () => {
  it('checkpoints the WAL from a worker thread while the request connection never does', async () => {
    const path = tempDbPathWithDir();
    const storage = createSqliteStorage({ filename: path });
    try {
      for (let round = 0; round < 5; round++) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => storage.saveArtifact(code(`wal-${round}-${i}`, { data: { pad: 'x'.repeat(500) } }))));
      }
      // Within a few intervals the worker has copied every frame into the database file.
      const deadline = Date.now() + 5000;
      let state: { log: number; checkpointed: number } | undefined;
      for (;;) {
        const raw = new Database(path);
        try {
          // busy_timeout 0 and a plain read: this connection must not checkpoint by itself.
          state = (raw.pragma('wal_checkpoint(NOOP)') as Array<{ log: number; checkpointed: number }>)[0];
        } catch {
          state = undefined;
        } finally {
          raw.close();
        }
        if ((state !== undefined && state.log > 0 && state.checkpointed === state.log) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(state !== undefined && state.log > 0 && state.checkpointed === state.log, `WAL not checkpointed: ${JSON.stringify(state)}`);
    } finally {
      await storage.close();
    }
  });
});

describe('SqliteStorage client cache', () => {
  function client(id: string, fields: Record<string, unknown> = {}) {
    return {
      client_id: id,
      client_secret_hash: 'sha256$c2FsdA$one',
      redirect_uris: ['https://app.example/cb'],
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      created_at: T,
      updated_at: T,
      ...fields,
    };
  }

  it('sees another connection’s change, removal and addition of a client at the next read', async () => {
    const path = tempDbPathWithDir();
    const server = createSqliteStorage({ filename: path });
    const cli = createSqliteStorage({ filename: path });
    try {
      await cli.upsertClient(client('svc'));
      assert.equal((await server.getClient('svc'))?.client_secret_hash, 'sha256$c2FsdA$one');
      assert.equal((await server.getClient('svc'))?.client_secret_hash, 'sha256$c2FsdA$one', 'a cached read');
      await cli.upsertClient(client('svc', { client_secret_hash: 'sha256$c2FsdA$two', updated_at: T + 1 }));
      assert.equal((await server.getClient('svc'))?.client_secret_hash, 'sha256$c2FsdA$two', 'a new secret counts at once');
      await cli.deleteClient('svc');
      assert.equal(await server.getClient('svc'), undefined, 'a removed client is gone at once');
      assert.equal(await server.getClient('later'), undefined);
      await cli.upsertClient(client('later'));
      assert.equal((await server.getClient('later'))?.client_id, 'later');
    } finally {
      await cli.close();
      await server.close();
    }
  });

  it('sees its own writes, and a change anywhere in the database (not only to clients) is safe', async () => {
    const storage = createSqliteStorage({ filename: tempDbPath() });
    try {
      await storage.upsertClient(client('own'));
      assert.equal((await storage.getClient('own'))?.scope, undefined);
      await storage.upsertClient(client('own', { scope: 'api:read', updated_at: T + 1 }));
      assert.equal((await storage.getClient('own'))?.scope, 'api:read');
      await storage.deleteClient('own');
      assert.equal(await storage.getClient('own'), undefined);
    } finally {
      await storage.close();
    }
  });

  it('keeps user records exact too: another connection’s change or removal counts at the next turn', async () => {
    const path = tempDbPathWithDir();
    const server = createSqliteStorage({ filename: path });
    const cli = createSqliteStorage({ filename: path });
    const user = { id: 'u1', username: 'alice', claims: { email: 'alice@example.com' }, created_at: T, updated_at: T };
    try {
      await cli.upsertUser(user);
      assert.equal((await server.getUser('u1'))?.claims.email, 'alice@example.com');
      // A raw write by a third connection, then a new event-loop turn (as a new request would be).
      const raw = new Database(path);
      raw.prepare("UPDATE users SET claims = json_set(claims, '$.email', 'new@example.com') WHERE id = 'u1'").run();
      raw.close();
      await new Promise((r) => setImmediate(r));
      assert.equal((await server.getUser('u1'))?.claims.email, 'new@example.com');
      await cli.deleteUser('u1');
      assert.equal(await server.getUser('u1'), undefined);
    } finally {
      await cli.close();
      await server.close();
    }
  });

  it('hands out deeply frozen records, so no caller can change what another one reads', async () => {
    const storage = createSqliteStorage({ filename: tempDbPath() });
    try {
      await storage.upsertClient(client('frozen'));
      const record = (await storage.getClient('frozen'))!;
      assert.throws(() => {
        (record as { client_id: string }).client_id = 'other';
      }, TypeError);
      assert.throws(() => record.redirect_uris.push('https://evil.example/cb'), TypeError);
      assert.deepEqual((await storage.getClient('frozen'))?.redirect_uris, ['https://app.example/cb']);
    } finally {
      await storage.close();
    }
  });
});
