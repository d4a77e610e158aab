/**
 * Per-resource settings (`resources` option): token format, lifetime, signing algorithm and scopes
 * apply when exactly one configured resource is targeted; with several, the server defaults apply.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { createPortcullis } from '../../src/provider.js';
import { ConfigError } from '../../src/core/errors.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, assertTokenResponse, ISSUER, type Harness } from '../helpers/harness.js';
import { API_A, API_OPAQUE, API_RS, API_SCOPED, API_SHORT, body, createResourceHarness, form, jwtParts, PWD, RS_A, RS_OPAQUE, RSVC } from './helpers.js';

let h: Harness;
before(async () => {
  h = await createResourceHarness({ hooks: { beforeIssue: (ctx) => (ctx.resources !== undefined ? { accessTokenClaims: { seen_resources: ctx.resources } } : undefined) } });
});
after(async () => {
  await h.close();
});

function cc(resource: string | string[] | undefined, extra: Record<string, string> = {}) {
  return h.post('/token', form({ grant_type: 'client_credentials', ...(resource !== undefined ? { resource } : {}), ...extra }), { basic: RSVC });
}

async function jwks(): Promise<ReturnType<typeof createLocalJWKSet>> {
  return createLocalJWKSet(JSON.parse((await h.get('/jwks')).body) as JSONWebKeySet);
}

describe('per-resource token format', () => {
  it('the opaque resource gets an opaque token while other resources get JWTs', async () => {
    const opaque = assertTokenResponse(await cc(API_OPAQUE));
    const token = String(opaque.access_token);
    assert.equal(token.split('.').length, 1, 'opaque: not a JWT');
    assert.equal(opaque.expires_in, 3600);
    const jwt = String(assertTokenResponse(await cc(API_A)).access_token);
    assert.equal(jwt.split('.').length, 3);
    assert.equal(String(assertTokenResponse(await cc(undefined)).access_token).split('.').length, 3);
  });

  it('the opaque token introspects with its audience for the resource server of that resource', async () => {
    const token = String(assertTokenResponse(await cc(API_OPAQUE)).access_token);
    const seen = body(await h.post('/introspect', { token }, { basic: RS_OPAQUE }));
    assert.equal(seen.active, true);
    assert.equal(seen.aud, API_OPAQUE);
    assert.deepEqual(body(await h.post('/introspect', { token }, { basic: RS_A })), { active: false });
  });

  it('with several resources the defaults apply (JWT)', async () => {
    const token = String(assertTokenResponse(await cc([API_OPAQUE, API_A])).access_token);
    assert.equal(token.split('.').length, 3);
    assert.deepEqual(jwtParts(token).payload.aud, [API_OPAQUE, API_A]);
  });
});

describe('per-resource lifetime', () => {
  it('expires_in equals the configured ttl and exp - iat', async () => {
    const res = assertTokenResponse(await cc(API_SHORT));
    assert.equal(res.expires_in, 120);
    const { payload } = jwtParts(String(res.access_token));
    assert.equal(Number(payload.exp) - Number(payload.iat), 120);
    assert.equal(payload.aud, API_SHORT);
  });

  it('the token is active until then and inactive after (moving clock)', async () => {
    const token = String(assertTokenResponse(await cc(API_SHORT)).access_token);
    h.clock.advance(119);
    assert.equal(body(await h.post('/introspect', { token }, { basic: RSVC })).active, true);
    h.clock.advance(1);
    assert.deepEqual(body(await h.post('/introspect', { token }, { basic: RSVC })), { active: false });
  });

  it('applies to password grants and refreshes too; several resources get the default lifetime', async () => {
    const first = assertTokenResponse(await h.post('/token', form({ grant_type: 'password', username: 'bob', password: 'bob-password', resource: [API_A, API_SHORT] }), { basic: PWD }));
    assert.equal(first.expires_in, 3600);
    const narrowed = assertTokenResponse(await h.post('/token', form({ grant_type: 'refresh_token', refresh_token: String(first.refresh_token), resource: API_SHORT }), { basic: PWD }));
    assert.equal(narrowed.expires_in, 120);
    const { payload } = jwtParts(String(narrowed.access_token));
    assert.equal(Number(payload.exp) - Number(payload.iat), 120);
  });
});

describe('per-resource signing algorithm', () => {
  it('the RS256 resource gets an RS256 token that verifies with jose against /jwks', async () => {
    const token = String(assertTokenResponse(await cc(API_RS)).access_token);
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    const { payload, protectedHeader } = await jwtVerify(token, await jwks(), {
      issuer: ISSUER,
      audience: API_RS,
      algorithms: ['RS256'],
      typ: 'at+jwt',
      currentDate: new Date(h.clock.now() * 1000),
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.client_id, RSVC[0]);
  });

  it('other resources keep the server algorithm (ES256), also verifiable', async () => {
    const token = String(assertTokenResponse(await cc(API_A)).access_token);
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    await jwtVerify(token, await jwks(), { issuer: ISSUER, audience: API_A, algorithms: ['ES256'], currentDate: new Date(h.clock.now() * 1000) });
  });

  it('the RS256 token introspects as active (the server verifies its own RS256 tokens)', async () => {
    const token = String(assertTokenResponse(await cc(API_RS)).access_token);
    const seen = body(await h.post('/introspect', { token }, { basic: RSVC }));
    assert.equal(seen.active, true);
    assert.equal(seen.aud, API_RS);
  });

  it('a key is generated at start for a resource algorithm the server did not have', async () => {
    const p = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { authorization_code: false }, resources: { [API_RS]: { signingAlgorithm: 'PS256' } } });
    try {
      assert.deepEqual(p.keys.algorithms().sort(), ['ES256', 'PS256']);
    } finally {
      await p.close();
    }
  });
});

describe('per-resource scopes', () => {
  it('the scope is narrowed to the resource scopes, and the response says so', async () => {
    const res = assertTokenResponse(await cc(API_SCOPED, { scope: 'api:read orders:read' }));
    assert.equal(res.scope, 'orders:read');
    assert.equal(jwtParts(String(res.access_token)).payload.scope, 'orders:read');
  });

  it('no scope requested → the client scope, narrowed', async () => {
    const res = assertTokenResponse(await cc(API_SCOPED));
    assert.equal(res.scope, 'orders:read orders:write');
  });

  it('nothing left after narrowing → invalid_scope', async () => {
    const res = assertOAuthError(await cc(API_SCOPED, { scope: 'api:read' }), 400, 'invalid_scope');
    assert.equal(res.error_description, 'None of the requested scopes applies to the requested resource');
  });

  it('other resources keep the whole scope', async () => {
    assert.equal(assertTokenResponse(await cc(API_A, { scope: 'api:read orders:read' })).scope, 'api:read orders:read');
  });
});

describe('the beforeIssue hook', () => {
  it('sees the resources of the token', async () => {
    const { payload } = jwtParts(String(assertTokenResponse(await cc(API_A)).access_token));
    assert.deepEqual(payload.seen_resources, [API_A]);
    const none = jwtParts(String(assertTokenResponse(await cc(undefined)).access_token)).payload;
    assert.equal(none.seen_resources, undefined);
  });
});

describe('the resources option is validated at start', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['a relative resource URI', { '/api': {} }],
    ['a fragment', { 'https://api.example.com/#x': {} }],
    ['a bad ttl', { [API_A]: { accessTokenTtl: 0 } }],
    ['a fractional ttl', { [API_A]: { accessTokenTtl: 1.5 } }],
    ['a bad format', { [API_A]: { accessTokenFormat: 'paseto' } }],
    ['a bad algorithm', { [API_A]: { signingAlgorithm: 'HS256' } }],
    ['a bad scope', { [API_A]: { scopes: ['a b'] } }],
    ['an unknown setting', { [API_A]: { audience: 'x' } }],
  ];
  for (const [name, resources] of cases) {
    it(`${name} → ConfigError`, async () => {
      await assert.rejects(createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), resources: resources as never }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('resources['));
    });
  }
});
