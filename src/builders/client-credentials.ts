import { ConfigError } from '../core/errors.js';
import type { ConfidentialClientAuthMethod } from './client-auth.js';
import type { ClientCredentialsTokenContext } from './context.js';
import { FlowBuilder } from './flow.js';

/**
 * The client credentials grant (RFC 6749 §4.4): confidential clients only (no `NoneAuthMethod`),
 * no refresh tokens (there is no `refreshTokenRoute`).
 * @example
 * ```ts
 * const design = OAuth2ClientCredentialsBuilder.create()
 *   .setIssuer('https://auth.example.com')
 *   .addClient({ client_id: 'svc', client_secret: 'a-long-secret-value', grant_types: ['client_credentials'], scope: 'api:read' })
 *   .build();
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export class OAuth2ClientCredentialsBuilder extends FlowBuilder<ClientCredentialsTokenContext, ConfidentialClientAuthMethod> {
  protected readonly kind = 'client_credentials' as const;
  protected readonly grantType = 'client_credentials';
  protected readonly defaultStrategyName: string = 'oauth2-client-credentials';

  override addClientAuthenticationMethod(method: ConfidentialClientAuthMethod): this {
    if ((method as { method?: unknown } | null)?.method === 'none') {
      throw new ConfigError('the client credentials grant is for confidential clients: NoneAuthMethod is not accepted (RFC 6749 §4.4)');
    }
    return super.addClientAuthenticationMethod(method);
  }
}

/** {@link OAuth2ClientCredentialsBuilder} with OpenID Connect discovery and the JWKS route. */
export class OIDCClientCredentialsBuilder extends OAuth2ClientCredentialsBuilder {
  protected override readonly defaultStrategyName: string = 'oidc-client-credentials';

  protected override get oidc(): boolean {
    return true;
  }
}
