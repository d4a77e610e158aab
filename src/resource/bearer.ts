/**
 * The resource-server guard (RFC 6750): find the bearer token of a request in exactly one place,
 * verify it (a JWT access token per RFC 9068 against the issuer's keys, or an opaque token through
 * introspection per RFC 7662), check the scopes a route needs, and answer failures with the right
 * status and `WWW-Authenticate` challenge.
 * @see https://www.rfc-editor.org/rfc/rfc6750
 * @see https://www.rfc-editor.org/rfc/rfc9068
 * @module
 */
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey, type JSONWebKeySet } from 'jose';
import { ConfigError } from '../core/errors.js';
import type { OAuthResponse } from '../core/http.js';
import type { Portcullis } from '../portcullis-types.js';
import { Introspector, type IntrospectionOptions } from './introspection.js';

export type { IntrospectionOptions } from './introspection.js';

/** The error codes of RFC 6750 §3.1, plus `temporarily_unavailable` when the token could not be checked. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable';

/** What a handler learns about the verified access token. */
export interface VerifiedAccessToken {
  /** The subject: the end-user, or the client itself for client_credentials. */
  sub: string;
  /** The client the token was issued to (`client_id`, else `azp`). */
  client_id: string;
  /** Granted scopes. */
  scope: string[];
  /** Audiences of the token. */
  aud: string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** How it was verified: a signed JWT, or the issuer's introspection endpoint. */
  source: 'jwt' | 'introspection';
  /** Every claim of the JWT, or every member of the introspection response. */
  claims: Readonly<Record<string, unknown>>;
}

export interface BearerSuccess {
  ok: true;
  token: VerifiedAccessToken;
}

export interface BearerFailure {
  ok: false;
  /** 401 no or bad token; 403 missing scope; 400 malformed request; 503 the token could not be checked now. */
  status: 400 | 401 | 403 | 503;
  /** The RFC 6750 error code; absent for the bare challenge sent when the request carries no token. */
  error: BearerErrorCode | undefined;
  description: string | undefined;
  /** The `WWW-Authenticate` value to send. */
  wwwAuthenticate: string;
}

export type BearerResult = BearerSuccess | BearerFailure;

/** The parts of an HTTP request the guard reads. */
export interface BearerRequest {
  method: string;
  /** Header names in any case (a WHATWG `Headers` works too). */
  headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw query string (with or without `?`), or the framework's parsed query object. */
  query?: string | URLSearchParams | Readonly<Record<string, unknown>> | undefined;
  /**
   * A body the framework already read: text, bytes, or a parsed form object. Only a form body
   * (`application/x-www-form-urlencoded`) of a method other than GET/HEAD is searched for `access_token`.
   */
  body?: unknown;
}

/** Options of a verification beyond the guard's own (per route). */
export interface BearerCheck {
  /** Scopes this route needs, on top of the guard's `requiredScopes`. */
  requiredScopes?: readonly string[];
}

interface BearerOptionsBase {
  /** The audience (resource identifier) this resource server answers to: the token's `aud` must name one. */
  audience: string | readonly string[];
  /** Scopes every request must carry (all of them). */
  requiredScopes?: readonly string[];
  /** JWS algorithms accepted (default: the asymmetric ones; `none` and HMAC are never accepted). */
  algorithms?: readonly string[];
  /** Seconds of clock skew allowed on `exp`/`nbf` (default 15, at most 300). */
  clockTolerance?: number;
  /** `realm` of the challenges (default: the first audience). */
  realm?: string;
  /** Accept `access_token` in a form body (RFC 6750 §2.2; default true). The query string never is. */
  allowBodyToken?: boolean;
  /** Opaque tokens (and JWTs when no key source is given) are checked at the issuer's introspection endpoint. */
  introspection?: IntrospectionOptions;
  /** Remote JWKS: seconds before an unknown `kid` may trigger another fetch (default 30). */
  jwksCooldownSeconds?: number;
  /** Remote JWKS: seconds a fetched key set is used before it is refreshed (default 600). */
  jwksCacheMaxAgeSeconds?: number;
  /** Current time in seconds (tests). Default: the system clock. */
  clock?: () => number;
  /** Told why a token could not be checked (JWKS or introspection unreachable); never given the token. */
  onError?: (err: unknown) => void;
}

/**
 * Options of {@link createBearerVerifier} / {@link verifyBearer}. The keys come from a local
 * {@link Portcullis} (same process), or from a remote issuer's `jwks_uri`; either may be combined
 * with `introspection` for opaque tokens, or introspection may be the only source.
 */
