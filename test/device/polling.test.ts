/**
 * RFC 8628 §3.4-3.5: polling the token endpoint with a device code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { sha256 } from '../../src/core/crypto.js';
import type { ArtifactKind, Storage } from '../../src/storage/contract.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { assertOAuthError, assertTokenResponse, ISSUER, type Harness } from '../helpers/harness.js';
import { Browser, CLI1, TV1, TV2, authorizeDevice, createDeviceHarness, csrfOf, errorOf, poll } from './helpers.js';

async function withHarness(fn: (h: Harness) => Promise<void>, storage?: Storage): Promise<void> {
  const h = await createDeviceHarness({}, storage);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

async function deviceState(h: Harness, deviceCode: string): Promise<Record<string, unknown>> {
  const record = await h.storage.findArtifact('device_code', sha256(deviceCode), h.clock.now());
  assert.ok(record);
  return record.data ?? {};
}

describe('device code polling', () => {
  it('authorization_pending until the user decides; a compliant client (every interval) never gets slow_down', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      for (let i = 0; i < 4; i++) {
        const res = await poll(h, TV1, a.device_code);
        assertOAuthError(res, 400, 'authorization_pending');
        h.clock.advance(a.interval);
      }
      assert.equal((await deviceState(h, a.device_code)).interval, 5);
    });
  });

  it('slow_down when polled faster than the interval, and the interval grows by 5 s for every later poll', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      const t = h.clock.now();
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'authorization_pending'); // t
      h.clock.set(t + 1);
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'slow_down'); // 1 s < 5 s
      assert.equal((await deviceState(h, a.device_code)).interval, 10);
      h.clock.set(t + 6);
      // 5 s after the last request would have been enough before; the interval is now 10 s.
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'slow_down');
      assert.equal((await deviceState(h, a.device_code)).interval, 15);
      h.clock.set(t + 16);
      // 10 s after the last request, 16 s after the last accepted poll (≥ 15 s): accepted.
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'authorization_pending');
      // The grown interval stays: 10 s later is too fast, 15 s is fine.
      h.clock.set(t + 26);
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'slow_down');
      h.clock.set(t + 16 + 20);
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'authorization_pending');
    });
  });

  it('a client hammering the endpoint never gets through: each slow_down outgrows the time it waited', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'authorization_pending');
      for (let i = 0; i < 30; i++) {
        h.clock.advance(1);
        assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'slow_down');
      }
    });
  });

  it('concurrent polls: exactly one is accepted, the others are slow_down (the state version is claimed atomically)', async () => {
    // Every device-code read waits until all five polls have read, so all of them see the same state.
    const inner = createMemoryStorage();
    let waiting: (() => void)[] = [];
    let barrier = 0;
    const storage = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'findArtifact') {
          return async (kind: ArtifactKind, id: string, now: number) => {
            const record = await target.findArtifact(kind, id, now);
            if (kind === 'device_code' && barrier > 0) {
              await new Promise<void>((resolve) => {
                waiting.push(resolve);
                if (waiting.length === barrier) {
                  for (const r of waiting) r();
                  waiting = [];
                }
              });
            }
            return record;
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Storage;
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      barrier = 5;
      const results = await Promise.all(Array.from({ length: 5 }, () => poll(h, TV1, a.device_code)));
      barrier = 0;
      const errors = results.map((r) => errorOf(r)).sort();
      assert.deepEqual(errors, ['authorization_pending', 'slow_down', 'slow_down', 'slow_down', 'slow_down']);
      const state = await deviceState(h, a.device_code);
      assert.equal(state.version, 1, 'one write: the accepted poll');
      assert.equal(state.status, 'pending');
    }, storage);
  });

  it('a poll racing the approval never overwrites it', async () => {
    const inner = createMemoryStorage();
    let hold: Promise<void> | undefined;
    const storage = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'findArtifact') {
          return async (kind: ArtifactKind, id: string, now: number) => {
            const record = await target.findArtifact(kind, id, now);
            // The poll reads the (pending) state, then waits while the approval is written.
            if (kind === 'device_code' && hold !== undefined) await hold;
            return record;
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Storage;
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      const browser = new Browser(h);
      const confirm = await browser.reachConfirm(a.user_code);
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      const racing = poll(h, TV1, a.device_code);
      await new Promise((r) => setTimeout(r, 5));
      hold = undefined;
      // The approval is written while the poll holds a stale, pending read.
      const done = await browser.post('/device/confirm', { csrf: csrfOf(confirm), decision: 'approve' });
      assert.match(done.body, /Device connected/);
      release();
      const raced = await racing;
      assert.ok(['slow_down', 'authorization_pending'].includes(errorOf(raced)), raced.body);
      assert.equal((await deviceState(h, a.device_code)).status, 'approved', 'the approval survived the stale poll');
      h.clock.advance(20);
      assertTokenResponse(await poll(h, TV1, a.device_code));
    }, storage);
  });

  it('resource (RFC 8707) at the token request: a resource the client may not use is invalid_target and does not spend the device code; an allowed one is the aud', async () => {
    await withHarness(async (h) => {
      await h.portcullis.clients.upsert({ client_id: TV1.id, client_secret: TV1.secret, client_name: 'Living Room TV', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], scope: 'openid profile offline_access api:read', allowed_audiences: ['https://api.example.com/'] });
      const a = await authorizeDevice(h, TV1, 'api:read');
      await new Browser(h).decide(a.user_code, 'approve');
      assertOAuthError(await poll(h, TV1, a.device_code, { resource: 'https://other.example.com/' }), 400, 'invalid_target');
      h.clock.advance(a.interval);
      const body = assertTokenResponse(await poll(h, TV1, a.device_code, { resource: 'https://api.example.com/' }));
      assert.equal(jose.decodeJwt(String(body.access_token)).aud, 'https://api.example.com/');
    });
  });

  it('approved: tokens for the approving user, an ID token with openid, a refresh token per registration', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'openid profile api:read');
      await new Browser(h).decide(a.user_code, 'approve');
      const body = assertTokenResponse(await poll(h, TV1, a.device_code));
      assert.equal(body.scope, 'openid profile api:read');
      assert.equal(typeof body.refresh_token, 'string', 'tv1 is registered for refresh_token');
      const alice = await h.storage.getUserByUsername('alice');
      const access = jose.decodeJwt(String(body.access_token));
      assert.equal(access.sub, alice!.id);
      assert.equal(access.client_id, TV1.id);
      const id = jose.decodeJwt(String(body.id_token));
      assert.equal(id.iss, ISSUER);
      assert.equal(id.sub, alice!.id);
      assert.equal(id.aud, TV1.id);
      assert.equal(id.nonce, undefined);
      assert.equal(typeof id.auth_time, 'number');
      assert.deepEqual(id.amr, ['pwd']);
      // The refresh token works.
      const refreshed = await h.post('/token', { grant_type: 'refresh_token', refresh_token: String(body.refresh_token) }, { basic: [TV1.id, TV1.secret!] });
      assertTokenResponse(refreshed);
    });
  });

  it('no ID token without openid; no refresh token for a client not registered for refresh_token', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV2, 'api:read');
      await new Browser(h).decide(a.user_code, 'approve', { username: 'bob', password: 'bob-password' });
      const body = assertTokenResponse(await poll(h, TV2, a.device_code));
      assert.equal(body.id_token, undefined);
      assert.equal(body.refresh_token, undefined);
      assert.equal(body.scope, 'api:read');
    });
  });

  it('a public client polls with client_id alone', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, CLI1, 'api:read');
      assert.equal(errorOf(await poll(h, CLI1, a.device_code)), 'authorization_pending');
      await new Browser(h).decide(a.user_code, 'approve');
      h.clock.advance(5);
      assertTokenResponse(await poll(h, CLI1, a.device_code));
    });
  });

  it('access_denied after the user denies', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      const page = await new Browser(h).decide(a.user_code, 'deny');
      assert.match(page.body, /Access denied/);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'access_denied');
      h.clock.advance(5);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'access_denied');
    });
  });

  it('expired_token once the code expired (kept findable for an hour), then invalid_grant', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      h.clock.advance(599);
      assert.equal(errorOf(await poll(h, TV1, a.device_code)), 'authorization_pending');
      h.clock.advance(1);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'expired_token');
      h.clock.advance(3599);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'expired_token');
      h.clock.advance(1);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'invalid_grant');
    });
  });

  it('an approved code that expired before redemption is expired_token, not tokens', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      await new Browser(h).decide(a.user_code, 'approve');
      h.clock.advance(600);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'expired_token');
    });
  });

  it("another client's device code is invalid_grant, and does not disturb the owner", async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      await new Browser(h).decide(a.user_code, 'approve');
      assertOAuthError(await poll(h, TV2, a.device_code), 400, 'invalid_grant');
      assertOAuthError(await poll(h, CLI1, a.device_code), 400, 'invalid_grant');
      assertTokenResponse(await poll(h, TV1, a.device_code));
    });
  });

  it('redeemed once: a second redemption is invalid_grant and revokes every token of the grant', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'openid api:read');
      await new Browser(h).decide(a.user_code, 'approve');
      const first = assertTokenResponse(await poll(h, TV1, a.device_code));
      const introspect = (token: string) => h.post('/introspect', { token }, { basic: [TV1.id, TV1.secret!] });
      assert.equal(h.json(await introspect(String(first.access_token))).active, true);
      h.clock.advance(5);
      assertOAuthError(await poll(h, TV1, a.device_code), 400, 'invalid_grant');
      assert.deepEqual(h.json(await introspect(String(first.access_token))), { active: false });
      assert.deepEqual(h.json(await introspect(String(first.refresh_token))), { active: false });
      const refresh = await h.post('/token', { grant_type: 'refresh_token', refresh_token: String(first.refresh_token) }, { basic: [TV1.id, TV1.secret!] });
      assertOAuthError(refresh, 400, 'invalid_grant');
    });
  });

  it('confidential clients must authenticate; a missing or unknown device_code is refused', async () => {
    await withHarness(async (h) => {
      const a = await authorizeDevice(h, TV1, 'api:read');
      const noSecret = await h.post('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: a.device_code, client_id: TV1.id });
      assertOAuthError(noSecret, 401, 'invalid_client');
      assertOAuthError(await h.post('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }, { basic: [TV1.id, TV1.secret!] }), 400, 'invalid_request');
      assertOAuthError(await poll(h, TV1, 'not-a-device-code'), 400, 'invalid_grant');
      assertOAuthError(await poll(h, TV1, 'x'.repeat(600)), 400, 'invalid_grant');
      // A client not registered for the grant: unauthorized_client, before the code is looked at.
      assertOAuthError(await h.post('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: a.device_code }, { basic: ['svc1', 'svc1-secret-0123456789'] }), 400, 'unauthorized_client');
      // None of this touched the code.
      assert.equal((await deviceState(h, a.device_code)).version, 0);
    });
  });
});
