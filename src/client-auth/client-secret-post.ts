import type { ClientRecord } from '../storage/contract.js';
import { checkClientSecret } from './client-secret-basic.js';

/**
 * `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the form body.
 * `client` is the registered client when it is known AND registered for `client_secret_post`
 * (`undefined` otherwise, so the constant-time comparison still runs against a dummy hash).
 * Returns a failure detail for logs, or `undefined` when the secret is right.
 */
export function verifyClientSecretPost(client: ClientRecord | undefined, secret: string): string | undefined {
  return checkClientSecret(client, secret);
}
