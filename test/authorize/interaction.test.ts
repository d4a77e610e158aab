/**
 * Hosted login and consent (security.md S-08 prompt/max_age, S-10 anti-framing, CSRF, denial),
 * driven through the in-process browser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import type { OAuthResponse } from '../../src/core/http.js';
import type { Harness } from '../helpers/harness.js';
import {
  assertClientRedirect,
  assertErrorPage,
  assertErrorRedirect,
  assertPageSecurity,
  assertToInteraction,
  authParams,
  Browser,
  isConsentPage,
  isLoginPage,
  ISSUER,
  pkcePair,
  redeem,
  scrapeAction,
  scrapeCsrf,
  WEB1,
  WEB1_CB,
  withHarness,
} from '../helpers/browser-flow.js';

const CSRF_FAILED = 'The form expired or did not come from this site (CSRF check failed). Go back and try again.';
const OTHER_BROWSER = 'This sign-in request belongs to another browser session. Go back to the application and start again.';

/** Sign alice in and consent for web1 (scope openid profile); returns the browser. */
async function signedIn(h: Harness, scope = 'openid profile'): Promise<Browser> {
  const b = new Browser(h);
  await b.code(authParams('web1', WEB1_CB, pkcePair().challenge, { scope }));
  assert.ok(b.cookie('portcullis.session') !== undefined, 'a session cookie');
  return b;
}

/** Redeem a code for web1 and return the decoded ID token. */
async function idTokenOf(h: Harness, code: string, verifier: string): Promise<Record<string, unknown>> {
  const res = await redeem(h, WEB1, { code, redirect_uri: WEB1_CB, code_verifier: verifier });
  assert.equal(res.status, 200, res.body);
  const body = h.json(res);
  assert.equal(typeof body.id_token, 'string');
  return decodeJwt(body.id_token as string) as Record<string, unknown>;
}

/** The response leaks no code: no Location, nothing that looks like one in the body. */
function assertNoCode(res: OAuthResponse): void {
  assert.equal(res.headers.location, undefined);
  assert.ok(!res.body.includes('code='), 'no code in the page');
  assert.ok(!res.body.includes(WEB1_CB), 'no link to the client');
}

