import type { Clock } from '../core/clock.js';
import { randomToken, stampedToken, tokenId, uuidv7 } from '../core/crypto.js';
import { OAuthError } from '../core/errors.js';
import type { KeyManager } from '../keys/key-manager.js';
import type { SigningAlgorithm } from '../keys/jwt-signer.js';
import type { ArtifactRecord, ClientRecord, GrantRecord, Storage } from '../storage/contract.js';
import type { ResourceOptions, TtlOptions } from '../core/options.js';

export interface AccessTokenInput {
  client: ClientRecord;
  /** End-user subject; the client id is the subject when absent (client_credentials). */
  userId?: string;
  scope: readonly string[];
  grantId?: string;
  /**
   * Overrides the server's default audience. When it names exactly one resource of the server's
   * `resources` option, that resource's format, lifetime and algorithm apply (explicit fields below win).
   */
  audience?: string | string[];
  /** Claims added by the app's hook; registered claims are never overridden. */
  extraClaims?: Record<string, unknown>;
  /** Lifetime in seconds; default: the resource's `accessTokenTtl`, else ttl.accessToken. */
  ttl?: number;
  /** Token format; default: the resource's, else the client's, else the server's. */
  format?: 'jwt' | 'opaque';
  /** Algorithm of a JWT token; default: the resource's, else the server's. A key must exist for it. */
  signingAlgorithm?: SigningAlgorithm;
}

export interface IssuedAccessToken {
  token: string;
  expiresIn: number;
  format: 'jwt' | 'opaque';
}

/** What introspection and resource checks learn about a live access token. */
export interface AccessTokenInfo {
  format: 'jwt' | 'opaque';
  client_id: string;
  sub: string;
  scope: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti?: string;
  grant_id?: string;
  extra?: Record<string, unknown>;
}

export interface RefreshTokenInfo {
  record: ArtifactRecord;
  grant: GrantRecord;
}

/** Registered claims a hook cannot set. */
const PROTECTED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'gid', 'cnf', 'typ']);

/** The private claim that ties a JWT access token to its grant, so revoking the grant deactivates it. */
export const GRANT_CLAIM = 'gid';

export interface TokenServiceOptions {
  issuer: string;
  storage: Storage;
  keys: KeyManager;
  clock: Clock;
  ttl: TtlOptions;
  accessTokenFormat: 'jwt' | 'opaque';
  accessTokenAudience: string;
  /** Per-resource settings (RFC 8707), keyed by resource URI. */
  resources?: ReadonlyMap<string, Readonly<ResourceOptions>>;
}

/** Mints and inspects access tokens (RFC 9068 JWT or opaque), refresh tokens and grants. */
export class TokenService {
  readonly #o: TokenServiceOptions;

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  formatFor(client: ClientRecord): 'jwt' | 'opaque' {
    return client.access_token_format ?? this.#o.accessTokenFormat;
  }

  /** `aud` of access tokens issued without a resource or audience. */
  get defaultAudience(): string {
    return this.#o.accessTokenAudience;
  }

  /** The settings of the resource an audience names, when it names exactly one configured resource. */
  resourceSettings(audience: string | readonly string[] | undefined): Readonly<ResourceOptions> | undefined {
    const resources = this.#o.resources;
    if (audience === undefined || resources === undefined || resources.size === 0) return undefined;
    const single = typeof audience === 'string' ? audience : audience.length === 1 ? audience[0] : undefined;
    return single === undefined ? undefined : resources.get(single);
  }

  /**
   * The scope of an access token for `audience`: narrowed to the resource's `scopes` when it names
   * one configured resource that has them. A non-empty scope narrowed to nothing → `invalid_scope`.
   */
  accessScope(scope: readonly string[], audience: string | readonly string[] | undefined): string[] {
    const meaningful = this.resourceSettings(audience)?.scopes;
    if (meaningful === undefined) return [...scope];
    const narrowed = scope.filter((s) => meaningful.includes(s));
    if (narrowed.length === 0 && scope.length > 0) {
      throw new OAuthError('invalid_scope', 'None of the requested scopes applies to the requested resource');
    }
    return narrowed;
  }

