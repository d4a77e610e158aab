import { describeJoseError, verifyWithCandidates } from '../keys/verify-candidates.js';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, KeyInput } from 'jose';
import { StorageUnavailableError } from '../core/errors.js';
import { sha256 } from '../core/crypto.js';
import type { ClientAuthOptions } from './types.js';

/** The only `client_assertion_type` served (RFC 7523 §2.2). */
export const JWT_BEARER_CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Longest accepted `jti`, in characters. */
export const MAX_ASSERTION_JTI_LENGTH = 256;

/** HMAC algorithms: the `client_secret_jwt` family. */
export const HMAC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

/** What the shared assertion checks need from the client-authentication options. */
export type AssertionOptions = Pick<
  ClientAuthOptions,
  'storage' | 'issuer' | 'tokenEndpoint' | 'clock' | 'maxAssertionLifetime' | 'clockTolerance'
>;

/**
 * The `alg` of an (unverified) client assertion, used only to pick the method: `HS*` means
 * `client_secret_jwt`, anything else `private_key_jwt`. `undefined` when the JWS header cannot
 * be decoded or has no string `alg` (the caller answers invalid_client).
 */
export function assertionAlgorithm(assertion: string): string | undefined {
  try {
    const header = decodeProtectedHeader(assertion);
    return typeof header.alg === 'string' && header.alg !== '' ? header.alg : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `iss` of an UNVERIFIED assertion. Used ONLY to find which client to look up when the body has
 * no `client_id` (RFC 7523 §3: `iss` is the client id); nothing else of the unverified payload is
 * trusted. `undefined` for a malformed JWT or a missing / non-string `iss`.
 */
export function unverifiedAssertionIssuer(assertion: string): string | undefined {
  try {
    const { iss } = decodeJwt(assertion);
    return typeof iss === 'string' && iss !== '' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verify a client assertion (RFC 7523 §3, OIDC Core §9) with `key` restricted to `algorithms`, then
 * the claims ({@link assertionClaimsProblem}), then record its `jti` once so it cannot be replayed:
 * `storage.recordOnce('client_assertion:' + sha256(client_id + ' ' + jti), exp + tolerance, now)`.
 * The jti is recorded only after everything else passed, so a forged token cannot burn a jti.
 *
 * Returns a failure detail for logs, or `undefined` when the client is authenticated. Storage
 * outages propagate (they become 503, not a misleading invalid_client).
 */
export async function verifyClientAssertion(
  assertion: string,
  clientId: string,
  key: KeyInput | JWTVerifyGetKey,
  algorithms: readonly string[],
  options: AssertionOptions,
): Promise<string | undefined> {
  if (algorithms.length === 0) return 'no acceptable signing algorithm for this client';
  const now = options.clock();
  const verifyOptions: JWTVerifyOptions = {
    algorithms: [...algorithms],
    currentDate: new Date(now * 1000),
    clockTolerance: options.clockTolerance,
  };
  let payload: JWTPayload;
  try {
    payload = await verifyWithCandidates(assertion, key, verifyOptions);
  } catch (err) {
    if (err instanceof StorageUnavailableError) throw err;
    return `client assertion rejected: ${describeJoseError(err)}`;
  }
  const problem = assertionClaimsProblem(payload, clientId, options, now);
  if (problem !== undefined) return problem;

  const exp = Math.ceil(payload.exp as number);
  const replayKey = `client_assertion:${sha256(`${clientId} ${payload.jti as string}`)}`;
  const first = await options.storage.recordOnce(replayKey, exp + options.clockTolerance, now);
  return first ? undefined : 'client assertion replayed (jti already used)';
}

/**
 * The claim rules of a client assertion, or `undefined` when they hold:
 * - `iss` and `sub` are both exactly the client id;
 * - `aud` is the issuer or the token endpoint URL: a string, or an array of exactly one such string
 *   (an array naming other audiences too is refused: the assertion must be meant for us only);
 * - `exp` is required, not in the past (beyond the tolerance) and at most
 *   `maxAssertionLifetime + clockTolerance` seconds ahead;
 * - `nbf` and `iat`, when present, are numbers at most `clockTolerance` seconds in the future;
 * - `jti` is required: a non-empty string of at most {@link MAX_ASSERTION_JTI_LENGTH} characters.
 */
export function assertionClaimsProblem(
  payload: JWTPayload,
  clientId: string,
  options: Pick<AssertionOptions, 'issuer' | 'tokenEndpoint' | 'maxAssertionLifetime' | 'clockTolerance'>,
  now: number,
): string | undefined {
  const tolerance = options.clockTolerance;
  if (payload.iss !== clientId) return 'assertion iss is not the client_id';
  if (payload.sub !== clientId) return 'assertion sub is not the client_id';

  const accepted = [options.issuer, options.tokenEndpoint];
  const aud: unknown = payload.aud;
  const audOk =
    typeof aud === 'string'
      ? accepted.includes(aud)
      : Array.isArray(aud) && aud.length === 1 && typeof aud[0] === 'string' && accepted.includes(aud[0]);
  if (!audOk) return 'assertion aud must be the issuer or the token endpoint (one value)';

  const exp: unknown = payload.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'assertion has no numeric exp';
  if (exp <= now - tolerance) return 'assertion expired';
  if (exp > now + options.maxAssertionLifetime + tolerance) return 'assertion exp is too far in the future';

  for (const claim of ['nbf', 'iat'] as const) {
    const value: unknown = payload[claim];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) return `assertion ${claim} is not a number`;
    if (value > now + tolerance) return `assertion ${claim} is in the future`;
  }

  const jti: unknown = payload.jti;
  if (typeof jti !== 'string' || jti === '') return 'assertion has no jti';
  if (jti.length > MAX_ASSERTION_JTI_LENGTH) return 'assertion jti is too long';
  return undefined;
}


