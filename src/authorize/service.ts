import { randomUUID } from 'node:crypto';
import { redirectUriProblem } from '../clients/metadata.js';
import { stampedToken, tokenId } from '../core/crypto.js';
import { OAuthError, StorageUnavailableError, toOAuthError } from '../core/errors.js';
import { bodyText, parseUrlEncoded, type FormParams } from '../core/form.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { parseScope } from '../core/scope.js';
import type { ClientRecord } from '../storage/contract.js';
import type { ServerContext } from '../server-context.js';
import { assertTargetsAllowed, parseResourceIndicators } from '../tokens/resource-indicators.js';
import { htmlResponse } from '../interaction/respond.js';
import { matchRedirectUri } from './redirect-uri.js';
import {
  AuthorizeError,
  MAX_STATE_LENGTH,
  PKCE_VALUE,
  PROMPT_VALUES,
  type AuthorizationDecision,
  type AuthorizationRequest,
} from './request.js';

/** How long a validated authorization request may wait for login and consent (seconds). */
export const INTERACTION_TTL = 600;

const SINGLE_VALUED = [
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge',
  'code_challenge_method', 'prompt', 'max_age', 'login_hint', 'acr_values', 'ui_locales', 'claims', 'request',
  'request_uri', 'registration', 'id_token_hint', 'display',
];
/** Parameters that may repeat (RFC 8707 §2: `resource` may be sent several times). */
const MULTI_VALUED = ['resource'];

/**
 * Validate an authorization request (RFC 6749 §4.1.1, OAuth 2.1, RFC 9700, OIDC Core §3.1.2).
 * The client and the redirect URI are checked first: until both are trusted, every error is an
 * {@link AuthorizeError} without `redirect` (an error page), whatever else is wrong. After that,
 * errors carry `redirect` and are sent to the client with `state` and `iss`.
 */
