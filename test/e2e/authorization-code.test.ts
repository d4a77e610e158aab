/**
 * End to end: the authorization code flow of the ready-to-run server (`npm start`, in a child
 * process) with its hosted login and consent pages, driven by a real browser (headless Chromium
 * through playwright-core) and a real relying party (openid-client v6).
 *
 * A tiny relying party listens on 127.0.0.1: its callbacks record every request (query or form
 * body) and answer 200 "ok"; openid-client then validates the authorization response and redeems
 * the code exactly as an application would.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import type { Cookie, Page, Response as PageResponse } from 'playwright-core';
import { newPage, screenshot } from '../helpers/browser.js';
import { HOST, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const WEB = {
  id: 'web',
  secret: 'web-secret-0123456789-abcdefghij',
  name: 'Acme Web',
  scope: 'openid profile email offline_access api:read',
};
const SPA = { id: 'spa', scope: 'openid profile email offline_access' };
const ALICE = {
  username: 'alice',
  password: 'alice-password-123',
  id: 'user-alice',
  claims: { name: 'Alice Example', email: 'alice@example.com', email_verified: true },
};
/** What UserInfo releases for `openid profile email`: profile adds preferred_username (the username). */
const PROFILE_AND_EMAIL = { sub: ALICE.id, name: ALICE.claims.name, preferred_username: ALICE.username, email: ALICE.claims.email, email_verified: true };
const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api:read'];

const PATHS = { webCallback: '/web/callback', spaCallback: '/spa/callback', webLoggedOut: '/web/logged-out' } as const;
const AUTH_RESPONSE_KEYS = new Set(['code', 'state', 'iss']);
const AUTH_ERROR_KEYS = new Set(['error', 'error_description', 'state', 'iss']);
const INTERACTION_PATH = /^\/interaction\/[0-9a-f-]{36}(?:\/(?:login|consent))?$/;

let server: SpawnedServer;
let issuer: string;

// ---------------------------------------------------------------------------------------------
// The relying party: records every hit on its routes, answers 200 "ok".

interface Hit {
  method: string;
  /** The full request URL, as the browser asked for it. */
  url: URL;
  contentType: string | undefined;
  body: string;
}

const hits: Hit[] = [];
let rp: Server;
let rpOrigin: string;
const rpUrl = (path: string): string => `${rpOrigin}${path}`;

function startRelyingParty(): Promise<void> {
  rp = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', rpOrigin);
      if (!(Object.values(PATHS) as string[]).includes(url.pathname)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      hits.push({ method: req.method ?? '', url, contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(url.pathname === PATHS.webLoggedOut ? 'logged out' : 'ok');
    });
  });
  return new Promise((resolve, reject) => {
    rp.once('error', reject);
    rp.listen(0, HOST, () => {
      rpOrigin = `http://${HOST}:${(rp.address() as AddressInfo).port}`;
      resolve();
    });
  });
}

/** The authorization response parameters of a hit: the query (GET) or the form body (form_post). */
function paramsOf(hit: Hit): URLSearchParams {
  return hit.method === 'POST' ? new URLSearchParams(hit.body) : hit.url.searchParams;
}

/** The one callback hit that carries this state. */
function callbackHit(state: string): Hit {
  const found = hits.filter((h) => paramsOf(h).get('state') === state);
  assert.equal(found.length, 1, `exactly one callback with state ${state}; hits: ${hits.map((h) => `${h.method} ${h.url.href}`).join(', ')}`);
  return found[0]!;
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  await startRelyingParty();
  server = await spawnServer({
    config: ({ issuer: iss }) => ({
      issuer: iss,
      scopes: SCOPES,
      clients: [
        {
          client_id: WEB.id,
          client_secret: WEB.secret,
          client_name: WEB.name,
          token_endpoint_auth_method: 'client_secret_basic',
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: [rpUrl(PATHS.webCallback)],
          post_logout_redirect_uris: [rpUrl(PATHS.webLoggedOut)],
          scope: WEB.scope,
          id_token_signed_response_alg: 'ES256',
        },
        {
          client_id: SPA.id,
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: [rpUrl(PATHS.spaCallback)],
          scope: SPA.scope,
        },
      ],
      users: [{ username: ALICE.username, password: ALICE.password, id: ALICE.id, claims: ALICE.claims }],
    }),
  });
  issuer = server.issuer;
});

