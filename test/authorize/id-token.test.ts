/**
 * ID tokens from the code flow (security.md S-55, with S-51's signature checks): every claim of
 * OIDC Core §3.1.3.7 checked, the signature verified with jose against /jwks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import type { Harness } from '../helpers/harness.js';
import { assertTokenResponse } from '../helpers/harness.js';
import {
  ALICE,
  authParams,
  Browser,
  type ClientCreds,
  ISSUER,
  pkcePair,
  redeem,
  refresh,
  RP256,
  RP256_CB,
  WEB1,
  WEB1_CB,
  withHarness,
} from '../helpers/browser-flow.js';

/** OIDC Core §3.3.2.11 for SHA-256 algorithms: base64url of the left half of SHA-256(token). */
function expectedAtHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url');
}

async function jwks(h: Harness): Promise<ReturnType<typeof jose.createLocalJWKSet>> {
  const res = await h.get('/jwks');
  assert.equal(res.status, 200);
  return jose.createLocalJWKSet(JSON.parse(res.body) as jose.JSONWebKeySet);
}

/** Run the flow, redeem, and return the token response with the login time. */
async function tokensFor(h: Harness, client: ClientCreds, redirectUri: string, extra: Record<string, string>): Promise<{ body: Record<string, unknown>; loginTime: number }> {
  const p = pkcePair();
  const loginTime = h.clock.now();
  const code = await new Browser(h).code(authParams(client.id, redirectUri, p.challenge, extra));
  h.clock.advance(2);
  const body = assertTokenResponse(await redeem(h, client, { code, redirect_uri: redirectUri, code_verifier: p.verifier }));
  assert.equal(typeof body.id_token, 'string', 'an ID token');
  return { body, loginTime };
}

describe('S-55 ID token contents', () => {
  it('S-55: the ID token has iss, sub, aud=client, azp, exp>iat, the nonce, auth_time, at_hash of the access token, amr, and verifies against /jwks', async () => {
    await withHarness({}, async (h) => {
      const { body, loginTime } = await tokensFor(h, WEB1, WEB1_CB, { scope: 'openid profile email', nonce: 'n-0S6_WzA2Mj', max_age: '300' });
      const idToken = body.id_token as string;
      const { payload, protectedHeader } = await jose.jwtVerify(idToken, await jwks(h), {
        issuer: ISSUER,
        audience: 'web1',
        currentDate: new Date(h.clock.now() * 1000),
      });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.equal(typeof protectedHeader.kid, 'string');
      assert.notEqual(protectedHeader.typ, 'at+jwt');
      const alice = await h.storage.getUserByUsername(ALICE.username);
      assert.ok(alice !== undefined);
      assert.equal(payload.iss, ISSUER);
      assert.equal(payload.sub, alice.id);
      assert.equal(payload.aud, 'web1');
      assert.equal(payload.azp, 'web1');
      assert.equal(typeof payload.iat, 'number');
      assert.equal(payload.iat, h.clock.now());
      assert.ok((payload.exp as number) > (payload.iat as number), 'exp > iat');
      assert.equal(payload.nonce, 'n-0S6_WzA2Mj');
      assert.equal(payload.auth_time, loginTime);
      assert.equal(payload.at_hash, expectedAtHash(body.access_token as string));
      assert.deepEqual(payload.amr, ['pwd']);
      // sub is the same subject UserInfo reports.
      const info = await h.portcullis.handle({ method: 'GET', path: '/userinfo', query: '', headers: { authorization: `Bearer ${body.access_token as string}` } });
      assert.equal(info.status, 200, info.body);
      assert.equal(h.json(info).sub, payload.sub);
    });
  });

  it('S-55: the ID token does not verify with a tampered payload, nor against another issuer or audience', async () => {
    await withHarness({}, async (h) => {
      const { body } = await tokensFor(h, WEB1, WEB1_CB, { scope: 'openid', nonce: 'n1' });
      const idToken = body.id_token as string;
      const keys = await jwks(h);
      const currentDate = new Date(h.clock.now() * 1000);
      const [head, , sig] = idToken.split('.');
      const forged = `${head}.${Buffer.from(JSON.stringify({ ...jose.decodeJwt(idToken), sub: 'mallory' })).toString('base64url')}.${sig}`;
      await assert.rejects(jose.jwtVerify(forged, keys, { currentDate }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
      await assert.rejects(jose.jwtVerify(idToken, keys, { currentDate, audience: 'web2' }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
      await assert.rejects(jose.jwtVerify(idToken, keys, { currentDate, issuer: 'https://evil.test' }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
    });
  });

  it('S-55: no nonce in the request → no nonce claim', async () => {
    await withHarness({}, async (h) => {
      const { body } = await tokensFor(h, WEB1, WEB1_CB, { scope: 'openid' });
      assert.equal(jose.decodeJwt(body.id_token as string).nonce, undefined);
    });
  });

  for (const length of [64, 384]) {
    it(`S-55: a ${length}-character nonce is echoed exactly`, async () => {
      await withHarness({}, async (h) => {
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
        const nonce = Array.from({ length }, (_, i) => alphabet[(i * 7) % alphabet.length]).join('');
        assert.equal(nonce.length, length);
        const { body } = await tokensFor(h, WEB1, WEB1_CB, { scope: 'openid', nonce });
        const { payload } = await jose.jwtVerify(body.id_token as string, await jwks(h), { currentDate: new Date(h.clock.now() * 1000) });
        assert.equal(payload.nonce, nonce);
      });
    });
  }

  it('S-55: a client that registered id_token_signed_response_alg RS256 gets an RS256 ID token that verifies against /jwks, with a SHA-256 at_hash', async () => {
    await withHarness({}, async (h) => {
      const { body } = await tokensFor(h, RP256, RP256_CB, { scope: 'openid email', nonce: 'rs' });
      const idToken = body.id_token as string;
      const { payload, protectedHeader } = await jose.jwtVerify(idToken, await jwks(h), {
        issuer: ISSUER,
        audience: RP256.id,
        algorithms: ['RS256'],
        currentDate: new Date(h.clock.now() * 1000),
      });
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(payload.azp, RP256.id);
      assert.equal(payload.nonce, 'rs');
      assert.equal(payload.at_hash, expectedAtHash(body.access_token as string));
    });
  });

  it('S-55: an ID token from a refresh keeps iss, sub, aud and auth_time and carries no nonce', async () => {
    await withHarness({}, async (h) => {
      const { body, loginTime } = await tokensFor(h, WEB1, WEB1_CB, { scope: 'openid offline_access', nonce: 'first' });
      const first = jose.decodeJwt(body.id_token as string);
      h.clock.advance(100);
      const refreshed = assertTokenResponse(await refresh(h, WEB1, body.refresh_token as string));
      const { payload } = await jose.jwtVerify(refreshed.id_token as string, await jwks(h), { issuer: ISSUER, audience: 'web1', currentDate: new Date(h.clock.now() * 1000) });
      assert.equal(payload.sub, first.sub);
      assert.equal(payload.auth_time, loginTime);
      assert.equal(payload.nonce, undefined);
      assert.equal(payload.at_hash, expectedAtHash(refreshed.access_token as string));
    });
  });
});
