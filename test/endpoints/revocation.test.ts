import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOAuthError, assertTokenResponse, createHarness, SVC1, SVC2, WEB1, WEB2, type Harness } from '../helpers/harness.js';
import { StorageUnavailableError } from '../../src/core/errors.js';

describe('revocation endpoint (RFC 7009)', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness();
  });
  after(() => h.close());

  const introspect = async (token: string, caller: [string, string]) => h.json(await h.post('/introspect', { token }, { basic: caller })).active;

  it('revoking a refresh token revokes its grant, access tokens included', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password' }, { basic: WEB1 }));
    const res = await h.post('/revoke', { token: String(body.refresh_token), token_type_hint: 'refresh_token' }, { basic: WEB1 });
    assert.equal(res.status, 200);
    assert.equal(res.body, '');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(await introspect(String(body.access_token), WEB1), false);
    assertOAuthError(await h.post('/token', { grant_type: 'refresh_token', refresh_token: String(body.refresh_token) }, { basic: WEB1 }), 400, 'invalid_grant');
  });

  it('revokes a JWT access token', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    assert.equal(await introspect(String(body.access_token), SVC1), true);
    assert.equal((await h.post('/revoke', { token: String(body.access_token) }, { basic: SVC1 })).status, 200);
    assert.equal(await introspect(String(body.access_token), SVC1), false);
  });

  it('revokes an opaque access token', async () => {
    await h.portcullis.clients.upsert({ client_id: 'op1', client_secret: 'op1-secret-0123456789', grant_types: ['client_credentials'], access_token_format: 'opaque' });
    const creds: [string, string] = ['op1', 'op1-secret-0123456789'];
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: creds }));
    assert.equal((await h.post('/revoke', { token: String(body.access_token), token_type_hint: 'access_token' }, { basic: creds })).status, 200);
    assert.equal(await introspect(String(body.access_token), creds), false);
  });

  it('only the owning client may revoke; another client gets the same 200 and nothing happens', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password' }, { basic: WEB1 }));
    const foreign = await h.post('/revoke', { token: String(body.refresh_token) }, { basic: WEB2 });
    const unknown = await h.post('/revoke', { token: 'no-such-token' }, { basic: WEB2 });
    assert.equal(foreign.status, 200);
    assert.deepEqual(foreign, unknown, 'no oracle: foreign and unknown tokens look the same');
    assert.equal(await introspect(String(body.access_token), WEB1), true);
    assertTokenResponse(await h.post('/token', { grant_type: 'refresh_token', refresh_token: String(body.refresh_token) }, { basic: WEB1 }));
    const cc = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials' }, { basic: SVC1 }));
    assert.equal((await h.post('/revoke', { token: String(cc.access_token) }, { basic: SVC2 })).status, 200);
    assert.equal(await introspect(String(cc.access_token), SVC1), true);
  });

  it('requires client authentication and a token', async () => {
    assertOAuthError(await h.post('/revoke', { token: 'x' }, { basic: ['web1', 'wrong-secret'] }), 401, 'invalid_client');
    assertOAuthError(await h.post('/revoke', { token: 'x' }), 401, 'invalid_client');
    assertOAuthError(await h.post('/revoke', {}, { basic: WEB1 }), 400, 'invalid_request');
    assertOAuthError(await h.post('/revoke', 'token=a&token=b', { basic: WEB1 }), 400, 'invalid_request');
  });

  it('a public client may revoke its own token with its client_id', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password', client_id: 'spa1' }));
    assert.equal((await h.post('/revoke', { token: String(body.refresh_token), client_id: 'spa1' })).status, 200);
    assertOAuthError(await h.post('/token', { grant_type: 'refresh_token', refresh_token: String(body.refresh_token), client_id: 'spa1' }), 400, 'invalid_grant');
  });

  it('a storage failure is 503, never a false 200', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password' }, { basic: WEB1 }));
    const original = h.storage.revokeGrant.bind(h.storage);
    h.storage.revokeGrant = async () => {
      throw new StorageUnavailableError('down');
    };
    try {
      assertOAuthError(await h.post('/revoke', { token: String(body.refresh_token) }, { basic: WEB1 }), 503, 'temporarily_unavailable');
    } finally {
      h.storage.revokeGrant = original;
    }
    assert.equal(await introspect(String(body.access_token), WEB1), true, 'nothing was half-revoked');
  });
});
