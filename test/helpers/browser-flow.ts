/**
 * An in-process "browser" for the authorization code flow: a cookie jar fed from `res.setCookies`
 * (path-scoped, Max-Age=0 deletes), `cookie` headers on every request, and helpers that walk
 * GET /authorize → GET /interaction/<uid> → POST login (csrf scraped from the page) → POST consent.
 * Every HTML response that passes through it is checked for the anti-framing headers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { OAuthRequest, OAuthResponse } from '../../src/core/http.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import type { Storage } from '../../src/storage/contract.js';
import { basicAuth, createHarness, ISSUER, type Harness } from './harness.js';

export const WEB1_CB = 'https://web1.test/cb';
export const WEB1_LOGGED_OUT = 'https://web1.test/logged-out';
export const WEB2_CB = 'https://web2.test/cb';
export const WEB2_CB2 = 'https://web2.test/cb2';
export const SPA1_CB = 'https://spa1.test/cb';
export const NAT1_CB = 'http://127.0.0.1/cb';
export const RP256_CB = 'https://rp256.test/cb';

export interface ClientCreds {
  id: string;
  /** Absent for public clients (client_id in the body). */
  secret?: string;
}

export const WEB1: ClientCreds = { id: 'web1', secret: 'web1-secret-0123456789' };
export const WEB2: ClientCreds = { id: 'web2', secret: 'web2-secret-0123456789' };
export const SPA1: ClientCreds = { id: 'spa1' };
export const NAT1: ClientCreds = { id: 'nat1' };
export const RP256: ClientCreds = { id: 'rp256', secret: 'rp256-secret-0123456789' };
export const RS1: ClientCreds = { id: 'rs1', secret: 'rs1-secret-0123456789' };
export const SVC1: ClientCreds = { id: 'svc1', secret: 'svc1-secret-0123456789' };

export const ALICE = { username: 'alice', password: 'alice-password' };

/** The standard harness plus the code-flow clients (web1 and web2 are re-registered for the code flow). */
export async function createFlowHarness(options: Partial<PortcullisOptions> = {}, storage?: Storage): Promise<Harness> {
  const h = await createHarness(options, ...(storage !== undefined ? [storage] : []));
  const c = h.portcullis.clients;
  await c.upsert({
    client_id: WEB1.id,
    client_secret: WEB1.secret,
    redirect_uris: [WEB1_CB],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access api:read',
    post_logout_redirect_uris: [WEB1_LOGGED_OUT],
  });
  await c.upsert({
    client_id: WEB2.id,
    client_secret: WEB2.secret,
    redirect_uris: [WEB2_CB, WEB2_CB2],
    grant_types: ['authorization_code'],
    scope: 'openid profile email api:read',
  });
  await c.upsert({
    client_id: SPA1.id,
    token_endpoint_auth_method: 'none',
    redirect_uris: [SPA1_CB],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid offline_access api:read',
  });
  await c.upsert({ client_id: NAT1.id, token_endpoint_auth_method: 'none', redirect_uris: [NAT1_CB], grant_types: ['authorization_code'], scope: 'openid api:read' });
  await c.upsert({
    client_id: RP256.id,
    client_secret: RP256.secret,
    redirect_uris: [RP256_CB],
    grant_types: ['authorization_code'],
    scope: 'openid profile email',
    id_token_signed_response_alg: 'RS256',
  });
  return h;
}

