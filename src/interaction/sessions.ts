import type { Clock } from '../core/clock.js';
import { randomToken, sha256 } from '../core/crypto.js';
import type { Storage } from '../storage/contract.js';
import { parseCookies, serializeCookie, type CookieSigner } from './cookies.js';

export interface Session {
  /** The session id as stored (the hash of the cookie value); `sid` claims use it. */
  id: string;
  userId: string;
  /** When the user authenticated (seconds). */
  authTime: number;
  amr: string[];
  expiresAt: number;
}

export const SESSION_COOKIE = 'portcullis.session';

/**
 * Browser sessions: a signed cookie carrying 256 random bits; the store keeps only their hash
 * (artifact kind `session`), so a database leak does not hand out sessions.
 */
export class SessionManager {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly signer: CookieSigner,
    private readonly cookie: { path: string; secure: boolean; ttl: number },
  ) {}

  /** The live session the request's cookie names, if any. */
  async current(cookieHeader: string | undefined): Promise<Session | undefined> {
    const value = this.signer.unsign(parseCookies(cookieHeader)[SESSION_COOKIE]);
    if (value === undefined || value.length > 128) return undefined;
    const record = await this.storage.findArtifact('session', sha256(value), this.clock());
    if (record === undefined || record.revoked_at !== undefined || record.user_id === undefined) return undefined;
    const data = record.data ?? {};
    return {
      id: record.id,
      userId: record.user_id,
      authTime: typeof data.auth_time === 'number' ? data.auth_time : record.created_at,
      amr: Array.isArray(data.amr) ? (data.amr as string[]) : [],
      expiresAt: record.expires_at,
    };
  }

  /** Start a session for a user who just authenticated; returns it with its Set-Cookie header. */
  async create(userId: string, amr: string[]): Promise<{ session: Session; setCookie: string }> {
    const now = this.clock();
    const value = randomToken(32);
    const id = sha256(value);
    await this.storage.saveArtifact({
      kind: 'session',
      id,
      client_id: '',
      user_id: userId,
      scope: '',
      created_at: now,
      expires_at: now + this.cookie.ttl,
      data: { auth_time: now, amr },
    });
    const setCookie = serializeCookie(SESSION_COOKIE, this.signer.sign(value), { path: this.cookie.path, secure: this.cookie.secure, maxAge: this.cookie.ttl });
    return { session: { id, userId, authTime: now, amr, expiresAt: now + this.cookie.ttl }, setCookie };
  }

  /** End a session; returns the Set-Cookie header that clears the cookie. */
  async destroy(session: Session | undefined): Promise<string> {
    if (session !== undefined) await this.storage.revokeArtifact('session', session.id, this.clock());
    return serializeCookie(SESSION_COOKIE, '', { path: this.cookie.path, secure: this.cookie.secure, maxAge: 0 });
  }
}
