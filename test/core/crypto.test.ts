import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomToken } from '../../src/core/crypto.js';

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
