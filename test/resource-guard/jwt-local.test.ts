/**
 * The bearer guard (RFC 6750) with JWT access tokens (RFC 9068) verified against a local server's
 * keys: what passes, what is refused, and the exact status and challenge of each refusal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { createBearerVerifier, verifyBearer, type BearerFailure, type BearerOptions, type BearerResult, type BearerVerifier } from '../../src/resource/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { assertTokenResponse, ISSUER, SVC1, type Harness } from '../helpers/harness.js';
import { authParams, Browser, createFlowHarness, pkcePair, redeem, WEB1, WEB1_CB } from '../helpers/browser-flow.js';

const AUD = ISSUER; // the server's default access-token audience

function refused(result: BearerResult, status: number, error: string | undefined): BearerFailure {
  assert.equal(result.ok, false, 'refused');
  const failure = result as BearerFailure;
  assert.equal(failure.status, status, `${failure.status} ${failure.error} ${failure.description}`);
  assert.equal(failure.error, error);
  if (error === undefined) {
    assert.equal(failure.wwwAuthenticate, `Bearer realm="${AUD}"`);
  } else {
    assert.match(failure.wwwAuthenticate, new RegExp(`^Bearer realm="[^"]+", error="${error}", error_description="[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]+"`));
  }
  return failure;
}

const bearer = (token: string, extra: Partial<{ method: string; query: string; body: unknown; headers: Record<string, string> }> = {}) => ({
  method: extra.method ?? 'GET',
  headers: { authorization: `Bearer ${token}`, ...extra.headers },
  query: extra.query ?? '',
  body: extra.body,
});

describe('bearer guard: JWT access tokens against local keys', () => {
  let h: Harness;
  let guard: BearerVerifier;
  let token: string;
  before(async () => {
    h = await createFlowHarness();
    guard = createBearerVerifier({ portcullis: h.portcullis, audience: AUD, clock: h.clock.now });
    token = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC1 })).access_token as string;
  });
  after(() => h.close());

  it('a valid token passes, with sub, client_id, scope, aud, exp and its claims', async () => {
    const result = await guard.verify(bearer(token));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.token.sub, 'svc1');
    assert.equal(result.token.client_id, 'svc1');
    assert.deepEqual(result.token.scope, ['api:read']);
    assert.deepEqual(result.token.aud, [AUD]);
    assert.equal(result.token.exp, h.clock.now() + 3600);
    assert.equal(result.token.source, 'jwt');
    assert.equal(result.token.claims.iss, ISSUER);
    // The scheme name is case-insensitive; headers in any case.
    assert.ok((await guard.verify({ method: 'GET', headers: { Authorization: `bearer ${token}` } })).ok);
    assert.ok((await guard.verify({ method: 'GET', headers: new Headers({ authorization: `Bearer ${token}` }) })).ok);
  });

  it('verifyBearer(request, options) compiles the options once and answers the same', async () => {
    const options: BearerOptions = { portcullis: h.portcullis, audience: AUD, clock: h.clock.now };
    assert.ok((await verifyBearer(bearer(token), options)).ok);
    assert.ok((await verifyBearer(bearer(token), options)).ok);
  });

  it('no token at all → 401 with the bare challenge (no error code); another auth scheme counts as none', async () => {
    refused(await guard.verify({ method: 'GET', headers: {} }), 401, undefined);
    refused(await guard.verify({ method: 'GET', headers: { authorization: 'Basic c3ZjMTpzZWNyZXQ=' } }), 401, undefined);
  });

  it('a token in the query string → 400 invalid_request, even next to a header token', async () => {
    const f = refused(await guard.verify({ method: 'GET', headers: {}, query: `access_token=${token}` }), 400, 'invalid_request');
    assert.match(f.description!, /query/);
    refused(await guard.verify(bearer(token, { query: `?a=1&access_token=${token}` })), 400, 'invalid_request');
    refused(await guard.verify({ method: 'GET', headers: {}, query: { access_token: token } }), 400, 'invalid_request');
  });

  it('a form-body token (POST) passes; header + body, or two body tokens → 400 invalid_request', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    assert.ok((await guard.verify({ method: 'POST', headers: form, body: `access_token=${token}&x=1` })).ok);
    assert.ok((await guard.verify({ method: 'POST', headers: form, body: { access_token: token } })).ok);
    assert.ok((await guard.verify({ method: 'POST', headers: form, body: Buffer.from(`access_token=${token}`) })).ok);
    const both = refused(await guard.verify(bearer(token, { method: 'POST', headers: form, body: `access_token=${token}` })), 400, 'invalid_request');
    assert.match(both.description!, /exactly one place/);
    refused(await guard.verify({ method: 'POST', headers: form, body: `access_token=${token}&access_token=${token}` }), 400, 'invalid_request');
    // Not a form (JSON), or a GET: the body is not searched.
    refused(await guard.verify({ method: 'POST', headers: { 'content-type': 'application/json' }, body: { access_token: token } }), 401, undefined);
    refused(await guard.verify({ method: 'GET', headers: form, body: `access_token=${token}` }), 401, undefined);
    // Body tokens switched off.
    const headerOnly = createBearerVerifier({ portcullis: h.portcullis, audience: AUD, clock: h.clock.now, allowBodyToken: false });
    refused(await headerOnly.verify({ method: 'POST', headers: form, body: `access_token=${token}` }), 400, 'invalid_request');
  });

  it('a malformed Authorization header → 400 invalid_request', async () => {
    for (const value of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer "quoted"', 'Bearer a,b']) {
      refused(await guard.verify({ method: 'GET', headers: { authorization: value } }), 400, 'invalid_request');
    }
  });

  it('wrong audience, wrong issuer → 401 invalid_token', async () => {
    const other = createBearerVerifier({ portcullis: h.portcullis, audience: 'https://other-api.example', clock: h.clock.now });
    assert.match(refused(await other.verify(bearer(token)), 401, 'invalid_token').description!, /not meant for this resource/);
    const otherIssuer = createBearerVerifier({ portcullis: h.portcullis, issuer: 'https://elsewhere.example', audience: AUD, clock: h.clock.now });
    assert.match(refused(await otherIssuer.verify(bearer(token)), 401, 'invalid_token').description!, /another issuer/);
    // A token for the right audience among several accepted ones passes.
    const several = createBearerVerifier({ portcullis: h.portcullis, audience: ['https://other-api.example', AUD], clock: h.clock.now });
    assert.ok((await several.verify(bearer(token))).ok);
  });

  it('an expired token → 401 invalid_token (15 s of clock tolerance)', async () => {
    const start = h.clock.now();
    try {
      h.clock.advance(3600 + 10);
      assert.ok((await guard.verify(bearer(token))).ok, 'within the tolerance');
      h.clock.advance(10);
      assert.match(refused(await guard.verify(bearer(token)), 401, 'invalid_token').description!, /expired/);
    } finally {
      h.clock.set(start);
    }
  });

  it('an ID token is refused: its typ is not at+jwt (even when iss and aud would match)', async () => {
    const p = pkcePair();
    const code = await new Browser(h).code(authParams(WEB1.id, WEB1_CB, p.challenge, { scope: 'openid' }));
    const tokens = assertTokenResponse(await redeem(h, WEB1, { code, redirect_uri: WEB1_CB, code_verifier: p.verifier }));
    const idToken = tokens.id_token as string;
    assert.equal(jose.decodeProtectedHeader(idToken).typ, 'JWT');
    const asClient = createBearerVerifier({ portcullis: h.portcullis, audience: WEB1.id, clock: h.clock.now });
    assert.match(refused(await asClient.verify(bearer(idToken)), 401, 'invalid_token').description!, /typ must be at\+jwt/);
    // The access token of the same flow passes.
    assert.ok((await guard.verify(bearer(tokens.access_token as string))).ok);
  });

  it('a typ of application/at+jwt is accepted (RFC 9068 §2.1)', async () => {
    const now = h.clock.now();
    const signed = h.portcullis.keys.sign({ iss: ISSUER, sub: 'u1', aud: AUD, client_id: 'c1', iat: now, exp: now + 60, jti: 'j1', scope: 'a b' }, 'application/at+jwt');
    const result = await guard.verify(bearer(signed));
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.token.scope, ['a', 'b']);
  });

  it('a forged signature, an unknown key, alg none, or an algorithm outside the allow-list → 401 invalid_token', async () => {
    const [hd, pl] = token.split('.') as [string, string, string];
    const other = await jose.generateKeyPair('ES256');
    const header = jose.decodeProtectedHeader(token);
    const forged = await new jose.SignJWT(jose.decodeJwt(token)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: header.kid! }).sign(other.privateKey);
    assert.match(refused(await guard.verify(bearer(forged)), 401, 'invalid_token').description!, /signature/);
    const unknownKid = await new jose.SignJWT(jose.decodeJwt(token)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'nope' }).sign(other.privateKey);
    assert.match(refused(await guard.verify(bearer(unknownKid)), 401, 'invalid_token').description!, /unknown key/);
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${pl}.`;
    refused(await guard.verify(bearer(none + 'x')), 401, 'invalid_token');
    const rsOnly = createBearerVerifier({ portcullis: h.portcullis, audience: AUD, clock: h.clock.now, algorithms: ['RS256'] });
    assert.match(refused(await rsOnly.verify(bearer(token)), 401, 'invalid_token').description!, /algorithm/);
    // Garbage and tampered payloads.
    refused(await guard.verify(bearer(`${hd}.${Buffer.from('{"scope":"admin"}').toString('base64url')}.${token.split('.')[2]}`)), 401, 'invalid_token');
    refused(await guard.verify(bearer('not-a-jwt')), 401, 'invalid_token');
    refused(await guard.verify(bearer('a'.repeat(9000))), 401, 'invalid_token');
  });

  it('a missing scope → 403 insufficient_scope naming every scope the route needs', async () => {
    const needsWrite = createBearerVerifier({ portcullis: h.portcullis, audience: AUD, clock: h.clock.now, requiredScopes: ['api:read'] });
    assert.ok((await needsWrite.verify(bearer(token))).ok);
    const f = refused(await needsWrite.verify(bearer(token), { requiredScopes: ['api:write'] }), 403, 'insufficient_scope');
    assert.match(f.wwwAuthenticate, /, scope="api:read api:write"$/);
  });

  it('after a key rotation, tokens of the old and of the new key both verify', async () => {
    await h.portcullis.keys.rotate({ activateIn: 0 });
    const fresh = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC1 })).access_token as string;
    assert.notEqual(jose.decodeProtectedHeader(fresh).kid, jose.decodeProtectedHeader(token).kid);
    assert.ok((await guard.verify(bearer(fresh))).ok);
    assert.ok((await guard.verify(bearer(token))).ok);
  });

  it('configuration mistakes fail when the guard is built', () => {
    assert.throws(() => createBearerVerifier({ portcullis: h.portcullis, audience: '' }), ConfigError);
    assert.throws(() => createBearerVerifier({ portcullis: h.portcullis, audience: AUD, algorithms: ['HS256'] }), ConfigError);
    assert.throws(() => createBearerVerifier({ portcullis: h.portcullis, audience: AUD, algorithms: ['none'] }), ConfigError);
    assert.throws(() => createBearerVerifier({ portcullis: h.portcullis, audience: AUD, clockTolerance: 3600 }), ConfigError);
    assert.throws(() => createBearerVerifier({ issuer: ISSUER, audience: AUD } as unknown as BearerOptions), ConfigError);
  });
});
