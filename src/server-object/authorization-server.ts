/**
 * The server object: the seed package's `AuthorizationServer` API over the one Portcullis core.
 *
 * Every check stays in the core: client authentication (hashed secrets, constant time, throttled),
 * the client's registered grants, exact redirect-URI matching, PKCE (S256), single-use codes with
 * atomic redemption, refresh-token rotation with reuse detection, revocation and introspection rules.
 * The server object translates requests, responses and errors, and keeps the seed's two-step
 * authorization (validate → your login and consent → complete).
 */
import { randomBytes } from 'node:crypto';
import { AuthorizeError } from '../authorize/request.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ConfigError, OAuthError, toOAuthError } from '../core/errors.js';
import type { OAuthResponse as CoreResponse } from '../core/http.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { DEFAULT_ROUTES, type GrantSwitches, type IssueContext, type IssueDecision, type PortcullisOptions, type RouteOptions } from '../core/options.js';
import { errorResponse } from '../endpoints/respond.js';
import type { GrantHandler } from '../grants/grant.js';
import type { Portcullis } from '../portcullis-types.js';
import { createPortcullis } from '../provider.js';
import type { Storage } from '../storage/contract.js';
import { createMemoryStorage } from '../storage/memory.js';
import { AuthorizationRequest, clientView, sealRequest, verifySeal } from './authorization-request.js';
import { DateInterval } from './date-interval.js';
import { isOAuthError, coreErrorFromException, type OAuthException } from './errors.js';
import { exceptionFromResponse, fromCoreResponse, MAX_BODY_BYTES, OAuthResponse, toCoreRequest } from './http.js';
import { finalizeScopes, repositoryPasswordGrant, scopeRepositoryHook, type ClientEntityLookup } from './repository-grants.js';
import { isRepositoryStorage, storageFromRepositories, type RepositoryStorage, type RepositoryStorageOptions } from './repository-storage.js';
import type {
  GrantIdentifier,
  OAuthAuthCodeRepository,
  OAuthClient,
  OAuthClientRepository,
  OAuthScopeRepository,
  OAuthTokenRepository,
  OAuthUser,
  OAuthUserRepository,
} from './repositories.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The seed's logger: anything with `log(...)`. */
export interface SeedLogger {
  log(...args: unknown[]): void;
}

/** The seed's `JwtInterface`, as far as it still means something: `extraTokenFields` adds access-token claims. */
export interface JwtLike {
  extraTokenFields?(params: { user?: OAuthUser; client: OAuthClient; originatingAuthCodeId?: string }): Record<string, unknown> | Promise<Record<string, unknown>>;
}

/**
 * Options: the seed's `AuthorizationServerOptions` (those that still apply) and the core's
 * {@link PortcullisOptions}. `issuer` is required (the seed's was optional): tokens carry it and
 * discovery is built from it.
 */
export interface AuthorizationServerOptions extends Omit<PortcullisOptions, 'storage' | 'logger'> {
  /**
   * `new AuthorizationServer({ storage, … })`: the core's storage (or `storageFromRepositories(…)`).
   * With the seed's positional constructor: the inner store kept beside the repositories (default: memory).
   */
  storage?: Storage;
  logger?: Logger | SeedLogger;
  /** Seed option: require PKCE from every client (default true). Public clients always need it. */
  requiresPKCE?: boolean;
  /** Seed option: S256 only (default true). `false` allows `plain`, with a loud warning. */
  requiresS256?: boolean;
  /** Seed option; must be `" "` (RFC 6749 §3.3). */
  scopeDelimiter?: string;
  /** Seed option; must stay true: Portcullis always authenticates clients at introspection. */
  authenticateIntrospect?: boolean;
  /** Seed option; must stay true: Portcullis always authenticates clients at revocation. */
  authenticateRevoke?: boolean;
  /** Seed option; must stay true. */
  introspectionRequiresConfidentialClient?: boolean;
  /** Seed option, ignored: codes are always opaque (random, stored hashed). */
  useOpaqueAuthorizationCodes?: boolean;
  /** Seed option, ignored: refresh tokens are always opaque. */
  useOpaqueRefreshTokens?: boolean;
  /** Seed option, ignored: access tokens follow RFC 9068 (`client_id`, no `nbf`). */
  notBeforeLeeway?: number;
  /** Seed option, ignored: access tokens carry `client_id` (RFC 9068), not `cid`. */
  tokenCID?: 'id' | 'name';
  /** Seed option, ignored: the implicit grant is never served. */
  implicitRedirectMode?: 'query' | 'fragment';
  /** How the seed's repositories map to storage (positional constructor only). */
  repositoryStorage?: Omit<RepositoryStorageOptions, 'inner' | 'logger'>;
}

