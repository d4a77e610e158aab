import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { OAuthError } from './errors.js';
import type { Storage, ClientRecord, GrantRecord } from '../storage/contract.js';
import type { GrantHandler, TokenResponseBody } from '../grants/grant.js';
import type { OAuthRequest } from './http.js';
import type { SigningAlgorithm } from '../keys/jwt-signer.js';
import type { PageRenderers } from '../interaction/pages.js';
import type { TokenExchangeOptions } from '../grants/token-exchange.js';
import type { JwtBearerOptions } from '../grants/jwt-bearer.js';

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

/**
 * Settings of one resource server, keyed by its resource URI (RFC 8707 `resource` value). Applied
 * when an access token is issued for that resource alone; a token for several resources gets the
 * server's defaults.
 */
export interface ResourceOptions {
  /** Format of its access tokens; wins over the client's `access_token_format` and the server default. */
  accessTokenFormat?: 'jwt' | 'opaque';
  /** Lifetime of its access tokens in seconds (default `ttl.accessToken`). */
  accessTokenTtl?: number;
  /** Algorithm of its JWT access tokens (default `signingAlgorithm`). A key is generated at start when missing. */
  signingAlgorithm?: SigningAlgorithm;
  /** Scopes meaningful for this resource: the access token's scope is narrowed to these. */
  scopes?: string[];
}

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
  /**
   * Device authorization grant (RFC 8628): the device authorization endpoint, the hosted verification
   * page and `urn:ietf:params:oauth:grant-type:device_code` at the token endpoint. Default: the value
   * of `authorization_code` (true), since users sign in on the same hosted pages.
   */
  device_code?: boolean;
  /** Token exchange (RFC 8693). Default false: a powerful grant; enable it explicitly (see docs/token-exchange.md). */
  token_exchange?: boolean;
  /** JWT bearer assertions as a grant (RFC 7523 §2.1). Default false; needs `jwtBearer.trustedIssuers`. */
  jwt_bearer?: boolean;
}

/**
 * The device flow (RFC 8628): the polling interval, and the throttling of user-code entry on the
 * verification page (RFC 8628 §5.1; the arithmetic is in docs/security.md). Every submission counts,
 * before the code is looked up; past a limit the page answers 429 without looking it up.
 */
export interface DeviceFlowOptions {
  /** Seconds a device must wait between polls (the `interval` it is told). Default 5. */
  interval: number;
  /** User-code submissions per browser (device-flow cookie) per window. Default 5. */
  maxCodeAttemptsPerBrowser: number;
  /** User-code submissions per source address per window. Default 20. */
  maxCodeAttemptsPerAddress: number;
  /** User-code submissions in total (all browsers and addresses) per window. Default 1000. */
  maxCodeAttemptsGlobal: number;
  /** Window length in seconds. Default 600. */
  windowSeconds: number;
}

export const DEFAULT_DEVICE_FLOW: Readonly<DeviceFlowOptions> = Object.freeze({
  interval: 5,
  maxCodeAttemptsPerBrowser: 5,
  maxCodeAttemptsPerAddress: 20,
  maxCodeAttemptsGlobal: 1000,
  windowSeconds: 600,
});

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
  /** The resources (RFC 8707) or audiences the access token is for; absent: the server's default audience. */
  resources?: string[];
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
  /**
   * Mint the token response yourself (the flow builders' `generateToken`). Runs in `issueTokens`
   * AFTER every check of the grant passed (client authenticated against the registry; the code found,
   * unexpired, bound to this client and redirect_uri, PKCE verified and consumed; the refresh token
   * consumed and rotated; …) and after `beforeIssue`, in place of the core's own minting.
   *
   * Return a token response (validated: `access_token`, `token_type`, integer `expires_in`, …; sent
   * with no-store), an error object `{ error, error_description? }` (sent with its status:
   * `invalid_client` → 401 with `WWW-Authenticate`), or `null` (→ `invalid_request`). A thrown
   * {@link OAuthError} is sent as is; anything else thrown → `server_error` with no internal text.
   * @see GenerateTokenContext
   */
  generateToken?(ctx: GenerateTokenContext): Promise<GenerateTokenResult> | GenerateTokenResult;
}

/**
 * Who authenticates clients at the token endpoint.
 * - `registry` (default): the core, against registered clients (hashed secrets, assertions, …).
 * - `delegated`: only for apps assembled by the flow builders (`portcullis/builders`) that register
 *   no client at all. The core extracts the credentials (exactly one method, malformed → 400, the
 *   method must be enabled) and hands them raw to `hooks.generateToken`, which must check them.
 *   Only the token endpoint, JWKS, discovery and health are served; the grants take the code,
 *   device code or refresh token as the app's own (the core never issued them). The server refuses
 *   to start in this mode when a client is registered in storage, and warns loudly when it starts.
 */
export type ClientAuthenticationMode = 'registry' | 'delegated';

