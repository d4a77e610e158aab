import { hash, verify } from '@node-rs/argon2';

/**
 * User passwords are hashed with argon2id (OWASP parameters: m=19456 KiB, t=2, p=1) and stored as
 * PHC strings, so the parameters can be raised later.
 */
const PARAMS = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

let dummyHash: Promise<string> | undefined;

/**
 * Verify a password against a PHC hash. With `stored` undefined (unknown user) a dummy hash is
 * checked instead, so an unknown user and a wrong password take the same time.
 */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  if (stored === undefined) {
    dummyHash ??= hashPassword('portcullis-dummy-password');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  if (!stored.startsWith('$argon2')) return false;
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** Whether a string looks like a PHC argon2 hash (for config files that give `password_hash`). */
export function isPasswordHash(value: string): boolean {
  return /^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(value);
}
