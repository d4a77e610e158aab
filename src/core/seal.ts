import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Authenticated encryption at rest (AES-256-GCM) for private keys and the few secrets that cannot
 * be hashed. The key is derived from the configured key-encryption secret with HKDF-SHA-256.
 * Format: `enc:v1:<iv>.<ciphertext>.<tag>` (base64url parts).
 */
export class Sealer {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (secret.length < 16) throw new Error('The key-encryption secret must be at least 16 characters');
    this.#key = Buffer.from(hkdfSync('sha256', secret, 'portcullis', 'at-rest-v1', 32));
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `enc:v1:${iv.toString('base64url')}.${ct.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    if (!isSealed(sealed)) throw new Error('Value is not sealed');
    const [iv, ct, tag] = sealed.slice(7).split('.');
    if (iv === undefined || ct === undefined || tag === undefined) throw new Error('Malformed sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }
}

export function isSealed(value: string): boolean {
  return value.startsWith('enc:v1:');
}
