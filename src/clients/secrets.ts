import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Client secrets are machine credentials: the server generates them with 256 bits of entropy, so a
 * salted SHA-256 is enough at rest and keeps client authentication fast on the token endpoint.
 * (User passwords, which are low-entropy, use argon2id instead: see users/passwords.ts.)
 * Format: `sha256$<salt>$<digest>`, base64url parts.
 */
export function hashClientSecret(secret: string): string {
  const salt = randomBytes(16);
  return `sha256$${salt.toString('base64url')}$${digest(salt, secret).toString('base64url')}`;
}

const DUMMY_HASH = hashClientSecret(randomBytes(32).toString('base64url'));

/**
 * Constant-time check of a presented secret against a stored hash. With `stored` undefined
 * (unknown client) the same work is done against a dummy hash, so timing does not tell the two apart.
 */
export function verifyClientSecret(secret: string, stored: string | undefined): boolean {
  const [scheme, saltText, digestText] = (stored ?? DUMMY_HASH).split('$');
  if (scheme !== 'sha256' || saltText === undefined || digestText === undefined) return false;
  const expected = Buffer.from(digestText, 'base64url');
  const actual = digest(Buffer.from(saltText, 'base64url'), secret);
  return expected.length === actual.length && timingSafeEqual(expected, actual) && stored !== undefined;
}

/** A new client secret: 256 random bits, base64url. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

function digest(salt: Buffer, secret: string): Buffer {
  return createHash('sha256').update(salt).update(secret, 'utf8').digest();
}
