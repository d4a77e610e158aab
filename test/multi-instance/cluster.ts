/**
 * Several ready-to-run servers (real processes: `node --import tsx src/cli/main.ts start`) on one
 * PostgreSQL database (a fresh schema per test file) and optionally one Redis (a fresh key
 * prefix), as behind a load balancer: every instance has the same issuer (`ISSUER`, a loopback
 * URL nobody listens on) and key-encryption secret, and listens on its own port. Tests talk to
 * each instance directly; an {@link Agent} rewrites the issuer's origin to the instance it talks to.
 *
 * Every process started here is killed by PID in an `after` hook (and on exit), even when a test
 * fails; schemas and Redis keys are dropped by {@link SharedDatabase.drop}.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/spawn-server.js';
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueSchema } from '../storage/pg-helpers.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HOST = '127.0.0.1';
export const KEY_SECRET = 'multi-instance-test-secret-0123456789';
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const WEB = { id: 'web', secret: 'web-secret-0123456789-abcdefghijklmnop' };
export const SVC = { id: 'svc', secret: 'svc-secret-0123456789-abcdefghijklmnop' };
export const ALICE = { id: 'user-alice', username: 'alice', password: 'alice-password-123' };
const START_TIMEOUT_MS = 45_000;

const require = createRequire(import.meta.url);
const children = new Set<ChildProcess>();
const dirs: string[] = [];

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, signal);
      } catch {
        // gone already
      }
    }
  }
}

after(async () => {
  killAll('SIGKILL');
  await new Promise((r) => setTimeout(r, 50));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
process.on('exit', () => killAll('SIGKILL'));

/** The config file every instance reads: two clients and one user (ids fixed, so starts are idempotent). */
export function clusterConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    clients: [
      {
        client_id: WEB.id,
        client_secret: WEB.secret,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid profile api:read',
      },
      { client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read' },
    ],
    users: [{ id: ALICE.id, username: ALICE.username, password: ALICE.password, claims: { name: 'Alice' } }],
    ...extra,
  };
}

export interface SharedDatabase {
  schema: string;
  databaseUrl: string;
  redisPrefix?: string;
  redisUrl?: string;
  /** The environment every instance (and the CLI) gets. */
  env(extra?: Record<string, string>): Record<string, string>;
  configPath: string;
  issuer: string;
  drop(): Promise<void>;
}

/** A fresh schema (and Redis prefix), a config file and an issuer for one test file. */
export async function sharedDatabase(options: { redis: boolean; config?: Record<string, unknown> }): Promise<SharedDatabase> {
  const schema = uniqueSchema('pcmi');
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  const databaseUrl = url.href;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cluster-'));
  dirs.push(dir);
  const configPath = join(dir, 'portcullis.config.json');
  writeFileSync(configPath, JSON.stringify(clusterConfig(options.config), null, 2));
  const issuer = `http://${HOST}:${await freePort()}`;
  const redisPrefix = options.redis ? `portcullis-mi:${process.pid}:${randomBytes(4).toString('hex')}:` : undefined;
  const redisUrl = redisPrefix === undefined ? undefined : `${REDIS_URL}?prefix=${encodeURIComponent(redisPrefix)}`;
  const db: SharedDatabase = {
    schema,
    databaseUrl,
    configPath,
    issuer,
    env(extra = {}) {
      const env: Record<string, string> = {
        DATABASE_URL: databaseUrl,
        PORTCULLIS_ISSUER: issuer,
        PORTCULLIS_KEY_SECRET: KEY_SECRET,
        PORTCULLIS_CONFIG: configPath,
        PORTCULLIS_KEY_RELOAD_SECONDS: '1',
        LOG_LEVEL: 'warn',
      };
      if (redisUrl !== undefined) env.REDIS_URL = redisUrl;
      return { ...env, ...extra };
    },
    async drop() {
      await dropSchema(schema);
      if (redisPrefix !== undefined) await deleteRedisKeys(redisPrefix);
    },
  };
  if (redisPrefix !== undefined) db.redisPrefix = redisPrefix;
  if (redisUrl !== undefined) db.redisUrl = redisUrl;
  return db;
}

