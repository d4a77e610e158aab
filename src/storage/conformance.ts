/**
 * The storage conformance suite: every rule of the {@link Storage} contract as `node:test` tests.
 * Run it against your own backend from a test file:
 *
 * ```ts
 * import { runStorageConformance } from 'portcullis/storage/conformance';
 * runStorageConformance('my-backend', () => createMyStorage(), { cleanup: (s) => wipe(s) });
 * ```
 *
 * Every test gets a fresh storage from `factory`, and after the test `cleanup` (when given) and
 * then `close()` run on it. Times in the tests are far in the past (1970) or far in the future,
 * so a backend that reads its own clock instead of the `now` it is given fails.
 *
 * Besides the contract's header, the suite pins these choices (shared by the bundled backends):
 * - optional fields never set come back absent (`deepStrictEqual` round trips; never `null`);
 * - upserts replace the whole record (optional fields not given are cleared);
 * - a username belongs to one user: `upsertUser` rejects a username held by another user;
 * - `revokeArtifact` / `revokeGrant` keep an artifact's first `revoked_at`;
 * - `updateKey` changes the fields given and leaves the others;
 * - `sweepExpired(now, limit)` deletes at most `limit` rows of each kind (artifacts, replay
 *   records, rate-limit windows whose `reset_at <= now`, grants whose `expires_at <= now`, signing
 *   keys whose `expires_at <= now`) and returns the total deleted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  ArtifactKind,
  ArtifactRecord,
  ClientRecord,
  ConsumeResult,
  GrantRecord,
  KeyRecord,
  Storage,
  UserRecord,
} from './contract.js';

export interface StorageConformanceOptions {
  /** Runs after each test, before `close()`: delete what the test wrote from a shared store. */
  cleanup?: (storage: Storage) => Promise<void>;
}

/** 1970-01-12: long past, so a backend that uses the wall clock sees every record as expired. */
const T = 1_000_000;
/** 2100-01-01: far future, so a backend that uses the wall clock sees every record as live. */
const FUTURE = 4_102_444_800;

const KINDS: readonly ArtifactKind[] = ['authorization_code', 'refresh_token', 'access_token', 'device_code', 'user_code', 'session', 'interaction', 'consent', 'server_secret'];

