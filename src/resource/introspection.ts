/**
 * Token introspection (RFC 7662) from the resource server's side, with a small cache: an active
 * answer is reused for at most `cacheSeconds` and never beyond the token's `exp`, so a revoked token
 * stops passing within that window. Inactive answers are not cached.
 * @see https://www.rfc-editor.org/rfc/rfc7662
 * @module
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.js';
import type { OAuthResponse } from '../core/http.js';
import type { Portcullis } from '../portcullis-types.js';

export interface IntrospectionOptions {
  /**
   * The issuer's introspection endpoint. Optional with a local `portcullis`: the request is then
   * answered in process, without a network round trip.
   */
  endpoint?: string | URL;
  /** This resource server's client credentials (sent with HTTP Basic, RFC 6749 §2.3.1). */
  clientId: string;
  clientSecret: string;
  /** Seconds an active answer is reused (default 60; 0 disables the cache; at most 300). Never beyond the token's `exp`. */
  cacheSeconds?: number;
  /** Most answers kept (default 10,000; the oldest go first). */
  maxCacheEntries?: number;
  /** Milliseconds to wait for the endpoint (default 5,000). */
  timeoutMs?: number;
  /** The fetch used to reach the endpoint (default: the global fetch). */
  fetch?: typeof fetch;
}

interface CacheEntry {
  until: number;
  claims: Record<string, unknown>;
}

export const MAX_INTROSPECTION_CACHE_SECONDS = 300;

/** Calls the introspection endpoint; internal to the guard. */
export class Introspector {
  readonly #endpoint: URL | undefined;
  readonly #portcullis: Portcullis | undefined;
  readonly #authorization: string;
  readonly #cacheSeconds: number;
  readonly #maxEntries: number;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<Record<string, unknown> | undefined>>();

  constructor(options: IntrospectionOptions, context: { portcullis?: Portcullis; clock: () => number }) {
    if (typeof options.clientId !== 'string' || options.clientId === '' || typeof options.clientSecret !== 'string' || options.clientSecret === '') {
      throw new ConfigError('bearer guard: introspection needs clientId and clientSecret');
    }
    const cacheSeconds = options.cacheSeconds ?? 60;
    if (!Number.isFinite(cacheSeconds) || cacheSeconds < 0 || cacheSeconds > MAX_INTROSPECTION_CACHE_SECONDS) {
      throw new ConfigError(`bearer guard: introspection.cacheSeconds must be 0..${MAX_INTROSPECTION_CACHE_SECONDS}`);
    }
    if (options.endpoint === undefined && context.portcullis === undefined) throw new ConfigError('bearer guard: introspection.endpoint is required (or pass a local portcullis)');
    this.#endpoint = options.endpoint === undefined ? undefined : new URL(options.endpoint);
    this.#portcullis = options.endpoint === undefined ? context.portcullis : undefined;
    const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
    this.#authorization = `Basic ${Buffer.from(`${enc(options.clientId)}:${enc(options.clientSecret)}`).toString('base64')}`;
    this.#cacheSeconds = cacheSeconds;
    this.#maxEntries = Math.max(1, options.maxCacheEntries ?? 10_000);
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#clock = context.clock;
  }

  /**
   * The introspection answer of an active token, or `undefined` when it is not active. Throws when
   * the endpoint cannot be reached or answers with an error (the guard turns that into a 503).
   */
  async introspect(token: string): Promise<Record<string, unknown> | undefined> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.#clock();
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      if (cached.until > now) return cached.claims;
      this.#cache.delete(key);
    }
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#ask(token).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const claims = await pending;
    if (claims !== undefined && this.#cacheSeconds > 0) {
      const at = this.#clock();
      const exp = typeof claims.exp === 'number' ? claims.exp : at;
      const until = Math.min(at + this.#cacheSeconds, exp);
      if (until > at) {
        if (this.#cache.size >= this.#maxEntries) {
          const oldest = this.#cache.keys().next();
          if (oldest.done !== true) this.#cache.delete(oldest.value);
        }
        this.#cache.set(key, { until, claims });
      }
    }
    return claims;
  }

  async #ask(token: string): Promise<Record<string, unknown> | undefined> {
    const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    const headers = { authorization: this.#authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    let status: number;
    let text: string;
    if (this.#portcullis !== undefined) {
      const res: OAuthResponse = await this.#portcullis.handle({ method: 'POST', path: new URL(this.#portcullis.endpoints.introspect).pathname, query: '', headers, body });
      status = res.status;
      text = res.body;
    } else {
      const res = await this.#fetch(this.#endpoint!, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(this.#timeoutMs) });
      status = res.status;
      text = await res.text();
    }
    if (status !== 200) throw new Error(`introspection endpoint answered ${status}`);
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('introspection endpoint answered with a non-object');
    const claims = json as Record<string, unknown>;
    return claims.active === true ? claims : undefined;
  }
}
