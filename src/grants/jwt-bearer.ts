/**
 * The JWT bearer authorization grant (RFC 7523 §2.1): a JWT signed by a trusted issuer asserts the
 * identity of an end user; the server maps its `sub` to one of its users and issues tokens for them.
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.1
 */
import type { JWTPayload } from 'jose';
import { sha256 } from '../core/crypto.js';
import { ConfigError, OAuthError } from '../core/errors.js';
import type { GrantContext, GrantHandler } from './grant.js';
import { issueTokens, mayRefresh, resolveTokenResources } from './issue.js';
import { buildTrustedIssuers, unverifiedIssuer, verifyTrustedJwt, type TrustedIssuerOptions } from './trusted-issuers.js';

export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Clock skew tolerated on `exp`, `nbf` and `iat`, seconds. */
export const JWT_BEARER_CLOCK_TOLERANCE = 15;
/** Default longest accepted `exp - now` of an assertion, seconds. */
export const DEFAULT_MAX_ASSERTION_LIFETIME = 3600;
/** Longest accepted `jti`, in characters. */
const MAX_JTI_LENGTH = 256;

const INVALID_ASSERTION = 'The assertion is invalid, expired or already used';

export interface JwtBearerOptions {
  /** Issuers whose assertions are accepted, with their keys. At least one when the grant is on. */
  trustedIssuers: TrustedIssuerOptions[];
  /**
   * Map a verified assertion to the id of one of your users (`undefined`: nobody, the request is
   * refused with invalid_grant). Default: the user whose id is `sub`, else the user whose username is `sub`.
   */
  mapSubject?(claims: JWTPayload, issuer: string): Promise<string | undefined> | string | undefined;
  /** Longest accepted `exp - now` of an assertion, seconds. Default 3600. */
  maxAssertionLifetime?: number;
}

/**
 * Build the grant. Per request, in order: `assertion` present (else invalid_request) → scope within
 * the client's (invalid_scope) → the issuer named by `iss` is trusted → signature with that issuer's
 * configured keys and algorithms → claims: `sub`; `aud` is our issuer or token endpoint (one value);
 * `exp` present, not past, at most `maxAssertionLifetime` ahead; `nbf` / `iat` not in the future (15 s
 * tolerance); `jti` present → `jti` recorded once per issuer until `exp` → the subject maps to an
 * existing user → a grant is created (so revocation works) and tokens are issued, with a refresh token
 * when the client is registered for refresh_token. Every assertion failure is the same invalid_grant;
 * the reason goes to the log.
 */
