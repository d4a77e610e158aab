import { createLocalJWKSet, createRemoteJWKSet } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { ClientRecord } from '../storage/contract.js';
import { verifyClientAssertion } from './assertion.js';
import type { ClientAuthOptions } from './types.js';

/** Remote key sets are fetched with this timeout (ms). */
export const REMOTE_JWKS_TIMEOUT_MS = 3000;
/** After a fetch, an unknown `kid` does not trigger a refetch for this long (ms). */
export const REMOTE_JWKS_COOLDOWN_MS = 30_000;
/** A fetched key set is used for at most this long before it is fetched again (ms). */
export const REMOTE_JWKS_MAX_AGE_MS = 600_000;
const MAX_REMOTE_SETS = 1000;

/** One remote key set per (client_id, jwks_uri), so clients never share (or poison) a cache. */
const remoteSets = new Map<string, JWTVerifyGetKey>();

/** Whether `alg` is an asymmetric JWS algorithm name: never `none`, never HMAC. */
export function isAsymmetricAlgorithm(alg: string): boolean {
  return alg !== '' && alg.toLowerCase() !== 'none' && !/^HS\d+$/i.test(alg);
}

/**
 * The algorithms a `private_key_jwt` client may sign with: its registered
 * `token_endpoint_auth_signing_alg` when set (it must also be in `options.assertionSigningAlgorithms`,
 * else nothing is accepted), otherwise `options.assertionSigningAlgorithms`. `none` and HS* are
 * always removed.
 */
export function privateKeyJwtAlgorithms(
  client: ClientRecord,
  options: Pick<ClientAuthOptions, 'assertionSigningAlgorithms'>,
): readonly string[] {
  const served = options.assertionSigningAlgorithms.filter(isAsymmetricAlgorithm);
  const registered = client.token_endpoint_auth_signing_alg;
  if (registered === undefined) return served;
  return served.includes(registered) ? [registered] : [];
}

/**
 * `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): an asymmetric assertion verified with a key from
 * the client's REGISTERED key set only: `jwks` (a local set) or `jwks_uri` (https only, fetched with
 * a 3 s timeout, cached per client, unknown `kid` refetches at most every 30 s, no redirects).
 * Keys named by the token itself (`jwk`, `jku`, `x5u`, `x5c` headers) are never used: jose's key
 * set looks only at `alg` and `kid`.
 * Returns a failure detail for logs, or `undefined` when the client is authenticated.
 */
export async function verifyPrivateKeyJwt(
  assertion: string,
  client: ClientRecord,
  options: ClientAuthOptions,
): Promise<string | undefined> {
  let keys: JWTVerifyGetKey;
  if (client.jwks !== undefined) {
    try {
      keys = createLocalJWKSet(client.jwks as unknown as JSONWebKeySet);
    } catch {
      return 'registered jwks is not a valid JWK Set';
    }
  } else if (client.jwks_uri !== undefined) {
    const remote = remoteKeySet(client.client_id, client.jwks_uri);
    if (remote === undefined) return 'registered jwks_uri is not an https URL';
    keys = remote;
  } else {
    return 'client has neither jwks nor jwks_uri';
  }
  return verifyClientAssertion(assertion, client.client_id, keys, privateKeyJwtAlgorithms(client, options), options);
}

/** Forget every cached remote key set (tests; or after bulk client changes). */
export function clearRemoteJwksCache(): void {
  remoteSets.clear();
}

function remoteKeySet(clientId: string, uri: string): JWTVerifyGetKey | undefined {
  if (!URL.canParse(uri)) return undefined;
  const url = new URL(uri);
  if (url.protocol !== 'https:') return undefined;
  const cacheKey = `${clientId}\n${url.href}`;
  let set = remoteSets.get(cacheKey);
  if (set !== undefined) {
    // Keep the most recently used entries at the end (cheap LRU).
    remoteSets.delete(cacheKey);
  } else {
    set = createRemoteJWKSet(url, {
      timeoutDuration: REMOTE_JWKS_TIMEOUT_MS,
      cooldownDuration: REMOTE_JWKS_COOLDOWN_MS,
      cacheMaxAge: REMOTE_JWKS_MAX_AGE_MS,
    });
    if (remoteSets.size >= MAX_REMOTE_SETS) {
      const oldest = remoteSets.keys().next().value;
      if (oldest !== undefined) remoteSets.delete(oldest);
    }
  }
  remoteSets.set(cacheKey, set);
  return set;
}
