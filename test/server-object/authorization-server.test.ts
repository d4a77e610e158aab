/**
 * The server object in process: construction and grant switches, request shapes it accepts, thrown
 * errors, and the authorization request's lifecycle (serialisable, sealed, once, within its lifetime).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import * as jose from 'jose';
import { createInMemoryRepositories, hashPassword } from '../../examples/server-object/repositories.js';
import { ConfigError } from '../../src/core/errors.js';
import {
  AuthorizationRequest,
  AuthorizationServer,
  DateInterval,
  ErrorType,
  isOAuthError,
  OAuthException,
  OAuthRequest,
  OAuthResponse,
  type AuthorizationServerOptions,
} from '../../src/server-object/index.js';
import { handleVanillaError, responseToVanilla } from '../../src/server-object/vanilla.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

const ISSUER = 'http://127.0.0.1:4000';
const REDIRECT = 'https://rp.example/cb';
const VERIFIER = 'verifier-'.repeat(6);
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');
const basic = (id: string, secret: string): string => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

const servers: AuthorizationServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function clockAt(start = 1_900_000_000): { now: () => number; advance(s: number): void } {
  let t = start;
  return { now: () => t, advance: (s) => void (t += s) };
}

async function storageServer(options: Partial<AuthorizationServerOptions> = {}): Promise<AuthorizationServer> {
  const server = new AuthorizationServer({ issuer: ISSUER, storage: createMemoryStorage(), ...options });
  servers.push(server);
  server.enableGrantType('authorization_code');
  const p = await server.getPortcullis();
  await p.clients.upsert({ client_id: 'web', client_secret: 'web-secret-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access api' });
  await p.clients.upsert({ client_id: 'svc', client_secret: 'svc-secret-0123456789', grant_types: ['client_credentials'], scope: 'api' });
  await p.users.upsert({ id: 'u1', username: 'alice', claims: { name: 'Alice' } });
  return server;
}

function authorizeRequest(extra: Record<string, string> = {}): OAuthRequest {
  return new OAuthRequest({
    query: { response_type: 'code', client_id: 'web', redirect_uri: REDIRECT, scope: 'openid api', state: 'st', code_challenge: CHALLENGE, code_challenge_method: 'S256', ...extra },
  });
}

function tokenRequest(body: Record<string, string>, auth = basic('web', 'web-secret-0123456789')): OAuthRequest {
  return new OAuthRequest({ headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body });
}

async function thrown(p: Promise<unknown>): Promise<OAuthException> {
  try {
    await p;
  } catch (e) {
    assert.ok(isOAuthError(e), `expected an OAuthException, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('server object: construction and grants', () => {
  it('refuses implicit, processTokenExchange, unknown grants and weakening seed options', () => {
    const server = new AuthorizationServer({ issuer: ISSUER, storage: createMemoryStorage() });
    servers.push(server);
    assert.throws(() => server.enableGrantType('implicit'), (e: Error) => e instanceof ConfigError && /implicit grant is not supported/.test(e.message));
    assert.throws(() => server.enableGrantType(['implicit', new DateInterval('1h')]), ConfigError);
    assert.throws(() => server.enableGrantType({ grant: 'urn:ietf:params:oauth:grant-type:token-exchange', processTokenExchange: async () => undefined }), /processTokenExchange is not supported/);
    assert.throws(() => server.enableGrantType('magic'), /unknown grant/);
    assert.throws(() => server.enableGrantType({ grant: { identifier: 'custom' } as never }), /GrantHandler/);
    for (const bad of [{ authenticateRevoke: false }, { authenticateIntrospect: false }, { introspectionRequiresConfidentialClient: false }, { scopeDelimiter: ',' }]) {
      assert.throws(() => new AuthorizationServer({ issuer: ISSUER, storage: createMemoryStorage(), ...bad }), ConfigError, JSON.stringify(bad));
    }
    const { clientRepository, tokenRepository, scopeRepository } = createInMemoryRepositories();
    assert.throws(() => new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, 'secret', undefined as never), /issuer is required/);
    assert.throws(() => new (AuthorizationServer as unknown as new (o: unknown) => unknown)({ issuer: ISSUER }), /storage is required/);
  });

  it('client_credentials and refresh_token are on by default; authorization_code and password only when enabled', async () => {
    const server = new AuthorizationServer({ issuer: ISSUER, storage: createMemoryStorage() });
    servers.push(server);
    assert.deepEqual([...(await server.getPortcullis()).grantTypes].sort(), ['client_credentials', 'refresh_token']);
    server.enableGrantTypes('authorization_code', 'password');
    // Enabling after first use rebuilds the core on the same storage.
    assert.deepEqual([...(await server.getPortcullis()).grantTypes].sort(), ['authorization_code', 'client_credentials', 'password', 'refresh_token']);
  });

  it('with repositories, a rebuild after enableGrantType keeps the inner store (keys, grants, tokens)', async () => {
    const { clientRepository, tokenRepository, scopeRepository, userRepository, db } = createInMemoryRepositories();
    db.scopes.set('api', { name: 'api' });
    db.clients.set('svc', { id: 'svc', name: 'Service', secret: 'svc-secret-0123456789', redirectUris: [], allowedGrants: ['client_credentials'], scopes: [{ name: 'api' }] });
    const server = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, 'a-secret-of-at-least-16-chars', { issuer: ISSUER });
    servers.push(server);
    const auth = basic('svc', 'svc-secret-0123456789');
    const res = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'client_credentials', scope: 'api' }, auth));
    const token = (res.body as { access_token: string }).access_token;
    server.enableGrantType({ grant: 'password', userRepository });
    assert.ok((await server.getPortcullis()).grantTypes.includes('password'));
    const info = await server.introspect(tokenRequest({ token }, auth));
    assert.equal((info.body as { active: boolean }).active, true);
  });

  it('per-grant access-token lifetimes: the shortest applies (the core has one)', async () => {
    const server = await storageServer();
    server.enableGrantTypes(['client_credentials', new DateInterval('15m')], ['refresh_token', new DateInterval('2h')]);
    const res = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'client_credentials' }, basic('svc', 'svc-secret-0123456789')));
    assert.equal((res.body as Record<string, unknown>).expires_in, 900);
  });

  it('DateInterval reads the ms syntax', () => {
    assert.equal(new DateInterval('1h').getSeconds(), 3600);
    assert.equal(new DateInterval('15m').getSeconds(), 900);
    assert.equal(new DateInterval('30d').getSeconds(), 30 * 86400);
    assert.equal(new DateInterval('90 seconds').getSeconds(), 90);
    assert.throws(() => new DateInterval('soon'), RangeError);
    assert.throws(() => new DateInterval('0s'), RangeError);
  });
});

describe('server object: token, revocation, introspection', () => {
  it('accepts a hand-built OAuthRequest, a plain { headers, body } object and the raw body', async () => {
    const server = await storageServer();
    const shapes: object[] = [
      tokenRequest({ grant_type: 'client_credentials', scope: 'api' }, basic('svc', 'svc-secret-0123456789')),
      { headers: { Authorization: basic('svc', 'svc-secret-0123456789') }, body: { grant_type: 'client_credentials', scope: 'api' }, query: {} },
      new Request(`${ISSUER}/token`, { method: 'POST', headers: { authorization: basic('svc', 'svc-secret-0123456789'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&scope=api' }),
    ];
    for (const shape of shapes) {
      const res = await server.respondToAccessTokenRequest(shape);
      assert.ok(res instanceof OAuthResponse);
      assert.equal(res.status, 200);
      const body = res.body as Record<string, unknown>;
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.scope, 'api');
      assert.equal(res.get('Cache-Control'), 'no-store');
      const claims = jose.decodeJwt(body.access_token as string);
      assert.equal(claims.client_id, 'svc');
      assert.equal(claims.iss, ISSUER);
    }
  });

  it('errors are thrown as OAuthException with the seed fields and the exact response', async () => {
    const server = await storageServer();
    const e = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'client_credentials' }, basic('svc', 'wrong-secret'))));
    assert.ok(e instanceof OAuthException);
    assert.equal(e.status, 401);
    assert.equal(e.errorType, ErrorType.InvalidClient);
    assert.equal(e.errorDescription, 'Client authentication failed');
    assert.match(e.response!.headers['www-authenticate']!, /^Basic realm=/);
    assert.deepEqual(e.response!.body, { error: 'invalid_client', error_description: 'Client authentication failed' });
    const unsupported = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'implicit' })));
    assert.equal(unsupported.errorType, 'unsupported_grant_type');
    const missing = await thrown(server.respondToAccessTokenRequest({ headers: {}, body: {}, query: {} }));
    assert.equal(missing.errorType, 'invalid_request');
  });

  it('handle*Error never sends the text of an unexpected error', async () => {
    const res = responseToVanilla(handleVanillaError(new Error('SELECT * FROM secrets failed')));
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.doesNotMatch(text, /secrets/);
    assert.deepEqual(JSON.parse(text), { error: 'server_error', error_description: 'The server encountered an unexpected error' });
    // An OAuthException thrown by app code: an RFC body (the seed's non-standard code mapped).
    const app = responseToVanilla(handleVanillaError(OAuthException.unauthorizedScope('admin')));
    assert.equal(app.status, 400);
    assert.equal(((await app.json()) as { error: string }).error, 'invalid_scope');
    // An exception of the seed package itself (its `oauth` marker), thrown by a repository written for it.
    const seed = Object.assign(new Error('Client authentication failed'), { oauth: true, errorType: 'invalid_client', status: 401 });
    assert.ok(isOAuthError(seed));
    const seedRes = responseToVanilla(handleVanillaError(seed));
    assert.equal(seedRes.status, 401);
    assert.ok(seedRes.headers.get('www-authenticate'));
    assert.equal(((await seedRes.json()) as { error: string }).error, 'invalid_client');
  });

  it('revoke and introspect: only the owner revokes; introspection needs a confidential client', async () => {
    const server = await storageServer();
    const cc = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'client_credentials' }, basic('svc', 'svc-secret-0123456789')));
    const token = (cc.body as { access_token: string }).access_token;
    const introspect = (auth: string) => server.introspect(tokenRequest({ token }, auth));
    assert.equal(((await introspect(basic('svc', 'svc-secret-0123456789'))).body as { active: boolean }).active, true);
    assert.deepEqual((await introspect(basic('web', 'web-secret-0123456789'))).body, { active: false });
    // Another client's revocation is a silent no-op.
    assert.equal((await server.revoke(tokenRequest({ token }, basic('web', 'web-secret-0123456789')))).status, 200);
    assert.equal(((await introspect(basic('svc', 'svc-secret-0123456789'))).body as { active: boolean }).active, true);
    assert.equal((await server.revoke(tokenRequest({ token }, basic('svc', 'svc-secret-0123456789')))).status, 200);
    assert.deepEqual((await introspect(basic('svc', 'svc-secret-0123456789'))).body, { active: false });
    const unauthenticated = await thrown(server.revoke(new OAuthRequest({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: { token } })));
    assert.equal(unauthenticated.status, 401);
  });

  it('extraTokenFields of the seed JwtInterface shape the access token, never the registered claims', async () => {
    const { clientRepository, tokenRepository, scopeRepository, db } = createInMemoryRepositories();
    db.scopes.set('api', { name: 'api' });
    db.clients.set('svc', { id: 'svc', name: 'Service', secret: 'svc-secret-0123456789', redirectUris: [], allowedGrants: ['client_credentials'], scopes: [{ name: 'api' }] });
    const server = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, { extraTokenFields: ({ client }) => ({ tenant: `t-${client.id}`, iss: 'https://evil.example', client_id: 'evil' }) }, { issuer: ISSUER });
    servers.push(server);
    const res = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'client_credentials', scope: 'api' }, basic('svc', 'svc-secret-0123456789')));
    const claims = jose.decodeJwt((res.body as { access_token: string }).access_token);
    assert.equal(claims.tenant, 't-svc');
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.client_id, 'svc');
  });
});

describe('server object: the password grant', () => {
  it('over the user repository: the app checks the password, the core throttles and issues', async () => {
    const { clientRepository, tokenRepository, scopeRepository, userRepository, db } = createInMemoryRepositories();
    db.scopes.set('api', { name: 'api' });
    db.clients.set('app', { id: 'app', name: 'App', secret: 'app-secret-0123456789', redirectUris: [], allowedGrants: ['password', 'refresh_token'], scopes: [{ name: 'api' }] });
    db.users.set('u-bob', { id: 'u-bob', username: 'bob', passwordHash: hashPassword('bob-password') });
    const server = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, 'short', { issuer: ISSUER, passwordGrant: { maxAttemptsPerUser: 3 } });
    servers.push(server);
    server.enableGrantType({ grant: 'password', userRepository });
    const auth = basic('app', 'app-secret-0123456789');
    const ok = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'bob-password', scope: 'api' }, auth));
    const body = ok.body as { access_token: string; refresh_token?: string };
    assert.equal(jose.decodeJwt(body.access_token).sub, 'u-bob');
    assert.ok(body.refresh_token);
    const wrong = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'nope' }, auth)));
    assert.equal(wrong.errorType, 'invalid_grant');
    const unknown = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'nobody', password: 'nope' }, auth)));
    assert.equal(unknown.errorDescription, wrong.errorDescription);
    // Three attempts per username per window: the fourth is refused even with the right password.
    await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'nope' }, auth)));
    await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'nope' }, auth)));
    const locked = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'bob-password' }, auth)));
    assert.match(locked.errorDescription ?? '', /Too many/);
    // A client without the grant in its allowedGrants is refused by the core.
    db.clients.set('other', { id: 'other', name: 'Other', secret: 'other-secret-0123456789', redirectUris: [], allowedGrants: ['client_credentials'], scopes: [] });
    const unauthorized = await thrown(server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'password', username: 'bob', password: 'bob-password' }, basic('other', 'other-secret-0123456789'))));
    assert.equal(unauthorized.errorType, 'unauthorized_client');
  });
});

describe('server object: the authorization request', () => {
  it('validate → JSON → complete issues a code that redeems (scope narrowed by the user)', async () => {
    const server = await storageServer();
    const validated = await server.validateAuthorizationRequest(authorizeRequest({ scope: 'openid api offline_access' }));
    assert.equal(validated.client.id, 'web');
    assert.deepEqual(validated.scopes.map((s) => s.name), ['openid', 'api', 'offline_access']);
    assert.equal(validated.redirectUri, REDIRECT);
    assert.equal(validated.codeChallengeMethod, 'S256');
    assert.equal(validated.isAuthorizationApproved, false);
    // Kept in a session as JSON, completed later.
    const stored = JSON.parse(JSON.stringify(validated)) as Record<string, unknown>;
    const restored = AuthorizationRequest.fromJSON(stored);
    restored.user = { id: 'u1' };
    restored.isAuthorizationApproved = true;
    restored.scopes = restored.scopes.filter((s) => s.name !== 'api');
    const res = await server.completeAuthorizationRequest(restored);
    assert.equal(res.status, 302);
    const location = new URL(res.headers.location!);
    assert.equal(location.searchParams.get('state'), 'st');
    const token = await server.respondToAccessTokenRequest(tokenRequest({ grant_type: 'authorization_code', code: location.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER }));
    assert.equal((token.body as { scope: string }).scope, 'openid offline_access');
  });

  it('a tampered, replayed, widened, user-less or expired request does not complete', async () => {
    const clock = clockAt();
    const server = await storageServer({ clock: clock.now });
    const fresh = async (): Promise<Record<string, unknown>> => {
      const ar = await server.validateAuthorizationRequest(authorizeRequest());
      ar.user = { id: 'u1' };
      ar.isAuthorizationApproved = true;
      return JSON.parse(JSON.stringify(ar)) as Record<string, unknown>;
    };
    const refused = async (json: Record<string, unknown>, why: RegExp): Promise<void> => {
      const e = await thrown(server.completeAuthorizationRequest(json));
      assert.equal(e.status, 400);
      assert.equal(e.response!.headers.location, undefined, 'never redirected');
      assert.match(e.errorDescription ?? '', why);
    };
    const a = await fresh();
    await refused({ ...a, request: { ...(a.request as object), redirect_uri: 'https://evil.example/cb' } }, /altered/);
    await refused({ ...a, redirectUri: 'https://evil.example/cb' }, /altered/);
    await refused({ ...a, client: { ...(a.client as object), id: 'svc' } }, /altered/);
    await refused({ ...a, scopes: [{ name: 'openid' }, { name: 'api' }, { name: 'admin' }] }, /narrowed/);
    await refused({ ...a, user: undefined }, /set authRequest.user/);
    assert.equal((await server.completeAuthorizationRequest(a)).status, 302);
    await refused(a, /already completed/);
    const b = await fresh();
    clock.advance(601);
    await refused(b, /expired/);
    // A request sealed by another server (another key) is refused.
    const other = await storageServer();
    const foreign = await other.validateAuthorizationRequest(authorizeRequest());
    foreign.user = { id: 'u1' };
    foreign.isAuthorizationApproved = true;
    await refused(JSON.parse(JSON.stringify(foreign)) as Record<string, unknown>, /altered|another server/);
  });

  it('not approved: access_denied at the client', async () => {
    const server = await storageServer();
    const ar = await server.validateAuthorizationRequest(authorizeRequest());
    const res = await server.completeAuthorizationRequest(ar);
    const location = new URL(res.headers.location!);
    assert.equal(location.searchParams.get('error'), 'access_denied');
    assert.equal(location.searchParams.get('state'), 'st');
  });

  it('rejectAuthorizationRequest: prompt=none answered with login_required at the client, once', async () => {
    const server = await storageServer();
    const ar = await server.validateAuthorizationRequest(authorizeRequest({ prompt: 'none' }));
    assert.deepEqual(ar.prompt, ['none']);
    const res = await server.rejectAuthorizationRequest(ar, 'login_required');
    assert.equal(res.status, 302);
    const location = new URL(res.headers.location!);
    assert.equal(location.origin + location.pathname, REDIRECT);
    assert.equal(location.searchParams.get('error'), 'login_required');
    assert.equal(location.searchParams.get('state'), 'st');
    const again = await thrown(server.completeAuthorizationRequest(Object.assign(ar, { user: { id: 'u1' }, isAuthorizationApproved: true })));
    assert.match(again.errorDescription ?? '', /already completed/);
  });

  it('validation errors: an error page before the redirect URI is trusted, a redirect after', async () => {
    const server = await storageServer();
    const unknownClient = await thrown(server.validateAuthorizationRequest(authorizeRequest({ client_id: 'nobody' })));
    assert.equal(unknownClient.status, 400);
    assert.match(unknownClient.response!.headers['content-type']!, /text\/html/);
    const badScope = await thrown(server.validateAuthorizationRequest(authorizeRequest({ scope: 'admin' })));
    assert.equal(badScope.status, 302);
    assert.equal(badScope.errorType, 'invalid_scope');
    assert.equal(new URL(badScope.response!.headers.location!).searchParams.get('error'), 'invalid_scope');
    const plain = await thrown(server.validateAuthorizationRequest(authorizeRequest({ code_challenge_method: 'plain', code_challenge: VERIFIER })));
    assert.equal(new URL(plain.response!.headers.location!).searchParams.get('error'), 'invalid_request');
  });
});
