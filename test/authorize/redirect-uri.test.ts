/**
 * Authorization endpoint, redirect URI rules (security.md S-01, S-02, S-03): exact string matching,
 * the loopback port exception, and never redirecting before client and redirect_uri are trusted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { OAuthResponse } from '../../src/core/http.js';
import type { Harness } from '../helpers/harness.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import {
  assertClientRedirect,
  assertErrorPage,
  assertPageSecurity,
  assertToInteraction,
  authParams,
  Browser,
  createFlowHarness,
  ISSUER,
  NAT1,
  NAT1_CB,
  pkcePair,
  redeem,
  WEB1_CB,
  WEB2_CB,
  WEB2_CB2,
} from '../helpers/browser-flow.js';

const NOT_REGISTERED = 'The redirect_uri is not registered for this client';

let h: Harness;
const { challenge } = pkcePair();

before(async () => {
  h = await createFlowHarness();
});
after(async () => {
  await h.close();
});

function authorize(params: Record<string, string>): Promise<OAuthResponse> {
  return new Browser(h).authorize(params);
}

/** The refusal every bad redirect_uri gets: a 400 page, not a redirect. */
function assertRefused(res: OAuthResponse, description = NOT_REGISTERED): void {
  assertErrorPage(res, 400, 'invalid_request');
  assert.ok(res.body.includes(description), `the page says "${description}"`);
  assert.equal(res.setCookies, undefined, 'no cookie is set for a refused request');
}

describe('S-01 redirect_uri is compared by exact string match', () => {
  const variants = [
    'https://web1.test/cb/',
    'https://WEB1.test/cb',
    'https://web1.test:443/cb',
    'https://web1.test/CB',
    'https://web1.test/cb?x=1',
    'https://web1.test/cb#',
    'https://web1.test/cb#x',
    'https://web1.test/cb/../cb',
    'https://web1.test/cb%2F..%2Fevil',
    'https://web1.test.evil.test/cb',
    'https://web1.test@evil.test/cb',
    'https://evil.test/cb',
  ];
  for (const variant of variants) {
    it(`S-01: ${variant} (registered ${WEB1_CB}) → 400 error page, no Location`, async () => {
      assertRefused(await authorize(authParams('web1', variant, challenge)));
    });
  }

  it('S-01: the exact registered URI → 302 to the login interaction', async () => {
    const b = new Browser(h);
    const res = await b.authorize(authParams('web1', WEB1_CB, challenge));
    const path = assertToInteraction(res, 302);
    const page = await b.get(path);
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Sign in<\/h1>/);
  });

  it('S-01: with two registered URIs, each exact one is accepted and a mix of both is not', async () => {
    assertToInteraction(await authorize(authParams('web2', WEB2_CB, challenge)), 302);
    assertToInteraction(await authorize(authParams('web2', WEB2_CB2, challenge)), 302);
    assertRefused(await authorize(authParams('web2', 'https://web2.test/cb3', challenge)));
    assertRefused(await authorize(authParams('web2', 'https://web2.test/c', challenge)));
  });

  /** Strings near the registered URIs: one edit (insert, delete, replace, case flip) away, or random. */
  function near(uri: string): fc.Arbitrary<string> {
    const edit = fc.tuple(fc.nat({ max: uri.length }), fc.string({ minLength: 1, maxLength: 4, unit: 'binary-ascii' }), fc.nat({ max: 3 }));
    return edit.map(([pos, s, op]) => {
      switch (op) {
        case 0:
          return uri.slice(0, pos) + s + uri.slice(pos);
        case 1:
          return uri.slice(0, pos) + uri.slice(pos + s.length);
        case 2:
          return uri.slice(0, pos) + s + uri.slice(pos + s.length);
        default: {
          const c = uri.charAt(pos);
          return uri.slice(0, pos) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + uri.slice(pos + 1);
        }
      }
    });
  }
  const PORT_VARIANT = /^http:\/\/127\.0\.0\.1(?::(\d{1,5}))?\/cb$/;
  /** What the server must accept: the registered string itself, or (loopback) the same with any valid port. */
  function acceptable(uri: string, registered: readonly string[]): boolean {
    if (registered.includes(uri)) return true;
    if (!registered.includes(NAT1_CB)) return false;
    const m = PORT_VARIANT.exec(uri);
    return m !== null && (m[1] === undefined || Number(m[1]) <= 65535);
  }

  const cases: { client: string; registered: string[] }[] = [
    { client: 'web1', registered: [WEB1_CB] },
    { client: 'web2', registered: [WEB2_CB, WEB2_CB2] },
    { client: 'nat1', registered: [NAT1_CB] },
  ];
  for (const { client, registered } of cases) {
    it(`S-01 property: for ${client}, any redirect_uri that is not exactly a registered URI (or a loopback port variant) is refused without redirect`, async () => {
      const arb = fc.oneof(
        ...registered.map(near),
        fc.string({ maxLength: 60 }),
        fc.string({ maxLength: 60, unit: 'binary' }),
        fc.webUrl({ withQueryParameters: true, withFragments: true }),
        fc.nat({ max: 70000 }).chain((port) => near(`http://127.0.0.1:${port}/cb`)),
        fc.constantFrom(...registered.map((r) => r + '/'), ...registered.map((r) => r.toUpperCase()), ...registered.map((r) => r + '?')),
      );
      let refused = 0;
      await fc.assert(
        // An empty value is an omitted parameter (RFC 6749 §3.1); omission has its own tests below.
        fc.asyncProperty(arb.filter((uri) => uri !== ''), async (uri) => {
          const res = await authorize(authParams(client, uri, challenge));
          if (acceptable(uri, registered)) {
            assertToInteraction(res, 302);
          } else {
            assertErrorPage(res, 400, 'invalid_request');
            refused++;
          }
        }),
        { numRuns: 400 },
      );
      assert.ok(refused > 300, `most generated URIs are refused (${refused})`);
    });
  }
});