export async function validateAuthorizationRequest(req: OAuthRequest, server: ServerContext): Promise<AuthorizationRequest> {
  const { params, duplicates, all } = readParams(req, server.maxBodyBytes);

  // 1. Client and redirect URI: never redirect before both are known good.
  if (duplicates.has('client_id') || duplicates.has('redirect_uri')) {
    throw new AuthorizeError('invalid_request', 'client_id and redirect_uri must be sent once');
  }
  const clientId = params.client_id;
  if (clientId === undefined) throw new AuthorizeError('invalid_request', 'Missing parameter: client_id');
  const client = clientId.length <= 255 ? await server.storage.getClient(clientId) : undefined;
  if (client === undefined) throw new AuthorizeError('invalid_request', 'The client is unknown');
  const redirectUri = resolveRedirectUri(params, client);
  // OIDC Core §3.1.2.1: redirect_uri is required for OpenID requests, and without it nothing is trusted to redirect to.
  if (params.redirect_uri === undefined && parseScopeLike(params.scope ?? client.scope).includes('openid')) {
    throw new AuthorizeError('invalid_request', 'Missing parameter: redirect_uri');
  }

  const mode = params.response_mode;
  const responseMode: 'query' | 'form_post' = mode === 'form_post' ? 'form_post' : 'query';
  const stateDuplicated = duplicates.has('state');
  const state = stateDuplicated ? undefined : params.state;
  const redirect = { uri: redirectUri, mode: responseMode, ...(state !== undefined && state.length <= MAX_STATE_LENGTH ? { state } : {}) };
  const refuse = (error: ConstructorParameters<typeof AuthorizeError>[0], description: string): never => {
    throw new AuthorizeError(error, description, redirect);
  };

  // 2. Everything else is reported to the client.
  if (duplicates.size > 0) refuse('invalid_request', `Parameter ${[...duplicates][0]} was sent more than once`);
  if (mode !== undefined && mode !== 'query' && mode !== 'form_post') refuse('invalid_request', 'Unsupported response_mode');
  if (state !== undefined && state.length > MAX_STATE_LENGTH) refuse('invalid_request', 'The state parameter is too long');
  if (params.request !== undefined) refuse('request_not_supported', 'Request objects are not supported');
  if (params.request_uri !== undefined) refuse('request_uri_not_supported', 'request_uri is not supported');
  if (params.registration !== undefined) refuse('registration_not_supported', 'The registration parameter is not supported');
  if (!client.grant_types.includes('authorization_code') || !client.response_types.includes('code') || !server.grantTypes().includes('authorization_code')) {
    refuse('unauthorized_client', 'The client may not use the authorization code flow');
  }
  const responseType = params.response_type;
  if (responseType === undefined) refuse('invalid_request', 'Missing parameter: response_type');
  if (responseType !== 'code') refuse('unsupported_response_type', 'Only response_type=code is supported');

  let scope: string[] = [];
  try {
    scope = server.scopes.resolve(params.scope, client);
  } catch (err) {
    refuse('invalid_scope', err instanceof OAuthError ? err.description : 'The requested scope is not allowed');
  }
  // RFC 8707: each resource an absolute URI without fragment, and one the client may obtain tokens for.
  let resources: string[] = [];
  try {
    resources = parseResourceIndicators(all.resource);
    assertTargetsAllowed(client, resources, server.tokens.defaultAudience);
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    refuse('invalid_target', err.description);
  }

  // PKCE (RFC 7636, RFC 9700 §2.1.1): required, S256 only unless plain is explicitly allowed.
  const challenge = params.code_challenge;
  const method = params.code_challenge_method;
  if (challenge === undefined) {
    if (method !== undefined) refuse('invalid_request', 'code_challenge_method was sent without code_challenge');
    if (server.pkce.required || client.token_endpoint_auth_method === 'none') refuse('invalid_request', 'PKCE is required: send code_challenge and code_challenge_method=S256');
  } else {
    if (method === undefined) refuse('invalid_request', 'code_challenge_method is required (S256)');
    if (method !== 'S256' && !(method === 'plain' && server.pkce.allowPlain)) refuse('invalid_request', 'Unsupported code_challenge_method: use S256');
    if (!PKCE_VALUE.test(challenge)) refuse('invalid_request', 'code_challenge must be 43-128 characters of [A-Za-z0-9-._~]');
  }

  const nonce = params.nonce;
  if (nonce !== undefined && nonce.length > MAX_STATE_LENGTH) refuse('invalid_request', 'The nonce parameter is too long');
  const prompt = parseScopeLike(params.prompt);
  for (const p of prompt) if (!(PROMPT_VALUES as readonly string[]).includes(p)) refuse('invalid_request', 'Unsupported prompt value');
  if (prompt.includes('none') && prompt.length > 1) refuse('invalid_request', 'prompt=none cannot be combined with other values');
  let maxAge: number | undefined;
  if (params.max_age !== undefined) {
    if (!/^\d{1,10}$/.test(params.max_age)) refuse('invalid_request', 'max_age must be a non-negative integer');
    maxAge = Number(params.max_age);
  }
  let claims: AuthorizationRequest['claims'];
  if (params.claims !== undefined) claims = parseClaimsParameter(params.claims) ?? refuse('invalid_request', 'The claims parameter must be a JSON object with userinfo and/or id_token members');

  const now = server.clock();
  const request: AuthorizationRequest = {
    id: randomUUID(),
    client_id: client.client_id,
    redirect_uri: redirectUri,
    redirect_uri_sent: params.redirect_uri !== undefined,
    response_type: 'code',
    response_mode: responseMode,
    scope,
    prompt,
    created_at: now,
    expires_at: now + INTERACTION_TTL,
  };
  if (client.client_name !== undefined) request.client_name = client.client_name;
  if (state !== undefined) request.state = state;
  if (nonce !== undefined) request.nonce = nonce;
  if (challenge !== undefined) {
    request.code_challenge = challenge;
    request.code_challenge_method = method as 'S256' | 'plain';
  }
  if (maxAge !== undefined) request.max_age = maxAge;
  if (params.login_hint !== undefined) request.login_hint = params.login_hint.slice(0, 255);
  if (params.acr_values !== undefined) request.acr_values = parseScopeLike(params.acr_values);
  if (params.ui_locales !== undefined) request.ui_locales = parseScopeLike(params.ui_locales);
  if (claims !== undefined) request.claims = claims;
  if (resources.length > 0) request.resource = resources;
  return request;
}

