import { OAuthError } from '../core/errors.js';
import type { GrantHandler } from './grant.js';
import { issueTokens, resolveTokenResources } from './issue.js';

/**
 * `client_credentials` (RFC 6749 §4.4): confidential clients only, scope within the client's
 * allowed scope, no refresh token. `resource` (RFC 8707) targets resources the client is allowed.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export const clientCredentialsGrant: GrantHandler = {
  type: 'client_credentials',
  allowPublicClients: false,
  async handle(ctx) {
    if (ctx.authMethod === 'none') {
      throw new OAuthError('unauthorized_client', 'Public clients may not use the client_credentials grant');
    }
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    const resources = resolveTokenResources(ctx, scope);
    return issueTokens(ctx, { grantType: 'client_credentials', scope, resources });
  },
  /** Delegated mode: the hook checks the raw credentials; the core checks the scope against the known scopes. */
  async handleDelegated(ctx) {
    if (ctx.authMethod === 'none') {
      throw new OAuthError('unauthorized_client', 'Public clients may not use the client_credentials grant');
    }
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    return issueTokens(ctx, { grantType: 'client_credentials', scope });
  },
};
