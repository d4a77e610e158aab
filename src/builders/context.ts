/**
 * What a `generateToken(context, request)` handler receives, per flow. Every helper is always
 * present (never optional), bound to the server's issuer, keys, clock and this flow's TTL.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { OAuthRequest } from '../core/http.js';
import type { ClientAuthenticationMode, GenerateTokenContext } from '../core/options.js';
import type { ClientRecord } from '../storage/contract.js';
import type { OAuth2ErrorBody } from './errors.js';
import type { OAuth2TokenResponse, OAuth2TokenResponseBody } from './token-response.js';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code' as const;

/** Claims for {@link CreateJwtAccessToken}. `iss`, `exp`, `iat`, `jti`, `client_id` are always the server's. */
export interface JwtAccessTokenPayload {
  /** Delegated mode: the subject (default: the client id). Registry mode: must be the authenticated subject if given. */
  sub?: string;
  /** Default: the server's access-token audience (the issuer unless configured). */
  aud?: string | string[];
  /** Default: the request's scope. Registry mode: may only narrow it. */
  scope?: string | readonly string[];
  [claim: string]: unknown;
}

/** Claims for {@link CreateIdToken}. `iss`, `aud` (the client), `azp`, `iat`, `exp` are always the server's. */
export interface IdTokenPayload {
  /** Required in delegated mode; registry mode: the authenticated user (a different value is refused). */
  sub?: string;
  [claim: string]: unknown;
}

/** What {@link VerifyJwt} returns for a token that passed every check. */
export interface VerifiedJwtClaims {
  iss: string;
  sub?: string;
  aud: string | string[];
  exp: number;
  iat?: number;
  jti?: string;
  client_id?: string;
  scope?: string;
  [claim: string]: unknown;
}

export interface VerifyJwtOptions {
  /** Expected JOSE `typ` header. Default `at+jwt` (access tokens); `JWT` for ID tokens. */
  typ?: string;
  /** Accepted audience(s): `aud` must contain one. Default: the server's access-token audience. */
  audience?: string | readonly string[];
}

/**
 * Mint a JWT access token (RFC 9068, `typ: at+jwt`) with the server's keys: `exp = iat + ttl`
 * (this flow's TTL), `iss` the issuer, `client_id` the client, `jti` random; in registry mode also
 * the grant id, so revoking the grant revokes the token.
 */
export type CreateJwtAccessToken = (payload?: JwtAccessTokenPayload) => Promise<string>;
/** Mint an OIDC ID token (`typ: JWT`) with `exp = iat + ttl`; registry mode adds auth_time, nonce, acr, amr, sid from the grant. */
export type CreateIdToken = (payload?: IdTokenPayload) => Promise<string>;
/**
 * Verify a JWT signed by this server: signature (published keys only), `typ`, `iss` (the issuer),
 * `aud`, and `exp` (and `nbf`) against the server's clock. `undefined` when any check fails.
 */
export type VerifyJwt = <P extends Record<string, unknown> = Record<string, unknown>>(token: string, options?: VerifyJwtOptions) => Promise<(VerifiedJwtClaims & P) | undefined>;
/**
 * PKCE S256 (RFC 7636 §4.6): whether `codeVerifier` (43-128 unreserved characters) hashes to
 * `codeChallenge`, compared in constant time. `false` when either is missing. `plain` is not supported.
 */
export type VerifyCodeVerifier = (codeVerifier: string | undefined, codeChallenge: string | undefined) => boolean;
/**
 * A refresh token. Registry mode: one of the core's (stored hashed, rotated and reuse-detected by
 * the refresh_token grant; the client must be registered for refresh_token). Delegated mode: 256
 * random bits, base64url, that YOU store (hashed) and check in `refreshTokenRoute`.
 */
export type CreateRefreshToken = () => Promise<string>;

/** The helpers every context has. */
export interface TokenHelpers {
  createJwtAccessToken: CreateJwtAccessToken;
  createIdToken: CreateIdToken;
  verifyJwt: VerifyJwt;
  verifyCodeVerifier: VerifyCodeVerifier;
}

/** Fields shared by every flow's context. */
export interface TokenContextBase<G extends string> extends TokenHelpers {
  grantType: G;
  /** The client id: registry mode, of the authenticated client; delegated mode, as sent (check it). */
  clientId: string;
  /** Delegated mode: the secret as sent (HTTP Basic, form-decoded, or body). Registry mode: always undefined (the core checked it). */
  clientSecret: string | undefined;
  /** The flow's token lifetime in seconds (`setTokenTTL`; default 3600). */
  ttl: number;
  /** `Bearer`. */
  tokenType: string;
  /** Space-delimited scope: registry mode, the granted scope; delegated mode, the requested one (known scopes only). */
  scope: string | undefined;
  /** `registry` (the core authenticated the client) or `delegated` (no registered clients: you check `clientId`/`clientSecret`). */
  clientAuthentication: ClientAuthenticationMode;
  /** The client-authentication method the request used. */
  authMethod: TokenEndpointAuthMethod;
  /** Registry mode: the authenticated client's record. */
  client: ClientRecord | undefined;
  /** Registry mode: the end user the core authenticated (authorization code, device, refresh of those). */
  subject: string | undefined;
}

/** `authorization_code` (RFC 6749 §4.1.3). Registry mode: the core already checked the code, its client, redirect_uri and PKCE, and consumed it. */
export interface AuthorizationCodeTokenContext extends TokenContextBase<'authorization_code'> {
  code: string;
  codeVerifier: string | undefined;
  redirectUri: string | undefined;
  createRefreshToken: CreateRefreshToken;
}

