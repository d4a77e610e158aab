/**
 * Several flows behind one token endpoint: authorization code for the web app, client credentials
 * for a service, the device flow for a TV. One discovery document (grant types, methods and scopes
 * merged), one key set, each flow with its own TTL and handler.
 *
 * Run: node --import tsx examples/builders/serve.ts multiple-flows
 */
import {
  ClientSecretBasic,
  MultipleFlowsBuilder,
  NoneAuthMethod,
  OAuth2TokenResponse,
  OIDCAuthorizationCodeBuilder,
  OIDCClientCredentialsBuilder,
  OIDCDeviceAuthorizationBuilder,
} from '../../src/builders/index.js';

export const WEB = { client_id: 'web', client_secret: 'web-secret-0123456789', redirect_uri: 'http://127.0.0.1:8080/callback' };
export const SERVICE = { client_id: 'service', client_secret: 'service-secret-0123456789' };
export const TV = { client_id: 'tv' };

export default MultipleFlowsBuilder.create({ tokenEndpoint: '/oauth2/token' })
  .setSecuritySchemeName('Example auth')
  .addClient({ client_id: WEB.client_id, client_secret: WEB.client_secret, redirect_uris: [WEB.redirect_uri], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access' })
  .addClient({ client_id: SERVICE.client_id, client_secret: SERVICE.client_secret, grant_types: ['client_credentials'], scope: 'jobs:run' })
  .addClient({ client_id: TV.client_id, token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], scope: 'openid' })
  .addUser({ username: 'carol', password: 'carol-password', claims: { email: 'carol@example.com' } })
  .add(
    // No handler: the core mints the standard tokens for this flow.
    OIDCAuthorizationCodeBuilder.create().setTokenTTL(3600).addClientAuthenticationMethod(new ClientSecretBasic()).setScopes({ email: 'Your email' }),
  )
  .add(
    OIDCClientCredentialsBuilder.create()
      .setTokenTTL(300)
      .setScopes({ 'jobs:run': 'Run jobs' })
      .tokenRoute((route) =>
        route.generateToken(async ({ ttl, tokenType, scope, createJwtAccessToken }) =>
          new OAuth2TokenResponse({ access_token: await createJwtAccessToken() }).setExpiresIn(ttl).setTokenType(tokenType).setScope(scope),
        ),
      ),
  )
  .add(OIDCDeviceAuthorizationBuilder.create().setTokenTTL(1800).addClientAuthenticationMethod(new NoneAuthMethod()));