export function createJwtBearerGrant(options: JwtBearerOptions, ourIssuer: string): GrantHandler {
  if (options === null || typeof options !== 'object') throw new ConfigError('jwtBearer must be an object { trustedIssuers, mapSubject? }');
  const trusted = buildTrustedIssuers(options.trustedIssuers, 'jwtBearer.trustedIssuers', [ourIssuer]);
  if (trusted.size === 0) throw new ConfigError('jwtBearer.trustedIssuers: the jwt_bearer grant is on, so at least one trusted issuer is needed');
  const maxLifetime = options.maxAssertionLifetime ?? DEFAULT_MAX_ASSERTION_LIFETIME;
  if (!Number.isInteger(maxLifetime) || maxLifetime <= 0) throw new ConfigError('jwtBearer.maxAssertionLifetime must be a positive whole number of seconds');
  const mapSubject = options.mapSubject;
  if (mapSubject !== undefined && typeof mapSubject !== 'function') throw new ConfigError('jwtBearer.mapSubject must be a function');

  return {
    type: JWT_BEARER_GRANT_TYPE,
    allowPublicClients: true,
    async handle(ctx: GrantContext) {
      const { server, client, params } = ctx;
      const assertion = params.assertion;
      if (assertion === undefined) throw new OAuthError('invalid_request', 'Missing parameter: assertion');
      const scope = server.scopes.resolve(params.scope, client);
      // RFC 8707 targets are checked with the scope, before the assertion's jti is spent.
      const resources = resolveTokenResources(ctx, scope);
      const refuse: (detail: string) => never = (detail) => {
        throw new OAuthError('invalid_grant', INVALID_ASSERTION, { detail: `jwt-bearer: ${detail}` });
      };

      const iss = unverifiedIssuer(assertion);
      if (iss === undefined) refuse('not a JWT with an iss claim');
      const issuer = trusted.get(iss);
      if (issuer === undefined) refuse(`issuer ${JSON.stringify(iss)} is not trusted`);
      const now = server.clock();
      const verified = await verifyTrustedJwt(assertion, issuer, now, JWT_BEARER_CLOCK_TOLERANCE);
      if (!verified.ok) refuse(verified.detail);
      const claims = verified.payload;
      const problem = claimsProblem(claims, [server.issuer, server.endpoints.token], now, maxLifetime);
      if (problem !== undefined) refuse(problem);

      const exp = Math.ceil(claims.exp as number);
      const replayKey = `jwt_bearer_jti:${sha256(`${issuer.issuer} ${claims.jti as string}`)}`;
      if (!(await server.storage.recordOnce(replayKey, exp + JWT_BEARER_CLOCK_TOLERANCE, now))) refuse('assertion replayed (jti already used)');

      const userId = mapSubject !== undefined ? await mapSubject(claims, issuer.issuer) : await defaultMapping(ctx, claims.sub as string);
      const user = typeof userId === 'string' && userId !== '' ? await server.storage.getUser(userId) : undefined;
      if (user === undefined) refuse(`subject ${JSON.stringify(claims.sub)} of ${issuer.issuer} is not mapped to a user`);

      const grant = await server.tokens.createGrant({ client, grantType: JWT_BEARER_GRANT_TYPE, scope, userId: user.id, data: { assertion_iss: issuer.issuer, ...(resources.length > 0 ? { resources } : {}) } });
      server.logger.info({ event: 'jwt_bearer.accepted', client_id: client.client_id, iss: issuer.issuer, user_id: user.id }, 'JWT bearer assertion accepted');
      return issueTokens(ctx, {
        grantType: JWT_BEARER_GRANT_TYPE,
        scope,
        userId: user.id,
        grant,
        refreshToken: mayRefresh(ctx, server.grantTypes()),
        resources,
      });
    },
  };
}

/** The user whose id is `sub`, else the one whose username is `sub`. */
async function defaultMapping(ctx: GrantContext, sub: string): Promise<string | undefined> {
  const byId = await ctx.server.storage.getUser(sub);
  if (byId !== undefined) return byId.id;
  return (await ctx.server.storage.getUserByUsername(sub))?.id;
}

/** RFC 7523 §3 claim rules beyond what jose checked (signature, iss, exp/nbf when present). */
function claimsProblem(claims: JWTPayload, audiences: readonly string[], now: number, maxLifetime: number): string | undefined {
  const tolerance = JWT_BEARER_CLOCK_TOLERANCE;
  if (typeof claims.sub !== 'string' || claims.sub === '') return 'assertion has no sub';
  const aud: unknown = claims.aud;
  const audOk =
    typeof aud === 'string'
      ? audiences.includes(aud)
      : Array.isArray(aud) && aud.length === 1 && typeof aud[0] === 'string' && audiences.includes(aud[0]);
  if (!audOk) return 'assertion aud must be the issuer or the token endpoint (one value)';
  const exp: unknown = claims.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'assertion has no numeric exp';
  if (exp <= now - tolerance) return 'assertion expired';
  if (exp > now + maxLifetime + tolerance) return 'assertion exp is too far in the future';
  for (const claim of ['nbf', 'iat'] as const) {
    const value: unknown = claims[claim];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) return `assertion ${claim} is not a number`;
    if (value > now + tolerance) return `assertion ${claim} is in the future`;
  }
  const jti: unknown = claims.jti;
  if (typeof jti !== 'string' || jti === '') return 'assertion has no jti';
  if (jti.length > MAX_JTI_LENGTH) return 'assertion jti is too long';
  return undefined;
}