/** The redirect URI of the request, exactly as registered; or an error page (never a redirect). */
function resolveRedirectUri(params: FormParams, client: ClientRecord): string {
  const requested = params.redirect_uri;
  if (requested === undefined) {
    if (client.redirect_uris.length === 1) return client.redirect_uris[0]!;
    throw new AuthorizeError('invalid_request', 'Missing parameter: redirect_uri');
  }
  if (requested.length > 2048 || redirectUriProblem(requested) !== undefined || !matchRedirectUri(requested, client.redirect_uris)) {
    throw new AuthorizeError('invalid_request', 'The redirect_uri is not registered for this client');
  }
  return requested;
}

/** GET query or POSTed form, with every repeated parameter noted rather than thrown. */
function readParams(req: OAuthRequest, maxBytes: number): { params: FormParams; duplicates: Set<string>; all: Readonly<Record<string, readonly string[] | undefined>> } {
  let text: string;
  if (req.method === 'GET' || req.method === 'HEAD') {
    text = req.query;
  } else if (req.method === 'POST') {
    const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (contentType !== 'application/x-www-form-urlencoded') throw new AuthorizeError('invalid_request', 'The request body must be application/x-www-form-urlencoded');
    text = bodyText(req);
  } else {
    throw new OAuthError('invalid_request', 'The request must use GET or POST', { status: 405, headers: { allow: 'GET, POST' } });
  }
  if (Buffer.byteLength(text) > maxBytes) throw new AuthorizeError('invalid_request', 'The request is too large');
  let parsed;
  try {
    parsed = parseUrlEncoded(text, [...SINGLE_VALUED, ...MULTI_VALUED]);
  } catch {
    throw new AuthorizeError('invalid_request', 'The request is not valid form encoding');
  }
  const duplicates = new Set<string>();
  for (const name of SINGLE_VALUED) if ((parsed.all[name]?.length ?? 0) > 1) duplicates.add(name);
  return { params: parsed.single, duplicates, all: parsed.all };
}

function parseScopeLike(value: string | undefined): string[] {
  return value === undefined ? [] : [...new Set(value.split(' ').filter((v) => v !== ''))];
}

function parseClaimsParameter(text: string): AuthorizationRequest['claims'] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: NonNullable<AuthorizationRequest['claims']> = {};
  for (const target of ['userinfo', 'id_token'] as const) {
    const member = (value as Record<string, unknown>)[target];
    if (member === undefined || member === null) continue;
    if (typeof member !== 'object' || Array.isArray(member)) return undefined;
    out[target] = member as Record<string, unknown>;
  }
  return out;
}

/**
 * Finish an authorization request: issue a code (bound to client, redirect URI, PKCE challenge,
 * nonce, scope, user and authentication time) or send `access_denied`, through the response mode.
 */
