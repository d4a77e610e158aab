/**
 * Shared set-up of the PostgreSQL and Redis storage tests: where the services are, whether they
 * answer, and unique schemas / key prefixes so test runs never see each other's rows.
 *
 * The services run on CI's machine (`.ci/run` starts them). A test file whose service does not
 * answer is skipped with a visible message — except when `CI=true`, where it fails instead.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';

export const POSTGRES_URL = process.env.PORTCULLIS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const IN_CI = process.env.CI === 'true';

const require = createRequire(import.meta.url);

/** Whether something accepts TCP connections at host:port (within `timeoutMs`). */
export function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** Whether PostgreSQL answers `SELECT 1` at {@link POSTGRES_URL}. */
export async function postgresAvailable(): Promise<boolean> {
  const url = new URL(POSTGRES_URL);
  if (!(await tcpReachable(url.hostname, Number(url.port || 5432)))) return false;
  const { Client } = require('pg') as typeof import('pg');
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether Redis answers PING at {@link REDIS_URL}. */
export async function redisAvailable(): Promise<boolean> {
  const url = new URL(REDIS_URL);
  if (!(await tcpReachable(url.hostname, Number(url.port || 6379)))) return false;
  const { createClient } = require('redis') as typeof import('redis');
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/**
 * Decide whether a service-backed test file runs. Outside CI, an unreachable service skips the
 * file (the reason is printed); in CI (`CI=true`) it fails: CI must run these tests.
 */
export function serviceGate(service: string, available: boolean): { skip: false } | { skip: string } {
  if (available) return { skip: false };
  const reason = `${service} is not reachable on 127.0.0.1 (start it, or see .ci/run)`;
  if (IN_CI) throw new Error(`CI=true but ${reason}: these tests must run in CI`);
  console.log(`# SKIPPED: ${reason}; the ${service} tests did not run`);
  return { skip: reason };
}

/** A fresh schema name for one test run. */
export function uniqueSchema(prefix = 'pct'): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Run SQL with a short-lived connection (schema set-up and tear-down). */
export async function withPg<T>(fn: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const { Client } = require('pg') as typeof import('pg');
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** Empty every table of a schema (between conformance tests). */
export async function truncateSchema(schema: string): Promise<void> {
  await withPg((c) =>
    c.query(`TRUNCATE "${schema}".clients, "${schema}".users, "${schema}".grants, "${schema}".artifacts, "${schema}".replay_records, "${schema}".rate_limits, "${schema}".signing_keys`),
  );
}

/** Whether a process with this pid exists on this machine. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const STALE_SCHEMA = /^(?:pct|pcr|pcmi)_(\d+)_[0-9a-f]{8}$/;
const STALE_PREFIX = /^portcullis-(?:test|mi):(\d+):[0-9a-f]{8}:/;

/**
 * Drop what test runs killed before their `after` hooks left behind: schemas and Redis keys named
 * after a test process that no longer exists (names carry the pid).
 */
export async function dropStaleTestData(options: { redis?: boolean } = {}): Promise<void> {
  const schemas = await withPg(async (c) => (await c.query(`SELECT nspname FROM pg_namespace WHERE nspname ~ '^(pct|pcr|pcmi)_'`)).rows.map((r) => String(r.nspname)));
  for (const schema of schemas) {
    const pid = Number(STALE_SCHEMA.exec(schema)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await dropSchema(schema);
  }
  if (options.redis !== true) return;
  const { createClient } = require('redis') as typeof import('redis');
  const client = createClient({ url: REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', 'portcullis-*', 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      const stale = keys.filter((key) => {
        const pid = Number(STALE_PREFIX.exec(key)?.[1]);
        return Number.isInteger(pid) && pid !== process.pid && !alive(pid);
      });
      if (stale.length > 0) await client.sendCommand(['DEL', ...stale]);
    } while (cursor !== '0');
  } finally {
    client.destroy();
  }
}
