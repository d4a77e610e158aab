/**
 * The authorization_code grant at the token endpoint (security.md S-11 … S-17), concurrent
 * redemption, and which code-flow requests get refresh tokens.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OAuthResponse } from '../../src/core/http.js';
import { StorageUnavailableError } from '../../src/errors.js';
import { consumeFaults } from '../helpers/consume-faults.js';
import { assertOAuthError, assertTokenResponse, type Harness } from '../helpers/harness.js';
import {
  authParams,
  Browser,
  type ClientCreds,
  isActive,
  pkcePair,
  redeem,
  refresh,
  SPA1,
  SPA1_CB,
  userinfo,
  WEB1,
  WEB1_CB,
  WEB2,
  withHarness,
  createFlowHarness,
} from '../helpers/browser-flow.js';

interface Issued {
  code: string;
  verifier: string;
  challenge: string;
}

/** Run the browser flow for a client and return the code with its PKCE verifier. */
async function issueCode(h: Harness, options: { client?: string; redirectUri?: string; scope?: string; pkce?: boolean; browser?: Browser } = {}): Promise<Issued> {
  const { verifier, challenge } = pkcePair();
  const params = authParams(options.client ?? 'web1', options.redirectUri ?? WEB1_CB, challenge, { scope: options.scope ?? 'openid offline_access' });
  if (options.pkce === false) {
    delete params.code_challenge;
    delete params.code_challenge_method;
  }
  const code = await (options.browser ?? new Browser(h)).code(params);
  return { code, verifier, challenge };
}

function good(issued: Issued, redirectUri = WEB1_CB): Record<string, string> {
  return { code: issued.code, redirect_uri: redirectUri, code_verifier: issued.verifier };
}

function assertNoToken(res: OAuthResponse): void {
  assert.ok(!/access_token|refresh_token|id_token/.test(res.body), `no token in ${res.body}`);
}

/** Introspect a refresh token as its own client (refresh tokens are shown to their client only). */
async function refreshActive(h: Harness, client: ClientCreds, token: string): Promise<boolean> {
  const res = await h.post('/introspect', { token, token_type_hint: 'refresh_token' }, { basic: [client.id, client.secret!] });
  assert.equal(res.status, 200, res.body);
  return h.json(res).active === true;
}

describe('S-11 codes are single-use; reuse revokes what the code produced', () => {
  for (const delay of [1, 30]) {
    it(`S-11: redeem → 200; redeem again after ${delay} s → invalid_grant; then the first access token is inactive, its refresh token refused, /userinfo 401`, async () => {
      await withHarness({}, async (h) => {
        const issued = await issueCode(h);
        const first = assertTokenResponse(await redeem(h, WEB1, good(issued)));
        const accessToken = first.access_token as string;
        const refreshToken = first.refresh_token as string;
        assert.equal(typeof refreshToken, 'string');
        assert.equal(await isActive(h, accessToken), true);
        assert.equal((await userinfo(h, accessToken)).status, 200);

        h.clock.advance(delay);
        const second = await redeem(h, WEB1, good(issued));
        const body = assertOAuthError(second, 400, 'invalid_grant');
        assert.equal(body.error_description, 'The authorization code is invalid, expired or already used');
        assertNoToken(second);

        assert.equal(await isActive(h, accessToken), false, 'the access token from the code is revoked');
        assertOAuthError(await refresh(h, WEB1, refreshToken), 400, 'invalid_grant');
        const info = await userinfo(h, accessToken);
        assert.equal(info.status, 401);
        assert.match(info.headers['www-authenticate'] ?? '', /^Bearer realm="[^"]+", error="invalid_token"/);
      });
    });
  }
});

