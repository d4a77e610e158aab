import { createHash, hash, randomFillSync, timingSafeEqual } from 'node:crypto';

// One CSPRNG call fills a pool that many tokens draw from: small randomBytes calls cost more than
// the bytes themselves on the token endpoint's hot path. Every byte is used once.
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** A random token of `bytes` bytes (default 32 = 256 bits) from the CSPRNG, base64url. */
export function randomToken(bytes = 32): string {
  if (bytes > POOL_SIZE) return randomFillSync(Buffer.allocUnsafe(bytes)).toString('base64url');
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const token = pool.toString('base64url', poolOffset, poolOffset + bytes);
  pool.fill(0, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return token;
}

/** SHA-256 of a UTF-8 string, base64url. */
export function sha256(value: string): string {
  return hash('sha256', value, 'base64url');
}

/**
 * The 64 characters of base64url in ASCII order, so that stamps compare as their times do in
 * SQLite's and PostgreSQL's byte-wise (`C`) order.
 */
const STAMP_ALPHABET = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Characters of a stamp: 48 bits of milliseconds (good until the year 10889). */
export const STAMP_LENGTH = 8;
/** Length of a stamped token: the stamp and 256 random bits in base64url. */
const STAMPED_LENGTH = STAMP_LENGTH + 43;

let lastStampMs = -1;
let lastStamp = '';

/** A time in milliseconds as {@link STAMP_LENGTH} characters of {@link STAMP_ALPHABET}. */
function stampOf(ms: number): string {
  if (ms === lastStampMs) return lastStamp;
  let t = ms;
  let out = '';
  for (let i = 0; i < STAMP_LENGTH; i++) {
    out = STAMP_ALPHABET[t % 64]! + out;
    t = Math.floor(t / 64);
  }
  lastStampMs = ms;
  lastStamp = out;
  return out;
}

/**
 * A code or token to be stored: {@link STAMP_LENGTH} characters of issue time (milliseconds; `ms`,
 * default now) then 256 random bits, base64url characters throughout. The stamp is not secret (a
 * JWT's `iat` says as much); it only makes {@link tokenId} grow with time. See {@link tokenId}.
 */
export function stampedToken(ms: number = Date.now()): string {
  return stampOf(ms) + randomToken(32);
}

/**
 * The storage id of a code or token: its SHA-256 (base64url), so a database read never yields a
 * usable token. A stamped token's id starts with its stamp: ids issued together then sit side by
 * side in the `(kind, id)` index, and a group commit writes one index page instead of one per token
 * (docs/performance.md). Tokens of any other shape (those issued before stamps: 43 characters)
 * keep the plain hash, so they still work.
 */
export function tokenId(token: string): string {
  const digest = hash('sha256', token, 'base64url');
  return token.length === STAMPED_LENGTH ? token.slice(0, STAMP_LENGTH) + digest : digest;
}

/**
 * A version 7 UUID (RFC 9562 §5.7): 48 bits of Unix time in milliseconds (`ms`, default now), then 74 random bits. Ids
 * made later sort later, so rows keyed by them are appended to their index, not scattered in it.
 * Used for grant ids (not secret: a grant id grants nothing).
 * @see https://www.rfc-editor.org/rfc/rfc9562#section-5.7
 */
export function uuidv7(ms: number = Date.now()): string {
  const bytes = randomFillSync(Buffer.allocUnsafe(16), 6, 10);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Constant-time string comparison (lengths may differ; the comparison still takes the same path). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = createHash('sha256').update(a).digest();
  const bb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ab, bb) && a.length === b.length;
}
