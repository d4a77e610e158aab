import type { ClientRecord } from '../storage/contract.js';
import { HMAC_ALGORITHMS, verifyClientAssertion } from './assertion.js';
import type { ClientAuthOptions } from './types.js';

const encoder = new TextEncoder();

/**
 * The HMAC algorithms a `client_secret_jwt` client may use: its registered
 * `token_endpoint_auth_signing_alg` when set (and HS*), else HS256, HS384 and HS512.
 */
export function clientSecretJwtAlgorithms(client: ClientRecord): readonly string[] {
  const registered = client.token_endpoint_auth_signing_alg;
  if (registered === undefined) return HMAC_ALGORITHMS;
  return HMAC_ALGORITHMS.includes(registered) ? [registered] : [];
}

/**
 * `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9): an HS256/384/512 assertion keyed with the
 * client secret, which is kept sealed at rest and opened with
 * `sealer.open(client_secret_encrypted, 'client_secret:' + client_id)`.
 * Returns a failure detail for logs, or `undefined` when the client is authenticated.
 */
export async function verifyClientSecretJwt(
  assertion: string,
  client: ClientRecord,
  options: ClientAuthOptions,
): Promise<string | undefined> {
  if (client.client_secret_encrypted === undefined) return 'client has no sealed secret for client_secret_jwt';
  if (options.sealer === undefined) {
    options.logger.error({ client_id: client.client_id }, 'client_secret_jwt client but no key-encryption secret is configured');
    return 'no key-encryption secret configured to open the client secret';
  }
  let secret: string;
  try {
    secret = options.sealer.open(client.client_secret_encrypted, `client_secret:${client.client_id}`);
  } catch {
    options.logger.error({ client_id: client.client_id }, 'the sealed client secret cannot be opened (wrong key-encryption secret?)');
    return 'sealed client secret cannot be opened';
  }
  return verifyClientAssertion(assertion, client.client_id, encoder.encode(secret), clientSecretJwtAlgorithms(client), options);
}
