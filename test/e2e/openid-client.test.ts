/**
 * End to end: the ready-to-run server (`npm start`) in a child process, driven over HTTP by
 * openid-client v6 as a real relying party / client would use it.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import * as client from 'openid-client';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const BASIC = { id: 'svc-basic', secret: 'svc-basic-secret-0123456789' };
const POST = { id: 'svc-post', secret: 'svc-post-secret-0123456789' };
const PKJWT = { id: 'svc-jwt', kid: 'svc-jwt-key-1' };
const WEB = { id: 'web', secret: 'web-secret-0123456789' };
const OPAQUE = { id: 'svc-opaque', secret: 'svc-opaque-secret-0123456789' };
const RS = { id: 'resource-server', secret: 'resource-server-secret-0123456789' };
const ALICE = { username: 'alice', password: 'alice-password-123', id: 'user-alice' };

let server: SpawnedServer;
/** The issuer written in the config file. */
let configuredIssuer: string;
let jwtClientKey: CryptoKey;

before(async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  jwtClientKey = privateKey;
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: PKJWT.kid, alg: 'ES256', use: 'sig' };
  server = await spawnServer({
    config: ({ issuer }) => {
      configuredIssuer = issuer;
      return {
        issuer,
        grants: { password: true },
        clients: [
          { client_id: BASIC.id, client_secret: BASIC.secret, token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], scope: 'api:read api:write' },
          { client_id: POST.id, client_secret: POST.secret, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'api:read' },
          { client_id: PKJWT.id, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] }, grant_types: ['client_credentials'], scope: 'api:read' },
          { client_id: WEB.id, client_secret: WEB.secret, token_endpoint_auth_method: 'client_secret_basic', grant_types: ['password', 'refresh_token'], scope: 'api:read api:write' },
          { client_id: OPAQUE.id, client_secret: OPAQUE.secret, grant_types: ['client_credentials'], scope: 'api:read', access_token_format: 'opaque' },
          { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'], resource_server_audiences: [issuer] },
        ],
        users: [{ username: ALICE.username, password: ALICE.password, id: ALICE.id, claims: { email: 'alice@example.com' } }],
      };
    },
  });
});

after(async () => {
  await server?.stop();
});

function configFor(clientId: string, auth: client.ClientAuth): Promise<client.Configuration> {
  return client.discovery(new URL(server.issuer), clientId, undefined, auth, { execute: [client.allowInsecureRequests] });
}

const basicConfig = (): Promise<client.Configuration> => configFor(BASIC.id, client.ClientSecretBasic(BASIC.secret));
const webConfig = (): Promise<client.Configuration> => configFor(WEB.id, client.ClientSecretBasic(WEB.secret));

function basicAuth(id: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

function postForm(path: string, form: Record<string, string>, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization !== undefined) headers.authorization = authorization;
  return fetch(new URL(path, server.url), { method: 'POST', headers, body: new URLSearchParams(form).toString() });
}

function passwordLogin(config: client.Configuration, scope = 'api:read'): ReturnType<typeof client.genericGrantRequest> {
  return client.genericGrantRequest(config, 'password', { username: ALICE.username, password: ALICE.password, scope });
}

/**
 * A 401 with WWW-Authenticate: openid-client throws a WWWAuthenticateChallengeError (the body is
 * left unread on its response) instead of a ResponseBodyError.
 */