/** What `enableGrantType` takes, as in the seed. */
export type EnableGrant =
  | GrantIdentifier
  | { grant: 'authorization_code'; authCodeRepository?: OAuthAuthCodeRepository; userRepository?: OAuthUserRepository; authCodeTTL?: DateInterval }
  | { grant: 'password'; userRepository?: OAuthUserRepository }
  | { grant: typeof TOKEN_EXCHANGE; processTokenExchange?: unknown }
  | { grant: GrantHandler }
  | { grant: GrantIdentifier; [key: string]: unknown };

export type EnableGrants = EnableGrant | [EnableGrant, DateInterval];

interface Built {
  portcullis: Portcullis;
  storage: Storage;
  routes: RouteOptions;
  sealKey: Buffer;
  scopeRepository?: OAuthScopeRepository;
  clientEntity: ClientEntityLookup;
}

type RouteName = 'token' | 'revoke' | 'introspect' | 'userinfo';

const SEAL_SECRET_ID = 'server-object-authorization-request-key';
const REJECTIONS = {
  access_denied: 'The user or server denied the request',
  login_required: 'The user must sign in',
  consent_required: 'The user must consent',
  interaction_required: 'The user must interact with the server',
  account_selection_required: 'The user must select an account',
} as const;
const FOREVER = 253_402_300_799;

/**
 * The seed package's `AuthorizationServer`, over Portcullis.
 * @example
 * ```ts
 * // Over Portcullis storage:
 * const authorizationServer = new AuthorizationServer({ issuer: 'https://auth.example.com', storage: createSqliteStorage({ filename: 'auth.db' }) });
 * authorizationServer.enableGrantType('authorization_code');
 *
 * // Over the seed's repositories (see docs/migrating.md):
 * const authorizationServer = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, 'a-long-secret-value', { issuer });
 * authorizationServer.enableGrantType({ grant: 'authorization_code', authCodeRepository, userRepository });
 * ```
 */
export class AuthorizationServer {
  readonly #options: AuthorizationServerOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #repositories?: { clientRepository: OAuthClientRepository; tokenRepository?: OAuthTokenRepository; scopeRepository?: OAuthScopeRepository };
  readonly #jwt?: JwtLike;
  readonly #switches: GrantSwitches;
  readonly #accessTokenTtls = new Map<string, number>();
  readonly #customGrants: GrantHandler[] = [];
  #authCodeTtl?: number;
  #authCodeRepository?: OAuthAuthCodeRepository;
  #userRepository?: OAuthUserRepository;
  #ready?: Promise<Built>;
  #closed = false;

