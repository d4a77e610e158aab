/**
 * The bearer guard as a hapi auth scheme: `server.auth.scheme('portcullis', hapiBearerScheme)` (the
 * `portcullisHapi` plugin registers it), then `server.auth.strategy('oauth', 'portcullis', options)`.
 * @module
 */
import type { ServerAuthScheme } from '@hapi/hapi';
import { queryOf, toBearerVerifier, type BearerFailure, type BearerOptions, type BearerVerifier, type VerifiedAccessToken } from './bearer.js';

/** Options of a `portcullis` strategy: the guard's options (or a built verifier) and the scopes every route of the strategy needs. */
export type HapiBearerStrategyOptions = (BearerOptions | { verifier: BearerVerifier }) & {
  /** Scopes required on every route using this strategy (added to the guard's `requiredScopes`). */
  scopes?: readonly string[];
};

/** Per-route scopes: `options: { auth: 'oauth', plugins: { portcullis: { scopes: ['api:write'] } } }`. */
export interface HapiBearerRouteOptions {
  scopes?: readonly string[];
}

declare module '@hapi/hapi' {
  interface PluginSpecificConfiguration {
    portcullis?: HapiBearerRouteOptions;
  }
}

/** The credentials a `portcullis` strategy sets: `scope` for hapi's own `access` checks, and the token. */
export interface HapiBearerCredentials {
  scope: string[];
  /** Set when the token names an end-user (its `sub` differs from its client). */
  user?: { id: string };
  app: { id: string };
  token: VerifiedAccessToken;
}

/**
 * The `portcullis` auth scheme. Failures carry the RFC 6750 status and `WWW-Authenticate`
 * challenge; a request with no token is "missing" authentication, so `mode: 'try'` / `'optional'`
 * and other strategies work as hapi intends. Scopes: the strategy's `scopes`, plus the route's
 * `plugins.portcullis.scopes` (a 403 `insufficient_scope` challenge, unlike hapi's bare `access.scope` 403).
 */
export const hapiBearerScheme: ServerAuthScheme<HapiBearerStrategyOptions> = (_server, options) => {
  if (options === undefined) throw new TypeError('portcullis auth strategy: options are required');
  const verifier = 'verifier' in options && options.verifier !== undefined ? options.verifier : toBearerVerifier(options as BearerOptions);
  const strategyScopes = [...(options.scopes ?? [])];
  return {
    async authenticate(request, h) {
      const routeScopes = request.route.settings.plugins?.portcullis?.scopes ?? [];
      const result = await verifier.verify(
        { method: request.method.toUpperCase(), headers: request.headers as Record<string, string | undefined>, query: queryOf(request.url.search) },
        { requiredScopes: [...strategyScopes, ...routeScopes] },
      );
      if (!result.ok) return h.unauthenticated(bearerBoom(result));
      const token = result.token;
      const credentials: HapiBearerCredentials = { scope: token.scope, app: { id: token.client_id }, token };
      if (token.sub !== token.client_id) credentials.user = { id: token.sub };
      return h.authenticated({ credentials, artifacts: { ...token } });
    },
  };
};

/**
 * A hapi error ("Boom") for a failed verification, without depending on @hapi/boom: the status,
 * the challenge header, and an RFC 6750 JSON payload. No token at all is flagged `isMissing`, which
 * hapi turns into its "Missing authentication" 401 carrying our bare challenge.
 */
function bearerBoom(failure: BearerFailure): Error {
  const err = new Error(failure.description ?? 'Missing authentication') as Error & Record<string, unknown>;
  const headers: Record<string, string> = { 'WWW-Authenticate': failure.wwwAuthenticate, 'Cache-Control': 'no-store' };
  if (failure.status === 503) headers['Retry-After'] = '5';
  const payload = failure.error === undefined ? { statusCode: 401, error: 'Unauthorized', message: 'Missing authentication' } : { error: failure.error, error_description: failure.description };
  err.isBoom = true;
  err.isServer = failure.status >= 500;
  err.data = null;
  err.output = { statusCode: failure.status, payload, headers };
  if (failure.error === undefined) err.isMissing = true;
  Object.defineProperty(err, 'reformat', { value: () => err.output, configurable: true });
  Object.defineProperty(err, 'typeof', { value: Error, configurable: true });
  return err;
}
