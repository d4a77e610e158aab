import { ClientRegistry } from './clients/registry.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from './clients/metadata.js';
import type { ClientAuthOptions } from './client-auth/types.js';
import { checkDelegatedClientAuthentication } from './client-auth/index.js';
import { systemClock } from './core/clock.js';
import { ConfigError, OAuthError, toOAuthError } from './core/errors.js';
import type { OAuthRequest, OAuthResponse } from './core/http.js';
import { silentLogger } from './core/logger.js';
import { DEFAULT_DEVICE_FLOW, DEFAULT_ROUTES, DEFAULT_TTL, isDelegationAllowed, type PortcullisOptions, type RouteOptions } from './core/options.js';
import { ScopePolicy } from './core/scope-policy.js';
import { isLoopbackHost } from './core/loopback.js';
import { STANDARD_SCOPES } from './oidc/claims.js';
import { Sealer } from './core/seal.js';
import { buildMetadata, discoveryEndpoint } from './endpoints/discovery.js';
import { healthEndpoint, readinessEndpoint } from './endpoints/health.js';
import { introspectionEndpoint } from './endpoints/introspection.js';
import { jwksEndpoint } from './endpoints/jwks.js';
import { errorResponse } from './endpoints/respond.js';
import { revocationEndpoint } from './endpoints/revocation.js';
import { tokenEndpoint } from './endpoints/token.js';
import { fetchToOAuthRequest, oauthResponseToFetch } from './adapters/fetch.js';
import { clientCredentialsGrant } from './grants/client-credentials.js';
import type { GrantHandler } from './grants/grant.js';
import { passwordGrant } from './grants/password.js';
import { createTokenExchangeGrant } from './grants/token-exchange.js';
import { createJwtBearerGrant } from './grants/jwt-bearer.js';
import { refreshTokenGrant } from './grants/refresh-token.js';
import { deviceCodeGrant } from './grants/device-code.js';
import { deviceAuthorizationEndpoint } from './device/authorization-endpoint.js';
import { deviceVerificationEndpoint } from './device/verification.js';
import { KeyManager } from './keys/key-manager.js';
import type { Portcullis } from './portcullis-types.js';
import type { ServerContext } from './server-context.js';
import { TokenService } from './tokens/token-service.js';
import { normalizeResourceOptions } from './tokens/resource-indicators.js';
import { UserRegistry } from './users/registry.js';
import { authorizationCodeGrant } from './grants/authorization-code.js';
import { authorizeEndpoint, interactionEndpoint } from './interaction/hosted.js';
import { userinfoEndpoint } from './endpoints/userinfo.js';
import { endSessionEndpoint } from './endpoints/end-session.js';
import { CookieSigner } from './interaction/cookies.js';
import { resolveCookieKeys } from './interaction/cookie-keys.js';
import { SessionManager } from './interaction/sessions.js';
import { defaultPages } from './interaction/pages.js';
import { authorizationErrorResponse, completeAuthorizationRequest, validateAuthorizationRequest } from './authorize/service.js';

const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

/**
 * Create an authorization server over a storage backend.
 * @example
 * ```ts
 * import { createPortcullis } from 'portcullis';
 * import { createMemoryStorage } from 'portcullis/storage/memory';
 * const server = await createPortcullis({ issuer: 'http://127.0.0.1:3000', storage: createMemoryStorage() });
 * await server.clients.upsert({ client_id: 'svc', client_secret: 'a-long-secret-value', grant_types: ['client_credentials'] });
 * ```
 */
