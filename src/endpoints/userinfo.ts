import { OAuthError } from '../core/errors.js';
import { bodyText, parseUrlEncoded } from '../core/form.js';
import { noStoreJson, type OAuthRequest, type OAuthResponse } from '../core/http.js';
import { releasedClaims } from '../oidc/claims.js';
import type { ServerContext } from '../server-context.js';

/**
 * The OIDC UserInfo endpoint (OIDC Core §5.3) with RFC 6750 bearer rules: the token comes in the
 * `Authorization: Bearer` header or a form body (POST), never the query, and in exactly one place.
 * No token → 401 with a bare challenge; a bad one → 401 `invalid_token`; a token without `openid`
 * → 403 `insufficient_scope`. Only end-user access tokens are accepted.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 */
export async function userinfoEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const realm = `Bearer realm="${server.issuer.replace(/["\\]/g, '')}"`;
  const challenge = (status: number, error?: string, description?: string): OAuthResponse => {
    const header = error === undefined ? realm : `${realm}, error="${error}"${description !== undefined ? `, error_description="${description}"` : ''}`;
    return noStoreJson(status, error === undefined ? { error: 'invalid_token', error_description: 'No access token was sent' } : { error, error_description: description ?? error }, { 'www-authenticate': header });
  };
  if (req.method !== 'GET' && req.method !== 'POST') throw new OAuthError('invalid_request', 'The request must use GET or POST', { status: 405, headers: { allow: 'GET, POST' } });

  const header = req.headers.authorization;
  let headerToken: string | undefined;
  if (header !== undefined) {
    const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (match === null) return challenge(400, 'invalid_request', 'The Authorization header is not a Bearer token');
    headerToken = match[1];
  }
  let bodyToken: string | undefined;
  if (req.method === 'POST' && (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const body = bodyText(req);
    if (body.length > server.maxBodyBytes) return challenge(413, 'invalid_request', 'The request body is too large');
    try {
      bodyToken = parseUrlEncoded(body).single.access_token;
    } catch {
      return challenge(400, 'invalid_request', 'The request body is not valid form encoding');
    }
  }
  if (/(?:^|&)access_token=/.test(req.query)) return challenge(400, 'invalid_request', 'Access tokens are not accepted in the query string');
  if (headerToken !== undefined && bodyToken !== undefined) return challenge(400, 'invalid_request', 'Send the access token in one place only');
  const token = headerToken ?? bodyToken;
  if (token === undefined) return challenge(401);

  const info = await server.tokens.inspectAccessToken(token);
  if (info === undefined || info.grant_id === undefined || info.sub === info.client_id) return challenge(401, 'invalid_token', 'The access token is invalid, expired or revoked');
  // A token meant for another resource (RFC 8707 audience) is not a token for UserInfo.
  const audiences = Array.isArray(info.aud) ? info.aud : [info.aud];
  if (!audiences.includes(server.tokens.defaultAudience)) return challenge(401, 'invalid_token', 'The access token is not meant for this server');
  const scope = info.scope === '' ? [] : info.scope.split(' ');
  if (!scope.includes('openid')) return challenge(403, 'insufficient_scope', 'The access token lacks the openid scope');
  const user = await server.storage.getUser(info.sub);
  if (user === undefined) return challenge(401, 'invalid_token', 'The access token is invalid, expired or revoked');
  const grant = await server.storage.getGrant(info.grant_id);
  const requested = (grant?.data?.claims as { userinfo?: Record<string, unknown> } | undefined)?.userinfo;
  return noStoreJson(200, releasedClaims(user, scope, requested));
}
