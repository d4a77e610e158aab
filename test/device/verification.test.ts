/**
 * RFC 8628 §3.3, §5.1, §5.4: the hosted verification page — code entry, sign-in, confirmation, CSRF,
 * user-code throttling, used and expired codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '../../src/core/crypto.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import { DEVICE_CODE_GRANT_TYPE } from '../../src/device/state.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import type { Harness } from '../helpers/harness.js';
import {
  ALICE,
  BOB,
  Browser,
  TV1,
  TV2,
  alertOf,
  assertPageHeaders,
  authorizeDevice,
  countingStorage,
  createDeviceHarness,
  csrfOf,
  errorOf,
  formAction,
  poll,
  type CountingStorage,
} from './helpers.js';

const DEVICE_URL = 'http://127.0.0.1:3000/device';

async function withHarness(fn: (h: Harness, storage: CountingStorage) => Promise<void>, options: Partial<PortcullisOptions> = {}): Promise<void> {
  const storage = countingStorage();
  const h = await createDeviceHarness(options, storage);
  try {
    await fn(h, storage);
  } finally {
    await h.close();
  }
}

/** A wrong code that is a well-formed one (so it is looked up). */
function wrongCode(i: number): string {
  const letters = 'BCDFGHJKLMNPQRSTVWXZ';
  return `ZZZZ-ZZ${letters[Math.floor(i / 20) % 20]}${letters[i % 20]}`;
}