export async function createPortcullis(options: PortcullisOptions): Promise<Portcullis> {
  const issuer = validateIssuer(options.issuer, options.allowInsecureIssuer === true);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const storage = options.storage;
  const ttl = { ...DEFAULT_TTL, ...options.ttl };
  for (const [name, value] of Object.entries(ttl)) {
    if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`ttl.${name} must be a positive whole number of seconds`);
  }
  const routes: RouteOptions = { ...DEFAULT_ROUTES, ...options.routes };
  for (const [name, path] of Object.entries(routes)) {
    if (typeof path !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(path)) throw new ConfigError(`routes.${name} must be a path starting with /`);
  }
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  const endpoints = Object.fromEntries(Object.entries(routes).map(([k, p]) => [k, base + p])) as Record<keyof RouteOptions, string>;
  const sealer = options.keyEncryptionSecret !== undefined ? new Sealer(options.keyEncryptionSecret) : undefined;

  const grants = new Map<string, GrantHandler>();
  const switches = { authorization_code: true, client_credentials: true, refresh_token: true, password: false, ...options.grants };
  if (switches.authorization_code) grants.set(authorizationCodeGrant.type, authorizationCodeGrant);
  if (switches.client_credentials) grants.set(clientCredentialsGrant.type, clientCredentialsGrant);
  if (switches.refresh_token) grants.set(refreshTokenGrant.type, refreshTokenGrant);
  // RFC 8628: users sign in on the hosted pages, so the device flow follows authorization_code unless set.
  const deviceFlowOn = switches.device_code ?? switches.authorization_code;
  if (deviceFlowOn) grants.set(deviceCodeGrant.type, deviceCodeGrant);
  if (switches.password) grants.set(passwordGrant.type, passwordGrant);
  // RFC 8693 and RFC 7523 grants: off unless switched on (grants.token_exchange / grants.jwt_bearer).
  if (switches.token_exchange === true) {
    const tokenExchange = createTokenExchangeGrant(options.tokenExchange ?? {}, { issuer, defaultAudience: options.accessTokenAudience ?? issuer });
    grants.set(tokenExchange.type, tokenExchange);
  }
  if (switches.jwt_bearer === true) {
    const jwtBearer = createJwtBearerGrant(options.jwtBearer ?? { trustedIssuers: [] }, issuer);
    grants.set(jwtBearer.type, jwtBearer);
  }
  for (const custom of options.customGrants ?? []) {
    if (typeof custom.type !== 'string' || custom.type === '' || typeof custom.handle !== 'function') {
      throw new ConfigError('customGrants: each grant needs a `type` string and a `handle` function');
    }
    if (grants.has(custom.type)) throw new ConfigError(`customGrants: grant type ${custom.type} is already registered`);
    grants.set(custom.type, custom);
  }
  const grantTypes = Object.freeze([...grants.keys()]);

  const deviceFlow = { ...DEFAULT_DEVICE_FLOW, ...options.deviceFlow };
  for (const [name, value] of Object.entries(deviceFlow)) {
    if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`deviceFlow.${name} must be a positive whole number`);
  }

  const methods = options.clientAuthMethods ?? [...TOKEN_ENDPOINT_AUTH_METHODS];
  for (const m of methods) if (!TOKEN_ENDPOINT_AUTH_METHODS.includes(m)) throw new ConfigError(`clientAuthMethods: unknown method ${String(m)}`);

  // Who authenticates clients at the token endpoint (see ClientAuthenticationMode in core/options.ts).
  const clientAuthentication = options.clientAuthentication ?? 'registry';
  if (clientAuthentication !== 'registry' && clientAuthentication !== 'delegated') throw new ConfigError("clientAuthentication must be 'registry' or 'delegated'");
  if (options.hooks?.generateToken !== undefined && typeof options.hooks.generateToken !== 'function') throw new ConfigError('hooks.generateToken must be a function');
  if (clientAuthentication === 'delegated') await checkDelegatedClientAuthentication(options, isDelegationAllowed(options), storage, logger);

  // RFC 8707 per-resource settings; their lifetimes count for how long retired keys stay published.
  const resources = normalizeResourceOptions(options.resources);
  const resourceTtls = [...resources.values()].map((r) => r.accessTokenTtl ?? 0);
  const maxTokenLifetime = Math.max(ttl.accessToken, ttl.idToken, ...resourceTtls);
  const keys = await KeyManager.open({
    storage,
    clock,
    logger,
    maxTokenLifetime,
    ...(options.signingAlgorithm !== undefined ? { algorithm: options.signingAlgorithm } : {}),
    ...(sealer !== undefined ? { sealer } : {}),
    ...(options.keyRotationDelay !== undefined ? { rotationDelay: options.keyRotationDelay } : {}),
  });
  keys.startAutoReload(60);
  const idTokenSigningAlgorithm = options.idTokenSigningAlgorithm ?? options.signingAlgorithm ?? 'ES256';
  // ID tokens: the server's algorithm, and RS256, which many relying parties expect (OIDC Registration's default).
  const idTokenAlgorithms = [...new Set([idTokenSigningAlgorithm, 'RS256' as const])];
  if (switches.authorization_code || deviceFlowOn) for (const alg of idTokenAlgorithms) await keys.ensure(alg);
  for (const alg of new Set([...resources.values()].flatMap((r) => (r.signingAlgorithm !== undefined ? [r.signingAlgorithm] : [])))) await keys.ensure(alg);
  const issuerUrl = new URL(issuer);
  const cookie = { path: issuerUrl.pathname === '/' ? '/' : issuerUrl.pathname.replace(/\/$/, ''), secure: issuerUrl.protocol === 'https:' };
  const signer = new CookieSigner(
    await resolveCookieKeys({
      storage,
      clock,
      ...(options.cookieKeys !== undefined ? { cookieKeys: options.cookieKeys } : {}),
      ...(options.keyEncryptionSecret !== undefined ? { keyEncryptionSecret: options.keyEncryptionSecret } : {}),
    }),
  );
  const pkce = { required: options.pkce?.required ?? true, allowPlain: options.pkce?.allowPlain ?? false };
  if (pkce.allowPlain) logger.warn({ event: 'config.insecure' }, 'PKCE plain is allowed (pkce.allowPlain): RFC 9700 §2.1.1 says use S256 only');

  const clientAuth: ClientAuthOptions = {
    storage,
    issuer,
    tokenEndpoint: endpoints.token,
    clock,
    logger,
    methods,
    assertionSigningAlgorithms: ASSERTION_ALGORITHMS,
    maxAssertionLifetime: 300,
    clockTolerance: 15,
    maxFailuresPerMinute: 20,
    ...(sealer !== undefined ? { sealer } : {}),
  };
  const tokens = new TokenService({
    issuer,
    storage,
    keys,
    clock,
    ttl,
    accessTokenFormat: options.accessTokenFormat ?? 'jwt',
    accessTokenAudience: options.accessTokenAudience ?? issuer,
    resources,
  });
  const server: ServerContext = {
    issuer,
    storage,
    clock,
    logger,
    keys,
    tokens,
    scopes: new ScopePolicy(options.scopes, switches.authorization_code ? STANDARD_SCOPES : {}),
    ttl,
    routes,
    endpoints,
    clientAuth,
    passwordGrant: { maxAttemptsPerUser: 5, maxFailuresPerClient: 100, windowSeconds: 900, ...options.passwordGrant },
    hooks: options.hooks ?? {},
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    grantTypes: () => grantTypes,
    pkce,
    pages: { ...defaultPages, ...options.pages },
    serviceName: options.serviceName ?? 'Portcullis',
    sessions: new SessionManager(storage, clock, signer, { ...cookie, ttl: ttl.session }),
    signer,
    cookie,
    loginThrottle: { maxAttemptsPerUser: 5, maxAttemptsPerAddress: 30, windowSeconds: 900, ...options.loginThrottle },
    deviceFlow,
    idTokenSigningAlgorithm,
  };

  const metadata = buildMetadata(server);
  const metadataJson = JSON.stringify(metadata);
  const issuerPath = new URL(issuer).pathname.replace(/\/$/, '');
  const wellKnown = new Set([
    '/.well-known/openid-configuration',
    `/.well-known/oauth-authorization-server${issuerPath}`,
    `/.well-known/openid-configuration${issuerPath}`,
  ]);

  async function route(req: OAuthRequest): Promise<OAuthResponse> {
    let path = req.path;
    if (issuerPath !== '' && path.startsWith(issuerPath + '/')) path = path.slice(issuerPath.length);
    if (path === routes.token) return tokenEndpoint(req, server, grants, clientAuthentication);
    // Delegated client authentication: only the token endpoint, the JWKS, discovery and health.
    if (clientAuthentication === 'delegated' && path !== routes.jwks && !wellKnown.has(path) && !wellKnown.has(req.path) && path !== '/healthz' && path !== '/readyz') return notFound();
    if (deviceFlowOn) {
      if (path === routes.device_authorization) return deviceAuthorizationEndpoint(req, server);
      if (path === routes.device) return deviceVerificationEndpoint(req, server, undefined);
      if (path === `${routes.device}/login`) return deviceVerificationEndpoint(req, server, 'login');
      if (path === `${routes.device}/confirm`) return deviceVerificationEndpoint(req, server, 'confirm');
    }
    if (switches.authorization_code) {
      if (path === routes.authorize) return authorizeEndpoint(req, server);
      if (path.startsWith(routes.interaction + '/')) {
        const [uid = '', action, ...rest] = path.slice(routes.interaction.length + 1).split('/');
        if (rest.length === 0) return interactionEndpoint(req, server, uid, action);
      }
      if (path === routes.userinfo) return userinfoEndpoint(req, server);
      if (path === routes.end_session) return endSessionEndpoint(req, server);
    }
    if (path === routes.revoke) return revocationEndpoint(req, server);
    if (path === routes.introspect) return introspectionEndpoint(req, server);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      if (path === routes.jwks || wellKnown.has(path) || wellKnown.has(req.path) || path === '/healthz' || path === '/readyz') {
        throw new OAuthError('invalid_request', 'The request must use GET', { status: 405, headers: { allow: 'GET, HEAD' } });
      }
      return notFound();
    }
    if (path === routes.jwks) return jwksEndpoint(server);
    if (wellKnown.has(path) || wellKnown.has(req.path)) return discoveryEndpoint(metadataJson);
    if (path === '/healthz') return healthEndpoint();
    if (path === '/readyz') return readinessEndpoint(server);
    return notFound();
  }

  async function handle(req: OAuthRequest): Promise<OAuthResponse> {
    try {
      return await route(req);
    } catch (thrown) {
      const err = toOAuthError(thrown);
      if (err.status >= 500) logger.error({ event: 'request.failed', error: err.error, path: req.path, detail: err.detail }, 'request failed');
      else logger.info({ event: 'request.refused', error: err.error, path: req.path, detail: err.detail }, 'request refused');
      return errorResponse(err);
    }
  }

  let closed = false;
  const portcullis: Portcullis = {
    issuer,
    storage,
    keys,
    clients: new ClientRegistry(storage, clock, () => grantTypes, sealer),
    users: new UserRegistry(storage, clock),
    endpoints,
    grantTypes,
    handle,
    async fetch(request: Request): Promise<Response> {
      let req: OAuthRequest;
      try {
        req = await fetchToOAuthRequest(request, { maxBodyBytes: server.maxBodyBytes });
      } catch (thrown) {
        return oauthResponseToFetch(errorResponse(toOAuthError(thrown)));
      }
      return oauthResponseToFetch(await handle(req));
    },
    metadata: () => structuredClone(metadata),
    authorization: {
      validate: (req) => validateAuthorizationRequest(req, server),
      complete: (request, decision, completeOptions) => completeAuthorizationRequest(request, decision, server, { fromPost: completeOptions?.fromPost ?? false }),
      errorResponse: (err, errorOptions) => authorizationErrorResponse(err, server, { fromPost: errorOptions?.fromPost ?? false }),
    },
    async close(closeOptions) {
      if (closed) return;
      closed = true;
      keys.stopAutoReload();
      if (closeOptions?.keepStorage !== true) await storage.close();
    },
  };
  return portcullis;
}

function notFound(): OAuthResponse {
  return {
    status: 404,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: '{"error":"not_found","error_description":"No such endpoint"}',
  };
}

/** The issuer must be an absolute https URL without query or fragment (http only for loopback). */
function validateIssuer(issuer: string, allowInsecure: boolean): string {
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) throw new ConfigError('issuer must be an absolute URL');
  const url = new URL(issuer);
  if (url.search !== '' || url.hash !== '' || issuer.includes('#') || issuer.includes('?')) throw new ConfigError('issuer must not have a query or fragment');
  if (url.protocol === 'http:') {
    const host = url.hostname;
    if (!isLoopbackHost(host) && !allowInsecure) throw new ConfigError('issuer must use https (http is allowed only for loopback hosts, or with allowInsecureIssuer)');
  } else if (url.protocol !== 'https:') {
    throw new ConfigError('issuer must be an https URL');
  }
  return issuer.endsWith('/') && url.pathname === '/' ? issuer.slice(0, -1) : issuer;
}
