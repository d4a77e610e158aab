import { OAuthError } from '../core/errors.js';
import { tokenId } from '../core/crypto.js';
import { difference, parseScope } from '../core/scope.js';
import type { GrantContext, GrantHandler } from './grant.js';
import { grantedResources } from '../tokens/resource-indicators.js';
import { issueTokens, resolveTokenResources } from './issue.js';

const INVALID = 'The refresh token is invalid, expired or revoked';

/**
 * `refresh_token` (RFC 6749 §6, RFC 9700 §4.14): bound to its client; scope may only narrow (the
 * new refresh token keeps the grant's scope); rotated on every use (public clients always, confidential
 * clients unless `rotate_refresh_tokens: false`); presenting a rotated token revokes the whole grant.
 * `resource` (RFC 8707 §2.2) may narrow the access token to some of the grant's resources (the new
 * refresh token keeps them all); none means all of them.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2
 */
export const refreshTokenGrant: GrantHandler = {
  type: 'refresh_token',
  async handle(ctx: GrantContext) {
    const { server, client, params } = ctx;
    const value = params.refresh_token;
    if (value === undefined) throw new OAuthError('invalid_request', 'Missing parameter: refresh_token');
    const now = server.clock();
    const id = tokenId(value);
    const record = await server.storage.findArtifact('refresh_token', id, now);
    if (record === undefined || record.grant_id === undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'unknown or expired refresh token' });
    if (record.client_id !== client.client_id) {
      throw new OAuthError('invalid_grant', INVALID, { detail: `refresh token of client ${record.client_id} presented by ${client.client_id}` });
    }
    if (record.revoked_at !== undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'revoked refresh token' });

    const rotate = ctx.authMethod === 'none' || client.rotate_refresh_tokens !== false;
    if (record.consumed_at !== undefined) return reuseDetected(ctx, record.grant_id);

    const grant = await server.storage.getGrant(record.grant_id);
    if (grant === undefined || grant.revoked_at !== undefined || grant.expires_at <= now) {
      throw new OAuthError('invalid_grant', INVALID, { detail: 'grant revoked or expired' });
    }
    if (grant.user_id !== undefined && (await server.storage.getUser(grant.user_id)) === undefined) {
      throw new OAuthError('invalid_grant', INVALID, { detail: 'the user of the grant no longer exists' });
    }
    const granted = parseScope(grant.scope);
    const requested = parseScope(params.scope);
    if (requested.length > 0) {
      const extra = difference(requested, granted);
      if (extra.length > 0) throw new OAuthError('invalid_scope', `The requested scope exceeds the original grant: ${extra.join(' ')}`);
    }
    const scope = requested.length > 0 ? requested : granted;
    const resources = resolveTokenResources(ctx, scope, grantedResources(grant.data));

    if (rotate) {
      const result = await server.storage.consumeArtifact('refresh_token', id, now);
      if (result.status === 'already_consumed') return reuseDetected(ctx, record.grant_id);
      if (result.status === 'not_found') throw new OAuthError('invalid_grant', INVALID, { detail: 'refresh token expired during the request' });
      if (result.record.revoked_at !== undefined) throw new OAuthError('invalid_grant', INVALID, { detail: 'revoked refresh token' });
    }
    return issueTokens(ctx, {
      grantType: 'refresh_token',
      scope,
      grant,
      refreshToken: rotate,
      idToken: { includeNonce: false },
      resources,
      ...(grant.user_id !== undefined ? { userId: grant.user_id } : {}),
    });
  },
  /** Delegated mode: the refresh token is the app's own; the hook validates it (and any narrowing of scope). */
  async handleDelegated(ctx: GrantContext) {
    if (ctx.params.refresh_token === undefined) throw new OAuthError('invalid_request', 'Missing parameter: refresh_token');
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    return issueTokens(ctx, { grantType: 'refresh_token', scope });
  },
};

async function reuseDetected(ctx: GrantContext, grantId: string): Promise<never> {
  await ctx.server.storage.revokeGrant(grantId, ctx.server.clock());
  ctx.server.logger.warn({ event: 'refresh_token.reuse_detected', client_id: ctx.client.client_id, grant_id: grantId }, 'a rotated refresh token was presented again; the grant is revoked');
  throw new OAuthError('invalid_grant', INVALID, { detail: 'rotated refresh token reused; grant revoked' });
}
