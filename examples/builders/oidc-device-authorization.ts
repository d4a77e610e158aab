/**
 * The device flow (RFC 8628) with the flow builders, in registry mode: Portcullis serves the device
 * authorization endpoint (/oauth2/devicecode), the verification page where the user signs in and
 * approves (/oauth2/device), and the polling rules; `generateToken` runs once the device code is
 * approved and redeemed.
 *
 * Run: node --import tsx examples/builders/serve.ts oidc-device-authorization
 */
import { NoneAuthMethod, OAuth2TokenResponse, OIDCDeviceAuthorizationBuilder } from '../../src/builders/index.js';

export const TV_APP = { client_id: 'tv-app' };
export const BOB = { username: 'bob', password: 'bob-password-123' };

export default OIDCDeviceAuthorizationBuilder.create()
  .setTokenTTL(1800)
  .addClientAuthenticationMethod(new NoneAuthMethod())
  .setScopes({ openid: 'User identity', 'tv:watch': 'Watch TV' })
  .addClient({ client_id: TV_APP.client_id, token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], scope: 'openid tv:watch' })
  .addUser({ username: BOB.username, password: BOB.password })
  .authorizationRoute((route) => route.setPath('/oauth2/device_authorization').setVerificationPath('/oauth2/device'))
  .coreOptions({ deviceFlow: { interval: 1 } })
  .tokenRoute((route) =>
    route.generateToken(async ({ ttl, tokenType, scope, createJwtAccessToken, createIdToken, createRefreshToken }) =>
      new OAuth2TokenResponse({ access_token: await createJwtAccessToken() })
        .setExpiresIn(ttl)
        .setTokenType(tokenType)
        .setScope(scope)
        .setIdToken(await createIdToken())
        .setRefreshToken(await createRefreshToken()),
    ),
  );
