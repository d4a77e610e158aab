/**
 * RFC 8707 at the authorization endpoint: `resource` may repeat, must be an absolute URI without a
 * fragment the client may use (else `invalid_target`, redirected to the client), is kept in the
 * AuthorizationRequest, the code and the grant, and bounds what the token endpoint may issue.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AuthorizationRequest } from '../../src/authorize/request.js';
import type { OAuthResponse } from '../../src/core/http.js';
import { tokenId } from '../../src/core/crypto.js';
import { assertOAuthError, assertTokenResponse, ISSUER, type Harness } from '../helpers/harness.js';
import { API_A, API_B, API_OTHER, API_SHORT, body, createResourceHarness, form, jwtParts, RS_B } from './helpers.js';

const APP: [string, string] = ['app', 'app-secret-0123456789'];
const CB = 'https://app.example.com/cb';
const VERIFIER = 'v'.repeat(43);
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

let h: Harness;
let aliceId: string;
before(async () => {
  h = await createResourceHarness();
  await h.portcullis.clients.upsert({
    client_id: APP[0],
    client_secret: APP[1],
    redirect_uris: [CB],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid offline_access api:read',
    allowed_audiences: [API_A, API_B, API_SHORT],
  });
  aliceId = (await h.storage.getUserByUsername('alice'))!.id;
});
after(async () => {
  await h.close();
});

function query(resource: string[] = [], extra: Record<string, string | string[]> = {}): string {
  return form({ response_type: 'code', client_id: APP[0], redirect_uri: CB, scope: 'openid offline_access api:read', state: 'st-1', code_challenge: CHALLENGE, code_challenge_method: 'S256', resource, ...extra });
}

function validate(resource: string[] = [], extra: Record<string, string | string[]> = {}): Promise<AuthorizationRequest> {
  return h.portcullis.authorization.validate({ method: 'GET', path: '/authorize', query: query(resource, extra), headers: {} });
}

/** Validate and approve as alice; the code from the redirect. */
async function code(resource: string[] = []): Promise<string> {
  const request = await validate(resource);
  const res = await h.portcullis.authorization.complete(request, { isAuthorizationApproved: true, user: { id: aliceId } });
  const location = new URL(res.headers.location!);
  const value = location.searchParams.get('code');
  assert.ok(value, `a code in ${res.headers.location}`);
  return value;
}

function redeem(value: string, resource?: string | string[]): Promise<OAuthResponse> {
  return h.post('/token', form({ grant_type: 'authorization_code', code: value, redirect_uri: CB, code_verifier: VERIFIER, ...(resource !== undefined ? { resource } : {}) }), { basic: APP });
}

/** GET /authorize through the hosted endpoint: an error must come back as a redirect to the client. */
async function authorizeError(resource: string[], extra: Record<string, string | string[]> = {}): Promise<URLSearchParams> {
  const res = await h.portcullis.handle({ method: 'GET', path: '/authorize', query: query(resource, extra), headers: {} });
  assert.equal(res.status, 302, res.body);
  const location = new URL(res.headers.location!);
  assert.equal(location.origin + location.pathname, CB);
  assert.equal(location.searchParams.get('state'), 'st-1');
  assert.equal(location.searchParams.get('iss'), ISSUER);
  assert.equal(location.searchParams.get('code'), null);
  return location.searchParams;
}

describe('RFC 8707 resource at the authorization endpoint', () => {
  it('repeated resource values are accepted and kept, de-duplicated, in the AuthorizationRequest', async () => {
    const request = await validate([API_A, API_B, API_A]);
    assert.deepEqual(request.resource, [API_A, API_B]);
    assert.deepEqual(JSON.parse(JSON.stringify(request)).resource, [API_A, API_B], 'serialisable');
  });

  it('no resource → no resource member', async () => {
    assert.equal((await validate()).resource, undefined);
  });

  for (const [name, bad] of [['a fragment', 'https://api-a.example.com/#x'], ['a relative URI', '/api'], ['no scheme', 'api-a.example.com']] as const) {
    it(`${name} → invalid_target redirected to the client with state and iss`, async () => {
      const params = await authorizeError([bad]);
      assert.equal(params.get('error'), 'invalid_target');
      assert.equal(params.get('error_description'), 'The resource parameter must be an absolute URI without a fragment');
    });
  }

  it('a resource the client may not use → invalid_target redirected', async () => {
    const params = await authorizeError([API_A, API_OTHER]);
    assert.equal(params.get('error'), 'invalid_target');
    assert.equal(params.get('error_description'), 'The client may not obtain tokens for the requested resource');
  });

  it('other parameters repeated still → invalid_request', async () => {
    const params = await authorizeError([API_A, API_B], { scope: ['api:read', 'api:read'] });
    assert.equal(params.get('error'), 'invalid_request');
    assert.equal(params.get('error_description'), 'Parameter scope was sent more than once');
  });

  it('the code and the grant store the resources', async () => {
    const value = await code([API_A, API_B]);
    const record = await h.storage.findArtifact('authorization_code', tokenId(value), h.clock.now());
    assert.deepEqual(record?.data?.resources, [API_A, API_B]);
    const grant = await h.storage.getGrant(record!.grant_id!);
    assert.deepEqual(grant?.data?.resources, [API_A, API_B]);
  });
});

