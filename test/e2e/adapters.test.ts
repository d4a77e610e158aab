/**
 * End to end through every adapter: the same openid-client v6 tests, once per adapter (node:http,
 * fetch behind a node:http bridge, Express, Fastify, Hono, hapi), each serving an in-process server
 * mounted under /oauth with the issuer http://127.0.0.1:<port>/oauth. The authorization code flow
 * is driven over HTTP by a small cookie-jar "browser" (authorize → login page → consent page →
 * callback URL), then redeemed by openid-client, which validates the ID token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { createBearerVerifier } from '../../src/resource/index.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { ADAPTERS, memoryServer, mount, MOUNT, type Mounted } from '../adapters/servers.js';

const SVC = { id: 'svc', secret: 'svc-secret-0123456789abcdef' };
const WEB = { id: 'web', secret: 'web-secret-0123456789abcdef', redirect: 'https://rp.test/cb' };
const ALICE = { username: 'alice', password: 'alice-password-123', id: 'user-alice', claims: { name: 'Alice Example', email: 'alice@example.com', email_verified: true } };

async function setup(issuer: string): Promise<Portcullis> {
  const p = await memoryServer({ scopes: ['openid', 'profile', 'email', 'offline_access', 'api:read'] })(issuer);
  await p.clients.upsert({ client_id: SVC.id, client_secret: SVC.secret, grant_types: ['client_credentials'], scope: 'api:read' });
  await p.clients.upsert({
    client_id: WEB.id,
    client_secret: WEB.secret,
    client_name: 'Acme Web',
    redirect_uris: [WEB.redirect],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access api:read',
    id_token_signed_response_alg: 'ES256',
  });
  await p.users.upsert({ username: ALICE.username, password: ALICE.password, id: ALICE.id, claims: ALICE.claims });
  return p;
}

/** A minimal browser over HTTP: a cookie jar (name, path), manual redirects, form posts. */
class HttpBrowser {
  readonly #jar = new Map<string, { name: string; value: string; path: string }>();
  constructor(readonly origin: string) {}

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<Response> {
    const target = new URL(url);
    assert.equal(target.origin, this.origin, `the browser only talks to the server (${url})`);
    const headers: Record<string, string> = {};
    const cookie = [...this.#jar.values()]
      .filter((c) => target.pathname === c.path || target.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
    if (cookie !== '') headers.cookie = cookie;
    let body: string | undefined;
    if (form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(target, { method, headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const path = attrs.find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      const expired = attrs.some((a) => /^max-age=0$/i.test(a));
      if (expired || value === '') this.#jar.delete(`${name} ${path}`);
      else this.#jar.set(`${name} ${path}`, { name, value, path });
    }
    return res;
  }

  /** From the authorization URL to the client's callback URL: sign in and consent on the way. */
  async authorize(url: URL): Promise<URL> {
    let res = await this.request('GET', url.href);
    for (let step = 0; step < 8; step++) {
      assert.ok(res.status === 302 || res.status === 303, `a redirect, got ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const location = res.headers.get('location')!;
      if (location.startsWith(WEB.redirect)) return new URL(location);
      const page = await this.request('GET', location);
      assert.equal(page.status, 200);
      const html = await page.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1]?.replace(/&#x2F;/g, '/').replace(/&amp;/g, '&');
      assert.ok(csrf !== undefined && action !== undefined, 'a form with a csrf token');
      if (action.endsWith('/login')) res = await this.request('POST', action, { csrf, username: ALICE.username, password: ALICE.password });
      else if (action.endsWith('/consent')) res = await this.request('POST', action, { csrf, decision: 'approve' });
      else assert.fail(`unexpected form action ${action}`);
    }
    assert.fail('the flow did not reach the callback');
  }
}

for (const adapter of ADAPTERS) {
  describe(`e2e through the ${adapter} adapter (mounted under ${MOUNT})`, () => {
    let m: Mounted;
    const options = { execute: [client.allowInsecureRequests] };
    before(async () => {
      m = await mount(adapter, setup);
    });
    after(() => m?.close());

    it('discovery: openid-client reads the configured issuer and its endpoints', async () => {
      const config = await client.discovery(new URL(m.issuer), SVC.id, undefined, client.ClientSecretBasic(SVC.secret), options);
      const meta = config.serverMetadata();
      assert.equal(meta.issuer, m.issuer);
      assert.equal(meta.token_endpoint, `${m.issuer}/token`);
      assert.equal(meta.authorization_endpoint, `${m.issuer}/authorize`);
      assert.equal(meta.jwks_uri, `${m.issuer}/jwks`);
      assert.equal(meta.userinfo_endpoint, `${m.issuer}/userinfo`);
    });

    it('client_credentials: a token that the resource guard verifies against the served JWKS', async () => {
      const config = await client.discovery(new URL(m.issuer), SVC.id, undefined, client.ClientSecretBasic(SVC.secret), options);
      const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
      assert.equal(tokens.scope, 'api:read');
      assert.equal(jose.decodeJwt(tokens.access_token).client_id, SVC.id);
      const guard = createBearerVerifier({ issuer: m.issuer, jwksUri: config.serverMetadata().jwks_uri!, audience: m.issuer, requiredScopes: ['api:read'] });
      const verdict = await guard.verify({ method: 'GET', headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.ok(verdict.ok, JSON.stringify(verdict));
      assert.equal(verdict.token.client_id, SVC.id);
    });

    it('authorization code with PKCE through the hosted pages, then ID token, userinfo and refresh', async () => {
      const config = await client.discovery(new URL(m.issuer), WEB.id, { id_token_signed_response_alg: 'ES256' }, client.ClientSecretBasic(WEB.secret), options);
      client.enableNonRepudiationChecks(config);
      const pkceCodeVerifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: WEB.redirect,
        scope: 'openid profile email offline_access',
        code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      assert.ok(url.href.startsWith(`${m.issuer}/authorize?`));

      const callback = await new HttpBrowser(m.origin).authorize(url);
      assert.equal(callback.searchParams.get('iss'), m.issuer);
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
      const claims = tokens.claims()!;
      assert.equal(claims.iss, m.issuer);
      assert.equal(claims.sub, ALICE.id);
      assert.equal(claims.aud, WEB.id);
      assert.equal(claims.nonce, nonce);
      assert.equal(typeof tokens.refresh_token, 'string');

      const userinfo = await client.fetchUserInfo(config, tokens.access_token, ALICE.id);
      assert.equal(userinfo.sub, ALICE.id);
      assert.equal(userinfo.email, ALICE.claims.email);
      assert.equal(userinfo.name, ALICE.claims.name);

      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      assert.notEqual(refreshed.access_token, tokens.access_token);
      assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
      assert.equal(jose.decodeJwt(refreshed.access_token).sub, ALICE.id);
    });
  });
}
