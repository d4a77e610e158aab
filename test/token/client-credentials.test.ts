import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { assertOAuthError, assertTokenResponse, createHarness, ISSUER, SVC1, type Harness } from '../helpers/harness.js';

describe('client_credentials grant', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(() => h.close());

  it('issues an RFC 9068 JWT access token that verifies against the JWKS', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC1 }));
    assert.equal(body.scope, 'api:read');
    assert.equal(body.refresh_token, undefined, 'no refresh token for client_credentials');
    assert.equal(body.expires_in, 3600);
    const token = String(body.access_token);
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
    const jwks = h.json(await h.get('/jwks')) as { keys: never[] };
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: ISSUER, typ: 'at+jwt', currentDate: new Date(h.clock.now() * 1000) });
    assert.equal(payload.sub, 'svc1');
    assert.equal(payload.client_id, 'svc1');
    assert.equal(payload.scope, 'api:read');
    assert.equal(payload.exp! - payload.iat!, body.expires_in, 'expires_in equals the real lifetime');
    assert.equal(typeof payload.jti, 'string');
  });

  it('defaults to the client\'s registered scope', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    assert.equal(body.scope, 'api:read api:write');
  });

  it('refuses a scope outside the client\'s allowed scope with invalid_scope', async () => {
    const body = assertOAuthError(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read admin' }, { basic: SVC1 }), 400, 'invalid_scope');
    assert.match(String(body.error_description), /admin/);
  });

  it('refuses scope values outside the scope-token grammar', async () => {
    for (const scope of ['api:read\ninjected', 'a"b', 'a\\b']) {
      assertOAuthError(await h.post('/token', { grant_type: 'client_credentials', scope }, { basic: SVC1 }), 400, 'invalid_scope');
    }
  });

  it('refuses public clients (unauthorized_client)', async () => {
    await h.portcullis.clients.upsert({ client_id: 'pub-cc', token_endpoint_auth_method: 'none', grant_types: ['refresh_token'] });
    assertOAuthError(await h.post('/token', { grant_type: 'client_credentials', client_id: 'spa1' }), 400, 'unauthorized_client');
  });

  it('refuses a client not registered for the grant (unauthorized_client)', async () => {
    assertOAuthError(await h.post('/token', { grant_type: 'client_credentials' }, { basic: ['web1', 'web1-secret-0123456789'] }), 400, 'unauthorized_client');
  });

  it('works with client_secret_post', async () => {
    assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', client_id: 'post1', client_secret: 'post1-secret-0123456789' }));
  });

  it('issues opaque tokens, stored hashed, when the client asks for them', async () => {
    await h.portcullis.clients.upsert({ client_id: 'opaque1', client_secret: 'opaque1-secret-012345', grant_types: ['client_credentials'], access_token_format: 'opaque' });
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: ['opaque1', 'opaque1-secret-012345'] }));
    const token = String(body.access_token);
    assert.equal(token.split('.').length, 1);
    assert.ok(Buffer.from(token, 'base64url').length >= 32, 'at least 256 bits');
    const intro = h.json(await h.post('/introspect', { token }, { basic: ['opaque1', 'opaque1-secret-012345'] }));
    assert.equal(intro.active, true);
    assert.equal(intro.exp, h.clock.now() + 3600);
  });

  it('lets the app hook add claims but never override registered ones', async () => {
    const hooked = await createHarness({
      hooks: { beforeIssue: () => ({ accessTokenClaims: { tenant: 'acme', sub: 'evil', scope: 'admin', iss: 'x' } }) },
    });
    try {
      const body = assertTokenResponse(await hooked.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: SVC1 }));
      const payload = JSON.parse(Buffer.from(String(body.access_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(payload.tenant, 'acme');
      assert.equal(payload.sub, 'svc1');
      assert.equal(payload.scope, 'api:read');
      assert.equal(payload.iss, ISSUER);
    } finally {
      await hooked.close();
    }
  });

  it('lets the app hook refuse with an OAuth error; a hook that throws is a server_error without its text', async () => {
    const { OAuthError } = await import('../../src/core/errors.js');
    const refusing = await createHarness({ hooks: { beforeIssue: () => { throw new OAuthError('invalid_scope', 'Not today'); } } });
    const crashing = await createHarness({ hooks: { beforeIssue: () => { throw new Error('secret internal SELECT * FROM x'); } } });
    try {
      const body = assertOAuthError(await refusing.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }), 400, 'invalid_scope');
      assert.equal(body.error_description, 'Not today');
      const res = await crashing.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 });
      assertOAuthError(res, 500, 'server_error');
      assert.doesNotMatch(res.body, /secret internal/);
    } finally {
      await refusing.close();
      await crashing.close();
    }
  });
});
