/**
 * The Portcullis target: its config file, its environment, and what the workloads need minted
 * beforehand, all over HTTP as a client would:
 *  - a browser session: GET /authorize → the hosted login page (csrf scraped) → POST login. The
 *    bench client is `first_party`, so no consent page; from then on every GET /authorize with the
 *    session cookie answers with a code in its Location header (PKCE S256, one verifier).
 *  - authorization codes: many GET /authorize, driven by autocannon in this process.
 *  - refresh tokens: codes (scope api:read, no openid) redeemed at /token.
 * And --growth: 1,000,000 refresh tokens (each with its grant) written straight into the SQLite
 * file with better-sqlite3, cloned from rows the server wrote itself, so the shape is exact
 * (PostgreSQL: bench/lib/postgres.mjs, server-side INSERT … SELECT).
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { basic } from './clients.mjs';

const require = createRequire(import.meta.url);

/** autocannon is loaded on first use, so that run.mjs can first say what to install when it is missing. */
async function autocannon(opts) {
  const { default: run } = await import('autocannon');
  return run(opts);
}

/** The scope of the codes of the code-redemption workload: an OIDC request (access + ID token). */
export const CODE_SCOPE = 'openid api:read';
/** The scope of the refresh tokens: an OAuth request, refresh token by registration. */
export const REFRESH_SCOPE = 'api:read';

/** The config file (PORTCULLIS_CONFIG) of the bench server. */
export function portcullisConfig(ids) {
  return {
    clients: [
      {
        client_id: ids.jwt.id,
        client_secret: ids.jwt.secret,
        client_name: 'bench: client_credentials, JWT',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        scope: ids.scope,
        allowed_audiences: [ids.resource],
      },
      {
        client_id: ids.opaque.id,
        client_secret: ids.opaque.secret,
        client_name: 'bench: client_credentials, opaque',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        scope: ids.scope,
        allowed_audiences: [ids.resource],
        access_token_format: 'opaque',
      },
      {
        client_id: ids.web.id,
        client_secret: ids.web.secret,
        client_name: 'bench: authorization code + refresh',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [ids.web.redirectUri],
        scope: `openid offline_access ${ids.scope}`,
        first_party: true,
      },
    ],
    users: [{ username: ids.user.username, password: ids.user.password }],
    // Codes are minted before the run (up to a minute before they are redeemed): 10 minutes, not 60 s.
    ttl: { authorizationCode: 600 },
  };
}

/**
 * Files and environment of one Portcullis server. SQLite: a fresh database file, or a copy of
 * `template`. PostgreSQL (`pg: { databaseUrl }`): the server's DATABASE_URL, its schema chosen by
 * the caller (a fresh one, or the grown one).
 */
export function preparePortcullis({ dir, name, ids, port, template, pg }) {
  const configFile = join(dir, `${name}.config.json`);
  writeFileSync(configFile, JSON.stringify(portcullisConfig(ids), null, 2));
  let dbFile;
  if (pg === undefined) {
    dbFile = join(dir, `${name}.db`);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
    if (template !== undefined) {
      copyFileSync(template, dbFile);
      // The copy is hundreds of MB of dirty pages: written back now, not while the server is
      // measured (a checkpoint's fsync would otherwise wait behind them).
      fsyncFile(dbFile);
    }
  }
  const env = {
    ...baseEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: pg === undefined ? `sqlite:${dbFile}` : pg.databaseUrl,
    PORTCULLIS_CONFIG: configFile,
    PORTCULLIS_KEY_SECRET: ids.keySecret,
    // warn: the per-request access log (info) is off, as it would be behind a proxy that logs.
    LOG_LEVEL: 'warn',
  };
  return { configFile, dbFile, env };
}

/** Write a file's dirty pages to disk and wait for them. */
export function fsyncFile(file) {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The environment without the caller's Portcullis settings (a stray PORTCULLIS_ISSUER would break the run). */
export function baseEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('PORTCULLIS_') || key === 'DATABASE_URL' || key === 'LOG_LEVEL') delete env[key];
  env.NODE_ENV = 'production';
  return env;
}

