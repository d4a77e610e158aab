import { hkdfSync, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Storage } from '../storage/contract.js';

const SECRET_ID = 'cookie-signing-key';
const FOREVER = 253_402_300_799; // 9999-12-31

/**
 * The keys that sign cookies and CSRF tokens. In order of preference: the configured keys; keys
 * derived from the key-encryption secret; a random key generated once and kept in storage, so every
 * instance on the same store signs alike (two instances racing to create it converge on one).
 */
export async function resolveCookieKeys(options: { cookieKeys?: string[]; keyEncryptionSecret?: string; storage: Storage; clock: Clock }): Promise<string[]> {
  if (options.cookieKeys !== undefined && options.cookieKeys.length > 0) return options.cookieKeys;
  if (options.keyEncryptionSecret !== undefined) {
    return [Buffer.from(hkdfSync('sha256', options.keyEncryptionSecret, 'portcullis', 'cookie-signing-v1', 32)).toString('base64url')];
  }
  const now = options.clock();
  const existing = await options.storage.findArtifact('server_secret', SECRET_ID, now);
  const stored = existing?.data?.key;
  if (typeof stored === 'string') return [stored];
  const key = randomBytes(32).toString('base64url');
  try {
    await options.storage.saveArtifact({ kind: 'server_secret', id: SECRET_ID, client_id: '', scope: '', created_at: now, expires_at: FOREVER, data: { key } });
    return [key];
  } catch (err) {
    // Another instance created it first: use theirs.
    const winner = (await options.storage.findArtifact('server_secret', SECRET_ID, now))?.data?.key;
    if (typeof winner === 'string') return [winner];
    throw err;
  }
}