describe('device verification page', () => {
  it('GET: the code form with the page security headers and a per-browser cookie', async () => {
    await withHarness(async (h) => {
      const browser = new Browser(h);
      const res = await browser.get('/device');
      assert.equal(res.status, 200);
      assertPageHeaders(res);
      assert.match(res.body, /<h1>Connect a device<\/h1>/);
      assert.equal(formAction(res), DEVICE_URL);
      assert.match(res.body, /<input id="user_code" name="user_code"[^>]* autofocus/);
      const cookie = (res.setCookies ?? []).find((c) => c.startsWith('portcullis.device='));
      assert.ok(cookie, 'the device-flow cookie is set');
      assert.match(cookie, /; Path=\/device; HttpOnly; SameSite=Lax/);
      assert.doesNotMatch(cookie, /Secure/, 'http loopback issuer');
      // The cookie is kept, not replaced, on the next visit.
      const again = await browser.get('/device');
      assert.equal(again.setCookies, undefined);
      assert.equal(csrfOf(again), csrfOf(res));
    });
  });

  it('verification_uri_complete prefills the code (formatted) but does not submit it', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const url = new URL(a.verification_uri_complete);
      const res = await new Browser(h).get(url.pathname, url.search.slice(1));
      assert.equal(res.status, 200);
      assert.ok(res.body.includes(`value="${a.user_code}"`));
      assert.match(res.body, /<button type="submit" autofocus>Continue<\/button>/);
      const lower = await new Browser(h).get('/device', `user_code=${a.user_code.toLowerCase().replace('-', '+')}`);
      assert.ok(lower.body.includes(`value="${a.user_code}"`));
      const junk = await new Browser(h).get('/device', 'user_code=%22%3E%3Cscript%3E');
      assert.ok(junk.body.includes('value="&quot;&gt;&lt;script&gt;"'));
    });
  });

  it('no session: code → login → confirmation naming the client, the scopes and the code → approve → done', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'openid api:read');
      const browser = new Browser(h);
      const login = await browser.enterCode(a.user_code);
      assert.equal(login.status, 200);
      assertPageHeaders(login);
      assert.equal(formAction(login), `${DEVICE_URL}/login`);
      assert.match(login.body, /to continue to <strong>Living Room TV<\/strong>/);

      const confirm = await browser.post('/device/login', { csrf: csrfOf(login), username: ALICE.username, password: ALICE.password });
      assert.equal(confirm.status, 200, confirm.body);
      assertPageHeaders(confirm);
      assert.ok(browser.cookies.has('portcullis.session'), 'signed in: a session cookie');
      assert.equal(formAction(confirm), `${DEVICE_URL}/confirm`);
      assert.match(confirm.body, /<h1>Allow Living Room TV on your device\?<\/h1>/);
      assert.match(confirm.body, /Signed in as <strong>alice<\/strong>/);
      assert.ok(confirm.body.includes(`<p class="user-code">${a.user_code}</p>`));
      assert.match(confirm.body, /<code>openid<\/code>/);
      assert.match(confirm.body, /<code>api:read<\/code>/);
      assert.ok(confirm.body.includes('<button type="submit" name="decision" value="approve">Allow</button>'));
      assert.ok(confirm.body.includes('<button type="submit" name="decision" value="deny">Deny</button>'));

      const done = await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' });
      assert.equal(done.status, 200);
      assertPageHeaders(done);
      assert.match(done.body, /<h1>Device connected<\/h1>/);
      assert.match(done.body, /return to your device/);
      const state = (await h.storage.findArtifact('device_code', sha256(a.device_code), h.clock.now()))?.data;
      const alice = await h.storage.getUserByUsername('alice');
      assert.equal(state?.status, 'approved');
      assert.equal(state?.user_id, alice!.id);
      assert.equal(typeof state?.grant_id, 'string');
    });
  });

  it('with a session, the code goes straight to the confirmation; the code is case-, space- and dash-insensitive', async () => {
    await withHarness(async (h) => {
      const browser = new Browser(h);
      const first = await authorizeDevice(h, TV1);
      await browser.decide(first.user_code, 'approve');
      for (const typed of [(c: string) => c.toLowerCase().replace('-', ' '), (c: string) => c.toLowerCase(), (c: string) => ` ${c.replace('-', '')} `]) {
        const a = await authorizeDevice(h, TV2);
        const confirm = await browser.enterCode(typed(a.user_code));
        assert.equal(confirm.status, 200, confirm.body.slice(0, 500));
        assert.equal(formAction(confirm), `${DEVICE_URL}/confirm`, 'no second sign-in');
        assert.ok(confirm.body.includes(a.user_code));
      }
    });
  });

  it('deny: the device gets access_denied and the page says so', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const done = await new Browser(h).decide(a.user_code, 'deny');
      assert.equal(done.status, 200);
      assert.match(done.body, /<h1>Access denied<\/h1>/);
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'access_denied');
    });
  });

  it('a confirmation without a decision shows the page again (400); nothing is recorded', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      const confirm = await browser.reachConfirm(a.user_code);
      const res = await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'maybe' });
      assert.equal(res.status, 400);
      assert.equal(formAction(res), `${DEVICE_URL}/confirm`);
      assert.equal((await h.storage.findArtifact('device_code', sha256(a.device_code), h.clock.now()))?.data?.status, 'pending');
    });
  });

  it('wrong password: the login form again with an error; the hosted login throttling applies', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      const login = await browser.enterCode(a.user_code);
      const csrf = csrfOf(login);
      const bad = await browser.post('/device/login', { csrf, username: 'alice', password: 'wrong' });
      assert.equal(bad.status, 400);
      assert.equal(alertOf(bad), 'The username or password is incorrect');
      assert.equal(formAction(bad), `${DEVICE_URL}/login`);
      for (let i = 0; i < 4; i++) await browser.post('/device/login', { csrf, username: 'alice', password: 'wrong' });
      const locked = await browser.post('/device/login', { csrf, username: 'alice', password: ALICE.password });
      assert.equal(locked.status, 429);
      assert.equal(alertOf(locked), 'Too many sign-in attempts; try again later');
      assert.ok(!browser.cookies.has('portcullis.session'));
    });
  });

  it('CSRF: every POST without a valid token is 403, and nothing changes', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      await browser.get('/device');
      for (const [path, form] of [
        ['/device', { user_code: a.user_code }],
        ['/device', { user_code: a.user_code, csrf: 'forged' }],
        ['/device/login', { username: ALICE.username, password: ALICE.password }],
        ['/device/login', { username: ALICE.username, password: ALICE.password, csrf: `${a.user_code.replace('-', '')}.forged` }],
        ['/device/confirm', { decision: 'approve' }],
      ] as const) {
        const res = await browser.post(path, form);
        assert.equal(res.status, 403, `${path} ${JSON.stringify(form)}`);
        assertPageHeaders(res);
        assert.match(res.body, /CSRF check failed/);
      }
      assert.ok(!browser.cookies.has('portcullis.session'));
      // A POST from a browser that never loaded the page (no device cookie) is refused too.
      const fresh = new Browser(h);
      const res = await fresh.post('/device', { user_code: a.user_code, csrf: 'x' });
      assert.equal(res.status, 403);
    });
  });

  it('CSRF tokens are bound to the browser, the step, the code and the session', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const victim = new Browser(h);
      const attacker = new Browser(h);
      // The attacker's own tokens do not work in the victim's browser.
      const attackerPage = await attacker.get('/device');
      await victim.get('/device');
      assert.equal((await victim.post('/device', { csrf: csrfOf(attackerPage), user_code: a.user_code })).status, 403);
      const attackerLogin = await attacker.enterCode(a.user_code);
      assert.equal((await victim.post('/device/login', { csrf: csrfOf(attackerLogin), ...ALICE })).status, 403);
      // A login token is not a confirmation token.
      const login = await victim.enterCode(a.user_code);
      const confirm = await victim.post('/device/login', { csrf: csrfOf(login), ...ALICE });
      assert.equal((await victim.post('/device/confirm', { csrf: csrfOf(login), decision: 'approve' })).status, 403);
      // A token for another code does not carry over (the code is in the token, under the MAC).
      const other = await authorizeDevice(h, TV2);
      const swapped = csrfOf(confirm).replace(/^[A-Z]{8}/, other.user_code.replace('-', ''));
      assert.equal((await victim.post('/device/confirm', { csrf: swapped, decision: 'approve' })).status, 403);
      // A confirmation token dies with the session it was made for.
      victim.cookies.delete('portcullis.session');
      await victim.post('/device/login', { csrf: csrfOf(await victim.enterCode(other.user_code)), ...BOB });
      assert.equal((await victim.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' })).status, 403);
      assert.equal((await h.storage.findArtifact('device_code', sha256(a.device_code), h.clock.now()))?.data?.status, 'pending');
    });
  });

  it('used codes are refused with a message: after approval, after denial, after redemption', async () => {
    await withHarness(async (h) => {
      const approved = await authorizeDevice(h, TV1);
      const denied = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      await browser.decide(approved.user_code, 'approve');
      await browser.decide(denied.user_code, 'deny');
      for (const code of [approved.user_code, denied.user_code]) {
        const res = await browser.enterCode(code);
        assert.equal(res.status, 400);
        assert.equal(alertOf(res), 'This code has already been used. Start again on your device.');
        assert.equal(formAction(res), DEVICE_URL);
      }
      await poll(h, TV1, approved.device_code);
      assert.equal(alertOf(await browser.enterCode(approved.user_code)), 'This code has already been used. Start again on your device.');
      // A confirmation page left open cannot decide twice.
      const third = await authorizeDevice(h, TV1);
      const confirm = await browser.reachConfirm(third.user_code);
      assert.match((await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'deny' })).body, /Access denied/);
      const again = await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' });
      assert.equal(again.status, 400);
      assert.equal(alertOf(again), 'This code has already been used. Start again on your device.');
      assert.equal((await h.storage.findArtifact('device_code', sha256(third.device_code), h.clock.now()))?.data?.status, 'denied');
    });
  });

  it('expired codes are refused with a message, also on a page left open', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1);
      const b = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      const confirm = await browser.reachConfirm(b.user_code);
      h.clock.advance(600);
      const res = await browser.enterCode(a.user_code);
      assert.equal(res.status, 400);
      assert.equal(alertOf(res), 'This code has expired. Start again on your device.');
      const late = await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' });
      assert.equal(late.status, 400);
      assert.equal(alertOf(late), 'This code has expired. Start again on your device.');
      assert.equal(errorOf(await poll(h, TV1, b.device_code)), 'expired_token');
    });
  });

  it('a wrong code: 400 with the form, the typed value kept, the error linked to the input', async () => {
    await withHarness(async (h) => {
      const res = await new Browser(h).enterCode('bcdf-ghjk');
      assert.equal(res.status, 400);
      assertPageHeaders(res);
      assert.equal(alertOf(res), 'That code is not valid. Check the code shown on your device and try again.');
      assert.match(res.body, /value="BCDF-GHJK" aria-invalid="true" aria-describedby="code-error"/);
      const malformed = await new Browser(h).enterCode('hello');
      assert.equal(malformed.status, 400);
      assert.ok(malformed.body.includes('value="hello"'));
    });
  });
});