export function authorizePath(ids, scope, state = 'bench') {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: ids.web.id,
    redirect_uri: ids.web.redirectUri,
    scope,
    state,
    code_challenge: ids.pkce.challenge,
    code_challenge_method: 'S256',
  });
  return `/authorize?${q}`;
}

function cookiesOf(res, jar) {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (value === '' || /max-age=0/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
}

function cookieHeader(jar) {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

/** Sign the bench user in through the hosted pages; returns the session cookie header and the first code. */
export async function login(base, ids) {
  const jar = new Map();
  const step = async (url, init = {}) => {
    const res = await fetch(new URL(url, base), { redirect: 'manual', ...init, headers: { ...(init.headers ?? {}), cookie: cookieHeader(jar) }, signal: AbortSignal.timeout(15_000) });
    cookiesOf(res, jar);
    return { res, text: await res.text() };
  };
  const a = await step(authorizePath(ids, REFRESH_SCOPE));
  const interaction = a.res.headers.get('location');
  if (![302, 303].includes(a.res.status) || interaction === null || !interaction.includes('/interaction/')) {
    throw new Error(`GET /authorize: expected a redirect to the login page, got ${a.res.status} ${interaction ?? a.text.slice(0, 200)}`);
  }
  const page = await step(interaction);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (page.res.status !== 200 || csrf === undefined) throw new Error(`login page: status ${page.res.status}, no csrf field`);
  const done = await step(`${interaction}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: decodeHtml(csrf), username: ids.user.username, password: ids.user.password }).toString(),
  });
  const location = done.res.headers.get('location') ?? '';
  const code = location.startsWith(ids.web.redirectUri) ? new URL(location).searchParams.get('code') : null;
  if (code === null) throw new Error(`login: expected a redirect with a code, got ${done.res.status} ${location || done.text.slice(0, 200)}`);
  const session = [...jar].filter(([k]) => k === 'portcullis.session');
  if (session.length === 0) throw new Error('login: no session cookie');
  return { cookie: cookieHeader(new Map(session)), firstCode: code };
}

function decodeHtml(s) {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/** Mint `n` authorization codes (GET /authorize with the session cookie, 16 connections). */
export async function mintCodes(base, ids, cookie, n, scope = CODE_SCOPE, timeoutMs = 300_000) {
  const codes = [];
  const bad = [];
  const result = await withTimeout(
    autocannon({
      url: base,
      connections: Math.min(16, n),
      amount: n,
      timeout: 20,
      requests: [
        {
          method: 'GET',
          path: authorizePath(ids, scope),
          headers: { cookie },
          onResponse(status, body, _ctx, headers) {
            const location = headers.location ?? headers.Location;
            const m = typeof location === 'string' ? /[?&]code=([^&]+)/.exec(location) : null;
            if (m !== null) codes.push(decodeURIComponent(m[1]));
            else if (bad.length < 3) bad.push(`${status} ${location ?? body.slice(0, 200)}`);
          },
        },
      ],
    }),
    timeoutMs,
    'minting codes',
  );
  if (codes.length < n * 0.99) throw new Error(`minting codes: ${codes.length} of ${n} (${result.non2xx} non-2xx, ${result.errors} errors): ${bad.join(' | ')}`);
  return codes;
}

/** Redeem codes for tokens (10 connections); returns the `field` of each token response. */
export async function redeemCodes(base, ids, codes, field = 'refresh_token', timeoutMs = 300_000) {
  const out = [];
  const bad = [];
  let i = 0;
  await withTimeout(
    autocannon({
      url: base,
      connections: Math.min(10, codes.length),
      amount: codes.length,
      timeout: 20,
      requests: [
        {
          method: 'POST',
          path: '/token',
          headers: { authorization: basic(ids.web), 'content-type': 'application/x-www-form-urlencoded' },
          setupRequest(req) {
            const code = codes[i++ % codes.length];
            return { ...req, body: codeBody(ids, code) };
          },
          onResponse(status, body) {
            if (status === 200) {
              const value = JSON.parse(body)[field];
              if (typeof value === 'string') return void out.push(value);
            }
            if (bad.length < 3) bad.push(`${status} ${body.slice(0, 200)}`);
          },
        },
      ],
    }),
    timeoutMs,
    'redeeming codes',
  );
  if (out.length < codes.length * 0.99) throw new Error(`redeeming codes: ${out.length} of ${codes.length}: ${bad.join(' | ')}`);
  return out;
}

export function codeBody(ids, code) {
  return new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: ids.web.redirectUri, code_verifier: ids.pkce.verifier }).toString();
}

/** The code-body template of the loader ({TOKEN} is replaced, URL-encoded). */
export function codeBodyTemplate(ids) {
  return `grant_type=authorization_code&code={TOKEN}&redirect_uri=${encodeURIComponent(ids.web.redirectUri)}&code_verifier=${encodeURIComponent(ids.pkce.verifier)}`;
}

export const REFRESH_BODY_TEMPLATE = 'grant_type=refresh_token&refresh_token={TOKEN}';

/** Await an autocannon run; fail after `ms` (the run.mjs deadline and exit handler clean up). */
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms / 1000} s`)), ms);
    }),
  ]);
}

