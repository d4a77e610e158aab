import { createHash, timingSafeEqual } from 'node:crypto';
import { OAuthError } from '../core/errors.js';
import { tokenId } from '../core/crypto.js';
import { PKCE_VALUE } from '../authorize/request.js';
import type { GrantContext, GrantHandler } from './grant.js';
import { grantedResources } from '../tokens/resource-indicators.js';
import { issueTokens, mayRefresh, resolveTokenResources } from './issue.js';

const INVALID = 'The authorization code is invalid, expired or already used';

/**
 * `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6, OAuth 2.1 §4.1.3). In order: the code exists
 * and is unexpired; it belongs to this client; `redirect_uri` equals the one of the authorization
 * request; PKCE verifies (and a verifier for a code issued without a challenge is a downgrade, refused);
 * only then is the code consumed atomically. A second redemption that passes every check revokes the
 * grant and every token issued from the code; a redemption that fails a check revokes nothing (so a
 * bad replay cannot be used to log a user out). `resource` (RFC 8707) may only name resources of the
 * authorization request (checked before the code is consumed); none means all of them.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.8
 */
export const authorizationCodeGrant: GrantHandler = {
  type: 'authorization_code',
  async handle(ctx: GrantContext) {
    const { server, client, params } = ctx;
    const code = params.code;
    if (code === undefined) throw new OAuthError('invalid_request', 'Missing parameter: code');
    const now = server.clock();
    const id = code.length <= 512 ? tokenId(code) : '';
    const record = id === '' ? undefined : await server.storage.findArtifact('authorization_code', id, now);
    if (record === undefined || record.grant_id === undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'unknown or expired code' });
    if (record.client_id !== client.client_id) throw new OAuthError('invalid_grant', INVALID, { detail: `code of ${record.client_id} presented by ${client.client_id}` });
    const data = record.data ?? {};
    const redirectUri = params.redirect_uri;
    if (data.redirect_uri_sent === true && redirectUri === undefined) throw new OAuthError('invalid_request', 'Missing parameter: redirect_uri');
    if (redirectUri !== undefined && redirectUri !== data.redirect_uri) throw new OAuthError('invalid_grant', 'The redirect_uri does not match the authorization request');

    const verifier = params.code_verifier;
    const challenge = typeof data.code_challenge === 'string' ? data.code_challenge : undefined;
    if (challenge === undefined) {
      if (verifier !== undefined) throw new OAuthError('invalid_grant', 'code_verifier was sent for a code issued without code_challenge');
    } else {
      if (verifier === undefined) throw new OAuthError('invalid_grant', 'Missing code_verifier');
      if (!PKCE_VALUE.test(verifier)) throw new OAuthError('invalid_grant', 'The code_verifier does not match the code_challenge');
      const computed = data.code_challenge_method === 'plain' ? verifier : createHash('sha256').update(verifier, 'ascii').digest('base64url');
      const a = Buffer.from(computed);
      const b = Buffer.from(challenge);
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw new OAuthError('invalid_grant', 'The code_verifier does not match the code_challenge');
    }

    const scope = record.scope === '' ? [] : record.scope.split(' ');
    const resources = resolveTokenResources(ctx, scope, grantedResources(data));

    // The grant is read before the code is consumed: of concurrent redemptions, the losers' reuse
    // detection revokes the grant, and the winner must not then read it back as revoked.
    const grant = await server.storage.getGrant(record.grant_id);
    if (grant === undefined || grant.revoked_at !== undefined || grant.user_id === undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'grant revoked' });

    const consumed = await server.storage.consumeArtifact('authorization_code', id, now);
    if (consumed.status === 'already_consumed') {
      await server.storage.revokeGrant(record.grant_id, now);
      server.logger.warn({ event: 'authorization_code.reuse_detected', client_id: client.client_id, grant_id: record.grant_id }, 'an authorization code was redeemed twice; its grant is revoked');
      throw new OAuthError('invalid_grant', INVALID, { detail: 'code reused; grant revoked' });
    }
    if (consumed.status === 'not_found' || consumed.record.revoked_at !== undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'code expired or revoked' });

    // OIDC requests get refresh tokens only with offline_access (OIDC Core §11); OAuth requests by registration.
    const refresh = mayRefresh(ctx, server.grantTypes()) && (!scope.includes('openid') || scope.includes('offline_access'));
    return issueTokens(ctx, { grantType: 'authorization_code', scope, userId: grant.user_id, grant, refreshToken: refresh, idToken: { includeNonce: true }, resources });
  },
  /**
   * Delegated mode: the code is the app's own (the core's authorization endpoint is not served), so
   * its lifecycle, redirect_uri binding and PKCE are the hook's to check (`code`, `code_verifier`,
   * `redirect_uri` are in the params). The core only requires `code`.
   */
  async handleDelegated(ctx: GrantContext) {
    if (ctx.params.code === undefined) throw new OAuthError('invalid_request', 'Missing parameter: code');
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    return issueTokens(ctx, { grantType: 'authorization_code', scope });
  },
};