describe('device flow under an issuer with a path', () => {
  it('serves the page under the path, scopes its cookie to it, and completes', async () => {
    const issuer = 'http://127.0.0.1:3000/tenant';
    const p = await createPortcullis({ issuer, storage: createMemoryStorage() });
    try {
      await p.clients.upsert({ client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE_GRANT_TYPE], scope: 'api:read' });
      await p.users.upsert({ username: 'alice', password: 'alice-password' });
      const form = (path: string, body: Record<string, string>, cookie?: string) =>
        p.handle({ method: 'POST', path, query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie !== undefined ? { cookie } : {}) }, body: new URLSearchParams(body).toString() });
      const a = JSON.parse((await form('/tenant/device_authorization', { client_id: 'tv' })).body) as { device_code: string; user_code: string; verification_uri: string };
      assert.equal(a.verification_uri, `${issuer}/device`);
      assert.equal(p.metadata().device_authorization_endpoint, `${issuer}/device_authorization`);
      const page = await p.handle({ method: 'GET', path: '/tenant/device', query: '', headers: {} });
      assert.equal(page.status, 200);
      assert.equal(formAction(page), `${issuer}/device`);
      const deviceCookie = page.setCookies?.[0] ?? '';
      assert.match(deviceCookie, /; Path=\/tenant\/device;/);
      let cookie = deviceCookie.split(';')[0]!;
      const login = await form('/tenant/device', { csrf: csrfOf(page), user_code: a.user_code }, cookie);
      assert.equal(formAction(login), `${issuer}/device/login`);
      const confirm = await form('/tenant/device/login', { csrf: csrfOf(login), username: 'alice', password: 'alice-password' }, cookie);
      cookie += '; ' + (confirm.setCookies ?? []).map((c) => c.split(';')[0]).join('; ');
      assert.equal(formAction(confirm), `${issuer}/device/confirm`);
      const done = await form('/tenant/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' }, cookie);
      assert.match(done.body, /Device connected/);
      const tokens = await form('/tenant/token', { grant_type: DEVICE_CODE_GRANT_TYPE, client_id: 'tv', device_code: a.device_code });
      assert.equal(tokens.status, 200, tokens.body);
    } finally {
      await p.close();
    }
  });
});