export type BearerOptions = BearerOptionsBase &
  (
    | { /** A server in this process: its keys verify, its issuer is the default. */ portcullis: Portcullis; issuer?: string; jwksUri?: undefined }
    | { /** The remote issuer's JWKS (cached; refetched when a token names an unknown key). */ jwksUri: string | URL; issuer: string; portcullis?: undefined }
    | { issuer: string; introspection: IntrospectionOptions; portcullis?: undefined; jwksUri?: undefined }
  );

/** A compiled guard: keys and caches live here, so build it once and reuse it. */
export interface BearerVerifier {
  verify(request: BearerRequest, check?: BearerCheck): Promise<BearerResult>;
  /** The guard's realm (for challenges written by the adapters). */
  readonly realm: string;
}

/** The asymmetric JWS algorithms accepted by default. */
export const DEFAULT_BEARER_ALGORITHMS: readonly string[] = Object.freeze(['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519']);

const MAX_TOKEN_LENGTH = 8192;
/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const compiled = new WeakMap<object, BearerVerifier>();

/**
 * Verify the bearer token of a request. The options object is compiled once (keys, caches) and
 * remembered: pass the same object every time, or use {@link createBearerVerifier}.
 * @example
 * ```ts
 * const guard = { issuer: 'https://id.example.com', audience: 'https://api.example.com', jwksUri: 'https://id.example.com/jwks' };
 * const result = await verifyBearer({ method: req.method, headers: req.headers, query: req.url }, guard);
 * if (!result.ok) return deny(result.status, result.wwwAuthenticate);
 * ```
 */
export function verifyBearer(request: BearerRequest, options: BearerOptions, check?: BearerCheck): Promise<BearerResult> {
  let verifier = compiled.get(options);
  if (verifier === undefined) {
    verifier = createBearerVerifier(options);
    compiled.set(options, verifier);
  }
  return verifier.verify(request, check);
}

/** Accept either guard options or an already-built verifier (what the framework middlewares take). */
export function toBearerVerifier(options: BearerOptions | BearerVerifier): BearerVerifier {
  if (typeof (options as BearerVerifier).verify === 'function') return options as BearerVerifier;
  let verifier = compiled.get(options);
  if (verifier === undefined) {
    verifier = createBearerVerifier(options as BearerOptions);
    compiled.set(options, verifier);
  }
  return verifier;
}

