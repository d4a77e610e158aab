import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignJWT, base64url, exportSPKI, importJWK } from 'jose';
import type { CryptoKey } from 'jose';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, assertTokenResponse, createHarness, ISSUER } from '../helpers/harness.js';
import {
  APP,
  AT,
  BILLING,
  EXTERNAL_ISSUER,
  GATEWAY,
  IDT,
  JWT,
  OPAQUE_APP,
  ORDERS,
  ORDERS_API,
  OTHER,
  TE,
  claimsOf,
  externalKey,
  introspect,
  teHarness,
} from './fixtures.js';

describe('token exchange: switch and client rules', () => {
  it('is off by default: unsupported_grant_type, and not advertised', async () => {
    const h = await createHarness();
    try {
      assertOAuthError(await h.post('/token', { grant_type: TE, subject_token: 'x', subject_token_type: AT }, { basic: ['svc1', 'svc1-secret-0123456789'] }), 400, 'unsupported_grant_type');
      assert.ok(!(h.portcullis.metadata().grant_types_supported as string[]).includes(TE));
      await assert.rejects(
        h.portcullis.clients.upsert({ client_id: 'x', client_secret: 'x-secret-0123456789', grant_types: [TE] }),
        /does not serve/,
      );
    } finally {
      await h.close();
    }
  });

  it('is advertised in discovery when switched on', async () => {
    const h = await teHarness();
    try {
      const meta = h.json(await h.get('/.well-known/openid-configuration'));
      assert.ok((meta.grant_types_supported as string[]).includes(TE));
    } finally {
      await h.close();
    }
  });

  it('a public client is refused (unauthorized_client)', async () => {
    const h = await teHarness();
    try {
      await h.portcullis.clients.upsert({ client_id: 'spa-te', token_endpoint_auth_method: 'none', grant_types: ['password', TE], scope: 'api:read' });
      const { access_token } = await h.userToken('api:read');
      const res = await h.post('/token', { grant_type: TE, client_id: 'spa-te', subject_token: access_token, subject_token_type: AT });
      assertOAuthError(res, 400, 'unauthorized_client');
    } finally {
      await h.close();
    }
  });

  it('a client not registered for the grant is refused (unauthorized_client)', async () => {
    const h = await teHarness();
    try {
      const subject = await h.clientToken(OTHER);
      assertOAuthError(await h.exchange({ subject_token: subject, subject_token_type: AT }, OTHER), 400, 'unauthorized_client');
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: parameters', () => {
  for (const [name, form, description] of [
    ['no subject_token', { subject_token_type: AT }, /subject_token$/],
    ['no subject_token_type', { subject_token: 'abc' }, /subject_token_type$/],
    ['an unsupported subject_token_type', { subject_token: 'abc', subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /Unsupported subject_token_type/],
    ['an actor_token without actor_token_type', { subject_token: 'abc', subject_token_type: AT, actor_token: 'def' }, /together/],
    ['an actor_token_type without actor_token', { subject_token: 'abc', subject_token_type: AT, actor_token_type: AT }, /together/],
    ['an unsupported actor_token_type', { subject_token: 'abc', subject_token_type: AT, actor_token: 'def', actor_token_type: 'urn:x:saml' }, /Unsupported actor_token_type/],
    ['an unsupported requested_token_type', { subject_token: 'abc', subject_token_type: AT, requested_token_type: IDT }, /Unsupported requested_token_type/],
    ['a refresh token as requested_token_type', { subject_token: 'abc', subject_token_type: AT, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /Unsupported requested_token_type/],
  ] as const) {
    it(`${name} is invalid_request`, async () => {
      const h = await teHarness();
      try {
        const body = assertOAuthError(await h.exchange({ ...form }), 400, 'invalid_request');
        assert.match(String(body.error_description), description);
      } finally {
        await h.close();
      }
    });
  }

  it('a malformed resource is invalid_target', async () => {
    const h = await teHarness();
    try {
      const { access_token } = await h.userToken();
      assertOAuthError(await h.exchange({ subject_token: access_token, subject_token_type: AT, resource: 'not a uri' }), 400, 'invalid_target');
      assertOAuthError(await h.exchange({ subject_token: access_token, subject_token_type: AT, resource: `${ORDERS}#frag` }), 400, 'invalid_target');
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: plain exchange (impersonation of the subject by its own client)', () => {
  it('exchanges the client\'s own user token for an audience it is allowed: sub kept, client_id, aud, no act, no refresh token', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken('api:read api:write');
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: ORDERS }));
      assert.equal(body.issued_token_type, AT);
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.refresh_token, undefined);
      assert.equal(body.scope, 'api:read api:write');
      const claims = claimsOf(body.access_token as string);
      const subjectClaims = claimsOf(subject.access_token);
      assert.equal(claims.sub, h.aliceId);
      assert.equal(claims.client_id, APP[0]);
      assert.equal(claims.aud, ORDERS);
      assert.equal(claims.act, undefined);
      assert.equal(claims.gid, subjectClaims.gid, 'the exchanged token joins the subject\'s grant');
      assert.ok((claims.exp as number) <= (subjectClaims.exp as number));
    } finally {
      await h.close();
    }
  });

  it('resource works like audience; several targets give an array aud', async () => {
    const h = await teHarness();
    try {
      await h.portcullis.clients.upsert({ client_id: APP[0], client_secret: APP[1], grant_types: ['password', 'refresh_token', TE], scope: 'openid api:read api:write', allowed_audiences: [ORDERS, BILLING] });
      const subject = await h.userToken();
      const one = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, resource: ORDERS }));
      assert.equal(claimsOf(one.access_token as string).aud, ORDERS);
      const both = assertTokenResponse(await h.post('/token', `grant_type=${encodeURIComponent(TE)}&subject_token=${subject.access_token}&subject_token_type=${encodeURIComponent(AT)}&audience=${encodeURIComponent(ORDERS)}&resource=${encodeURIComponent(BILLING)}`, { basic: APP }));
      assert.deepEqual(claimsOf(both.access_token as string).aud, [ORDERS, BILLING]);
    } finally {
      await h.close();
    }
  });

  it('without audience or resource, the token gets the server\'s default audience', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }));
      assert.equal(claimsOf(body.access_token as string).aud, ISSUER);
    } finally {
      await h.close();
    }
  });

  it('refuses an audience the client is not allowed (invalid_target)', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: BILLING }), 400, 'invalid_target');
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: 'https://evil.example' }), 400, 'invalid_target');
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, resource: 'https://evil.example/api' }), 400, 'invalid_target');
    } finally {
      await h.close();
    }
  });

  it('refuses a scope wider than the subject token\'s (invalid_scope); a narrower one is issued', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken('api:read');
      const body = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, scope: 'api:read api:write' }), 400, 'invalid_scope');
      assert.match(String(body.error_description), /api:write/);
      // Outside the client's registered scope too.
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, scope: 'admin' }), 400, 'invalid_scope');
      const wide = await h.userToken('api:read api:write');
      const narrowed = assertTokenResponse(await h.exchange({ subject_token: wide.access_token, subject_token_type: AT, scope: 'api:read' }));
      assert.equal(narrowed.scope, 'api:read');
    } finally {
      await h.close();
    }
  });

  it('the issued lifetime never exceeds the subject token\'s remaining lifetime', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const subjectExp = claimsOf(subject.access_token).exp as number;
      h.clock.advance(3000);
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }));
      assert.equal(body.expires_in, 600);
      assert.equal(claimsOf(body.access_token as string).exp, subjectExp);
    } finally {
      await h.close();
    }
  });

  it('refuses an expired, revoked, forged or unknown subject token (invalid_request)', async () => {
    const h = await teHarness();
    try {
      const expired = await h.userToken();
      h.clock.advance(3601);
      assertOAuthError(await h.exchange({ subject_token: expired.access_token, subject_token_type: AT }), 400, 'invalid_request');

      const revoked = await h.userToken();
      assert.equal((await h.post('/revoke', { token: revoked.access_token }, { basic: APP })).status, 200);
      const body = assertOAuthError(await h.exchange({ subject_token: revoked.access_token, subject_token_type: AT }), 400, 'invalid_request');
      assert.equal(body.error_description, 'The subject_token is invalid, expired or revoked');

      const genuine = await h.userToken();
      const [header, , signature] = genuine.access_token.split('.');
      const forgedPayload = base64url.encode(JSON.stringify({ ...claimsOf(genuine.access_token), scope: 'api:read api:write admin' }));
      assertOAuthError(await h.exchange({ subject_token: `${header}.${forgedPayload}.${signature}`, subject_token_type: AT }), 400, 'invalid_request');
      const attacker = await externalKey('ES256', claimsOf(genuine.access_token).jti as string);
      const selfSigned = await new SignJWT(claimsOf(genuine.access_token)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: JSON.parse(Buffer.from(header!, 'base64url').toString()).kid }).sign(attacker.privateKey);
      assertOAuthError(await h.exchange({ subject_token: selfSigned, subject_token_type: AT }), 400, 'invalid_request');
      assertOAuthError(await h.exchange({ subject_token: 'not-a-token', subject_token_type: AT }), 400, 'invalid_request');
    } finally {
      await h.close();
    }
  });

  it('a token of one type is not accepted as another: access token as id_token, ID token as access_token', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: IDT }), 400, 'invalid_request');
      const idToken = h.portcullis.keys.sign({ iss: ISSUER, sub: h.aliceId, aud: APP[0], azp: APP[0], iat: h.clock.now(), exp: h.clock.now() + 600 }, 'JWT');
      assertOAuthError(await h.exchange({ subject_token: idToken, subject_token_type: AT }), 400, 'invalid_request');
    } finally {
      await h.close();
    }
  });

  it('another client may not exchange a subject token without an actor token (impersonation needs the policy)', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const body = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: ORDERS }, GATEWAY), 400, 'invalid_request');
      assert.match(String(body.error_description), /actor_token/);
    } finally {
      await h.close();
    }
  });

  it('requested_token_type=jwt gives a JWT access token even to a client registered for opaque tokens', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken('api:read', OPAQUE_APP);
      assert.equal(subject.access_token.split('.').length, 1);
      const opaque = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }, OPAQUE_APP));
      assert.equal((opaque.access_token as string).split('.').length, 1);
      assert.equal(opaque.issued_token_type, AT);
      const jwt = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, requested_token_type: JWT, audience: ORDERS }, OPAQUE_APP));
      assert.equal(jwt.issued_token_type, JWT);
      assert.equal(jwt.token_type, 'Bearer');
      const claims = claimsOf(jwt.access_token as string);
      assert.equal(claims.sub, h.aliceId);
      assert.equal(claims.aud, ORDERS);
      const info = await introspect(h, jwt.access_token as string, OPAQUE_APP);
      assert.equal(info.active, true);
    } finally {
      await h.close();
    }
  });

  it('an ID token of this server can be exchanged by the client it was issued to (no scope by default)', async () => {
    const h = await teHarness();
    try {
      const now = h.clock.now();
      const idToken = h.portcullis.keys.sign({ iss: ISSUER, sub: h.aliceId, aud: APP[0], azp: APP[0], iat: now, exp: now + 300 }, 'JWT');
      const body = assertTokenResponse(await h.exchange({ subject_token: idToken, subject_token_type: IDT, audience: ORDERS }));
      assert.equal(body.scope, undefined);
      assert.equal(body.expires_in, 300);
      assert.equal(claimsOf(body.access_token as string).sub, h.aliceId);
      // The same ID token as the generic jwt type.
      assertTokenResponse(await h.exchange({ subject_token: idToken, subject_token_type: JWT }));
      // Another client: refused without an actor.
      assertOAuthError(await h.exchange({ subject_token: idToken, subject_token_type: IDT }, GATEWAY), 400, 'invalid_request');
      // Expired, or of another issuer's key: refused.
      const expired = h.portcullis.keys.sign({ iss: ISSUER, sub: h.aliceId, aud: APP[0], iat: now - 700, exp: now - 1 }, 'JWT');
      assertOAuthError(await h.exchange({ subject_token: expired, subject_token_type: IDT }), 400, 'invalid_request');
      const wrongIss = h.portcullis.keys.sign({ iss: 'https://elsewhere.example', sub: h.aliceId, aud: APP[0], iat: now, exp: now + 300 }, 'JWT');
      assertOAuthError(await h.exchange({ subject_token: wrongIss, subject_token_type: IDT }), 400, 'invalid_request');
      // A scope cannot be asked for: an ID token carries none.
      assertOAuthError(await h.exchange({ subject_token: idToken, subject_token_type: IDT, scope: 'api:read' }), 400, 'invalid_scope');
    } finally {
      await h.close();
    }
  });

  it('our own JWT access token is accepted as the jwt type', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken('api:read');
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: JWT }));
      assert.equal(body.scope, 'api:read');
      assert.equal(claimsOf(body.access_token as string).gid, claimsOf(subject.access_token).gid);
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: delegation (actor token)', () => {
  it('adds act = { sub: actor }, and nests it across two exchanges', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken('api:read api:write');
      const gatewayToken = await h.clientToken(GATEWAY);
      const first = assertTokenResponse(
        await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT, audience: ORDERS }, GATEWAY),
      );
      const firstClaims = claimsOf(first.access_token as string);
      assert.equal(firstClaims.sub, h.aliceId);
      assert.equal(firstClaims.client_id, GATEWAY[0]);
      assert.deepEqual(firstClaims.act, { sub: GATEWAY[0] });
      assert.equal(first.scope, 'api:read api:write');

      // orders-api received the token and calls billing for alice.
      const ordersToken = await h.clientToken(ORDERS_API);
      const second = assertTokenResponse(
        await h.exchange({ subject_token: first.access_token as string, subject_token_type: AT, actor_token: ordersToken, actor_token_type: AT, audience: BILLING }, ORDERS_API),
      );
      const secondClaims = claimsOf(second.access_token as string);
      assert.equal(secondClaims.sub, h.aliceId);
      assert.equal(secondClaims.client_id, ORDERS_API[0]);
      assert.equal(secondClaims.aud, BILLING);
      assert.deepEqual(secondClaims.act, { sub: ORDERS_API[0], act: { sub: GATEWAY[0] } });
      // orders-api may only hold api:read.
      assert.equal(second.scope, 'api:read');
      // Introspection shows the chain.
      const info = await introspect(h, second.access_token as string, ORDERS_API);
      assert.deepEqual(info.act, { sub: ORDERS_API[0], act: { sub: GATEWAY[0] } });
    } finally {
      await h.close();
    }
  });

  it('a plain exchange of a delegated token keeps its act chain', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const gatewayToken = await h.clientToken(GATEWAY);
      const delegated = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY));
      const again = assertTokenResponse(await h.exchange({ subject_token: delegated.access_token as string, subject_token_type: AT, audience: BILLING }, GATEWAY));
      assert.deepEqual(claimsOf(again.access_token as string).act, { sub: GATEWAY[0] });
    } finally {
      await h.close();
    }
  });

  it('the actor token must have been issued to the exchanging client (default policy)', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const ordersToken = await h.clientToken(ORDERS_API);
      const body = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: ordersToken, actor_token_type: AT }, GATEWAY), 400, 'invalid_request');
      assert.equal(body.error_description, 'The actor_token was not issued to this client');
    } finally {
      await h.close();
    }
  });

  it('an invalid or expired actor token is invalid_request', async () => {
    const h = await teHarness();
    try {
      const subject = await h.userToken();
      const bad = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: 'nope', actor_token_type: AT }, GATEWAY), 400, 'invalid_request');
      assert.equal(bad.error_description, 'The actor_token is invalid, expired or revoked');
    } finally {
      await h.close();
    }
  });

  it('the lifetime is capped by the actor token too', async () => {
    const h = await teHarness();
    try {
      const gatewayToken = await h.clientToken(GATEWAY);
      h.clock.advance(3000);
      const subject = await h.userToken();
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY));
      assert.equal(body.expires_in, 600);
    } finally {
      await h.close();
    }
  });

  it('may_act of the subject is enforced: only the named actor may act', async () => {
    const h = await teHarness({
      hooks: {
        beforeIssue: (ctx) => (ctx.grantType === 'password' ? { accessTokenClaims: { may_act: { sub: ORDERS_API[0] } } } : undefined),
      },
    });
    try {
      await h.portcullis.clients.upsert({ client_id: ORDERS_API[0], client_secret: ORDERS_API[1], grant_types: ['client_credentials', TE], scope: 'api:read', allowed_audiences: [BILLING, ORDERS] });
      const subject = await h.userToken('api:read');
      assert.deepEqual(claimsOf(subject.access_token).may_act, { sub: ORDERS_API[0] });
      const gatewayToken = await h.clientToken(GATEWAY);
      const refused = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY), 400, 'invalid_request');
      assert.match(String(refused.error_description), /may_act/);
      const ordersToken = await h.clientToken(ORDERS_API);
      const ok = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: ordersToken, actor_token_type: AT, audience: BILLING }, ORDERS_API));
      assert.deepEqual(claimsOf(ok.access_token as string).act, { sub: ORDERS_API[0] });
      assert.equal(claimsOf(ok.access_token as string).may_act, undefined, 'may_act is not carried over');
    } finally {
      await h.close();
    }
  });

  it('may_act holds even when the policy allows', async () => {
    const h = await teHarness({
      hooks: { beforeIssue: (ctx) => (ctx.grantType === 'password' ? { accessTokenClaims: { may_act: { sub: 'someone-else' } } } : undefined) },
      tokenExchange: { policy: () => ({ allow: true }) },
    });
    try {
      const subject = await h.userToken();
      const gatewayToken = await h.clientToken(GATEWAY);
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY), 400, 'invalid_request');
    } finally {
      await h.close();
    }
  });

  it('a hook cannot forge the act claim of an exchanged token', async () => {
    const h = await teHarness({ hooks: { beforeIssue: (ctx) => (ctx.grantType === TE ? { accessTokenClaims: { act: { sub: 'forged' }, tenant: 't1' } } : undefined) } });
    try {
      const subject = await h.userToken();
      const plain = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }));
      const claims = claimsOf(plain.access_token as string);
      assert.equal(claims.act, undefined);
      assert.equal(claims.tenant, 't1');
      const gatewayToken = await h.clientToken(GATEWAY);
      const delegated = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY));
      assert.deepEqual(claimsOf(delegated.access_token as string).act, { sub: GATEWAY[0] });
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: revocation follows the subject\'s grant', () => {
  for (const [format, client] of [['jwt', APP], ['opaque', OPAQUE_APP]] as const) {
    it(`revoking the subject's grant deactivates the exchanged ${format} token`, async () => {
      const h = await teHarness();
      try {
        const subject = await h.userToken('api:read', client);
        assert.equal(typeof subject.refresh_token, 'string');
        const exchanged = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: ORDERS }, client));
        const gatewayToken = await h.clientToken(GATEWAY);
        const delegated = assertTokenResponse(await h.exchange({ subject_token: exchanged.access_token as string, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY));
        assert.equal((await introspect(h, exchanged.access_token as string, client)).active, true);
        assert.equal((await introspect(h, delegated.access_token as string, GATEWAY)).active, true);
        // Revoking the refresh token revokes the grant (RFC 7009 §2.1).
        assert.equal((await h.post('/revoke', { token: subject.refresh_token!, token_type_hint: 'refresh_token' }, { basic: client })).status, 200);
        assert.deepEqual(await introspect(h, exchanged.access_token as string, client), { active: false });
        assert.deepEqual(await introspect(h, delegated.access_token as string, GATEWAY), { active: false });
        assertOAuthError(await h.exchange({ subject_token: exchanged.access_token as string, subject_token_type: AT }, client), 400, 'invalid_request');
      } finally {
        await h.close();
      }
    });
  }
});

