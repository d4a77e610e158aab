import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignJWT, base64url, decodeJwt, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import type { PortcullisOptions } from '../../src/core/options.js';
import { JWT_BEARER_GRANT_TYPE, type JwtBearerOptions } from '../../src/grants/jwt-bearer.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, assertTokenResponse, createHarness, ISSUER, type Harness } from '../helpers/harness.js';

const GT = JWT_BEARER_GRANT_TYPE;
const IDP = 'https://idp.example.com';
const OTHER_IDP = 'https://other-idp.example.com';
const TOKEN_ENDPOINT = `${ISSUER}/token`;
const SVC: [string, string] = ['batch', 'batch-secret-0123456789abcdef'];
const INVALID = 'The assertion is invalid, expired or already used';

interface Key {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

async function key(alg: string, kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

interface BearerHarness extends Harness {
  /** The `detail` of the last refused request (logged, never sent). */
  lastDetail(): string | undefined;
  idp: Key;
  /** The key of the second trusted issuer (ES256 only). */
  otherIdp: Key;
  aliceId: string;
  /** A signed assertion: claims default to a valid one for alice. */
  assertion(claims?: Record<string, unknown>, signWith?: Key, header?: Record<string, unknown>): Promise<string>;
  grant(assertion: string, client?: [string, string], extra?: Record<string, string>): ReturnType<Harness['post']>;
}

let counter = 0;

async function bearerHarness(alg = 'ES256', bearer: Partial<JwtBearerOptions> = {}): Promise<BearerHarness> {
  const idp = await key(alg, 'idp-1');
  const otherIdp = await key('ES256', 'other-1');
  let lastDetail: string | undefined;
  const record = (obj: object): void => {
    const { event, detail } = obj as { event?: string; detail?: string };
    if (event === 'request.refused') lastDetail = detail;
  };
  const h = await createHarness({
    logger: { debug: record, info: record, warn: record, error: record },
    grants: { password: true, jwt_bearer: true },
    jwtBearer: {
      trustedIssuers: [
        { issuer: IDP, jwks: { keys: [idp.publicJwk as Record<string, unknown>] } },
        { issuer: OTHER_IDP, jwks: { keys: [otherIdp.publicJwk as Record<string, unknown>] }, algorithms: ['ES256'] },
      ],
      ...bearer,
    },
  });
  await h.portcullis.clients.upsert({ client_id: SVC[0], client_secret: SVC[1], grant_types: [GT, 'refresh_token'], scope: 'api:read api:write' });
  const alice = await h.storage.getUserByUsername('alice');
  assert.ok(alice);
  return {
    ...h,
    lastDetail: () => lastDetail,
    idp,
    otherIdp,
    aliceId: alice.id,
    async assertion(claims = {}, signWith = idp, header = {}) {
      const now = h.clock.now();
      const payload: JWTPayload = { iss: IDP, sub: 'alice', aud: TOKEN_ENDPOINT, iat: now, exp: now + 300, jti: `jti-${++counter}`, ...claims };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload).setProtectedHeader({ alg: signWith.alg, kid: signWith.kid, ...header }).sign(signWith.privateKey);
    },
    grant(assertion, client = SVC, extra = {}) {
      return h.post('/token', { grant_type: GT, assertion, ...extra }, { basic: client });
    },
  };
}

describe('JWT bearer grant: switch and clients', () => {
  it('is off by default (unsupported_grant_type) and not advertised', async () => {
    const h = await createHarness();
    try {
      assertOAuthError(await h.post('/token', { grant_type: GT, assertion: 'x' }, { basic: ['svc1', 'svc1-secret-0123456789'] }), 400, 'unsupported_grant_type');
      assert.ok(!(h.portcullis.metadata().grant_types_supported as string[]).includes(GT));
    } finally {
      await h.close();
    }
  });

  it('is advertised when on', async () => {
    const h = await bearerHarness();
    try {
      assert.ok((h.json(await h.get('/.well-known/oauth-authorization-server')).grant_types_supported as string[]).includes(GT));
    } finally {
      await h.close();
    }
  });

  it('a client not registered for it is unauthorized_client', async () => {
    const h = await bearerHarness();
    try {
      assertOAuthError(await h.grant(await h.assertion(), ['svc1', 'svc1-secret-0123456789']), 400, 'unauthorized_client');
    } finally {
      await h.close();
    }
  });

  it('a public client registered for it may use it (identified by client_id)', async () => {
    const h = await bearerHarness();
    try {
      await h.portcullis.clients.upsert({ client_id: 'cli', token_endpoint_auth_method: 'none', grant_types: [GT], scope: 'api:read' });
      const body = assertTokenResponse(await h.post('/token', { grant_type: GT, assertion: await h.assertion(), client_id: 'cli' }));
      assert.equal(decodeJwt(body.access_token as string).client_id, 'cli');
    } finally {
      await h.close();
    }
  });

  it('without an assertion: invalid_request', async () => {
    const h = await bearerHarness();
    try {
      const body = assertOAuthError(await h.post('/token', { grant_type: GT }, { basic: SVC }), 400, 'invalid_request');
      assert.equal(body.error_description, 'Missing parameter: assertion');
    } finally {
      await h.close();
    }
  });
});

describe('JWT bearer grant: success', () => {
  for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA']) {
    it(`issues tokens for the user named by sub (${alg}), with a refresh token and a grant`, async () => {
      const h = await bearerHarness(alg);
      try {
        const body = assertTokenResponse(await h.grant(await h.assertion(), SVC, { scope: 'api:read' }));
        assert.equal(body.scope, 'api:read');
        assert.equal(typeof body.refresh_token, 'string');
        assert.equal(body.id_token, undefined);
        const claims = decodeJwt(body.access_token as string);
        assert.equal(claims.sub, h.aliceId);
        assert.equal(claims.client_id, SVC[0]);
        assert.equal(typeof claims.gid, 'string');
        const grant = await h.storage.getGrant(claims.gid as string);
        assert.equal(grant?.grant_type, GT);
        assert.equal(grant?.user_id, h.aliceId);
        // The refresh token works; revoking it ends the access token.
        const refreshed = assertTokenResponse(await h.post('/token', { grant_type: 'refresh_token', refresh_token: body.refresh_token as string }, { basic: SVC }));
        assert.equal(decodeJwt(refreshed.access_token as string).sub, h.aliceId);
        await h.post('/revoke', { token: refreshed.refresh_token as string }, { basic: SVC });
        assert.deepEqual(h.json(await h.post('/introspect', { token: body.access_token as string }, { basic: SVC })), { active: false });
      } finally {
        await h.close();
      }
    });
  }

  it('maps sub by user id as well as by username; aud may be the issuer, or a one-element array', async () => {
    const h = await bearerHarness();
    try {
      assertTokenResponse(await h.grant(await h.assertion({ sub: h.aliceId, aud: ISSUER })));
      assertTokenResponse(await h.grant(await h.assertion({ aud: [TOKEN_ENDPOINT] })));
    } finally {
      await h.close();
    }
  });

  it('without refresh_token in the client\'s grant types: no refresh token; scope defaults to the client\'s', async () => {
    const h = await bearerHarness();
    try {
      await h.portcullis.clients.upsert({ client_id: 'norefresh', client_secret: 'norefresh-secret-0123456789', grant_types: [GT], scope: 'api:read' });
      const body = assertTokenResponse(await h.grant(await h.assertion(), ['norefresh', 'norefresh-secret-0123456789']));
      assert.equal(body.refresh_token, undefined);
      assert.equal(body.scope, 'api:read');
    } finally {
      await h.close();
    }
  });

  it('resource (RFC 8707): aud reflects an allowed resource; a resource the client may not use is invalid_target and spends no jti', async () => {
    const h = await bearerHarness();
    try {
      await h.portcullis.clients.upsert({ client_id: 'rsc', client_secret: 'rsc-secret-0123456789', grant_types: [GT], scope: 'api:read', allowed_audiences: ['https://api.example.com/'] });
      const creds: [string, string] = ['rsc', 'rsc-secret-0123456789'];
      const assertion = await h.assertion();
      assertOAuthError(await h.grant(assertion, creds, { resource: 'https://other.example.com/' }), 400, 'invalid_target');
      const body = assertTokenResponse(await h.grant(assertion, creds, { resource: 'https://api.example.com/' }));
      assert.equal(decodeJwt(body.access_token as string).aud, 'https://api.example.com/');
    } finally {
      await h.close();
    }
  });

  it('a scope outside the client\'s is invalid_scope', async () => {
    const h = await bearerHarness();
    try {
      assertOAuthError(await h.grant(await h.assertion(), SVC, { scope: 'admin' }), 400, 'invalid_scope');
    } finally {
      await h.close();
    }
  });

  it('mapSubject decides the user; undefined is invalid_grant', async () => {
    const calls: [unknown, string][] = [];
    let aliceId = '';
    const h = await bearerHarness('ES256', {
      mapSubject: (claims, issuer) => {
        calls.push([claims.sub, issuer]);
        return claims.sub === 'employee-42' ? aliceId : undefined;
      },
    });
    aliceId = h.aliceId;
    try {
      const body = assertTokenResponse(await h.grant(await h.assertion({ sub: 'employee-42' })));
      assert.equal(decodeJwt(body.access_token as string).sub, h.aliceId);
      assertOAuthError(await h.grant(await h.assertion({ sub: 'alice' })), 400, 'invalid_grant');
      assert.deepEqual(calls, [['employee-42', IDP], ['alice', IDP]]);
    } finally {
      await h.close();
    }
  });

  it('a mapped id that is not a user is invalid_grant', async () => {
    const h = await bearerHarness('ES256', { mapSubject: async () => 'no-such-user' });
    try {
      assertOAuthError(await h.grant(await h.assertion()), 400, 'invalid_grant');
    } finally {
      await h.close();
    }
  });
});