  /** Over Portcullis storage (or `storageFromRepositories(…)`). */
  constructor(options: AuthorizationServerOptions & { storage: Storage });
  /** The seed's constructor: repositories, then the old JWT secret or service, then options (with `issuer`). */
  constructor(clientRepository: OAuthClientRepository, tokenRepository: OAuthTokenRepository, scopeRepository: OAuthScopeRepository, jwt: string | JwtLike, options: AuthorizationServerOptions);
  constructor(...args: unknown[]) {
    let options: AuthorizationServerOptions;
    if (args.length >= 4 && typeof (args[0] as OAuthClientRepository | undefined)?.getByIdentifier === 'function') {
      const [clientRepository, tokenRepository, scopeRepository, jwt, opts] = args as [OAuthClientRepository, OAuthTokenRepository | undefined, OAuthScopeRepository | undefined, string | JwtLike | undefined, AuthorizationServerOptions | undefined];
      if (opts === undefined || typeof opts.issuer !== 'string') throw new ConfigError('AuthorizationServer: options.issuer is required (tokens carry it and discovery is built from it)');
      // The inner store beside the repositories: one for the server's life (rebuilds keep it).
      options = { ...opts, storage: opts.storage ?? createMemoryStorage() };
      this.#repositories = {
        clientRepository,
        ...(tokenRepository != null ? { tokenRepository } : {}),
        ...(scopeRepository != null ? { scopeRepository } : {}),
      };
      if (typeof jwt === 'string') {
        // It no longer signs (Portcullis signs with asymmetric keys published as a JWKS): it protects them at rest.
        if (jwt.length >= 16 && options.keyEncryptionSecret === undefined) options.keyEncryptionSecret = jwt;
      } else if (jwt !== undefined && jwt !== null) {
        this.#jwt = jwt;
      }
    } else {
      const opts = args[0] as (AuthorizationServerOptions & { storage: Storage }) | undefined;
      if (opts === undefined || opts === null || typeof opts !== 'object' || typeof opts.issuer !== 'string') {
        throw new ConfigError('AuthorizationServer: pass { issuer, storage, … }, or the seed arguments (clientRepository, tokenRepository, scopeRepository, secret, { issuer })');
      }
      if (opts.storage === undefined) throw new ConfigError('AuthorizationServer: options.storage is required');
      options = { ...opts };
    }
    this.#options = options;
    this.#logger = adaptLogger(options.logger);
    this.#clock = options.clock ?? systemClock;
    checkSeedOptions(options, this.#logger);
    // As in the seed, client_credentials and refresh_token are on from the start; each client still
    // needs the grant in its own allowedGrants / grant_types.
    this.#switches = {
      authorization_code: false,
      client_credentials: true,
      refresh_token: true,
      password: false,
      device_code: false,
      token_exchange: false,
      jwt_bearer: false,
      ...options.grants,
    };
  }

  /**
   * Enable a grant, as in the seed: `'client_credentials'`, `'refresh_token'`, `'authorization_code'`,
   * `'password'`, `{ grant: 'authorization_code', authCodeRepository, userRepository }`,
   * `{ grant: 'password', userRepository }`, the token-exchange / device-code / JWT-bearer URNs, or
   * `{ grant: customGrantHandler }`; optionally with an access-token lifetime. `'implicit'` is refused:
   * it is never served (RFC 9700 §2.1.2).
   */
  enableGrantType(grant: EnableGrants, accessTokenTTL?: DateInterval): void {
    if (Array.isArray(grant)) {
      this.enableGrantType(grant[0], grant[1]);
      return;
    }
    const spec = typeof grant === 'string' ? { grant } : grant;
    const name = spec.grant;
    if (typeof name === 'object' && name !== null) {
      const handler = name as GrantHandler;
      if (typeof handler.type !== 'string' || typeof handler.handle !== 'function') {
        throw new ConfigError('enableGrantType: a custom grant must be a Portcullis GrantHandler { type, handle(ctx) } (seed AbstractGrant subclasses cannot run here: see docs/custom-grants.md)');
      }
      this.#customGrants.push(handler);
      this.#setTtl(handler.type, accessTokenTTL);
      this.#changed();
      return;
    }
    switch (name) {
      case 'implicit':
        throw new ConfigError('enableGrantType("implicit"): the implicit grant is not supported and never will be (RFC 9700 §2.1.2: tokens in the redirect leak). Use "authorization_code" with PKCE, which the seed\'s browser clients can switch to.');
      case 'authorization_code': {
        const s = spec as Extract<EnableGrant, { grant: 'authorization_code' }>;
        if (s.authCodeRepository !== undefined) this.#authCodeRepository = s.authCodeRepository;
        if (s.userRepository !== undefined) this.#userRepository = s.userRepository;
        if (s.authCodeTTL !== undefined) this.#authCodeTtl = s.authCodeTTL.getSeconds();
        this.#switches.authorization_code = true;
        break;
      }
      case 'password': {
        const s = spec as Extract<EnableGrant, { grant: 'password' }>;
        if (s.userRepository !== undefined) this.#userRepository = s.userRepository;
        this.#switches.password = true;
        break;
      }
      case 'client_credentials':
        this.#switches.client_credentials = true;
        break;
      case 'refresh_token':
        this.#switches.refresh_token = true;
        break;
      case TOKEN_EXCHANGE:
        if ((spec as { processTokenExchange?: unknown }).processTokenExchange !== undefined) {
          throw new ConfigError('enableGrantType(token-exchange): processTokenExchange is not supported: Portcullis validates subject tokens itself (its own tokens, or JWTs of trusted issuers). Configure options.tokenExchange (docs/token-exchange.md), or register a custom grant for other token kinds.');
        }
        this.#switches.token_exchange = true;
        break;
      case DEVICE_CODE:
      case 'device_code':
        this.#switches.device_code = true;
        break;
      case JWT_BEARER:
        this.#switches.jwt_bearer = true;
        break;
      default:
        throw new ConfigError(`enableGrantType: unknown grant ${JSON.stringify(name)}`);
    }
    this.#setTtl(name === 'device_code' ? DEVICE_CODE : name, accessTokenTTL);
    this.#changed();
  }

  /** Enable several grants at once (each optionally as `[grant, DateInterval]`). */
  enableGrantTypes(...grants: EnableGrants[]): void {
    for (const g of grants) this.enableGrantType(g);
  }

  #setTtl(grant: string, ttl: DateInterval | undefined): void {
    if (ttl === undefined) return;
    if (!(ttl instanceof DateInterval)) throw new ConfigError('enableGrantType: the access-token TTL must be a DateInterval');
    this.#accessTokenTtls.set(grant, ttl.getSeconds());
  }

  /** Grants changed after the core was built: build it again on the next request (same storage, same keys). */
  #changed(): void {
    const previous = this.#ready;
    if (previous === undefined) return;
    this.#ready = undefined;
    previous.then((b) => b.portcullis.close({ keepStorage: true }), () => {});
  }

  /** The core behind this server object (its `clients` and `users` registries, `metadata()`, `handle`…). */
  getPortcullis(): Promise<Portcullis> {
    return this.#built().then((b) => b.portcullis);
  }

  #built(): Promise<Built> {
    if (this.#closed) return Promise.reject(new Error('AuthorizationServer is closed'));
    if (this.#ready === undefined) {
      const building = this.#build();
      this.#ready = building;
      building.catch(() => {
        if (this.#ready === building) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #build(): Promise<Built> {
    const o = this.#options;
    let storage: Storage;
    if (this.#repositories !== undefined) {
      storage = storageFromRepositories(
        {
          ...this.#repositories,
          ...(this.#authCodeRepository !== undefined ? { authCodeRepository: this.#authCodeRepository } : {}),
          ...(this.#userRepository !== undefined ? { userRepository: this.#userRepository } : {}),
        },
        { ...o.repositoryStorage, inner: o.storage!, logger: this.#logger },
      );
    } else {
      storage = o.storage!;
      if (this.#authCodeRepository !== undefined && !isRepositoryStorage(storage)) {
        this.#logger.warn({ event: 'server_object.config' }, 'enableGrantType: authCodeRepository is ignored: codes are kept in the storage you passed (use storageFromRepositories to mirror them)');
      }
    }
    const repoStorage: RepositoryStorage | undefined = isRepositoryStorage(storage) ? storage : undefined;
    if (repoStorage !== undefined && repoStorage.inner.name === 'memory') {
      this.#logger.warn({ event: 'server_object.config' }, 'the inner store beside your repositories is in memory: grants, refresh tokens and signing keys are lost on restart (pass a durable storage)');
    }
    const userRepository = this.#userRepository ?? repoStorage?.repositories.userRepository;
    const scopeRepository = repoStorage?.repositories.scopeRepository;
    const clientEntity: ClientEntityLookup = async (clientId) => {
      if (repoStorage !== undefined) return repoStorage.clientEntity(clientId);
      const record = await storage.getClient(clientId);
      return record === undefined ? undefined : { ...clientView(record), secret: null };
    };

    const grants: GrantSwitches = { ...this.#switches };
    const customGrants = [...(o.customGrants ?? []), ...this.#customGrants];
    if (grants.password === true && userRepository !== undefined) {
      // The app's repository checks its own password hashes; the rest stays the core's.
      grants.password = false;
      customGrants.push(repositoryPasswordGrant(userRepository, clientEntity));
    }

    const ttls = [...this.#accessTokenTtls.values()];
    const ttl = { ...o.ttl };
    if (ttls.length > 0 && o.ttl?.accessToken === undefined) {
      ttl.accessToken = Math.min(...ttls);
      if (new Set(ttls).size > 1) {
        this.#logger.warn({ event: 'server_object.config', lifetimes: Object.fromEntries(this.#accessTokenTtls) }, 'per-grant access-token lifetimes differ: the core has one lifetime; the shortest applies');
      }
    }
    if (this.#authCodeTtl !== undefined && o.ttl?.authorizationCode === undefined) ttl.authorizationCode = this.#authCodeTtl;

    const scopeHook = scopeRepository !== undefined ? scopeRepositoryHook(scopeRepository, clientEntity) : undefined;
    const jwt = this.#jwt;
    const userHook = o.hooks?.beforeIssue;
    const beforeIssue = async (ctx: IssueContext): Promise<IssueDecision | void> => {
      try {
        if (scopeHook !== undefined) await scopeHook(ctx);
        let claims: Record<string, unknown> | undefined;
        if (jwt?.extraTokenFields !== undefined) {
          const client = await clientEntity(ctx.client.client_id);
          if (client !== undefined) {
            claims = { ...(await jwt.extraTokenFields({ client, ...(ctx.userId !== undefined ? { user: { id: ctx.userId } } : {}) })) };
          }
        }
        const decision = userHook !== undefined ? await userHook(ctx) : undefined;
        const merged = { ...claims, ...decision?.accessTokenClaims };
        return Object.keys(merged).length > 0 ? { accessTokenClaims: merged } : undefined;
      } catch (err) {
        if (isOAuthError(err)) throw coreErrorFromException(err);
        throw err;
      }
    };

    const { storage: _s, logger: _l, requiresPKCE, requiresS256, scopeDelimiter: _d, authenticateIntrospect: _ai, authenticateRevoke: _ar, introspectionRequiresConfidentialClient: _ic, useOpaqueAuthorizationCodes: _oc, useOpaqueRefreshTokens: _or, notBeforeLeeway: _nb, tokenCID: _cid, implicitRedirectMode: _irm, repositoryStorage: _rs, ...core } = o;
    const portcullis = await createPortcullis({
      ...core,
      storage,
      logger: this.#logger,
      grants,
      customGrants,
      ttl,
      hooks: { ...o.hooks, beforeIssue },
      pkce: {
        required: o.pkce?.required ?? requiresPKCE ?? true,
        allowPlain: o.pkce?.allowPlain ?? requiresS256 === false,
      },
    });
    let sealKey: Buffer;
    try {
      sealKey = await loadSealKey(storage, this.#clock);
    } catch (err) {
      await portcullis.close({ keepStorage: true });
      throw err;
    }
    return {
      portcullis,
      storage,
      routes: { ...DEFAULT_ROUTES, ...o.routes },
      sealKey,
      ...(scopeRepository !== undefined ? { scopeRepository } : {}),
      clientEntity,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Token, revocation, introspection, userinfo: the core's endpoints.

  /**
   * The token endpoint. Takes `requestFrom<Framework>(req)` or the framework's request itself.
   * Errors are thrown as {@link OAuthException} carrying the response to send (`handle<Framework>Error`).
   */
  respondToAccessTokenRequest(req: object, _res?: unknown): Promise<OAuthResponse> {
    return this.#endpoint(req, 'token', 'POST');
  }

  /** Token revocation (RFC 7009): the client authenticates; unknown or foreign tokens get the same 200. */
  revoke(req: object): Promise<OAuthResponse> {
    return this.#endpoint(req, 'revoke', 'POST');
  }

  /** Token introspection (RFC 7662): confidential clients only; `{ active: false }` for anything it may not see. */
  introspect(req: object): Promise<OAuthResponse> {
    return this.#endpoint(req, 'introspect', 'POST');
  }

  /** OIDC UserInfo (bearer token in the header or a form body). */
  userInfo(req: object): Promise<OAuthResponse> {
    return this.#endpoint(req, 'userinfo', 'GET');
  }

  /** The JWKS to publish at `routes.jwks` (public keys that verify access and ID tokens). */
  async jwks(): Promise<OAuthResponse> {
    const b = await this.#built();
    return fromCoreResponse(await b.portcullis.handle({ method: 'GET', path: b.routes.jwks, query: '', headers: {} }));
  }

  /**
   * The discovery document (OIDC Discovery / RFC 8414), from what is enabled. Serve it at
   * `/.well-known/openid-configuration` and mount your routes where `routes` says.
   */
  async openidConfiguration(): Promise<OAuthResponse> {
    const b = await this.#built();
    const metadata = b.portcullis.metadata();
    // The server object does not serve RP-initiated logout.
    delete metadata.end_session_endpoint;
    return new OAuthResponse({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' }, body: metadata });
  }

  async #endpoint(req: object, route: RouteName, method: 'GET' | 'POST'): Promise<OAuthResponse> {
    const b = await this.#built();
    const core = await this.#toCore(req, b.routes[route], method);
    const res = await b.portcullis.handle(core);
    if (res.status >= 400) throw exceptionFromResponse(res);
    return fromCoreResponse(res);
  }

  async #toCore(req: object, path: string, method: 'GET' | 'POST'): Promise<Parameters<Portcullis['handle']>[0]> {
    try {
      return await toCoreRequest(req, { path, method, maxBodyBytes: this.#options.maxBodyBytes ?? MAX_BODY_BYTES });
    } catch (err) {
      if (!(err instanceof OAuthError)) this.#logger.error({ event: 'server_object.bad_request_object', detail: err instanceof Error ? err.message : String(err) }, 'could not read the request');
      throw exceptionFromResponse(errorResponse(toOAuthError(err)));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Authorization: validate → the app's login and consent → complete.

  /**
   * Validate an authorization request (RFC 6749 §4.1.1 with PKCE, OIDC parameters). Until the client
   * and redirect URI are trusted, errors are an error page; after that, a redirect to the client with
   * `error` and `state` (thrown as an {@link OAuthException} carrying that response).
   */
  async validateAuthorizationRequest(req: object): Promise<AuthorizationRequest> {
    const b = await this.#built();
    const core = await this.#toCore(req, b.routes.authorize, 'GET');
    let request;
    try {
      request = await b.portcullis.authorization.validate(core);
    } catch (err) {
      throw this.#authorizeException(b, err);
    }
    const client = await b.storage.getClient(request.client_id);
    if (client === undefined) throw this.#authorizeException(b, new AuthorizeError('invalid_request', 'The client is unknown'));
    if (b.scopeRepository !== undefined) {
      const redirect = { uri: request.redirect_uri, mode: request.response_mode, ...(request.state !== undefined ? { state: request.state } : {}) };
      try {
        const entity = await b.clientEntity(request.client_id);
        if (entity === undefined) throw new OAuthError('invalid_request', 'The client is unknown');
        // The authorization request is narrowed to what the scope repository keeps.
        request.scope = await finalizeScopes(b.scopeRepository, request.scope, 'authorization_code', entity, undefined);
      } catch (err) {
        if (err instanceof OAuthError) throw this.#authorizeException(b, new AuthorizeError(err.error === 'invalid_scope' ? 'invalid_scope' : err.error, err.description, redirect));
        throw this.#authorizeException(b, err);
      }
    }
    return new AuthorizationRequest(request, sealRequest(b.sealKey, request), clientView(client));
  }

  /**
   * Complete a request: with `isAuthorizationApproved` and a `user`, a redirect to the client with a
   * code (bound to the client, redirect URI, PKCE challenge, scope and user); without approval, a
   * redirect with `access_denied`. Accepts the request object or its JSON form; each validated request
   * completes once, within ten minutes of its validation.
   */
  async completeAuthorizationRequest(authRequest: AuthorizationRequest | Record<string, unknown>): Promise<OAuthResponse> {
    const b = await this.#built();
    const page = (description: string): OAuthException => this.#authorizeException(b, new AuthorizeError('invalid_request', description));
    let ar: AuthorizationRequest;
    try {
      ar = AuthorizationRequest.fromJSON(authRequest);
    } catch {
      throw page('Not an authorization request of this server');
    }
    // What the app set, checked before the request is spent.
    const scope = (Array.isArray(ar.scopes) ? ar.scopes : []).map((s) => s?.name);
    if (scope.some((s) => typeof s !== 'string' || !ar.request?.scope?.includes(s))) throw page('authRequest.scopes may only be narrowed');
    const approved = ar.isAuthorizationApproved === true;
    const userId = ar.user?.id;
    if (approved && ((typeof userId !== 'string' && typeof userId !== 'number') || String(userId) === '')) {
      throw page('completeAuthorizationRequest: set authRequest.user (with an id) before approving');
    }
    const request = await this.#checked(b, ar);
    const authTime = ar.authTime instanceof Date ? Math.floor(ar.authTime.getTime() / 1000) : typeof ar.authTime === 'number' ? Math.floor(ar.authTime > 1e12 ? ar.authTime / 1000 : ar.authTime) : undefined;
    let res: CoreResponse;
    try {
      res = await b.portcullis.authorization.complete(request, {
        isAuthorizationApproved: approved,
        ...(approved ? { user: { id: String(userId), ...(authTime !== undefined ? { auth_time: authTime } : {}) } } : {}),
        scope: scope as string[],
      });
    } catch (err) {
      throw this.#authorizeException(b, err);
    }
    return fromCoreResponse(res);
  }

  /**
   * Answer a request with an error at the client's redirect URI, with its `state` (not in the seed):
   * `login_required` / `consent_required` / `interaction_required` for `prompt=none`, or
   * `access_denied`. The request must be one this server validated (sealed), so the redirect URI is
   * trusted; each request is answered once.
   */
  async rejectAuthorizationRequest(
    authRequest: AuthorizationRequest | Record<string, unknown>,
    error: 'access_denied' | 'login_required' | 'consent_required' | 'interaction_required' | 'account_selection_required',
    description?: string,
  ): Promise<OAuthResponse> {
    const b = await this.#built();
    const request = await this.#checked(b, authRequest);
    const redirect = { uri: request.redirect_uri, mode: request.response_mode, ...(request.state !== undefined ? { state: request.state } : {}) };
    return fromCoreResponse(b.portcullis.authorization.errorResponse(new AuthorizeError(error, description ?? REJECTIONS[error], redirect)));
  }

  /** The sealed core request of an authorization request that may still be answered (then marked answered). */
  async #checked(b: Built, authRequest: AuthorizationRequest | Record<string, unknown>): Promise<AuthorizationRequest['request']> {
    const page = (description: string): OAuthException => this.#authorizeException(b, new AuthorizeError('invalid_request', description));
    let ar: AuthorizationRequest;
    try {
      ar = AuthorizationRequest.fromJSON(authRequest);
    } catch {
      throw page('Not an authorization request of this server');
    }
    const request = ar.request;
    if (!verifySeal(b.sealKey, request, ar.seal)) throw page('The authorization request was altered or comes from another server');
    if (ar.redirectUri !== request.redirect_uri || ar.state !== request.state || ar.codeChallenge !== request.code_challenge || ar.client?.id !== request.client_id) {
      throw page('The authorization request was altered: only user, isAuthorizationApproved, authTime and (narrower) scopes may change');
    }
    const now = this.#clock();
    if (now >= request.expires_at) throw page('The authorization request has expired; start again');
    if (!(await b.storage.recordOnce(`server_object:authorization_request:${request.id}`, request.expires_at, now))) {
      throw page('This authorization request was already completed; start again');
    }
    return request;
  }

  #authorizeException(b: Built, err: unknown): OAuthException {
    const known = err instanceof AuthorizeError ? { code: err.authorizeError, description: err.description } : err instanceof OAuthError ? { code: err.error, description: err.description } : undefined;
    if (known === undefined) this.#logger.error({ event: 'authorization.failed', detail: err instanceof Error ? err.stack ?? err.message : String(err) }, 'authorization failed');
    const safe = known === undefined ? toOAuthError(err) : err;
    return exceptionFromResponse(b.portcullis.authorization.errorResponse(safe), known ?? { code: (safe as OAuthError).error, description: (safe as OAuthError).description });
  }

  /** Stop the core's timers and close the storage (the inner store, with repositories). */
  async close(options?: { keepStorage?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ready = this.#ready;
    this.#ready = undefined;
    if (ready !== undefined) {
      const b = await ready.catch(() => undefined);
      if (b !== undefined) await b.portcullis.close(options);
    } else if (options?.keepStorage !== true) {
      await this.#options.storage?.close();
    }
  }
}

function adaptLogger(logger: Logger | SeedLogger | undefined): Logger {
  if (logger === undefined) return silentLogger;
  if (typeof (logger as Logger).info === 'function' && typeof (logger as Logger).warn === 'function') return logger as Logger;
  const log = (logger as SeedLogger).log.bind(logger);
  const at = (level: string) => (obj: object, msg?: string): void => log(`[${level}] ${msg ?? ''}`, obj);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Seed options that cannot mean what they meant: refused when they would weaken a check, else noted. */
function checkSeedOptions(o: AuthorizationServerOptions, logger: Logger): void {
  if (o.scopeDelimiter !== undefined && o.scopeDelimiter !== ' ') throw new ConfigError('scopeDelimiter must be " " (RFC 6749 §3.3)');
  if (o.authenticateIntrospect === false) throw new ConfigError('authenticateIntrospect: false is not supported: introspection always authenticates the client (RFC 7662 §2.1)');
  if (o.authenticateRevoke === false) throw new ConfigError('authenticateRevoke: false is not supported: revocation always authenticates the client (RFC 7009 §2.1)');
  if (o.introspectionRequiresConfidentialClient === false) throw new ConfigError('introspectionRequiresConfidentialClient: false is not supported: public clients may not introspect');
  const ignored = (['useOpaqueAuthorizationCodes', 'useOpaqueRefreshTokens', 'notBeforeLeeway', 'tokenCID', 'implicitRedirectMode'] as const).filter((k) => o[k] !== undefined);
  if (ignored.length > 0) logger.info({ event: 'server_object.config', ignored }, 'seed options without effect here: codes and refresh tokens are always opaque, access tokens follow RFC 9068, implicit is never served');
  if (o.requiresS256 === false) logger.warn({ event: 'config.insecure' }, 'requiresS256: false allows PKCE plain (RFC 9700 §2.1.1 says S256 only)');
}

/** The HMAC key that seals authorization requests: kept in storage, so every instance agrees. */
async function loadSealKey(storage: Storage, clock: Clock): Promise<Buffer> {
  const now = clock();
  const read = async (): Promise<Buffer | undefined> => {
    const key = (await storage.findArtifact('server_secret', SEAL_SECRET_ID, now))?.data?.key;
    return typeof key === 'string' ? Buffer.from(key, 'base64url') : undefined;
  };
  const existing = await read();
  if (existing !== undefined) return existing;
  const key = randomBytes(32);
  try {
    await storage.saveArtifact({ kind: 'server_secret', id: SEAL_SECRET_ID, client_id: '', scope: '', created_at: now, expires_at: FOREVER, data: { key: key.toString('base64url') } });
    return key;
  } catch (err) {
    const winner = await read();
    if (winner !== undefined) return winner;
    throw err;
  }
}
