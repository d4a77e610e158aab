import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Logger } from '../../src/core/logger.js';
import { Sealer } from '../../src/core/seal.js';
import { KeyManager } from '../../src/keys/key-manager.js';
import type { KeyManagerOptions } from '../../src/keys/key-manager.js';
import { SIGNING_ALGORITHMS } from '../../src/keys/jwt-signer.js';
import type { KeyRecord } from '../../src/storage/contract.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

const T0 = 1_700_000_000;
const MAX_LIFETIME = 3600;

function setup(overrides: Partial<KeyManagerOptions> = {}) {
  const state = { now: T0 };
  const storage = createMemoryStorage();
  const options: KeyManagerOptions = { storage, clock: () => state.now, maxTokenLifetime: MAX_LIFETIME, ...overrides };
  return { state, storage, options, open: (more: Partial<KeyManagerOptions> = {}) => KeyManager.open({ ...options, ...more }) };
}

function recordingLogger(): Logger & { entries: Array<{ level: string; obj: object; msg?: string }> } {
  const entries: Array<{ level: string; obj: object; msg?: string }> = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      entries.push({ level, obj, msg });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** RFC 7638 thumbprint computed independently of jose. */
function thumbprint(jwk: Record<string, unknown>): string {
  const required: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
  const names = required[String(jwk['kty'])];
  assert.ok(names, `unexpected kty ${String(jwk['kty'])}`);
  const canonical = `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(jwk[n])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

describe('KeyManager: opening', () => {
  it('first open generates and persists one ES256 key, active at once', async () => {
    const { storage, open } = setup();
    const km = await open();
    const stored = await storage.listKeys();
    assert.equal(stored.length, 1);
    const [record] = stored as [KeyRecord];
    assert.equal(record.alg, 'ES256');
    assert.equal(record.activates_at, T0);
    assert.equal(record.created_at, T0);
    assert.equal(record.deactivated_at, undefined);
    assert.equal(km.signer().kid, record.kid);
    assert.equal(km.signer().alg, 'ES256');
    assert.deepEqual(km.algorithms(), ['ES256']);
    assert.equal(km.algorithm, 'ES256');
    const jwk = JSON.parse(record.private_jwk) as Record<string, unknown>;
    assert.equal(typeof jwk['d'], 'string');
  });

  it('restart keeps keys: a second open on the same storage loads the key, no new one', async () => {
    const { storage, open } = setup();
    const first = await open();
    const second = await open();
    assert.equal(second.signer().kid, first.signer().kid);
    assert.equal((await storage.listKeys()).length, 1);
    // The key really is the same: a token from one verifies with the other.
    const token = first.sign({ sub: 'a' }, 'at+jwt');
    assert.deepEqual(second.verify(token, 'at+jwt'), { sub: 'a' });
  });

  for (const alg of SIGNING_ALGORITHMS) {
    it(`${alg}: kid is the RFC 7638 thumbprint; JWKS has public members only and verifies with jose`, async () => {
      const { storage, open } = setup({ algorithm: alg });
      const km = await open();
      const [record] = (await storage.listKeys()) as [KeyRecord];
      assert.equal(record.alg, alg);
      assert.equal(record.kid, thumbprint(record.public_jwk));
      const jwks = km.jwks();
      assert.equal(jwks.keys.length, 1);
      const [jwk] = jwks.keys as [Record<string, unknown>];
      for (const m of PRIVATE_MEMBERS) assert.equal(m in jwk, false, `${alg} JWKS leaks ${m}`);
      assert.equal(jwk['kid'], record.kid);
      assert.equal(jwk['alg'], alg);
      assert.equal(jwk['use'], 'sig');
      const expectedKty = alg === 'ES256' ? 'EC' : alg === 'EdDSA' ? 'OKP' : 'RSA';
      assert.equal(jwk['kty'], expectedKty);
      for (const m of PRIVATE_MEMBERS) assert.equal(km.jwksJson().includes(`"${m}"`), false);
      assert.deepEqual(JSON.parse(km.jwksJson()), jwks);
      for (const m of PRIVATE_MEMBERS) assert.equal(m in record.public_jwk, false);

      const token = km.sign({ sub: 'u', aud: 'api' }, 'at+jwt');
      const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(km.jwks()), { typ: 'at+jwt', audience: 'api' });
      assert.equal(payload.sub, 'u');
      assert.equal(protectedHeader.kid, record.kid);
      assert.equal(protectedHeader.alg, alg);
    });
  }

  it('jwks(), jwksJson() and signer() are cached between key boundaries', async () => {
    const { open, state } = setup();
    const km = await open();
    assert.equal(km.jwks(), km.jwks());
    assert.equal(km.jwksJson(), km.jwksJson());
    assert.equal(km.signer(), km.signer());
    state.now += 10;
    assert.equal(km.signer(), km.signer());
    assert.throws(() => {
      (km.jwks().keys as unknown[]).push({});
    }, TypeError);
  });

  it('two instances starting at once on an empty database: both keys published, same signer everywhere', async () => {
    const { storage, open } = setup();
    const [a, b] = await Promise.all([open(), open()]);
    const stored = await storage.listKeys();
    assert.equal(stored.length, 2);
    await a.reload();
    await b.reload();
    const expected = stored.map((k) => k.kid).sort().at(-1); // same activates_at: greatest kid wins
    assert.equal(a.signer().kid, expected);
    assert.equal(b.signer().kid, expected);
    assert.equal(a.jwks().keys.length, 2);
    assert.equal(b.jwksJson(), a.jwksJson());
    // A third instance opening later generates nothing.
    const c = await open();
    assert.equal(c.signer().kid, expected);
    assert.equal((await storage.listKeys()).length, 2);
  });

  it('validates its options', async () => {
    const { open } = setup();
    await assert.rejects(open({ maxTokenLifetime: 0 }), /maxTokenLifetime/);
    await assert.rejects(open({ rotationDelay: -1 }), /rotationDelay/);
    await assert.rejects(open({ algorithm: 'HS256' as 'ES256' }), /Unsupported signing algorithm/);
  });
});

describe('KeyManager: rotation', () => {
  it('publishes the new key before it signs, then retires the old one after maxTokenLifetime', async () => {
    const { state, storage, open } = setup();
    const km = await open();
    const oldKid = km.signer().kid;
    const oldToken = km.sign({ sub: 'before-rotation' }, 'at+jwt');

    const rotated = await km.rotate({ activateIn: 600 });
    assert.notEqual(rotated.kid, oldKid);
    assert.equal(rotated.activates_at, T0 + 600);
    // Right after: both published, the old key still signs.
    assert.deepEqual(km.jwks().keys.map((k) => k.kid).sort(), [oldKid, rotated.kid].sort());
    assert.equal(km.signer().kid, oldKid);
    assert.deepEqual(
      km.list().map((k) => [k.kid, k.status, k.signing]),
      [
        [rotated.kid, 'pending', false],
        [oldKid, 'active', true],
      ],
    );
    const old = (await storage.listKeys()).find((k) => k.kid === oldKid);
    assert.equal(old?.deactivated_at, T0 + 600);
    assert.equal(old?.expires_at, T0 + 600 + MAX_LIFETIME);

    state.now = T0 + 599;
    assert.equal(km.signer().kid, oldKid);

    // At activation: the new key signs, the old one is still published.
    state.now = T0 + 600;
    assert.equal(km.signer().kid, rotated.kid);
    assert.equal(km.jwks().keys.length, 2);
    assert.deepEqual(km.verify(oldToken, 'at+jwt'), { sub: 'before-rotation' });
    const newToken = km.sign({ sub: 'after-rotation' }, 'at+jwt');
    assert.equal(JSON.parse(Buffer.from(newToken.split('.')[0] ?? '', 'base64url').toString()).kid, rotated.kid);
    assert.deepEqual(
      km.list().map((k) => [k.kid, k.status, k.signing]),
      [
        [rotated.kid, 'active', true],
        [oldKid, 'retiring', false],
      ],
    );

    state.now = T0 + 600 + MAX_LIFETIME - 1;
    assert.equal(km.jwks().keys.length, 2);
    assert.ok(km.verify(oldToken));

    // Past maxTokenLifetime: the old key leaves the JWKS and no longer verifies.
    state.now = T0 + 600 + MAX_LIFETIME;
    assert.deepEqual(km.jwks().keys.map((k) => k.kid), [rotated.kid]);
    assert.equal(JSON.parse(km.jwksJson()).keys.length, 1);
    assert.equal(km.verificationKey(oldKid), undefined);
    assert.equal(km.verify(oldToken), undefined);
    assert.ok(km.verify(newToken, 'at+jwt'));
    assert.equal(km.list().find((k) => k.kid === oldKid)?.status, 'expired');
  });

  it('rotate defaults to rotationDelay; activateIn 0 switches at once', async () => {
    const { state, open } = setup({ rotationDelay: 120 });
    const km = await open();
    const k1 = km.signer().kid;
    const r2 = await km.rotate();
    assert.equal(r2.activates_at, T0 + 120);
    assert.equal(km.signer().kid, k1);
    const r3 = await km.rotate({ activateIn: 0 });
    assert.equal(km.signer().kid, r3.kid);
    state.now = T0 + 120;
    // r2 was superseded before it ever signed: r3 keeps signing.
    assert.equal(km.signer().kid, r3.kid);
    const byKid = new Map(km.list().map((k) => [k.kid, k]));
    assert.equal(byKid.get(k1)?.deactivated_at, T0);
    assert.equal(byKid.get(r2.kid)?.deactivated_at, T0);
    assert.equal(byKid.get(r2.kid)?.status, 'retiring');
    assert.equal(km.jwks().keys.length, 3);
    // Moving a deactivation earlier never shortens a publication already promised (k1: T0 + 120 + MAX).
    assert.equal(byKid.get(k1)?.expires_at, T0 + 120 + MAX_LIFETIME);
    assert.equal(byKid.get(r2.kid)?.expires_at, T0 + MAX_LIFETIME);
    state.now = T0 + MAX_LIFETIME;
    assert.deepEqual(km.jwks().keys.map((k) => k.kid).sort(), [r3.kid, k1].sort());
    state.now = T0 + 120 + MAX_LIFETIME;
    assert.deepEqual(km.jwks().keys.map((k) => k.kid), [r3.kid]);
  });

  it('a token signed by the old key verifies through verify() while published; typ is checked', async () => {
    const { state, open } = setup();
    const km = await open();
    const token = km.sign({ sub: 'x' }, 'at+jwt');
    await km.rotate({ activateIn: 0 });
    assert.deepEqual(km.verify(token), { sub: 'x' });
    assert.deepEqual(km.verify(token, 'at+jwt'), { sub: 'x' });
    assert.deepEqual(km.verify(token, 'application/AT+JWT'), { sub: 'x' });
    assert.equal(km.verify(token, 'JWT'), undefined);
    assert.equal(km.verify(`${token}x`), undefined);
    state.now = T0 + MAX_LIFETIME + 1;
    assert.equal(km.verify(token), undefined);
  });

  it('a second instance sees a rotation after reload()', async () => {
    const { state, open } = setup();
    const a = await open();
    const b = await open();
    const rotated = await a.rotate({ activateIn: 600 });
    assert.equal(b.jwks().keys.length, 1);
    await b.reload();
    assert.equal(b.jwks().keys.length, 2);
    const tokenFromA = (() => {
      state.now = T0 + 600;
      return a.sign({ sub: 'from-a' }, 'at+jwt');
    })();
    assert.equal(b.signer().kid, rotated.kid);
    assert.deepEqual(b.verify(tokenFromA, 'at+jwt'), { sub: 'from-a' });
  });

  it('startAutoReload picks up rotations by another instance', async () => {
    const { open } = setup();
    const a = await open();
    const b = await open();
    b.startAutoReload(0.02);
    try {
      await a.rotate({ activateIn: 600 });
      for (let i = 0; i < 50 && b.jwks().keys.length < 2; i++) await sleep(10);
      assert.equal(b.jwks().keys.length, 2);
    } finally {
      b.stopAutoReload();
    }
  });

  it('ensure() adds a signing key for another algorithm, once', async () => {
    const { storage, open } = setup();
    const km = await open();
    const rs = await km.ensure('RS256');
    assert.equal(rs.alg, 'RS256');
    assert.deepEqual(km.algorithms().sort(), ['ES256', 'RS256']);
    assert.equal((await km.ensure('RS256')).kid, rs.kid);
    assert.equal((await storage.listKeys()).length, 2);
    assert.equal(km.signer().alg, 'ES256');
    const idToken = km.sign({ sub: 'x' }, 'JWT', 'RS256');
    assert.deepEqual(km.verify(idToken), { sub: 'x' });
    assert.throws(() => km.signer('EdDSA'), /No active EdDSA signing key/);
    // Rotating one algorithm leaves the other alone.
    await km.rotate({ algorithm: 'RS256', activateIn: 0 });
    assert.notEqual(km.signer('RS256').kid, rs.kid);
    assert.equal(km.list().filter((k) => k.alg === 'ES256' && k.status === 'active').length, 1);
    // Restart: both algorithms come back.
    const again = await open({ algorithm: 'RS256' });
    assert.deepEqual(again.algorithms().sort(), ['ES256', 'RS256']);
    assert.equal((await storage.listKeys()).length, 3);
  });
});

describe('KeyManager: encryption at rest', () => {
  const secret = 'correct horse battery staple';

  it('with a Sealer the stored private key is sealed and does not contain "d"', async () => {
    const { storage, open } = setup();
    const sealer = new Sealer(secret);
    const logger = recordingLogger();
    const km = await open({ sealer, logger });
    const [record] = (await storage.listKeys()) as [KeyRecord];
    assert.ok(record.private_jwk.startsWith('enc:v1:'));
    const clear = JSON.parse(sealer.open(record.private_jwk, `signing_key:${record.kid}`)) as Record<string, unknown>;
    assert.equal(typeof clear['d'], 'string');
    assert.equal(record.private_jwk.includes(clear['d'] as string), false);
    assert.equal(record.private_jwk.includes('"d"'), false);
    assert.equal(logger.entries.filter((e) => e.level === 'warn').length, 0);
    // Reopens with the same secret.
    const again = await open({ sealer: new Sealer(secret) });
    assert.equal(again.signer().kid, km.signer().kid);
  });

  it('opening sealed keys without a sealer (or with the wrong one) throws a clear error', async () => {
    const { storage, open } = setup();
    const km = await open({ sealer: new Sealer(secret) });
    const kid = km.signer().kid;
    await assert.rejects(open(), new RegExp(`signing key ${kid} is encrypted; set the key-encryption secret`));
    await assert.rejects(open({ sealer: new Sealer('another secret of enough length') }), /cannot be decrypted/);
    assert.equal((await storage.listKeys()).length, 1); // nothing generated on the way
  });

  it('without a sealer, keys are stored in clear and a warning is logged once', async () => {
    const { open } = setup();
    const logger = recordingLogger();
    const km = await open({ logger });
    await km.rotate({ activateIn: 0 });
    await km.reload();
    const warnings = logger.entries.filter((e) => e.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.msg, 'signing keys are stored unencrypted; set a key-encryption secret');
  });

  it('a retired sealed key needs no secret to stay published, an active one does', async () => {
    const { state, storage, open } = setup();
    const sealed = await open({ sealer: new Sealer(secret) });
    const oldKid = sealed.signer().kid;
    const oldToken = sealed.sign({ sub: 'old' }, 'at+jwt');
    const rotated = await sealed.rotate({ activateIn: 0 });
    await assert.rejects(open(), new RegExp(`signing key ${rotated.kid} is encrypted`));
    // Without the active sealed key, the retired one is only needed for its public part.
    await storage.deleteKey(rotated.kid);
    state.now = T0 + 1;
    const plain = await open();
    assert.notEqual(plain.signer().kid, oldKid);
    assert.ok(plain.jwks().keys.some((k) => k.kid === oldKid));
    assert.deepEqual(plain.verify(oldToken), { sub: 'old' });
  });
});
