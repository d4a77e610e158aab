/**
 * RP-initiated logout (`end_session_endpoint`): registered post_logout_redirect_uri only, strict
 * id_token_hint verification (security.md S-52), and a CSRF-protected confirmation without a hint.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import type { OAuthResponse } from '../../src/core/http.js';
import { assertTokenResponse, type Harness } from '../helpers/harness.js';
import {
  assertClientRedirect,
  assertErrorPage,
  assertErrorRedirect,
  assertPageSecurity,
  authParams,
  Browser,
  ISSUER,
  pkcePair,
  redeem,
  scrapeAction,
  scrapeCsrf,
  WEB1,
  WEB1_CB,
  WEB1_LOGGED_OUT,
  withHarness,
} from '../helpers/browser-flow.js';

const SESSION = 'portcullis.session';
const BAD_HINT = 'The id_token_hint is not a valid ID token from this server';

/** Sign a user in for web1 (openid) and return the browser and the token response. */
async function signIn(h: Harness, username = 'alice', password = 'alice-password'): Promise<{ b: Browser; tokens: Record<string, unknown> }> {
  const b = new Browser(h);
  const p = pkcePair();
  const res = await b.run(authParams('web1', WEB1_CB, p.challenge, { scope: 'openid' }), { username, password });
  const q = assertClientRedirect(res, 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
  const tokens = assertTokenResponse(await redeem(h, WEB1, { code: q.get('code')!, redirect_uri: WEB1_CB, code_verifier: p.verifier }));
  assert.ok(b.cookie(SESSION) !== undefined);
  return { b, tokens };
}

/** prompt=none answers with a code when the browser's session is alive, login_required when not. */
async function assertSignedIn(b: Browser, expected: boolean): Promise<void> {
  const res = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', prompt: 'none', state: 'check' }));
  if (expected) assertClientRedirect(res, 302, WEB1_CB, { code: true, state: 'check', iss: ISSUER });
  else assertErrorRedirect(res, 302, WEB1_CB, 'login_required', 'check');
}

function endSession(b: Browser, params: Record<string, string>): Promise<OAuthResponse> {
  return b.get(`/end_session?${new URLSearchParams(params).toString()}`);
}

function clearsSession(res: OAuthResponse): boolean {
  return (res.setCookies ?? []).some((c) => c.startsWith(`${SESSION}=;`) && /Max-Age=0/.test(c));
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('end_session (RP-initiated logout)', () => {
  it('end_session: a valid id_token_hint + registered post_logout_redirect_uri + state → 303 there with state, the session cookie cleared, and the session ended server-side', async () => {
    await withHarness({}, async (h) => {
      const { b, tokens } = await signIn(h);
      const oldCookie = b.cookie(SESSION)!;
      const res = await endSession(b, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: WEB1_LOGGED_OUT, state: 'bye' });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, `${WEB1_LOGGED_OUT}?state=bye`);
      assert.ok(clearsSession(res), `session cookie cleared: ${JSON.stringify(res.setCookies)}`);
      assert.equal(b.cookie(SESSION), undefined);
      await assertSignedIn(b, false);
      // The old cookie, replayed, names a dead session.
      b.setCookie(SESSION, oldCookie);
      await assertSignedIn(b, false);
    });
  });

  it('end_session: an unregistered post_logout_redirect_uri → 400 error page, no redirect, the session kept', async () => {
    await withHarness({}, async (h) => {
      const { b, tokens } = await signIn(h);
      for (const uri of ['https://evil.test/logged-out', `${WEB1_LOGGED_OUT}/`, `${WEB1_LOGGED_OUT}?x=1`, WEB1_CB]) {
        const res = await endSession(b, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: uri, state: 'bye' });
        assertErrorPage(res, 400, 'invalid_request');
        assert.ok(res.body.includes('The post_logout_redirect_uri is not registered for this client'));
        assert.ok(!clearsSession(res));
      }
      await assertSignedIn(b, true);
    });
  });

  it('end_session: post_logout_redirect_uri without id_token_hint or client_id → 400 error page, session kept', async () => {
    await withHarness({}, async (h) => {
      const { b } = await signIn(h);
      const res = await endSession(b, { post_logout_redirect_uri: WEB1_LOGGED_OUT });
      assertErrorPage(res, 400, 'invalid_request');
      await assertSignedIn(b, true);
    });
  });

  it('S-52: a forged id_token_hint (alg none; signed by another key under our kid; HS256 with our public key; an access token) → 400 error page, no redirect, not logged out', async () => {
    await withHarness({}, async (h) => {
      const { b, tokens } = await signIn(h);
      const real = jose.decodeJwt(tokens.id_token as string);
      const { kid } = jose.decodeProtectedHeader(tokens.id_token as string);
      assert.equal(typeof kid, 'string');
      const claims = { ...real, exp: h.clock.now() + 600 };

      const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      const noneNoDot = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}`;
      const { privateKey } = await jose.generateKeyPair('ES256');
      const otherKey = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: kid!, typ: 'JWT' }).sign(privateKey);
      const otherKid = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'attacker', typ: 'JWT' }).sign(privateKey);
      const jwks = JSON.parse((await h.get('/jwks')).body) as { keys: Record<string, unknown>[] };
      const ourPublic = JSON.stringify(jwks.keys.find((k) => k.kid === kid));
      const hsInput = `${b64({ alg: 'HS256', kid, typ: 'JWT' })}.${b64(claims)}`;
      const hs256 = `${hsInput}.${createHmac('sha256', ourPublic).update(hsInput).digest('base64url')}`;
      const embeddedJwk = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: await jose.exportJWK((await jose.generateKeyPair('ES256', { extractable: true })).publicKey) })
        .sign(privateKey);

      const forgeries: [string, string][] = [
        ['alg none', none],
        ['alg none without the signature dot', noneNoDot],
        ['another key under our kid', otherKey],
        ['another key under its own kid', otherKid],
        ['HS256 keyed with our public JWK', hs256],
        ['a header jwk', embeddedJwk],
        ['the access token', tokens.access_token as string],
      ];
      for (const [what, hint] of forgeries) {
        const res = await endSession(b, { id_token_hint: hint, post_logout_redirect_uri: WEB1_LOGGED_OUT, state: 'bye' });
        assertErrorPage(res, 400, 'invalid_request');
        assert.ok(res.body.includes(BAD_HINT), `${what}: the page says the hint is invalid`);
        assert.ok(!clearsSession(res), `${what}: the session cookie is not cleared`);
        await assertSignedIn(b, true);
      }
    });
  });

  it('end_session: no id_token_hint with a session → a confirmation page (200, CSRF token, no framing); nothing is ended yet', async () => {
    await withHarness({}, async (h) => {
      const { b } = await signIn(h);
      const page = await endSession(b, {});
      assert.equal(page.status, 200);
      assertPageSecurity(page);
      assert.match(page.body, /<h1>Sign out\?<\/h1>/);
      assert.match(scrapeAction(page), /^http:\/\/127\.0\.0\.1:3000\/end_session\?logout=[0-9a-f-]{36}$/);
      assert.ok(scrapeCsrf(page).length >= 32);
      assert.ok(!clearsSession(page));
      await assertSignedIn(b, true);
    });
  });

  it('end_session: the confirmation POST without csrf (or with a wrong one) → 403 error page, still signed in; with csrf and decision=logout → signed out', async () => {
    await withHarness({}, async (h) => {
      const { b } = await signIn(h);
      const page = await endSession(b, {});
      const action = scrapeAction(page);
      const csrf = scrapeCsrf(page);

      const missing = await b.post(action, { decision: 'logout' });
      assertErrorPage(missing, 403, 'invalid_request');
      assert.ok(!clearsSession(missing));
      const other = await endSession(b, {});
      const wrong = await b.post(action, { csrf: scrapeCsrf(other), decision: 'logout' });
      assertErrorPage(wrong, 403, 'invalid_request');
      await assertSignedIn(b, true);

      const done = await b.post(action, { csrf, decision: 'logout' });
      assert.equal(done.status, 200);
      assert.match(done.body, /You are signed out/);
      assert.ok(clearsSession(done));
      await assertSignedIn(b, false);
    });
  });

  it('end_session: the confirmation with decision=cancel keeps the session', async () => {
    await withHarness({}, async (h) => {
      const { b } = await signIn(h);
      const page = await endSession(b, {});
      const res = await b.post(scrapeAction(page), { csrf: scrapeCsrf(page), decision: 'cancel' });
      assert.equal(res.status, 200);
      assert.ok(!clearsSession(res));
      await assertSignedIn(b, true);
    });
  });

  it('end_session: a valid id_token_hint of another user → the confirmation page, not an immediate logout', async () => {
    await withHarness({}, async (h) => {
      const alice = await signIn(h);
      const bob = await signIn(h, 'bob', 'bob-password');
      const res = await endSession(alice.b, { id_token_hint: bob.tokens.id_token as string, post_logout_redirect_uri: WEB1_LOGGED_OUT, state: 'x' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.location, undefined);
      assert.match(res.body, /<h1>Sign out\?<\/h1>/);
      assert.ok(!clearsSession(res));
      await assertSignedIn(alice.b, true);
      await assertSignedIn(bob.b, true);
    });
  });

  it('end_session: an expired (but genuine) id_token_hint is accepted', async () => {
    await withHarness({}, async (h) => {
      const { b, tokens } = await signIn(h);
      h.clock.advance(3700);
      const res = await endSession(b, { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: WEB1_LOGGED_OUT });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, WEB1_LOGGED_OUT);
      assert.ok(clearsSession(res));
    });
  });

  it('end_session: client_id that does not match the id_token_hint → 400 error page, session kept', async () => {
    await withHarness({}, async (h) => {
      const { b, tokens } = await signIn(h);
      const res = await endSession(b, { id_token_hint: tokens.id_token as string, client_id: 'web2', post_logout_redirect_uri: WEB1_LOGGED_OUT });
      assertErrorPage(res, 400, 'invalid_request');
      assert.ok(res.body.includes('client_id does not match the id_token_hint'));
      await assertSignedIn(b, true);
    });
  });
});