/** Run `fn` with a fresh flow harness, closed afterwards. */
export async function withHarness<T>(options: Partial<PortcullisOptions>, fn: (h: Harness) => Promise<T>): Promise<T> {
  const h = await createFlowHarness(options);
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/** A fresh PKCE pair: a 43-character verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: s256(verifier) };
}

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** Every hosted HTML page: no framing (X-Frame-Options and CSP frame-ancestors). */
export function assertPageSecurity(res: OAuthResponse): void {
  assert.match(res.headers['content-type'] ?? '', /^text\/html/);
  assert.equal(res.headers['x-frame-options'], 'DENY', 'x-frame-options on an HTML page');
  assert.match(res.headers['content-security-policy'] ?? '', /(?:^|;\s*)frame-ancestors 'none'(?:;|$)/, 'CSP frame-ancestors on an HTML page');
}

function isHtml(res: OAuthResponse): boolean {
  return /^text\/html/i.test(res.headers['content-type'] ?? '');
}

/** An HTML error page: the status, no redirect, no Location, the error code shown. */
export function assertErrorPage(res: OAuthResponse, status: number, error = 'invalid_request'): void {
  assert.equal(res.status, status, `status (body: ${res.body.slice(0, 300)}, location: ${res.headers.location})`);
  assert.equal(res.headers.location, undefined, 'an error page must not redirect');
  assertPageSecurity(res);
  assert.ok(res.body.includes(`<code>${error}</code>`), `error page shows ${error}: ${res.body.slice(0, 2000)}`);
}

/**
 * A redirect to the client: status, the Location starts with `redirectUri?`, its query has exactly
 * the keys of `expected` (a string value must match exactly; `true` means present, any value).
 */
export function assertClientRedirect(res: OAuthResponse, status: number, redirectUri: string, expected: Record<string, string | true>): URLSearchParams {
  assert.equal(res.status, status, `status (body: ${res.body.slice(0, 300)}, location: ${res.headers.location})`);
  const location = res.headers.location;
  assert.ok(location !== undefined, 'a Location header');
  const prefix = redirectUri + (redirectUri.includes('?') ? '&' : '?');
  assert.ok(location.startsWith(prefix), `Location ${location} starts with ${prefix}`);
  assert.ok(!location.includes('#'), 'no fragment in the Location');
  const query = new URLSearchParams(location.slice(prefix.length));
  const keys = [...query.keys()];
  assert.deepEqual([...keys].sort(), Object.keys(expected).sort(), `query keys of ${location}`);
  assert.equal(new Set(keys).size, keys.length, 'no repeated query key');
  for (const [k, v] of Object.entries(expected)) if (v !== true) assert.equal(query.get(k), v, `${k} in ${location}`);
  return query;
}

/** An error redirect: exactly {error, error_description, state?, iss} with iss = the issuer. */
export function assertErrorRedirect(res: OAuthResponse, status: number, redirectUri: string, error: string, state?: string): URLSearchParams {
  const expected: Record<string, string | true> = { error, error_description: true, iss: ISSUER };
  if (state !== undefined) expected.state = state;
  return assertClientRedirect(res, status, redirectUri, expected);
}

/** A redirect to the hosted interaction page; returns its path. */
export function assertToInteraction(res: OAuthResponse, status: number): string {
  assert.equal(res.status, status, `status (body: ${res.body.slice(0, 300)}, location: ${res.headers.location})`);
  const location = res.headers.location ?? '';
  const m = /^http:\/\/127\.0\.0\.1:3000(\/interaction\/[0-9a-f-]{36})$/.exec(location);
  assert.ok(m !== null, `Location ${location} is the interaction page`);
  return m[1]!;
}

/** The value of the hidden csrf input of a page. */
export function scrapeCsrf(page: OAuthResponse): string {
  const m = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(page.body);
  assert.ok(m !== null, 'the page has a csrf input');
  return m[1]!;
}

/** The action of the page's form (HTML-unescaped). */
export function scrapeAction(page: OAuthResponse): string {
  const m = /<form method="post" action="([^"]+)">/.exec(page.body);
  assert.ok(m !== null, 'the page has a POST form');
  return m[1]!.replace(/&amp;/g, '&').replace(/&#x2F;/g, '/').replace(/&#39;/g, "'").replace(/&quot;/g, '"');
}

export function isLoginPage(page: OAuthResponse): boolean {
  return page.status === 200 && /<h1>Sign in<\/h1>/.test(page.body) && /action="[^"]*\/login"/.test(page.body);
}

