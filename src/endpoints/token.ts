import { authenticateClient } from '../client-auth/index.js';
import { OAuthError } from '../core/errors.js';
import { parseFormMulti } from '../core/form.js';
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
export async function tokenEndpoint(req: OAuthRequest, server: ServerContext, grants: ReadonlyMap<string, GrantHandler>): Promise<OAuthResponse> {
  const form = parseFormMulti(req, server.maxBodyBytes, MULTI_VALUED);
  const params = form.single;
  const grantType = params.grant_type;
  if (grantType === undefined) throw new OAuthError('invalid_request', 'Missing parameter: grant_type');
  const grant = grants.get(grantType);
  if (grant === undefined) throw new OAuthError('unsupported_grant_type', 'The grant type is not supported by this server');

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
