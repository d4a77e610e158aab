/**
 * RFC 8707 at the token endpoint: `resource` becomes the access token's `aud`, is checked against the
 * client's allowed_audiences, may repeat, and (for refresh) may only narrow the original grant.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOAuthError, assertTokenResponse, ISSUER, SVC1, type Harness } from '../helpers/harness.js';
import { API_A, API_B, API_OTHER, API_SHORT, body, createResourceHarness, form, jwtParts, PWD, RS_A, RS_B, RSVC } from './helpers.js';

let h: Harness;
before(async () => {
  h = await createResourceHarness();
});
after(async () => {
  await h.close();
});

function cc(resource: string | string[] | undefined, extra: Record<string, string | string[]> = {}, client: [string, string] = RSVC) {
  return h.post('/token', form({ grant_type: 'client_credentials', ...(resource !== undefined ? { resource } : {}), ...extra }), { basic: client });
}

async function aud(res: Awaited<ReturnType<typeof cc>>): Promise<unknown> {
  return jwtParts(String(assertTokenResponse(res).access_token)).payload.aud;
}

describe('RFC 8707 resource at the token endpoint: client_credentials', () => {
  it('one resource → aud is that resource (a string)', async () => {
    assert.equal(await aud(await cc(API_A)), API_A);
  });

  it('two resources → aud is an array of both, in order', async () => {
    assert.deepEqual(await aud(await cc([API_A, API_B])), [API_A, API_B]);
  });

  it('the same resource twice counts once', async () => {
    assert.equal(await aud(await cc([API_A, API_A])), API_A);
  });

  it('no resource → the default audience (the issuer), as before', async () => {
    assert.equal(await aud(await cc(undefined)), ISSUER);
  });

  it('the default audience may be named explicitly, even by a client without allowed_audiences', async () => {
    assert.equal(await aud(await cc(ISSUER, {}, SVC1)), ISSUER);
  });

  it('a resource outside allowed_audiences → invalid_target', async () => {
    const res = assertOAuthError(await cc(API_OTHER), 400, 'invalid_target');
    assert.equal(res.error_description, 'The client may not obtain tokens for the requested resource');
  });

  it('a client without allowed_audiences may not name any other resource', async () => {
    assertOAuthError(await cc(API_A, {}, SVC1), 400, 'invalid_target');
  });

  it('one allowed and one refused resource → invalid_target (nothing partial)', async () => {
    assertOAuthError(await cc([API_A, API_OTHER]), 400, 'invalid_target');
  });

  for (const bad of ['https://api-a.example.com/#frag', 'https://api-a.example.com/#', '/relative/path', 'api-a.example.com', 'https://api-a.example.com/ x', '://missing-scheme', `https://x.example.com/${'a'.repeat(2100)}`]) {
    it(`a malformed resource ${JSON.stringify(bad.slice(0, 40))} → invalid_target`, async () => {
      const res = assertOAuthError(await cc(bad), 400, 'invalid_target');
      assert.equal(res.error_description, 'The resource parameter must be an absolute URI without a fragment');
    });
  }

  it('more than 16 resource values → invalid_target', async () => {
    const many = Array.from({ length: 17 }, (_, i) => `https://r${i}.example.com/`);
    const res = assertOAuthError(await cc(many), 400, 'invalid_target');
    assert.equal(res.error_description, 'Too many resource parameters');
  });

  it('resource may repeat, other parameters still may not', async () => {
    assertTokenResponse(await cc([API_A, API_B]));
    const scope = assertOAuthError(await cc([API_A, API_B], { scope: ['api:read', 'api:read'] }), 400, 'invalid_request');
    assert.equal(scope.error_description, 'Parameter scope was sent more than once');
    const grant = await h.post('/token', 'grant_type=client_credentials&grant_type=client_credentials&resource=' + encodeURIComponent(API_A), { basic: RSVC });
    assertOAuthError(grant, 400, 'invalid_request');
  });
});

describe('RFC 8707 resource with the password and refresh_token grants', () => {
  async function password(resource?: string | string[]): Promise<Record<string, unknown>> {
    const res = await h.post('/token', form({ grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read api:write', ...(resource !== undefined ? { resource } : {}) }), { basic: PWD });
    return assertTokenResponse(res);
  }
  function refresh(token: string, resource?: string | string[], extra: Record<string, string> = {}) {
    return h.post('/token', form({ grant_type: 'refresh_token', refresh_token: token, ...(resource !== undefined ? { resource } : {}), ...extra }), { basic: PWD });
  }

  it('password with two resources → aud array; the grant keeps both', async () => {
    const first = await password([API_A, API_B]);
    assert.deepEqual(jwtParts(String(first.access_token)).payload.aud, [API_A, API_B]);
    const grantId = jwtParts(String(first.access_token)).payload.gid as string;
    const grant = await h.storage.getGrant(grantId);
    assert.deepEqual(grant?.data?.resources, [API_A, API_B]);
  });

  it('refresh narrows to one resource of the grant; the next refresh may target the other one', async () => {
    const first = await password([API_A, API_B]);
    const narrowed = assertTokenResponse(await refresh(String(first.refresh_token), API_A));
    assert.equal(jwtParts(String(narrowed.access_token)).payload.aud, API_A);
    const other = assertTokenResponse(await refresh(String(narrowed.refresh_token), API_B));
    assert.equal(jwtParts(String(other.access_token)).payload.aud, API_B);
    const all = assertTokenResponse(await refresh(String(other.refresh_token)));
    assert.deepEqual(jwtParts(String(all.access_token)).payload.aud, [API_A, API_B], 'no resource → every resource of the grant');
  });

  it('refresh for a resource the client may use but the grant does not cover → invalid_target, and the refresh token still works', async () => {
    const first = await password(API_A);
    const res = assertOAuthError(await refresh(String(first.refresh_token), API_SHORT), 400, 'invalid_target');
    assert.equal(res.error_description, 'The requested resource is not part of the original grant');
    assertOAuthError(await refresh(String(first.refresh_token), [API_A, API_B]), 400, 'invalid_target');
    const ok = assertTokenResponse(await refresh(String(first.refresh_token)));
    assert.equal(jwtParts(String(ok.access_token)).payload.aud, API_A);
  });

  it('a grant without resources is a grant for the default audience only', async () => {
    const first = await password();
    assert.equal(jwtParts(String(first.access_token)).payload.aud, ISSUER);
    assertOAuthError(await refresh(String(first.refresh_token), API_A), 400, 'invalid_target');
    const ok = assertTokenResponse(await refresh(String(first.refresh_token), ISSUER));
    assert.equal(jwtParts(String(ok.access_token)).payload.aud, ISSUER);
  });

  it('a malformed resource at refresh → invalid_target', async () => {
    const first = await password(API_A);
    assertOAuthError(await refresh(String(first.refresh_token), 'relative'), 400, 'invalid_target');
  });

  it('a resource the client lost since the grant → invalid_target at refresh', async () => {
    const first = await password([API_A, API_B]);
    const client = await h.portcullis.clients.get(PWD[0]);
    assert.ok(client !== undefined);
    await h.portcullis.clients.upsert({ client_id: PWD[0], client_secret: PWD[1], grant_types: ['password', 'refresh_token'], scope: 'api:read api:write', allowed_audiences: [API_A, API_SHORT] });
    try {
      assertOAuthError(await refresh(String(first.refresh_token)), 400, 'invalid_target');
      const ok = assertTokenResponse(await refresh(String(first.refresh_token), API_A));
      assert.equal(jwtParts(String(ok.access_token)).payload.aud, API_A);
    } finally {
      await h.portcullis.clients.upsert({ client_id: PWD[0], client_secret: PWD[1], grant_types: ['password', 'refresh_token'], scope: 'api:read api:write', allowed_audiences: [API_A, API_B, API_SHORT] });
    }
  });
});

describe('introspection by the resource servers of the audience', () => {
  async function introspect(token: string, caller: [string, string]) {
    return body(await h.post('/introspect', { token }, { basic: caller }));
  }

  it('a token for A is visible to the resource server of A, not to the one of B', async () => {
    const token = String(assertTokenResponse(await cc(API_A)).access_token);
    const seen = await introspect(token, RS_A);
    assert.equal(seen.active, true);
    assert.equal(seen.aud, API_A);
    assert.equal(seen.client_id, RSVC[0]);
    assert.deepEqual(await introspect(token, RS_B), { active: false });
  });

  it('a token for A and B is visible to both resource servers', async () => {
    const token = String(assertTokenResponse(await cc([API_A, API_B])).access_token);
    assert.deepEqual((await introspect(token, RS_A)).aud, [API_A, API_B]);
    assert.equal((await introspect(token, RS_B)).active, true);
  });

  it('a token for the default audience is not visible to the resource server of A', async () => {
    const token = String(assertTokenResponse(await cc(undefined)).access_token);
    assert.deepEqual(await introspect(token, RS_A), { active: false });
  });
});

describe('discovery', () => {
  it('advertises nothing about resource indicators (RFC 8707 defines no metadata)', async () => {
    const meta = body(await h.get('/.well-known/openid-configuration'));
    assert.deepEqual(Object.keys(meta).filter((k) => /resource|audience/i.test(k)), []);
  });
});
