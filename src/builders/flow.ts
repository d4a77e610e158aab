/**
 * The common part of every flow builder. A builder only collects configuration: `build()` turns it
 * into a {@link FlowDesign}, which assembles `PortcullisOptions` plus a `generateToken` hook and
 * runs the one core.
 */
import type { ClientMetadataInput, TokenEndpointAuthMethod } from '../clients/metadata.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PortcullisOptions, RouteOptions, TtlOptions } from '../core/options.js';
import type { Storage } from '../storage/contract.js';
import type { UserInput } from '../users/registry.js';
import type { ClientAuthMethod } from './client-auth.js';
import type { AnyTokenContext, GenerateTokenHandler, RefreshTokenContext } from './context.js';
import { FlowDesign } from './design.js';
import { AuthorizationRoute, DeviceAuthorizationRoute, JwksRoute, RefreshTokenRoute, TokenRoute } from './routes.js';

export type FlowKind = 'authorization_code' | 'client_credentials' | 'device_code';

/**
 * Core settings a builder may pass through (keys, token format, cookies, pages, throttles, …). The
 * builders own issuer, storage, logger, grants, routes, client-auth methods, scopes, access/ID-token
 * lifetimes and hooks.
 */
export type BuilderCoreOptions = Partial<
  Omit<
    PortcullisOptions,
    'issuer' | 'storage' | 'logger' | 'hooks' | 'clientAuthentication' | 'grants' | 'customGrants' | 'clientAuthMethods' | 'routes' | 'scopes' | 'ttl'
  >
> & {
  /** Lifetimes other than the access and ID token's (those are `setTokenTtl`). */
  ttl?: Partial<Omit<TtlOptions, 'accessToken' | 'idToken'>>;
  /** Paths of the endpoints the builders do not name (defaults under `/oauth2/`). */
  routes?: Partial<Pick<RouteOptions, 'revoke' | 'introspect' | 'userinfo' | 'end_session' | 'interaction'>>;
};

/** What the core needs besides the flows. */
export interface CoreSettings {
  issuer?: string;
  storage?: Storage;
  logger?: Logger;
  clients: ClientMetadataInput[];
  users: UserInput[];
  options: BuilderCoreOptions;
}

export function emptyCoreSettings(): CoreSettings {
  return { clients: [], users: [], options: {} };
}

/** One flow, as built. */
export interface FlowDefinition {
  kind: FlowKind;
  grantType: string;
  oidc: boolean;
  ttl: number;
  methods: TokenEndpointAuthMethod[];
  scopes: Record<string, string> | undefined;
  tokenPath: string;
  tokenHandler: GenerateTokenHandler<AnyTokenContext> | undefined;
  refresh: { path: string; handler: GenerateTokenHandler<RefreshTokenContext> | undefined } | undefined;
  /** The core's authorization (or device authorization) endpoint; `requested`: the app called authorizationRoute. */
  authorization: { path: string; verificationPath?: string; requested: boolean } | undefined;
  jwks: { path: string; requested: boolean };
  useAccessTokenJwks: boolean;
  description: string | undefined;
  strategyName: string;
  additionalConfiguration: Record<string, unknown>;
  core: CoreSettings;
}

export const DEFAULT_TOKEN_TTL = 3600;

export function checkTtl(seconds: number, what: string): number {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new ConfigError(`${what} must be a positive whole number of seconds`);
  return seconds;
}

/** Settings every builder shares (single flows and MultipleFlowsBuilder). */
export abstract class CoreSettingsBuilder {
  /** @internal */
  protected readonly core: CoreSettings = emptyCoreSettings();
  /** @internal */
  protected description: string | undefined;
  /** @internal */
  protected extraConfiguration: Record<string, unknown> = {};

  /**
   * The issuer identifier (https, or http on loopback): the `iss` of every token and the base of
   * every endpoint URL. Never taken from a request. It may also be given at `start({ issuer })` or
   * to the Hapi plugin.
   */
  setIssuer(issuer: string): this {
    this.core.issuer = issuer;
    return this;
  }

  /** Where clients, users, grants, codes, tokens and keys live. Default: in memory (lost on restart). */
  setStorage(storage: Storage): this {
    this.core.storage = storage;
    return this;
  }

