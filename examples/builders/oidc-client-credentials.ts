/**
 * Client credentials with the flow builders, in registry mode: the service is registered
 * (addClient), so Portcullis checks its secret (hashed, constant time, throttled) and its allowed
 * scope before `generateToken` runs.
 *
 * Run: node --import tsx examples/builders/serve.ts oidc-client-credentials
 */
import { ClientSecretBasic, ClientSecretPost, OAuth2TokenResponse, OIDCClientCredentialsBuilder } from '../../src/builders/index.js';

export const REPORTING = { client_id: 'reporting', client_secret: 'reporting-secret-0123456789' };
export const BILLING = { client_id: 'billing', client_secret: 'billing-secret-0123456789' };

export default OIDCClientCredentialsBuilder.create()
  .setTokenTTL(600)
  .addClientAuthenticationMethod(new ClientSecretBasic())
  .addClientAuthenticationMethod(new ClientSecretPost())
  .setScopes({ 'reports:read': 'Read reports', 'reports:write': 'Write reports' })
  // Each client authenticates with the method it is registered for (default client_secret_basic).
  .addClient({ client_id: REPORTING.client_id, client_secret: REPORTING.client_secret, grant_types: ['client_credentials'], scope: 'reports:read' })
  .addClient({ client_id: BILLING.client_id, client_secret: BILLING.client_secret, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], scope: 'reports:read reports:write' })
  .tokenRoute((route) =>
    route.generateToken(async ({ clientId, ttl, tokenType, scope, createJwtAccessToken }) =>
      new OAuth2TokenResponse({ access_token: await createJwtAccessToken({ service: clientId }) })
        .setExpiresIn(ttl)
        .setTokenType(tokenType)
        .setScope(scope),
    ),
  );
