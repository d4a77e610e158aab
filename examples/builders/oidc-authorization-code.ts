/**
 * OpenID Connect authorization code flow with the flow builders, in registry mode: the client is
 * registered (addClient), so Portcullis authenticates it, serves the authorization endpoint with
 * hosted login and consent, and checks the code (single use, client, redirect_uri, PKCE) before
 * `generateToken` runs. The handler only shapes the tokens, with the core-minted helpers.
 *
 * Run: node --import tsx examples/builders/serve.ts oidc-authorization-code
 */
import { ClientSecretBasic, NoneAuthMethod, OAuth2ErrorCode, OAuth2TokenResponse, OIDCAuthorizationCodeBuilder } from '../../src/builders/index.js';

export const WEB_APP = {
  client_id: 'web-app',
  client_secret: 'web-app-secret-0123456789',
  redirect_uri: 'http://127.0.0.1:8080/callback',
};
export const ALICE = { username: 'alice', password: 'alice-password', email: 'alice@example.com' };

/** Subjects the app has blocked: its own policy, applied after the core's checks. */
export const blockedSubjects = new Set<string>();

export default OIDCAuthorizationCodeBuilder.create()
  .setTokenTTL(900)
  .addClientAuthenticationMethod(new ClientSecretBasic())
  .addClientAuthenticationMethod(new NoneAuthMethod())
  .useAccessTokenJwks(true)
  .setScopes({ openid: 'User identity', email: 'Access to user email', 'api:read': 'Read the API' })
  .addClient({
    client_id: WEB_APP.client_id,
    client_secret: WEB_APP.client_secret,
    redirect_uris: [WEB_APP.redirect_uri],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid email offline_access api:read',
  })
  .addUser({ username: ALICE.username, password: ALICE.password, claims: { email: ALICE.email } })
  .tokenRoute((route) =>
    route.generateToken(async ({ ttl, tokenType, scope, subject, createJwtAccessToken, createIdToken, createRefreshToken }) => {
      // The core has authenticated the client and redeemed the code; `subject` is the signed-in user.
      if (subject !== undefined && blockedSubjects.has(subject)) {
        return { error: OAuth2ErrorCode.ACCESS_DENIED, error_description: 'This account is blocked' };
      }
      const accessToken = await createJwtAccessToken({ tenant: 'acme' });
      const scopes = scope?.split(' ') ?? [];
      const response = new OAuth2TokenResponse({ access_token: accessToken }).setExpiresIn(ttl).setTokenType(tokenType).setScope(scope);
      if (scopes.includes('openid')) response.setIdToken(await createIdToken({ tenant: 'acme' }));
      if (scopes.includes('offline_access')) response.setRefreshToken(await createRefreshToken());
      return response;
    }),
  )
  .refreshTokenRoute((route) =>
    route.generateToken(async ({ ttl, tokenType, scope, createJwtAccessToken, createIdToken, createRefreshToken }) => {
      // The core has checked the refresh token (client, expiry, scope) and rotated it: issue the next one.
      const response = new OAuth2TokenResponse({ access_token: await createJwtAccessToken({ tenant: 'acme' }) })
        .setExpiresIn(ttl)
        .setTokenType(tokenType)
        .setScope(scope)
        .setRefreshToken(await createRefreshToken());
      if (scope?.split(' ').includes('openid')) response.setIdToken(await createIdToken());
      return response;
    }),
  );
