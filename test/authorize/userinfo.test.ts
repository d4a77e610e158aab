/**
 * UserInfo with RFC 6750 bearer rules (security.md S-49): where the token may come from, the
 * challenges, which tokens count as end-user access tokens, and the claims released per scope.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OAuthRequest, OAuthResponse } from '../../src/core/http.js';
import { assertTokenResponse, type Harness } from '../helpers/harness.js';
import { ALICE, authParams, Browser, ISSUER, pkcePair, redeem, SVC1, userinfo, WEB1, WEB1_CB, withHarness } from '../helpers/browser-flow.js';

const REALM = `Bearer realm="${ISSUER}"`;

/** Tokens of a finished code flow for alice and web1. */
async function tokens(h: Harness, scope: string, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const p = pkcePair();
  const code = await new Browser(h).code(authParams('web1', WEB1_CB, p.challenge, { scope, ...extra }));
  return assertTokenResponse(await redeem(h, WEB1, { code, redirect_uri: WEB1_CB, code_verifier: p.verifier }));
}

function call(h: Harness, req: Partial<OAuthRequest>): Promise<OAuthResponse> {
  return h.portcullis.handle({ method: 'GET', path: '/userinfo', query: '', headers: {}, ...req });
}

/** A Bearer error: status, JSON error, no-store, and the challenge naming the same error. */
function assertBearerError(res: OAuthResponse, status: number, error: string): void {
  assert.equal(res.status, status, res.body);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(JSON.parse(res.body).error, error);
  const challenge = res.headers['www-authenticate'] ?? '';
  assert.ok(challenge.startsWith(`${REALM}, error="${error}"`), `WWW-Authenticate ${challenge}`);
}

async function aliceId(h: Harness): Promise<string> {
  const alice = await h.storage.getUserByUsername(ALICE.username);
  assert.ok(alice !== undefined);
  return alice.id;
}