export function isConsentPage(page: OAuthResponse): boolean {
  return page.status === 200 && /action="[^"]*\/consent"/.test(page.body) && page.body.includes('value="approve"');
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** A minimal browser against the in-process server. */
export class Browser {
  readonly #jar = new Map<string, StoredCookie>();
  /** Every response seen, for assertions over all pages. */
  readonly responses: OAuthResponse[] = [];

  constructor(readonly h: Harness) {}

  /** A request to a path or an absolute URL on the issuer, with the jar's cookies. */
  async request(method: string, target: string, options: { form?: Record<string, string> | string; headers?: Record<string, string>; cookies?: boolean } = {}): Promise<OAuthResponse> {
    const url = new URL(target, ISSUER + '/');
    assert.equal(url.origin, new URL(ISSUER).origin, `the browser only talks to the issuer (${target})`);
    const headers: Record<string, string> = {};
    const cookie = options.cookies === false ? undefined : this.cookieHeader(url.pathname);
    if (cookie !== undefined) headers.cookie = cookie;
    let body: string | undefined;
    if (options.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = typeof options.form === 'string' ? options.form : new URLSearchParams(options.form).toString();
    }
    Object.assign(headers, options.headers);
    const req: OAuthRequest = { method, path: url.pathname, query: url.search.replace(/^\?/, ''), headers, ...(body !== undefined ? { body } : {}) };
    const res = await this.h.portcullis.handle(req);
    this.responses.push(res);
    if (isHtml(res)) assertPageSecurity(res);
    this.store(res.setCookies ?? []);
    return res;
  }

  get(target: string, options: { headers?: Record<string, string>; cookies?: boolean } = {}): Promise<OAuthResponse> {
    return this.request('GET', target, options);
  }

  post(target: string, form: Record<string, string> | string, options: { headers?: Record<string, string>; cookies?: boolean } = {}): Promise<OAuthResponse> {
    return this.request('POST', target, { ...options, form });
  }

  /** GET (or form POST) /authorize with these parameters. */
  authorize(params: Record<string, string>, method: 'GET' | 'POST' = 'GET'): Promise<OAuthResponse> {
    const encoded = new URLSearchParams(params).toString();
    return method === 'GET' ? this.get(`/authorize?${encoded}`) : this.post('/authorize', encoded);
  }

  /** Follow a redirect to the interaction page and return the page. */
  async openInteraction(res: OAuthResponse): Promise<OAuthResponse> {
    const location = res.headers.location;
    assert.ok(location !== undefined && location.startsWith(`${ISSUER}/interaction/`), `redirect to the interaction page, got ${res.status} ${location} ${res.body.slice(0, 300)}`);
    return this.get(location);
  }

  /** Submit the login form of a page. */
  login(page: OAuthResponse, username = ALICE.username, password = ALICE.password): Promise<OAuthResponse> {
    assert.ok(isLoginPage(page), `a login page, got ${page.status}: ${page.body.slice(0, 500)}`);
    return this.post(scrapeAction(page), { csrf: scrapeCsrf(page), username, password });
  }

  /** Submit the consent form of a page. */
  consent(page: OAuthResponse, decision: 'approve' | 'deny' = 'approve'): Promise<OAuthResponse> {
    assert.ok(isConsentPage(page), `a consent page, got ${page.status}: ${page.body.slice(0, 500)}`);
    return this.post(scrapeAction(page), { csrf: scrapeCsrf(page), decision });
  }

  /**
   * Run the whole flow from /authorize: sign in when the login page shows, answer the consent page,
   * until a response that does not lead back to the interaction pages. Returns that response.
   */
  async run(params: Record<string, string>, options: { method?: 'GET' | 'POST'; decision?: 'approve' | 'deny'; username?: string; password?: string } = {}): Promise<OAuthResponse> {
    let res = await this.authorize(params, options.method ?? 'GET');
    for (let step = 0; step < 6; step++) {
      const location = res.headers.location;
      if (location === undefined || !location.startsWith(`${ISSUER}/interaction/`)) return res;
      const page = await this.get(location);
      if (isLoginPage(page)) res = await this.login(page, options.username, options.password);
      else if (isConsentPage(page)) res = await this.consent(page, options.decision ?? 'approve');
      else assert.fail(`unexpected interaction page ${page.status}: ${page.body.slice(0, 500)}`);
    }
    assert.fail('the flow did not finish');
  }