after(async () => {
  await server?.stop();
  if (rp !== undefined) {
    rp.closeAllConnections();
    await new Promise<void>((resolve) => rp.close(() => resolve()));
  }
});

// ---------------------------------------------------------------------------------------------
// openid-client and raw HTTP helpers

async function webConfig(): Promise<client.Configuration> {
  const config = await client.discovery(new URL(issuer), WEB.id, { id_token_signed_response_alg: 'ES256' }, client.ClientSecretBasic(WEB.secret), {
    execute: [client.allowInsecureRequests],
  });
  // Also verify the JWS signature of every ID token against the JWKS (openid-client trusts TLS otherwise).
  client.enableNonRepudiationChecks(config);
  return config;
}

async function spaConfig(): Promise<client.Configuration> {
  const config = await client.discovery(new URL(issuer), SPA.id, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  client.enableNonRepudiationChecks(config);
  return config;
}

interface Pending {
  url: URL;
  redirectUri: string;
  state: string;
  nonce: string;
  pkceCodeVerifier: string;
}

async function startAuthorization(config: client.Configuration, redirectUri: string, scope: string, extra: Record<string, string> = {}): Promise<Pending> {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  assert.equal(url.origin, new URL(issuer).origin);
  return { url, redirectUri, state, nonce, pkceCodeVerifier };
}

function redeem(config: client.Configuration, pending: Pending, response: URL | Request): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers> {
  return client.authorizationCodeGrant(config, response, {
    pkceCodeVerifier: pending.pkceCodeVerifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
    idTokenExpected: true,
  });
}

function basicAuth(id: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

function postForm(path: string, form: Record<string, string>, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization !== undefined) headers.authorization = authorization;
  return fetch(new URL(path, server.url), { method: 'POST', headers, body: new URLSearchParams(form).toString() });
}

async function introspect(token: string, hint?: string): Promise<Record<string, unknown>> {
  const res = await postForm('/introspect', { token, ...(hint !== undefined ? { token_type_hint: hint } : {}) }, basicAuth(WEB.id, WEB.secret));
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

/** openid-client turns an OAuth error response into a ResponseBodyError. */
function oauthError(error: string, status: number): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof client.ResponseBodyError, `expected a ResponseBodyError, got ${String(err)}`);
    assert.equal(err.error, error);
    assert.equal(err.status, status);
    return true;
  };
}

/** An error in the authorization response: openid-client throws an AuthorizationResponseError. */
function authorizationError(error: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof client.AuthorizationResponseError, `expected an AuthorizationResponseError, got ${String(err)}`);
    assert.equal(err.error, error);
    return true;
  };
}

