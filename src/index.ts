/**
 * Portcullis: an OAuth 2.0 and OpenID Connect authorization server framework.
 * @packageDocumentation
 */
export { createPortcullis } from './provider.js';
export type { Portcullis } from './portcullis-types.js';
export type {
  PortcullisOptions,
  TtlOptions,
  RouteOptions,
  GrantSwitches,
  PasswordGrantOptions,
  TokenHooks,
  IssueContext,
  IssueDecision,
} from './core/options.js';
export { DEFAULT_TTL, DEFAULT_ROUTES } from './core/options.js';
export type { OAuthRequest, OAuthResponse } from './core/http.js';
export { OAuthError, StorageUnavailableError, ConfigError, type OAuthErrorCode } from './core/errors.js';
export type { Clock } from './core/clock.js';
export type { Logger } from './core/logger.js';
export type { GrantHandler, GrantContext, TokenResponseBody } from './grants/grant.js';
export { issueTokens } from './grants/issue.js';
export type { ClientMetadataInput, TokenEndpointAuthMethod } from './clients/metadata.js';
export { ClientRegistry } from './clients/registry.js';
export { UserRegistry, type UserInput } from './users/registry.js';
export { KeyManager } from './keys/key-manager.js';
export type { SigningAlgorithm } from './keys/jwt-signer.js';
export type { Storage } from './storage/contract.js';
export { toNodeListener } from './adapters/node-http.js';
export { toFetchHandler } from './adapters/fetch.js';
export { nodeToOAuthRequest } from './adapters/node-http.js';
export { AuthorizeError, type AuthorizationRequest, type AuthorizationDecision, type AuthorizeErrorCode } from './authorize/request.js';
export type { PageRenderers } from './interaction/pages.js';
export { html, raw, HtmlString } from './interaction/html.js';
export {
  TOKEN_EXCHANGE_GRANT_TYPE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_ID_TOKEN,
  TOKEN_TYPE_JWT,
  type TokenExchangeOptions,
  type TokenExchangePolicyContext,
  type TokenExchangePolicyDecision,
  type TokenExchangeTrustedIssuer,
} from './grants/token-exchange.js';
export { JWT_BEARER_GRANT_TYPE, type JwtBearerOptions } from './grants/jwt-bearer.js';
export type { TrustedIssuerOptions } from './grants/trusted-issuers.js';
export type { ResourceOptions } from './core/options.js';
export type { DeviceFlowOptions } from './core/options.js';
// The server object (the `@jmondi/oauth2-server` API; framework adapters under `portcullis/server-object/*`).
export { AuthorizationServer, storageFromRepositories, type AuthorizationServerOptions, type RepositoryStorageOptions } from './server-object/index.js';
// The generateToken hook (what the flow builders of `portcullis/builders` run on) and the client-authentication mode.
export type {
  GenerateTokenContext,
  GenerateTokenResult,
  GenerateTokenError,
  TokenMint,
  MintAccessTokenInput,
  MintIdTokenInput,
  ClientAuthenticationMode,
} from './core/options.js';
export {
  verifyBearer,
  createBearerVerifier,
  bearerErrorResponse,
  nodeBearer,
  type BearerOptions,
  type BearerVerifier,
  type BearerRequest,
  type BearerResult,
  type BearerFailure,
  type BearerCheck,
  type BearerErrorCode,
  type VerifiedAccessToken,
  type IntrospectionOptions,
} from './resource/index.js';
