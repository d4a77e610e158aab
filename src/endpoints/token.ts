import { authenticateClient, delegatedClientCredentials } from '../client-auth/index.js';
import { OAuthError } from '../core/errors.js';
import { parseFormMulti, type FormParams } from '../core/form.js';
import type { ClientAuthenticationMode } from '../core/options.js';
import type { ClientRecord } from '../storage/contract.js';
import { noStoreJson, type OAuthRequest, type OAuthResponse } from '../core/http.js';
import type { GrantHandler } from '../grants/grant.js';
import type { ServerContext } from '../server-context.js';

/** Parameters that may repeat at the token endpoint (RFC 8707 `resource`, RFC 8693 `audience`). */
const MULTI_VALUED = ['resource', 'audience'] as const;

/**
 * The token endpoint (RFC 6749 §3.2), as an ordered list of checks:
 * parse the form → require grant_type → find the grant → authenticate the client → the client must be
 * registered for the grant → the grant validates, consumes its artifact and mints → no-store JSON.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2
 */
export async function tokenEndpoint(
  req: OAuthRequest,
  server: ServerContext,
  grants: ReadonlyMap<string, GrantHandler>,
  clientAuthentication: ClientAuthenticationMode = 'registry',
): Promise<OAuthResponse> {
  const form = parseFormMulti(req, server.maxBodyBytes, MULTI_VALUED);
  const params = form.single;
  const grantType = params.grant_type;
  if (grantType === undefined) throw new OAuthError('invalid_request', 'Missing parameter: grant_type');
  const grant = grants.get(grantType);
  if (grant === undefined) throw new OAuthError('unsupported_grant_type', 'The grant type is not supported by this server');
  if (clientAuthentication === 'delegated') return delegatedTokenRequest(req, server, grant, params, form.all);

  const { client, method } = await authenticateClient(req, params, server.clientAuth);
  if (!client.grant_types.includes(grantType)) {
    throw new OAuthError('unauthorized_client', 'The client is not registered for this grant type');
  }
  if (method === 'none' && grant.allowPublicClients === false) {
    throw new OAuthError('unauthorized_client', 'Public clients may not use this grant type');
  }
  const body = await grant.handle({ client, authMethod: method, params, multiParams: form.all, request: req, server });
  server.logger.info({ event: 'token.issued', client_id: client.client_id, grant_type: grantType }, 'token issued');
  return noStoreJson(200, body);
}

/**
 * Delegated client authentication (flow builders without registered clients): extract the
 * credentials (exactly one method, an enabled one; see `delegatedClientCredentials`), refuse public
 * clients for grants that need a confidential one, then the grant checks its own parameters and the
 * app's `generateToken` hook, which receives the raw credentials, decides.
 */
async function delegatedTokenRequest(
  req: OAuthRequest,
  server: ServerContext,
  grant: GrantHandler,
  params: FormParams,
  multiParams: Readonly<Record<string, readonly string[] | undefined>>,
): Promise<OAuthResponse> {
  if (grant.handleDelegated === undefined) throw new OAuthError('unsupported_grant_type', 'The grant type is not supported by this server');
  const presented = await delegatedClientCredentials(req, params, server.clientAuth);
  if (presented.method === 'none' && grant.allowPublicClients === false) {
    throw new OAuthError('unauthorized_client', 'Public clients may not use this grant type');
  }
  const now = server.clock();
  // A transient record of the claimed client: never stored, never authenticated by the core.
  const client: ClientRecord = {
    client_id: presented.clientId,
    redirect_uris: [],
    grant_types: [...server.grantTypes()],
    response_types: [],
    token_endpoint_auth_method: presented.method,
    created_at: now,
    updated_at: now,
  };
  const body = await grant.handleDelegated({
    client,
    authMethod: presented.method,
    params,
    multiParams,
    request: req,
    server,
    clientAuthentication: 'delegated',
    ...(presented.clientSecret !== undefined ? { clientSecret: presented.clientSecret } : {}),
  });
  server.logger.info({ event: 'token.issued', client_id: client.client_id, grant_type: grant.type, client_authentication: 'delegated' }, 'token issued');
  return noStoreJson(200, body);
}