/** Build a guard. Configuration mistakes throw a {@link ConfigError} here, not per request. */
export function createBearerVerifier(options: BearerOptions): BearerVerifier {
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) throw new ConfigError('bearer guard: audience is required (the identifier of this resource server)');
  const issuer = options.issuer ?? options.portcullis?.issuer;
  if (typeof issuer !== 'string' || issuer === '') throw new ConfigError('bearer guard: issuer is required (or pass a local portcullis)');
  if (options.portcullis === undefined && options.jwksUri === undefined && options.introspection === undefined) {
    throw new ConfigError('bearer guard: give a key source (portcullis or jwksUri) and/or introspection');
  }
  if (options.portcullis !== undefined && options.jwksUri !== undefined) throw new ConfigError('bearer guard: give portcullis or jwksUri, not both');
  const algorithms = [...(options.algorithms ?? DEFAULT_BEARER_ALGORITHMS)];
  if (algorithms.length === 0 || algorithms.some((a) => a === 'none' || /^HS/i.test(a))) throw new ConfigError('bearer guard: algorithms must be asymmetric JWS algorithms (never none or HS*)');
  const clockTolerance = options.clockTolerance ?? 15;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0 || clockTolerance > 300) throw new ConfigError('bearer guard: clockTolerance must be 0..300 seconds');
  const requiredScopes = [...(options.requiredScopes ?? [])];
  const realm = options.realm ?? audiences[0]!;
  const clock = options.clock ?? (() => Math.floor(Date.now() / 1000));
  const allowBodyToken = options.allowBodyToken !== false;

  let getKey: JWTVerifyGetKey | undefined;
  if (options.portcullis !== undefined) {
    const keys = options.portcullis.keys;
    let seen: JSONWebKeySet | undefined;
    let local: JWTVerifyGetKey | undefined;
    // The key manager recomputes its (frozen) JWKS when keys rotate: rebuild the local set then.
    getKey = (header, token) => {
      const jwks = keys.jwks() as unknown as JSONWebKeySet;
      if (jwks !== seen || local === undefined) {
        seen = jwks;
        local = createLocalJWKSet(jwks);
      }
      return local(header, token);
    };
  } else if (options.jwksUri !== undefined) {
    const cooldown = options.jwksCooldownSeconds ?? 30;
    const maxAge = options.jwksCacheMaxAgeSeconds ?? 600;
    if (!(cooldown >= 0) || !(maxAge > 0)) throw new ConfigError('bearer guard: jwksCooldownSeconds must be >= 0 and jwksCacheMaxAgeSeconds > 0');
    const url = new URL(options.jwksUri);
    getKey = createRemoteJWKSet(url, { cooldownDuration: Math.round(cooldown * 1000), cacheMaxAge: Math.round(maxAge * 1000), timeoutDuration: 5000 });
  }
  const introspector =
    options.introspection !== undefined
      ? new Introspector(options.introspection, { ...(options.portcullis !== undefined ? { portcullis: options.portcullis } : {}), clock })
      : undefined;

  const challenge = (status: BearerFailure['status'], error?: BearerErrorCode, description?: string, scope?: readonly string[]): BearerFailure => {
    const parts = [`realm=${quote(realm)}`];
    if (error !== undefined && error !== 'temporarily_unavailable') parts.push(`error=${quote(error)}`);
    if (description !== undefined && error !== undefined && error !== 'temporarily_unavailable') parts.push(`error_description=${quote(description)}`);
    if (scope !== undefined && scope.length > 0) parts.push(`scope=${quote(scope.join(' '))}`);
    return { ok: false, status, error, description, wwwAuthenticate: `Bearer ${parts.join(', ')}` };
  };
  const invalid = (description: string): BearerFailure => challenge(401, 'invalid_token', description);
  const unavailable = (err: unknown): BearerFailure => {
    options.onError?.(err);
    return challenge(503, 'temporarily_unavailable', 'The access token could not be checked; try again later');
  };

  async function verifyJwt(token: string, key: JWTVerifyGetKey): Promise<VerifiedAccessToken | BearerFailure> {
    const now = clock();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, {
        issuer,
        audience: audiences,
        typ: 'at+jwt',
        algorithms,
        clockTolerance,
        requiredClaims: ['exp', 'iat', 'sub'],
        currentDate: new Date(now * 1000),
      }));
    } catch (err) {
      return jwtFailure(err);
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : typeof payload.azp === 'string' ? payload.azp : undefined;
    if (clientId === undefined || typeof payload.sub !== 'string' || typeof payload.exp !== 'number') return invalid('The access token lacks a required claim');
    return { sub: payload.sub, client_id: clientId, scope: scopesOf(payload), aud: audienceOf(payload.aud), exp: payload.exp, source: 'jwt', claims: payload };
  }

  function jwtFailure(err: unknown): BearerFailure {
    if (err instanceof joseErrors.JWTExpired) return invalid('The access token expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      switch (err.claim) {
        case 'iss':
          return invalid('The access token was issued by another issuer');
        case 'aud':
          return invalid('The access token is not meant for this resource');
        case 'typ':
          return invalid('The token is not an access token (typ must be at+jwt)');
        case 'nbf':
          return invalid('The access token is not valid yet');
        default:
          return invalid('The access token lacks a required claim');
      }
    }
    if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalid('The access token is signed with an algorithm that is not allowed');
    if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return invalid('The access token was signed with an unknown key');
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('The access token signature is invalid');
    // The key set could not be fetched or read: not the token's fault.
    if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError) || err.code === 'ERR_JOSE_GENERIC') return unavailable(err);
    return invalid('The access token is malformed');
  }

  async function verifyOpaque(token: string, intro: Introspector): Promise<VerifiedAccessToken | BearerFailure> {
    let claims: Record<string, unknown> | undefined;
    try {
      claims = await intro.introspect(token);
    } catch (err) {
      return unavailable(err);
    }
    const now = clock();
    if (claims === undefined) return invalid('The access token is not active');
    if (typeof claims.token_type === 'string' && claims.token_type.toLowerCase() !== 'bearer') return invalid('The token is not an access token');
    if (claims.iss !== undefined && claims.iss !== issuer) return invalid('The access token was issued by another issuer');
    const aud = audienceOf(claims.aud);
    if (!aud.some((a) => audiences.includes(a))) return invalid('The access token is not meant for this resource');
    const exp = claims.exp;
    if (typeof exp !== 'number') return invalid('The access token lacks a required claim');
    if (exp + clockTolerance <= now) return invalid('The access token expired');
    const clientId = typeof claims.client_id === 'string' ? claims.client_id : undefined;
    if (clientId === undefined) return invalid('The access token lacks a required claim');
    const sub = typeof claims.sub === 'string' ? claims.sub : clientId;
    return { sub, client_id: clientId, scope: scopesOf(claims), aud, exp, source: 'introspection', claims };
  }

  return {
    realm,
    async verify(request, check) {
      const found = extractBearerToken(request, allowBodyToken);
      if (found.kind === 'none') return challenge(401);
      if (found.kind === 'malformed') return challenge(400, 'invalid_request', found.description);
      const token = found.token;
      if (token.length > MAX_TOKEN_LENGTH) return invalid('The access token is not valid');
      const jwtShaped = token.split('.').length === 3;
      let outcome: VerifiedAccessToken | BearerFailure;
      if (jwtShaped && getKey !== undefined) outcome = await verifyJwt(token, getKey);
      else if (introspector !== undefined) outcome = await verifyOpaque(token, introspector);
      else outcome = invalid('The access token is not valid');
      if ('ok' in outcome) return outcome;
      const needed = [...new Set([...requiredScopes, ...(check?.requiredScopes ?? [])])];
      const missing = needed.filter((s) => !outcome.scope.includes(s));
      if (missing.length > 0) return challenge(403, 'insufficient_scope', 'The access token lacks a required scope', needed);
      return { ok: true, token: outcome };
    },
  };
}

