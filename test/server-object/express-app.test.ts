/**
 * End to end: the seed's Express route handlers (examples/server-object/express-app.ts) on 127.0.0.1,
 * driven by openid-client v6 and a cookie-jar browser through the login and consent pages. The same
 * suite runs twice: over Portcullis storage, and over the seed's repositories (the migration path).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { createExpressApp } from '../../examples/server-object/express-app.js';
import { createServerFromRepositories, seedExampleData } from '../../examples/server-object/from-repositories.js';
import { createExampleDb, hashPassword, InMemoryUserRepository, type ExampleDb } from '../../examples/server-object/repositories.js';
import { AuthorizationServer } from '../../src/server-object/index.js';
import { tokenId } from '../../src/core/crypto.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { CookieBrowser, listen, type Listening } from './browser.js';

const REDIRECT = 'https://rp.example/cb';
const WEB = { id: 'web', secret: 'web-secret-0123456789' };
const SERVICE = { id: 'service', secret: 'service-secret-0123456789' };
const ALICE = { username: 'alice', password: 'alice-password', id: 'u-alice' };
const SCOPE = 'openid profile email offline_access contacts.read';

interface Setup {
  authorizationServer: AuthorizationServer;
  db: ExampleDb;
}

/** Over Portcullis storage: clients in the registry, users' subjects and claims in Portcullis, passwords in the app. */
async function storageSetup(issuer: string): Promise<Setup> {
  const authorizationServer = new AuthorizationServer({
    issuer,
    storage: createMemoryStorage(),
    routes: { revoke: '/token/revoke', introspect: '/token/introspect' },
    scopes: ['contacts.read'],
  });
  authorizationServer.enableGrantType('authorization_code');
  const portcullis = await authorizationServer.getPortcullis();
  await portcullis.clients.upsert({ client_id: WEB.id, client_name: 'Contacts <Web>', client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
  await portcullis.clients.upsert({ client_id: SERVICE.id, client_secret: SERVICE.secret, grant_types: ['client_credentials'], scope: 'contacts.read' });
  const db = createExampleDb();
  db.users.set(ALICE.id, { id: ALICE.id, username: ALICE.username, email: 'alice@example.com', name: 'Alice', passwordHash: hashPassword(ALICE.password) });
  await portcullis.users.upsert({ id: ALICE.id, username: ALICE.username, claims: { email: 'alice@example.com', name: 'Alice' } });
  return { authorizationServer, db };
}

/** Over the seed's repositories, built with the seed's constructor (the worked example of docs/migrating.md). */
async function repositorySetup(issuer: string): Promise<Setup> {
  const { authorizationServer, repositories } = createServerFromRepositories({ issuer });
  seedExampleData(repositories.db, REDIRECT);
  return { authorizationServer, db: repositories.db };
}

for (const [name, setup] of [['Portcullis storage', storageSetup], ['seed repositories', repositorySetup]] as const) {
  describe(`examples/server-object/express-app.ts over ${name}`, () => {
    let listening: Listening;
    let base: string;
    let s: Setup;

    before(async () => {
      const l = await listen();
      listening = l;
      base = l.base;
      s = await setup(base);
      const users = new InMemoryUserRepository(s.db);
      l.use(
        createExpressApp({
          authorizationServer: s.authorizationServer,
          issuer: base,
          accounts: {
            async verify(username, password) {
              const user = await users.getUserByCredentials(username, password);
              return user === undefined ? undefined : { id: user.id, username: user.username };
            },
          },
        }),
      );
    });

    after(async () => {
      await listening.close();
      await s.authorizationServer.close();
    });

    const webConfig = (): Promise<client.Configuration> =>
      client.discovery(new URL(base), WEB.id, undefined, client.ClientSecretBasic(WEB.secret), { execute: [client.allowInsecureRequests] });

    /** Walk /authorize → login → consent in the browser; returns the client's callback URL. */
    async function signIn(url: URL, decision: 'approve' | 'deny' = 'approve', browser = new CookieBrowser(base)): Promise<URL> {
      const first = await browser.navigate(url.href);
      assert.equal(new URL(first.url).pathname, '/login');
      const login = await browser.submit(await first.res.text(), first.url, { username: ALICE.username, password: ALICE.password });
      assert.equal(new URL(login.url).pathname, '/scopes');
      const consentPage = await login.res.text();
      assert.match(consentPage, /Contacts &lt;Web&gt;/, 'the client name is escaped');
      assert.doesNotMatch(consentPage, /Contacts <Web>/);
      const done = await browser.submit(consentPage, login.url, { decision });
      assert.ok(done.exit, `expected a redirect to the client, got ${done.res.status} at ${done.url}`);
      return done.exit;
    }

    async function codeFlow(config: client.Configuration): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers> {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT,
        scope: SCOPE,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      const callback = await signIn(url);
      assert.equal(callback.origin + callback.pathname, REDIRECT);
      assert.equal(callback.searchParams.get('state'), state);
      return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    }

    it('discovery lists the seed routes', async () => {
      const config = await webConfig();
      const meta = config.serverMetadata();
      assert.equal(meta.issuer, base);
      assert.equal(meta.token_endpoint, `${base}/token`);
      assert.equal(meta.authorization_endpoint, `${base}/authorize`);
      assert.equal(meta.revocation_endpoint, `${base}/token/revoke`);
      assert.equal(meta.introspection_endpoint, `${base}/token/introspect`);
      assert.equal(meta.end_session_endpoint, undefined);
      assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    });

    it('authorization code + PKCE through the login and consent pages; ID token and userinfo', async () => {
      const config = await webConfig();
      const tokens = await codeFlow(config);
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      assert.ok(tokens.refresh_token);
      const claims = tokens.claims();
      assert.equal(claims?.sub, ALICE.id);
      assert.equal(claims?.iss, base);
      const info = await client.fetchUserInfo(config, tokens.access_token, ALICE.id);
      assert.equal(info.email, 'alice@example.com');
      assert.equal(info.name, 'Alice');
      assert.equal((info as Record<string, unknown>).passwordHash, undefined);
    });

    it('refresh rotates; presenting the old refresh token again revokes the grant', async () => {
      const config = await webConfig();
      const tokens = await codeFlow(config);
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      assert.ok(refreshed.access_token);
      assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: Error & { error?: string }) => e.error === 'invalid_grant');
      await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), (e: Error & { error?: string }) => e.error === 'invalid_grant');
    });

    it('introspection and revocation', async () => {
      const config = await webConfig();
      const tokens = await codeFlow(config);
      const active = await client.tokenIntrospection(config, tokens.access_token);
      assert.equal(active.active, true);
      assert.equal(active.sub, ALICE.id);
      assert.equal(active.client_id, WEB.id);
      const refreshInfo = await client.tokenIntrospection(config, tokens.refresh_token!, { token_type_hint: 'refresh_token' });
      assert.equal(refreshInfo.active, true);
      await client.tokenRevocation(config, tokens.refresh_token!);
      assert.equal((await client.tokenIntrospection(config, tokens.refresh_token!)).active, false);
      // Revoking the refresh token revoked its grant: the access token of the grant is dead too.
      assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
      await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: Error & { error?: string }) => e.error === 'invalid_grant');
    });

    it('client credentials', async () => {
      const config = await client.discovery(new URL(base), SERVICE.id, undefined, client.ClientSecretBasic(SERVICE.secret), { execute: [client.allowInsecureRequests] });
      const tokens = await client.clientCredentialsGrant(config, { scope: 'contacts.read' });
      assert.equal(tokens.scope, 'contacts.read');
      assert.equal(tokens.refresh_token, undefined);
      const info = await client.tokenIntrospection(config, tokens.access_token);
      assert.equal(info.active, true);
      assert.equal(info.client_id, SERVICE.id);
      // A scope the client may not have.
      await assert.rejects(client.clientCredentialsGrant(config, { scope: 'openid' }), (e: Error & { error?: string }) => e.error === 'invalid_scope');
    });

    it('a wrong secret is a 401 invalid_client with WWW-Authenticate; a public introspection is refused', async () => {
      const res = await fetch(`${base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(`${SERVICE.id}:wrong`).toString('base64') },
        body: 'grant_type=client_credentials',
      });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.deepEqual(await res.json(), { error: 'invalid_client', error_description: 'Client authentication failed' });
      const intro = await fetch(`${base}/token/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x&client_id=web' });
      assert.equal(intro.status, 401);
    });

    it('the user denies: access_denied at the client, with state', async () => {
      const config = await webConfig();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
        state,
      });
      const callback = await signIn(url, 'deny');
      assert.equal(callback.searchParams.get('error'), 'access_denied');
      assert.equal(callback.searchParams.get('state'), state);
      assert.equal(callback.searchParams.get('code'), null);
      assert.equal(callback.searchParams.get('iss'), base);
    });

    it('authorization errors: no redirect until client and redirect URI are trusted, then a redirect with state', async () => {
      const browser = new CookieBrowser(base);
      const evil = await browser.request(`/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&state=s1`);
      assert.equal(evil.status, 400);
      assert.equal(evil.headers.get('location'), null);
      assert.match(evil.headers.get('content-type') ?? '', /text\/html/);
      const portMismatch = await browser.request(`/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent('https://rp.example:8443/cb')}&state=s1`);
      assert.equal(portMismatch.status, 400, 'the port is part of the match');
      const noPkce = await browser.request(`/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s2&scope=openid`);
      assert.equal(noPkce.status, 302);
      const location = new URL(noPkce.headers.get('location')!);
      assert.equal(location.origin + location.pathname, REDIRECT);
      assert.equal(location.searchParams.get('error'), 'invalid_request');
      assert.equal(location.searchParams.get('state'), 's2');
      const implicit = await browser.request(`/authorize?response_type=token&client_id=web&redirect_uri=${encodeURIComponent(REDIRECT)}&state=s3`);
      assert.equal(new URL(implicit.headers.get('location')!).searchParams.get('error'), 'unsupported_response_type');
    });

    it('login and consent pages: bad password, missing CSRF', async () => {
      const browser = new CookieBrowser(base);
      const verifier = 'v'.repeat(43);
      const url = `/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${createHash('sha256').update(verifier).digest('base64url')}&code_challenge_method=S256`;
      const page = await browser.navigate(url);
      const html = await page.res.text();
      const bad = await browser.submit(html, page.url, { username: ALICE.username, password: 'nope' });
      assert.equal(bad.res.status, 401);
      assert.match(await bad.res.text(), /incorrect/);
      const noCsrf = await browser.request('/login', { form: { username: ALICE.username, password: ALICE.password } });
      assert.equal(noCsrf.status, 403);
      const consentWithoutLogin = await new CookieBrowser(base).request('/scopes', { form: { decision: 'approve' } });
      assert.equal(consentWithoutLogin.status, 403);
    });

    it('a code is single-use; replaying it revokes what it issued', async () => {
      const config = await webConfig();
      const verifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid offline_access', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const callback = await signIn(url);
      const code = callback.searchParams.get('code')!;
      const redeem = (v: string) =>
        fetch(`${base}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64') },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: v }),
        });
      const wrongVerifier = await redeem('w'.repeat(43));
      assert.equal(wrongVerifier.status, 400);
      assert.equal(((await wrongVerifier.json()) as { error: string }).error, 'invalid_grant');
      const first = await redeem(verifier);
      assert.equal(first.status, 200);
      const issued = (await first.json()) as { access_token: string };
      const second = await redeem(verifier);
      assert.equal(second.status, 400);
      assert.equal(((await second.json()) as { error: string }).error, 'invalid_grant');
      assert.equal((await client.tokenIntrospection(config, issued.access_token)).active, false);
    });

    if (name === 'seed repositories') {
      it('codes and tokens are mirrored into the app tables (hashed), and revocations there are honoured', async () => {
        const config = await webConfig();
        const tokens = await codeFlow(config);
        const id = tokenId(tokens.refresh_token!);
        const row = [...s.db.tokens.values()].find((r) => r.refreshToken === id);
        assert.ok(row, 'the refresh token has a row, under its hash');
        assert.equal(row.user?.id, ALICE.id);
        assert.deepEqual(row.scopes.map((x) => x.name), SCOPE.split(' '));
        assert.ok([...s.db.authCodes.values()].some((c) => c.revokedAt !== undefined), 'the used code is revoked in the app table');
        assert.ok(![...s.db.tokens.values(), ...s.db.authCodes.values()].some((r) => JSON.stringify(r).includes(tokens.refresh_token!)), 'no raw token in the app tables');
        // The app's admin revokes the row: Portcullis refuses the refresh token.
        row.revokedAt = new Date();
        await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token!), (e: Error & { error?: string }) => e.error === 'invalid_grant');
      });

      it('the scope repository: unknown scopes are refused at authorize and token', async () => {
        const browser = new CookieBrowser(base);
        const challenge = createHash('sha256').update('v'.repeat(43)).digest('base64url');
        s.db.clients.get(WEB.id)!.scopes.push({ name: 'not-in-scope-table' });
        try {
          const res = await browser.request(`/authorize?response_type=code&client_id=web&redirect_uri=${encodeURIComponent(REDIRECT)}&scope=not-in-scope-table&state=s&code_challenge=${challenge}&code_challenge_method=S256`);
          assert.equal(res.status, 302);
          assert.equal(new URL(res.headers.get('location')!).searchParams.get('error'), 'invalid_scope');
        } finally {
          s.db.clients.get(WEB.id)!.scopes.pop();
        }
        const service = s.db.clients.get(SERVICE.id)!;
        service.scopes.push({ name: 'not-in-scope-table' });
        try {
          const config = await client.discovery(new URL(base), SERVICE.id, undefined, client.ClientSecretBasic(SERVICE.secret), { execute: [client.allowInsecureRequests] });
          await assert.rejects(client.clientCredentialsGrant(config, { scope: 'not-in-scope-table' }), (e: Error & { error?: string }) => e.error === 'invalid_scope');
          assert.equal((await client.clientCredentialsGrant(config, { scope: 'contacts.read' })).scope, 'contacts.read');
        } finally {
          service.scopes.pop();
        }
      });

      it('a client whose secret looks hashed cannot authenticate (not even with the hash)', async () => {
        const hashed = '$2b$10$abcdefghijklmnopqrstuuJ7i0rQm9p1r8Zf3Fv9tQ2aQk9p1r8Zf';
        s.db.clients.set('legacy', { id: 'legacy', name: 'Legacy', secret: hashed, redirectUris: [], allowedGrants: ['client_credentials'], scopes: [{ name: 'contacts.read' }] });
        const res = await fetch(`${base}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(`legacy:${encodeURIComponent(hashed)}`).toString('base64') },
          body: 'grant_type=client_credentials',
        });
        assert.equal(res.status, 401);
      });
    }
  });
}
