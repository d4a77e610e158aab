/**
 * Flow builders (`portcullis/builders`): the fluent API of the `@kaapi/oauth2-auth-design` seed
 * package over the Portcullis core. Code written for that package runs with only the import path
 * changed; the core keeps doing every check it can prove (see docs/flow-builders.md).
 * @example
 * ```ts
 * import { OAuth2ClientCredentialsBuilder, ClientSecretBasic, OAuth2TokenResponse } from 'portcullis/builders';
 * const design = OAuth2ClientCredentialsBuilder.create()
 *   .setIssuer('https://auth.example.com')
 *   .addClient({ client_id: 'svc', client_secret: 'a-long-secret-value', grant_types: ['client_credentials'] })
 *   .addClientAuthenticationMethod(new ClientSecretBasic())
 *   .tokenRoute((route) => route.generateToken(async ({ ttl, tokenType, createJwtAccessToken }) =>
 *     new OAuth2TokenResponse({ access_token: await createJwtAccessToken() }).setExpiresIn(ttl).setTokenType(tokenType)))
 *   .build();
 * ```
 * @packageDocumentation
 */
export { OAuth2AuthorizationCodeBuilder, OIDCAuthorizationCodeBuilder } from './authorization-code.js';
export { OAuth2ClientCredentialsBuilder, OIDCClientCredentialsBuilder } from './client-credentials.js';
export { OAuth2DeviceAuthorizationBuilder, OIDCDeviceAuthorizationBuilder } from './device-authorization.js';
export { MultipleFlowsBuilder } from './multiple-flows.js';
export { FlowBuilder, CoreSettingsBuilder, DEFAULT_TOKEN_TTL, type BuilderCoreOptions, type FlowDefinition, type FlowKind } from './flow.js';
export { FlowDesign, type BuiltServer, type DesignMode, type StartOptions } from './design.js';
export { createHapiPlugin, type HapiPlugin, type HapiPluginOptions } from './hapi.js';
export type { OpenAPISecurityScheme, OpenAPIOAuthFlow, OpenAPIDeviceFlow } from './openapi.js';
export {
  ClientSecretBasic,
  ClientSecretPost,
  ClientSecretJwt,
  PrivateKeyJwt,
  NoneAuthMethod,
  type ClientAuthMethod,
  type ConfidentialClientAuthMethod,
  type TokenEndpointAuthMethod,
} from './client-auth.js';
export { OAuth2TokenResponse, type OAuth2TokenResponseBody } from './token-response.js';
export {
  OAuth2ErrorCode,
  StandardOAuth2ErrorCode,
  ExtendedOAuth2ErrorCode,
  DeviceFlowOAuth2ErrorCode,
  OAuth2TokenErrorCode,
  AllOAuth2ErrorCode,
  type OAuth2ErrorBody,
} from './errors.js';
export {
  TokenRoute,
  AuthorizationCodeTokenRoute,
  ClientCredentialsTokenRoute,
  DeviceCodeTokenRoute,
  RefreshTokenRoute,
  AuthorizationRoute,
  DeviceAuthorizationRoute,
  JwksRoute,
  type PathValue,
} from './routes.js';
export {
  DEVICE_CODE_GRANT,
  verifyCodeVerifier,
  type AuthorizationCodeTokenContext,
  type ClientCredentialsTokenContext,
  type DeviceCodeTokenContext,
  type RefreshTokenContext,
  type AnyTokenContext,
  type TokenContextBase,
  type TokenHelpers,
  type CreateJwtAccessToken,
  type CreateIdToken,
  type CreateRefreshToken,
  type VerifyJwt,
  type VerifyJwtOptions,
  type VerifiedJwtClaims,
  type VerifyCodeVerifier,
  type JwtAccessTokenPayload,
  type IdTokenPayload,
  type GenerateTokenHandler,
  type GenerateTokenResult,
  type TokenRequest,
} from './context.js';