function fullClient(id = 'client-full'): ClientRecord {
  return {
    client_id: id,
    client_secret_hash: 'sha256$c2FsdA$ZGlnZXN0',
    client_secret_encrypted: 'enc:v1:aXY.Y3Q.dGFn',
    client_name: 'Full Client ✓',
    redirect_uris: ['https://app.example.com/cb', 'https://app.example.com/cb2'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'private_key_jwt',
    scope: 'openid profile email',
    jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', kid: 'k1', use: 'sig' }] },
    jwks_uri: 'https://app.example.com/jwks.json',
    token_endpoint_auth_signing_alg: 'ES256',
    access_token_format: 'opaque',
    rotate_refresh_tokens: false,
    resource_server_audiences: ['https://api.example.com', 'https://api2.example.com'],
    post_logout_redirect_uris: ['https://app.example.com/bye'],
    id_token_signed_response_alg: 'RS256',
    first_party: true,
    allowed_audiences: ['https://api.example.com'],
    extra: { logo_uri: 'https://app.example.com/logo.png', contacts: ['a@example.com'], nested: { n: 1, b: true, z: null } },
    created_at: T,
    updated_at: T + 5,
  };
}

function minimalClient(id = 'client-min'): ClientRecord {
  return {
    client_id: id,
    redirect_uris: [],
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    created_at: T,
    updated_at: T,
  };
}

function fullUser(id = 'user-full', username = 'alice'): UserRecord {
  return {
    id,
    username,
    password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g',
    claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Ä', address: { country: 'FR' } },
    created_at: T,
    updated_at: T + 1,
  };
}

function minimalUser(id = 'user-min', username = 'bob'): UserRecord {
  return { id, username, claims: {}, created_at: T, updated_at: T };
}

function fullGrant(id = 'grant-full'): GrantRecord {
  return {
    id,
    client_id: 'client-1',
    user_id: 'user-1',
    scope: 'openid offline_access',
    grant_type: 'authorization_code',
    created_at: T,
    expires_at: T + 86_400,
    revoked_at: T + 10,
    auth_time: T - 30,
    data: { nonce: 'n-0S6_WzA2Mj', claims: { id_token: { acr: null } }, list: [1, 'two'] },
  };
}

function minimalGrant(id = 'grant-min', expiresAt = T + 86_400): GrantRecord {
  return {
    id,
    client_id: 'client-1',
    scope: '',
    grant_type: 'client_credentials',
    created_at: T,
    expires_at: expiresAt,
  };
}

function fullArtifact(kind: ArtifactKind, id: string): ArtifactRecord {
  return {
    kind,
    id,
    grant_id: 'grant-1',
    client_id: 'client-1',
    user_id: 'user-1',
    scope: 'openid profile',
    created_at: T,
    expires_at: T + 600,
    consumed_at: T + 1,
    revoked_at: T + 2,
    data: { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', redirect_uri: 'https://a.example/cb', n: 3 },
  };
}

function artifact(
  kind: ArtifactKind,
  id: string,
  fields: Partial<Omit<ArtifactRecord, 'kind' | 'id'>> = {},
): ArtifactRecord {
  return { kind, id, client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600, ...fields };
}

function fullKey(kid = 'key-full'): KeyRecord {
  return {
    kid,
    alg: 'ES256',
    public_jwk: { kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', kid, alg: 'ES256', use: 'sig' },
    private_jwk: 'enc:v1:aXY.Y2lwaGVy.dGFn',
    created_at: T,
    activates_at: T + 3600,
    deactivated_at: T + 7200,
    expires_at: T + 10_800,
  };
}

function minimalKey(kid = 'key-min', createdAt = T): KeyRecord {
  return {
    kid,
    alg: 'RS256',
    public_jwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB', kid },
    private_jwk: '{"kty":"RSA","d":"secret"}',
    created_at: createdAt,
    activates_at: createdAt,
  };
}

function byString<T>(field: (value: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = field(a);
    const y = field(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

function consumed(result: ConsumeResult): ArtifactRecord {
  assert.equal(result.status, 'consumed');
  assert.ok(result.status === 'consumed');
  return result.record;
}

/**
 * Register the conformance tests of the {@link Storage} contract for one backend.
 * @param name shown in the test names
 * @param factory a fresh (empty) storage for each test
 */
export function runStorageConformance(
  name: string,
  factory: () => Promise<Storage> | Storage,
  options: StorageConformanceOptions = {},
): void {
  const test = (title: string, fn: (storage: Storage) => Promise<void>): void => {
    it(title, async () => {
      const storage = await factory();
      try {
        await fn(storage);
      } finally {
        try {
          await options.cleanup?.(storage);
        } finally {
          await storage.close();
        }
      }
    });
  };

  describe(`storage conformance: ${name}`, () => {
    describe('clients', () => {
      test('round-trips a client with every optional field set', async (s) => {
        await s.upsertClient(fullClient());
        assert.deepStrictEqual(await s.getClient('client-full'), fullClient());
      });

      test('round-trips a client with no optional field (absent, not null)', async (s) => {
        await s.upsertClient(minimalClient());
        const got = await s.getClient('client-min');
        assert.deepStrictEqual(got, minimalClient());
        assert.equal(got?.client_secret_hash, undefined);
        assert.equal(got?.rotate_refresh_tokens, undefined);
      });

      test('optional fields passed as undefined come back absent', async (s) => {
        await s.upsertClient({
          ...minimalClient(),
          client_secret_hash: undefined,
          scope: undefined,
          jwks: undefined,
          rotate_refresh_tokens: undefined,
          extra: undefined,
        });
        assert.deepStrictEqual(await s.getClient('client-min'), minimalClient());
      });

      test('rotate_refresh_tokens true round-trips as true', async (s) => {
        await s.upsertClient({ ...minimalClient(), rotate_refresh_tokens: true });
        assert.equal((await s.getClient('client-min'))?.rotate_refresh_tokens, true);
      });

      test('getClient of an unknown id is undefined', async (s) => {
        assert.equal(await s.getClient('nope'), undefined);
      });

      test('upsertClient replaces the whole record', async (s) => {
        await s.upsertClient(fullClient('c'));
        const replacement = { ...minimalClient('c'), client_name: 'Renamed', updated_at: T + 99 };
        await s.upsertClient(replacement);
        assert.deepStrictEqual(await s.getClient('c'), replacement);
        assert.deepStrictEqual(await s.listClients(), [replacement]);
      });

      test('deleteClient returns true, then false', async (s) => {
        await s.upsertClient(minimalClient('c'));
        assert.equal(await s.deleteClient('c'), true);
        assert.equal(await s.getClient('c'), undefined);
        assert.equal(await s.deleteClient('c'), false);
        assert.equal(await s.deleteClient('never'), false);
      });

      test('listClients returns every client', async (s) => {
        assert.deepStrictEqual(await s.listClients(), []);
        const clients = [fullClient('b'), minimalClient('a'), minimalClient('c')];
        for (const c of clients) await s.upsertClient(c);
        const listed = (await s.listClients()).sort(byString((c) => c.client_id));
        assert.deepStrictEqual(listed, [...clients].sort(byString((c) => c.client_id)));
      });

      test('stored clients are copies: mutating input or output does not change storage', async (s) => {
        const input = fullClient('c');
        await s.upsertClient(input);
        input.redirect_uris.push('https://evil.example/cb');
        input.client_name = 'mutated';
        (input.extra as { nested: { n: number } }).nested.n = 42;
        const out = await s.getClient('c');
        assert.ok(out);
        // A backend may hand out a private copy, or a deeply frozen shared record (a cache): then
        // the mutation throws instead. Either way, what the next reader gets is unchanged.
        const frozen = Object.isFrozen(out);
        if (frozen) {
          assert.ok(Object.isFrozen(out.redirect_uris) && Object.isFrozen(out.jwks?.keys), 'a frozen record is frozen all the way down');
          assert.throws(() => out.redirect_uris.push('https://evil.example/cb'), TypeError);
          assert.throws(() => out.jwks?.keys.push({ kty: 'oct' }), TypeError);
        } else {
          out.redirect_uris.push('https://evil.example/cb');
          out.jwks?.keys.push({ kty: 'oct' });
        }
        assert.deepStrictEqual(await s.getClient('c'), fullClient('c'));
      });
    });

    describe('users', () => {
      test('round-trips a user with every optional field set', async (s) => {
        await s.upsertUser(fullUser());
        assert.deepStrictEqual(await s.getUser('user-full'), fullUser());
      });

      test('round-trips a user with no optional field (absent, not null)', async (s) => {
        await s.upsertUser(minimalUser());
        assert.deepStrictEqual(await s.getUser('user-min'), minimalUser());
        await s.upsertUser({ ...minimalUser('u2', 'carol'), password_hash: undefined });
        assert.deepStrictEqual(await s.getUser('u2'), minimalUser('u2', 'carol'));
      });

      test('getUserByUsername finds the user by exact username', async (s) => {
        await s.upsertUser(fullUser('u1', 'alice'));
        await s.upsertUser(minimalUser('u2', 'bob'));
        assert.deepStrictEqual(await s.getUserByUsername('alice'), fullUser('u1', 'alice'));
        assert.deepStrictEqual(await s.getUserByUsername('bob'), minimalUser('u2', 'bob'));
        assert.equal(await s.getUserByUsername('carol'), undefined);
        assert.equal(await s.getUserByUsername('u1'), undefined);
        assert.equal(await s.getUser('nope'), undefined);
      });

      test('upsertUser replaces the record; a renamed user is found only by the new name', async (s) => {
        await s.upsertUser(fullUser('u1', 'alice'));
        const renamed = { ...minimalUser('u1', 'alicia'), claims: { name: 'Alicia' }, updated_at: T + 50 };
        await s.upsertUser(renamed);
        assert.deepStrictEqual(await s.getUser('u1'), renamed);
        assert.deepStrictEqual(await s.getUserByUsername('alicia'), renamed);
        assert.equal(await s.getUserByUsername('alice'), undefined);
        assert.deepStrictEqual(await s.listUsers(), [renamed]);
      });

      test('upsertUser rejects a username that belongs to another user', async (s) => {
        await s.upsertUser(minimalUser('u1', 'alice'));
        await assert.rejects(s.upsertUser(minimalUser('u2', 'alice')));
        assert.equal(await s.getUser('u2'), undefined);
        assert.deepStrictEqual(await s.getUserByUsername('alice'), minimalUser('u1', 'alice'));
      });

      test('deleteUser returns true, then false; the username is free again', async (s) => {
        await s.upsertUser(minimalUser('u1', 'alice'));
        assert.equal(await s.deleteUser('u1'), true);
        assert.equal(await s.getUser('u1'), undefined);
        assert.equal(await s.getUserByUsername('alice'), undefined);
        assert.equal(await s.deleteUser('u1'), false);
        await s.upsertUser(minimalUser('u2', 'alice'));
        assert.deepStrictEqual(await s.getUserByUsername('alice'), minimalUser('u2', 'alice'));
      });

      test('listUsers returns every user', async (s) => {
        assert.deepStrictEqual(await s.listUsers(), []);
        const users = [fullUser('u2', 'alice'), minimalUser('u1', 'bob'), minimalUser('u3', 'carol')];
        for (const u of users) await s.upsertUser(u);
        const listed = (await s.listUsers()).sort(byString((u) => u.id));
        assert.deepStrictEqual(listed, [...users].sort(byString((u) => u.id)));
      });

      test('stored users are copies', async (s) => {
        const input = fullUser('u1', 'alice');
        await s.upsertUser(input);
        input.claims.email = 'mallory@example.com';
        const out = await s.getUser('u1');
        assert.ok(out);
        // A private copy, or a deeply frozen shared record (then the change throws); see the clients case.
        if (Object.isFrozen(out)) {
          assert.throws(() => {
            out.claims.email = 'mallory@example.com';
          }, TypeError);
        } else {
          out.claims.email = 'mallory@example.com';
        }
        assert.deepStrictEqual(await s.getUser('u1'), fullUser('u1', 'alice'));
      });
    });

    describe('grants', () => {
      test('round-trips a grant with every optional field set', async (s) => {
        await s.createGrant(fullGrant());
        assert.deepStrictEqual(await s.getGrant('grant-full'), fullGrant());
      });

      test('round-trips a grant with no optional field (absent, not null)', async (s) => {
        await s.createGrant(minimalGrant());
        assert.deepStrictEqual(await s.getGrant('grant-min'), minimalGrant());
        await s.createGrant({ ...minimalGrant('g2'), user_id: undefined, data: undefined, auth_time: undefined });
        assert.deepStrictEqual(await s.getGrant('g2'), minimalGrant('g2'));
      });

      test('getGrant of an unknown id is undefined', async (s) => {
        assert.equal(await s.getGrant('nope'), undefined);
      });

      test('getGrant returns expired and revoked grants', async (s) => {
        await s.createGrant(minimalGrant('expired', T));
        await s.createGrant(minimalGrant('revoked', FUTURE));
        assert.equal(await s.revokeGrant('revoked', T + 1), true);
        assert.deepStrictEqual(await s.getGrant('expired'), minimalGrant('expired', T));
        assert.deepStrictEqual(await s.getGrant('revoked'), { ...minimalGrant('revoked', FUTURE), revoked_at: T + 1 });
      });
    });

    describe('revokeGrant', () => {
      test('revokes the grant and every artifact of it, of every kind, and nothing else', async (s) => {
        await s.createGrant(minimalGrant('g1'));
        await s.createGrant(minimalGrant('g2'));
        for (const kind of KINDS) {
          await s.saveArtifact(artifact(kind, `g1-${kind}`, { grant_id: 'g1' }));
          await s.saveArtifact(artifact(kind, `g2-${kind}`, { grant_id: 'g2' }));
        }
        await s.saveArtifact(artifact('access_token', 'no-grant'));
        await s.saveArtifact(artifact('refresh_token', 'g1-used', { grant_id: 'g1', consumed_at: T + 3 }));

        assert.equal(await s.revokeGrant('g1', T + 5), true);

        assert.deepStrictEqual(await s.getGrant('g1'), { ...minimalGrant('g1'), revoked_at: T + 5 });
        assert.deepStrictEqual(await s.getGrant('g2'), minimalGrant('g2'));
        for (const kind of KINDS) {
          assert.deepStrictEqual(
            await s.findArtifact(kind, `g1-${kind}`, T + 6),
            artifact(kind, `g1-${kind}`, { grant_id: 'g1', revoked_at: T + 5 }),
          );
          assert.deepStrictEqual(
            await s.findArtifact(kind, `g2-${kind}`, T + 6),
            artifact(kind, `g2-${kind}`, { grant_id: 'g2' }),
          );
        }
        assert.deepStrictEqual(await s.findArtifact('access_token', 'no-grant', T + 6), artifact('access_token', 'no-grant'));
        assert.deepStrictEqual(
          await s.findArtifact('refresh_token', 'g1-used', T + 6),
          artifact('refresh_token', 'g1-used', { grant_id: 'g1', consumed_at: T + 3, revoked_at: T + 5 }),
        );
      });

      test('a second revocation returns false and keeps the first revocation time', async (s) => {
        await s.createGrant(minimalGrant('g1'));
        await s.saveArtifact(artifact('refresh_token', 'rt', { grant_id: 'g1' }));
        assert.equal(await s.revokeGrant('g1', T + 5), true);
        assert.equal(await s.revokeGrant('g1', T + 9), false);
        assert.equal((await s.getGrant('g1'))?.revoked_at, T + 5);
        assert.equal((await s.findArtifact('refresh_token', 'rt', T + 10))?.revoked_at, T + 5);
      });

      test('an artifact revoked before keeps its own revocation time', async (s) => {
        await s.createGrant(minimalGrant('g1'));
        await s.saveArtifact(artifact('access_token', 'at', { grant_id: 'g1' }));
        assert.equal(await s.revokeArtifact('access_token', 'at', T + 2), true);
        assert.equal(await s.revokeGrant('g1', T + 5), true);
        assert.equal((await s.findArtifact('access_token', 'at', T + 6))?.revoked_at, T + 2);
      });

      test('an unknown grant returns false', async (s) => {
        assert.equal(await s.revokeGrant('nope', T), false);
      });

      test('a grant created already revoked cannot be revoked again', async (s) => {
        await s.createGrant(fullGrant('g1'));
        assert.equal(await s.revokeGrant('g1', T + 100), false);
        assert.equal((await s.getGrant('g1'))?.revoked_at, T + 10);
      });
    });

    describe('artifacts', () => {
      for (const kind of KINDS) {
        test(`round-trips a ${kind} with every optional field set`, async (s) => {
          await s.saveArtifact(fullArtifact(kind, 'a1'));
          assert.deepStrictEqual(await s.findArtifact(kind, 'a1', T), fullArtifact(kind, 'a1'));
        });

        test(`round-trips a ${kind} with no optional field (absent, not null)`, async (s) => {
          await s.saveArtifact(artifact(kind, 'a1'));
          assert.deepStrictEqual(await s.findArtifact(kind, 'a1', T), artifact(kind, 'a1'));
          await s.saveArtifact({
            ...artifact(kind, 'a2'),
            grant_id: undefined,
            user_id: undefined,
            consumed_at: undefined,
            revoked_at: undefined,
            data: undefined,
          });
          assert.deepStrictEqual(await s.findArtifact(kind, 'a2', T), artifact(kind, 'a2'));
        });
      }

      test('the kind is part of the key: one id under two kinds is two artifacts', async (s) => {
        await s.saveArtifact(artifact('authorization_code', 'same', { scope: 'a' }));
        await s.saveArtifact(artifact('refresh_token', 'same', { scope: 'b' }));
        assert.equal((await s.findArtifact('authorization_code', 'same', T))?.scope, 'a');
        assert.equal((await s.findArtifact('refresh_token', 'same', T))?.scope, 'b');
        assert.equal(await s.findArtifact('access_token', 'same', T), undefined);
        consumed(await s.consumeArtifact('authorization_code', 'same', T));
        assert.equal((await s.findArtifact('refresh_token', 'same', T))?.consumed_at, undefined);
        assert.deepStrictEqual(await s.consumeArtifact('device_code', 'same', T), { status: 'not_found' });
      });

      test('findArtifact hides unknown and expired artifacts (expires_at <= now)', async (s) => {
        await s.saveArtifact(artifact('access_token', 'a1', { expires_at: T + 100 }));
        assert.equal(await s.findArtifact('access_token', 'unknown', T), undefined);
        assert.deepStrictEqual(await s.findArtifact('access_token', 'a1', T + 99), artifact('access_token', 'a1', { expires_at: T + 100 }));
        assert.equal(await s.findArtifact('access_token', 'a1', T + 100), undefined);
        assert.equal(await s.findArtifact('access_token', 'a1', T + 1000), undefined);
      });

      test('uses the caller\'s clock, never its own', async (s) => {
        // Expired long ago by the wall clock, live for the caller:
        await s.saveArtifact(artifact('authorization_code', 'past', { expires_at: T + 10 }));
        assert.equal((await s.findArtifact('authorization_code', 'past', T + 9))?.id, 'past');
        // Live for centuries by the wall clock, expired for the caller:
        await s.saveArtifact(artifact('authorization_code', 'future', { created_at: FUTURE, expires_at: FUTURE + 10 }));
        assert.equal(await s.findArtifact('authorization_code', 'future', FUTURE + 10), undefined);
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'future', FUTURE + 10), { status: 'not_found' });
        assert.equal((await s.consumeArtifact('authorization_code', 'past', T + 9)).status, 'consumed');
      });

      test('findArtifact returns consumed and revoked artifacts', async (s) => {
        await s.saveArtifact(artifact('authorization_code', 'c1'));
        await s.saveArtifact(artifact('refresh_token', 'r1'));
        consumed(await s.consumeArtifact('authorization_code', 'c1', T + 1));
        assert.equal(await s.revokeArtifact('refresh_token', 'r1', T + 2), true);
        assert.deepStrictEqual(await s.findArtifact('authorization_code', 'c1', T + 3), artifact('authorization_code', 'c1', { consumed_at: T + 1 }));
        assert.deepStrictEqual(await s.findArtifact('refresh_token', 'r1', T + 3), artifact('refresh_token', 'r1', { revoked_at: T + 2 }));
      });

      test('stored artifacts are copies', async (s) => {
        const input = fullArtifact('authorization_code', 'c1');
        await s.saveArtifact(input);
        (input.data as Record<string, unknown>).redirect_uri = 'https://evil.example';
        const out = await s.findArtifact('authorization_code', 'c1', T);
        assert.ok(out?.data);
        out.data.n = 999;
        assert.deepStrictEqual(await s.findArtifact('authorization_code', 'c1', T), fullArtifact('authorization_code', 'c1'));
      });
    });

    describe('consumeArtifact', () => {
      test('the first call consumes, the second sees already_consumed with the record', async (s) => {
        const code = artifact('authorization_code', 'c1', { grant_id: 'g1', user_id: 'u1', data: { code_challenge: 'x' } });
        await s.saveArtifact(code);
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'c1', T + 1), {
          status: 'consumed',
          record: { ...code, consumed_at: T + 1 },
        });
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'c1', T + 2), {
          status: 'already_consumed',
          record: { ...code, consumed_at: T + 1 },
        });
        assert.deepStrictEqual(await s.findArtifact('authorization_code', 'c1', T + 3), { ...code, consumed_at: T + 1 });
      });

      test('an unknown artifact is not_found', async (s) => {
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'unknown', T), { status: 'not_found' });
      });

      test('an expired artifact is not_found (expires_at <= now), consumed or not', async (s) => {
        await s.saveArtifact(artifact('authorization_code', 'c1', { expires_at: T + 10 }));
        await s.saveArtifact(artifact('refresh_token', 'r1', { expires_at: T + 10 }));
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'c1', T + 10), { status: 'not_found' });
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'c1', T + 11), { status: 'not_found' });
        consumed(await s.consumeArtifact('refresh_token', 'r1', T + 9));
        assert.deepStrictEqual(await s.consumeArtifact('refresh_token', 'r1', T + 10), { status: 'not_found' });
        // The failed attempts did not mark the code consumed.
        assert.deepStrictEqual(
          await s.findArtifact('authorization_code', 'c1', T + 9),
          artifact('authorization_code', 'c1', { expires_at: T + 10 }),
        );
      });

      test('a revoked, unconsumed artifact is consumed as usual (the caller checks revoked_at)', async (s) => {
        await s.saveArtifact(artifact('refresh_token', 'r1', { grant_id: 'g1' }));
        assert.equal(await s.revokeArtifact('refresh_token', 'r1', T + 1), true);
        assert.deepStrictEqual(await s.consumeArtifact('refresh_token', 'r1', T + 2), {
          status: 'consumed',
          record: artifact('refresh_token', 'r1', { grant_id: 'g1', revoked_at: T + 1, consumed_at: T + 2 }),
        });
        assert.deepStrictEqual(await s.consumeArtifact('refresh_token', 'r1', T + 3), {
          status: 'already_consumed',
          record: artifact('refresh_token', 'r1', { grant_id: 'g1', revoked_at: T + 1, consumed_at: T + 2 }),
        });
      });

      test('a record saved with consumed_at is already consumed', async (s) => {
        await s.saveArtifact(artifact('device_code', 'd1', { consumed_at: T }));
        assert.deepStrictEqual(await s.consumeArtifact('device_code', 'd1', T + 1), {
          status: 'already_consumed',
          record: artifact('device_code', 'd1', { consumed_at: T }),
        });
      });

      test('of 50 concurrent consumes of one artifact exactly one is consumed', async (s) => {
        await s.saveArtifact(artifact('authorization_code', 'race', { expires_at: T + 1000 }));
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => s.consumeArtifact('authorization_code', 'race', T + i)),
        );
        const winners = results.filter((r) => r.status === 'consumed');
        const losers = results.filter((r) => r.status === 'already_consumed');
        assert.equal(winners.length, 1);
        assert.equal(losers.length, 49);
        const winner = winners[0];
        assert.ok(winner?.status === 'consumed');
        const consumedAt = winner.record.consumed_at;
        assert.equal(typeof consumedAt, 'number');
        assert.equal(consumedAt, T + results.indexOf(winner));
        for (const loser of losers) {
          assert.ok(loser.status === 'already_consumed');
          assert.equal(loser.record.consumed_at, consumedAt);
        }
        assert.equal((await s.findArtifact('authorization_code', 'race', T + 60))?.consumed_at, consumedAt);
      });
    });

    describe('revokeArtifact and updateArtifactData', () => {
      test('revokeArtifact marks one artifact revoked and keeps the first time', async (s) => {
        await s.saveArtifact(artifact('access_token', 'a1', { grant_id: 'g1' }));
        await s.saveArtifact(artifact('access_token', 'a2', { grant_id: 'g1' }));
        assert.equal(await s.revokeArtifact('access_token', 'a1', T + 3), true);
        assert.deepStrictEqual(await s.findArtifact('access_token', 'a1', T + 4), artifact('access_token', 'a1', { grant_id: 'g1', revoked_at: T + 3 }));
        assert.deepStrictEqual(await s.findArtifact('access_token', 'a2', T + 4), artifact('access_token', 'a2', { grant_id: 'g1' }));
        assert.equal(await s.revokeArtifact('access_token', 'a1', T + 8), true);
        assert.equal((await s.findArtifact('access_token', 'a1', T + 9))?.revoked_at, T + 3);
      });

      test('revokeArtifact of an unknown artifact (or the wrong kind) returns false', async (s) => {
        await s.saveArtifact(artifact('access_token', 'a1'));
        assert.equal(await s.revokeArtifact('access_token', 'unknown', T), false);
        assert.equal(await s.revokeArtifact('refresh_token', 'a1', T), false);
        assert.equal((await s.findArtifact('access_token', 'a1', T))?.revoked_at, undefined);
      });

      test('updateArtifactData replaces data and nothing else', async (s) => {
        const device = artifact('device_code', 'd1', { user_id: 'u1', data: { user_code: 'ABCD-EFGH', status: 'pending', interval: 5 } });
        await s.saveArtifact(device);
        assert.equal(await s.updateArtifactData('device_code', 'd1', { user_code: 'ABCD-EFGH', status: 'approved' }), true);
        assert.deepStrictEqual(await s.findArtifact('device_code', 'd1', T), {
          ...device,
          data: { user_code: 'ABCD-EFGH', status: 'approved' },
        });
        await s.saveArtifact(artifact('device_code', 'd2'));
        assert.equal(await s.updateArtifactData('device_code', 'd2', { last_poll: T }), true);
        assert.deepStrictEqual(await s.findArtifact('device_code', 'd2', T), artifact('device_code', 'd2', { data: { last_poll: T } }));
      });

      test('updateArtifactData of an unknown artifact (or the wrong kind) returns false', async (s) => {
        await s.saveArtifact(artifact('device_code', 'd1', { data: { a: 1 } }));
        assert.equal(await s.updateArtifactData('device_code', 'unknown', { a: 2 }), false);
        assert.equal(await s.updateArtifactData('authorization_code', 'd1', { a: 2 }), false);
        assert.deepStrictEqual((await s.findArtifact('device_code', 'd1', T))?.data, { a: 1 });
      });

      test('updateArtifactData stores a copy of data', async (s) => {
        await s.saveArtifact(artifact('device_code', 'd1'));
        const data = { status: 'pending', list: [1] };
        await s.updateArtifactData('device_code', 'd1', data);
        data.list.push(2);
        data.status = 'mutated';
        assert.deepStrictEqual((await s.findArtifact('device_code', 'd1', T))?.data, { status: 'pending', list: [1] });
      });
    });

    describe('replay records', () => {
      test('recordOnce is true the first time, false while recorded', async (s) => {
        assert.equal(await s.recordOnce('jti-1', T + 60, T), true);
        assert.equal(await s.recordOnce('jti-1', T + 60, T), false);
        assert.equal(await s.recordOnce('jti-1', T + 120, T + 59), false);
        assert.equal(await s.recordOnce('jti-2', T + 60, T), true);
      });

      test('after expiry (expires_at <= now) recordOnce is true again, with the new expiry', async (s) => {
        assert.equal(await s.recordOnce('jti', T + 60, T), true);
        assert.equal(await s.recordOnce('jti', T + 200, T + 60), true);
        assert.equal(await s.recordOnce('jti', T + 300, T + 100), false);
        assert.equal(await s.hasRecord('jti', T + 199), true);
        assert.equal(await s.hasRecord('jti', T + 200), false);
      });

      test('hasRecord is true while recorded and not expired', async (s) => {
        assert.equal(await s.hasRecord('jti', T), false);
        await s.recordOnce('jti', T + 60, T);
        assert.equal(await s.hasRecord('jti', T), true);
        assert.equal(await s.hasRecord('jti', T + 59), true);
        assert.equal(await s.hasRecord('jti', T + 60), false);
        assert.equal(await s.hasRecord('other', T), false);
      });

      test('of 50 concurrent recordOnce calls for one key exactly one is true', async (s) => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => s.recordOnce('race', T + 600, T + i)),
        );
        assert.equal(results.filter((r) => r === true).length, 1);
        assert.equal(results.filter((r) => r === false).length, 49);
        assert.equal(await s.hasRecord('race', T + 599), true);
      });
    });

    describe('rate limits', () => {
      test('counts hits in a fixed window and resets in the next one', async (s) => {
        // now = T = 1_000_000; window 60 s starts at 999_960, ends at 1_000_020.
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T), { count: 1, reset_at: T + 20 });
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T + 1), { count: 2, reset_at: T + 20 });
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T + 19), { count: 3, reset_at: T + 20 });
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T + 20), { count: 1, reset_at: T + 80 });
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T + 21), { count: 2, reset_at: T + 80 });
        assert.deepStrictEqual(await s.hitRateLimit('ip:1', 60, T + 500), { count: 1, reset_at: T + 560 });
      });

      test('keys are counted separately', async (s) => {
        assert.deepStrictEqual(await s.hitRateLimit('a', 10, T), { count: 1, reset_at: T + 10 });
        assert.deepStrictEqual(await s.hitRateLimit('a', 10, T), { count: 2, reset_at: T + 10 });
        assert.deepStrictEqual(await s.hitRateLimit('b', 10, T + 3), { count: 1, reset_at: T + 10 });
        // 1_000_000 % 7 === 1: the 7 s window starts at 999_999.
        assert.deepStrictEqual(await s.hitRateLimit('c', 7, T), { count: 1, reset_at: T + 6 });
      });

      test('50 concurrent hits get the counts 1..50', async (s) => {
        const results = await Promise.all(Array.from({ length: 50 }, () => s.hitRateLimit('race', 60, T)));
        const counts = results.map((r) => r.count).sort((a, b) => a - b);
        assert.deepStrictEqual(counts, Array.from({ length: 50 }, (_, i) => i + 1));
        for (const r of results) assert.equal(r.reset_at, T + 20);
      });

      test('resetRateLimit starts the key over', async (s) => {
        await s.hitRateLimit('k', 60, T);
        await s.hitRateLimit('k', 60, T);
        await s.hitRateLimit('other', 60, T);
        await s.resetRateLimit('k');
        assert.deepStrictEqual(await s.hitRateLimit('k', 60, T + 1), { count: 1, reset_at: T + 20 });
        assert.deepStrictEqual(await s.hitRateLimit('other', 60, T + 1), { count: 2, reset_at: T + 20 });
        await s.resetRateLimit('never-hit');
      });
    });

    describe('signing keys', () => {
      test('saveKey and listKeys round-trip keys with and without optional fields', async (s) => {
        assert.deepStrictEqual(await s.listKeys(), []);
        await s.saveKey(fullKey('k1'));
        await s.saveKey(minimalKey('k2', T + 1));
        await s.saveKey({ ...minimalKey('k3', T + 2), deactivated_at: undefined, expires_at: undefined });
        const keys = (await s.listKeys()).sort(byString((k) => k.kid));
        assert.deepStrictEqual(keys, [fullKey('k1'), minimalKey('k2', T + 1), minimalKey('k3', T + 2)]);
      });

      test('updateKey changes the given fields only', async (s) => {
        await s.saveKey(minimalKey('k1'));
        await s.saveKey(minimalKey('k2'));
        assert.equal(await s.updateKey('k1', { deactivated_at: T + 100 }), true);
        assert.deepStrictEqual(
          (await s.listKeys()).sort(byString((k) => k.kid)),
          [{ ...minimalKey('k1'), deactivated_at: T + 100 }, minimalKey('k2')],
        );
        assert.equal(await s.updateKey('k1', { expires_at: T + 200, activates_at: T + 50 }), true);
        assert.deepStrictEqual(
          (await s.listKeys()).find((k) => k.kid === 'k1'),
          { ...minimalKey('k1'), activates_at: T + 50, deactivated_at: T + 100, expires_at: T + 200 },
        );
      });

      test('updateKey of an unknown kid returns false', async (s) => {
        assert.equal(await s.updateKey('nope', { deactivated_at: T }), false);
        assert.deepStrictEqual(await s.listKeys(), []);
      });

      test('deleteKey returns true, then false', async (s) => {
        await s.saveKey(fullKey('k1'));
        await s.saveKey(minimalKey('k2'));
        assert.equal(await s.deleteKey('k1'), true);
        assert.deepStrictEqual(await s.listKeys(), [minimalKey('k2')]);
        assert.equal(await s.deleteKey('k1'), false);
        assert.equal(await s.deleteKey('never'), false);
      });
    });

    describe('sweepExpired', () => {
      /** 30 expired rows each of artifacts, replay records and rate-limit windows; 1 expired grant and key; live rows of each. */
      async function seed(s: Storage, expiredPerKind: number): Promise<void> {
        for (let i = 0; i < expiredPerKind; i++) {
          const kind = KINDS[i % KINDS.length] ?? 'access_token';
          await s.saveArtifact(artifact(kind, `expired-${i}`, { expires_at: T - i })); // i = 0: expires exactly now
          assert.equal(await s.recordOnce(`expired-${i}`, T - i, T - 100), true);
          await s.hitRateLimit(`expired-${i}`, 60, T - 60 - i);
        }
        await s.saveArtifact(artifact('refresh_token', 'live', { expires_at: T + 1 }));
        await s.saveArtifact(artifact('authorization_code', 'live-consumed', { expires_at: T + 1, consumed_at: T - 5 }));
        assert.equal(await s.recordOnce('live', T + 1, T - 100), true);
        await s.hitRateLimit('live', 60, T);
        await s.createGrant(minimalGrant('expired', T));
        await s.createGrant(minimalGrant('live', T + 1));
        await s.createGrant({ ...minimalGrant('live-revoked', T + 1), revoked_at: T - 1 });
        await s.saveKey({ ...minimalKey('expired'), expires_at: T });
        await s.saveKey({ ...minimalKey('live', T + 1), expires_at: T + 1 });
        await s.saveKey(minimalKey('forever', T + 2));
      }

      async function assertLiveKept(s: Storage): Promise<void> {
        assert.equal((await s.findArtifact('refresh_token', 'live', T))?.id, 'live');
        assert.equal((await s.findArtifact('authorization_code', 'live-consumed', T))?.consumed_at, T - 5);
        assert.equal(await s.hasRecord('live', T), true);
        assert.deepStrictEqual(await s.hitRateLimit('live', 60, T), { count: 2, reset_at: T + 20 });
        assert.deepStrictEqual(await s.getGrant('live'), minimalGrant('live', T + 1));
        assert.deepStrictEqual(await s.getGrant('live-revoked'), { ...minimalGrant('live-revoked', T + 1), revoked_at: T - 1 });
        assert.deepStrictEqual(
          (await s.listKeys()).map((k) => k.kid).sort(),
          ['forever', 'live'],
        );
      }

      test('deletes at most `limit` expired rows of each kind per call and keeps live rows', async (s) => {
        await seed(s, 30);
        // 10 artifacts + 10 replay records + 10 rate limits + 1 grant + 1 key
        assert.equal(await s.sweepExpired(T, 10), 32);
        assert.equal(await s.getGrant('expired'), undefined);
        assert.equal(await s.sweepExpired(T, 10), 30);
        assert.equal(await s.sweepExpired(T, 10), 30);
        assert.equal(await s.sweepExpired(T, 10), 0);
        await assertLiveKept(s);
        // Everything expired is gone for good: the keys are fresh again.
        assert.equal(await s.recordOnce('expired-5', T + 60, T), true);
        assert.deepStrictEqual(await s.hitRateLimit('expired-5', 60, T), { count: 1, reset_at: T + 20 });
        assert.deepStrictEqual(await s.consumeArtifact('authorization_code', 'expired-0', T - 10), { status: 'not_found' });
      });

      test('the default limit sweeps a small backlog in one call', async (s) => {
        await seed(s, 30);
        assert.equal(await s.sweepExpired(T), 92);
        assert.equal(await s.sweepExpired(T), 0);
        await assertLiveKept(s);
      });

      test('a limit of 0 deletes nothing', async (s) => {
        await seed(s, 3);
        assert.equal(await s.sweepExpired(T, 0), 0);
        assert.equal(await s.sweepExpired(T, 100), 11);
      });

      test('nothing expired: nothing deleted', async (s) => {
        assert.equal(await s.sweepExpired(T), 0);
        await seed(s, 0);
        assert.equal(await s.sweepExpired(T - 100), 0);
        assert.equal(await s.sweepExpired(T), 2);
        await assertLiveKept(s);
      });
    });

    describe('lifecycle', () => {
      test('has a name', async (s) => {
        assert.equal(typeof s.name, 'string');
        assert.ok(s.name.length > 0);
      });

      test('ping resolves', async (s) => {
        assert.equal(await s.ping(), undefined);
      });

      test('close is idempotent', async (s) => {
        await s.close();
        await s.close();
      });
    });
  });
}