/** OIDC Core §3.1.3.6: left half of SHA-256 of the access token, base64url. */
function atHash(accessToken: string): string {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Browser steps

function isInteraction(url: string): boolean {
  const u = new URL(url);
  return u.origin === new URL(server.url).origin && INTERACTION_PATH.test(u.pathname);
}

async function assertOnLoginPage(page: Page): Promise<void> {
  assert.ok(isInteraction(page.url()), `expected the login page, at ${page.url()}`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

async function fillLogin(page: Page, password = ALICE.password): Promise<void> {
  await page.locator('input[name=username]').fill(ALICE.username);
  await page.locator('input[name=password]').fill(password);
}

/** Submit the login form; resolves with the response to the POST. */
async function submitLogin(page: Page): Promise<PageResponse> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/login')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return response;
}

async function waitForConsent(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  assert.ok(isInteraction(page.url()), `expected the consent page, at ${page.url()}`);
}

async function waitForUrl(page: Page, prefix: string): Promise<URL> {
  await page.waitForURL((u) => u.href.startsWith(prefix));
  return new URL(page.url());
}

async function sessionCookie(page: Page): Promise<Cookie | undefined> {
  return (await page.context().cookies(issuer)).find((c) => c.name === 'portcullis.session');
}

/** Sign in and allow: the browser ends at the client's callback. Returns the recorded callback URL. */
async function signInAndAllow(page: Page, pending: Pending): Promise<Hit> {
  await page.goto(pending.url.href);
  await assertOnLoginPage(page);
  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  await page.getByRole('button', { name: 'Allow' }).click();
  await waitForUrl(page, pending.redirectUri);
  return callbackHit(pending.state);
}

function assertKeys(params: URLSearchParams, allowed: ReadonlySet<string>, required: readonly string[]): void {
  const keys = [...params.keys()];
  assert.equal(new Set(keys).size, keys.length, `no parameter twice: ${params.toString()}`);
  for (const key of keys) assert.ok(allowed.has(key), `unexpected parameter ${key} in ${params.toString()}`);
  for (const key of required) assert.ok(params.has(key), `missing parameter ${key} in ${params.toString()}`);
}

// ---------------------------------------------------------------------------------------------

test('confidential client: login, consent, code + PKCE + nonce redeemed by openid-client; userinfo, refresh rotation, RP-initiated logout; then prompt=none is login_required', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pending = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope);

  // 1. /authorize → 302 → the login page.
  await page.goto(pending.url.href);
  await assertOnLoginPage(page);
  assert.match(await page.locator('main').innerText(), /to continue to Acme Web/);
  await screenshot(page, 'login');

  // 2. Sign in → the consent page names the client, the user and the scopes.
  await fillLogin(page);
  const loginPost = await submitLogin(page);
  assert.equal(loginPost.status(), 303);
  await waitForConsent(page);
  const consentText = await page.locator('main').innerText();
  assert.match(consentText, /Acme Web wants to access your account/);
  assert.match(consentText, /Signed in as Alice Example/);
  for (const scope of WEB.scope.split(' ')) assert.ok(consentText.includes(scope), `consent page lists ${scope}`);
  await screenshot(page, 'consent');

  // 3. Allow → the callback with code, state and iss.
  await page.getByRole('button', { name: 'Allow' }).click();
  await waitForUrl(page, pending.redirectUri);
  assert.equal(await page.locator('body').innerText(), 'ok');
  const hit = callbackHit(pending.state);
  assert.equal(hit.method, 'GET');
  assertKeys(hit.url.searchParams, AUTH_RESPONSE_KEYS, ['code', 'state', 'iss']);
  assert.equal(hit.url.searchParams.get('iss'), issuer);

  // 4. openid-client checks state and iss, redeems the code with the verifier, validates the ID token.
  const tokens = await redeem(config, pending, hit.url);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(typeof tokens.access_token, 'string');
  assert.equal(typeof tokens.refresh_token, 'string', 'offline_access was granted: a refresh token');
  assert.equal(typeof tokens.id_token, 'string');
  if (tokens.scope !== undefined) assert.deepEqual(tokens.scope.split(' ').sort(), WEB.scope.split(' ').sort());
  const claims = tokens.claims();
  assert.ok(claims !== undefined);
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, WEB.id);
  assert.equal(claims.sub, ALICE.id);
  assert.equal(claims.nonce, pending.nonce);
  assert.equal(claims.azp, WEB.id);
  assert.equal(typeof claims.auth_time, 'number');
  assert.equal(typeof claims.sid, 'string');
  assert.equal(claims.at_hash, atHash(tokens.access_token));
  // ES256 as registered, signed by a key the JWKS publishes.
  const header = jose.decodeProtectedHeader(tokens.id_token!);
  assert.equal(header.alg, 'ES256');
  const jwksUri = config.serverMetadata().jwks_uri;
  assert.ok(jwksUri !== undefined);
  await jose.jwtVerify(tokens.id_token!, jose.createRemoteJWKSet(new URL(jwksUri)), { issuer, audience: WEB.id, algorithms: ['ES256'] });

  // 5. UserInfo releases the claims of the granted scopes (profile → name, preferred_username; email → email*).
  const info = await client.fetchUserInfo(config, tokens.access_token, ALICE.id);
  assert.deepEqual(info, PROFILE_AND_EMAIL);

  // 6. Refresh rotates the refresh token; the old one is then invalid_grant.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  assert.equal(typeof refreshed.refresh_token, 'string');
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.equal((await client.fetchUserInfo(config, refreshed.access_token, ALICE.id)).email, ALICE.claims.email);
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), oauthError('invalid_grant', 400));

  // 7. RP-initiated logout: the hint names the signed-in user, so the session ends at once and the
  //    browser lands on the registered post-logout URI with the state.
  assert.ok((await sessionCookie(page)) !== undefined, 'signed in: the session cookie is set');
  const logoutState = client.randomState();
  const endSession = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: rpUrl(PATHS.webLoggedOut), state: logoutState });
  await page.goto(endSession.href);
  const loggedOut = await waitForUrl(page, rpUrl(PATHS.webLoggedOut));
  assert.deepEqual([...loggedOut.searchParams], [['state', logoutState]]);
  assert.equal(await page.locator('body').innerText(), 'logged out');
  await screenshot(page, 'rp-logged-out');
  assert.equal(await sessionCookie(page), undefined, 'the session cookie is cleared');

  // 8. The session is gone: a prompt=none request in the same browser gets login_required.
  const silent = await startAuthorization(config, rpUrl(PATHS.webCallback), 'openid', { prompt: 'none' });
  await page.goto(silent.url.href);
  await waitForUrl(page, silent.redirectUri);
  const silentHit = callbackHit(silent.state);
  assertKeys(silentHit.url.searchParams, AUTH_ERROR_KEYS, ['error', 'state', 'iss']);
  assert.equal(silentHit.url.searchParams.get('error'), 'login_required');
  assert.equal(silentHit.url.searchParams.get('iss'), issuer);
  await assert.rejects(redeem(config, silent, silentHit.url), authorizationError('login_required'));
  await context.close();
});

