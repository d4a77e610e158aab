import { DEVICE_CODE_GRANT, type DeviceCodeTokenContext } from './context.js';
import { FlowBuilder } from './flow.js';
import { DeviceAuthorizationRoute, type RefreshTokenRoute } from './routes.js';

/**
 * The device authorization grant (RFC 8628). With registered clients the core serves the device
 * authorization endpoint (default `/oauth2/devicecode`), the hosted verification page (default
 * `/oauth2/device`) and the polling rules (interval, slow_down, expiry, single use) before your
 * `generateToken` runs. With no registered client (delegated mode) device codes are your own and
 * your handler answers `authorization_pending`, `slow_down`, … itself.
 * @see https://www.rfc-editor.org/rfc/rfc8628
 */
export class OAuth2DeviceAuthorizationBuilder extends FlowBuilder<DeviceCodeTokenContext> {
  protected readonly kind = 'device_code' as const;
  protected readonly grantType = DEVICE_CODE_GRANT;
  protected readonly defaultStrategyName: string = 'oauth2-device-authorization';

  constructor() {
    super();
    this.authorization = new DeviceAuthorizationRoute();
  }

  /** The refresh_token grant for tokens of this flow. Registry mode: the core checks and rotates the refresh token first. */
  refreshTokenRoute(configure: (route: RefreshTokenRoute) => unknown): this {
    return this.setRefreshTokenRoute(configure);
  }

  /** The core's device authorization endpoint and verification page. Needs registered clients. */
  authorizationRoute(configure: (route: DeviceAuthorizationRoute) => unknown): this {
    return this.setAuthorizationRoute(this.authorization as DeviceAuthorizationRoute, configure);
  }
}

/** {@link OAuth2DeviceAuthorizationBuilder} with OpenID Connect: discovery, the JWKS route, the `openid` scope, ID tokens. */
export class OIDCDeviceAuthorizationBuilder extends OAuth2DeviceAuthorizationBuilder {
  protected override readonly defaultStrategyName: string = 'oidc-device-authorization';

  protected override get oidc(): boolean {
    return true;
  }
}
