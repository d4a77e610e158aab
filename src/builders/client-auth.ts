/**
 * Client authentication methods a flow accepts at the token endpoint, added with
 * `addClientAuthenticationMethod(new ClientSecretBasic())`. They only name the method: the core does
 * the work (registry mode: the client's registered method, hashed secret in constant time, assertion
 * checks with `jti` replay protection; delegated mode: exactly one method per request, raw
 * credentials to your handler). A flow that adds none accepts `client_secret_basic`.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 */
import type { TokenEndpointAuthMethod } from '../clients/metadata.js';

/** `Authorization: Basic base64(form-encode(client_id):form-encode(client_secret))` (RFC 6749 §2.3.1). */
export class ClientSecretBasic {
  readonly method = 'client_secret_basic' as const;
}

/** `client_id` and `client_secret` in the form body (RFC 6749 §2.3.1). */
export class ClientSecretPost {
  readonly method = 'client_secret_post' as const;
}

/**
 * An HMAC-signed client assertion (RFC 7523 §2.2, OIDC Core §9). Registry mode only: the secret is
 * kept sealed in the registry (set a key-encryption secret).
 */
export class ClientSecretJwt {
  readonly method = 'client_secret_jwt' as const;
}

/** A client assertion signed with the client's private key (RFC 7523 §2.2). Registry mode only: keys come from the client's `jwks`/`jwks_uri`. */
export class PrivateKeyJwt {
  readonly method = 'private_key_jwt' as const;
}

/** Public clients: `client_id` alone (PKCE protects the code). */
export class NoneAuthMethod {
  readonly method = 'none' as const;
}

export type ClientAuthMethod = ClientSecretBasic | ClientSecretPost | ClientSecretJwt | PrivateKeyJwt | NoneAuthMethod;
/** The methods a client-credentials flow accepts: public clients cannot use it (RFC 6749 §4.4). */
export type ConfidentialClientAuthMethod = Exclude<ClientAuthMethod, NoneAuthMethod>;

export type { TokenEndpointAuthMethod };

/** Metadata order: the way discovery lists them. */
export const METHOD_ORDER: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'];

export function sortMethods(methods: Iterable<TokenEndpointAuthMethod>): TokenEndpointAuthMethod[] {
  const set = new Set(methods);
  return METHOD_ORDER.filter((m) => set.has(m));
}
