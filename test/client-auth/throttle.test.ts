import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OAuthError } from '../../src/core/errors.js';
import { REALM, T0, assertionBody, basic, claims, harness, rejects, rejectsClient, sign, testKey } from './fixtures.js';
import type { Harness } from './fixtures.js';

const SECRET = 'the right secret';
const MAX = 5;

async function setup(max = MAX): Promise<Harness> {
  const h = harness({ maxFailuresPerMinute: max });
  await h.register({ client_id: 'victim', client_secret: SECRET, grant_types: ['client_credentials'] });
  await h.register({ client_id: 'bystander', client_secret: SECRET, grant_types: ['client_credentials'] });
  await h.register({ client_id: 'spa', redirect_uris: ['https://spa.example/cb'] });
  return h;
}

/** Count storage calls made by authenticateClient. */
function spy(h: Harness): string[] {
  const calls: string[] = [];
  const storage = h.storage as unknown as Record<string, unknown>;
  for (const name of ['getClient', 'hitRateLimit', 'recordOnce', 'hasRecord', 'resetRateLimit']) {
    const original = storage[name] as (...args: unknown[]) => unknown;
    storage[name] = (...args: unknown[]) => {
      calls.push(name);
      return original.apply(h.storage, args);
    };
  }
  return calls;
}

async function throttled(promise: Promise<unknown>, retryAfter: number): Promise<OAuthError> {
  const err = await rejects(promise, 'invalid_client', 401);
  assert.deepEqual(err.headers, { 'www-authenticate': REALM, 'retry-after': String(retryAfter) });
  assert.deepEqual(err.toJSON(), { error: 'invalid_client', error_description: 'Client authentication failed' });
  return err;
}

describe('failed-authentication throttling', () => {
  it('after N failures even the right secret is refused with Retry-After until the window ends', async () => {
    const h = await setup();
    assert.equal(T0 % 60, 20); // window [T0-20, T0+40)
    for (let i = 1; i < MAX; i++) await rejectsClient(h.auth({}, basic('victim', `wrong ${i}`)));
    // The N-th failure starts the block and already says so.
    await throttled(h.auth({}, basic('victim', 'wrong N')), 40);
    const err = await throttled(h.auth({}, basic('victim', SECRET)), 40);
    assert.match(err.detail ?? '', /without checking/);
    h.now = T0 + 39;
    await throttled(h.auth({}, basic('victim', SECRET)), 1);
    await throttled(h.auth({ client_id: 'victim', client_secret: SECRET }), 1);
    // Other clients are unaffected.
    assert.equal((await h.auth({}, basic('bystander', SECRET))).client.client_id, 'bystander');
    h.now = T0 + 40; // next window
    assert.equal((await h.auth({}, basic('victim', SECRET))).client.client_id, 'victim');
  });

  it('refuses blocked attempts without checking the secret (no counter hit, no client lookup)', async () => {
    const h = await setup();
    for (let i = 0; i < MAX; i++) await rejects(h.auth({}, basic('victim', 'bad')), 'invalid_client', 401);
    const calls = spy(h);
    await throttled(h.auth({}, basic('victim', SECRET)), 40);
    assert.deepEqual(calls, []);
  });

  it('a successful client_secret_basic costs one storage call and resets nothing', async () => {
    const h = await setup();
    const calls = spy(h);
    await h.auth({}, basic('victim', SECRET));
    assert.deepEqual(calls, ['getClient']);
    calls.length = 0;
    await rejectsClient(h.auth({}, basic('victim', 'bad')));
    assert.deepEqual(calls, ['getClient', 'hitRateLimit']);
    // Successes in between do not wipe failures.
    for (let i = 1; i < MAX - 1; i++) {
      await h.auth({}, basic('victim', SECRET));
      await rejectsClient(h.auth({}, basic('victim', 'bad')));
    }
    await throttled(h.auth({}, basic('victim', 'bad')), 40);
    await throttled(h.auth({}, basic('victim', SECRET)), 40);
  });

  it('unknown client ids are counted too, so throttling does not reveal which ids exist', async () => {
    const h = await setup();
    for (let i = 1; i < MAX; i++) await rejectsClient(h.auth({}, basic('ghost', 'x')));
    await throttled(h.auth({}, basic('ghost', 'x')), 40);
    await throttled(h.auth({}, basic('ghost', 'x')), 40);
  });

  it('concurrent failures are all counted (atomic counter)', async () => {
    const h = await setup();
    const results = await Promise.allSettled(Array.from({ length: MAX * 2 }, () => h.auth({}, basic('victim', 'bad'))));
    assert.ok(results.every((r) => r.status === 'rejected'));
    const withRetry = results.filter((r) => r.status === 'rejected' && (r.reason as OAuthError).headers['retry-after'] !== undefined);
    assert.equal(withRetry.length, MAX + 1); // hits MAX .. 2*MAX
    await throttled(h.auth({}, basic('victim', SECRET)), 40);
  });

  it('assertion failures count, and a blocked client cannot burn a jti', async () => {
    const h = harness({ maxFailuresPerMinute: 2 });
    const key = await testKey('ES256');
    const wrongKey = await testKey('ES256', key.publicJwk.kid);
    await h.register({ client_id: 'pk', jwks: { keys: [key.publicJwk] }, grant_types: ['client_credentials'] });
    await rejectsClient(h.auth(assertionBody(await sign(claims('pk', h.now), wrongKey.privateKey, { alg: 'ES256', kid: 'ES256-key' }))));
    await throttled(h.auth(assertionBody('garbage', 'pk')), 40);
    const good = await sign(claims('pk', h.now), key.privateKey, { alg: 'ES256', kid: 'ES256-key' });
    await throttled(h.auth(assertionBody(good)), 40);
    h.now = T0 + 40;
    assert.equal((await h.auth(assertionBody(good))).client.client_id, 'pk');
  });

  it('public clients (client_id only) are never blocked, though bad secrets sent for them count', async () => {
    const h = await setup();
    for (let i = 0; i < MAX + 2; i++) await rejects(h.auth({}, basic('spa', 'guess')), 'invalid_client', 401);
    assert.equal((await h.auth({ client_id: 'spa' })).method, 'none');
    await throttled(h.auth({}, basic('spa', 'guess')), 40);
  });

  it('Infinity disables throttling', async () => {
    const h = await setup(Infinity);
    const calls = spy(h);
    for (let i = 0; i < 30; i++) await rejectsClient(h.auth({}, basic('victim', 'bad')));
    assert.ok(!calls.includes('hitRateLimit'));
    await h.auth({}, basic('victim', SECRET));
  });

  it('malformed requests (invalid_request) are not counted', async () => {
    const h = await setup(1);
    await rejects(h.auth({ client_id: 'other' }, basic('victim', SECRET)), 'invalid_request', 400);
    await rejects(h.auth({}, { authorization: 'Basic !!!' }), 'invalid_request', 400);
    assert.equal((await h.auth({}, basic('victim', SECRET))).client.client_id, 'victim');
  });

  it('separate storages do not share blocks', async () => {
    const a = await setup(1);
    const b = await setup(1);
    await throttled(a.auth({}, basic('victim', 'bad')), 40);
    assert.equal((await b.auth({}, basic('victim', SECRET))).client.client_id, 'victim');
  });
});
