/**
 * Route sub-builders: `builder.tokenRoute(route => route.setPath('/oauth2/token').generateToken(fn))`.
 * Each holds a path (must start with `/`) and, for token routes, the handler.
 */
import { ConfigError } from '../core/errors.js';
import type {
  AuthorizationCodeTokenContext,
  ClientCredentialsTokenContext,
  DeviceCodeTokenContext,
  GenerateTokenHandler,
  RefreshTokenContext,
} from './context.js';

export type PathValue = `/${string}`;

const PATH = /^\/[A-Za-z0-9._~\-/]*$/;

export function checkPath(path: string, what: string): string {
  if (typeof path !== 'string' || !PATH.test(path)) throw new ConfigError(`${what}: the path must start with / and use only A-Z a-z 0-9 . _ ~ - /`);
  return path;
}

/** The token endpoint of a flow. Default path `/oauth2/token`. */
export class TokenRoute<C> {
  #path = '/oauth2/token';
  #handler: GenerateTokenHandler<C> | undefined;

  setPath(path: PathValue | string): this {
    this.#path = checkPath(path, 'tokenRoute');
    return this;
  }

  /**
   * Issue the tokens. Runs after every check the core can make (see the context type of the flow).
   * Return an `OAuth2TokenResponse`, an `{ error: OAuth2ErrorCode.X }` object, or `null` (→ invalid_request).
   */
  generateToken(handler: GenerateTokenHandler<C>): this {
    if (typeof handler !== 'function') throw new ConfigError('generateToken needs a function');
    this.#handler = handler;
    return this;
  }

  get path(): string {
    return this.#path;
  }

  get handler(): GenerateTokenHandler<C> | undefined {
    return this.#handler;
  }
}

export class AuthorizationCodeTokenRoute extends TokenRoute<AuthorizationCodeTokenContext> {}
export class ClientCredentialsTokenRoute extends TokenRoute<ClientCredentialsTokenContext> {}
export class DeviceCodeTokenRoute extends TokenRoute<DeviceCodeTokenContext> {}
/**
 * The refresh_token grant. Default path `/oauth2/token` (the token endpoint); another path gets its
 * own POST route that accepts only `grant_type=refresh_token` (and the token endpoint then refuses it).
 */
export class RefreshTokenRoute extends TokenRoute<RefreshTokenContext> {}

/**
 * The authorization endpoint of the authorization-code flow: the core's (RFC 6749 §4.1.1 with
 * PKCE S256, exact redirect URIs of registered clients, hosted login and consent, RFC 9207 `iss`).
 * Default path `/oauth2/authorize`. It needs registered clients (`addClient`).
 */
export class AuthorizationRoute {
  #path: string;

  constructor(defaultPath: string = '/oauth2/authorize') {
    this.#path = defaultPath;
  }

  setPath(path: PathValue | string): this {
    this.#path = checkPath(path, 'authorizationRoute');
    return this;
  }

  get path(): string {
    return this.#path;
  }
}

/**
 * The device authorization endpoint (RFC 8628 §3.1, default `/oauth2/devicecode`) and the hosted
 * verification page where users enter the code (default `/oauth2/device`). Needs registered clients.
 */
export class DeviceAuthorizationRoute extends AuthorizationRoute {
  #verificationPath = '/oauth2/device';

  constructor() {
    super('/oauth2/devicecode');
  }

  setVerificationPath(path: PathValue | string): this {
    this.#verificationPath = checkPath(path, 'authorizationRoute.setVerificationPath');
    return this;
  }

  get verificationPath(): string {
    return this.#verificationPath;
  }
}

/** The JWKS (RFC 7517) of the signing keys. Default path `/oauth2/keys`. */
export class JwksRoute {
  #path = '/oauth2/keys';

  setPath(path: PathValue | string): this {
    this.#path = checkPath(path, 'jwksRoute');
    return this;
  }

  get path(): string {
    return this.#path;
  }
}