  setLogger(logger: Logger): this {
    this.core.logger = logger;
    return this;
  }

  /**
   * Register a client (RFC 7591 metadata; the secret is hashed). With at least one client the server
   * runs in registry mode: the core authenticates every client before your handler runs.
   */
  addClient(metadata: ClientMetadataInput): this {
    this.core.clients.push(metadata);
    return this;
  }

  /** Add a user of the hosted login pages (password hashed with argon2id). */
  addUser(user: UserInput): this {
    this.core.users.push(user);
    return this;
  }

  /** Further core settings (signing algorithm, key-encryption secret, pages, throttles, clock, …). */
  coreOptions(options: BuilderCoreOptions): this {
    const forbidden = ['issuer', 'storage', 'logger', 'hooks', 'clientAuthentication', 'grants', 'customGrants', 'clientAuthMethods', 'scopes'];
    for (const key of Object.keys(options)) if (forbidden.includes(key)) throw new ConfigError(`coreOptions: ${key} is set through the builder's own methods`);
    this.core.options = { ...this.core.options, ...options };
    return this;
  }

  /** Markdown description of the security scheme (OpenAPI). */
  setDescription(description: string): this {
    this.description = description;
    return this;
  }

  /**
   * Members merged over the generated discovery document (e.g. the `authorization_endpoint` of your
   * own login app in delegated mode). Relative `*_endpoint` / `*_uri` values get the issuer prepended.
   */
  additionalConfiguration(configuration: Record<string, unknown>): this {
    this.extraConfiguration = { ...this.extraConfiguration, ...configuration };
    return this;
  }
}

/**
 * A single-flow builder. `C` is the context of its token route, `M` the client-authentication
 * methods it accepts.
 */
export abstract class FlowBuilder<C extends AnyTokenContext, M extends ClientAuthMethod = ClientAuthMethod> extends CoreSettingsBuilder {
  /** @internal */
  protected abstract readonly kind: FlowKind;
  /** @internal */
  protected abstract readonly grantType: string;
  /** @internal */
  protected abstract readonly defaultStrategyName: string;
  /** @internal */
  protected ttl = DEFAULT_TOKEN_TTL;
  /** @internal */
  protected readonly methods = new Set<TokenEndpointAuthMethod>();
  /** @internal */
  protected scopes: Record<string, string> | undefined;
  /** @internal */
  protected readonly token: TokenRoute<C> = new TokenRoute<C>();
  /** @internal */
  protected refresh: RefreshTokenRoute | undefined;
  /** @internal */
  protected authorization: AuthorizationRoute | DeviceAuthorizationRoute | undefined;
  /** @internal */
  protected authorizationRequested = false;
  /** @internal */
  protected readonly jwks = new JwksRoute();
  /** @internal */
  protected jwksRequested = false;
  /** @internal */
  protected accessTokenJwks = false;
  /** @internal */
  protected strategy: string | undefined;

  /** A new builder with the defaults. */
  static create<T>(this: new () => T): T {
    return new this();
  }

  /** Whether this is an OpenID Connect flow (discovery, JWKS, the `openid` scope). */
  protected get oidc(): boolean {
    return false;
  }

  /** Lifetime of the tokens the helpers mint, seconds (default 3600): `ttl` in the context, `exp - iat` of the tokens. */
  setTokenTtl(seconds: number): this {
    this.ttl = checkTtl(seconds, 'setTokenTtl');
    return this;
  }

  /** Same as {@link setTokenTtl} (the name the seed tutorials use). */
  setTokenTTL(seconds: number): this {
    return this.setTokenTtl(seconds);
  }

  getTokenTtl(): number {
    return this.ttl;
  }

  /** Accept a client-authentication method at the token endpoint. None added: `client_secret_basic`. */
  addClientAuthenticationMethod(method: M): this {
    const name = (method as { method?: unknown } | null)?.method;
    if (typeof name !== 'string' || !['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'].includes(name)) {
      throw new ConfigError('addClientAuthenticationMethod: pass new ClientSecretBasic(), ClientSecretPost(), ClientSecretJwt(), PrivateKeyJwt() or NoneAuthMethod()');
    }
    this.methods.add(name as TokenEndpointAuthMethod);
    return this;
  }

