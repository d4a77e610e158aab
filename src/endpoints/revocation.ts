import { authenticateClient } from '../client-auth/index.js';
import { tokenId } from '../core/crypto.js';
import { OAuthError } from '../core/errors.js';
import { parseForm } from '../core/form.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';

function ok(): OAuthResponse {
  return { status: 200, headers: { 'cache-control': 'no-store', pragma: 'no-cache' }, body: '' };
}

/**
 * Token revocation (RFC 7009). The client authenticates; only the client a token was issued to may
 * revoke it; an unknown token, or another client's, gets the same 200 (no oracle). Revoking a refresh
 * token revokes its whole grant. A storage failure is a 503, never a false 200.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2
 */
export async function revocationEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const params = parseForm(req, server.maxBodyBytes);
  const token = params.token;
  const { client } = await authenticateClient(req, params, server.clientAuth);
  if (token === undefined) throw new OAuthError('invalid_request', 'Missing parameter: token');
  const hint = params.token_type_hint;
  const now = server.clock();
  const order = hint === 'access_token' ? ['access_token', 'refresh_token'] : ['refresh_token', 'access_token'];
  for (const kind of order) {
    if (kind === 'refresh_token') {
      if (token.length > 1024) continue;
      const record = await server.storage.findArtifact('refresh_token', tokenId(token), now);
      if (record === undefined) continue;
      if (record.client_id === client.client_id && record.grant_id !== undefined) {
        await server.storage.revokeGrant(record.grant_id, now);
        server.logger.info({ event: 'grant.revoked', client_id: client.client_id, grant_id: record.grant_id }, 'refresh token revoked with its grant');
      }
      return ok();
    }
    const info = await server.tokens.inspectAccessToken(token);
    if (info === undefined) continue;
    if (info.client_id === client.client_id) {
      if (info.format === 'opaque') await server.storage.revokeArtifact('access_token', tokenId(token), now);
      else if (info.jti !== undefined) await server.tokens.revokeJwtAccessToken(info.jti, info.exp);
      server.logger.info({ event: 'access_token.revoked', client_id: client.client_id }, 'access token revoked');
    }
    return ok();
  }
  return ok();
}