async function expectInvalidClient(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(
    () => assert.fail('expected the request to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof client.WWWAuthenticateChallengeError, `expected a WWWAuthenticateChallengeError, got ${String(err)}`);
  assert.equal(err.status, 401);
  assert.equal(err.cause[0]?.scheme, 'basic');
  assert.equal(err.cause[0]?.parameters.realm, configuredIssuer);
  assert.deepEqual(await err.response.json(), { error: 'invalid_client', error_description: 'Client authentication failed' });
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

test('discovery works through openid-client, the issuer is the configured one, and both well-known documents are equal', async () => {
  assert.equal(server.issuer, configuredIssuer, 'the banner prints the configured issuer');
  const config = await basicConfig();
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, configuredIssuer);
  assert.equal(metadata.token_endpoint, `${configuredIssuer}/token`);
  assert.equal(metadata.jwks_uri, `${configuredIssuer}/jwks`);
  assert.equal(metadata.introspection_endpoint, `${configuredIssuer}/introspect`);
  assert.equal(metadata.revocation_endpoint, `${configuredIssuer}/revoke`);

  const oidc = await fetch(new URL('/.well-known/openid-configuration', server.url));
  const oauth = await fetch(new URL('/.well-known/oauth-authorization-server', server.url));
  assert.equal(oidc.status, 200);
  assert.equal(oauth.status, 200);
  assert.match(oidc.headers.get('content-type') ?? '', /^application\/json/);
  assert.match(oauth.headers.get('content-type') ?? '', /^application\/json/);
  const oidcText = await oidc.text();
  const oauthText = await oauth.text();
  assert.equal(oauthText, oidcText);
  assert.deepEqual(JSON.parse(oidcText), { ...metadata });
});

test('client_credentials works with client_secret_basic', async () => {
  const tokens = await client.clientCredentialsGrant(await basicConfig(), { scope: 'api:read' });
  assert.equal(typeof tokens.access_token, 'string');
  assert.equal(tokens.token_type, 'bearer'); // oauth4webapi lower-cases it
  assert.equal(tokens.scope, 'api:read');
  assert.equal(tokens.expires_in, 3600);
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(jose.decodeJwt(tokens.access_token).client_id, BASIC.id);
});

test('client_credentials works with client_secret_post', async () => {
  const config = await configFor(POST.id, client.ClientSecretPost(POST.secret));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
  assert.equal(tokens.scope, 'api:read');
  assert.equal(jose.decodeJwt(tokens.access_token).client_id, POST.id);
  // The registered method is enforced: the same secret in a Basic header is refused.
  const basic = await configFor(POST.id, client.ClientSecretBasic(POST.secret));
  await expectInvalidClient(client.clientCredentialsGrant(basic, { scope: 'api:read' }));
});

test('client_credentials works with private_key_jwt (ES256 key registered in the config jwks)', async () => {
  const config = await configFor(PKJWT.id, client.PrivateKeyJwt(jwtClientKey));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
  assert.equal(tokens.scope, 'api:read');
  assert.equal(jose.decodeJwt(tokens.access_token).client_id, PKJWT.id);
  // With the kid in the assertion header too.
  const withKid = await configFor(PKJWT.id, client.PrivateKeyJwt({ key: jwtClientKey, kid: PKJWT.kid }));
  const again = await client.clientCredentialsGrant(withKid, { scope: 'api:read' });
  assert.equal(jose.decodeJwt(again.access_token).client_id, PKJWT.id);
  // Another key is refused.
  const other = await jose.generateKeyPair('ES256');
  const wrongKey = await configFor(PKJWT.id, client.PrivateKeyJwt(other.privateKey));
  await expectInvalidClient(client.clientCredentialsGrant(wrongKey, { scope: 'api:read' }));
});

test('the access token is an at+jwt that verifies against the remote JWKS with the right iss/aud, and expires_in = exp - iat', async () => {
  const config = await basicConfig();
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read api:write' });
  const jwksUri = config.serverMetadata().jwks_uri;
  assert.equal(typeof jwksUri, 'string');
  const jwks = jose.createRemoteJWKSet(new URL(jwksUri!));
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer: configuredIssuer,
    audience: configuredIssuer,
    typ: 'at+jwt',
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(typeof protectedHeader.kid, 'string');
  assert.equal(payload.iss, configuredIssuer);
  assert.equal(payload.aud, configuredIssuer);
  assert.equal(payload.client_id, BASIC.id);
  assert.equal(payload.sub, BASIC.id);
  assert.equal(payload.scope, 'api:read api:write');
  assert.equal(typeof payload.jti, 'string');
  assert.equal(typeof payload.exp, 'number');
  assert.equal(typeof payload.iat, 'number');
  assert.equal(tokens.expires_in, payload.exp! - payload.iat!);
});

test('password login yields a refresh token; refresh rotates it; reusing the old one is invalid_grant and revokes the grant', async () => {
  const config = await webConfig();
  const login = await passwordLogin(config);
  assert.equal(typeof login.refresh_token, 'string');
  assert.equal(jose.decodeJwt(login.access_token).sub, ALICE.id);

  const refreshed = await client.refreshTokenGrant(config, login.refresh_token!);
  assert.equal(typeof refreshed.refresh_token, 'string');
  assert.notEqual(refreshed.refresh_token, login.refresh_token);
  assert.notEqual(refreshed.access_token, login.access_token);
  assert.equal(refreshed.scope, 'api:read');
  const before = await client.tokenIntrospection(config, refreshed.access_token);
  assert.equal(before.active, true);

  await assert.rejects(client.refreshTokenGrant(config, login.refresh_token!), oauthError('invalid_grant', 400));

  // Reuse revoked the whole grant: the new access token and the new refresh token are dead.
  assert.deepEqual(await client.tokenIntrospection(config, refreshed.access_token), { active: false });
  assert.deepEqual(await client.tokenIntrospection(config, login.access_token), { active: false });
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), oauthError('invalid_grant', 400));
});

