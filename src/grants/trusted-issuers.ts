/**
 * JWTs from other issuers that the server is configured to trust: the RFC 8693 `jwt` subject and
 * actor tokens of the token-exchange grant, and the RFC 7523 assertions of the JWT bearer grant.
 *
 * Rules (shared by both grants):
 * - the issuer is found by the token's `iss` (read before verification, used only to pick the
 *   issuer; nothing else of the unverified payload is trusted), then `iss` is compared exactly;
 * - keys come only from the issuer's CONFIGURED key set: `jwks` (inline) or `jwksUri` (fetched with
 *   a 3 s timeout, cached, an unknown `kid` refetches at most every 30 s). Keys named by the token
 *   itself (`jwk`, `jku`, `x5u`, `x5c` headers) are never used;
 * - the algorithm must be in the issuer's allow-list, which may hold asymmetric algorithms only:
 *   `none` and `HS*` are refused at start-up (an HMAC "signed" with a public key is never accepted).
 */
import { isLoopbackHost } from '../core/loopback.js';
import { describeJoseError, verifyWithCandidates } from '../keys/verify-candidates.js';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, KeyInput } from 'jose';
import { ConfigError, StorageUnavailableError } from '../core/errors.js';
import { REMOTE_JWKS_COOLDOWN_MS, REMOTE_JWKS_MAX_AGE_MS, REMOTE_JWKS_TIMEOUT_MS } from '../client-auth/private-key-jwt.js';

/** A JWT issuer the server trusts, as configured. */
export interface TrustedIssuerOptions {
  /** The issuer identifier: compared exactly with the token's `iss`. */
  issuer: string;
  /** Its public keys (a JWK Set). Give either `jwks` or `jwksUri`. */
  jwks?: { keys: Record<string, unknown>[] };
  /** Where its JWK Set is published: https (http only for loopback hosts). */
  jwksUri?: string;
  /** Accepted JWS algorithms, asymmetric only. Default `['RS256', 'ES256', 'PS256', 'EdDSA']`. */
  algorithms?: string[];
}

/** A trusted issuer ready to verify with: its key set is built (and cached) once at start-up. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly keys: JWTVerifyGetKey;
  readonly algorithms: readonly string[];
}

export const DEFAULT_TRUSTED_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'ES256', 'PS256', 'EdDSA']);

/** Asymmetric JWS algorithms a trusted issuer may use (RFC 7518 §3.1, RFC 8037). */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

/** Longest token accepted from another issuer, in characters. */
export const MAX_TRUSTED_JWT_LENGTH = 16 * 1024;

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/**
 * Validate the configured issuers and build their key sets (remote ones are fetched lazily, then
 * cached for the life of the server). `field` names the option in error messages; `reserved` are
 * issuers that may not be configured (our own: our tokens are verified with our own keys).
 * @throws ConfigError naming the field.
 */
