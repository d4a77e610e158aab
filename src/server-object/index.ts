/**
 * `portcullis/server-object`: the seed package's `AuthorizationServer` API (`@jmondi/oauth2-server`)
 * over the Portcullis core, and the migration adapter for apps that keep the seed's repositories.
 * Framework adapters: `portcullis/server-object/express`, `/fastify`, `/hono`, `/hapi`, `/vanilla`, `/node`.
 * See docs/migrating.md.
 * @packageDocumentation
 */
export {
  AuthorizationServer,
  TOKEN_EXCHANGE,
  DEVICE_CODE,
  JWT_BEARER,
  type AuthorizationServerOptions,
  type EnableGrant,
  type EnableGrants,
  type JwtLike,
  type SeedLogger,
} from './authorization-server.js';
export { AuthorizationRequest, type AuthorizationRequestClient } from './authorization-request.js';
export { OAuthRequest, OAuthResponse, type RequestInterface, type ResponseInterface, type RequestOptions, type ResponseOptions } from './http.js';
export { OAuthException, ErrorType, isOAuthError } from './errors.js';
export { DateInterval } from './date-interval.js';
export {
  storageFromRepositories,
  isRepositoryStorage,
  type RepositoryStorage,
  type RepositoryStorageOptions,
} from './repository-storage.js';
export type {
  GrantIdentifier,
  OAuthScope,
  OAuthClient,
  OAuthUser,
  OAuthToken,
  OAuthAuthCode,
  OAuthClientRepository,
  OAuthTokenRepository,
  OAuthAuthCodeRepository,
  OAuthScopeRepository,
  OAuthUserRepository,
  Repositories,
} from './repositories.js';
/** Hash a client secret the way the core stores it (for `clientSecrets: 'portcullis-hash'`). */
export { hashClientSecret } from '../clients/secrets.js';
