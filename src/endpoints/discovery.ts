import { publicJson, type OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';
import { STANDARD_SCOPES, SUPPORTED_CLAIMS } from '../oidc/claims.js';
import { ACR_PASSWORD } from '../oidc/id-token.js';
import { DEVICE_CODE_GRANT_TYPE } from '../device/state.js';

/**
 * Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0),
 * generated from what is actually served: no grant, method or endpoint is listed unless it works.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export function buildMetadata(server: ServerContext): Record<string, unknown> {
  const methods = [...server.clientAuth.methods];
  const authenticated = methods.filter((m) => m !== 'none');
  const signingAlgs = [...new Set([...(methods.includes('private_key_jwt') ? server.clientAuth.assertionSigningAlgorithms : []), ...(methods.includes('client_secret_jwt') && server.clientAuth.sealer !== undefined ? ['HS256', 'HS384', 'HS512'] : [])])];
  const grantTypes = [...server.grantTypes()];
  const codeFlow = grantTypes.includes('authorization_code');
  const scopes = server.scopes.known === undefined ? undefined : [...new Set([...(codeFlow ? Object.keys(STANDARD_SCOPES) : []), ...server.scopes.known])];
  const meta: Record<string, unknown> = {
    issuer: server.issuer,
    ...(codeFlow ? { authorization_endpoint: server.endpoints.authorize } : {}),
    token_endpoint: server.endpoints.token,
    ...(grantTypes.includes(DEVICE_CODE_GRANT_TYPE) ? { device_authorization_endpoint: server.endpoints.device_authorization } : {}),
    jwks_uri: server.endpoints.jwks,
    revocation_endpoint: server.endpoints.revoke,
    introspection_endpoint: server.endpoints.introspect,
    grant_types_supported: grantTypes,
    response_types_supported: codeFlow ? ['code'] : [],
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
  if (codeFlow) {
    Object.assign(meta, {
      userinfo_endpoint: server.endpoints.userinfo,
      end_session_endpoint: server.endpoints.end_session,
      response_modes_supported: ['query', 'form_post'],
      code_challenge_methods_supported: server.pkce.allowPlain ? ['S256', 'plain'] : ['S256'],
      authorization_response_iss_parameter_supported: true,
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [...new Set([server.idTokenSigningAlgorithm, 'RS256', ...server.keys.algorithms()])],
      claims_supported: [...SUPPORTED_CLAIMS],
      claims_parameter_supported: true,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
      acr_values_supported: [ACR_PASSWORD],
    });
  }
  return meta;
}

export function discoveryEndpoint(metadataJson: string): OAuthResponse {
  const res = publicJson(undefined, 300);
  res.body = metadataJson;
  return res;
}
