/**
 * A built flow design: assembles `PortcullisOptions` and one `generateToken` hook from the flows,
 * creates the Portcullis core, and serves it with the builders' routes (discovery per flow kind, the
 * JWKS when the flows publish it, a separate refresh path when configured).
 */
import { fetchToOAuthRequest, oauthResponseToFetch } from '../adapters/fetch.js';
import { sortMethods } from './client-auth.js';
import { systemClock } from '../core/clock.js';
import { ConfigError, OAuthError, toOAuthError } from '../core/errors.js';
import { parseFormMulti } from '../core/form.js';
import { noStoreJson, publicJson, type OAuthRequest, type OAuthResponse } from '../core/http.js';
import { silentLogger } from '../core/logger.js';
import { allowDelegatedClientAuthentication, type GenerateTokenContext, type GenerateTokenResult, type PortcullisOptions, type RouteOptions } from '../core/options.js';
import { errorResponse } from '../endpoints/respond.js';
import type { Portcullis } from '../portcullis-types.js';
import { createPortcullis } from '../provider.js';
import { createMemoryStorage } from '../storage/memory.js';
import type { Storage } from '../storage/contract.js';
import { buildTokenContext, type HelperEnvironment } from './context.js';
import type { CoreSettings, FlowDefinition } from './flow.js';
import { createHapiPlugin, type HapiPlugin, type HapiPluginOptions } from './hapi.js';
import { toOpenAPISecurityScheme, type OpenAPISecurityScheme } from './openapi.js';

/** What `build()` hands the design. */
export interface DesignDefinition {
  flows: FlowDefinition[];
  multiple: boolean;
  tokenPath: string;
  jwksPath: string;
  jwksServed: boolean;
  schemeName: string;
  description?: string;
  additionalConfiguration: Record<string, unknown>;
  core: CoreSettings;
}

export interface StartOptions {
  /** The issuer, when the builder did not set one (`setIssuer`). */
  issuer?: string;
  /** The storage, when the builder did not set one (default: in memory). */
  storage?: Storage;
}

/** `registry`: registered clients, authenticated by the core. `delegated`: none; your handlers check the raw credentials. */
export type DesignMode = 'registry' | 'delegated';

/** A started design: a {@link Portcullis} (so `toNodeListener` / `toFetchHandler` work) with the builders' routing. */
export interface BuiltServer extends Portcullis {
  readonly mode: DesignMode;
  /** The core underneath, without the builders' routing. */
  readonly core: Portcullis;
}

/** Core routes the builders name, under `/oauth2/` like the seed package's. */
const BUILDER_ROUTES: Omit<RouteOptions, 'token' | 'jwks' | 'authorize' | 'device_authorization' | 'device'> = {
  revoke: '/oauth2/revoke',
  introspect: '/oauth2/introspect',
  userinfo: '/oauth2/userinfo',
  end_session: '/oauth2/logout',
  interaction: '/oauth2/interaction',
};

/** Discovery members about endpoints that delegated mode does not serve. */
const NOT_SERVED_WHEN_DELEGATED = [
  'authorization_endpoint',
  'device_authorization_endpoint',
  'userinfo_endpoint',
  'end_session_endpoint',
  'revocation_endpoint',
  'revocation_endpoint_auth_methods_supported',
  'revocation_endpoint_auth_signing_alg_values_supported',
  'introspection_endpoint',
  'introspection_endpoint_auth_methods_supported',
  'introspection_endpoint_auth_signing_alg_values_supported',
  'response_modes_supported',
  'code_challenge_methods_supported',
  'authorization_response_iss_parameter_supported',
  'prompt_values_supported',
  'acr_values_supported',
  'claims_parameter_supported',
  'request_parameter_supported',
  'request_uri_parameter_supported',
];

export class FlowDesign {
  readonly #def: DesignDefinition;
  #started: Promise<BuiltServer> | undefined;
  #startedIssuer: string | undefined;
  #built: BuiltServer | undefined;

  constructor(definition: DesignDefinition) {
    this.#def = definition;
    this.#checkStatic();
  }

  /** The flows of this design (read-only copies). */
  get flows(): readonly FlowDefinition[] {
    return this.#def.flows;
  }

  /** Path of the token endpoint. */
  get tokenPath(): string {
    return this.#def.tokenPath;
  }

  /** The security scheme name (OpenAPI) — kaapi's strategy name. */
  getStrategyName(): string {
    return this.#def.schemeName;
  }

