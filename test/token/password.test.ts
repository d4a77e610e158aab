import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertOAuthError, assertTokenResponse, createHarness, WEB1, WEB2, type Harness } from '../helpers/harness.js';
import { createPortcullis } from '../../src/provider.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

describe('password grant', () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ passwordGrant: { maxAttemptsPerUser: 5, maxFailuresPerClient: 8, windowSeconds: 900 } });
  });
  after(() => h.close());

  it('is off by default: unsupported_grant_type, not advertised', async () => {
    const p = await createPortcullis({ issuer: 'http://127.0.0.1:3000', storage: createMemoryStorage() });
    try {
      await p.clients.upsert({ client_id: 'c', client_secret: 'c-secret-0123456789', grant_types: ['refresh_token'] });
      const res = await p.handle({ method: 'POST', path: '/token', query: '', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('c:c-secret-0123456789').toString('base64') }, body: 'grant_type=password&username=alice&password=x' });
      assertOAuthError(res, 400, 'unsupported_grant_type');
      assert.ok(!(p.metadata().grant_types_supported as string[]).includes('password'));
      await assert.rejects(p.clients.upsert({ client_id: 'd', client_secret: 'd-secret-0123456789', grant_types: ['password'] }), /grant_types/);
    } finally {
      await p.close();
    }
  });

  it('needs the client to be registered for it', async () => {
    assertOAuthError(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password' }, { basic: ['svc1', 'svc1-secret-0123456789'] }), 400, 'unauthorized_client');
  });

  it('signs the user in and yields a refresh token whose access token names the user', async () => {
    const body = assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'alice', password: 'alice-password', scope: 'api:read' }, { basic: WEB1 }));
    assert.equal(typeof body.refresh_token, 'string');
    const intro = h.json(await h.post('/introspect', { token: String(body.access_token) }, { basic: WEB1 }));
    const alice = await h.portcullis.users.findByUsername('alice');
    assert.equal(intro.sub, alice!.id);
    assert.equal(intro.scope, 'api:read');
  });

  it('an unknown user and a wrong password get identical responses', async () => {
    const wrong = await h.post('/token', { grant_type: 'password', username: 'bob', password: 'nope-nope' }, { basic: WEB2 });
    const unknown = await h.post('/token', { grant_type: 'password', username: 'nobody', password: 'nope-nope' }, { basic: WEB2 });
    assertOAuthError(wrong, 400, 'invalid_grant');
    assert.equal(wrong.status, unknown.status);
    assert.equal(wrong.body, unknown.body);
    assert.deepEqual(wrong.headers, unknown.headers);
  });

  it('missing username or password is invalid_request', async () => {
    assertOAuthError(await h.post('/token', { grant_type: 'password', password: 'x' }, { basic: WEB1 }), 400, 'invalid_request');
    assertOAuthError(await h.post('/token', { grant_type: 'password', username: 'alice' }, { basic: WEB1 }), 400, 'invalid_request');
  });

  it('throttles per user: 20 parallel wrong guesses admit at most 5 checks, then even the right password is refused', async () => {
    await h.portcullis.users.upsert({ username: 'dave', password: 'dave-password' });
    const results = await Promise.all(Array.from({ length: 20 }, () => h.post('/token', { grant_type: 'password', username: 'dave', password: 'wrong-guess' }, { basic: WEB1 })));
    const locked = results.filter((r) => r.headers['retry-after'] !== undefined);
    assert.equal(locked.length, 15, 'exactly 5 attempts were checked');
    for (const r of results) assertOAuthError(r, 400, 'invalid_grant');
    const right = await h.post('/token', { grant_type: 'password', username: 'dave', password: 'dave-password' }, { basic: WEB1 });
    assertOAuthError(right, 400, 'invalid_grant');
    assert.ok(Number(right.headers['retry-after']) > 0);
    h.clock.advance(901);
    assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'dave', password: 'dave-password' }, { basic: WEB1 }));
  });

  it('throttles failures per client', async () => {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9'];
    for (const u of users) {
      await h.post('/token', { grant_type: 'password', username: u, password: 'wrong-guess' }, { basic: WEB2 });
    }
    const res = await h.post('/token', { grant_type: 'password', username: 'bob', password: 'bob-password' }, { basic: WEB2 });
    assertOAuthError(res, 400, 'invalid_grant');
    assert.ok(res.headers['retry-after'] !== undefined, 'the client is locked after too many failures');
    assertTokenResponse(await h.post('/token', { grant_type: 'password', username: 'bob', password: 'bob-password' }, { basic: WEB1 }));
  });
});