describe('token exchange: tokens of a trusted issuer (jwt type)', () => {
  it('without an actor and without a policy, a foreign token cannot be exchanged (its client is unknown here)', async () => {
    const h = await teHarness();
    try {
      const token = await h.partnerJwt();
      assertOAuthError(await h.exchange({ subject_token: token, subject_token_type: JWT }, GATEWAY), 400, 'invalid_request');
    } finally {
      await h.close();
    }
  });

  it('with the gateway as actor: delegated token for the partner user, scope from the foreign token', async () => {
    const h = await teHarness();
    try {
      const token = await h.partnerJwt();
      const gatewayToken = await h.clientToken(GATEWAY);
      const body = assertTokenResponse(await h.exchange({ subject_token: token, subject_token_type: JWT, actor_token: gatewayToken, actor_token_type: AT, audience: ORDERS }, GATEWAY));
      const claims = claimsOf(body.access_token as string);
      assert.equal(claims.sub, 'partner-user-7');
      assert.equal(claims.iss, ISSUER);
      assert.equal(claims.gid, undefined);
      assert.deepEqual(claims.act, { sub: GATEWAY[0] });
      assert.equal(body.scope, 'api:read');
      assert.equal(body.expires_in, 600);
    } finally {
      await h.close();
    }
  });

  it('a partner JWT as the actor puts its issuer in act', async () => {
    const h = await teHarness({ tokenExchange: { policy: () => ({ allow: true }) } });
    try {
      const subject = await h.userToken();
      const actor = await h.partnerJwt({ sub: 'partner-bot' });
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: actor, actor_token_type: JWT }));
      assert.deepEqual(claimsOf(body.access_token as string).act, { sub: 'partner-bot', iss: EXTERNAL_ISSUER });
    } finally {
      await h.close();
    }
  });

  for (const [name, claims, header, why] of [
    ['expired', { exp: 1_800_000_000 - 1, iat: 1_800_000_000 - 600 }, {}, /expired/],
    ['without exp', { exp: undefined }, {}, /no numeric exp/],
    ['without sub', { sub: undefined }, {}, /no sub/],
    ['with another aud than the configured one', { aud: 'https://someone-else.example' }, {}, /aud does not include/],
    ['of an unknown issuer', { iss: 'https://unknown.example' }, {}, /not trusted/],
    ['with a kid the issuer does not publish', {}, { kid: 'other-kid' }, /no applicable key/],
    ['with a malformed act claim', { act: 'gateway' }, {}, /act claim/],
  ] as const) {
    it(`refuses a foreign token ${name} (invalid_request)`, async () => {
      const h = await teHarness({ tokenExchange: { policy: () => ({ allow: true }) } });
      try {
        const token = await h.partnerJwt({ ...claims }, { ...header });
        assertOAuthError(await h.exchange({ subject_token: token, subject_token_type: JWT }, GATEWAY), 400, 'invalid_request');
        assert.match(h.lastDetail() ?? '', why);
      } finally {
        await h.close();
      }
    });
  }

  it('refuses a foreign token signed by another key, with alg none, or HS256 with the public key', async () => {
    const h = await teHarness({ tokenExchange: { policy: () => ({ allow: true }) } });
    try {
      const now = h.clock.now();
      const claims = { iss: EXTERNAL_ISSUER, sub: 'u', aud: ISSUER, iat: now, exp: now + 600 };
      const attacker = await externalKey('ES256', h.partner.kid);
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: h.partner.kid }).sign(attacker.privateKey);
      assertOAuthError(await h.exchange({ subject_token: forged, subject_token_type: JWT }, GATEWAY), 400, 'invalid_request');
      assert.match(h.lastDetail() ?? '', /signature verification failed/);
      const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims))}.`;
      assertOAuthError(await h.exchange({ subject_token: none, subject_token_type: JWT }, GATEWAY), 400, 'invalid_request');
      const pem = await exportSPKI((await importJWK(h.partner.publicJwk, 'ES256', { extractable: true })) as CryptoKey);
      const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: h.partner.kid }).sign(new TextEncoder().encode(pem));
      assertOAuthError(await h.exchange({ subject_token: hs, subject_token_type: JWT }, GATEWAY), 400, 'invalid_request');
      assert.match(h.lastDetail() ?? '', /ERR_JOSE_ALG_NOT_ALLOWED/);
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: policy', () => {
  it('receives the parties and the request, and may allow impersonation by another client with its own audience and scope', async () => {
    const seen: unknown[] = [];
    const h = await teHarness({
      tokenExchange: {
        policy: async (ctx) => {
          seen.push(ctx);
          return ctx.client.client_id === GATEWAY[0] ? { allow: true, audience: ['https://legacy.example'], scope: ['api:read'] } : undefined;
        },
      },
    });
    try {
      const subject = await h.userToken();
      const body = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, audience: ORDERS, scope: 'api:read' }, GATEWAY));
      const claims = claimsOf(body.access_token as string);
      assert.equal(claims.aud, 'https://legacy.example');
      assert.equal(claims.act, undefined);
      assert.equal(claims.sub, h.aliceId);
      assert.equal(body.scope, 'api:read');
      const ctx = seen[0] as { subject: { sub: string; client_id: string; scope: string[]; issuer: string; tokenType: string }; requestedAudiences: string[]; requestedScope: string[]; actor?: unknown };
      assert.equal(ctx.subject.sub, h.aliceId);
      assert.equal(ctx.subject.client_id, APP[0]);
      assert.deepEqual(ctx.subject.scope, ['api:read', 'api:write']);
      assert.equal(ctx.subject.issuer, ISSUER);
      assert.equal(ctx.subject.tokenType, AT);
      assert.deepEqual(ctx.requestedAudiences, [ORDERS]);
      assert.deepEqual(ctx.requestedScope, ['api:read']);
      assert.equal(ctx.actor, undefined);
      // Returning nothing applies the default policy: app's own token, fine.
      assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }));
    } finally {
      await h.close();
    }
  });

  it('allow: false refuses; impersonation: true drops the new act; the policy\'s scope stays within the client\'s', async () => {
    const h = await teHarness({
      tokenExchange: {
        policy: (ctx) => {
          if (ctx.requestedScope.includes('api:write')) return { allow: false };
          if (ctx.actor !== undefined) return { allow: true, impersonation: true };
          return { allow: true, scope: ['admin'] };
        },
      },
    });
    try {
      const subject = await h.userToken();
      const refused = assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, scope: 'api:write' }), 400, 'invalid_request');
      assert.equal(refused.error_description, 'The token exchange is not allowed');
      const gatewayToken = await h.clientToken(GATEWAY);
      const impersonated = assertTokenResponse(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT, actor_token: gatewayToken, actor_token_type: AT }, GATEWAY));
      assert.equal(claimsOf(impersonated.access_token as string).act, undefined);
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }), 400, 'invalid_scope');
    } finally {
      await h.close();
    }
  });

  it('an OAuthError thrown by the policy is sent as is', async () => {
    const { OAuthError } = await import('../../src/core/errors.js');
    const h = await teHarness({ tokenExchange: { policy: () => { throw new OAuthError('invalid_target', 'The requested audience is not allowed for this client'); } } });
    try {
      const subject = await h.userToken();
      assertOAuthError(await h.exchange({ subject_token: subject.access_token, subject_token_type: AT }), 400, 'invalid_target');
    } finally {
      await h.close();
    }
  });
});

describe('token exchange: configuration', () => {
  const base = { issuer: ISSUER, grants: { token_exchange: true } };
  for (const [name, trustedIssuers, message] of [
    ['an HMAC algorithm', [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', algorithms: ['HS256'] }], /asymmetric/],
    ['alg none', [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', algorithms: ['none'] }], /asymmetric/],
    ['both jwks and jwksUri', [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', jwks: { keys: [] } }], /exactly one/],
    ['neither jwks nor jwksUri', [{ issuer: 'https://a.example' }], /exactly one/],
    ['an http jwksUri', [{ issuer: 'https://a.example', jwksUri: 'http://a.example/jwks' }], /https/],
    ['a private key in jwks', [{ issuer: 'https://a.example', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }] } }], /private/],
    ['a symmetric key in jwks', [{ issuer: 'https://a.example', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }], /symmetric/],
    ['our own issuer', [{ issuer: ISSUER, jwksUri: 'https://a.example/jwks' }], /own issuer/],
    ['the same issuer twice', [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks' }, { issuer: 'https://a.example', jwksUri: 'https://a.example/jwks2' }], /twice/],
    ['an empty audience', [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks', audience: '' }], /audience/],
  ] as const) {
    it(`refuses ${name} at start-up`, async () => {
      await assert.rejects(
        createPortcullis({ ...base, storage: createMemoryStorage(), tokenExchange: { trustedIssuers: trustedIssuers as never } }),
        (err: Error) => err.name === 'ConfigError' && /tokenExchange\.trustedIssuers/.test(err.message) && message.test(err.message),
      );
    });
  }
});