export function buildTrustedIssuers(
  entries: readonly TrustedIssuerOptions[] | undefined,
  field: string,
  reserved: readonly string[] = [],
): ReadonlyMap<string, TrustedIssuer> {
  const out = new Map<string, TrustedIssuer>();
  if (entries === undefined) return out;
  if (!Array.isArray(entries)) throw new ConfigError(`${field} must be an array of { issuer, jwks | jwksUri, algorithms? }`);
  entries.forEach((entry, i) => {
    const where = `${field}[${i}]`;
    if (entry === null || typeof entry !== 'object') throw new ConfigError(`${where} must be an object { issuer, jwks | jwksUri, algorithms? }`);
    const { issuer, jwks, jwksUri, algorithms } = entry;
    if (typeof issuer !== 'string' || issuer === '') throw new ConfigError(`${where}.issuer must be a non-empty string`);
    if (reserved.includes(issuer)) throw new ConfigError(`${where}.issuer is this server's own issuer: its tokens are verified with its own keys, do not list it`);
    if (out.has(issuer)) throw new ConfigError(`${where}.issuer ${issuer} is listed twice`);
    if ((jwks === undefined) === (jwksUri === undefined)) throw new ConfigError(`${where}: give exactly one of jwks and jwksUri`);

    const algs = algorithms === undefined ? [...DEFAULT_TRUSTED_ALGORITHMS] : algorithms;
    if (!Array.isArray(algs) || algs.length === 0) throw new ConfigError(`${where}.algorithms must be a non-empty array`);
    for (const alg of algs) {
      if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg)) {
        throw new ConfigError(`${where}.algorithms: ${JSON.stringify(alg)} is not allowed; use asymmetric algorithms only (${ASYMMETRIC_ALGORITHMS.join(', ')})`);
      }
    }

    let keys: JWTVerifyGetKey;
    if (jwks !== undefined) {
      if (jwks === null || typeof jwks !== 'object' || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
        throw new ConfigError(`${where}.jwks must be a JWK Set { keys: [...] } with at least one key`);
      }
      (jwks.keys as unknown[]).forEach((key: unknown, k: number) => {
        if (key === null || typeof key !== 'object') throw new ConfigError(`${where}.jwks.keys[${k}] must be a JWK object`);
        if ((key as Record<string, unknown>).kty === 'oct') throw new ConfigError(`${where}.jwks.keys[${k}] is a symmetric key; only public keys are allowed`);
        for (const member of PRIVATE_JWK_MEMBERS) {
          if (member in (key as object)) throw new ConfigError(`${where}.jwks.keys[${k}] has the private member "${member}"; publish public keys only`);
        }
      });
      try {
        keys = createLocalJWKSet(jwks as unknown as JSONWebKeySet);
      } catch (err) {
        throw new ConfigError(`${where}.jwks is not a valid JWK Set: ${(err as Error).message}`);
      }
    } else {
      const url = typeof jwksUri === 'string' && URL.canParse(jwksUri) ? new URL(jwksUri) : undefined;
      if (url === undefined || !(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)))) {
        throw new ConfigError(`${where}.jwksUri must be an https URL (http only for loopback hosts)`);
      }
      keys = createRemoteJWKSet(url, {
        timeoutDuration: REMOTE_JWKS_TIMEOUT_MS,
        cooldownDuration: REMOTE_JWKS_COOLDOWN_MS,
        cacheMaxAge: REMOTE_JWKS_MAX_AGE_MS,
      });
    }
    out.set(issuer, Object.freeze({ issuer, keys, algorithms: Object.freeze([...algs]) }));
  });
  return out;
}

/**
 * The `iss` of an UNVERIFIED JWT, only to pick which issuer's keys verify it. `undefined` for
 * anything that is not a JWT with a string `iss`.
 */
export function unverifiedIssuer(token: string): string | undefined {
  if (token.length > MAX_TRUSTED_JWT_LENGTH) return undefined;
  try {
    const { iss } = decodeJwt(token);
    return typeof iss === 'string' && iss !== '' ? iss : undefined;
  } catch {
    return undefined;
  }
}

export type TrustedJwtResult = { ok: true; payload: JWTPayload } | { ok: false; detail: string };

/**
 * Verify a JWT of a trusted issuer: signature with the issuer's keys and algorithms, `iss` exact,
 * `exp` / `nbf` with `clockTolerance` (jose's checks; `exp` presence and the rest of the claims are
 * the caller's). Returns a failure detail for logs instead of throwing; storage outages propagate.
 */
export async function verifyTrustedJwt(token: string, trusted: TrustedIssuer, now: number, clockTolerance: number): Promise<TrustedJwtResult> {
  if (token.length > MAX_TRUSTED_JWT_LENGTH) return { ok: false, detail: 'token too long' };
  const options: JWTVerifyOptions = {
    algorithms: [...trusted.algorithms],
    issuer: trusted.issuer,
    currentDate: new Date(now * 1000),
    clockTolerance,
  };
  try {
    return { ok: true, payload: await verifyWithCandidates(token, trusted.keys, options) };
  } catch (err) {
    if (err instanceof StorageUnavailableError) throw err;
    return { ok: false, detail: `token of ${trusted.issuer} rejected: ${describeJoseError(err)}` };
  }
}



