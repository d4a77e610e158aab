/**
 * Type-level tests of the flow builders, compiled by `tsc -p test-d` (test/builders/types.test.ts runs
 * it). Every `@ts-expect-error` line must be an error: if one compiles, tsc reports the unused directive.
 */
import {
  ClientSecretBasic,
  ClientSecretPost,
  MultipleFlowsBuilder,
  NoneAuthMethod,
  OAuth2AuthorizationCodeBuilder,
  OAuth2ClientCredentialsBuilder,
  OAuth2DeviceAuthorizationBuilder,
  OAuth2ErrorCode,
  OAuth2TokenResponse,
  OIDCAuthorizationCodeBuilder,
  OIDCClientCredentialsBuilder,
  OIDCDeviceAuthorizationBuilder,
  type AuthorizationCodeTokenContext,
  type ClientCredentialsTokenContext,
  type CreateIdToken,
  type CreateJwtAccessToken,
  type DeviceCodeTokenContext,
  type RefreshTokenContext,
  type TokenHelpers,
  type VerifyCodeVerifier,
  type VerifyJwt,
} from '../src/builders/index.js';

// ---------------------------------------------------------------------------------------------
// 1. refreshTokenRoute (and authorizationRoute) exist on the authorization-code and device builders only

OAuth2AuthorizationCodeBuilder.create().refreshTokenRoute((route) => route.setPath('/oauth2/token'));
OIDCAuthorizationCodeBuilder.create().refreshTokenRoute((route) => route);
OAuth2DeviceAuthorizationBuilder.create().refreshTokenRoute((route) => route);
OIDCDeviceAuthorizationBuilder.create().refreshTokenRoute((route) => route);

// @ts-expect-error no refresh tokens in the client credentials grant (RFC 6749 §4.4.3)
OAuth2ClientCredentialsBuilder.create().refreshTokenRoute((route) => route);
// @ts-expect-error the same for the OIDC builder
OIDCClientCredentialsBuilder.create().refreshTokenRoute((route) => route);
// @ts-expect-error still absent after chaining (every method returns the builder's own type)
OIDCClientCredentialsBuilder.create().setTokenTTL(600).addClientAuthenticationMethod(new ClientSecretBasic()).useAccessTokenJwks(true).setScopes({ a: 'A' }).refreshTokenRoute((route) => route);
// @ts-expect-error no authorization endpoint either
OAuth2ClientCredentialsBuilder.create().authorizationRoute((route) => route);
// @ts-expect-error the internal setter is not public
OAuth2ClientCredentialsBuilder.create().setRefreshTokenRoute((route: unknown) => route);
// @ts-expect-error public clients cannot use client credentials
OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new NoneAuthMethod());
OAuth2ClientCredentialsBuilder.create().addClientAuthenticationMethod(new ClientSecretPost());
// @ts-expect-error a string is not a method instance
OAuth2AuthorizationCodeBuilder.create().addClientAuthenticationMethod('client_secret_basic');

// ---------------------------------------------------------------------------------------------
// 2. the helpers are never optional

type IsOptional<T, K extends keyof T> = {} extends Pick<T, K> ? true : false;
const helpersRequired: { [K in keyof TokenHelpers]: IsOptional<TokenHelpers, K> } = {
  createJwtAccessToken: false,
  createIdToken: false,
  verifyJwt: false,
  verifyCodeVerifier: false,
};
void helpersRequired;

/** Each context's helpers assign to non-optional function types, and are called without `!`. */
function helpersOf(ctx: AuthorizationCodeTokenContext | ClientCredentialsTokenContext | DeviceCodeTokenContext | RefreshTokenContext): void {
  const createJwtAccessToken: CreateJwtAccessToken = ctx.createJwtAccessToken;
  const createIdToken: CreateIdToken = ctx.createIdToken;
  const verifyJwt: VerifyJwt = ctx.verifyJwt;
  const verifyCodeVerifier: VerifyCodeVerifier = ctx.verifyCodeVerifier;
  const plain: (payload?: { sub?: string }) => Promise<string> = ctx.createJwtAccessToken;
  const pkce: (verifier: string | undefined, challenge: string | undefined) => boolean = ctx.verifyCodeVerifier;
  void [createJwtAccessToken, createIdToken, verifyJwt, verifyCodeVerifier, plain, pkce];
  void ctx.createJwtAccessToken({ sub: 'u', scope: ['a'], custom: 1 });
  void ctx.createIdToken({ sub: 'u' });
  void ctx.verifyJwt('t', { typ: 'JWT', audience: ['a'] });
}
void helpersOf;

