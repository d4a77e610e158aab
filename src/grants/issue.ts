import { OAuthError } from '../core/errors.js';
import { createIdToken } from '../oidc/id-token.js';
import type { GrantRecord } from '../storage/contract.js';
import { assertTargetsAllowed, assertWithinGrant, audienceOf, parseResourceIndicators } from '../tokens/resource-indicators.js';
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
  /**
   * RFC 8707 resources the access token is for, already checked by the grant (see
   * `resolveTokenResources`). They become its `aud`; none: the server's default audience.
   */
  resources?: readonly string[];
  /** Further audience values (e.g. RFC 8693 `audience`), already checked; merged with `resources`. */
  audience?: string | readonly string[];
  /** Access-token lifetime in seconds; default: the resource's, else ttl.accessToken. */
  ttl?: number;
}

/**
 * The last step of every grant: let the app's hook refuse or shape the token, mint the access token
 * (and a refresh token when asked), and build the RFC 6749 §5.1 response.
 */
export async function issueTokens(ctx: GrantContext, input: IssueInput): Promise<TokenResponseBody> {
  const { server, client } = ctx;
  const extraAudience = input.audience === undefined ? [] : typeof input.audience === 'string' ? [input.audience] : input.audience;
  const targets = [...new Set([...(input.resources ?? []), ...extraAudience])];
  const audience = audienceOf(targets);
  // The access token's scope: narrowed to the resource's scopes when one configured resource is targeted.
  const scope = server.tokens.accessScope(input.scope, audience);
  let extraClaims: Record<string, unknown> | undefined;
  if (server.hooks.beforeIssue !== undefined) {
    const decision = await server.hooks.beforeIssue({
      grantType: input.grantType,
      client,
      scope: [...scope],
      params: ctx.params,
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      ...(targets.length > 0 ? { resources: targets } : {}),
    });
    extraClaims = decision?.accessTokenClaims;
  }
  const accessToken = await server.tokens.issueAccessToken({
    client,
    scope,
    ...(input.userId !== undefined ? { userId: input.userId } : {}),
    ...(input.grant !== undefined ? { grantId: input.grant.id } : {}),
    ...(extraClaims !== undefined ? { extraClaims } : {}),
    ...(audience !== undefined ? { audience } : {}),
    ...(input.ttl !== undefined ? { ttl: input.ttl } : {}),
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
  if (scope.length > 0) body.scope = scope.join(' ');
  return body;
}

/**
 * The RFC 8707 resources a token request's access token is for, checked: each `resource` value must
 * be an absolute URI without a fragment and allowed for the client; with `granted` (the resources of
 * an existing grant: authorization_code, refresh_token) each must be one of them, and none requested
 * means all of them. Also checks that the scope keeps something after narrowing to a resource's
 * scopes. Call it before consuming anything, so a refused request costs nothing.
 * @throws OAuthError `invalid_target` (or `invalid_scope`).
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2.2
 */
export function resolveTokenResources(ctx: GrantContext, scope: readonly string[], granted?: readonly string[]): string[] {
  const { server, client } = ctx;
  const defaultAudience = server.tokens.defaultAudience;
  const requested = parseResourceIndicators(ctx.multiParams?.resource);
  assertTargetsAllowed(client, requested, defaultAudience);
  if (granted !== undefined) assertWithinGrant(requested, granted, defaultAudience);
  const resources = requested.length > 0 ? requested : [...(granted ?? [])];
  // The client may have lost a resource since the grant was made.
  assertTargetsAllowed(client, resources, defaultAudience);
  server.tokens.accessScope(scope, audienceOf(resources));
  return resources;
}

/** Whether the client may receive refresh tokens (it lists the refresh_token grant and the server serves it). */
export function mayRefresh(ctx: GrantContext, grantTypes: readonly string[]): boolean {
  return ctx.client.grant_types.includes('refresh_token') && grantTypes.includes('refresh_token');
}
