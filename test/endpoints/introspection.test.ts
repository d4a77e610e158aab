import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { assertOAuthError, assertTokenResponse, createHarness, ISSUER, RS1, SVC1, SVC2, WEB1, type Harness } from '../helpers/harness.js';

describe('introspection endpoint (RFC 7662)', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(() => h.close());

  const intro = async (token: string, caller: [string, string], hint?: string) =>
    h.json(await h.post('/introspect', hint === undefined ? { token } : { token, token_type_hint: hint }, { basic: caller }));

  it('gives the owning client the details of a live access token', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC1 }));
    const res = await h.post('/introspect', { token: String(body.access_token) }, { basic: SVC1 });
    assert.equal(res.headers['cache-control'], 'no-store');
    const claims = h.json(res);
    assert.equal(claims.active, true);
    assert.equal(claims.client_id, 'svc1');
    assert.equal(claims.scope, 'api:read');
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.token_type, 'Bearer');
    assert.equal(claims.exp, h.clock.now() + 3600);
  });

  it('gives a resource server in the token\'s audience the details', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    assert.equal((await intro(String(body.access_token), RS1)).active, true);
  });

  it('answers exactly {"active":false} to anyone else', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    const res = await h.post('/introspect', { token: String(body.access_token) }, { basic: SVC2 });
    assert.equal(res.body, '{"active":false}');
  });

  it('answers exactly {"active":false} for unknown, expired, revoked and forged tokens', async () => {
    assert.equal((await h.post('/introspect', { token: 'garbage' }, { basic: SVC1 })).body, '{"active":false}');
    assert.equal((await h.post('/introspect', { token: 'a.b.c' }, { basic: SVC1 })).body, '{"active":false}');
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    const token = String(body.access_token);
    // Forged: same claims with a changed scope, re-signed with an attacker's key under our kid.
    const [header, payload] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const protectedHeader = JSON.parse(Buffer.from(header!, 'base64url').toString()) as { kid: string };
    const attacker = await generateKeyPair('ES256');
    const forged = await new SignJWT({ ...claims, scope: 'admin' }).setProtectedHeader({ alg: 'ES256', kid: protectedHeader.kid, typ: 'at+jwt' }).sign(attacker.privateKey);
    assert.equal((await h.post('/introspect', { token: forged }, { basic: SVC1 })).body, '{"active":false}');
    const none = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${payload}.`;
    assert.equal((await h.post('/introspect', { token: none }, { basic: SVC1 })).body, '{"active":false}');
    h.clock.advance(3601);
    assert.equal((await h.post('/introspect', { token }, { basic: SVC1 })).body, '{"active":false}');
  });

  it('introspects refresh tokens for their own client only', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password' }, { basic: WEB1 }));
    const own = await intro(String(body.refresh_token), WEB1, 'refresh_token');
    assert.equal(own.active, true);
    assert.equal(own.token_type, 'refresh_token');
    assert.deepEqual(await intro(String(body.refresh_token), RS1), { active: false });
  });

  it('requires an authenticated confidential caller', async () => {
    assertOAuthError(await h.post('/introspect', { token: 'x' }), 401, 'invalid_client');
    assertOAuthError(await h.post('/introspect', { token: 'x', client_id: 'spa1' }), 401, 'invalid_client');
    assertOAuthError(await h.post('/introspect', { token: 'x' }, { basic: ['svc1', 'nope-nope-nope'] }), 401, 'invalid_client');
    assertOAuthError(await h.post('/introspect', {}, { basic: SVC1 }), 400, 'invalid_request');
  });
});
