import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import type { JWK } from 'jose';
import { JwtSigner, SIGNING_ALGORITHMS, keyFitsAlgorithm, verifyCompactJws } from '../../src/keys/jwt-signer.js';
import type { ResolvedVerificationKey, SigningAlgorithm } from '../../src/keys/jwt-signer.js';

interface TestKey {
  alg: SigningAlgorithm;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
}

function makeKey(alg: SigningAlgorithm, kid = `kid-${alg}`): TestKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  return { alg, kid, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk };
}

const keys = new Map<SigningAlgorithm, TestKey>(SIGNING_ALGORITHMS.map((alg) => [alg, makeKey(alg)]));
function key(alg: SigningAlgorithm): TestKey {
  const k = keys.get(alg);
  assert.ok(k);
  return k;
}

function resolverFor(...list: TestKey[]): (kid: string) => ResolvedVerificationKey | undefined {
  return (kid) => {
    const k = list.find((x) => x.kid === kid);
    return k === undefined ? undefined : { key: k.publicKey, alg: k.alg };
  };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const decode = (segment: string): unknown => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

const now = Math.floor(Date.now() / 1000);
const payload = { iss: 'https://as.example', sub: 'user-1', aud: 'api', iat: now, exp: now + 300, scope: 'read write', n: 'ü€😀' };

describe('JwtSigner', () => {
  for (const alg of SIGNING_ALGORITHMS) {
    it(`${alg}: tokens verify with jose jwtVerify + createLocalJWKSet`, async () => {
      const k = key(alg);
      const signer = new JwtSigner(k.kid, alg, k.privateKey);
      assert.equal(signer.kid, k.kid);
      assert.equal(signer.alg, alg);
      const token = signer.sign(payload, 'at+jwt');
      const jwks = createLocalJWKSet({ keys: [key('ES256').jwk, key('RS256').jwk, key('PS256').jwk, key('EdDSA').jwk] });
      const result = await jwtVerify(token, jwks, { typ: 'at+jwt', algorithms: [alg], issuer: 'https://as.example', audience: 'api' });
      assert.deepEqual(result.payload, payload);
      assert.deepEqual(result.protectedHeader, { alg, kid: k.kid, typ: 'at+jwt' });
    });

    it(`${alg}: verifyCompactJws accepts its tokens and jose-signed tokens`, async () => {
      const k = key(alg);
      const signer = new JwtSigner(k.kid, alg, k.privateKey);
      const resolve = resolverFor(k);
      const ours = verifyCompactJws(signer.sign(payload, 'JWT'), resolve);
      assert.ok(ours);
      assert.deepEqual(ours.payload, payload);
      assert.deepEqual(ours.header, { alg, kid: k.kid, typ: 'JWT' });

      const joseToken = await new SignJWT(payload).setProtectedHeader({ alg, kid: k.kid, typ: 'JWT' }).sign(k.privateKey);
      const theirs = verifyCompactJws(joseToken, resolve);
      assert.ok(theirs);
      assert.deepEqual(theirs.payload, payload);
    });
  }

  it('caches the header per typ and keeps only alg, kid, typ in it', () => {
    const k = key('ES256');
    const signer = new JwtSigner(k.kid, 'ES256', k.privateKey);
    const a = signer.sign({ a: 1 }, 'at+jwt').split('.');
    const b = signer.sign({ b: 2 }, 'at+jwt').split('.');
    const c = signer.sign({ c: 3 }, 'JWT').split('.');
    assert.equal(a[0], b[0]);
    assert.notEqual(a[0], c[0]);
    assert.deepEqual(decode(a[0] ?? ''), { alg: 'ES256', kid: k.kid, typ: 'at+jwt' });
    assert.deepEqual(decode(c[0] ?? ''), { alg: 'ES256', kid: k.kid, typ: 'JWT' });
  });

  it('ES256 signatures are IEEE P1363 (64 bytes) and EdDSA signatures 64 bytes', () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const k = key(alg);
      const sig = new JwtSigner(k.kid, alg, k.privateKey).sign({}, 'JWT').split('.')[2] ?? '';
      assert.equal(Buffer.from(sig, 'base64url').length, 64);
    }
  });

  it('PS256 uses PSS with a 32-byte salt; RS256 is deterministic', () => {
    const rs = new JwtSigner('rs', 'RS256', key('RS256').privateKey);
    assert.equal(rs.sign({ x: 1 }, 'JWT'), rs.sign({ x: 1 }, 'JWT'));
    const ps = new JwtSigner('ps', 'PS256', key('PS256').privateKey);
    assert.notEqual(ps.sign({ x: 1 }, 'JWT'), ps.sign({ x: 1 }, 'JWT')); // randomised salt
  });

  it('refuses keys that do not fit the algorithm', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => new JwtSigner('k', 'ES256', p384), /does not fit ES256/);
    assert.throws(() => new JwtSigner('k', 'RS256', rsa1024), /does not fit RS256/);
    assert.throws(() => new JwtSigner('k', 'EdDSA', key('ES256').privateKey), /does not fit EdDSA/);
    assert.throws(() => new JwtSigner('k', 'PS256', key('ES256').privateKey), /does not fit PS256/);
    assert.throws(() => new JwtSigner('k', 'ES256', key('ES256').publicKey), /private key is required/);
    assert.throws(() => new JwtSigner('', 'ES256', key('ES256').privateKey), /kid/);
    assert.throws(() => new JwtSigner('k', 'HS256' as SigningAlgorithm, key('ES256').privateKey), /unsupported/);
    assert.equal(keyFitsAlgorithm(key('RS256').publicKey, 'PS256'), true);
  });
});

