import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { randomToken, sha256, STAMP_LENGTH, stampedToken, tokenId, uuidv7 } from '../../src/core/crypto.js';

describe('randomToken (pooled CSPRNG)', () => {
  it('gives distinct tokens of the requested size across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const token = randomToken(i % 2 === 0 ? 32 : 16);
      assert.equal(Buffer.from(token, 'base64url').length, i % 2 === 0 ? 32 : 16);
      assert.ok(!seen.has(token), 'no token repeats');
      seen.add(token);
    }
  });

  it('serves sizes larger than the pool directly', () => {
    assert.equal(Buffer.from(randomToken(10_000), 'base64url').length, 10_000);
  });

  it('bytes are spread evenly (no stuck or zeroed bytes leak out of the pool)', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 4000; i++) for (const b of Buffer.from(randomToken(32), 'base64url')) counts[b]! += 1;
    const expected = (4000 * 32) / 256;
    for (const c of counts) assert.ok(c > expected * 0.7 && c < expected * 1.3, `byte frequency ${c} vs ${expected}`);
  });
});

/** Decode a stamp (the ASCII-ordered base64url alphabet) back to milliseconds. */
function stampMs(token: string): number {
  const alphabet = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
  let ms = 0;
  for (const ch of token.slice(0, STAMP_LENGTH)) ms = ms * 64 + alphabet.indexOf(ch);
  return ms;
}

describe('stampedToken and tokenId (storage ids that grow with time)', () => {
  it('a stamped token is 8 characters of issue time and 256 random bits, all base64url characters', () => {
    const before = Date.now();
    const token = stampedToken();
    const after = Date.now();
    assert.match(token, /^[A-Za-z0-9_-]{51}$/);
    assert.equal(Buffer.from(token.slice(STAMP_LENGTH), 'base64url').length, 32);
    const ms = stampMs(token);
    assert.ok(ms >= before && ms <= after, `stamp ${ms} within [${before}, ${after}]`);
  });

  it('the id of a stamped token is its stamp then the SHA-256 of the whole token; the id never contains the random part', () => {
    const token = stampedToken();
    const id = tokenId(token);
    assert.equal(id, token.slice(0, STAMP_LENGTH) + createHash('sha256').update(token).digest('base64url'));
    assert.ok(!id.includes(token.slice(STAMP_LENGTH, STAMP_LENGTH + 12)));
  });

  it('a token of any other shape (one issued before stamps: 43 characters) keeps the plain SHA-256 id', () => {
    const legacy = randomToken(32);
    assert.equal(legacy.length, 43);
    assert.equal(tokenId(legacy), sha256(legacy));
    assert.equal(tokenId('x'), sha256('x'));
    // 51 characters but not issued by us: looked up under its own stamp and hash, which no issued token has
    const forged = `${stampedToken().slice(0, STAMP_LENGTH)}${'A'.repeat(43)}`;
    assert.equal(tokenId(forged), forged.slice(0, STAMP_LENGTH) + sha256(forged));
  });

  it('ids of tokens issued later sort after earlier ones in byte order (what SQLite and PostgreSQL "C" compare)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(tokenId(stampedToken()));
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const byBytes = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(byBytes, ids);
    // at given times, across a carry into every stamp digit, the byte order is the time order
    const times = [0, 63, 64, 4095, 4096, 64 ** 5 - 1, 64 ** 5, Date.now(), 2 ** 48 - 1];
    const tokens = times.map((ms) => stampedToken(ms));
    for (let i = 0; i < times.length; i++) assert.equal(stampMs(tokens[i]!), times[i]);
    const sorted = [...tokens].map(tokenId).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(sorted, tokens.map(tokenId));
  });

  it('distinct tokens issued in the same millisecond get distinct ids', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) ids.add(tokenId(stampedToken()));
    assert.equal(ids.size, 2000);
  });
});

describe('uuidv7 (grant ids)', () => {
  it('is an RFC 9562 version 7 UUID whose first 48 bits are the time in milliseconds', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    assert.ok(ms >= before && ms <= after);
    assert.equal(uuidv7(1_700_000_000_123).slice(0, 13), '018bcfe5-687b');
  });

  it('ids made later sort later, and 5,000 made at once are distinct', async () => {
    const first = uuidv7();
    await new Promise((resolve) => setTimeout(resolve, 3));
    assert.ok(first < uuidv7());
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) ids.add(uuidv7());
    assert.equal(ids.size, 5000);
  });
});
