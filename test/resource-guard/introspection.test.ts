/**
 * The bearer guard with opaque tokens: RFC 7662 introspection at a server on 127.0.0.1, its answers
 * cached for a bounded time (cacheSeconds, never beyond the token's exp), so a revoked token stops
 * passing once the window ends.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { toNodeListener } from '../../src/adapters/node-http.js';
import { ConfigError } from '../../src/core/errors.js';
import { createPortcullis } from '../../src/provider.js';
import type { Portcullis } from '../../src/portcullis-types.js';
import { createBearerVerifier, type BearerFailure, type BearerResult } from '../../src/resource/index.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { testClock } from '../helpers/harness.js';

const OPQ = { id: 'opq', secret: 'opq-secret-0123456789abcdef' };
const SHORT = { id: 'short', secret: 'short-secret-0123456789abcdef' };
const RS = { id: 'rs', secret: 'rs-secret-0123456789abcdef' };
const WEB = { id: 'web', secret: 'web-secret-0123456789abcdef' };

const basic = (c: { id: string; secret: string }): string => `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}`;
const req = (token: string) => ({ method: 'GET', headers: { authorization: `Bearer ${token}` } });

function failure(result: BearerResult, status: number, error: string): BearerFailure {
  assert.equal(result.ok, false, 'refused');
  const f = result as BearerFailure;
  assert.equal(f.status, status, `${f.status} ${f.error} ${f.description}`);
  assert.equal(f.error, error);
  return f;
}

describe('bearer guard: opaque tokens through introspection', () => {
  const clock = testClock();
  let server: Server;
  let portcullis: Portcullis;
  let issuer: string;
  let introspections = 0;

  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    portcullis = await createPortcullis({ issuer, storage: createMemoryStorage(), clock: clock.now, grants: { password: true, authorization_code: false } });
    await portcullis.clients.upsert({ client_id: OPQ.id, client_secret: OPQ.secret, grant_types: ['client_credentials'], scope: 'api:read api:write', access_token_format: 'opaque' });
    await portcullis.clients.upsert({ client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'], resource_server_audiences: [issuer] });
    await portcullis.clients.upsert({ client_id: WEB.id, client_secret: WEB.secret, grant_types: ['password', 'refresh_token'], scope: 'api:read offline_access', access_token_format: 'opaque' });
    await portcullis.users.upsert({ username: 'alice', password: 'alice-password-123' });
    const listener = toNodeListener(portcullis);
    server.on('request', (r, s) => {
      if (r.url === '/introspect') introspections += 1;
      listener(r, s);
    });
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await portcullis.close();
  });

  async function token(client: { id: string; secret: string }, form = 'grant_type=client_credentials&scope=api%3Aread'): Promise<Record<string, string>> {
    const res = await portcullis.handle({ method: 'POST', path: '/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) }, body: form });
    assert.equal(res.status, 200, res.body);
    return JSON.parse(res.body) as Record<string, string>;
  }
  const guardFor = (extra: { cacheSeconds?: number; clientId?: string; clientSecret?: string; endpoint?: string } = {}) =>
    createBearerVerifier({
      issuer,
      audience: issuer,
      clock: clock.now,
      introspection: { endpoint: extra.endpoint ?? portcullis.endpoints.introspect, clientId: extra.clientId ?? RS.id, clientSecret: extra.clientSecret ?? RS.secret, ...(extra.cacheSeconds !== undefined ? { cacheSeconds: extra.cacheSeconds } : {}) },
    });

  it('an active opaque token passes with its introspected facts; the answer is reused within the cache window', async () => {
    const guard = guardFor();
    const { access_token: at } = await token(OPQ);
    assert.notEqual(at!.split('.').length, 3);
    const start = introspections;
    const result = await guard.verify(req(at!));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.token.source, 'introspection');
    assert.equal(result.token.client_id, OPQ.id);
    assert.equal(result.token.sub, OPQ.id);
    assert.deepEqual(result.token.scope, ['api:read']);
    assert.deepEqual(result.token.aud, [issuer]);
    assert.equal(result.token.exp, clock.now() + 3600);
    assert.ok((await guard.verify(req(at!))).ok);
    assert.equal(introspections - start, 1, 'one introspection for two verifications');
    // Concurrent verifications of a new token share one request.
    const { access_token: at2 } = await token(OPQ);
    const results = await Promise.all([guard.verify(req(at2!)), guard.verify(req(at2!)), guard.verify(req(at2!))]);
    assert.ok(results.every((r) => r.ok));
    assert.equal(introspections - start, 2);
  });

  it('a revoked token keeps passing only until the cache window ends (60 s by default)', async () => {
    const guard = guardFor();
    const { access_token: at } = await token(OPQ);
    const start = clock.now();
    try {
      assert.ok((await guard.verify(req(at!))).ok);
      const revoke = await portcullis.handle({ method: 'POST', path: '/revoke', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OPQ) }, body: `token=${at}` });
      assert.equal(revoke.status, 200);
      clock.advance(59);
      assert.ok((await guard.verify(req(at!))).ok, 'still cached');
      clock.advance(1);
      assert.match(failure(await guard.verify(req(at!)), 401, 'invalid_token').description!, /not active/);
      // An inactive answer is not cached: asked again next time.
      const n = introspections;
      failure(await guard.verify(req(at!)), 401, 'invalid_token');
      assert.equal(introspections - n, 1);
    } finally {
      clock.set(start);
    }
  });

  it('with cacheSeconds 0 every verification asks; a revoked token fails at once', async () => {
    const guard = guardFor({ cacheSeconds: 0 });
    const { access_token: at } = await token(OPQ);
    const n = introspections;
    assert.ok((await guard.verify(req(at!))).ok);
    assert.ok((await guard.verify(req(at!))).ok);
    assert.equal(introspections - n, 2);
    await portcullis.handle({ method: 'POST', path: '/revoke', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OPQ) }, body: `token=${at}` });
    failure(await guard.verify(req(at!)), 401, 'invalid_token');
  });

  it('the cache never outlives the token: an answer for a token expiring in 20 s is reused at most 20 s', async () => {
    await portcullis.clients.upsert({ client_id: SHORT.id, client_secret: SHORT.secret, grant_types: ['client_credentials'], scope: 'api:read', access_token_format: 'opaque' });
    // A short-lived token: issue it, then move the clock to 20 s before its expiry.
    const { access_token: at, expires_in } = await token(SHORT);
    const start = clock.now();
    try {
      clock.advance(Number(expires_in) - 20);
      const guard = createBearerVerifier({ issuer, audience: issuer, clock: clock.now, clockTolerance: 0, introspection: { endpoint: portcullis.endpoints.introspect, clientId: RS.id, clientSecret: RS.secret, cacheSeconds: 300 } });
      const n = introspections;
      assert.ok((await guard.verify(req(at!))).ok);
      clock.advance(19);
      assert.ok((await guard.verify(req(at!))).ok);
      assert.equal(introspections - n, 1, 'cached while the token lives');
      clock.advance(1);
      assert.match(failure(await guard.verify(req(at!)), 401, 'invalid_token').description!, /not active|expired/);
      assert.equal(introspections - n, 2, 'asked again at exp: the cache entry ended with the token');
    } finally {
      clock.set(start);
    }
  });

  it('a refresh token presented as a bearer token is refused (token_type is not Bearer)', async () => {
    const tokens = await token(WEB, 'grant_type=password&username=alice&password=alice-password-123&scope=api%3Aread%20offline_access');
    assert.equal(typeof tokens.refresh_token, 'string');
    // The owning client introspects: the refresh token is active, as a refresh_token.
    const guard = guardFor({ clientId: WEB.id, clientSecret: WEB.secret });
    assert.match(failure(await guard.verify(req(tokens.refresh_token!)), 401, 'invalid_token').description!, /not an access token/);
    assert.ok((await guard.verify(req(tokens.access_token!))).ok);
  });

  it('a token of another audience is refused; the scope check applies (403 insufficient_scope)', async () => {
    const { access_token: at } = await token(OPQ);
    const otherAud = createBearerVerifier({ issuer, audience: 'https://other.example', clock: clock.now, introspection: { endpoint: portcullis.endpoints.introspect, clientId: RS.id, clientSecret: RS.secret } });
    failure(await otherAud.verify(req(at!)), 401, 'invalid_token');
    const guard = guardFor();
    const f = failure(await guard.verify(req(at!), { requiredScopes: ['api:write'] }), 403, 'insufficient_scope');
    assert.match(f.wwwAuthenticate, /scope="api:write"/);
  });

  it('in process: a local portcullis answers the introspection without HTTP', async () => {
    const guard = createBearerVerifier({ portcullis, audience: issuer, clock: clock.now, introspection: { clientId: RS.id, clientSecret: RS.secret } });
    const { access_token: at } = await token(OPQ);
    const n = introspections;
    const result = await guard.verify(req(at!));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(introspections, n, 'no HTTP request');
  });

  it('the endpoint refusing our credentials, or unreachable → 503 temporarily_unavailable, reported to onError', async () => {
    const errors: unknown[] = [];
    const { access_token: at } = await token(OPQ);
    const badCreds = createBearerVerifier({ issuer, audience: issuer, clock: clock.now, onError: (e) => errors.push(e), introspection: { endpoint: portcullis.endpoints.introspect, clientId: RS.id, clientSecret: 'wrong-secret-0000000000' } });
    const f = failure(await badCreds.verify(req(at!)), 503, 'temporarily_unavailable');
    assert.equal(f.wwwAuthenticate, `Bearer realm="${issuer}"`);
    assert.equal(errors.length, 1);
    const dead = createBearerVerifier({ issuer, audience: issuer, clock: clock.now, onError: (e) => errors.push(e), introspection: { endpoint: 'http://127.0.0.1:9/introspect', clientId: RS.id, clientSecret: RS.secret, timeoutMs: 2000 } });
    failure(await dead.verify(req(at!)), 503, 'temporarily_unavailable');
    assert.equal(errors.length, 2);
  });

  it('a JWT-shaped token without a key source is introspected too', async () => {
    const jwt = await token(RS, 'grant_type=client_credentials');
    assert.equal(jwt.access_token!.split('.').length, 3);
    const result = await guardFor().verify(req(jwt.access_token!));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.token.source, 'introspection');
  });

  it('cacheSeconds is bounded (0..300)', () => {
    assert.throws(() => guardFor({ cacheSeconds: 301 }), ConfigError);
    assert.throws(() => guardFor({ cacheSeconds: -1 }), ConfigError);
  });
});
