/**
 * Where a seed-shaped app keeps a decision the core cannot make from storage alone:
 * - the password grant over `userRepository.getUserByCredentials(username, password, 'password', client)`
 *   (the app verifies its own password hashes); everything around it stays the core's: client
 *   authentication, the client's grants, scope, throttling, grant and token minting;
 * - the scope repository: scopes must exist (`getAllByIdentifiers`) and survive `finalize`.
 */
import { createPasswordGrant } from '../grants/password.js';
import { OAuthError, StorageUnavailableError } from '../core/errors.js';
import type { IssueContext } from '../core/options.js';
import type { GrantHandler } from '../grants/grant.js';
import { STANDARD_SCOPES } from '../oidc/claims.js';
import { coreErrorFromException, isOAuthError } from './errors.js';
import type { OAuthClient, OAuthScopeRepository, OAuthUserRepository } from './repositories.js';


export type ClientEntityLookup = (clientId: string) => Promise<OAuthClient | undefined>;

/**
 * Resource owner password credentials (RFC 6749 §4.3) with the password checked by the app's user
 * repository. Same order and limits as the core's password grant: attempts per username are counted
 * before the check, failures per client lock the client for the window. An unknown user and a wrong
 * password answer alike; making them take the same time is the repository's job.
 */
export function repositoryPasswordGrant(userRepository: OAuthUserRepository, clientEntity: ClientEntityLookup): GrantHandler {
  return createPasswordGrant(async (username, password, ctx) => {
    const entity = await clientEntity(ctx.client.client_id);
    try {
      const user = await userRepository.getUserByCredentials(username, password, 'password', entity);
      if (user !== null && user !== undefined && (typeof user.id === 'string' || typeof user.id === 'number') && String(user.id) !== '') return String(user.id);
    } catch (err) {
      // The seed's repositories throw for a wrong password; an outage is not a wrong password.
      if (err instanceof StorageUnavailableError || !isOAuthError(err)) throw err;
    }
    return undefined;
  });
}

/**
 * The scopes the scope repository keeps of `scope` for this grant: each must exist
 * (`getAllByIdentifiers`; the standard OpenID Connect scopes always do), then `finalize` may drop some
 * (scopes it adds are ignored: it can only narrow). Throws `invalid_scope` for unknown scopes; an
 * `OAuthException` thrown by the repository becomes the matching error.
 */
export async function finalizeScopes(
  repo: OAuthScopeRepository,
  scope: readonly string[],
  grantType: string,
  client: OAuthClient,
  userId: string | undefined,
): Promise<string[]> {
  try {
    const custom = scope.filter((s) => !(s in STANDARD_SCOPES));
    if (custom.length > 0) {
      const found = new Set((await repo.getAllByIdentifiers([...custom])).map((s) => s?.name));
      const unknown = custom.filter((s) => !found.has(s));
      if (unknown.length > 0) throw new OAuthError('invalid_scope', `The requested scope is not allowed: ${unknown.join(' ')}`);
    }
    const finalized = await repo.finalize(scope.map((name) => ({ name })), grantType, client, userId);
    const kept = new Set((finalized ?? []).map((s) => s?.name));
    return scope.filter((s) => kept.has(s));
  } catch (err) {
    if (isOAuthError(err)) throw coreErrorFromException(err);
    throw err;
  }
}

/**
 * A `beforeIssue` hook for the scope repository at the token endpoint: the hook cannot narrow a
 * token's scope, so a scope that `finalize` drops refuses the request (fail closed).
 */
export function scopeRepositoryHook(repo: OAuthScopeRepository, clientEntity: ClientEntityLookup): (ctx: IssueContext) => Promise<void> {
  return async (ctx) => {
    const client = await clientEntity(ctx.client.client_id);
    if (client === undefined) throw new OAuthError('invalid_client', 'The client is unknown');
    const kept = await finalizeScopes(repo, ctx.scope, ctx.grantType, client, ctx.userId);
    const dropped = ctx.scope.filter((s) => !kept.includes(s));
    if (dropped.length > 0) throw new OAuthError('invalid_scope', `The requested scope is not allowed: ${dropped.join(' ')}`);
  };
}
