import { publicJson, type OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';

/**
 * Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0),
 * generated from what is actually served: no grant, method or endpoint is listed unless it works.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export function buildMetadata(server: ServerContext): Record<string, unknown> {
  const methods = [...server.clientAuth.methods];
  const authenticated = methods.filter((m) => m !== 'none');
  const signingAlgs = [...new Set([...(methods.includes('private_key_jwt') ? server.clientAuth.assertionSigningAlgorithms : []), ...(methods.includes('client_secret_jwt') && server.clientAuth.sealer !== undefined ? ['HS256', 'HS384', 'HS512'] : [])])];
  const scopes = server.scopes.known === undefined ? undefined : [...server.scopes.known];
  const grantTypes = [...server.grantTypes()];
  const meta: Record<string, unknown> = {
    issuer: server.issuer,
    token_endpoint: server.endpoints.token,
    jwks_uri: server.endpoints.jwks,
    revocation_endpoint: server.endpoints.revoke,
    introspection_endpoint: server.endpoints.introspect,
    grant_types_supported: grantTypes,
    // No authorization endpoint is served yet, so no response type is supported.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: methods,
    revocation_endpoint_auth_methods_supported: methods,
    introspection_endpoint_auth_methods_supported: authenticated,
  };
  if (signingAlgs.length > 0) {
    meta.token_endpoint_auth_signing_alg_values_supported = signingAlgs;
    meta.revocation_endpoint_auth_signing_alg_values_supported = signingAlgs;
    meta.introspection_endpoint_auth_signing_alg_values_supported = signingAlgs;
  }
  if (scopes !== undefined) meta.scopes_supported = scopes;
  return meta;
}

export function discoveryEndpoint(metadataJson: string): OAuthResponse {
  const res = publicJson(undefined, 300);
  res.body = metadataJson;
  return res;
}