test('public client (PKCE, no secret): a second authorization in the same browser is silent (session + remembered consent), straight to the callback with no page shown', async () => {
  const config = await spaConfig();
  const { context, page } = await newPage();
  const interactionResponses: string[] = [];
  page.on('response', (r) => {
    if (isInteraction(r.url())) interactionResponses.push(`${r.request().method()} ${r.status()} ${r.url()}`);
  });

  // First time: login and consent.
  const first = await startAuthorization(config, rpUrl(PATHS.spaCallback), SPA.scope);
  const firstHit = await signInAndAllow(page, first);
  assert.ok(interactionResponses.length >= 2, 'the login and consent pages were shown the first time');
  const firstTokens = await redeem(config, first, firstHit.url);
  const firstClaims = firstTokens.claims()!;
  assert.equal(firstClaims.aud, SPA.id);
  assert.equal(firstClaims.sub, ALICE.id);
  assert.equal(typeof firstTokens.refresh_token, 'string');
  // No registered id_token_signed_response_alg: the server's default, ES256.
  assert.equal(jose.decodeProtectedHeader(firstTokens.id_token!).alg, 'ES256');

  // Second time, a narrower scope: no page at all, /authorize redirects straight to the callback.
  interactionResponses.length = 0;
  const second = await startAuthorization(config, rpUrl(PATHS.spaCallback), 'openid email');
  const response = await page.goto(second.url.href);
  const landed = await waitForUrl(page, second.redirectUri);
  assert.deepEqual(interactionResponses, [], 'no login or consent page was rendered');
  assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0);
  assert.ok(response !== null);
  const chain: string[] = [];
  for (let r: ReturnType<PageResponse['request']> | null = response.request(); r !== null; r = r.redirectedFrom()) chain.unshift(new URL(r.url()).pathname);
  assert.deepEqual(chain, ['/authorize', PATHS.spaCallback], 'one redirect: /authorize → callback');
  assert.equal(landed.searchParams.get('state'), second.state);
  const secondHit = callbackHit(second.state);
  assertKeys(secondHit.url.searchParams, AUTH_RESPONSE_KEYS, ['code', 'state', 'iss']);

  const secondTokens = await redeem(config, second, secondHit.url);
  const secondClaims = secondTokens.claims()!;
  assert.equal(secondClaims.sub, ALICE.id);
  assert.equal(secondClaims.nonce, second.nonce);
  assert.equal(secondClaims.auth_time, firstClaims.auth_time, 'the same sign-in');
  assert.equal(secondClaims.sid, firstClaims.sid, 'the same session');
  assert.equal(secondTokens.refresh_token, undefined, 'no offline_access, no refresh token');
  // UserInfo follows the scope of each token: email only now, name and email before.
  assert.deepEqual(await client.fetchUserInfo(config, secondTokens.access_token, ALICE.id), {
    sub: ALICE.id,
    email: ALICE.claims.email,
    email_verified: ALICE.claims.email_verified,
  });
  assert.deepEqual(await client.fetchUserInfo(config, firstTokens.access_token, ALICE.id), PROFILE_AND_EMAIL);

  // Logout without a post-logout URI: the server's own "signed out" page.
  await page.goto(client.buildEndSessionUrl(config, { id_token_hint: secondTokens.id_token! }).href);
  await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
  await screenshot(page, 'signed-out');
  assert.equal(await sessionCookie(page), undefined);
  await context.close();
});