describe('JWT bearer grant: refused assertions (always the same invalid_grant)', () => {
  let h: BearerHarness;
  before(async () => {
    h = await bearerHarness();
  });
  after(() => h.close());

  /** Refused with the generic invalid_grant; the logged detail says why. */
  async function refused(assertion: string, why: RegExp): Promise<void> {
    const body = assertOAuthError(await h.grant(assertion), 400, 'invalid_grant');
    assert.equal(body.error_description, INVALID);
    assert.match(h.lastDetail() ?? '', why);
  }

  it('a replayed jti', async () => {
    const assertion = await h.assertion();
    assertTokenResponse(await h.grant(assertion));
    await refused(assertion, /replayed/);
    // A new assertion reusing the jti is a replay too; the same jti from another issuer is not.
    await refused(await h.assertion({ jti: decodeJwt(assertion).jti }), /replayed/);
    assertTokenResponse(await h.grant(await h.assertion({ iss: OTHER_IDP, jti: decodeJwt(assertion).jti }, h.otherIdp)));
  });

  for (const [name, claims, why] of [
    ['no iss', { iss: undefined }, /iss/],
    ['no sub', { sub: undefined }, /no sub/],
    ['an empty sub', { sub: '' }, /no sub/],
    ['no aud', { aud: undefined }, /aud/],
    ['no exp', { exp: undefined }, /no numeric exp/],
    ['no jti', { jti: undefined }, /no jti/],
    ['a jti longer than 256', { jti: 'j'.repeat(257) }, /jti is too long/],
    ['a foreign aud', { aud: 'https://other-as.example/token' }, /aud/],
    ['an aud array naming another audience too', { aud: [TOKEN_ENDPOINT, 'https://other-as.example'] }, /aud/],
    ['an unknown issuer', { iss: 'https://unknown.example' }, /not trusted/],
    ['expired beyond the tolerance', { exp: 1_800_000_000 - 16, iat: 1_800_000_000 - 100 }, /exp/],
    ['exp more than an hour ahead', { exp: 1_800_000_000 + 3600 + 16 }, /too far in the future/],
    ['nbf 61 s ahead', { nbf: 1_800_000_000 + 61 }, /nbf/],
    ['iat 61 s ahead', { iat: 1_800_000_000 + 61 }, /iat is in the future/],
    ['an unmapped subject', { sub: 'mallory' }, /not mapped/],
  ] as const) {
    it(`an assertion with ${name}`, async () => {
      await refused(await h.assertion({ ...claims }), why);
    });
  }

  it('accepts nbf 8 s ahead and exp just past within the tolerance, and exp exactly an hour (+ tolerance) ahead', async () => {
    assertTokenResponse(await h.grant(await h.assertion({ nbf: 1_800_000_000 + 8 })));
    assertTokenResponse(await h.grant(await h.assertion({ exp: 1_800_000_000 - 10, iat: 1_800_000_000 - 100 })));
    assertTokenResponse(await h.grant(await h.assertion({ exp: 1_800_000_000 + 3600 + 15 })));
  });

  it('an assertion signed by a key the issuer does not publish, or by another trusted issuer\'s key', async () => {
    const rogue = await key('ES256', 'idp-1');
    await refused(await h.assertion({}, rogue), /signature verification failed/);
    await refused(await h.assertion({ iss: OTHER_IDP }, rogue), /no applicable key|signature verification failed/);
    // Signed by the other trusted issuer's real key, but claiming to be IDP.
    await refused(await h.assertion({ iss: IDP }, h.otherIdp), /no applicable key/);
  });

  it('alg none', async () => {
    const now = h.clock.now();
    const claims = { iss: IDP, sub: 'alice', aud: TOKEN_ENDPOINT, iat: now, exp: now + 300, jti: 'none-1' };
    await refused(`${base64url.encode(JSON.stringify({ alg: 'none' }))}.${base64url.encode(JSON.stringify(claims))}.`, /rejected/);
  });

  it('HS256 "signed" with the issuer\'s public key (algorithm confusion)', async () => {
    const now = h.clock.now();
    const claims = { iss: IDP, sub: 'alice', aud: TOKEN_ENDPOINT, iat: now, exp: now + 300, jti: 'hs-1' };
    const pem = await exportSPKI(h.idp.publicKey);
    await refused(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: h.idp.kid }).sign(new TextEncoder().encode(pem)), /ERR_JOSE_ALG_NOT_ALLOWED/);
    const jwkBytes = new TextEncoder().encode(JSON.stringify(h.idp.publicJwk));
    await refused(await new SignJWT({ ...claims, jti: 'hs-2' }).setProtectedHeader({ alg: 'HS256' }).sign(jwkBytes), /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('an algorithm outside the issuer\'s allow-list', async () => {
    const rs = await key('RS256', 'other-1');
    await refused(await h.assertion({ iss: OTHER_IDP }, rs), /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('a key embedded in the token header is never used', async () => {
    const attacker = await key('ES256', 'attacker');
    await refused(await h.assertion({}, attacker, { jwk: attacker.publicJwk }), /no applicable key/);
  });

  it('garbage', async () => {
    await refused('not-a-jwt', /not a JWT/);
    await refused('a.b.c', /not a JWT/);
  });
});

describe('JWT bearer grant: remote JWKS (jwksUri)', () => {
  let jwksServer: Server;
  let url: string;
  let idp: Key;
  let fetches = 0;
  before(async () => {
    idp = await key('ES256', 'remote-1');
    jwksServer = createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [idp.publicJwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const address = jwksServer.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/jwks`;
  });
  after(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

  it('fetches the key set once and verifies with it', async () => {
    const h = await createHarness({ grants: { password: true, jwt_bearer: true }, jwtBearer: { trustedIssuers: [{ issuer: IDP, jwksUri: url, algorithms: ['ES256'] }] } });
    try {
      await h.portcullis.clients.upsert({ client_id: SVC[0], client_secret: SVC[1], grant_types: [GT], scope: 'api:read' });
      const sign = (jti: string) => {
        const now = h.clock.now();
        return new SignJWT({ iss: IDP, sub: 'alice', aud: ISSUER, iat: now, exp: now + 60, jti }).setProtectedHeader({ alg: 'ES256', kid: 'remote-1' }).sign(idp.privateKey);
      };
      assertTokenResponse(await h.post('/token', { grant_type: GT, assertion: await sign('r1') }, { basic: SVC }));
      assertTokenResponse(await h.post('/token', { grant_type: GT, assertion: await sign('r2') }, { basic: SVC }));
      assert.equal(fetches, 1);
    } finally {
      await h.close();
    }
  });
});

describe('JWT bearer grant: configuration', () => {
  const create = (jwtBearer: unknown) =>
    createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), grants: { jwt_bearer: true }, jwtBearer: jwtBearer as PortcullisOptions['jwtBearer'] });

  it('needs at least one trusted issuer when on', async () => {
    await assert.rejects(create(undefined), /jwtBearer\.trustedIssuers/);
    await assert.rejects(create({ trustedIssuers: [] }), /at least one/);
  });

  it('refuses HMAC and none algorithms, and bad key sets', async () => {
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwksUri: 'https://idp.example.com/jwks', algorithms: ['HS256'] }] }), /asymmetric/);
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwksUri: 'https://idp.example.com/jwks', algorithms: ['none'] }] }), /asymmetric/);
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwks: { keys: [] } }] }), /at least one key/);
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }] }), /symmetric/);
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwksUri: 'ftp://idp.example.com/jwks' }] }), /https/);
    await assert.rejects(create({ trustedIssuers: [{ issuer: IDP, jwksUri: 'https://idp.example.com/jwks' }], maxAssertionLifetime: 0 }), /maxAssertionLifetime/);
  });

  it('the trusted issuers are ignored while the grant is off', async () => {
    const p = await createPortcullis({ issuer: ISSUER, storage: createMemoryStorage(), jwtBearer: { trustedIssuers: [] } });
    try {
      assert.ok(!p.grantTypes.includes(GT));
    } finally {
      await p.close();
    }
  });
});