describe('S-49 bearer token handling at /userinfo', () => {
  it('S-49: no token → 401 with WWW-Authenticate: Bearer realm="<issuer>" and no error attribute', async () => {
    await withHarness({}, async (h) => {
      for (const method of ['GET', 'POST']) {
        const res = await call(h, { method });
        assert.equal(res.status, 401);
        assert.equal(res.headers['www-authenticate'], REALM);
        assert.ok(!/error=/.test(res.headers['www-authenticate'] ?? ''));
        assert.equal(res.headers['cache-control'], 'no-store');
      }
    });
  });

  it('S-49: a valid token in the query (?access_token=) → 400 invalid_request, never 200', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid email');
      const res = await call(h, { query: `access_token=${encodeURIComponent(t.access_token as string)}` });
      assertBearerError(res, 400, 'invalid_request');
      const both = await call(h, { query: `access_token=${encodeURIComponent(t.access_token as string)}`, headers: { authorization: `Bearer ${t.access_token as string}` } });
      assert.equal(both.status, 400);
    });
  });

  it('S-49: a token in the header and in the body → 400 invalid_request', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid email');
      const at = t.access_token as string;
      const res = await call(h, {
        method: 'POST',
        headers: { authorization: `Bearer ${at}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: at }).toString(),
      });
      assertBearerError(res, 400, 'invalid_request');
    });
  });

  it('S-49: an expired access token → 401 invalid_token', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid email');
      assert.equal((await userinfo(h, t.access_token as string)).status, 200);
      h.clock.advance((t.expires_in as number) + 1);
      assertBearerError(await userinfo(h, t.access_token as string), 401, 'invalid_token');
    });
  });

  it('S-49: an ID token as the bearer token → 401 invalid_token', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid email');
      assertBearerError(await userinfo(h, t.id_token as string), 401, 'invalid_token');
    });
  });

  it('S-49: a refresh token or an authorization code as the bearer token → 401 invalid_token', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid offline_access');
      assertBearerError(await userinfo(h, t.refresh_token as string), 401, 'invalid_token');
      const p = pkcePair();
      const code = await new Browser(h).code(authParams('web1', WEB1_CB, p.challenge, { scope: 'openid' }));
      assertBearerError(await userinfo(h, code), 401, 'invalid_token');
    });
  });

  it('S-49: a client_credentials access token → 401 invalid_token', async () => {
    await withHarness({}, async (h) => {
      const cc = assertTokenResponse(await h.post('/token', { grant_type: 'client_credentials', scope: 'api:read' }, { basic: [SVC1.id, SVC1.secret!] }));
      assertBearerError(await userinfo(h, cc.access_token as string), 401, 'invalid_token');
    });
  });

  it('S-49: a forged token (tampered signature) → 401 invalid_token', async () => {
    await withHarness({}, async (h) => {
      const at = (await tokens(h, 'openid email')).access_token as string;
      const tampered = at.slice(0, -4) + (at.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      assertBearerError(await userinfo(h, tampered), 401, 'invalid_token');
    });
  });

  it('S-49: an end-user token without openid → 403 insufficient_scope', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'api:read');
      assertBearerError(await userinfo(h, t.access_token as string), 403, 'insufficient_scope');
    });
  });

  it('S-49: POST with the header, POST with the token in the body, and GET with the header → 200 with the same claims', async () => {
    await withHarness({}, async (h) => {
      const at = (await tokens(h, 'openid email')).access_token as string;
      const expected = { sub: await aliceId(h), email: 'alice@example.com' };
      const responses = [
        await call(h, { method: 'POST', headers: { authorization: `Bearer ${at}` } }),
        await call(h, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${encodeURIComponent(at)}` }),
        await call(h, { method: 'GET', headers: { authorization: `Bearer ${at}` } }),
      ];
      for (const res of responses) {
        assert.equal(res.status, 200, res.body);
        assert.match(res.headers['content-type'] ?? '', /^application\/json/);
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.deepEqual(JSON.parse(res.body), expected);
      }
    });
  });

  it('S-49: claims follow the scope: openid → sub only; openid email → email; openid profile → profile claims, not email or phone', async () => {
    await withHarness({}, async (h) => {
      await h.portcullis.users.upsert({ username: 'alice', claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', locale: 'en-GB', phone_number: '+44 20 7946 0000' } });
      const sub = await aliceId(h);
      const claimsFor = async (scope: string) => JSON.parse((await userinfo(h, (await tokens(h, scope)).access_token as string)).body) as Record<string, unknown>;
      assert.deepEqual(await claimsFor('openid'), { sub });
      assert.deepEqual(await claimsFor('openid email'), { sub, email: 'alice@example.com', email_verified: true });
      assert.deepEqual(await claimsFor('openid profile'), { sub, name: 'Alice Liddell', locale: 'en-GB', preferred_username: 'alice' });
      assert.deepEqual(await claimsFor('openid profile email'), { sub, name: 'Alice Liddell', locale: 'en-GB', preferred_username: 'alice', email: 'alice@example.com', email_verified: true });
    });
  });

  it('S-49: claims={"userinfo":{"email":null}} with only the openid scope releases email', async () => {
    await withHarness({}, async (h) => {
      const t = await tokens(h, 'openid', { claims: JSON.stringify({ userinfo: { email: null } }) });
      const res = await userinfo(h, t.access_token as string);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(JSON.parse(res.body), { sub: await aliceId(h), email: 'alice@example.com' });
    });
  });

  it('S-49: a malformed Authorization header (not Bearer) → 400 invalid_request', async () => {
    await withHarness({}, async (h) => {
      for (const authorization of ['Basic d2ViMTp4', 'Bearer', 'Bearer a b', 'Bearer \u0001']) {
        const res = await call(h, { headers: { authorization } });
        assertBearerError(res, 400, 'invalid_request');
      }
    });
  });
});
