import { createHmac, timingSafeEqual } from 'node:crypto';

/** Parse a `Cookie` header into a null-prototype map (first value of a name wins). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (header === undefined || header === '') return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      // an undecodable value is ignored, like an absent cookie
    }
  }
  return out;
}

export interface CookieOptions {
  path: string;
  secure: boolean;
  /** Seconds; absent = a browser-session cookie; 0 deletes it. */
  maxAge?: number;
  sameSite?: 'Lax' | 'Strict' | 'None';
}

/** A `Set-Cookie` value: always HttpOnly, SameSite=Lax unless told otherwise. */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  let cookie = `${name}=${encodeURIComponent(value)}; Path=${options.path}; HttpOnly; SameSite=${options.sameSite ?? 'Lax'}`;
  if (options.secure) cookie += '; Secure';
  if (options.maxAge !== undefined) {
    cookie += `; Max-Age=${options.maxAge}`;
    if (options.maxAge === 0) cookie += '; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
  }
  return cookie;
}

/**
 * HMAC-SHA-256 signatures for cookie values and CSRF tokens. Signs with the first key and accepts any,
 * so keys can be rotated.
 */
export class CookieSigner {
  readonly #keys: readonly Buffer[];

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('CookieSigner needs at least one key');
    this.#keys = keys.map((k) => Buffer.from(k, 'utf8'));
  }

  mac(value: string, key: Buffer = this.#keys[0]!): string {
    return createHmac('sha256', key).update(value).digest('base64url');
  }

  /** `value.signature` */
  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The value of a signed string, or undefined when the signature does not verify under any key. */
  unsign(signed: string | undefined): string | undefined {
    if (signed === undefined) return undefined;
    const dot = signed.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const value = signed.slice(0, dot);
    return this.verify(value, signed.slice(dot + 1)) ? value : undefined;
  }

  /** Constant-time check of a MAC over `value`. */
  verify(value: string, mac: string): boolean {
    const given = Buffer.from(mac, 'base64url');
    for (const key of this.#keys) {
      const expected = createHmac('sha256', key).update(value).digest();
      if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
    }
    return false;
  }
}
