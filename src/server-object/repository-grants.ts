/**
 * Where a seed-shaped app keeps a decision the core cannot make from storage alone:
 * - the password grant over `userRepository.getUserByCredentials(username, password, 'password', client)`
 *   (the app verifies its own password hashes); everything around it stays the core's: client
 *   authentication, the client's grants, scope, throttling, grant and token minting;
 * - the scope repository: scopes must exist (`getAllByIdentifiers`) and survive `finalize`.
 */
import { OAuthError, StorageUnavailableError } from '../core/errors.js';
import type { IssueContext } from '../core/options.js';
import type { GrantContext, GrantHandler } from '../grants/grant.js';
import { issueTokens, mayRefresh, resolveTokenResources } from '../grants/issue.js';
import { STANDARD_SCOPES } from '../oidc/claims.js';
import { coreErrorFromException, isOAuthError } from './errors.js';
import type { OAuthClient, OAuthScopeRepository, OAuthUserRepository } from './repositories.js';

const BAD_CREDENTIALS = 'The username or password is incorrect';
const LOCKED = 'Too many failed attempts; try again later';

export type ClientEntityLookup = (clientId: string) => Promise<OAuthClient | undefined>;

/**
 * Resource owner password credentials (RFC 6749 §4.3) with the password checked by the app's user
 * repository. Same order and limits as the core's password grant: attempts per username are counted
 * before the check, failures per client lock the client for the window. An unknown user and a wrong
 * password answer alike; making them take the same time is the repository's job.
 */
export function repositoryPasswordGrant(userRepository: OAuthUserRepository, clientEntity: ClientEntityLookup): GrantHandler {
  return {
    type: 'password',
    async handle(ctx: GrantContext) {
      const { server, client, params } = ctx;
      const username = params.username;
      const password = params.password;
      if (username === undefined) throw new OAuthError('invalid_request', 'Missing parameter: username');
      if (password === undefined) throw new OAuthError('invalid_request', 'Missing parameter: password');
      if (username.length > 255 || password.length > 1024) throw new OAuthError('invalid_grant', BAD_CREDENTIALS);
      const scope = server.scopes.resolve(params.scope, client);
      const resources = resolveTokenResources(ctx, scope);
      const limits = server.passwordGrant;
      const now = server.clock();

      const clientLock = `password_client_locked:${client.client_id}`;
      if (await server.storage.hasRecord(clientLock, now)) throw locked(limits.windowSeconds);
      const userKey = `password_attempts_user:${username.toLowerCase()}`;
      const userWindow = await server.storage.hitRateLimit(userKey, limits.windowSeconds, now);
      if (userWindow.count > limits.maxAttemptsPerUser) throw locked(userWindow.reset_at - now);

      const entity = await clientEntity(client.client_id);
      let userId: string | undefined;
      try {
        const user = await userRepository.getUserByCredentials(username, password, 'password', entity);
        if (user !== null && user !== undefined && (typeof user.id === 'string' || typeof user.id === 'number') && String(user.id) !== '') userId = String(user.id);
      } catch (err) {
        // The seed's repositories throw for a wrong password; an outage is not a wrong password.
        if (err instanceof StorageUnavailableError || !isOAuthError(err)) throw err;
      }
      if (userId === undefined) {
        const failures = await server.storage.hitRateLimit(`password_failures_client:${client.client_id}`, limits.windowSeconds, now);
        if (failures.count >= limits.maxFailuresPerClient) await server.storage.recordOnce(clientLock, failures.reset_at, now);
        server.logger.info({ event: 'password.failed', client_id: client.client_id }, 'password grant: bad credentials');
        throw new OAuthError('invalid_grant', BAD_CREDENTIALS);
      }
      await server.storage.resetRateLimit(userKey);

      const grant = await server.tokens.createGrant({
        client,
        grantType: 'password',
        scope,
        userId,
        authTime: now,
        ...(resources.length > 0 ? { data: { resources } } : {}),
      });
      return issueTokens(ctx, { grantType: 'password', scope, userId, grant, refreshToken: mayRefresh(ctx, server.grantTypes()), resources });
    },
  };
}

function locked(retryAfter: number): OAuthError {
  return new OAuthError('invalid_grant', LOCKED, { headers: { 'retry-after': String(Math.max(1, retryAfter)) } });
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
