/**
 * In-process helpers for the device flow: the standard harness plus device clients, a device (POSTs to
 * /device_authorization and /token) and a browser (cookie jar, source address, CSRF scraped from pages).
 */
import assert from 'node:assert/strict';
import type { OAuthRequest, OAuthResponse } from '../../src/core/http.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import { DEVICE_CODE_GRANT_TYPE } from '../../src/device/state.js';
import type { ArtifactKind, Storage } from '../../src/storage/contract.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { basicAuth, createHarness, type Harness } from '../helpers/harness.js';

export const DEVICE_GRANT = DEVICE_CODE_GRANT_TYPE;
export const ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_SHAPE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

export interface DeviceClient {
  id: string;
  /** Absent for public clients (client_id in the body). */
  secret?: string;
}

/** Confidential, with refresh tokens and OpenID scopes. */
export const TV1: DeviceClient = { id: 'tv1', secret: 'tv1-secret-0123456789' };
/** Confidential, no refresh_token grant. */
export const TV2: DeviceClient = { id: 'tv2', secret: 'tv2-secret-0123456789' };
/** Public (token_endpoint_auth_method none). */
export const CLI1: DeviceClient = { id: 'cli1' };
export const ALICE = { username: 'alice', password: 'alice-password' };
export const BOB = { username: 'bob', password: 'bob-password' };

/** Counts storage reads per artifact kind, so tests can tell whether a code was looked up. */
export interface CountingStorage extends Storage {
  finds: Record<string, number>;
}

export function countingStorage(inner: Storage = createMemoryStorage()): CountingStorage {
  const finds: Record<string, number> = {};
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'finds') return finds;
      if (prop === 'findArtifact') {
        return (kind: ArtifactKind, id: string, now: number) => {
          finds[kind] = (finds[kind] ?? 0) + 1;
          return target.findArtifact(kind, id, now);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as CountingStorage;
}

/** The standard harness plus the device clients. */
export async function createDeviceHarness(options: Partial<PortcullisOptions> = {}, storage: Storage = createMemoryStorage()): Promise<Harness> {
  const h = await createHarness(options, storage);
  const c = h.portcullis.clients;
  await c.upsert({ client_id: TV1.id, client_secret: TV1.secret, client_name: 'Living Room TV', grant_types: [DEVICE_GRANT, 'refresh_token'], scope: 'openid profile offline_access api:read' });
  await c.upsert({ client_id: TV2.id, client_secret: TV2.secret, grant_types: [DEVICE_GRANT], scope: 'api:read api:write' });
  await c.upsert({ client_id: CLI1.id, token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], scope: 'api:read' });
  return h;
}

function clientAuth(client: DeviceClient, form: Record<string, string>): { form: Record<string, string>; basic?: [string, string] } {
  if (client.secret === undefined) return { form: { ...form, client_id: client.id } };
  return { form, basic: [client.id, client.secret] };
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** POST /device_authorization as `client`. */
export function requestDeviceAuthorization(h: Harness, client: DeviceClient, form: Record<string, string> = {}): Promise<OAuthResponse> {
  const { form: body, basic } = clientAuth(client, form);
  return h.post('/device_authorization', body, basic !== undefined ? { basic } : {});
}

/** A successful device authorization. */
export async function authorizeDevice(h: Harness, client: DeviceClient, scope?: string): Promise<DeviceAuthorization> {
  const res = await requestDeviceAuthorization(h, client, scope === undefined ? {} : { scope });
  assert.equal(res.status, 200, res.body);
  return h.json(res) as unknown as DeviceAuthorization;
}

/** One poll of the token endpoint. */
export function poll(h: Harness, client: DeviceClient, deviceCode: string, extra: Record<string, string> = {}): Promise<OAuthResponse> {
  const { form, basic } = clientAuth(client, { grant_type: DEVICE_GRANT, device_code: deviceCode, ...extra });
  return h.post('/token', form, basic !== undefined ? { basic } : {});
}

/** The `error` of a JSON error response (asserting its status). */
export function errorOf(res: OAuthResponse, status = 400): string {
  assert.equal(res.status, status, res.body);
  return String((JSON.parse(res.body) as { error?: unknown }).error);
}

/** A browser: a cookie jar fed from Set-Cookie, a source address, and form helpers. */
export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(
    private readonly h: Harness,
    readonly ip = '192.0.2.10',
  ) {}

  private cookieHeader(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(res: OAuthResponse): OAuthResponse {
    for (const line of res.setCookies ?? []) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async get(path: string, query = ''): Promise<OAuthResponse> {
    const cookie = this.cookieHeader();
    const req: OAuthRequest = { method: 'GET', path, query, headers: cookie === undefined ? {} : { cookie }, ip: this.ip };
    return this.remember(await this.h.portcullis.handle(req));
  }

  async post(path: string, form: Record<string, string>): Promise<OAuthResponse> {
    const cookie = this.cookieHeader();
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (cookie !== undefined) headers.cookie = cookie;
    const req: OAuthRequest = { method: 'POST', path, query: '', headers, body: new URLSearchParams(form).toString(), ip: this.ip };
    return this.remember(await this.h.portcullis.handle(req));
  }

  /** GET /device (loads the cookie), then POST the code with the page's CSRF token. */
  async enterCode(userCode: string): Promise<OAuthResponse> {
    const page = await this.get('/device');
    assert.equal(page.status, 200);
    return this.post('/device', { csrf: csrfOf(page), user_code: userCode });
  }

  /** Enter the code, sign in if asked: returns the confirmation page. */
  async reachConfirm(userCode: string, user = ALICE): Promise<OAuthResponse> {
    let res = await this.enterCode(userCode);
    if (formAction(res) === 'http://127.0.0.1:3000/device/login') {
      res = await this.post('/device/login', { csrf: csrfOf(res), username: user.username, password: user.password });
    }
    assert.equal(res.status, 200, res.body.slice(0, 2000));
    assert.equal(formAction(res), 'http://127.0.0.1:3000/device/confirm');
    return res;
  }

  /** Enter the code, sign in if asked, and decide. Returns the final page. */
  async decide(userCode: string, decision: 'approve' | 'deny', user = ALICE): Promise<OAuthResponse> {
    const confirm = await this.reachConfirm(userCode, user);
    return this.post('/device/confirm', { csrf: csrfOf(confirm), decision });
  }
}

/** The hidden csrf field of a page. */
export function csrfOf(res: OAuthResponse): string {
  const m = /<input type="hidden" name="csrf" value="([^"]*)">/.exec(res.body);
  assert.ok(m, `a csrf field in ${res.body.slice(0, 1500)}`);
  return m[1]!.replace(/&amp;/g, '&');
}

/** The action of the page's (first) form. */
export function formAction(res: OAuthResponse): string | undefined {
  return /<form method="post" action="([^"]*)">/.exec(res.body)?.[1];
}

/** The text of the page's alert, if any. */
export function alertOf(res: OAuthResponse): string | undefined {
  return /role="alert">([^<]*)</.exec(res.body)?.[1];
}

/** Every hosted page: the anti-framing, no-cache, no-referrer headers and a nonce'd CSP. */
export function assertPageHeaders(res: OAuthResponse): void {
  assert.match(res.headers['content-type'] ?? '', /^text\/html; charset=utf-8/);
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  const csp = res.headers['content-security-policy'] ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /form-action 'self';/);
}

export { basicAuth };