test('denying consent sends the browser to the callback with error=access_denied, state and iss, and nothing else', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pending = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  await page.goto(pending.url.href);
  await assertOnLoginPage(page);
  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  const consentUrl = page.url();
  await page.getByRole('button', { name: 'Deny' }).click();
  await waitForUrl(page, pending.redirectUri);

  const params = callbackHit(pending.state).url.searchParams;
  assertKeys(params, AUTH_ERROR_KEYS, ['error', 'state', 'iss']);
  assert.equal(params.get('error'), 'access_denied');
  assert.equal(params.get('state'), pending.state);
  assert.equal(params.get('iss'), issuer);
  await assert.rejects(redeem(config, pending, callbackHit(pending.state).url), authorizationError('access_denied'));

  // The interaction is finished: going back to it shows the error page, not the consent page again.
  const again = await page.goto(consentUrl);
  assert.ok(again !== null);
  assert.equal(again.status(), 400);
  await page.getByRole('heading', { name: 'Something went wrong' }).waitFor();
  assert.match(await page.locator('main').innerText(), /expired or was already completed/);
  await screenshot(page, 'error-interaction-completed');
  await context.close();
});

test('a wrong password re-renders the login page with the error and status 400; a correct retry signs in', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pending = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  await page.goto(pending.url.href);
  await assertOnLoginPage(page);

  await fillLogin(page, 'not-the-password');
  const failed = await submitLogin(page);
  assert.equal(failed.status(), 400);
  const headers = await failed.allHeaders();
  assert.equal(headers['cache-control'], 'no-store');
  assert.equal(headers['x-frame-options'], 'DENY');
  await page.getByRole('alert').waitFor();
  assert.equal((await page.getByRole('alert').innerText()).trim(), 'The username or password is incorrect');
  assert.equal(await page.locator('input[name=username]').inputValue(), ALICE.username, 'the username is kept');
  assert.equal(await page.locator('input[name=password]').inputValue(), '', 'the password is not echoed back');
  assert.equal(await page.locator('input[name=password]').getAttribute('aria-invalid'), 'true');
  assert.equal(await sessionCookie(page), undefined, 'no session after a failed sign-in');
  await screenshot(page, 'login-error');

  await fillLogin(page);
  const ok = await submitLogin(page);
  assert.equal(ok.status(), 303);
  await waitForConsent(page);
  await page.getByRole('button', { name: 'Allow' }).click();
  await waitForUrl(page, pending.redirectUri);
  const tokens = await redeem(config, pending, callbackHit(pending.state).url);
  assert.equal(tokens.claims()?.sub, ALICE.id);
  await context.close();
});

test("the login and consent pages are sent with X-Frame-Options DENY, a CSP with frame-ancestors 'none', and Cache-Control no-store", async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pages: { url: string; status: number; headers: Record<string, string> }[] = [];
  const pending: Promise<void>[] = [];
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' || !isInteraction(r.url()) || r.status() >= 300) return;
    pending.push(r.allHeaders().then((headers) => void pages.push({ url: r.url(), status: r.status(), headers })));
  });
  const auth = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  await page.goto(auth.url.href);
  await assertOnLoginPage(page);
  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  await Promise.all(pending);

  assert.equal(pages.length, 2, `the login and the consent page: ${pages.map((p) => p.url).join(', ')}`);
  for (const p of pages) {
    assert.equal(p.status, 200);
    assert.equal(p.headers['x-frame-options'], 'DENY', p.url);
    assert.match(p.headers['content-security-policy'] ?? '', /(?:^|;)\s*frame-ancestors 'none'\s*(?:;|$)/, p.url);
    assert.equal(p.headers['cache-control'], 'no-store', p.url);
    assert.match(p.headers['content-type'] ?? '', /^text\/html/, p.url);
    assert.equal(p.headers['x-content-type-options'], 'nosniff', p.url);
  }

  // The same page fetched again with this browser's cookies (the interaction cookie binds it).
  const cookies = (await context.cookies(page.url())).map((c) => `${c.name}=${c.value}`).join('; ');
  const res = await fetch(page.url(), { headers: { cookie: cookies } });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /wants to access your account/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  await context.close();
});

