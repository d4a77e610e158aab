import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import { clearRemoteJwksCache, privateKeyJwtAlgorithms } from '../../src/client-auth/private-key-jwt.js';
import type { ClientRecord } from '../../src/storage/contract.js';
import {
  ISSUER,
  TOKEN_ENDPOINT,
  assertionBody,
  claims,
  harness,
  rejects,
  rejectsClient,
  sign,
  testKey,
  wire,
} from './fixtures.js';
import type { Harness, TestKey } from './fixtures.js';

async function withClient(alg = 'ES256', extra: Record<string, unknown> = {}): Promise<{ h: Harness; key: TestKey }> {
  const h = harness();
  const key = await testKey(alg);
  await h.register({
    client_id: 'pk-client',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [key.publicJwk] },
    grant_types: ['client_credentials'],
    ...extra,
  });
  return { h, key };
}

async function assertion(h: Harness, key: TestKey, overrides = {}, header: Record<string, unknown> = {}): Promise<string> {
  return sign(claims('pk-client', h.now, overrides), key.privateKey, { alg: key.alg, kid: key.publicJwk.kid, ...header });
}

describe('private_key_jwt', () => {
  for (const alg of ['ES256', 'RS256', 'EdDSA', 'PS256']) {
    it(`authenticates an ${alg} assertion`, async () => {
      const { h, key } = await withClient(alg);
      const result = await h.auth(assertionBody(await assertion(h, key), 'pk-client'));
      assert.deepEqual([result.method, result.client.client_id], ['private_key_jwt', 'pk-client']);
    });
  }

  it('finds the client from iss when the body has no client_id', async () => {
    const { h, key } = await withClient();
    const result = await h.auth(assertionBody(await assertion(h, key)));
    assert.equal(result.client.client_id, 'pk-client');
  });

  it('accepts aud = issuer and aud = [token endpoint]', async () => {
    const { h, key } = await withClient();
    await h.auth(assertionBody(await assertion(h, key, { aud: ISSUER })));
    await h.auth(assertionBody(await assertion(h, key, { aud: [TOKEN_ENDPOINT] })));
  });

  it('tries every key when several match (no kid)', async () => {
    const h = harness();
    const a = await testKey('ES256', 'a');
    const b = await testKey('ES256', 'b');
    await h.register({
      client_id: 'pk-client',
      jwks: { keys: [{ ...a.publicJwk, kid: undefined }, { ...b.publicJwk, kid: undefined }].map((k) => JSON.parse(JSON.stringify(k))) },
      grant_types: ['client_credentials'],
    });
    const token = await sign(claims('pk-client', h.now), b.privateKey, { alg: 'ES256' });
    assert.equal((await h.auth(assertionBody(token))).method, 'private_key_jwt');
  });

  it('a replayed jti is invalid_client', async () => {
    const { h, key } = await withClient();
    const token = await assertion(h, key);
    await h.auth(assertionBody(token));
    const err = await rejectsClient(h.auth(assertionBody(token)));
    assert.match(err.detail ?? '', /replayed/);
  });

  it('the same jti from another client is not a replay', async () => {
    const { h, key } = await withClient();
    const other = await testKey('ES256');
    await h.register({ client_id: 'pk-other', jwks: { keys: [other.publicJwk] }, grant_types: ['client_credentials'] });
    await h.auth(assertionBody(await assertion(h, key, { jti: 'shared' })));
    const token = await sign(claims('pk-other', h.now, { jti: 'shared' }), other.privateKey, { alg: 'ES256', kid: other.publicJwk.kid });
    assert.equal((await h.auth(assertionBody(token))).client.client_id, 'pk-other');
  });

  for (const [name, overrides, detail] of [
    ['missing exp', { exp: undefined }, /exp/],
    ['missing jti', { jti: undefined }, /jti/],
    ['empty jti', { jti: '' }, /jti/],
    ['jti longer than 256', { jti: 'j'.repeat(257) }, /jti/],
    ['missing sub', { sub: undefined }, /sub/],
    ['sub of another client', { sub: 'someone-else' }, /sub/],
    ['iss of another client', { iss: 'someone-else' }, /iss/],
    ['wrong aud', { aud: 'https://evil.example/token' }, /aud/],
    ['missing aud', { aud: undefined }, /aud/],
    ['aud array of two accepted values', { aud: [ISSUER, TOKEN_ENDPOINT] }, /aud/],
    ['aud array with a foreign audience', { aud: [TOKEN_ENDPOINT, 'https://rs.example'] }, /aud/],
    ['empty aud array', { aud: [] }, /aud/],
    ['iat in the future beyond tolerance', { iat: 1_700_000_000 + 61 }, /iat/],
  ] as const) {
    it(`refuses an assertion with ${name}`, async () => {
      const { h, key } = await withClient();
      const err = await rejectsClient(h.auth(assertionBody(await assertion(h, key, overrides), 'pk-client')));
      assert.match(err.detail ?? '', detail);
    });
  }

  it('jti of exactly 256 characters is accepted', async () => {
    const { h, key } = await withClient();
    await h.auth(assertionBody(await assertion(h, key, { jti: 'j'.repeat(256) })));
  });

  it('iss different from the body client_id is invalid_client (not invalid_request)', async () => {
    const { h, key } = await withClient();
    await h.register({ client_id: 'other', client_secret: 'other secret', grant_types: ['client_credentials'] });
    await rejectsClient(h.auth(assertionBody(await assertion(h, key), 'other')));
  });

  it('an expired assertion is refused; one expired within the tolerance is accepted', async () => {
    const { h, key } = await withClient();
    await rejectsClient(h.auth(assertionBody(await assertion(h, key, { exp: h.now - 16, iat: h.now - 60 }))));
    await h.auth(assertionBody(await assertion(h, key, { exp: h.now - 10, iat: h.now - 60 })));
  });

  it('exp too far ahead is refused; maxAssertionLifetime + tolerance is the limit', async () => {
    const { h, key } = await withClient();
    const err = await rejectsClient(h.auth(assertionBody(await assertion(h, key, { exp: h.now + 300 + 15 + 1 }))));
    assert.match(err.detail ?? '', /too far/);
    await h.auth(assertionBody(await assertion(h, key, { exp: h.now + 300 + 15 })));
    await rejectsClient(h.auth(assertionBody(await assertion(h, key, { exp: h.now + 86_400 }))));
  });

  it('nbf 8 s ahead is accepted (tolerance), 61 s ahead is refused', async () => {
    const { h, key } = await withClient();
    await h.auth(assertionBody(await assertion(h, key, { nbf: h.now + 8 })));
    const err = await rejectsClient(h.auth(assertionBody(await assertion(h, key, { nbf: h.now + 61 }))));
    assert.match(err.detail ?? '', /nbf/);
  });

  it('uses the injected clock, not the system clock', async () => {
    const { h, key } = await withClient();
    h.now = 2_000_000_000;
    await h.auth(assertionBody(await assertion(h, key)));
  });

  it('refuses alg none (hand-crafted unsigned token)', async () => {
    const { h } = await withClient();
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    const token = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims('pk-client', h.now))}.`;
    await rejectsClient(h.auth(assertionBody(token, 'pk-client')));
    await rejectsClient(h.auth(assertionBody(token)));
    const noneCaps = `${enc({ alg: 'NONE' })}.${enc(claims('pk-client', h.now))}.`;
    await rejectsClient(h.auth(assertionBody(noneCaps)));
  });

  it('refuses an HS256 assertion keyed with the public key bytes', async () => {
    const { h, key } = await withClient('RS256');
    const publicBytes = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    const pem = new TextEncoder().encode(JSON.stringify(key.publicJwk.n));
    for (const secret of [publicBytes, pem]) {
      const token = await sign(claims('pk-client', h.now), secret, { alg: 'HS256', kid: key.publicJwk.kid });
      const err = await rejectsClient(h.auth(assertionBody(token, 'pk-client')));
      assert.match(err.detail ?? '', /registered for private_key_jwt but used client_secret_jwt/);
    }
  });

  it('refuses an embedded jwk header carrying an attacker key', async () => {
    const { h, key } = await withClient('ES256');
    const attacker = await generateKeyPair('ES256', { extractable: true });
    const attackerJwk = await exportJWK(attacker.publicKey);
    for (const kid of [key.publicJwk.kid, undefined]) {
      const token = await new SignJWT(claims('pk-client', h.now))
        .setProtectedHeader({ alg: 'ES256', ...(kid === undefined ? {} : { kid }), jwk: attackerJwk })
        .sign(attacker.privateKey);
      const err = await rejectsClient(h.auth(assertionBody(token, 'pk-client')));
      assert.match(err.detail ?? '', /signature/i);
    }
  });

  it('refuses a token signed by an unregistered key (jku / x5u headers ignored)', async () => {
    const { h, key } = await withClient('ES256');
    const attacker = await generateKeyPair('ES256');
    const token = await new SignJWT(claims('pk-client', h.now))
      .setProtectedHeader({ alg: 'ES256', kid: key.publicJwk.kid, jku: 'https://evil.example/jwks', x5u: 'https://evil.example/cert' })
      .sign(attacker.privateKey);
    await rejectsClient(h.auth(assertionBody(token)));
  });

  it('refuses an algorithm the server does not accept', async () => {
    const h = harness({ assertionSigningAlgorithms: ['RS256'] });
    const key = await testKey('ES256');
    await h.register({ client_id: 'pk-client', jwks: { keys: [key.publicJwk] }, grant_types: ['client_credentials'] });
    const err = await rejectsClient(h.auth(assertionBody(await assertion(h, key))));
    assert.match(err.detail ?? '', /alg/i);
  });

  it('honours token_endpoint_auth_signing_alg', async () => {
    const rsa = await testKey('RS256');
    const ec = await testKey('ES256');
    const { h } = await withClient('ES256', { jwks: { keys: [rsa.publicJwk, ec.publicJwk] }, token_endpoint_auth_signing_alg: 'RS256' });
    await h.auth(assertionBody(await assertion(h, rsa)));
    await rejectsClient(h.auth(assertionBody(await assertion(h, ec))));
  });

  it('a registered alg the server does not accept means no algorithm at all', () => {
    const client = { token_endpoint_auth_signing_alg: 'ES512' } as ClientRecord;
    assert.deepEqual(privateKeyJwtAlgorithms(client, { assertionSigningAlgorithms: ['ES256'] }), []);
    assert.deepEqual(
      privateKeyJwtAlgorithms({} as ClientRecord, { assertionSigningAlgorithms: ['none', 'HS256', 'ES256', 'hs512'] }),
      ['ES256'],
    );
  });

  it('a client registered for client_secret_basic cannot use an assertion', async () => {
    const { h, key } = await withClient();
    await h.register({ client_id: 'secret-client', client_secret: 'the secret!', grant_types: ['client_credentials'] });
    const token = await sign(claims('secret-client', h.now), key.privateKey, { alg: 'ES256' });
    await rejectsClient(h.auth(assertionBody(token, 'secret-client')));
  });

  it('private_key_jwt must be enabled on the server', async () => {
    const h = harness({ methods: ['client_secret_basic'] });
    const key = await testKey('ES256');
    await h.register({ client_id: 'pk-client', jwks: { keys: [key.publicJwk] }, grant_types: ['client_credentials'] });
    await rejectsClient(h.auth(assertionBody(await assertion(h, key))));
  });

  it('malformed assertions are invalid_client, never a 500', async () => {
    const { h } = await withClient();
    for (const junk of ['not-a-jwt', 'a.b.c', 'eyJhbGciOiJFUzI1NiJ9.!!!.x', '....']) {
      await rejectsClient(h.auth(assertionBody(junk, 'pk-client')));
      await rejectsClient(h.auth(assertionBody(junk)));
    }
  });

  it('unknown client and bad signature answers are byte-identical', async () => {
    const { h, key } = await withClient();
    const ghost = await rejectsClient(h.auth(assertionBody(await sign(claims('ghost', h.now), key.privateKey, { alg: 'ES256' }))));
    const other = await testKey('ES256', key.publicJwk.kid);
    const bad = await rejectsClient(h.auth(assertionBody(await assertion(h, other))));
    assert.deepStrictEqual(wire(ghost), wire(bad));
  });

  it('an RSA key under 2048 bits is refused', async () => {
    const h = harness();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), alg: 'RS256' };
    await h.register({ client_id: 'pk-client', jwks: { keys: [jwk] }, grant_types: ['client_credentials'] });
    const input = `${base64url.encode(JSON.stringify({ alg: 'RS256' }))}.${base64url.encode(JSON.stringify(claims('pk-client', h.now)))}`;
    const token = `${input}.${base64url.encode(cryptoSign('sha256', Buffer.from(input), privateKey))}`;
    const err = await rejectsClient(h.auth(assertionBody(token)));
    assert.match(err.detail ?? '', /2048/);
  });
});

describe('private_key_jwt with jwks_uri', () => {
  const realFetch = globalThis.fetch;
  afterEach(() => {
    globalThis.fetch = realFetch;
    clearRemoteJwksCache();
  });

  it('fetches the registered https key set and caches it', async () => {
    const h = harness();
    const key = await testKey('ES256');
    await h.register({ client_id: 'remote-client', jwks_uri: 'https://client.example/jwks.json', grant_types: ['client_credentials'] });
    const fetched: string[] = [];
    globalThis.fetch = (async (url: string | URL) => {
      fetched.push(String(url));
      return new Response(JSON.stringify({ keys: [key.publicJwk] }), { headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    for (let i = 0; i < 3; i++) {
      const token = await sign(claims('remote-client', h.now), key.privateKey, { alg: 'ES256', kid: key.publicJwk.kid });
      assert.equal((await h.auth(assertionBody(token))).client.client_id, 'remote-client');
    }
    assert.deepEqual(fetched, ['https://client.example/jwks.json']);
  });

  it('a failing key-set fetch is invalid_client, not a 500', async () => {
    const h = harness();
    const key = await testKey('ES256');
    await h.register({ client_id: 'remote-down', jwks_uri: 'https://down.example/jwks.json', grant_types: ['client_credentials'] });
    globalThis.fetch = (async () => new Response('oops', { status: 500 })) as typeof fetch;
    const token = await sign(claims('remote-down', h.now), key.privateKey, { alg: 'ES256', kid: key.publicJwk.kid });
    await rejectsClient(h.auth(assertionBody(token)));
  });

  it('a non-https jwks_uri in storage is never fetched', async () => {
    const h = harness();
    const key = await testKey('ES256');
    const record: ClientRecord = {
      client_id: 'plain-http',
      redirect_uris: [],
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: 'http://client.example/jwks.json',
      created_at: h.now,
      updated_at: h.now,
    };
    await h.storage.upsertClient(record);
    globalThis.fetch = (async () => assert.fail('must not fetch')) as typeof fetch;
    const token = await sign(claims('plain-http', h.now), key.privateKey, { alg: 'ES256', kid: key.publicJwk.kid });
    const err = await rejectsClient(h.auth(assertionBody(token)));
    assert.match(err.detail ?? '', /https/);
  });
});

describe('client_assertion request shape', () => {
  it('an assertion with no client_id and no iss is invalid_client', async () => {
    const { h, key } = await withClient();
    await rejectsClient(h.auth(assertionBody(await assertion(h, key, { iss: undefined }))));
  });

  it('a wrong assertion type is invalid_request', async () => {
    const { h, key } = await withClient();
    const body = assertionBody(await assertion(h, key));
    body.client_assertion_type = 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer';
    await rejects(h.auth(body), 'invalid_request', 400);
  });
});