describe('RFC 8707 resource at the token endpoint for a code', () => {
  it('no resource at the token endpoint → aud is every resource of the authorization request; the ID token is unchanged', async () => {
    const res = assertTokenResponse(await redeem(await code([API_A, API_B])));
    assert.deepEqual(jwtParts(String(res.access_token)).payload.aud, [API_A, API_B]);
    assert.equal(jwtParts(String(res.id_token)).payload.aud, APP[0]);
    assert.equal(typeof res.refresh_token, 'string');
  });

  it('one resource of the request → aud is that one; the refresh token can then get the other one', async () => {
    const res = assertTokenResponse(await redeem(await code([API_A, API_B]), API_B));
    assert.equal(jwtParts(String(res.access_token)).payload.aud, API_B);
    const refreshed = assertTokenResponse(await h.post('/token', form({ grant_type: 'refresh_token', refresh_token: String(res.refresh_token), resource: API_A }), { basic: APP }));
    assert.equal(jwtParts(String(refreshed.access_token)).payload.aud, API_A);
  });

  it('a resource the client may use but the authorization request did not name → invalid_target; the code is not consumed', async () => {
    const value = await code([API_A]);
    const res = assertOAuthError(await redeem(value, API_SHORT), 400, 'invalid_target');
    assert.equal(res.error_description, 'The requested resource is not part of the original grant');
    assertOAuthError(await redeem(value, API_OTHER), 400, 'invalid_target');
    assertOAuthError(await redeem(value, 'not a uri'), 400, 'invalid_target');
    const ok = assertTokenResponse(await redeem(value, API_A));
    assert.equal(jwtParts(String(ok.access_token)).payload.aud, API_A);
  });

  it('a code without resources: the default audience only', async () => {
    const value = await code();
    assertOAuthError(await redeem(value, API_A), 400, 'invalid_target');
    const ok = assertTokenResponse(await redeem(value));
    assert.equal(jwtParts(String(ok.access_token)).payload.aud, ISSUER);
  });

  it('per-resource lifetime applies to the code flow: expires_in = exp - iat = ttl', async () => {
    const ok = assertTokenResponse(await redeem(await code([API_SHORT])));
    assert.equal(ok.expires_in, 120);
    const { payload } = jwtParts(String(ok.access_token));
    assert.equal(Number(payload.exp) - Number(payload.iat), 120);
  });

  it('the resource server of B introspects a code-flow token for B', async () => {
    const ok = assertTokenResponse(await redeem(await code([API_B])));
    const seen = body(await h.post('/introspect', { token: String(ok.access_token) }, { basic: RS_B }));
    assert.equal(seen.active, true);
    assert.equal(seen.aud, API_B);
    assert.equal(seen.sub, aliceId);
  });
});

describe('RFC 8707 tokens at UserInfo', () => {
  it('an access token for another resource is refused at UserInfo (401 invalid_token); one for this server works', async () => {
    const forApi = body(await redeem(await code([API_A])));
    const userinfo = (token: string) => h.portcullis.handle({ method: 'GET', path: '/userinfo', query: '', headers: { authorization: `Bearer ${token}` } });
    const refused = await userinfo(String(forApi.access_token));
    assert.equal(refused.status, 401);
    assert.match(refused.headers['www-authenticate'] ?? '', /error="invalid_token"/);
    const own = body(await redeem(await code()));
    assert.equal((await userinfo(String(own.access_token))).status, 200);
  });
});