type Extracted = { kind: 'none' } | { kind: 'malformed'; description: string } | { kind: 'token'; token: string };

/**
 * Find the one bearer token of a request (RFC 6750 §2): the `Authorization: Bearer` header, or a
 * form-body `access_token`. A token in the query string, or in two places, is a malformed request.
 */
export function extractBearerToken(request: BearerRequest, allowBodyToken = true): Extracted {
  if (queryHasToken(request.query)) return { kind: 'malformed', description: 'Access tokens are not accepted in the query string' };
  let headerToken: string | undefined;
  const authorization = headerValue(request.headers, 'authorization');
  if (authorization !== undefined) {
    const m = /^Bearer(?:\s+(.*))?$/is.exec(authorization.trim());
    if (m !== null) {
      const value = (m[1] ?? '').trim();
      if (!B64TOKEN.test(value)) return { kind: 'malformed', description: 'The Authorization header is malformed' };
      headerToken = value;
    }
  }
  const method = request.method.toUpperCase();
  let bodyTokens: string[] = [];
  if (method !== 'GET' && method !== 'HEAD' && request.body !== undefined && request.body !== null) {
    const contentType = (headerValue(request.headers, 'content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (contentType === 'application/x-www-form-urlencoded') bodyTokens = bodyAccessTokens(request.body);
  }
  if (bodyTokens.length > 0 && !allowBodyToken) return { kind: 'malformed', description: 'Send the access token in the Authorization header' };
  if (bodyTokens.length > 1 || (bodyTokens.length === 1 && headerToken !== undefined)) {
    return { kind: 'malformed', description: 'The access token must be sent in exactly one place' };
  }
  const token = headerToken ?? bodyTokens[0];
  if (token === undefined) return { kind: 'none' };
  if (token === '' || !B64TOKEN.test(token)) return { kind: 'malformed', description: 'The access token is malformed' };
  return { kind: 'token', token };
}

/**
 * The response for a failed verification in the core's plain shape: status, `WWW-Authenticate`,
 * no-store, and an RFC 6750 JSON body (empty for the bare challenge).
 */
export function bearerErrorResponse(failure: BearerFailure): OAuthResponse {
  const headers: Record<string, string> = { 'www-authenticate': failure.wwwAuthenticate, 'cache-control': 'no-store', pragma: 'no-cache' };
  if (failure.status === 503) headers['retry-after'] = '5';
  if (failure.error === undefined) return { status: failure.status, headers, body: '' };
  headers['content-type'] = 'application/json; charset=utf-8';
  return { status: failure.status, headers, body: JSON.stringify({ error: failure.error, error_description: failure.description }) };
}

// ---------------------------------------------------------------------------------------------

/** The raw query string of a request target (`''` when it has none). */
export function queryOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? '' : target.slice(q + 1);
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`;
}

function headerValue(headers: BearerRequest['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).forEach === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === name) {
        value = record[key];
        break;
      }
    }
  }
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

function queryHasToken(query: BearerRequest['query']): boolean {
  if (query === undefined || query === null) return false;
  if (typeof query === 'string') {
    const q = query.indexOf('?');
    return new URLSearchParams(q === -1 ? query : query.slice(q + 1)).has('access_token');
  }
  if (query instanceof URLSearchParams) return query.has('access_token');
  return Object.prototype.hasOwnProperty.call(query, 'access_token');
}

function bodyAccessTokens(body: unknown): string[] {
  if (typeof body === 'string') return new URLSearchParams(body).getAll('access_token');
  if (body instanceof Uint8Array) return new URLSearchParams(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')).getAll('access_token');
  if (typeof body === 'object' && body !== null) {
    if (!Object.prototype.hasOwnProperty.call(body, 'access_token')) return [];
    const value = (body as Record<string, unknown>).access_token;
    const values = Array.isArray(value) ? value : [value];
    // A non-string value (an object from an "extended" parser) counts as a malformed token.
    return values.map((v) => (typeof v === 'string' ? v : ''));
  }
  return [];
}

function scopesOf(claims: Record<string, unknown>): string[] {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
  if (Array.isArray(claims.scp)) return claims.scp.filter((s): s is string => typeof s === 'string');
  return [];
}

function audienceOf(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}