describe('user-code throttling (RFC 8628 §5.1)', () => {
  it('one browser: the 6th code in a window is 429 without a lookup, even a right one; the next window is open again', async () => {
    await withHarness(async (h, storage) => {
      const a = await authorizeDevice(h, TV1);
      const browser = new Browser(h);
      for (let i = 0; i < 5; i++) assert.equal((await browser.enterCode(wrongCode(i))).status, 400);
      const lookups = storage.finds.user_code ?? 0;
      const sixth = await browser.enterCode(wrongCode(5));
      assert.equal(sixth.status, 429);
      assertPageHeaders(sixth);
      assert.equal(alertOf(sixth), 'Too many codes were tried; wait a few minutes and try again.');
      assert.equal(formAction(sixth), DEVICE_URL, 'the form is shown again');
      const right = await browser.enterCode(a.user_code);
      assert.equal(right.status, 429, 'not even a right code gets through');
      assert.equal(storage.finds.user_code ?? 0, lookups, 'no lookup while throttled');
      // Another browser (another address too) is not affected.
      assert.equal(formAction(await new Browser(h, '192.0.2.99').enterCode(a.user_code)), `${DEVICE_URL}/login`);
      h.clock.advance(600);
      const b = await authorizeDevice(h, TV1);
      assert.equal(formAction(await browser.enterCode(b.user_code)), `${DEVICE_URL}/login`);
    });
  });

  it('one browser: a right code clears its count (consecutive wrong codes are what counts)', async () => {
    await withHarness(async (h) => {
      const browser = new Browser(h);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) assert.equal((await browser.enterCode(wrongCode(round * 4 + i))).status, 400);
        const a = await authorizeDevice(h, TV1);
        assert.equal((await browser.enterCode(a.user_code)).status, 200, `round ${round}`);
      }
      // Five wrong in a row, and the sixth is refused.
      for (let i = 0; i < 5; i++) assert.equal((await browser.enterCode(wrongCode(20 + i))).status, 400);
      assert.equal((await browser.enterCode(wrongCode(25))).status, 429);
    }, { deviceFlow: { maxCodeAttemptsPerAddress: 100 } });
  });

  it('one address, many browsers (fresh cookies): the 21st code in a window is 429 without a lookup', async () => {
    await withHarness(async (h, storage) => {
      const a = await authorizeDevice(h, TV1);
      const ip = '203.0.113.7';
      let attempts = 0;
      for (let b = 0; b < 5; b++) {
        const browser = new Browser(h, ip);
        for (let i = 0; i < 4; i++) assert.equal((await browser.enterCode(wrongCode(attempts++))).status, 400);
      }
      assert.equal(attempts, 20);
      const lookups = storage.finds.user_code ?? 0;
      const blocked = await new Browser(h, ip).enterCode(a.user_code);
      assert.equal(blocked.status, 429);
      assert.equal(storage.finds.user_code ?? 0, lookups);
      // Another address still gets through.
      assert.equal((await new Browser(h, '203.0.113.8').enterCode(a.user_code)).status, 200);
    });
  });

  it('globally: past the global limit every browser and address is refused without a lookup', async () => {
    await withHarness(
      async (h, storage) => {
        const a = await authorizeDevice(h, TV1);
        for (let i = 0; i < 3; i++) assert.equal((await new Browser(h, `198.51.100.${i}`).enterCode(wrongCode(i))).status, 400);
        const lookups = storage.finds.user_code ?? 0;
        assert.equal((await new Browser(h, '198.51.100.200').enterCode(a.user_code)).status, 429);
        assert.equal(storage.finds.user_code ?? 0, lookups);
      },
      { deviceFlow: { maxCodeAttemptsGlobal: 3 } },
    );
  });

  it('steps after the code (login, confirmation) are not counted as code attempts', async () => {
    await withHarness(async (h) => {
      const browser = new Browser(h);
      for (let i = 0; i < 4; i++) await browser.enterCode(wrongCode(i));
      const a = await authorizeDevice(h, TV1);
      // 5th attempt: the right code; then sign-in and confirmation carry it in their signed tokens.
      const done = await browser.decide(a.user_code, 'approve');
      assert.match(done.body, /Device connected/);
    });
  });
});