test('introspection through tokenIntrospection: active with client_id/scope/sub for the owner; {active:false} after tokenRevocation', async () => {
  const config = await webConfig();
  const login = await passwordLogin(config, 'api:read api:write');
  const payload = jose.decodeJwt(login.access_token);

  const owner = await client.tokenIntrospection(config, login.access_token);
  assert.equal(owner.active, true);
  assert.equal(owner.client_id, WEB.id);
  assert.equal(owner.scope, 'api:read api:write');
  assert.equal(owner.sub, ALICE.id);
  assert.equal(owner.iss, configuredIssuer);
  assert.equal(owner.aud, configuredIssuer);
  assert.equal(owner.token_type, 'Bearer');
  assert.equal(owner.exp, payload.exp);
  assert.equal(owner.iat, payload.iat);

  // A resource server whose resource_server_audiences lists the token's aud sees it too.
  const rs = await configFor(RS.id, client.ClientSecretBasic(RS.secret));
  const seenByRs = await client.tokenIntrospection(rs, login.access_token);
  assert.equal(seenByRs.active, true);
  assert.equal(seenByRs.client_id, WEB.id);
  assert.equal(seenByRs.sub, ALICE.id);
  // Another client that is neither the owner nor a resource server does not.
  assert.deepEqual(await client.tokenIntrospection(await basicConfig(), login.access_token), { active: false });

  // The refresh token introspects active for its owner.
  const refresh = await client.tokenIntrospection(config, login.refresh_token!, { token_type_hint: 'refresh_token' });
  assert.equal(refresh.active, true);
  assert.equal(refresh.client_id, WEB.id);
  assert.equal(refresh.sub, ALICE.id);

  await client.tokenRevocation(config, login.access_token);
  assert.deepEqual(await client.tokenIntrospection(config, login.access_token), { active: false });
  assert.deepEqual(await client.tokenIntrospection(rs, login.access_token), { active: false });

  await client.tokenRevocation(config, login.refresh_token!);
  assert.deepEqual(await client.tokenIntrospection(config, login.refresh_token!), { active: false });
  await assert.rejects(client.refreshTokenGrant(config, login.refresh_token!), oauthError('invalid_grant', 400));
});

test('opaque tokens: a client with access_token_format opaque gets a non-JWT token that introspects active', async () => {
  const config = await configFor(OPAQUE.id, client.ClientSecretBasic(OPAQUE.secret));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
  assert.notEqual(tokens.access_token.split('.').length, 3);
  assert.throws(() => jose.decodeJwt(tokens.access_token));
  assert.equal(tokens.expires_in, 3600);

  const own = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(own.active, true);
  assert.equal(own.client_id, OPAQUE.id);
  assert.equal(own.scope, 'api:read');
  assert.equal(own.sub, OPAQUE.id);
  assert.equal(own.token_type, 'Bearer');
  assert.equal(own.exp! - own.iat!, 3600);

  const rs = await configFor(RS.id, client.ClientSecretBasic(RS.secret));
  const seenByRs = await client.tokenIntrospection(rs, tokens.access_token);
  assert.equal(seenByRs.active, true);
  assert.equal(seenByRs.client_id, OPAQUE.id);

  await client.tokenRevocation(config, tokens.access_token);
  assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false });
});