  /** Client-authentication methods the token endpoint accepts (discovery order). */
  getTokenEndpointAuthMethods(): string[] {
    return sortMethods(this.#def.flows.flatMap((f) => f.methods));
  }

  /** Scopes of every flow, with descriptions. */
  getScopes(): Record<string, string> {
    return Object.assign({}, ...this.#def.flows.map((f) => f.scopes ?? {})) as Record<string, string>;
  }

  getDescription(): string | undefined {
    return this.#def.description;
  }

  /**
   * Create the core and start serving (once; later calls return the same server). The issuer comes
   * from `setIssuer` or `options.issuer`. Registry mode when clients are registered (`addClient`, or
   * already in storage); otherwise delegated mode, with a loud warning.
   */
  start(options: StartOptions = {}): Promise<BuiltServer> {
    const issuer = options.issuer ?? this.#def.core.issuer;
    if (this.#started !== undefined) {
      if (issuer !== undefined && this.#startedIssuer !== undefined && issuer !== this.#startedIssuer) {
        return Promise.reject(new ConfigError(`this design already runs with issuer ${this.#startedIssuer}`));
      }
      return this.#started;
    }
    if (issuer === undefined) return Promise.reject(new ConfigError('the design needs an issuer: builder.setIssuer(url), start({ issuer }) or the Hapi plugin option issuer'));
    this.#startedIssuer = issuer;
    this.#started = this.#start(issuer, options.storage);
    this.#started.then(
      (built) => {
        this.#built = built;
      },
      () => {
        this.#started = undefined;
        this.#startedIssuer = undefined;
      },
    );
    return this.#started;
  }

  /** Handle one request (starts the design on first use; the issuer must be set). Never throws. */
  async handle(req: OAuthRequest): Promise<OAuthResponse> {
    try {
      return await (await this.start()).handle(req);
    } catch (thrown) {
      return errorResponse(toOAuthError(thrown));
    }
  }

  /** The design as a WHATWG fetch handler (starts it on first use). */
  async fetch(request: Request): Promise<Response> {
    try {
      return await (await this.start()).fetch(request);
    } catch (thrown) {
      return oauthResponseToFetch(errorResponse(toOAuthError(thrown)));
    }
  }

  /** The running server, once started. */
  get server(): BuiltServer | undefined {
    return this.#built;
  }

  /**
   * The routes served in a mode, paths relative to the issuer, in Hapi's path syntax (the hosted
   * interaction pages are `<interaction>/{uid}/{action?}`). The Hapi plugin registers exactly these.
   */
  routeTable(mode: DesignMode): Array<{ method: 'GET' | 'POST'; path: string }> {
    const def = this.#def;
    const routes = this.#routes();
    const out: Array<{ method: 'GET' | 'POST'; path: string }> = [{ method: 'POST', path: def.tokenPath }];
    const refreshPath = this.#refreshPath();
    if (refreshPath !== undefined && refreshPath !== def.tokenPath) out.push({ method: 'POST', path: refreshPath });
    if (def.jwksServed) out.push({ method: 'GET', path: def.jwksPath });
    for (const path of this.#wellKnownPaths('')) out.push({ method: 'GET', path });
    if (mode === 'registry') {
      const kinds = new Set(def.flows.map((f) => f.kind));
      if (kinds.has('authorization_code')) {
        for (const path of [routes.authorize, `${routes.interaction}/{uid}/{action?}`, routes.userinfo, routes.end_session]) {
          out.push({ method: 'GET', path }, { method: 'POST', path });
        }
      }
      if (kinds.has('device_code')) {
        out.push({ method: 'POST', path: routes.device_authorization }, { method: 'GET', path: routes.device }, { method: 'POST', path: routes.device });
        out.push({ method: 'POST', path: `${routes.device}/login` }, { method: 'POST', path: `${routes.device}/confirm` });
      }
      out.push({ method: 'POST', path: routes.revoke }, { method: 'POST', path: routes.introspect });
    }
    return out;
  }

  /**
   * The OpenAPI 3.1 security scheme of this design (kaapi's `docs()`): `openIdConnect` for OIDC
   * designs, else `oauth2` with its flows. URLs are absolute once the issuer is known.
   */
  toOpenAPISecurityScheme(options: { issuer?: string } = {}): OpenAPISecurityScheme {
    const issuer = options.issuer ?? this.#startedIssuer ?? this.#def.core.issuer;
    return toOpenAPISecurityScheme(this.#def, issuer, this.#refreshPath());
  }

  /** `{ name, scheme }`, for `components.securitySchemes[name] = scheme`. */
  docs(options: { issuer?: string } = {}): { name: string; scheme: OpenAPISecurityScheme } {
    return { name: this.#def.schemeName, scheme: this.toOpenAPISecurityScheme(options) };
  }

  /**
   * A Hapi 21 plugin serving this design: `await server.register({ plugin: design.hapiPlugin(), options: { issuer } })`.
   * It starts the design at registration and closes it when the Hapi server stops.
   */
  hapiPlugin(defaults: HapiPluginOptions = {}): HapiPlugin {
    return createHapiPlugin(this, defaults);
  }

  /** Stop the server (timers; the storage too when the design created it). */
  async close(): Promise<void> {
    const started = this.#started;
    if (started === undefined) return;
    const built = await started.catch(() => undefined);
    await built?.close();
  }

  // -------------------------------------------------------------------------------------------

  #routes(): RouteOptions {
    const def = this.#def;
    const ac = def.flows.find((f) => f.kind === 'authorization_code');
    const device = def.flows.find((f) => f.kind === 'device_code');
    return {
      token: def.tokenPath,
      jwks: def.jwksPath,
      authorize: ac?.authorization?.path ?? '/oauth2/authorize',
      device_authorization: device?.authorization?.path ?? '/oauth2/devicecode',
      device: device?.authorization?.verificationPath ?? '/oauth2/device',
      ...BUILDER_ROUTES,
      ...def.core.options.routes,
    };
  }

  #refreshPath(): string | undefined {
    return this.#def.flows.find((f) => f.refresh !== undefined)?.refresh?.path;
  }

  #oidc(): boolean {
    return this.#def.flows.some((f) => f.oidc);
  }

  /** Discovery paths served (issuer-relative ones, and the RFC 8414 path-inserted one when the issuer has a path). */
  #wellKnownPaths(issuerPath: string): string[] {
    const paths = ['/.well-known/oauth-authorization-server', ...(issuerPath !== '' ? [`/.well-known/oauth-authorization-server${issuerPath}`] : [])];
    if (this.#oidc()) paths.push('/.well-known/openid-configuration', ...(issuerPath !== '' ? [`/.well-known/openid-configuration${issuerPath}`] : []));
    return paths;
  }

  /** Checks that need no storage (build time). */
  #checkStatic(): void {
    const def = this.#def;
    if (def.flows.length === 0) throw new ConfigError('a design needs at least one flow');
    const kinds = def.flows.map((f) => f.kind);
    if (new Set(kinds).size !== kinds.length) throw new ConfigError('each flow kind may appear once in a design');
    const refreshPaths = new Set(def.flows.flatMap((f) => (f.refresh !== undefined ? [f.refresh.path] : [])));
    if (refreshPaths.size > 1) throw new ConfigError('every refreshTokenRoute of a design must use the same path');
    const refreshPath = this.#refreshPath();
    if (refreshPath !== undefined && refreshPath !== def.tokenPath && (refreshPath === def.jwksPath || this.#wellKnownPaths('').includes(refreshPath))) {
      throw new ConfigError('refreshTokenRoute: the path is already used by another route');
    }
    if (def.jwksServed && def.jwksPath === def.tokenPath) throw new ConfigError('jwksRoute: the path is the token endpoint');
  }

  async #start(issuer: string, storageOverride: Storage | undefined): Promise<BuiltServer> {
    const def = this.#def;
    const createdStorage = storageOverride === undefined && def.core.storage === undefined;
    const storage = storageOverride ?? def.core.storage ?? createMemoryStorage();
    const logger = def.core.logger ?? silentLogger;
    const existing = await storage.listClients();
    const mode: DesignMode = def.core.clients.length > 0 || existing.length > 0 ? 'registry' : 'delegated';
    if (mode === 'delegated') this.#checkDelegated();

    const clock = def.core.options.clock ?? systemClock;
    const flows = def.flows;
    const has = (kind: FlowDefinition['kind']): FlowDefinition | undefined => flows.find((f) => f.kind === kind);
    const served = (flow: FlowDefinition | undefined): boolean => flow !== undefined && (mode === 'registry' || flow.tokenHandler !== undefined);
    const refreshHandlers = flows.filter((f) => f.refresh?.handler !== undefined);
    const grants = {
      authorization_code: served(has('authorization_code')),
      client_credentials: served(has('client_credentials')),
      device_code: served(has('device_code')),
      refresh_token: mode === 'registry' ? has('authorization_code') !== undefined || has('device_code') !== undefined : refreshHandlers.length > 0,
      password: false,
      token_exchange: false,
      jwt_bearer: false,
    };
    const anyScopes = flows.some((f) => f.scopes !== undefined);
    const scopes = anyScopes ? (Object.assign({}, ...flows.map((f) => f.scopes ?? {})) as Record<string, string>) : undefined;
    const maxTtl = Math.max(...flows.map((f) => f.ttl));

    let core: Portcullis | undefined;
    const env: HelperEnvironment = {
      issuer,
      defaultAudience: def.core.options.accessTokenAudience ?? issuer,
      clock,
      verify: (token, typ) => core?.keys.verify(token, typ),
    };
    const generateToken = async (ctx: GenerateTokenContext): Promise<GenerateTokenResult> => {
      let flow: FlowDefinition | undefined;
      let handler: ((context: never, request: OAuthRequest) => unknown) | undefined;
      if (ctx.grantType === 'refresh_token') {
        // Registry mode: the flow that started the grant; delegated mode: the one flow with a refresh route.
        flow = ctx.grant !== undefined ? flows.find((f) => f.grantType === ctx.grant!.grant_type) : refreshHandlers[0];
        handler = flow?.refresh?.handler;
      } else {
        flow = flows.find((f) => f.grantType === ctx.grantType);
        handler = flow?.tokenHandler;
      }
      if (flow !== undefined && !flow.methods.includes(ctx.authMethod)) {
        logger.info({ event: 'token.refused', client_id: ctx.client.client_id, method: ctx.authMethod }, 'client authentication method not accepted by this flow');
        return { error: 'invalid_client' };
      }
      if (flow === undefined || handler === undefined) {
        if (ctx.clientAuthentication === 'registry') return ctx.mint.defaultResponse();
        return null;
      }
      const context = buildTokenContext(ctx, flow.ttl, env);
      return (await handler(context as never, ctx.request)) as GenerateTokenResult;
    };

    const options: PortcullisOptions = {
      ...def.core.options,
      issuer,
      storage,
      logger,
      grants,
      ttl: { ...def.core.options.ttl, accessToken: maxTtl, idToken: maxTtl },
      routes: this.#routes(),
      clientAuthMethods: sortMethods(flows.flatMap((f) => f.methods)),
      clientAuthentication: mode,
      ...(scopes !== undefined ? { scopes } : {}),
      // Always installed: it also enforces each flow's client-authentication methods (the core knows their union only).
      hooks: { generateToken },
    };
    allowDelegatedClientAuthentication(options);
    core = await createPortcullis(options);
    try {
      for (const client of def.core.clients) await core.clients.upsert(client);
      for (const user of def.core.users) await core.users.upsert(user);
    } catch (err) {
      await core.close({ keepStorage: !createdStorage });
      throw err;
    }
    logger.info({ event: 'builders.started', mode, flows: flows.map((f) => f.grantType), issuer }, 'flow design started');
    return this.#serve(core, mode, createdStorage);
  }

