import { authenticateClient, invalidClient } from '../client-auth/index.js';
import { OAuthError } from '../core/errors.js';
import { parseForm } from '../core/form.js';
import { noStoreJson, type OAuthRequest, type OAuthResponse } from '../core/http.js';
import type { ClientRecord } from '../storage/contract.js';
import type { ServerContext } from '../server-context.js';

const INACTIVE = { active: false } as const;

/**
 * Token introspection (RFC 7662). The caller must authenticate as a confidential client. A token
 * that is unknown, expired, revoked or forged is exactly `{"active":false}`; so is a live token the
 * caller may not see. Details go only to the client the token was issued to, or to a resource server
 * (a client with `resource_server_audiences`) named in the token's audience.
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 */
export async function introspectionEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const params = parseForm(req, server.maxBodyBytes);
  const { client, method } = await authenticateClient(req, params, server.clientAuth);
  if (method === 'none') throw invalidClient(server.clientAuth, `public client ${client.client_id} may not introspect`);
  const token = params.token;
  if (token === undefined) throw new OAuthError('invalid_request', 'Missing parameter: token');
  const lookups = params.token_type_hint === 'refresh_token' ? [refreshTokenClaims, accessTokenClaims] : [accessTokenClaims, refreshTokenClaims];
  for (const lookup of lookups) {
    const claims = await lookup(token, client, server);
    if (claims !== undefined) return noStoreJson(200, claims);
  }
  return noStoreJson(200, INACTIVE);
}

type Lookup = (token: string, caller: ClientRecord, server: ServerContext) => Promise<Record<string, unknown> | undefined>;

/** A live access token's claims, or `{active:false}` when the caller may not see it; undefined when it is not one. */
const accessTokenClaims: Lookup = async (token, caller, server) => {
  const info = await server.tokens.inspectAccessToken(token);
  if (info === undefined) return undefined;
  if (!maySee(caller, info.client_id, info.aud)) return INACTIVE;
  return {
    ...(info.extra ?? {}),
    active: true,
    iss: server.issuer,
    client_id: info.client_id,
    sub: info.sub,
    aud: info.aud,
    scope: info.scope,
    token_type: 'Bearer',
    iat: info.iat,
    exp: info.exp,
    ...(info.jti !== undefined ? { jti: info.jti } : {}),
  };
};

/** A live refresh token's claims, visible only to the client it was issued to. */
const refreshTokenClaims: Lookup = async (token, caller, server) => {
  const refresh = await server.tokens.inspectRefreshToken(token);
  if (refresh === undefined) return undefined;
  const { record } = refresh;
  if (record.client_id !== caller.client_id) return INACTIVE;
  return {
    active: true,
    iss: server.issuer,
    client_id: record.client_id,
    ...(record.user_id !== undefined ? { sub: record.user_id } : {}),
    scope: record.scope,
    token_type: 'refresh_token',
    iat: record.created_at,
    exp: record.expires_at,
  };
};

function maySee(caller: ClientRecord, tokenClient: string, aud: string | string[]): boolean {
  if (caller.client_id === tokenClient) return true;
  const audiences = caller.resource_server_audiences;
  if (audiences === undefined || audiences.length === 0) return false;
  const tokenAud = Array.isArray(aud) ? aud : [aud];
  return tokenAud.some((a) => audiences.includes(a));
}
