import { createHash } from 'node:crypto';
import type { SigningAlgorithm } from '../keys/jwt-signer.js';
import type { GrantRecord, UserRecord, ClientRecord } from '../storage/contract.js';
import type { ServerContext } from '../server-context.js';
import { releasedClaims } from './claims.js';

/** The authentication context class Portcullis reports for password sign-in. */
export const ACR_PASSWORD = 'urn:portcullis:acr:password';

/**
 * OIDC Core §3.3.2.11: left half of the SHA-256 of the token's ASCII bytes, base64url
 * (SHA-256 for ES256/RS256/PS256; Ed25519 uses SHA-512 per the OIDC EdDSA profile).
 */
export function tokenHash(token: string, alg: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256').update(token, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export interface IdTokenInput {
  client: ClientRecord;
  user: UserRecord;
  grant: GrantRecord;
  scope: readonly string[];
  accessToken: string;
  /** Include the nonce (code redemption yes; refresh: OIDC §12.2 says the nonce is not repeated). */
  includeNonce: boolean;
}

/**
 * Sign an ID token (OIDC Core §2): iss, sub, aud, exp, iat, auth_time, nonce, azp, acr, amr, sid,
 * at_hash, plus claims requested by name for the ID token through the `claims` parameter.
 */
export function createIdToken(server: ServerContext, input: IdTokenInput): string {
  const { client, user, grant } = input;
  const now = server.clock();
  const alg = (client.id_token_signed_response_alg ?? server.idTokenSigningAlgorithm) as SigningAlgorithm;
  const data = grant.data ?? {};
  const requested = (data.claims as { id_token?: Record<string, unknown> } | undefined)?.id_token;
  const extra = requested === undefined ? {} : releasedClaims(user, [], requested);
  const payload: Record<string, unknown> = {
    ...extra,
    iss: server.issuer,
    sub: user.id,
    aud: client.client_id,
    exp: now + server.ttl.idToken,
    iat: now,
    auth_time: grant.auth_time ?? grant.created_at,
    azp: client.client_id,
    acr: ACR_PASSWORD,
    amr: Array.isArray(data.amr) ? data.amr : ['pwd'],
    at_hash: tokenHash(input.accessToken, alg),
  };
  if (input.includeNonce && typeof data.nonce === 'string') payload.nonce = data.nonce;
  if (typeof data.sid === 'string') payload.sid = data.sid;
  return server.keys.sign(payload, 'JWT', alg);
}