  /** Run the flow and return the code from the client redirect (asserting code, state, iss). */
  async code(params: Record<string, string>, options: { method?: 'GET' | 'POST' } = {}): Promise<string> {
    const res = await this.run(params, options);
    const redirectUri = params.redirect_uri ?? assert.fail('code(): pass redirect_uri');
    const expected: Record<string, string | true> = { code: true, iss: ISSUER };
    if (params.state !== undefined) expected.state = params.state;
    const q = assertClientRedirect(res, options.method === 'POST' || res.status === 303 ? 303 : 302, redirectUri, expected);
    return q.get('code')!;
  }

  cookie(name: string): string | undefined {
    for (const c of this.#jar.values()) if (c.name === name) return c.value;
    return undefined;
  }

  /** Remove a cookie from the jar (all paths). */
  dropCookie(name: string): void {
    for (const [k, c] of this.#jar) if (c.name === name) this.#jar.delete(k);
  }

  /** Put a cookie in the jar (e.g. to replay an old one). */
  setCookie(name: string, value: string, path = '/'): void {
    this.#jar.set(`${name}\u0000${path}`, { name, value, path });
  }

  cookieHeader(path: string): string | undefined {
    const matching = [...this.#jar.values()]
      .filter((c) => c.path === '/' || path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : c.path + '/'))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length === 0 ? undefined : matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  private store(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      assert.ok(eq > 0, `Set-Cookie ${line}`);
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let maxAge: number | undefined;
      for (const a of attrs) {
        const [k = '', v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'max-age') maxAge = Number(v);
      }
      const key = `${name}\u0000${path}`;
      if (maxAge !== undefined && maxAge <= 0) this.#jar.delete(key);
      else this.#jar.set(key, { name, value, path });
    }
  }
}

/** Standard authorization parameters for a client (PKCE S256 with the given challenge). */
export function authParams(clientId: string, redirectUri: string, challenge: string, extra: Record<string, string> = {}): Record<string, string> {
  return { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 'st-123', ...extra };
}

/** POST /token grant_type=authorization_code. */
export function redeem(h: Harness, client: ClientCreds, form: Record<string, string>, options: { basic?: [string, string] } = {}): Promise<OAuthResponse> {
  const body: Record<string, string> = { grant_type: 'authorization_code', ...form };
  if (options.basic !== undefined) return h.post('/token', body, { basic: options.basic });
  if (client.secret === undefined) return h.post('/token', { ...body, client_id: client.id });
  return h.post('/token', body, { basic: [client.id, client.secret] });
}

/** POST /token grant_type=refresh_token. */
export function refresh(h: Harness, client: ClientCreds, refreshToken: string): Promise<OAuthResponse> {
  const body: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken };
  if (client.secret === undefined) return h.post('/token', { ...body, client_id: client.id });
  return h.post('/token', body, { basic: [client.id, client.secret] });
}

/** POST /introspect as the resource server rs1 (the token's audience is the issuer); returns `active`. */
export async function isActive(h: Harness, token: string): Promise<boolean> {
  const res = await h.post('/introspect', { token }, { basic: [RS1.id, RS1.secret!] });
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as { active: boolean }).active;
}

/** A userinfo call with a bearer header. */
export function userinfo(h: Harness, token: string, method: 'GET' | 'POST' = 'GET'): Promise<OAuthResponse> {
  return h.portcullis.handle({ method, path: '/userinfo', query: '', headers: { authorization: `Bearer ${token}` } });
}

export { basicAuth, ISSUER };