describe('S-02 loopback redirect URIs: only the port may vary', () => {
  it('S-02: nat1 (registered http://127.0.0.1/cb) with http://127.0.0.1:53123/cb → accepted; the code goes to that port and redeems with it', async () => {
    const b = new Browser(h);
    const p = pkcePair();
    const uri = 'http://127.0.0.1:53123/cb';
    const res = await b.run(authParams('nat1', uri, p.challenge, { state: 'nat-state' }));
    const q = assertClientRedirect(res, 303, uri, { code: true, state: 'nat-state', iss: ISSUER });
    const otherPort = await redeem(h, NAT1, { code: q.get('code')!, redirect_uri: 'http://127.0.0.1:1111/cb', code_verifier: p.verifier });
    assert.equal(otherPort.status, 400, 'the token request must repeat the exact redirect_uri, port included');
    assert.equal(JSON.parse(otherPort.body).error, 'invalid_grant');
    const token = await redeem(h, NAT1, { code: q.get('code')!, redirect_uri: uri, code_verifier: p.verifier });
    assert.equal(token.status, 200, token.body);
  });

  const refused = [
    'http://127.0.0.1:53123/cb2',
    'http://127.0.0.1:53123/cb?x',
    'http://127.0.0.1:1@evil.test/cb',
    'http://127.0.0.1:@evil.test/cb',
    'http://localhost:53123/cb',
    'https://127.0.0.1:53123/cb',
    'http://127.0.0.2:53123/cb',
    'http://127.0.0.1:53123/cb#x',
    'http://127.0.0.1:53123/CB',
  ];
  for (const uri of refused) {
    it(`S-02: nat1 with ${uri} → 400 error page, no Location`, async () => {
      assertRefused(await authorize(authParams('nat1', uri, challenge)));
    });
  }

  for (const uri of ['https://web1.test:8443/cb', 'https://web1.test:53123/cb']) {
    it(`S-02: an https (non-loopback) registered URI with a port added (${uri}) → 400 error page, no Location`, async () => {
      assertRefused(await authorize(authParams('web1', uri, challenge)));
    });
  }
});

