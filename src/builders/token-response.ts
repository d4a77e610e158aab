import type { TokenResponseBody } from '../grants/grant.js';

/** The JSON body of a successful token response (RFC 6749 §5.1), plus extension members: the core's shape. */
export type OAuth2TokenResponseBody = TokenResponseBody;

/**
 * A token response a `generateToken` handler returns, built fluently. `token_type` defaults to
 * `Bearer`. The server checks it before sending (a non-integer `expires_in`, a malformed scope… →
 * `server_error`, logged) and sends it with `Cache-Control: no-store`.
 * @example
 * ```ts
 * return new OAuth2TokenResponse({ access_token: await createJwtAccessToken() })
 *   .setExpiresIn(ttl)
 *   .setTokenType(tokenType)
 *   .setScope('openid email');
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 */
export class OAuth2TokenResponse {
  #accessToken: string;
  #tokenType: string;
  #expiresIn: number | undefined;
  #refreshToken: string | undefined;
  #scope: string | undefined;
  #idToken: string | undefined;
  readonly #extra: Record<string, unknown> = {};

  constructor(body: { access_token: string; token_type?: string; expires_in?: number; refresh_token?: string; scope?: string | string[]; id_token?: string }) {
    this.#accessToken = body.access_token;
    this.#tokenType = body.token_type ?? 'Bearer';
    this.#expiresIn = body.expires_in;
    this.#refreshToken = body.refresh_token;
    this.#scope = Array.isArray(body.scope) ? body.scope.join(' ') : body.scope;
    this.#idToken = body.id_token;
  }

  setAccessToken(value: string): this {
    this.#accessToken = value;
    return this;
  }
  getAccessToken(): string {
    return this.#accessToken;
  }

  setTokenType(value: string): this {
    this.#tokenType = value;
    return this;
  }
  getTokenType(): string {
    return this.#tokenType;
  }

  /** @param value lifetime of the access token in seconds (a positive whole number) */
  setExpiresIn(value?: number): this {
    this.#expiresIn = value;
    return this;
  }
  getExpiresIn(): number | undefined {
    return this.#expiresIn;
  }

  setRefreshToken(value?: string): this {
    this.#refreshToken = value;
    return this;
  }
  getRefreshToken(): string | undefined {
    return this.#refreshToken;
  }

  /** A space-delimited string or a list of scope tokens; empty means no `scope` member. */
  setScope(value?: string | readonly string[]): this {
    this.#scope = typeof value === 'string' || value === undefined ? value : value.join(' ');
    return this;
  }
  getScope(): string | undefined {
    return this.#scope;
  }

  setIdToken(value?: string): this {
    this.#idToken = value;
    return this;
  }
  /** Alias of {@link setIdToken}. */
  setIDToken(value?: string): this {
    return this.setIdToken(value);
  }
  getIdToken(): string | undefined {
    return this.#idToken;
  }
  /** Alias of {@link getIdToken}. */
  getIDToken(): string | undefined {
    return this.#idToken;
  }

  /** An extension member (e.g. `authorization_details`); the standard members cannot be set this way. */
  setExtension(name: string, value: unknown): this {
    if (['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope', 'id_token'].includes(name)) {
      throw new TypeError(`OAuth2TokenResponse: use the setter of ${name}`);
    }
    this.#extra[name] = value;
    return this;
  }

  toJSON(): OAuth2TokenResponseBody {
    const body: OAuth2TokenResponseBody = { ...this.#extra, access_token: this.#accessToken, token_type: this.#tokenType };
    if (this.#expiresIn !== undefined) body.expires_in = this.#expiresIn;
    if (this.#refreshToken !== undefined) body.refresh_token = this.#refreshToken;
    if (this.#scope !== undefined && this.#scope !== '') body.scope = this.#scope;
    if (this.#idToken !== undefined) body.id_token = this.#idToken;
    return body;
  }
}