describe('S-12 a replay with bad parameters revokes nothing (anti-DoS)', () => {
  it('S-12: after a first redemption, replays with a wrong code_verifier, wrong redirect_uri or another client → invalid_grant, with wrong or missing client auth → 401 invalid_client; the tokens stay active', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      const first = assertTokenResponse(await redeem(h, WEB1, good(issued)));
      const at = first.access_token as string;
      const rt = first.refresh_token as string;

      assertOAuthError(await redeem(h, WEB1, { ...good(issued), code_verifier: pkcePair().verifier }), 400, 'invalid_grant');
      assert.equal(await isActive(h, at), true, 'active after a replay with a wrong verifier');

      assertOAuthError(await redeem(h, WEB1, good(issued), { basic: [WEB1.id, 'wrong-secret-0123456789'] }), 401, 'invalid_client');
      assert.equal(await isActive(h, at), true, 'active after a replay with a wrong secret');

      assertOAuthError(await h.post('/token', { grant_type: 'authorization_code', ...good(issued), client_id: WEB1.id }), 401, 'invalid_client');
      assert.equal(await isActive(h, at), true, 'active after a replay without client authentication');

      assertOAuthError(await redeem(h, WEB1, { ...good(issued), redirect_uri: 'https://web1.test/cb?x' }), 400, 'invalid_grant');
      assertOAuthError(await redeem(h, WEB2, good(issued)), 400, 'invalid_grant');
      assert.equal(await isActive(h, at), true, 'active after replays with a wrong redirect_uri or client');
      assert.equal(await refreshActive(h, WEB1, rt), true, 'the refresh token is still active');
      assert.equal((await userinfo(h, at)).status, 200);

      // A replay that passes every check is the real reuse: now the grant goes.
      assertOAuthError(await redeem(h, WEB1, good(issued)), 400, 'invalid_grant');
      assert.equal(await isActive(h, at), false);
      assert.equal(await refreshActive(h, WEB1, rt), false);
    });
  });
});

