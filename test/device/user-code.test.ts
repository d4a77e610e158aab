/**
 * RFC 8628 §6.1: user codes — alphabet, length, uniformity, normalisation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { USER_CODE_ALPHABET, formatUserCode, generateUserCode, normalizeUserCode } from '../../src/device/user-code.js';
import { ALPHABET } from './helpers.js';

describe('user codes', () => {
  it('uses the 20 consonants of RFC 8628 §6.1 (no vowels, no digits)', () => {
    assert.equal(USER_CODE_ALPHABET, ALPHABET);
    assert.equal(new Set(USER_CODE_ALPHABET).size, 20);
    assert.doesNotMatch(USER_CODE_ALPHABET, /[AEIOUY0-9]/);
  });

  it('10,000 codes: 8 characters of the alphabet only, roughly uniform (chi-square), per character and per position', () => {
    const n = 10_000;
    const counts = new Map<string, number>();
    const perPosition: Map<string, number>[] = Array.from({ length: 8 }, () => new Map());
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const code = generateUserCode();
      assert.match(code, /^[BCDFGHJKLMNPQRSTVWXZ]{8}$/);
      seen.add(code);
      [...code].forEach((ch, pos) => {
        counts.set(ch, (counts.get(ch) ?? 0) + 1);
        perPosition[pos]!.set(ch, (perPosition[pos]!.get(ch) ?? 0) + 1);
      });
    }
    // 10,000 draws from 20^8 ≈ 2.6e10 codes: a repeat has probability ≈ 0.2 %.
    assert.ok(seen.size >= n - 2, `${seen.size} distinct codes`);
    assert.equal(counts.size, 20, 'every letter appears');

    // Chi-square with 19 degrees of freedom: 99.99th percentile ≈ 52.6. A modulo bias (e.g. a byte % 20)
    // would favour 16 letters by 13/12 and push the statistic far above it.
    const chi = (observed: Map<string, number>, total: number): number => {
      const expected = total / 20;
      let sum = 0;
      for (const ch of ALPHABET) sum += ((observed.get(ch) ?? 0) - expected) ** 2 / expected;
      return sum;
    };
    const overall = chi(counts, n * 8);
    assert.ok(overall < 52.6, `chi-square over all characters ${overall.toFixed(1)}`);
    // Per position the sample is 8× smaller; a position stuck on a few letters would still stand out.
    for (const [pos, observed] of perPosition.entries()) {
      const value = chi(observed, n);
      assert.ok(value < 60, `chi-square at position ${pos}: ${value.toFixed(1)}`);
    }
  });

  it('is shown as XXXX-XXXX', () => {
    assert.equal(formatUserCode('BCDFGHJK'), 'BCDF-GHJK');
  });

  it('normalises case, spaces and dashes; refuses everything else', () => {
    for (const typed of ['BCDF-GHJK', 'bcdf-ghjk', 'bcdf ghjk', 'BcDf GhJk', ' bcdfghjk ', 'b c d f - g h j k', 'bcdf\u2013ghjk', 'BCDF\tGHJK', 'bcdf--ghjk']) {
      assert.equal(normalizeUserCode(typed), 'BCDFGHJK', JSON.stringify(typed));
    }
    for (const typed of ['', 'BCDFGHJ', 'BCDFGHJKL', 'BCDF-GHJA', 'BCDF-GHJ1', 'ſCDF-GHJK', 'BCDF_GHJK', 'BCDF.GHJK', 'ＢCDF-GHJK', 'x'.repeat(100), undefined]) {
      assert.equal(normalizeUserCode(typed), undefined, JSON.stringify(typed));
    }
  });
});
