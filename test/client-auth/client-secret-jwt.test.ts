import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sealer } from '../../src/core/seal.js';
import { assertionBody, basic, claims, harness, rejectsClient, sign, testKey, wire } from './fixtures.js';
import type { Harness } from './fixtures.js';

const SECRET = 'a shared secret of decent length, 32+ bytes';
const key = new TextEncoder().encode(SECRET);

async function withClient(extra: Record<string, unknown> = {}, overrides: Parameters<typeof harness>[0] = {}): Promise<Harness> {
  const h = harness(overrides);
  await h.register({
    client_id: 'hs-client',
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_jwt',
    grant_types: ['client_credentials'],
    ...extra,
  });
  return h;
}

describe('client_secret_jwt', () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`authenticates an ${alg} assertion keyed with the (sealed) secret`, async () => {
      const h = await withClient();
      const token = await sign(claims('hs-client', h.now), key, { alg });
      const result = await h.auth(assertionBody(token, 'hs-client'));
      assert.deepEqual([result.method, result.client.client_id], ['client_secret_jwt', 'hs-client']);
    });
  }

  it('the secret is stored sealed, never in clear', async () => {
    const h = await withClient();
    const stored = await h.storage.getClient('hs-client');
    assert.ok(stored?.client_secret_encrypted?.startsWith('enc:v1:'));
    assert.ok(!JSON.stringify(stored).includes(SECRET));
  });

  it('a wrong secret is invalid_client, identical to an unknown client', async () => {
    const h = await withClient();
    const wrong = await rejectsClient(
      h.auth(assertionBody(await sign(claims('hs-client', h.now), new TextEncoder().encode('not the secret at all!'), { alg: 'HS256' }))),
    );
    assert.match(wrong.detail ?? '', /signature/i);
    const unknown = await rejectsClient(h.auth(assertionBody(await sign(claims('ghost', h.now), key, { alg: 'HS256' }))));
    assert.deepStrictEqual(wire(wrong), wire(unknown));
  });

  it('a replayed jti is invalid_client', async () => {
    const h = await withClient();
    const token = await sign(claims('hs-client', h.now), key, { alg: 'HS256' });
    await h.auth(assertionBody(token));
    await rejectsClient(h.auth(assertionBody(token)));
  });

  it('applies the shared claim checks (expired, aud, sub)', async () => {
    const h = await withClient();
    for (const overrides of [{ exp: h.now - 100, iat: h.now - 200 }, { aud: 'https://other.example' }, { sub: 'x' }]) {
      await rejectsClient(h.auth(assertionBody(await sign(claims('hs-client', h.now, overrides), key, { alg: 'HS256' }))));
    }
  });

  it('an asymmetric assertion is a method mismatch for a client_secret_jwt client', async () => {
    const h = await withClient();
    const ec = await testKey('ES256');
    const err = await rejectsClient(h.auth(assertionBody(await sign(claims('hs-client', h.now), ec.privateKey, { alg: 'ES256' }))));
    assert.match(err.detail ?? '', /registered for client_secret_jwt but used private_key_jwt/);
  });

  it('the secret of a client_secret_jwt client does not work with Basic or post', async () => {
    const h = await withClient();
    await rejectsClient(h.auth({}, basic('hs-client', SECRET)));
    await rejectsClient(h.auth({ client_id: 'hs-client', client_secret: SECRET }));
  });

  it('honours token_endpoint_auth_signing_alg', async () => {
    const h = await withClient({ token_endpoint_auth_signing_alg: 'HS512' });
    await h.auth(assertionBody(await sign(claims('hs-client', h.now), key, { alg: 'HS512' })));
    await rejectsClient(h.auth(assertionBody(await sign(claims('hs-client', h.now), key, { alg: 'HS256' }))));
  });

  it('without a sealer, or with the wrong one, authentication fails closed', async () => {
    const h = await withClient();
    const token = () => sign(claims('hs-client', h.now), key, { alg: 'HS256' });
    const { sealer, ...rest } = h.options;
    assert.ok(sealer);
    h.options = { ...rest };
    await rejectsClient(h.auth(assertionBody(await token())));
    h.options = { ...rest, sealer: new Sealer('another-key-encryption-secret-xyz') };
    const err = await rejectsClient(h.auth(assertionBody(await token())));
    assert.match(err.detail ?? '', /cannot be opened/);
  });

  it('client_secret_jwt must be enabled on the server', async () => {
    const h = await withClient({}, { methods: ['private_key_jwt'] });
    await rejectsClient(h.auth(assertionBody(await sign(claims('hs-client', h.now), key, { alg: 'HS256' }))));
  });
});
