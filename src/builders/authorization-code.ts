import type { AuthorizationCodeTokenContext } from './context.js';
import { FlowBuilder } from './flow.js';
import { AuthorizationRoute, type RefreshTokenRoute } from './routes.js';

/**
 * The authorization code grant (RFC 6749 §4.1) with PKCE.
 *
 * With registered clients (`addClient`), the core serves the authorization endpoint (hosted login
 * and consent over `addUser` users, PKCE S256, exact redirect URIs) and checks the code at the
 * token endpoint before your `generateToken` runs; without a handler the core mints the tokens
 * itself. With no registered client the server runs in delegated mode: codes are your own, your
 * handler checks everything (see docs/flow-builders.md).
 * @example
 * ```ts
 * const design = OAuth2AuthorizationCodeBuilder.create()
 *   .setIssuer('https://auth.example.com')
 *   .addClient({ client_id: 'web', client_secret: 'a-long-secret-value', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code', 'refresh_token'] })
 *   .addUser({ username: 'alice', password: 'alice-password' })
 *   .build();
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 */
export class OAuth2AuthorizationCodeBuilder extends FlowBuilder<AuthorizationCodeTokenContext> {
  protected readonly kind = 'authorization_code' as const;
  protected readonly grantType = 'authorization_code';
  protected readonly defaultStrategyName: string = 'oauth2-authorization-code';

  constructor() {
    super();
    this.authorization = new AuthorizationRoute();
  }

  /**
   * The refresh_token grant for tokens of this flow. Registry mode: the core checks and rotates the
   * refresh token first. Default path: the token endpoint's.
   */
  refreshTokenRoute(configure: (route: RefreshTokenRoute) => unknown): this {
    return this.setRefreshTokenRoute(configure);
  }

  /** The core's authorization endpoint (default `/oauth2/authorize`). Needs registered clients. */
  authorizationRoute(configure: (route: AuthorizationRoute) => unknown): this {
    return this.setAuthorizationRoute(this.authorization as AuthorizationRoute, configure);
  }
}

/** {@link OAuth2AuthorizationCodeBuilder} with OpenID Connect: discovery, the JWKS route, the `openid` scope, ID tokens. */
export class OIDCAuthorizationCodeBuilder extends OAuth2AuthorizationCodeBuilder {
  protected override readonly defaultStrategyName: string = 'oidc-authorization-code';

  protected override get oidc(): boolean {
    return true;
  }
}