export async function withRedis<T>(fn: (client: import('redis').RedisClientType) => Promise<T>): Promise<T> {
  const { createClient } = require('redis') as typeof import('redis');
  const client = createClient({ url: REDIS_URL }) as import('redis').RedisClientType;
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

async function deleteRedisKeys(prefix: string): Promise<void> {
  await withRedis(async (client) => {
    let cursor = '0';
    do {
      const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      if (keys.length > 0) await client.sendCommand(['DEL', ...keys]);
    } while (cursor !== '0');
  });
}

/** The environment of a child: the parent's, minus anything that configures Portcullis. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(PORTCULLIS_|PORT$|HOST$|DATABASE_URL$|REDIS_URL$|LOG_LEVEL$|DEBUG$|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export interface Instance {
  readonly name: string;
  readonly port: number;
  /** Where it listens, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Start again on the same port with the same environment. */
  restart(): Promise<void>;
}

/** Start one instance and wait until it prints its banner and answers /healthz. */
export async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const out = { stdout: '', stderr: '' };
  let child = await launch(port, env, out, name);
  const waitExit = (c: ChildProcess): Promise<void> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
  return {
    name,
    port,
    url: `http://${HOST}:${port}`,
    get pid() {
      return child.pid!;
    },
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    async stop() {
      const exited = waitExit(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      const exited = waitExit(child);
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
    async restart() {
      for (let attempt = 1; ; attempt++) {
        try {
          child = await launch(port, env, out, name);
          return;
        } catch (err) {
          if (!/already in use/.test(String(err)) || attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
  };
}

async function launch(port: number, env: Record<string, string>, out: { stdout: string; stderr: string }, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    cwd: REPO_ROOT,
    env: childEnv({ ...env, PORT: String(port), HOST }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    out.stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out.stderr += d;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const fail = (why: string): Error => new Error(`instance ${name} ${why}\n--- stderr ---\n${out.stderr}\n--- stdout ---\n${stdout}`);
  try {
    while (!/^\s*listening:\s+\S+/m.test(stdout)) {
      if (!running()) throw fail(`exited before it was ready (${child.exitCode ?? child.signalCode})`);
      if (Date.now() > deadline) throw fail('did not start in time');
      await new Promise((r) => setTimeout(r, 25));
    }
    for (;;) {
      if (!running()) throw fail('exited before /healthz answered');
      if (Date.now() > deadline) throw fail('/healthz did not answer in time');
      try {
        const res = await fetch(`http://${HOST}:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status === 200) return child;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    if (running()) child.kill('SIGKILL');
    throw err;
  }
}

/** Run the CLI (`portcullis <args>`) against the shared database; resolves with its output. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis ${args.join(' ')} did not finish in time\n${stderr}`));
    }, 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolveRun({ code, stdout, stderr });
    });
  });
}

// -------------------------------------------------------------------------------------------------
// HTTP

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request to an instance (never follows redirects). */
export async function request(
  instance: Instance | string,
  method: string,
  path: string,
  options: { form?: Record<string, string>; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Reply> {
  const base = typeof instance === 'string' ? instance : instance.url;
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  }
  const res = await fetch(base + path, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}

export function basic(client: { id: string; secret: string }): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
}

/** POST /token as a confidential client. */
export function token(instance: Instance | string, client: { id: string; secret: string }, form: Record<string, string>, timeoutMs?: number): Promise<Reply> {
  return request(instance, 'POST', '/token', { form, headers: { authorization: basic(client) }, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
}

export async function introspect(instance: Instance | string, client: { id: string; secret: string }, value: string): Promise<Record<string, unknown>> {
  const res = await request(instance, 'POST', '/introspect', { form: { token: value }, headers: { authorization: basic(client) } });
  assert.equal(res.status, 200, `introspection: ${res.status} ${res.body}`);
  return res.json();
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function jwtHeader(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/** A browser's cookie jar; each call names the instance it goes to (one jar for all of them). */
export class Agent {
  readonly #jar = new Map<string, Cookie>();

  constructor(readonly issuer: string) {}

  /** GET or POST a path, or an absolute URL on the issuer, sent to `instance`. */
  async go(instance: Instance, method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<Reply> {
    const url = new URL(target, this.issuer + '/');
    assert.equal(url.origin, new URL(this.issuer).origin, `the agent only follows the issuer's URLs (${target})`);
    const headers: Record<string, string> = {};
    const cookie = this.#cookieHeader(url.pathname);
    if (cookie !== undefined) headers.cookie = cookie;
    const res = await request(instance, method, url.pathname + url.search, { ...(form !== undefined ? { form } : {}), headers });
    for (const line of res.headers.getSetCookie()) this.#store(line);
    return res;
  }

  #cookieHeader(path: string): string | undefined {
    const matching = [...this.#jar.values()].filter((c) => c.path === '/' || path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`));
    return matching.length === 0 ? undefined : matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  #store(line: string): void {
    const [pair = '', ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let remove = false;
    for (const attr of attrs) {
      const [k = '', v = ''] = attr.split('=');
      if (k.toLowerCase() === 'path') path = v;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) remove = true;
    }
    const key = `${name}\u0000${path}`;
    if (remove) this.#jar.delete(key);
    else this.#jar.set(key, { name, value, path });
  }
}

export function scrapeCsrf(body: string): string {
  const m = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(body);
  assert.ok(m !== null, `the page has a csrf input: ${body.slice(0, 400)}`);
  return m[1]!;
}

export function scrapeAction(body: string): string {
  const m = /<form method="post" action="([^"]+)">/.exec(body);
  assert.ok(m !== null, `the page has a POST form: ${body.slice(0, 400)}`);
  return m[1]!.replace(/&amp;/g, '&').replace(/&#x2F;/g, '/').replace(/&#39;/g, "'").replace(/&quot;/g, '"');
}

export function authorizeQuery(challenge: string, state = randomBytes(8).toString('hex'), scope = 'api:read'): string {
  return new URLSearchParams({
    response_type: 'code',
    client_id: WEB.id,
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
}

/** The code in a redirect to the client (asserting it is one). */
export function codeFrom(res: Reply): string {
  assert.ok(res.status === 302 || res.status === 303, `a redirect, got ${res.status}: ${res.body.slice(0, 300)}`);
  const location = res.headers.get('location') ?? '';
  assert.ok(location.startsWith(`${REDIRECT_URI}?`), `a redirect to the client, got ${location}`);
  const code = new URL(location).searchParams.get('code');
  assert.ok(code !== null, `a code in ${location}`);
  return code;
}

/**
 * The authorization code flow up to the code: /authorize, login and consent, each step on the
 * instance `steps` names (cycled). Returns the code and its PKCE verifier.
 */
export async function obtainCode(agent: Agent, steps: { authorize: Instance; login: Instance; consent: Instance }): Promise<{ code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  let res = await agent.go(steps.authorize, 'GET', `/authorize?${authorizeQuery(challenge)}`);
  for (let i = 0; i < 4; i++) {
    const location = res.headers.get('location') ?? '';
    if (!location.startsWith(`${agent.issuer}/interaction/`)) break;
    const isLogin = (body: string): boolean => /action="[^"]*\/login"/.test(body);
    // Which instance shows the page: the login one until signed in, then the consent one.
    let page = await agent.go(steps.login, 'GET', location);
    assert.equal(page.status, 200, `interaction page: ${page.status} ${page.body.slice(0, 300)}`);
    if (isLogin(page.body)) {
      res = await agent.go(steps.login, 'POST', scrapeAction(page.body), { csrf: scrapeCsrf(page.body), username: ALICE.username, password: ALICE.password });
      continue;
    }
    page = await agent.go(steps.consent, 'GET', location);
    assert.equal(page.status, 200, `consent page on ${steps.consent.name}: ${page.status} ${page.body.slice(0, 300)}`);
    assert.match(page.body, /value="approve"/, 'a consent page');
    res = await agent.go(steps.consent, 'POST', scrapeAction(page.body), { csrf: scrapeCsrf(page.body), decision: 'approve' });
  }
  return { code: codeFrom(res), verifier };
}

export function redeem(instance: Instance | string, code: string, verifier: string, timeoutMs?: number): Promise<Reply> {
  return token(instance, WEB, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI }, timeoutMs);
}

export function refresh(instance: Instance | string, refreshToken: string, timeoutMs?: number): Promise<Reply> {
  return token(instance, WEB, { grant_type: 'refresh_token', refresh_token: refreshToken }, timeoutMs);
}
