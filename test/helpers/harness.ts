import assert from 'node:assert/strict';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import type { OAuthRequest, OAuthResponse } from '../../src/core/http.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import type { Storage } from '../../src/storage/contract.js';

export const ISSUER = 'http://127.0.0.1:3000';

/** A clock tests can move. */
export function testClock(start = 1_800_000_000): { now: () => number; advance(seconds: number): void; set(t: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(seconds) {
      t += seconds;
    },
    set(value) {
      t = value;
    },
  };
}

export interface Harness {
  portcullis: Portcullis;
  storage: Storage;
  clock: ReturnType<typeof testClock>;
  /** POST a form to a path, with optional Basic credentials. */
  post(path: string, form: Record<string, string> | string, options?: { basic?: [string, string]; headers?: Record<string, string> }): Promise<OAuthResponse>;
  get(path: string): Promise<OAuthResponse>;
  json(res: OAuthResponse): Record<string, unknown>;
  close(): Promise<void>;
}

/** Standard fixture clients: a confidential service, a confidential web app with refresh, a public app. */
export async function createHarness(options: Partial<PortcullisOptions> = {}, storage: Storage = createMemoryStorage()): Promise<Harness> {
  const clock = testClock();
  const portcullis = await createPortcullis({ issuer: ISSUER, storage, clock: clock.now, grants: { password: true }, ...options });
  await portcullis.clients.upsert({ client_id: 'svc1', client_secret: 'svc1-secret-0123456789', grant_types: ['client_credentials'], scope: 'api:read api:write' });
  await portcullis.clients.upsert({ client_id: 'svc2', client_secret: 'svc2-secret-0123456789', grant_types: ['client_credentials'], scope: 'api:read' });
  await portcullis.clients.upsert({ client_id: 'web1', client_secret: 'web1-secret-0123456789', grant_types: ['password', 'refresh_token'], scope: 'openid profile api:read api:write offline_access' });
  await portcullis.clients.upsert({ client_id: 'web2', client_secret: 'web2-secret-0123456789', grant_types: ['password', 'refresh_token'], scope: 'api:read' });
  await portcullis.clients.upsert({ client_id: 'spa1', token_endpoint_auth_method: 'none', grant_types: ['password', 'refresh_token'], scope: 'api:read api:write' });
  await portcullis.clients.upsert({ client_id: 'post1', client_secret: 'post1-secret-0123456789', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api:read' });
  await portcullis.clients.upsert({ client_id: 'rs1', client_secret: 'rs1-secret-0123456789', grant_types: ['client_credentials'], resource_server_audiences: [ISSUER] });
  await portcullis.users.upsert({ username: 'alice', password: 'alice-password', claims: { email: 'alice@example.com' } });
  await portcullis.users.upsert({ username: 'bob', password: 'bob-password' });
  const encode = (form: Record<string, string> | string): string => (typeof form === 'string' ? form : new URLSearchParams(form).toString());
  return {
    portcullis,
    storage,
    clock,
    post(path, form, opts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers };
      if (opts.basic) headers.authorization = basicAuth(...opts.basic);
      const req: OAuthRequest = { method: 'POST', path, query: '', headers, body: encode(form) };
      return portcullis.handle(req);
    },
    get(path) {
      return portcullis.handle({ method: 'GET', path, query: '', headers: {} });
    },
    json(res) {
      return JSON.parse(res.body) as Record<string, unknown>;
    },
    close: () => portcullis.close(),
  };
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before base64. */
export function basicAuth(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

export const SVC1: [string, string] = ['svc1', 'svc1-secret-0123456789'];
export const SVC2: [string, string] = ['svc2', 'svc2-secret-0123456789'];
export const WEB1: [string, string] = ['web1', 'web1-secret-0123456789'];
export const WEB2: [string, string] = ['web2', 'web2-secret-0123456789'];
export const RS1: [string, string] = ['rs1', 'rs1-secret-0123456789'];

/**
 * Every error response: the status, the RFC 6749 §5.2 JSON shape, the exact code, no-store headers,
 * a description in the allowed character set, and nothing internal.
 */
export function assertOAuthError(res: OAuthResponse, status: number, error: string): Record<string, unknown> {
  assert.equal(res.status, status, `status for ${res.body}`);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers.pragma, 'no-cache');
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal(body.error, error, `error in ${res.body}`);
  if (body.error_description !== undefined) {
    assert.match(String(body.error_description), /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/);
  }
  assert.doesNotMatch(res.body, /\bat \S+ \(|\.ts:\d+|node_modules|SELECT |Error:/);
  if (status === 401) assert.match(res.headers['www-authenticate'] ?? '', /^Basic realm="/);
  return body;
}

/** Token success: 200, no-store, Bearer, expires_in. */
export function assertTokenResponse(res: OAuthResponse): Record<string, unknown> {
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers.pragma, 'no-cache');
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.equal(typeof body.access_token, 'string');
  assert.equal(body.token_type, 'Bearer');
  assert.equal(typeof body.expires_in, 'number');
  return body;
}
