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

/** SHA-256 of a UTF-8 string, base64url: the storage id of a code or token. */
export function sha256(value: string): string {
  return hash('sha256', value, 'base64url');
}

/** Constant-time string comparison (lengths may differ; the comparison still takes the same path). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = createHash('sha256').update(a).digest();
  const bb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ab, bb) && a.length === b.length;
}