describe('S-08 prompt and max_age', () => {
  it('S-08: prompt=none without a session → error=login_required with state and iss', async () => {
    await withHarness({}, async (h) => {
      const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', prompt: 'none' }));
      const q = assertErrorRedirect(res, 302, WEB1_CB, 'login_required', 'st-123');
      assert.equal(q.get('error_description'), 'The user is not signed in');
    });
  });

  it('S-08: prompt=none with a session but no consent → error=consent_required with state and iss', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid' }));
      const login = await b.login(await b.openInteraction(start));
      assert.ok(isConsentPage(await b.openInteraction(login)), 'signed in, consent page shown (not answered)');
      const res = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', prompt: 'none', state: 'pn' }));
      const q = assertErrorRedirect(res, 302, WEB1_CB, 'consent_required', 'pn');
      assert.equal(q.get('error_description'), 'The user has not consented to this request');
    });
  });

  it('S-08: prompt=none with a session and consent for a narrower scope → error=consent_required', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h, 'openid');
      const res = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid email', prompt: 'none' }));
      assertErrorRedirect(res, 302, WEB1_CB, 'consent_required', 'st-123');
    });
  });

  it('S-08: prompt=none after login and consent → 302 with code, state and iss; the code redeems', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h);
      const p = pkcePair();
      const res = await b.authorize(authParams('web1', WEB1_CB, p.challenge, { scope: 'openid profile', prompt: 'none', state: 'silent' }));
      const q = assertClientRedirect(res, 302, WEB1_CB, { code: true, state: 'silent', iss: ISSUER });
      await idTokenOf(h, q.get('code')!, p.verifier);
    });
  });

  for (const [value, why] of [['-1', 'negative'], ['abc', 'not a number'], ['1.5', 'not an integer'], ['99999999999', 'over 10 digits']] as const) {
    it(`S-08: max_age=${value} (${why}) → error=invalid_request with state and iss`, async () => {
      await withHarness({}, async (h) => {
        const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', max_age: value }));
        const q = assertErrorRedirect(res, 302, WEB1_CB, 'invalid_request', 'st-123');
        assert.equal(q.get('error_description'), 'max_age must be a non-negative integer');
      });
    });
  }

  it('S-08: prompt=bogus and prompt="none login" → error=invalid_request', async () => {
    await withHarness({}, async (h) => {
      for (const prompt of ['bogus', 'none login']) {
        const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', prompt }));
        assertErrorRedirect(res, 302, WEB1_CB, 'invalid_request', 'st-123');
      }
    });
  });

  it('S-08: with a session, max_age=10 after 11 s → the login page is shown again, and the ID token auth_time is the new login time', async () => {
    await withHarness({}, async (h) => {
      const firstLogin = h.clock.now();
      const b = await signedIn(h);
      h.clock.advance(11);
      const p = pkcePair();
      const params = authParams('web1', WEB1_CB, p.challenge, { scope: 'openid profile', max_age: '10', nonce: 'ma' });
      const start = await b.authorize(params);
      assertToInteraction(start, 302);
      const page = await b.openInteraction(start);
      assert.ok(isLoginPage(page), 'the login page is shown');
      const secondLogin = h.clock.now();
      assert.equal(secondLogin, firstLogin + 11);
      const done = await b.login(page);
      const q = assertClientRedirect(done, 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
      const claims = await idTokenOf(h, q.get('code')!, p.verifier);
      assert.equal(claims.auth_time, secondLogin);
      assert.equal(claims.nonce, 'ma');
    });
  });

  it('S-08: with a session, max_age=10 after 5 s → no login page; the ID token auth_time is the original login time', async () => {
    await withHarness({}, async (h) => {
      const firstLogin = h.clock.now();
      const b = await signedIn(h);
      h.clock.advance(5);
      const p = pkcePair();
      const res = await b.authorize(authParams('web1', WEB1_CB, p.challenge, { scope: 'openid profile', max_age: '10' }));
      const q = assertClientRedirect(res, 302, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
      const claims = await idTokenOf(h, q.get('code')!, p.verifier);
      assert.equal(claims.auth_time, firstLogin);
    });
  });

  it('S-08: max_age=0 with a session from this very second → the login page (OIDC Core §3.1.2.1, errata set 2: max_age=0 is equivalent to prompt=login)', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h);
      const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid profile', max_age: '0' }));
      assertToInteraction(start, 302);
      assert.ok(isLoginPage(await b.openInteraction(start)), 'the login page is shown');
    });
  });

  it('S-08: prompt=none with a session older than max_age → error=login_required', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h);
      h.clock.advance(11);
      const res = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid profile', max_age: '10', prompt: 'none' }));
      assertErrorRedirect(res, 302, WEB1_CB, 'login_required', 'st-123');
    });
  });

  it('S-08: prompt=login with a session → 302 to the login page; signing in again issues a new session id', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h);
      const before = b.cookie('portcullis.session');
      const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid profile', prompt: 'login' }));
      assertToInteraction(start, 302);
      const page = await b.openInteraction(start);
      assert.ok(isLoginPage(page), 'the login page is shown');
      assertClientRedirect(await b.login(page), 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
      assert.ok(b.cookie('portcullis.session') !== undefined);
      assert.notEqual(b.cookie('portcullis.session'), before);
    });
  });

  it('S-08: prompt=consent with remembered consent → 302 to the consent page', async () => {
    await withHarness({}, async (h) => {
      const b = await signedIn(h);
      const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid profile', prompt: 'consent' }));
      assertToInteraction(start, 302);
      const page = await b.openInteraction(start);
      assert.ok(isConsentPage(page), 'the consent page is shown');
      const done = await b.consent(page);
      assertClientRedirect(done, 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
    });
  });
});

