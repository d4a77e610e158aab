import { publicJson, type OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';

/**
 * The JWKS (RFC 7517): public keys only, including keys published ahead of signing and retired keys
 * whose tokens may still be live. Cached by clients for five minutes.
 */
export function jwksEndpoint(server: ServerContext): OAuthResponse {
  const res = publicJson(undefined, 300, 'application/jwk-set+json; charset=utf-8');
  res.body = server.keys.jwksJson();
  return res;
}
