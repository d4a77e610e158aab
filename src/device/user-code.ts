import { randomInt } from 'node:crypto';

/**
 * User codes of the device flow (RFC 8628 §6.1): 8 characters from 20 consonants (no vowels, so
 * no words; no digits, so no 0/O or 1/I confusion), ≈ 2^34.6 codes. Shown as `XXXX-XXXX`; what the
 * user types is compared case-, space- and dash-insensitively.
 */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;

const NORMALIZED = new RegExp(`^[${USER_CODE_ALPHABET}]{${USER_CODE_LENGTH}}$`);

/**
 * A fresh user code, normalized (8 upper-case letters, no dash). `crypto.randomInt` draws each
 * character uniformly (it rejects out-of-range samples), so there is no modulo bias.
 */
export function generateUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]!;
  return code;
}

/** `BCDFGHJK` → `BCDF-GHJK`, as shown to users. */
export function formatUserCode(normalized: string): string {
  return `${normalized.slice(0, 4)}-${normalized.slice(4)}`;
}

/**
 * What the user typed, normalized: ASCII letters only once spaces and dashes are removed, upper-cased;
 * `undefined` when it cannot be a user code (wrong length, another character).
 */
export function normalizeUserCode(input: string | undefined): string | undefined {
  if (input === undefined || input.length > 64) return undefined;
  const compact = input.replace(/[\s\-\u2010-\u2015\u2212]+/g, '');
  // ASCII only before upper-casing: some non-ASCII letters upper-case to ASCII ones (ſ → S).
  if (!/^[A-Za-z]*$/.test(compact)) return undefined;
  const code = compact.toUpperCase();
  return NORMALIZED.test(code) ? code : undefined;
}

/** Whether a string is a normalized user code. */
export function isNormalizedUserCode(value: string): boolean {
  return NORMALIZED.test(value);
}