/**
 * Add `count` refresh tokens, each with its own grant, to a stopped server's database: copies of
 * a refresh-token row and its grant row that the server wrote, with fresh ids, in one transaction.
 * `crypto`: the server's own src/core/crypto.ts, compiled (dist/core/crypto.js), so the ids have
 * exactly the shape the server gives them.
 * Returns the rows added and the time taken.
 */
export function growDatabase(dbFile, count, crypto, log = () => {}) {
  if (!existsSync(dbFile)) throw new Error(`no database at ${dbFile}`);
  const Database = require('better-sqlite3');
  const db = new Database(dbFile);
  const started = Date.now();
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const template = db.prepare("SELECT * FROM artifacts WHERE kind = 'refresh_token' AND consumed_at IS NULL AND revoked_at IS NULL LIMIT 1").get();
    if (template === undefined) throw new Error('growth: no refresh token in the database to copy');
    const grant = db.prepare('SELECT * FROM grants WHERE id = ?').get(template.grant_id);
    if (grant === undefined) throw new Error('growth: the refresh token has no grant');
    // Ids of the shape the server writes: stamped (time, then hash) when the template is.
    const stamped = template.id.length === crypto.STAMP_LENGTH + 43;
    const v7 = grant.id[14] === '7';
    const artifactColumns = Object.keys(template);
    const grantColumns = Object.keys(grant);
    const insertArtifact = db.prepare(`INSERT INTO artifacts (${artifactColumns.join(', ')}) VALUES (${artifactColumns.map((c) => `@${c}`).join(', ')})`);
    const insertGrant = db.prepare(`INSERT INTO grants (${grantColumns.join(', ')}) VALUES (${grantColumns.map((c) => `@${c}`).join(', ')})`);
    const batch = db.transaction((from, to) => {
      for (let i = from; i < to; i++) {
        // Spread the creation times over the past 10 days, as real traffic would.
        const age = i % 864_000;
        const ms = (grant.created_at - age) * 1000 + (i % 1000);
        const grantId = v7 ? crypto.uuidv7(ms) : randomUUID();
        insertGrant.run({ ...grant, id: grantId, created_at: grant.created_at - age });
        insertArtifact.run({
          ...template,
          id: stamped ? crypto.tokenId(crypto.stampedToken(ms)) : crypto.tokenId(crypto.randomToken(32)),
          grant_id: grantId,
          created_at: template.created_at - age,
          expires_at: template.expires_at - age,
        });
      }
    });
    const step = 100_000;
    for (let from = 0; from < count; from += step) {
      batch(from, Math.min(count, from + step));
      log(`  growth: ${Math.min(count, from + step).toLocaleString('en-US')} refresh tokens written (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    const rows = db.prepare("SELECT count(*) AS n FROM artifacts WHERE kind = 'refresh_token'").get().n;
    return { added: count, refreshTokens: rows, seconds: (Date.now() - started) / 1000 };
  } finally {
    db.close();
  }
}