/** What the core mints on request of {@link TokenHooks.generateToken}. */
export interface TokenMint {
  /**
   * An RFC 9068 JWT access token (`typ: at+jwt`) signed by the server's keys, with `exp = iat + ttl`.
   * In registry mode `subject` must be the subject the core proved (the grant's user, else the
   * client) and `scope` may only narrow the granted scope; registered claims in `claims` are ignored.
   */
  accessToken(input?: MintAccessTokenInput): Promise<{ token: string; expiresIn: number }>;
  /**
   * A refresh token of the grant (registry mode, a grant with a user, a client registered for
   * refresh_token): stored hashed, rotated and reuse-detected by the core's refresh_token grant.
   * Throws otherwise.
   */
  refreshToken(): Promise<string>;
  /**
   * An OIDC ID token (`typ: JWT`): iss, sub, aud (the client), azp, iat, exp (= iat + ttl); in registry
   * mode also auth_time, acr, amr, sid and (code redemption) nonce from the grant, and at_hash when
   * `accessToken` is given. In delegated mode `subject` is required.
   */
  idToken(input?: MintIdTokenInput): string;
  /** Exactly what the core would have minted without the hook. */
  defaultResponse(): Promise<TokenResponseBody>;
}

export interface MintAccessTokenInput {
  subject?: string;
  scope?: readonly string[];
  audience?: string | string[];
  /** Private claims; registered ones (iss, sub, aud, exp, iat, jti, client_id, scope, …) are ignored. */
  claims?: Record<string, unknown>;
  /** Lifetime in seconds (a positive whole number); default: the context's `accessTokenTtl`. */
  ttl?: number;
}

export interface MintIdTokenInput {
  subject?: string;
  claims?: Record<string, unknown>;
  /** The access token issued with it, for `at_hash`. */
  accessToken?: string;
  /** Lifetime in seconds; default `ttl.idToken`. */
  ttl?: number;
}

/** What {@link TokenHooks.generateToken} sees. */
export interface GenerateTokenContext {
  grantType: string;
  clientAuthentication: ClientAuthenticationMode;
  /**
   * Registry mode: the authenticated, registered client. Delegated mode: a transient record for the
   * `client_id` the request claims (NOT authenticated: check `clientSecret` yourself).
   */
  client: ClientRecord;
  authMethod: TokenEndpointAuthMethod;
  /** Delegated mode only: the client secret exactly as sent (HTTP Basic or body). Never set in registry mode. */
  clientSecret?: string;
  /** Registry mode: the scope the core resolved or granted. Delegated mode: the requested scope (known scopes only). */
  scope: string[];
  /** The end user of the grant (registry mode). */
  userId?: string;
  /** The grant the tokens belong to (registry mode, user grants). */
  grant?: GrantRecord;
  resources?: string[];
  /** The form parameters of the request. */
  params: Readonly<Record<string, string | undefined>>;
  request: OAuthRequest;
  /** The access-token lifetime the core would apply, seconds. */
  accessTokenTtl: number;
  mint: TokenMint;
}

/** An error the hook returns instead of tokens (RFC 6749 §5.2). */
export interface GenerateTokenError {
  error: string;
  error_description?: string;
  error_uri?: string;
}

export type GenerateTokenResult = TokenResponseBody | { toJSON(): unknown } | GenerateTokenError | null | undefined;

const delegationAllowed = new WeakSet<object>();

/**
 * @internal Mark an options object as assembled by the flow builders: the only options for which
 * `clientAuthentication: 'delegated'` is accepted. Not exported from the package entry points.
 */
export function allowDelegatedClientAuthentication<T extends object>(options: T): T {
  delegationAllowed.add(options);
  return options;
}

/** @internal Whether {@link allowDelegatedClientAuthentication} marked these options. */
export function isDelegationAllowed(options: object): boolean {
  return delegationAllowed.has(options);
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
  /** Per-resource settings (RFC 8707), keyed by resource URI. Which clients may use a resource is their `allowed_audiences`. */
  resources?: Record<string, ResourceOptions>;
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
  /** Token exchange (RFC 8693): trusted JWT issuers and the exchange policy. Used when `grants.token_exchange` is on. */
  tokenExchange?: TokenExchangeOptions;
  /** JWT bearer grant (RFC 7523): trusted assertion issuers and subject mapping. Used when `grants.jwt_bearer` is on. */
  jwtBearer?: JwtBearerOptions;
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
  /** Device flow: polling interval and user-code throttling (see {@link DeviceFlowOptions}). */
  deviceFlow?: Partial<DeviceFlowOptions>;
  /** Throttling of the hosted login form. Defaults: 5 attempts per username, 30 per address, per 900 s. */
  loginThrottle?: Partial<{ maxAttemptsPerUser: number; maxAttemptsPerAddress: number; windowSeconds: number }>;
  /** Allow an http issuer on a non-loopback host (never in production). */
  allowInsecureIssuer?: boolean;
  /**
   * Who authenticates clients at the token endpoint (see {@link ClientAuthenticationMode}). Default
   * `registry`. `delegated` is accepted only from the flow builders (`portcullis/builders`).
   */
  clientAuthentication?: ClientAuthenticationMode;
}

export type { OAuthError };