describe('S-03 never redirect when the client or the redirect_uri is invalid', () => {
  it('S-03(a): unknown client_id with an evil redirect_uri → 400 error page, no Location', async () => {
    const res = await authorize(authParams('nope', 'https://evil.test/cb', challenge));
    assertRefused(res, 'The client is unknown');
    assert.ok(!res.body.includes('evil.test'), 'the page does not link to the evil URI');
  });

  it('S-03: missing client_id → 400 error page', async () => {
    const { client_id: _omit, ...params } = authParams('web1', WEB1_CB, challenge);
    assertRefused(await authorize(params), 'Missing parameter: client_id');
  });

  it('S-03(b): web2 (two registered URIs) without redirect_uri → 400 error page, no Location', async () => {
    const { redirect_uri: _omit, ...params } = authParams('web2', WEB2_CB, challenge);
    assertRefused(await authorize(params), 'Missing parameter: redirect_uri');
  });

  it('S-03: an OpenID request without redirect_uri (client with one registered URI) → 400 error page, no Location (OIDC Core §3.1.2.1: redirect_uri is required)', async () => {
    const { redirect_uri: _omit, ...params } = authParams('web1', WEB1_CB, challenge, { scope: 'openid' });
    assertRefused(await authorize(params), 'Missing parameter: redirect_uri');
  });

  it('S-03: an OpenID request with an empty redirect_uri (= omitted) → 400 error page, no Location', async () => {
    assertRefused(await authorize(authParams('web1', '', challenge, { scope: 'openid' })), 'Missing parameter: redirect_uri');
  });

  it('S-03: an OAuth (non-OpenID) request without redirect_uri for a client with one registered URI uses that URI (RFC 6749 §3.1.2.3); the token request then needs no redirect_uri', async () => {
    const b = new Browser(h);
    const p = pkcePair();
    const { redirect_uri: _omit, ...params } = authParams('web1', WEB1_CB, p.challenge, { scope: 'api:read' });
    const res = await b.run(params);
    const q = assertClientRedirect(res, 303, WEB1_CB, { code: true, state: 'st-123', iss: ISSUER });
    const token = await redeem(h, { id: 'web1', secret: 'web1-secret-0123456789' }, { code: q.get('code')!, code_verifier: p.verifier });
    assert.equal(token.status, 200, token.body);
  });

  it('S-03(c): several errors at once (bad redirect_uri + response_type=bogus + prompt=bogus) → 400 error page, no Location', async () => {
    const res = await authorize(authParams('web1', 'https://evil.test/cb', challenge, { response_type: 'bogus', prompt: 'bogus', max_age: '-1', code_challenge_method: 'plain' }));
    assertRefused(res);
  });

  it('S-03(c): several errors at once sent by POST → 400 error page, no Location', async () => {
    const res = await new Browser(h).authorize(authParams('web1', 'https://evil.test/cb', challenge, { response_type: 'bogus', prompt: 'bogus' }), 'POST');
    assertRefused(res);
  });

  it('S-03(d): a store failure while the client is looked up → 500 error page, no redirect, nothing internal shown', async () => {
    const storage = createMemoryStorage();
    const hs = await createFlowHarness({}, storage);
    try {
      storage.getClient = async () => {
        throw new Error('SQLITE_BUSY: database is locked at getClient');
      };
      const res = await new Browser(hs).authorize(authParams('web1', 'https://evil.test/cb', challenge, { response_type: 'bogus' }));
      assertErrorPage(res, 500, 'server_error');
      assert.ok(!res.body.includes('SQLITE') && !res.body.includes('getClient'), 'no internal detail on the page');
      const good = await new Browser(hs).authorize(authParams('web1', WEB1_CB, challenge));
      assertErrorPage(good, 500, 'server_error');
    } finally {
      await hs.close();
    }
  });

  it('S-03: a repeated redirect_uri (one good, one evil) → 400 error page, no Location', async () => {
    const query = new URLSearchParams(authParams('web1', WEB1_CB, challenge));
    query.append('redirect_uri', 'https://evil.test/cb');
    const res = await new Browser(h).get(`/authorize?${query.toString()}`);
    assertRefused(res, 'client_id and redirect_uri must be sent once');
  });

  for (const uri of ['javascript:alert(1)//', 'data:text/html,<script>alert(1)</script>', 'JavaScript:alert(document.cookie)', 'vbscript:msgbox(1)']) {
    it(`S-03(e): redirect_uri=${uri} → 400 error page, no Location, no script`, async () => {
      const res = await authorize(authParams('web1', uri, challenge));
      assertRefused(res);
      assert.ok(!/<script(?! nonce=)/i.test(res.body), 'no script element from the request');
      assert.ok(!res.body.toLowerCase().includes('javascript:') && !res.body.includes('data:text/html'), 'the URI is not echoed');
    });
  }

  it('S-03: the error page escapes a hostile client_id ("<script>…") and sets no cookie', async () => {
    const hostile = '"><script>alert(1)</script>';
    const res = await authorize(authParams(hostile, 'https://evil.test/cb', challenge));
    assertRefused(res, 'The client is unknown');
    assert.ok(!res.body.includes('<script>alert(1)</script>'), 'no raw script from the client_id');
    assert.ok(!res.body.includes('"><'), 'no attribute break-out');
  });

  it('S-03: a registered client whose client_id is hostile HTML is escaped on the login page', async () => {
    const hostile = '"><script>alert(1)</script>';
    await h.portcullis.clients.upsert({ client_id: hostile, client_secret: 'hostile-secret-0123456789', redirect_uris: ['https://hostile.test/cb'] });
    const b = new Browser(h);
    const page = await b.openInteraction(await b.authorize(authParams(hostile, 'https://hostile.test/cb', challenge)));
    assertPageSecurity(page);
    assert.equal(page.status, 200);
    assert.ok(page.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the client_id is shown escaped');
    assert.ok(!page.body.includes('<script>alert(1)</script>'), 'no raw script');
  });
});