test('cookies: the session cookie is HttpOnly, SameSite=Lax and not Secure on an http issuer; the interaction cookie too, scoped to its interaction', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const auth = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  await page.goto(auth.url.href);
  await assertOnLoginPage(page);
  const interactionPath = new URL(page.url()).pathname;

  const interaction = (await context.cookies(page.url())).find((c) => c.name === 'portcullis.interaction');
  assert.ok(interaction !== undefined, 'the login page sets the interaction cookie');
  assert.equal(interaction.httpOnly, true);
  assert.equal(interaction.sameSite, 'Lax');
  assert.equal(interaction.secure, false);
  assert.equal(interaction.path, interactionPath);
  assert.equal(interaction.domain, HOST);

  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  const session = await sessionCookie(page);
  assert.ok(session !== undefined, 'signing in sets the session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(session.secure, false, 'no Secure attribute on an http (loopback) issuer');
  assert.equal(session.path, '/');
  assert.equal(session.domain, HOST, 'a host-only cookie');
  assert.ok(session.expires > Date.now() / 1000, 'a persistent cookie with an expiry in the future');
  // HttpOnly: scripts on the page cannot read either cookie.
  assert.doesNotMatch(await page.evaluate(() => document.cookie), /portcullis\./);
  await context.close();
});

test('response_mode=form_post: the browser POSTs code, state and iss to the callback and openid-client redeems them from the Request', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pending = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent', response_mode: 'form_post' });
  await page.goto(pending.url.href);
  await assertOnLoginPage(page);
  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  await page.getByRole('button', { name: 'Allow' }).click();
  await waitForUrl(page, pending.redirectUri);
  assert.equal(await page.locator('body').innerText(), 'ok');

  const hit = callbackHit(pending.state);
  assert.equal(hit.method, 'POST');
  assert.equal(hit.contentType?.split(';')[0]?.trim(), 'application/x-www-form-urlencoded');
  assert.equal(hit.url.search, '', 'nothing in the query');
  const form = new URLSearchParams(hit.body);
  assertKeys(form, AUTH_RESPONSE_KEYS, ['code', 'state', 'iss']);
  assert.equal(form.get('iss'), issuer);

  const request = new Request(hit.url.href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: hit.body });
  const tokens = await redeem(config, pending, request);
  const claims = tokens.claims()!;
  assert.equal(claims.sub, ALICE.id);
  assert.equal(claims.nonce, pending.nonce);
  assert.equal(claims.at_hash, atHash(tokens.access_token));
  await context.close();
});

test('an authorization code redeemed a second time over HTTP is invalid_grant, and the access token of the first redemption is then inactive', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const pending = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  const hit = await signInAndAllow(page, pending);
  await context.close();
  const code = hit.url.searchParams.get('code');
  assert.ok(code !== null);

  const tokens = await redeem(config, pending, hit.url);
  assert.equal((await introspect(tokens.access_token)).active, true);
  assert.equal((await introspect(tokens.refresh_token!, 'refresh_token')).active, true);

  const replay = await postForm(
    '/token',
    { grant_type: 'authorization_code', code, redirect_uri: pending.redirectUri, code_verifier: pending.pkceCodeVerifier },
    basicAuth(WEB.id, WEB.secret),
  );
  assert.equal(replay.status, 400);
  assert.equal(replay.headers.get('cache-control'), 'no-store');
  assert.equal(((await replay.json()) as Record<string, unknown>).error, 'invalid_grant');

  assert.deepEqual(await introspect(tokens.access_token), { active: false });
  assert.deepEqual(await introspect(tokens.refresh_token!, 'refresh_token'), { active: false });
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), oauthError('invalid_grant', 400));
});

test('the consent page describes every requested scope in words: the standard OIDC descriptions, the scope name as the fallback', async () => {
  const config = await webConfig();
  const { context, page } = await newPage();
  const auth = await startAuthorization(config, rpUrl(PATHS.webCallback), WEB.scope, { prompt: 'consent' });
  await page.goto(auth.url.href);
  await assertOnLoginPage(page);
  await fillLogin(page);
  await submitLogin(page);
  await waitForConsent(page);
  const items = await page.locator('ul.scopes li').allInnerTexts();
  assert.equal(items.length, WEB.scope.split(' ').length);
  const text = items.join('\n');
  for (const description of ['Sign you in with your account', 'Your basic profile', 'Your email address', 'Stay connected when you are not using it']) {
    assert.ok(text.includes(description), `the consent page says "${description}":\n${text}`);
  }
  assert.ok(text.includes('api:read'));
  await context.close();
});