export async function completeAuthorizationRequest(
  request: AuthorizationRequest,
  decision: AuthorizationDecision,
  server: ServerContext,
  options: { fromPost: boolean; setCookies?: string[] },
): Promise<OAuthResponse> {
  const redirect = { uri: request.redirect_uri, mode: request.response_mode, ...(request.state !== undefined ? { state: request.state } : {}) };
  if (!decision.isAuthorizationApproved) {
    return authorizationErrorResponse(new AuthorizeError('access_denied', 'The user or server denied the request', redirect), server, options);
  }
  const user = decision.user ?? request.user;
  if (user === undefined) throw new Error('completeAuthorizationRequest: an approved request needs a user');
  const client = await server.storage.getClient(request.client_id);
  if (client === undefined) throw new AuthorizeError('invalid_request', 'The client is unknown');
  let scope = request.scope;
  if (decision.scope !== undefined) {
    const narrowed = parseScope(decision.scope.join(' '));
    if (narrowed.some((s) => !request.scope.includes(s))) throw new Error('completeAuthorizationRequest: decision.scope must be a subset of the requested scope');
    scope = narrowed;
  }
  const now = server.clock();
  const authTime = user.auth_time ?? now;
  const grant = await server.tokens.createGrant({
    client,
    grantType: 'authorization_code',
    scope,
    userId: user.id,
    authTime,
    data: {
      ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
      ...(request.claims !== undefined ? { claims: request.claims } : {}),
      ...(request.resource !== undefined && request.resource.length > 0 ? { resources: [...request.resource] } : {}),
      amr: user.amr ?? ['pwd'],
      ...(user.session_id !== undefined ? { sid: user.session_id } : {}),
    },
  });
  const code = stampedToken();
  await server.storage.saveArtifact({
    kind: 'authorization_code',
    id: tokenId(code),
    grant_id: grant.id,
    client_id: client.client_id,
    user_id: user.id,
    scope: scope.join(' '),
    created_at: now,
    expires_at: now + server.ttl.authorizationCode,
    data: {
      redirect_uri: request.redirect_uri,
      redirect_uri_sent: request.redirect_uri_sent,
      ...(request.code_challenge !== undefined ? { code_challenge: request.code_challenge, code_challenge_method: request.code_challenge_method } : {}),
      ...(request.resource !== undefined && request.resource.length > 0 ? { resources: [...request.resource] } : {}),
    },
  });
  server.logger.info({ event: 'authorization.success', client_id: client.client_id }, 'authorization code issued');
  const fields: Record<string, string> = { code };
  if (request.state !== undefined) fields.state = request.state;
  fields.iss = server.issuer;
  return redirectToClient(redirect.uri, request.response_mode, fields, server, options);
}

/** An authorization error as the client should see it: a redirect once trusted, an error page before. */
export function authorizationErrorResponse(err: unknown, server: ServerContext, options: { fromPost: boolean; setCookies?: string[] }): OAuthResponse {
  if (err instanceof AuthorizeError && err.redirect !== undefined) {
    const fields: Record<string, string> = { error: err.authorizeError, error_description: err.description };
    if (err.redirect.state !== undefined) fields.state = err.redirect.state;
    fields.iss = server.issuer;
    return redirectToClient(err.redirect.uri, err.redirect.mode, fields, server, options);
  }
  // A storage outage is 503 temporarily_unavailable with Retry-After (never a 500 page).
  const oauth = err instanceof OAuthError ? err : err instanceof StorageUnavailableError ? toOAuthError(err) : undefined;
  if (err instanceof StorageUnavailableError) server.logger.warn({ event: 'authorization.unavailable', detail: err.message }, 'authorization failed: storage unavailable');
  const code = err instanceof AuthorizeError ? err.authorizeError : oauth?.error ?? 'server_error';
  const description = oauth?.description ?? 'The server encountered an unexpected error';
  const status = oauth === undefined ? 500 : oauth.status === 401 ? 400 : oauth.status;
  if (oauth === undefined) server.logger.error({ event: 'authorization.failed', detail: err instanceof Error ? err.stack : String(err) }, 'authorization failed');
  const res = htmlResponse(status, server, (nonce) => server.pages.error({ nonce, serviceName: server.serviceName, error: code, description }), { setCookies: options.setCookies });
  // Keep the error's own headers (Allow on 405, Retry-After on 503).
  if (oauth !== undefined) for (const [k, v] of Object.entries(oauth.headers)) res.headers[k] = v;
  return res;
}

function redirectToClient(uri: string, mode: 'query' | 'form_post', fields: Record<string, string>, server: ServerContext, options: { fromPost: boolean; setCookies?: string[] }): OAuthResponse {
  if (mode === 'form_post') {
    return htmlResponse(200, server, (nonce) => server.pages.formPost({ nonce, serviceName: server.serviceName, action: uri, fields }), {
      formAction: [new URL(uri).origin],
      setCookies: options.setCookies,
    });
  }
  // Append to the registered URI as it is: re-serialising its query could change its bytes.
  const location = uri + (uri.includes('?') ? '&' : '?') + new URLSearchParams(fields).toString();
  const headers: Record<string, string> = { location, 'cache-control': 'no-store', pragma: 'no-cache', 'referrer-policy': 'no-referrer' };
  const res: OAuthResponse = { status: options.fromPost ? 303 : 302, headers, body: '' };
  if (options.setCookies !== undefined && options.setCookies.length > 0) res.setCookies = options.setCookies;
  return res;
}