test('a wrong secret and an unknown client get byte-identical 401 bodies with WWW-Authenticate', async () => {
  const form = { grant_type: 'client_credentials' };
  const wrongSecret = await postForm('/token', form, basicAuth(BASIC.id, 'not-the-right-secret-0000'));
  const unknownClient = await postForm('/token', form, basicAuth('no-such-client', 'not-the-right-secret-0000'));
  assert.equal(wrongSecret.status, 401);
  assert.equal(unknownClient.status, 401);
  const a = Buffer.from(await wrongSecret.arrayBuffer());
  const b = Buffer.from(await unknownClient.arrayBuffer());
  assert.ok(a.equals(b), `bodies differ:\n${a.toString()}\n${b.toString()}`);
  assert.deepEqual(JSON.parse(a.toString('utf8')), { error: 'invalid_client', error_description: 'Client authentication failed' });
  assert.equal(wrongSecret.headers.get('www-authenticate'), `Basic realm="${configuredIssuer}"`);
  assert.equal(unknownClient.headers.get('www-authenticate'), `Basic realm="${configuredIssuer}"`);
  assert.equal(wrongSecret.headers.get('cache-control'), 'no-store');
  assert.equal(unknownClient.headers.get('cache-control'), 'no-store');
});

interface RawResult {
  status?: number;
  body?: string;
  /** The server closed the connection before answering. */
  closed?: string;
}

/** POST `total` bytes of form body to /token with node:http, with a Content-Length or chunked. */
function postLargeBody(total: number, chunked: boolean): Promise<RawResult> {
  return new Promise((resolveResult) => {
    let settled = false;
    const settle = (result: RawResult): void => {
      if (!settled) {
        settled = true;
        resolveResult(result);
      }
    };
    const url = new URL('/token', server.url);
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuth(BASIC.id, BASIC.secret),
    };
    if (!chunked) headers['content-length'] = String(total);
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent: false });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => settle({ status: res.statusCode!, body }));
      res.on('error', (err) => settle({ closed: err.message }));
    });
    req.on('error', (err) => settle({ closed: err.message }));
    const prefix = 'grant_type=client_credentials&padding=';
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const write = (): void => {
      while (sent < total && !req.destroyed) {
        const piece = sent === 0 ? Buffer.concat([Buffer.from(prefix), chunk]).subarray(0, Math.min(chunk.length, total)) : chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', write);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    write();
  });
}

function assertRefused(result: RawResult, label: string): void {
  if (result.closed !== undefined) return; // the connection was closed: a refusal
  assert.notEqual(result.status, 200, `${label}: a 1 MiB body must not be accepted`);
  assert.equal(result.status, 413, `${label}: ${result.body ?? ''}`);
  assert.deepEqual(JSON.parse(result.body ?? ''), { error: 'invalid_request', error_description: 'The request body is too large' });
}

test('a 1 MiB body to /token is refused and the server still answers /healthz and issues a token right after', async () => {
  const MiB = 1024 * 1024;
  assertRefused(await postLargeBody(MiB, false), 'with Content-Length');
  assertRefused(await postLargeBody(MiB, true), 'chunked');

  const health = await fetch(new URL('/healthz', server.url));
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  const tokens = await client.clientCredentialsGrant(await basicConfig(), { scope: 'api:read' });
  assert.equal(typeof tokens.access_token, 'string');
});

test('20 concurrent refreshes of one refresh token over HTTP: exactly one 200, the rest invalid_grant, no 5xx', async () => {
  const login = await passwordLogin(await webConfig());
  const refreshToken = login.refresh_token!;
  const responses = await Promise.all(
    Array.from({ length: 20 }, () => postForm('/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, basicAuth(WEB.id, WEB.secret))),
  );
  const results = await Promise.all(responses.map(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> })));
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s >= 500).length, 0, `statuses: ${statuses.join(',')}`);
  assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
  for (const r of results.filter((x) => x.status !== 200)) {
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_grant');
  }
});