describe('concurrent redemption', () => {
  it('20 concurrent redemptions of one code → exactly one 200, the others 400 invalid_grant, no 5xx', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      const results = await Promise.all(Array.from({ length: 20 }, () => redeem(h, WEB1, good(issued))));
      const statuses = results.map((r) => r.status);
      assert.ok(statuses.every((s) => s < 500), `no 5xx: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `exactly one 200: ${statuses.join(',')}`);
      for (const r of results) if (r.status !== 200) assertOAuthError(r, 400, 'invalid_grant');
    });
  });
});

describe('the code is consumed before anything is minted', () => {
  it('the database failing at the consume: 503, no token written, and the code can be redeemed once the database is back', async () => {
    const { storage, saved, armed } = consumeFaults('authorization_code', () => Promise.reject(new StorageUnavailableError('the database went away')));
    const h = await createFlowHarness({}, storage);
    try {
      const issued = await issueCode(h);
      armed.on = true;
      const failed = await redeem(h, WEB1, good(issued));
      armed.on = false;
      assertOAuthError(failed, 503, 'temporarily_unavailable');
      assertNoToken(failed);
      assert.deepEqual(saved, [], 'nothing was written');
      const body = assertTokenResponse(await redeem(h, WEB1, good(issued)));
      assert.equal(typeof body.refresh_token, 'string');
      assertOAuthError(await redeem(h, WEB1, good(issued)), 400, 'invalid_grant');
    } finally {
      await h.close();
    }
  });

  it('a code revoked between the checks and the consume: invalid_grant, no token, none written', async () => {
    const { storage, saved, armed } = consumeFaults('authorization_code', async (inner, id) => {
      await inner.revokeArtifact('authorization_code', id, Math.floor(Date.now() / 1000));
    });
    const h = await createFlowHarness({}, storage);
    try {
      const issued = await issueCode(h);
      armed.on = true;
      const res = await redeem(h, WEB1, good(issued));
      armed.on = false;
      assertOAuthError(res, 400, 'invalid_grant');
      assertNoToken(res);
      assert.deepEqual(saved, []);
    } finally {
      await h.close();
    }
  });
});

describe('S-13 short code lifetime', () => {
  it('S-13: a code redeemed 60 s after issue → invalid_grant', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      h.clock.advance(60);
      const res = await redeem(h, WEB1, good(issued));
      assertOAuthError(res, 400, 'invalid_grant');
      assertNoToken(res);
    });
  });

  it('S-13: a code redeemed 59 s after issue → 200', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      h.clock.advance(59);
      assertTokenResponse(await redeem(h, WEB1, good(issued)));
    });
  });
});

describe('S-14 code bound to the client, S-15 bound to the redirect_uri', () => {
  it('S-14: a code of web1 presented by web2 (authenticated) → invalid_grant; by the public client spa1 → invalid_grant; web1 can still redeem it', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      const byWeb2 = await redeem(h, WEB2, good(issued));
      assertOAuthError(byWeb2, 400, 'invalid_grant');
      assertNoToken(byWeb2);
      const bySpa1 = await redeem(h, SPA1, good(issued));
      assertOAuthError(bySpa1, 400, 'invalid_grant');
      assertNoToken(bySpa1);
      assertTokenResponse(await redeem(h, WEB1, good(issued)));
    });
  });

  it('S-15: a different redirect_uri → invalid_grant; omitted when it was sent → invalid_request; the right one → 200', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      for (const other of ['https://web1.test/cb?thensome', 'https://web1.test/cb/', 'https://WEB1.test/cb']) {
        const res = await redeem(h, WEB1, { ...good(issued), redirect_uri: other });
        const body = assertOAuthError(res, 400, 'invalid_grant');
        assert.equal(body.error_description, 'The redirect_uri does not match the authorization request');
        assertNoToken(res);
      }
      const { redirect_uri: _omit, ...without } = good(issued);
      const body = assertOAuthError(await redeem(h, WEB1, without), 400, 'invalid_request');
      assert.equal(body.error_description, 'Missing parameter: redirect_uri');
      assertTokenResponse(await redeem(h, WEB1, good(issued)));
    });
  });
});

describe('S-16 PKCE verified at redemption', () => {
  it('S-16: missing code_verifier, a wrong one, a 42-character one, one with "+", or the challenge itself → invalid_grant; the right one → 200', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h);
      const { code_verifier: _omit, ...missing } = good(issued);
      const attempts: Record<string, string>[] = [
        missing,
        { ...good(issued), code_verifier: pkcePair().verifier },
        { ...good(issued), code_verifier: issued.verifier.slice(0, 42) },
        { ...good(issued), code_verifier: issued.verifier.slice(0, 42) + '+' },
        { ...good(issued), code_verifier: issued.challenge },
        { ...good(issued), code_verifier: 'a'.repeat(129) },
      ];
      for (const form of attempts) {
        const res = await redeem(h, WEB1, form);
        assertOAuthError(res, 400, 'invalid_grant');
        assertNoToken(res);
      }
      assertTokenResponse(await redeem(h, WEB1, good(issued)));
    });
  });
});

describe('S-17 PKCE downgrade', () => {
  it('S-17: with pkce.required=false, a confidential client’s code issued without code_challenge and redeemed with a code_verifier → invalid_grant, no token', async () => {
    await withHarness({ pkce: { required: false } }, async (h) => {
      const issued = await issueCode(h, { pkce: false });
      const res = await redeem(h, WEB1, good(issued));
      const body = assertOAuthError(res, 400, 'invalid_grant');
      assert.equal(body.error_description, 'code_verifier was sent for a code issued without code_challenge');
      assertNoToken(res);
    });
  });
});

describe('refresh tokens from the code flow', () => {
  it('an OpenID request without offline_access → no refresh_token (OIDC Core §11)', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h, { scope: 'openid profile' });
      const body = assertTokenResponse(await redeem(h, WEB1, good(issued)));
      assert.equal(body.refresh_token, undefined);
      assert.equal(typeof body.id_token, 'string');
    });
  });

  it('an OpenID request with offline_access (client registered for refresh_token) → refresh_token, which works', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h, { scope: 'openid offline_access' });
      const body = assertTokenResponse(await redeem(h, WEB1, good(issued)));
      assert.equal(typeof body.refresh_token, 'string');
      assertTokenResponse(await refresh(h, WEB1, body.refresh_token as string));
    });
  });

  it('a client not registered for refresh_token gets none, even with offline_access in scope', async () => {
    await withHarness({}, async (h) => {
      await h.portcullis.clients.upsert({ client_id: 'web3', client_secret: 'web3-secret-0123456789', redirect_uris: ['https://web3.test/cb'], grant_types: ['authorization_code'], scope: 'openid offline_access' });
      const issued = await issueCode(h, { client: 'web3', redirectUri: 'https://web3.test/cb', scope: 'openid offline_access' });
      const body = assertTokenResponse(await redeem(h, { id: 'web3', secret: 'web3-secret-0123456789' }, good(issued, 'https://web3.test/cb')));
      assert.equal(body.refresh_token, undefined);
    });
  });

  it('a public client’s refresh token rotates: a new one each time, and the old one replayed → invalid_grant (and the family is revoked)', async () => {
    await withHarness({}, async (h) => {
      const issued = await issueCode(h, { client: 'spa1', redirectUri: SPA1_CB, scope: 'openid offline_access' });
      const first = assertTokenResponse(await redeem(h, SPA1, good(issued, SPA1_CB)));
      const rt1 = first.refresh_token as string;
      assert.equal(typeof rt1, 'string');
      const second = assertTokenResponse(await refresh(h, SPA1, rt1));
      const rt2 = second.refresh_token as string;
      assert.equal(typeof rt2, 'string');
      assert.notEqual(rt2, rt1);
      assertOAuthError(await refresh(h, SPA1, rt1), 400, 'invalid_grant');
      assertOAuthError(await refresh(h, SPA1, rt2), 400, 'invalid_grant');
    });
  });
});
