import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

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
  const parsed = parseStoredHash(stored ?? DUMMY_HASH);
  if (parsed === undefined) return false;
  const actual = digest(parsed.salt, secret);
  return parsed.expected.length === actual.length && timingSafeEqual(parsed.expected, actual) && stored !== undefined;
}

interface ParsedHash {
  salt: Buffer;
  expected: Buffer;
}

/** Stored hashes already split and decoded (they are not secrets: salt and digest). Bounded. */
const parsedHashes = new Map<string, ParsedHash>();
const MAX_PARSED_HASHES = 1024;

function parseStoredHash(stored: string): ParsedHash | undefined {
  const cached = parsedHashes.get(stored);
  if (cached !== undefined) return cached;
  const [scheme, saltText, digestText] = stored.split('$');
  if (scheme !== 'sha256' || saltText === undefined || digestText === undefined) return undefined;
  const parsed = { salt: Buffer.from(saltText, 'base64url'), expected: Buffer.from(digestText, 'base64url') };
  if (parsedHashes.size >= MAX_PARSED_HASHES) parsedHashes.clear();
  parsedHashes.set(stored, parsed);
  return parsed;
}

/** A new client secret: 256 random bits, base64url. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

function digest(salt: Buffer, secret: string): Buffer {
  // One-shot crypto.hash over salt ‖ secret: the same digest as update(salt).update(secret).
  return hash('sha256', Buffer.concat([salt, Buffer.from(secret, 'utf8')]), 'buffer');
}
