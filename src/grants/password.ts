import { OAuthError } from '../core/errors.js';
import { verifyPassword } from '../users/passwords.js';
import type { GrantContext, GrantHandler } from './grant.js';
import { issueTokens, mayRefresh, resolveTokenResources } from './issue.js';

const BAD_CREDENTIALS = 'The username or password is incorrect';
const LOCKED = 'Too many failed attempts; try again later';

/**
 * Resource owner password credentials (RFC 6749 §4.3). Off unless enabled for the server and listed
 * in the client's grant_types. Unknown user and wrong password answer alike (same body, same work).
 * Attempts are counted per username before the password is checked (so N parallel guesses admit
 * exactly N checks) and failures per client; a locked user is refused even with the right password.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.3
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.4
 */
/**
 * Checks a username and password; resolves to the user's id, or undefined when they do not match.
 * Unknown user and wrong password must take the same path (the default does the same argon2 work).
 */
export type PasswordVerifier = (username: string, password: string, ctx: GrantContext) => Promise<string | undefined>;

const verifyStoredUser: PasswordVerifier = async (username, password, ctx) => {
  const user = await ctx.server.storage.getUserByUsername(username);
  const ok = await verifyPassword(password, user?.password_hash);
  return ok && user !== undefined ? user.id : undefined;
};

/**
 * The password grant with a given credential check (the core's user store by default; an app's own
 * user repository for the server object's migration path). Throttling and issuing stay the same.
 */
export function createPasswordGrant(verify: PasswordVerifier = verifyStoredUser): GrantHandler {
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

      // Per client, failures are counted; past the limit the client is locked for the rest of the window.
      const clientLock = `password_client_locked:${client.client_id}`;
      if (await server.storage.hasRecord(clientLock, now)) throw locked(limits.windowSeconds);
      // Per user, attempts are counted before the check, so N parallel guesses admit at most N checks.
      const userKey = `password_attempts_user:${username.toLowerCase()}`;
      const userWindow = await server.storage.hitRateLimit(userKey, limits.windowSeconds, now);
      if (userWindow.count > limits.maxAttemptsPerUser) throw locked(userWindow.reset_at - now);

      const userId = await verify(username, password, ctx);
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

export const passwordGrant: GrantHandler = createPasswordGrant();

function locked(retryAfter: number): OAuthError {
  return new OAuthError('invalid_grant', LOCKED, { headers: { 'retry-after': String(Math.max(1, retryAfter)) } });
}