  /** Publish the signing keys (JWKS route) so resource servers can verify the JWT access tokens. OIDC flows always publish them. */
  useAccessTokenJwks(enabled: boolean = true): this {
    this.accessTokenJwks = enabled;
    return this;
  }

  /**
   * The scopes the server knows, with descriptions (discovery, consent page, OpenAPI). When set, a
   * request for any other scope is refused with `invalid_scope`; OIDC flows add `openid`.
   */
  setScopes(scopes: Record<string, string>): this {
    if (scopes === null || typeof scopes !== 'object' || Array.isArray(scopes)) throw new ConfigError('setScopes needs an object of scope → description');
    this.scopes = { ...this.scopes, ...scopes };
    return this;
  }

  getScopes(): Record<string, string> {
    return { ...(this.oidc ? { openid: 'OpenID Connect' } : {}), ...this.scopes };
  }

  /** The security scheme name (OpenAPI) and Hapi route tag. */
  strategyName(name: string): this {
    if (typeof name !== 'string' || name === '') throw new ConfigError('strategyName needs a non-empty string');
    this.strategy = name;
    return this;
  }

  getStrategyName(): string {
    return this.strategy ?? this.defaultStrategyName;
  }

  /** Configure the token endpoint: its path and the `generateToken` handler. */
  tokenRoute(configure: (route: TokenRoute<C>) => unknown): this {
    configure(this.token);
    return this;
  }

  /** Serve the JWKS (default path `/oauth2/keys`; OIDC flows serve it anyway). */
  jwksRoute(configure: (route: JwksRoute) => unknown = (route) => route): this {
    configure(this.jwks);
    this.jwksRequested = true;
    return this;
  }

  /** @internal the flow, as configured */
  toFlowDefinition(): FlowDefinition {
    const refresh = this.refresh;
    const auth = this.authorization;
    return {
      kind: this.kind,
      grantType: this.grantType,
      oidc: this.oidc,
      ttl: this.ttl,
      methods: this.methods.size > 0 ? [...this.methods] : ['client_secret_basic'],
      scopes: this.scopes === undefined && !this.oidc ? undefined : this.getScopes(),
      tokenPath: this.token.path,
      tokenHandler: this.token.handler as GenerateTokenHandler<AnyTokenContext> | undefined,
      refresh: refresh === undefined ? undefined : { path: refresh.path, handler: refresh.handler },
      authorization:
        auth === undefined
          ? undefined
          : { path: auth.path, requested: this.authorizationRequested, ...(auth instanceof DeviceAuthorizationRoute ? { verificationPath: auth.verificationPath } : {}) },
      jwks: { path: this.jwks.path, requested: this.jwksRequested },
      useAccessTokenJwks: this.accessTokenJwks,
      description: this.description,
      strategyName: this.getStrategyName(),
      additionalConfiguration: { ...this.extraConfiguration },
      core: { ...this.core, clients: [...this.core.clients], users: [...this.core.users], options: { ...this.core.options } },
    };
  }

  /** The runnable design: mount it in Hapi (`hapiPlugin()`), or `start()` it and use the node:http / fetch adapters. */
  build(): FlowDesign {
    const flow = this.toFlowDefinition();
    return new FlowDesign({
      flows: [flow],
      multiple: false,
      tokenPath: flow.tokenPath,
      jwksPath: flow.jwks.path,
      jwksServed: flow.oidc || flow.jwks.requested || flow.useAccessTokenJwks,
      schemeName: flow.strategyName,
      additionalConfiguration: flow.additionalConfiguration,
      core: flow.core,
      ...(flow.description !== undefined ? { description: flow.description } : {}),
    });
  }

  /** @internal used by the builders that have a refresh route */
  protected setRefreshTokenRoute(configure: (route: RefreshTokenRoute) => unknown): this {
    this.refresh ??= new RefreshTokenRoute();
    configure(this.refresh);
    return this;
  }

  /** @internal used by the builders that have an authorization route */
  protected setAuthorizationRoute<R extends AuthorizationRoute>(route: R, configure: (route: R) => unknown): this {
    configure(route);
    this.authorizationRequested = true;
    return this;
  }
}