describe('verifyCompactJws rejects', () => {
  const es = key('ES256');
  const rs = key('RS256');
  const all = resolverFor(...SIGNING_ALGORITHMS.map(key));
  const good = new JwtSigner(es.kid, 'ES256', es.privateKey).sign(payload, 'at+jwt');
  const [h, p, s] = good.split('.') as [string, string, string];

  it('(control) the untouched token', () => {
    assert.ok(verifyCompactJws(good, all));
  });

  it('a tampered payload', () => {
    assert.equal(verifyCompactJws(`${h}.${b64({ ...payload, sub: 'admin' })}.${s}`, all), undefined);
  });

  it('a tampered header', () => {
    assert.equal(verifyCompactJws(`${b64({ alg: 'ES256', kid: es.kid, typ: 'JWT' })}.${p}.${s}`, all), undefined);
  });

  it('a tampered or truncated signature', () => {
    const bytes = Buffer.from(s, 'base64url');
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    assert.equal(verifyCompactJws(`${h}.${p}.${bytes.toString('base64url')}`, all), undefined);
    assert.equal(verifyCompactJws(`${h}.${p}.${s.slice(0, -2)}`, all), undefined);
    assert.equal(verifyCompactJws(`${h}.${p}.`, all), undefined);
  });

  it('a non-canonical base64url signature', () => {
    // 64 bytes → 86 chars, the last one carries 4 unused bits: flipping one keeps the bytes.
    const last = s.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A';
    const variant = `${h}.${p}.${s.slice(0, -1)}${twin}`;
    assert.deepEqual(Buffer.from(variant.split('.')[2] ?? '', 'base64url'), Buffer.from(s, 'base64url'));
    assert.equal(verifyCompactJws(variant, all), undefined);
  });

  it('alg none (with or without a signature)', () => {
    const none = b64({ alg: 'none', kid: es.kid, typ: 'at+jwt' });
    assert.equal(verifyCompactJws(`${none}.${p}.`, all), undefined);
    assert.equal(verifyCompactJws(`${none}.${p}.${s}`, all), undefined);
    const noneResolver = (): ResolvedVerificationKey => ({ key: es.publicKey, alg: 'none' });
    assert.equal(verifyCompactJws(`${none}.${p}.${s}`, noneResolver), undefined);
  });

  it('an alg that differs from the key’s alg', () => {
    // PS256 token from the RSA key the resolver binds to RS256.
    const header = b64({ alg: 'PS256', kid: rs.kid });
    const input = `${header}.${p}`;
    const sig = cryptoSign('sha256', Buffer.from(input), { key: rs.privateKey, padding: 6, saltLength: 32 });
    const token = `${input}.${sig.toString('base64url')}`;
    assert.equal(verifyCompactJws(token, resolverFor(rs)), undefined);
    assert.ok(verifyCompactJws(token, () => ({ key: rs.publicKey, alg: 'PS256' }))); // control
    // HS256 with the public key as the HMAC secret (the classic confusion attack).
    const hsHeader = b64({ alg: 'HS256', kid: rs.kid });
    const pem = createPublicKey(rs.privateKey).export({ format: 'pem', type: 'spki' });
    const mac = createHmac('sha256', pem).update(`${hsHeader}.${p}`).digest('base64url');
    assert.equal(verifyCompactJws(`${hsHeader}.${p}.${mac}`, resolverFor(rs)), undefined);
    // A key of the wrong type for its declared alg.
    assert.equal(verifyCompactJws(good, () => ({ key: rs.publicKey, alg: 'ES256' })), undefined);
  });

  it('an unknown kid, a missing kid', () => {
    assert.equal(verifyCompactJws(good, resolverFor(rs)), undefined);
    const noKid = b64({ alg: 'ES256', typ: 'JWT' });
    const input = `${noKid}.${p}`;
    const sig = cryptoSign('sha256', Buffer.from(input), { key: es.privateKey, dsaEncoding: 'ieee-p1363' });
    assert.equal(verifyCompactJws(`${input}.${sig.toString('base64url')}`, () => ({ key: es.publicKey, alg: 'ES256' })), undefined);
  });

  it('crit headers and non-object payloads, even when correctly signed', () => {
    const signRaw = (header: object, body: string): string => {
      const input = `${b64(header)}.${Buffer.from(body).toString('base64url')}`;
      const sig = cryptoSign('sha256', Buffer.from(input), { key: es.privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${sig.toString('base64url')}`;
    };
    assert.ok(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid }, '{"a":1}'), all)); // control
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid, crit: ['exp'], exp: 1 }, '{}'), all), undefined);
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid, b64: false, crit: ['b64'] }, '{}'), all), undefined);
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid }, '[1,2]'), all), undefined);
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid }, 'null'), all), undefined);
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid }, 'not json'), all), undefined);
    assert.equal(verifyCompactJws(signRaw({ alg: 'ES256', kid: es.kid, typ: 7 }, '{}'), all), undefined);
  });

  it('garbage strings, never throwing', () => {
    const garbage: unknown[] = [
      '',
      '.',
      '..',
      '...',
      'a.b',
      'a.b.c',
      'a.b.c.d',
      `${h}.${p}.${s}.`,
      `${h}.${p}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h} .${p}.${s}`,
      `${h}.${p}.${s}=`,
      `${h}.${p}+.${s}`,
      `${b64('string')}.${p}.${s}`,
      `${b64([1])}.${p}.${s}`,
      `${b64(null)}.${p}.${s}`,
      `${Buffer.from('{"alg":').toString('base64url')}.${p}.${s}`,
      '\u0000.\u0000.\u0000',
      `${h}.${p}.${'A'.repeat(70_000)}`,
      'eyJhbGciOiJFUzI1NiJ9.e30.' + '!'.repeat(10),
      undefined,
      null,
      42,
      {},
    ];
    for (const input of garbage) {
      assert.doesNotThrow(() => verifyCompactJws(input as string, all));
      assert.equal(verifyCompactJws(input as string, all), undefined, `accepted ${String(input).slice(0, 40)}`);
    }
    const throwing = (): never => {
      throw new Error('resolver failure');
    };
    assert.equal(verifyCompactJws(good, throwing), undefined);
  });
});