/** `client_credentials` (RFC 6749 §4.4). */
export interface ClientCredentialsTokenContext extends TokenContextBase<'client_credentials'> {}

/** Device code polling (RFC 8628 §3.4). Registry mode: the core already checked the code, polling interval and approval, and consumed it. */
export interface DeviceCodeTokenContext extends TokenContextBase<typeof DEVICE_CODE_GRANT> {
  deviceCode: string;
  createRefreshToken: CreateRefreshToken;
}

/** `refresh_token` (RFC 6749 §6). Registry mode: the core already checked the token's client and scope, and rotated it. */
export interface RefreshTokenContext extends TokenContextBase<'refresh_token'> {
  refreshToken: string;
  createRefreshToken: CreateRefreshToken;
}

export type AnyTokenContext = AuthorizationCodeTokenContext | ClientCredentialsTokenContext | DeviceCodeTokenContext | RefreshTokenContext;

/** The request as the core sees it (method, path, query, lower-case headers, body, client address). */
export type TokenRequest = OAuthRequest;

/** What a handler returns: tokens, an error object, or `null` (→ 400 `invalid_request`). */
export type GenerateTokenResult = OAuth2TokenResponse | OAuth2TokenResponseBody | OAuth2ErrorBody | null;

export type GenerateTokenHandler<C> = (context: C, request: TokenRequest) => GenerateTokenResult | Promise<GenerateTokenResult>;

// ---------------------------------------------------------------------------------------------
// building contexts (internal)

/** What the helpers need from the running server. */
export interface HelperEnvironment {
  issuer: string;
  defaultAudience: string;
  clock: () => number;
  verify(token: string, typ: string): Record<string, unknown> | undefined;
}

const PKCE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

export const verifyCodeVerifier: VerifyCodeVerifier = (codeVerifier, codeChallenge) => {
  if (typeof codeVerifier !== 'string' || typeof codeChallenge !== 'string' || !PKCE_VERIFIER.test(codeVerifier)) return false;
  const computed = Buffer.from(createHash('sha256').update(codeVerifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(codeChallenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
};

function scopeTokens(scope: string | readonly string[] | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  return typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [...scope];
}

export function createVerifyJwt(env: HelperEnvironment): VerifyJwt {
  return async <P extends Record<string, unknown>>(token: string, options: VerifyJwtOptions = {}) => {
    if (typeof token !== 'string' || token === '') return undefined;
    const payload = env.verify(token, options.typ ?? 'at+jwt');
    if (payload === undefined) return undefined;
    const now = env.clock();
    if (payload.iss !== env.issuer) return undefined;
    if (typeof payload.exp !== 'number' || payload.exp <= now) return undefined;
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now)) return undefined;
    const accepted = options.audience === undefined ? [env.defaultAudience] : typeof options.audience === 'string' ? [options.audience] : [...options.audience];
    const aud = payload.aud;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.some((a) => typeof a === 'string' && accepted.includes(a))) return undefined;
    return payload as VerifiedJwtClaims & P;
  };
}

/** The context of one token request for a flow's handler. */
export function buildTokenContext(core: GenerateTokenContext, flowTtl: number, env: HelperEnvironment): AnyTokenContext {
  const delegated = core.clientAuthentication === 'delegated';
  const helpers: TokenHelpers = {
    async createJwtAccessToken(payload = {}) {
      const { sub, aud, scope, ...claims } = payload;
      const scopes = scopeTokens(scope);
      const issued = await core.mint.accessToken({
        ttl: flowTtl,
        claims,
        ...(sub !== undefined ? { subject: sub } : {}),
        ...(aud !== undefined ? { audience: aud } : {}),
        ...(scopes !== undefined ? { scope: scopes } : {}),
      });
      return issued.token;
    },
    async createIdToken(payload = {}) {
      const { sub, ...claims } = payload;
      return core.mint.idToken({ ttl: flowTtl, claims, ...(sub !== undefined ? { subject: sub } : {}) });
    },
    verifyJwt: createVerifyJwt(env),
    verifyCodeVerifier,
  };
  const createRefreshToken: CreateRefreshToken = delegated ? async () => randomBytes(32).toString('base64url') : () => core.mint.refreshToken();
  const scope = core.scope.length > 0 ? core.scope.join(' ') : undefined;
  const base = {
    ...helpers,
    clientId: core.client.client_id,
    clientSecret: delegated ? core.clientSecret : undefined,
    ttl: flowTtl,
    tokenType: 'Bearer',
    scope,
    clientAuthentication: core.clientAuthentication,
    authMethod: core.authMethod,
    client: delegated ? undefined : core.client,
    subject: delegated ? undefined : core.userId,
  };
  const params = core.params;
  switch (core.grantType) {
    case 'authorization_code':
      return { ...base, grantType: 'authorization_code', code: params.code ?? '', codeVerifier: params.code_verifier, redirectUri: params.redirect_uri, createRefreshToken };
    case 'client_credentials':
      return { ...base, grantType: 'client_credentials' };
    case DEVICE_CODE_GRANT:
      return { ...base, grantType: DEVICE_CODE_GRANT, deviceCode: params.device_code ?? '', createRefreshToken };
    case 'refresh_token':
      return { ...base, grantType: 'refresh_token', refreshToken: params.refresh_token ?? '', createRefreshToken };
    default:
      throw new TypeError(`no flow-builder context for grant type ${core.grantType}`);
  }
}
