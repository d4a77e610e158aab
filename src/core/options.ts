import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { OAuthError } from './errors.js';
import type { Storage, ClientRecord } from '../storage/contract.js';
import type { GrantHandler } from '../grants/grant.js';
import type { SigningAlgorithm } from '../keys/jwt-signer.js';
import type { PageRenderers } from '../interaction/pages.js';

/** Lifetimes in seconds. */
export interface TtlOptions {
  /** Access tokens. Default 3600. */
  accessToken: number;
  /** Refresh tokens: each one lives this long from issue (idle lifetime). Default 1,209,600 (14 days). */
  refreshToken: number;
  /** A grant (and so its refresh-token family) ends this long after it began, however often it is refreshed. Default 7,776,000 (90 days). */
  grant: number;
  /** Authorization codes. Default 60. */
  authorizationCode: number;
  /** ID tokens. Default 3600. */
  idToken: number;
  /** Device codes. Default 600. */
  deviceCode: number;
  /** Browser sign-in sessions of the hosted pages. Default 86,400 (one day). */
  session: number;
}

export const DEFAULT_TTL: Readonly<TtlOptions> = Object.freeze({
  accessToken: 3600,
  refreshToken: 14 * 24 * 3600,
  grant: 90 * 24 * 3600,
  authorizationCode: 60,
  idToken: 3600,
  deviceCode: 600,
  session: 86400,
});

/** Endpoint paths, relative to the issuer URL. */
export interface RouteOptions {
  token: string;
  authorize: string;
  revoke: string;
  introspect: string;
  jwks: string;
  userinfo: string;
  device_authorization: string;
  device: string;
  end_session: string;
  /** Hosted login and consent pages: `<interaction>/<id>`. */
  interaction: string;
}

export const DEFAULT_ROUTES: Readonly<RouteOptions> = Object.freeze({
  token: '/token',
  authorize: '/authorize',
  revoke: '/revoke',
  introspect: '/introspect',
  jwks: '/jwks',
  userinfo: '/userinfo',
  device_authorization: '/device_authorization',
  device: '/device',
  end_session: '/end_session',
  interaction: '/interaction',
});

/** Server-wide switches for the built-in grants. */
export interface GrantSwitches {
  /** Default true: the authorization endpoint, hosted login and consent, OpenID Connect. */
  authorization_code?: boolean;
  /** Default true. */
  client_credentials?: boolean;
  /** Default true. */
  refresh_token?: boolean;
  /** Resource owner password credentials (RFC 6749 §4.3). Default false: RFC 9700 §2.4 says not to use it. */
  password?: boolean;
}

/** Limits for the password grant's brute-force protection. */
export interface PasswordGrantOptions {
  /** Attempts per username per window before the user is locked for the rest of it. Default 5. */
  maxAttemptsPerUser: number;
  /** Failed attempts per client per window. Default 100. */
  maxFailuresPerClient: number;
  /** Window length in seconds. Default 900. */
  windowSeconds: number;
}

/** What the token endpoint is about to issue, given to {@link TokenHooks.beforeIssue}. */
export interface IssueContext {
  grantType: string;
  client: ClientRecord;
  /** End-user subject, when the grant has one. */
  userId?: string;
  scope: string[];
  /** The form parameters of the request. */
  params: Readonly<Record<string, string | undefined>>;
}

export interface IssueDecision {
  /** Claims to add to a JWT access token (or to an opaque token's introspection). Registered claims cannot be overridden. */
  accessTokenClaims?: Record<string, unknown>;
}

export interface TokenHooks {
  /**
   * Runs after every check has passed and before tokens are minted. Throw an {@link OAuthError}
   * to refuse; return claims to shape the token. It cannot weaken a check: it only runs for a request
   * the core already accepted.
   */
  beforeIssue?(ctx: IssueContext): Promise<IssueDecision | void> | IssueDecision | void;
}

export interface PortcullisOptions {
  /** The issuer identifier: an https URL (http only for loopback hosts or with allowInsecureIssuer). */
  issuer: string;
  storage: Storage;
  clock?: Clock;
  logger?: Logger;
  /** Secret used to encrypt signing keys (and client_secret_jwt secrets) at rest. At least 16 characters. */
  keyEncryptionSecret?: string;
  /** Algorithm of access tokens (and later ID tokens). Default ES256. */
  signingAlgorithm?: SigningAlgorithm;
  /** Seconds a new signing key is published before it signs. Default 600. */
  keyRotationDelay?: number;
  /** `jwt` (RFC 9068, default) or `opaque`. A client's `access_token_format` overrides it. */
  accessTokenFormat?: 'jwt' | 'opaque';
  /** `aud` of access tokens. Default: the issuer. */
  accessTokenAudience?: string;
  ttl?: Partial<TtlOptions>;
  /** Scopes the server knows: names, or name → description. When given, other scopes are refused. */
  scopes?: string[] | Record<string, string>;
  grants?: GrantSwitches;
  /** Extra grant types (custom grants), dispatched on their `type`. */
  customGrants?: GrantHandler[];
  routes?: Partial<RouteOptions>;
  /** Client authentication methods accepted. Default: all five. */
  clientAuthMethods?: TokenEndpointAuthMethod[];
  passwordGrant?: Partial<PasswordGrantOptions>;
  /** Maximum form body size in bytes. Default 65,536. */
  maxBodyBytes?: number;
  hooks?: TokenHooks;
  /** PKCE at the authorization endpoint. Default: required for every client, S256 only. */
  pkce?: {
    /** Require a code_challenge from confidential clients too. Default true (public clients always need one). */
    required?: boolean;
    /** Accept `code_challenge_method=plain`. Default false: RFC 9700 §2.1.1. The server warns loudly when on. */
    allowPlain?: boolean;
  };
  /** Replace any of the hosted pages (branding, or your own UI). */
  pages?: Partial<PageRenderers>;
  /** Name shown on the hosted pages. Default "Portcullis". */
  serviceName?: string;
  /**
   * Keys that sign cookies and CSRF tokens (first signs, all verify). Default: derived from
   * keyEncryptionSecret, else a random key generated once and kept in storage (shared by all instances).
   */
  cookieKeys?: string[];
  /** Algorithm of ID tokens for clients that registered no `id_token_signed_response_alg`. Default: signingAlgorithm. */
  idTokenSigningAlgorithm?: SigningAlgorithm;
  /** Throttling of the hosted login form. Defaults: 5 attempts per username, 30 per address, per 900 s. */
  loginThrottle?: Partial<{ maxAttemptsPerUser: number; maxAttemptsPerAddress: number; windowSeconds: number }>;
  /** Allow an http issuer on a non-loopback host (never in production). */
  allowInsecureIssuer?: boolean;
}

export type { OAuthError };