describe('S-10 hosted pages: anti-framing, CSRF, explicit denial', () => {
  it('S-10: the login, consent and error pages carry X-Frame-Options: DENY and CSP frame-ancestors \'none\'', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid' }));
      const login = await b.openInteraction(start);
      assertPageSecurity(login);
      const consent = await b.openInteraction(await b.login(login));
      assertPageSecurity(consent);
      assert.ok(isConsentPage(consent));
      const error = await b.get('/authorize?client_id=nope');
      assertPageSecurity(error);
      const expired = await b.get('/interaction/00000000-0000-0000-0000-000000000000');
      assertErrorPage(expired, 400, 'invalid_request');
      const html = b.responses.filter((r) => /^text\/html/.test(r.headers['content-type'] ?? ''));
      assert.equal(html.length, 4);
      for (const r of html) assertPageSecurity(r);
    });
  });

  it('S-10: a wrong password re-renders the login page (400) with an error and sets no session', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const page = await b.openInteraction(await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid' })));
      const res = await b.login(page, 'alice', 'not-the-password');
      assert.equal(res.status, 400);
      assertNoCode(res);
      assert.ok(res.body.includes('The username or password is incorrect'));
      assert.equal(b.cookie('portcullis.session'), undefined);
    });
  });

  /** Start a flow and return the login page with its action and csrf. */
  async function loginPage(b: Browser, state = 'st-123'): Promise<{ page: OAuthResponse; action: string; csrf: string }> {
    const page = await b.openInteraction(await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', state })));
    assert.ok(isLoginPage(page));
    return { page, action: scrapeAction(page), csrf: scrapeCsrf(page) };
  }

  /** Sign in and return the consent page with its action and csrf. */
  async function consentPage(b: Browser, state = 'st-123'): Promise<{ page: OAuthResponse; action: string; csrf: string }> {
    const start = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', state }));
    let page = await b.openInteraction(start);
    if (isLoginPage(page)) page = await b.openInteraction(await b.login(page));
    assert.ok(isConsentPage(page));
    return { page, action: scrapeAction(page), csrf: scrapeCsrf(page) };
  }

  it('S-10: login POST without csrf → 403 error page, no session, no code', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const { action } = await loginPage(b);
      const res = await b.post(action, { username: 'alice', password: 'alice-password' });
      assertErrorPage(res, 403, 'invalid_request');
      assert.ok(res.body.includes(CSRF_FAILED));
      assertNoCode(res);
      assert.equal(res.setCookies, undefined);
      assert.equal(b.cookie('portcullis.session'), undefined);
    });
  });

  it('S-10: login POST with the csrf of another interaction → 403 error page, no session, no code', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const first = await loginPage(b, 'one');
      const second = await loginPage(b, 'two');
      assert.notEqual(first.csrf, second.csrf);
      const res = await b.post(first.action, { csrf: second.csrf, username: 'alice', password: 'alice-password' });
      assertErrorPage(res, 403, 'invalid_request');
      assertNoCode(res);
      assert.equal(b.cookie('portcullis.session'), undefined);
    });
  });

  it('S-10: the login page (GET) and the login POST without the interaction cookie (another browser) → 400 error page, no session, no code', async () => {
    await withHarness({}, async (h) => {
      const victim = new Browser(h);
      const { action, csrf } = await loginPage(victim);
      const attacker = new Browser(h);
      const view = await attacker.get(action.replace(/\/login$/, ''));
      assertErrorPage(view, 400, 'invalid_request');
      assert.ok(view.body.includes(OTHER_BROWSER));
      const res = await attacker.post(action, { csrf, username: 'alice', password: 'alice-password' });
      assertErrorPage(res, 400, 'invalid_request');
      assert.ok(res.body.includes(OTHER_BROWSER));
      assertNoCode(res);
      assert.equal(attacker.cookie('portcullis.session'), undefined);
    });
  });

  it('S-10: consent POST without csrf → 403 error page, no code; the interaction can still be approved properly once', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const { page, action } = await consentPage(b);
      const res = await b.post(action, { decision: 'approve' });
      assertErrorPage(res, 403, 'invalid_request');
      assert.ok(res.body.includes(CSRF_FAILED));
      assertNoCode(res);
      assertClientRedirect(await b.consent(page), 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
      const replay = await b.consent(page);
      assertErrorPage(replay, 400, 'invalid_request');
      assertNoCode(replay);
    });
  });

  it('S-10: consent POST with the csrf of another interaction → 403 error page, no code', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const first = await consentPage(b, 'one');
      const second = await consentPage(b, 'two');
      assert.notEqual(first.csrf, second.csrf);
      const res = await b.post(first.action, { csrf: second.csrf, decision: 'approve' });
      assertErrorPage(res, 403, 'invalid_request');
      assertNoCode(res);
    });
  });

  it('S-10: consent POST without the interaction cookie (another browser) → 400 error page, no code', async () => {
    await withHarness({}, async (h) => {
      const { action, csrf } = await consentPage(new Browser(h));
      const res = await new Browser(h).post(action, { csrf, decision: 'approve' });
      assertErrorPage(res, 400, 'invalid_request');
      assert.ok(res.body.includes(OTHER_BROWSER));
      assertNoCode(res);
    });
  });

  it('S-10: Deny → 303 to the client with exactly error=access_denied, error_description, state and iss; no consent is remembered', async () => {
    await withHarness({}, async (h) => {
      const b = new Browser(h);
      const { page } = await consentPage(b, 'deny-state');
      const res = await b.consent(page, 'deny');
      const q = assertErrorRedirect(res, 303, WEB1_CB, 'access_denied', 'deny-state');
      assert.equal(q.get('error_description'), 'The user or server denied the request');
      const silent = await b.authorize(authParams('web1', WEB1_CB, pkcePair().challenge, { scope: 'openid', prompt: 'none' }));
      assertErrorRedirect(silent, 302, WEB1_CB, 'consent_required', 'st-123');
    });
  });
});