  /** Delegated mode: what cannot work without registered clients is refused at start, clearly. */
  #checkDelegated(): void {
    const def = this.#def;
    for (const flow of def.flows) {
      if (flow.authorization?.requested === true) {
        throw new ConfigError(
          `${flow.strategyName}: authorizationRoute() serves the core's ${flow.kind === 'device_code' ? 'device authorization endpoint and verification page' : 'authorization endpoint'}, which needs registered clients (addClient): it checks client_id and redirect_uri against the registry`,
        );
      }
      const jwt = flow.methods.filter((m) => m === 'client_secret_jwt' || m === 'private_key_jwt');
      if (jwt.length > 0) throw new ConfigError(`${flow.strategyName}: ${jwt.join(', ')} needs registered clients (addClient): their keys or secrets live in the registry`);
    }
    if (def.flows.filter((f) => f.refresh?.handler !== undefined).length > 1) {
      throw new ConfigError('without registered clients the server cannot tell which flow issued a refresh token: define refreshTokenRoute on one flow only');
    }
    if (!def.flows.some((f) => f.tokenHandler !== undefined || f.refresh?.handler !== undefined)) {
      throw new ConfigError('no client is registered (addClient) and no generateToken handler is set: the token endpoint could serve nothing');
    }
  }

  #serve(core: Portcullis, mode: DesignMode, createdStorage: boolean): BuiltServer {
    const def = this.#def;
    const issuerPath = new URL(core.issuer).pathname.replace(/\/$/, '');
    const wellKnown = new Set(this.#wellKnownPaths(issuerPath));
    const allWellKnown = new Set([
      '/.well-known/openid-configuration',
      `/.well-known/openid-configuration${issuerPath}`,
      `/.well-known/oauth-authorization-server${issuerPath}`,
      '/.well-known/oauth-authorization-server',
    ]);
    const metadata = this.#metadata(core, mode);
    const metadataJson = JSON.stringify(metadata);
    const refreshPath = this.#refreshPath();
    const separateRefresh = refreshPath !== undefined && refreshPath !== def.tokenPath;
    const maxBodyBytes = def.core.options.maxBodyBytes ?? 64 * 1024;
    const logger = def.core.logger ?? silentLogger;

    const route = async (req: OAuthRequest): Promise<OAuthResponse> => {
      let path = req.path;
      if (issuerPath !== '' && path.startsWith(issuerPath + '/')) path = path.slice(issuerPath.length);
      if (allWellKnown.has(path) || allWellKnown.has(req.path)) {
        if (!wellKnown.has(path) && !wellKnown.has(req.path)) return notFound();
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          throw new OAuthError('invalid_request', 'The request must use GET', { status: 405, headers: { allow: 'GET, HEAD' } });
        }
        const res = publicJson(undefined, 300);
        res.body = metadataJson;
        return res;
      }
      if (path === def.jwksPath && !def.jwksServed) return notFound();
      if (separateRefresh && (path === refreshPath || path === def.tokenPath) && req.method === 'POST') {
        const grantType = parseFormMulti(req, maxBodyBytes).single.grant_type;
        if (path === refreshPath) {
          if (grantType === undefined) throw new OAuthError('invalid_request', 'Missing parameter: grant_type');
          if (grantType !== 'refresh_token') throw new OAuthError('unsupported_grant_type', 'The grant type is not supported by this server');
          return core.handle({ ...req, path: issuerPath + def.tokenPath });
        }
        if (grantType === 'refresh_token') throw new OAuthError('unsupported_grant_type', 'The grant type is not supported by this server');
      }
      return core.handle(req);
    };
    const handle = async (req: OAuthRequest): Promise<OAuthResponse> => {
      try {
        return await route(req);
      } catch (thrown) {
        const err = toOAuthError(thrown);
        if (err.status >= 500) logger.error({ event: 'request.failed', error: err.error, path: req.path, detail: err.detail }, 'request failed');
        return errorResponse(err);
      }
    };
    const built: BuiltServer = {
      ...core,
      mode,
      core,
      handle,
      async fetch(request: Request): Promise<Response> {
        let req: OAuthRequest;
        try {
          req = await fetchToOAuthRequest(request, { maxBodyBytes });
        } catch (thrown) {
          return oauthResponseToFetch(errorResponse(toOAuthError(thrown)));
        }
        return oauthResponseToFetch(await handle(req));
      },
      metadata: () => structuredClone(metadata),
      close: (options) => core.close({ keepStorage: options?.keepStorage ?? !createdStorage }),
    };
    return built;
  }

  /** The discovery document: the core's, minus what this design does not serve, plus additionalConfiguration. */
  #metadata(core: Portcullis, mode: DesignMode): Record<string, unknown> {
    const def = this.#def;
    const meta = core.metadata();
    if (mode === 'delegated') {
      for (const key of NOT_SERVED_WHEN_DELEGATED) delete meta[key];
      // ID tokens are the app's in delegated mode: only the claims the helpers always set.
      if (meta.claims_supported !== undefined) meta.claims_supported = ['sub', 'iss', 'aud', 'exp', 'iat', 'azp'];
    }
    if (!def.jwksServed) delete meta.jwks_uri;
    if (this.#oidc()) {
      meta.subject_types_supported ??= ['public'];
      meta.id_token_signing_alg_values_supported ??= [...new Set([core.keys.algorithm, ...core.keys.algorithms()])];
      meta.claims_supported ??= ['sub', 'iss', 'aud', 'exp', 'iat'];
    }
    const grantTypes = meta.grant_types_supported;
    if (Array.isArray(grantTypes) && !grantTypes.includes('authorization_code')) meta.response_types_supported = [];
    const base = core.issuer.replace(/\/$/, '');
    for (const [key, value] of Object.entries(def.additionalConfiguration)) {
      meta[key] = typeof value === 'string' && value.startsWith('/') && /(_endpoint|_uri)$/.test(key) ? base + value : value;
    }
    return meta;
  }
}

function notFound(): OAuthResponse {
  return noStoreJson(404, { error: 'not_found', error_description: 'No such endpoint' });
}
