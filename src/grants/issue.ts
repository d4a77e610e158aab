import { OAuthError } from '../core/errors.js';
import { createIdToken } from '../oidc/id-token.js';
import type { GrantRecord } from '../storage/contract.js';
import type { GrantContext, TokenResponseBody } from './grant.js';

export interface IssueInput {
  grantType: string;
  scope: readonly string[];
  userId?: string;
  /** The grant the tokens belong to (absent for client_credentials). */
  grant?: GrantRecord;
  /** Mint a refresh token of `grant` and return it. */
  refreshToken?: boolean;
  /** Add an OIDC ID token when the scope has `openid` and the grant has a user. */
  idToken?: { includeNonce: boolean };
}

/**
 * The last step of every grant: let the app's hook refuse or shape the token, mint the access token
 * (and a refresh token when asked), and build the RFC 6749 §5.1 response.
 */
export async function issueTokens(ctx: GrantContext, input: IssueInput): Promise<TokenResponseBody> {
  const { server, client } = ctx;
  let extraClaims: Record<string, unknown> | undefined;
  if (server.hooks.beforeIssue !== undefined) {
    const decision = await server.hooks.beforeIssue({
      grantType: input.grantType,
      client,
      scope: [...input.scope],
      params: ctx.params,
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
    });
    extraClaims = decision?.accessTokenClaims;
  }
  const accessToken = await server.tokens.issueAccessToken({
    client,
    scope: input.scope,
    ...(input.userId !== undefined ? { userId: input.userId } : {}),
    ...(input.grant !== undefined ? { grantId: input.grant.id } : {}),
    ...(extraClaims !== undefined ? { extraClaims } : {}),
  });
  const body: TokenResponseBody = {
    access_token: accessToken.token,
    token_type: 'Bearer',
    expires_in: accessToken.expiresIn,
  };
  if (input.refreshToken === true && input.grant !== undefined) {
    body.refresh_token = await server.tokens.issueRefreshToken(input.grant);
  }
  if (input.idToken !== undefined && input.scope.includes('openid') && input.grant !== undefined && input.userId !== undefined) {
    const user = await server.storage.getUser(input.userId);
    if (user === undefined) throw new OAuthError('invalid_grant', 'The user of the grant no longer exists');
    body.id_token = createIdToken(server, { client, user, grant: input.grant, scope: input.scope, accessToken: accessToken.token, includeNonce: input.idToken.includeNonce });
  }
  if (input.scope.length > 0) body.scope = input.scope.join(' ');
  return body;
}

/** Whether the client may receive refresh tokens (it lists the refresh_token grant and the server serves it). */
export function mayRefresh(ctx: GrantContext, grantTypes: readonly string[]): boolean {
  return ctx.client.grant_types.includes('refresh_token') && grantTypes.includes('refresh_token');
}
