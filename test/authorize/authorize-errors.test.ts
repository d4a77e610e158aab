/**
 * Authorization endpoint errors once the redirect URI is trusted (security.md S-05, S-06, S-07, S-09)
 * and the discovery document of the code flow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Harness } from '../helpers/harness.js';
import {
  assertClientRedirect,
  assertErrorPage,
  assertPageSecurity,
  assertErrorRedirect,
  assertToInteraction,
  authParams,
  Browser,
  createFlowHarness,
  withHarness,
  ISSUER,
  pkcePair,
  redeem,
  SPA1_CB,
  WEB1,
  WEB1_CB,
} from '../helpers/browser-flow.js';

let h: Harness;
const { challenge } = pkcePair();

before(async () => {
  h = await createFlowHarness();
});
after(async () => {
  await h.close();
});

describe('S-05 error redirects carry exactly error, error_description, state and iss', () => {
  it('S-05: response_type=bogus → 302 to the redirect URI with error=unsupported_response_type, state and iss (= issuer), nothing else', async () => {
    const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { response_type: 'bogus', state: 's1' }));
    const q = assertErrorRedirect(res, 302, WEB1_CB, 'unsupported_response_type', 's1');
    assert.equal(q.get('iss'), ISSUER);
    assert.equal(q.get('error_description'), 'Only response_type=code is supported');
  });

  it('S-05: scope=nosuch with `scopes` configured → error=invalid_scope with state and iss', async () => {
    const hs = await createFlowHarness({ scopes: ['openid', 'profile', 'email', 'offline_access', 'api:read'] });
    try {
      const res = await new Browser(hs).authorize(authParams('web1', WEB1_CB, challenge, { scope: 'openid nosuch', state: 's2' }));
      const q = assertErrorRedirect(res, 302, WEB1_CB, 'invalid_scope', 's2');
      assert.equal(q.get('error_description'), 'The requested scope is not allowed: nosuch');
    } finally {
      await hs.close();
    }
  });

  it('S-05: with `scopes` configured (API scopes only), every scope discovery lists in scopes_supported (and the client registered) is accepted, not refused with invalid_scope', async () => {
    await withHarness({ scopes: ['api:read'] }, async (hs) => {
      const supported = hs.json(await hs.get('/.well-known/openid-configuration')).scopes_supported as string[];
      const registered = ['openid', 'profile', 'email', 'offline_access', 'api:read'];
      const listed = supported.filter((s) => registered.includes(s));
      assert.ok(listed.includes('api:read'));
      for (const scope of listed) {
        const res = await new Browser(hs).authorize(authParams('web1', WEB1_CB, challenge, { scope }));
        assert.equal(res.status, 302);
        assert.ok(!(res.headers.location ?? '').includes('error=invalid_scope'), `scope ${scope} is listed in scopes_supported but refused: ${res.headers.location}`);
        assertToInteraction(res, 302);
      }
    });
  });

  it('S-05: a scope outside the client’s registered scope → error=invalid_scope with state and iss', async () => {
    const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { scope: 'openid api:write', state: 's3' }));
    assertErrorRedirect(res, 302, WEB1_CB, 'invalid_scope', 's3');
  });

  it('S-05: missing response_type → error=invalid_request with state and iss', async () => {
    const { response_type: _omit, ...params } = authParams('web1', WEB1_CB, challenge, { state: 's4' });
    const res = await new Browser(h).authorize(params);
    const q = assertErrorRedirect(res, 302, WEB1_CB, 'invalid_request', 's4');
    assert.equal(q.get('error_description'), 'Missing parameter: response_type');
  });

  it('S-05: a duplicated state → error=invalid_request WITHOUT state (exactly error, error_description, iss)', async () => {
    const query = new URLSearchParams(authParams('web1', WEB1_CB, challenge, { state: 'first' }));
    query.append('state', 'second');
    const res = await new Browser(h).get(`/authorize?${query.toString()}`);
    const q = assertErrorRedirect(res, 302, WEB1_CB, 'invalid_request');
    assert.equal(q.get('error_description'), 'Parameter state was sent more than once');
  });

  it('S-05: success → the Location has exactly code, state and iss', async () => {
    const b = new Browser(h);
    const res = await b.run(authParams('web1', WEB1_CB, challenge, { scope: 'openid', state: 'ok-state' }));
    const q = assertClientRedirect(res, 303, WEB1_CB, { code: true, state: 'ok-state', iss: ISSUER });
    assert.match(q.get('code')!, /^[A-Za-z0-9_-]{43,}$/);
  });

  it('S-05: a state with reserved and non-ASCII characters comes back byte for byte, in errors and in success', async () => {
    const state = 'a b&c=d#e/f?g+h%25i\u00e9\u{1F600}';
    const err = await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { response_type: 'bogus', state }));
    assertErrorRedirect(err, 302, WEB1_CB, 'unsupported_response_type', state);
    const ok = await new Browser(h).run(authParams('web1', WEB1_CB, challenge, { scope: 'openid', state }));
    assertClientRedirect(ok, 303, WEB1_CB, { code: true, state, iss: ISSUER });
  });

  it('S-05: without state, success carries exactly code and iss', async () => {
    const { state: _omit, ...params } = authParams('web1', WEB1_CB, challenge, { scope: 'openid' });
    const res = await new Browser(h).run(params);
    assertClientRedirect(res, 303, WEB1_CB, { code: true, iss: ISSUER });
  });
});

describe('S-06 PKCE at the authorization endpoint: required, S256 only, ABNF-checked', () => {
  it('S-06: a confidential client (web1) without code_challenge → error=invalid_request', async () => {
    const { code_challenge: _c, code_challenge_method: _m, ...params } = authParams('web1', WEB1_CB, challenge);
    const q = assertErrorRedirect(await new Browser(h).authorize(params), 302, WEB1_CB, 'invalid_request', 'st-123');
    assert.equal(q.get('error_description'), 'PKCE is required: send code_challenge and code_challenge_method=S256');
  });

  it('S-06: a public client (spa1) without code_challenge → error=invalid_request', async () => {
    const { code_challenge: _c, code_challenge_method: _m, ...params } = authParams('spa1', SPA1_CB, challenge);
    assertErrorRedirect(await new Browser(h).authorize(params), 302, SPA1_CB, 'invalid_request', 'st-123');
  });

  it('S-06: with pkce.required=false a public client still needs code_challenge (invalid_request); a confidential one may omit it', async () => {
    const hs = await createFlowHarness({ pkce: { required: false } });
    try {
      const { code_challenge: _c, code_challenge_method: _m, ...spa } = authParams('spa1', SPA1_CB, challenge);
      assertErrorRedirect(await new Browser(hs).authorize(spa), 302, SPA1_CB, 'invalid_request', 'st-123');
      const { code_challenge: _c2, code_challenge_method: _m2, ...web } = authParams('web1', WEB1_CB, challenge);
      assertToInteraction(await new Browser(hs).authorize(web), 302);
    } finally {
      await hs.close();
    }
  });

  it('S-06: code_challenge_method=plain → error=invalid_request', async () => {
    const q = assertErrorRedirect(await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { code_challenge_method: 'plain' })), 302, WEB1_CB, 'invalid_request', 'st-123');
    assert.equal(q.get('error_description'), 'Unsupported code_challenge_method: use S256');
  });

  it('S-06: code_challenge_method=plain is accepted only with pkce.allowPlain, and then the plain verifier redeems', async () => {
    const hs = await createFlowHarness({ pkce: { allowPlain: true } });
    try {
      const verifier = pkcePair().verifier;
      const b = new Browser(hs);
      const code = await b.code(authParams('web1', WEB1_CB, verifier, { code_challenge_method: 'plain', scope: 'openid' }));
      const token = await redeem(hs, WEB1, { code, redirect_uri: WEB1_CB, code_verifier: verifier });
      assert.equal(token.status, 200, token.body);
    } finally {
      await hs.close();
    }
  });

  it('S-06: an unknown code_challenge_method (S512) → error=invalid_request', async () => {
    assertErrorRedirect(await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { code_challenge_method: 'S512' })), 302, WEB1_CB, 'invalid_request', 'st-123');
  });

  it('S-06: code_challenge_method without code_challenge → error=invalid_request', async () => {
    const { code_challenge: _c, ...params } = authParams('web1', WEB1_CB, challenge);
    const q = assertErrorRedirect(await new Browser(h).authorize(params), 302, WEB1_CB, 'invalid_request', 'st-123');
    assert.equal(q.get('error_description'), 'code_challenge_method was sent without code_challenge');
  });

  it('S-06: code_challenge without code_challenge_method (would default to plain) → error=invalid_request', async () => {
    const { code_challenge_method: _m, ...params } = authParams('web1', WEB1_CB, challenge);
    const q = assertErrorRedirect(await new Browser(h).authorize(params), 302, WEB1_CB, 'invalid_request', 'st-123');
    assert.equal(q.get('error_description'), 'code_challenge_method is required (S256)');
  });

  const bad: [string, string][] = [
    ['42 characters', 'a'.repeat(42)],
    ['129 characters', 'a'.repeat(129)],
    ['a +', 'a'.repeat(42) + '+'],
    ['a /', 'a'.repeat(42) + '/'],
    ['a = (padding)', 'a'.repeat(42) + '='],
    ['a space', 'a'.repeat(21) + ' ' + 'a'.repeat(21)],
  ];
  for (const [what, value] of bad) {
    it(`S-06: code_challenge with ${what} → error=invalid_request`, async () => {
      const q = assertErrorRedirect(await new Browser(h).authorize(authParams('web1', WEB1_CB, value)), 302, WEB1_CB, 'invalid_request', 'st-123');
      assert.equal(q.get('error_description'), 'code_challenge must be 43-128 characters of [A-Za-z0-9-._~]');
    });
  }

  for (const value of ['a'.repeat(43), 'A-._~'.repeat(25) + 'abc']) {
    it(`S-06: a ${value.length}-character code_challenge of the ABNF alphabet is accepted`, async () => {
      assertToInteraction(await new Browser(h).authorize(authParams('web1', WEB1_CB, value)), 302);
    });
  }
});

describe('S-07 only response_type=code', () => {
  for (const responseType of ['token', 'id_token', 'id_token token', 'code id_token', 'code token', 'code id_token token', 'none']) {
    it(`S-07: response_type=${responseType} → error=unsupported_response_type (no token, no fragment)`, async () => {
      const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { response_type: responseType, scope: 'openid', nonce: 'n' }));
      assertErrorRedirect(res, 302, WEB1_CB, 'unsupported_response_type', 'st-123');
    });
  }
});

describe('S-09 POST /authorize', () => {
  it('S-09: a form POST runs the whole flow; every redirect answering a POST is 303', async () => {
    await withHarness({}, async (hs) => {
      const b = new Browser(hs);
      const start = await b.authorize(authParams('web1', WEB1_CB, challenge, { scope: 'openid' }), 'POST');
      assertToInteraction(start, 303);
      const login = await b.login(await b.openInteraction(start));
      assertToInteraction(login, 303);
      const done = await b.consent(await b.openInteraction(login));
      assertClientRedirect(done, 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
      // Signed in and consented: a second POST goes straight to the client, still 303.
      const again = await b.authorize(authParams('web1', WEB1_CB, challenge, { scope: 'openid', state: 'again' }), 'POST');
      assertClientRedirect(again, 303, WEB1_CB, { code: true, state: 'again', iss: ISSUER });
    });
  });

  it('S-09: an error to a POSTed request is a 303 redirect', async () => {
    const res = await new Browser(h).authorize(authParams('web1', WEB1_CB, challenge, { response_type: 'bogus' }), 'POST');
    assertErrorRedirect(res, 303, WEB1_CB, 'unsupported_response_type', 'st-123');
  });

  it('S-09: POST /authorize with Content-Type application/json → 400 error page, no redirect', async () => {
    const res = await new Browser(h).request('POST', '/authorize', {
      headers: { 'content-type': 'application/json' },
      form: JSON.stringify(authParams('web1', WEB1_CB, challenge)),
    });
    assertErrorPage(res, 400, 'invalid_request');
    assert.ok(res.body.includes('The request body must be application/x-www-form-urlencoded'));
  });

  it('S-09: PUT /authorize → 405 with Allow: GET, POST', async () => {
    const res = await h.portcullis.handle({ method: 'PUT', path: '/authorize', query: new URLSearchParams(authParams('web1', WEB1_CB, challenge)).toString(), headers: {} });
    assert.equal(res.status, 405);
    assertPageSecurity(res);
    assert.equal(res.headers.location, undefined);
    assert.ok(res.body.includes('The request must use GET or POST'));
    assert.equal(res.headers.allow, 'GET, POST');
  });
});

describe('discovery of the code flow', () => {
  it('discovery lists authorization, userinfo and end_session endpoints, response_types_supported ["code"], code_challenge_methods_supported ["S256"] and authorization_response_iss_parameter_supported true', async () => {
    const res = await h.get('/.well-known/openid-configuration');
    assert.equal(res.status, 200);
    const meta = h.json(res);
    assert.equal(meta.issuer, ISSUER);
    assert.equal(meta.authorization_endpoint, `${ISSUER}/authorize`);
    assert.equal(meta.userinfo_endpoint, `${ISSUER}/userinfo`);
    assert.equal(meta.end_session_endpoint, `${ISSUER}/end_session`);
    assert.deepEqual(meta.response_types_supported, ['code']);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.ok((meta.grant_types_supported as string[]).includes('authorization_code'));
    assert.ok(!(meta.id_token_signing_alg_values_supported as string[]).includes('none'));
  });
});