test('discovery lists nothing that is not served: no endpoint 404s, no listed grant type is unsupported_grant_type', async () => {
  const metadata = (await basicConfig()).serverMetadata() as Record<string, unknown>;
  const urls = Object.entries(metadata).filter(([key, value]) => (key.endsWith('_endpoint') || key === 'jwks_uri') && typeof value === 'string');
  assert.ok(urls.length >= 4, `endpoints listed: ${urls.map(([k]) => k).join(', ')}`);
  for (const [key, value] of urls) {
    const url = new URL(value as string);
    assert.equal(url.origin, new URL(configuredIssuer).origin, `${key} is on the issuer's origin`);
    const get = await fetch(new URL(url.pathname + url.search, server.url));
    await get.arrayBuffer();
    assert.notEqual(get.status, 404, `GET ${key} ${url.href}`);
    if (key === 'jwks_uri') {
      assert.equal(get.status, 200);
      continue;
    }
    const post = await postForm(url.pathname, {});
    await post.arrayBuffer();
    assert.notEqual(post.status, 404, `POST ${key} ${url.href}`);
    assert.ok(post.status < 500, `POST ${key}: ${post.status}`);
  }

  const grantTypes = metadata.grant_types_supported;
  assert.ok(Array.isArray(grantTypes) && grantTypes.length > 0);
  for (const grantType of grantTypes as string[]) {
    const res = await postForm('/token', { grant_type: grantType }, basicAuth(BASIC.id, BASIC.secret));
    const body = (await res.json()) as Record<string, unknown>;
    assert.ok(res.status < 500, `${grantType}: ${res.status}`);
    assert.notEqual(body.error, 'unsupported_grant_type', `${grantType} is listed but answered unsupported_grant_type`);
  }
  // The check above can tell: a grant type that is not served is answered unsupported_grant_type.
  const unknown = await postForm('/token', { grant_type: 'urn:example:not-served' }, basicAuth(BASIC.id, BASIC.secret));
  assert.equal(unknown.status, 400);
  assert.equal(((await unknown.json()) as Record<string, unknown>).error, 'unsupported_grant_type');
});

test('restart on the same data dir: keys, clients and tokens survive', async () => {
  const basic = await basicConfig();
  const web = await webConfig();
  const kidsBefore = await jwksKids();
  const accessToken = (await client.clientCredentialsGrant(basic, { scope: 'api:read' })).access_token;
  const login = await passwordLogin(web);
  const signingKid = jose.decodeProtectedHeader(accessToken).kid;
  assert.ok(signingKid !== undefined && kidsBefore.includes(signingKid));
  const pidBefore = server.pid;

  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `SIGTERM is a graceful shutdown\n${server.stderr}`);
  await server.restart();
  assert.notEqual(server.pid, pidBefore);
  assert.equal(server.issuer, configuredIssuer);

  // Keys: the same JWKS, and the pre-restart token still verifies against it.
  assert.deepEqual(await jwksKids(), kidsBefore);
  await jose.jwtVerify(accessToken, jose.createRemoteJWKSet(new URL(`${configuredIssuer}/jwks`)), { issuer: configuredIssuer, audience: configuredIssuer, typ: 'at+jwt' });
  // Clients: the same secret works, and new tokens are signed with the same key.
  const basicAfter = await basicConfig();
  const fresh = await client.clientCredentialsGrant(basicAfter, { scope: 'api:read' });
  assert.equal(jose.decodeProtectedHeader(fresh.access_token).kid, signingKid);
  // Tokens: the access token still introspects active, the refresh token still refreshes.
  const intro = await client.tokenIntrospection(basicAfter, accessToken);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, BASIC.id);
  const webAfter = await webConfig();
  assert.equal((await client.tokenIntrospection(webAfter, login.access_token)).active, true);
  const refreshed = await client.refreshTokenGrant(webAfter, login.refresh_token!);
  assert.equal(typeof refreshed.refresh_token, 'string');
  assert.notEqual(refreshed.refresh_token, login.refresh_token);
  assert.equal(jose.decodeJwt(refreshed.access_token).sub, ALICE.id);
});

async function jwksKids(): Promise<string[]> {
  const res = await fetch(new URL('/jwks', server.url));
  assert.equal(res.status, 200);
  const { keys } = (await res.json()) as { keys: { kid?: string }[] };
  return keys.map((k) => k.kid ?? '').sort();
}