OIDCAuthorizationCodeBuilder.create().tokenRoute((route) =>
  route.generateToken(async ({ createJwtAccessToken, createIdToken, verifyCodeVerifier, verifyJwt, createRefreshToken }) => {
    const token: string = await createJwtAccessToken();
    const id: string = await createIdToken({ sub: 'u' });
    const ok: boolean = verifyCodeVerifier('v', 'c');
    const refresh: string = await createRefreshToken();
    const claims = await verifyJwt<{ role: string }>(token);
    if (claims !== undefined) {
      const role: string = claims.role;
      const exp: number = claims.exp;
      const iss: string = claims.iss;
      void [role, exp, iss];
    }
    // @ts-expect-error verifyJwt may fail: the result must be checked
    const unchecked: string = (await verifyJwt<{ role: string }>(token)).role;
    void [id, ok, refresh, unchecked];
    return null;
  }),
);

// ---------------------------------------------------------------------------------------------
// 3. context fields typed per flow

OAuth2AuthorizationCodeBuilder.create().tokenRoute((route) =>
  route.generateToken(async (ctx, request) => {
    const grantType: 'authorization_code' = ctx.grantType;
    const code: string = ctx.code;
    const verifier: string | undefined = ctx.codeVerifier;
    const redirectUri: string | undefined = ctx.redirectUri;
    const clientId: string = ctx.clientId;
    const ttl: number = ctx.ttl;
    const tokenType: string = ctx.tokenType;
    const scope: string | undefined = ctx.scope;
    const method: string = request.method;
    // @ts-expect-error the secret may be absent (public clients, registry mode)
    const secret: string = ctx.clientSecret;
    // @ts-expect-error no device code in this flow
    void ctx.deviceCode;
    // @ts-expect-error no refresh token in this flow
    void ctx.refreshToken;
    void [grantType, code, verifier, redirectUri, clientId, ttl, tokenType, scope, method, secret];
    return new OAuth2TokenResponse({ access_token: 'a' }).setExpiresIn(ttl).setTokenType(tokenType);
  }),
);

OAuth2ClientCredentialsBuilder.create().tokenRoute((route) =>
  route.generateToken(async (ctx) => {
    const grantType: 'client_credentials' = ctx.grantType;
    const scope: string = ctx.scope ?? '';
    // @ts-expect-error no code in this flow
    void ctx.code;
    // @ts-expect-error no code verifier in this flow
    void ctx.codeVerifier;
    // @ts-expect-error no device code in this flow
    void ctx.deviceCode;
    // @ts-expect-error no refresh tokens in this flow
    void ctx.createRefreshToken;
    void [grantType, scope];
    return { error: OAuth2ErrorCode.INVALID_CLIENT, error_description: 'Client not found' };
  }),
);

OAuth2DeviceAuthorizationBuilder.create().tokenRoute((route) =>
  route.generateToken(async (ctx) => {
    const grantType: 'urn:ietf:params:oauth:grant-type:device_code' = ctx.grantType;
    const deviceCode: string = ctx.deviceCode;
    // @ts-expect-error no authorization code in this flow
    void ctx.code;
    void [grantType, deviceCode];
    return { error: OAuth2ErrorCode.AUTHORIZATION_PENDING };
  }),
);

OIDCDeviceAuthorizationBuilder.create().refreshTokenRoute((route) =>
  route.generateToken(async (ctx) => {
    const grantType: 'refresh_token' = ctx.grantType;
    const refreshToken: string = ctx.refreshToken;
    // @ts-expect-error the refresh context is not the code context
    const wrong: 'authorization_code' = ctx.grantType;
    // @ts-expect-error no device code when refreshing
    void ctx.deviceCode;
    void [grantType, refreshToken, wrong];
    return { access_token: 'a', token_type: 'Bearer', expires_in: ctx.ttl };
  }),
);

// ---------------------------------------------------------------------------------------------
// 4. what a handler may return

// @ts-expect-error a number is not a token response
OAuth2ClientCredentialsBuilder.create().tokenRoute((route) => route.generateToken(async () => 42));
// @ts-expect-error an error object needs an OAuth2ErrorCode
OAuth2ClientCredentialsBuilder.create().tokenRoute((route) => route.generateToken(async () => ({ error: 'not_a_code' })));
// @ts-expect-error a token response needs token_type
OAuth2ClientCredentialsBuilder.create().tokenRoute((route) => route.generateToken(async () => ({ access_token: 'a' })));
OAuth2ClientCredentialsBuilder.create().tokenRoute((route) => route.generateToken(() => null));

// ---------------------------------------------------------------------------------------------
// 5. the design

const design = MultipleFlowsBuilder.create().add(OIDCAuthorizationCodeBuilder.create()).add(OIDCClientCredentialsBuilder.create()).build();
const schemeType: 'oauth2' | 'openIdConnect' = design.toOpenAPISecurityScheme().type;
void schemeType;
void design.start({ issuer: 'https://auth.example.com' }).then((server) => server.handle({ method: 'GET', path: '/', query: '', headers: {} }));