  /**
   * Mint an access token. JWT tokens follow RFC 9068 (`typ: at+jwt`); opaque ones are a time stamp
   * and 256 random bits, stored under their hash ({@link tokenId}). `expiresIn` is always the real lifetime.
   * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2
   */
  async issueAccessToken(input: AccessTokenInput): Promise<IssuedAccessToken> {
    const now = this.#o.clock();
    const settings = this.resourceSettings(input.audience);
    const ttl = input.ttl ?? settings?.accessTokenTtl ?? this.#o.ttl.accessToken;
    const aud = input.audience === undefined || input.audience.length === 0 ? this.#o.accessTokenAudience : input.audience;
    const format = input.format ?? settings?.accessTokenFormat ?? this.formatFor(input.client);
    const algorithm = input.signingAlgorithm ?? settings?.signingAlgorithm;
    const sub = input.userId ?? input.client.client_id;
    const scope = input.scope.join(' ');
    const extra = filterClaims(input.extraClaims);
    if (format === 'opaque') {
      const token = stampedToken();
      const record: ArtifactRecord = {
        kind: 'access_token',
        id: tokenId(token),
        client_id: input.client.client_id,
        scope,
        created_at: now,
        expires_at: now + ttl,
        data: extra === undefined ? { aud } : { aud, extra },
      };
      if (input.grantId !== undefined) record.grant_id = input.grantId;
      if (input.userId !== undefined) record.user_id = input.userId;
      await this.#o.storage.saveArtifact(record);
      return { token, expiresIn: ttl, format: 'opaque' };
    }
    const payload: Record<string, unknown> = {
      iss: this.#o.issuer,
      sub,
      aud,
      exp: now + ttl,
      iat: now,
      jti: randomToken(16),
      client_id: input.client.client_id,
    };
    if (scope !== '') payload.scope = scope;
    if (input.grantId !== undefined) payload[GRANT_CLAIM] = input.grantId;
    if (extra !== undefined) Object.assign(payload, extra);
    return { token: this.#o.keys.sign(payload, 'at+jwt', algorithm), expiresIn: ttl, format: 'jwt' };
  }

  /** Start a grant: every token issued under it shares its id, and revoking it revokes them all. */
  async createGrant(input: {
    client: ClientRecord;
    grantType: string;
    scope: readonly string[];
    userId?: string;
    authTime?: number;
    data?: Record<string, unknown>;
  }): Promise<GrantRecord> {
    const now = this.#o.clock();
    const grant: GrantRecord = {
      id: uuidv7(),
      client_id: input.client.client_id,
      scope: input.scope.join(' '),
      grant_type: input.grantType,
      created_at: now,
      expires_at: now + this.#o.ttl.grant,
    };
    if (input.userId !== undefined) grant.user_id = input.userId;
    if (input.authTime !== undefined) grant.auth_time = input.authTime;
    if (input.data !== undefined) grant.data = input.data;
    await this.#o.storage.createGrant(grant);
    return grant;
  }

  /** Mint a refresh token of the grant: a stamped token (a time stamp and 256 random bits), stored hashed, never outliving the grant. */
  async issueRefreshToken(grant: GrantRecord): Promise<string> {
    const now = this.#o.clock();
    const token = stampedToken();
    const record: ArtifactRecord = {
      kind: 'refresh_token',
      id: tokenId(token),
      grant_id: grant.id,
      client_id: grant.client_id,
      scope: grant.scope,
      created_at: now,
      expires_at: Math.min(now + this.#o.ttl.refreshToken, grant.expires_at),
    };
    if (grant.user_id !== undefined) record.user_id = grant.user_id;
    await this.#o.storage.saveArtifact(record);
    return token;
  }

  /** A live access token's facts, or undefined when it is unknown, forged, expired or revoked. */
  async inspectAccessToken(token: string): Promise<AccessTokenInfo | undefined> {
    if (token.length > 8192) return undefined;
    const now = this.#o.clock();
    if (token.split('.').length === 3) {
      const payload = this.#o.keys.verify(token, 'at+jwt');
      if (payload === undefined || payload.iss !== this.#o.issuer) return undefined;
      const { exp, iat, jti, client_id: clientId, sub } = payload;
      if (typeof exp !== 'number' || exp <= now || typeof iat !== 'number' || typeof clientId !== 'string' || typeof sub !== 'string') return undefined;
      if (typeof jti === 'string' && (await this.#o.storage.hasRecord(revokedJtiKey(jti), now))) return undefined;
      const grantId = payload[GRANT_CLAIM];
      if (typeof grantId === 'string') {
        const grant = await this.#o.storage.getGrant(grantId);
        if (grant === undefined || grant.revoked_at !== undefined) return undefined;
      }
      const extra: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(payload)) if (!PROTECTED_CLAIMS.has(k)) extra[k] = v;
      const info: AccessTokenInfo = {
        format: 'jwt',
        client_id: clientId,
        sub,
        scope: typeof payload.scope === 'string' ? payload.scope : '',
        aud: payload.aud as string | string[],
        iat,
        exp,
      };
      if (typeof jti === 'string') info.jti = jti;
      if (typeof grantId === 'string') info.grant_id = grantId;
      if (Object.keys(extra).length > 0) info.extra = extra;
      return info;
    }
    const record = await this.#o.storage.findArtifact('access_token', tokenId(token), now);
    if (record === undefined || record.revoked_at !== undefined) return undefined;
    const data = record.data ?? {};
    const info: AccessTokenInfo = {
      format: 'opaque',
      client_id: record.client_id,
      sub: record.user_id ?? record.client_id,
      scope: record.scope,
      aud: (data.aud as string | string[] | undefined) ?? this.#o.accessTokenAudience,
      iat: record.created_at,
      exp: record.expires_at,
    };
    if (record.grant_id !== undefined) info.grant_id = record.grant_id;
    if (data.extra !== undefined) info.extra = data.extra as Record<string, unknown>;
    return info;
  }

  /** A live refresh token and its live grant, or undefined. Does not consume it. */
  async inspectRefreshToken(token: string): Promise<RefreshTokenInfo | undefined> {
    if (token.length > 1024) return undefined;
    const now = this.#o.clock();
    const record = await this.#o.storage.findArtifact('refresh_token', tokenId(token), now);
    if (record === undefined || record.revoked_at !== undefined || record.consumed_at !== undefined || record.grant_id === undefined) return undefined;
    const grant = await this.#o.storage.getGrant(record.grant_id);
    if (grant === undefined || grant.revoked_at !== undefined || grant.expires_at <= now) return undefined;
    return { record, grant };
  }

  /** Revoke a JWT access token by its jti until it expires. */
  async revokeJwtAccessToken(jti: string, exp: number): Promise<void> {
    await this.#o.storage.recordOnce(revokedJtiKey(jti), exp, this.#o.clock());
  }
}

function revokedJtiKey(jti: string): string {
  return `revoked_at_jti:${jti}`;
}

function filterClaims(claims: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (claims === undefined) return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(claims)) {
    if (PROTECTED_CLAIMS.has(k) || v === undefined) continue;
    out[k] = v;
    any = true;
  }
  return any ? out : undefined;
}
