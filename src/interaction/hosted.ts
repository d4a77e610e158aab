import { randomUUID } from 'node:crypto';
import { sha256 } from '../core/crypto.js';
import { StorageUnavailableError, UNAVAILABLE_DESCRIPTION } from '../core/errors.js';
import { bodyText, parseUrlEncoded } from '../core/form.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { authorizationErrorResponse, completeAuthorizationRequest, validateAuthorizationRequest, INTERACTION_TTL } from '../authorize/service.js';
import { AuthorizeError, type AuthorizationRequest } from '../authorize/request.js';
import { STANDARD_SCOPES } from '../oidc/claims.js';
import type { ServerContext } from '../server-context.js';
import type { ClientRecord } from '../storage/contract.js';
import { verifyPassword } from '../users/passwords.js';
import { parseCookies, serializeCookie } from './cookies.js';
import { formActionFor, htmlResponse } from './respond.js';
import type { Session } from './sessions.js';

const INTERACTION_COOKIE = 'portcullis.interaction';
const CONSENT_TTL = 365 * 24 * 3600;
const BAD_LOGIN = 'The username or password is incorrect';
const TOO_MANY = 'Too many sign-in attempts; try again later';

/**
 * GET/POST /authorize with the hosted pages: validate, then use the browser's session and remembered
 * consent when they suffice, else park the request as an interaction and send the browser to the
 * login or consent page.
 */
export async function authorizeEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const fromPost = req.method === 'POST';
  let request: AuthorizationRequest;
  try {
    request = await validateAuthorizationRequest(req, server);
  } catch (err) {
    return authorizationErrorResponse(err, server, { fromPost });
  }
  const redirect = { uri: request.redirect_uri, mode: request.response_mode, ...(request.state !== undefined ? { state: request.state } : {}) };
  try {
    const session = await server.sessions.current(req.headers.cookie);
    const now = server.clock();
    const reauthenticate = request.prompt.includes('login') || request.prompt.includes('select_account') || (request.max_age !== undefined && session !== undefined && (request.max_age === 0 || now - session.authTime > request.max_age));
    if (session !== undefined && !reauthenticate) request.user = sessionUser(session);
    if (request.user === undefined) {
      if (request.prompt.includes('none')) throw new AuthorizeError('login_required', 'The user is not signed in', redirect);
      return await startInteraction(request, server, fromPost);
    }
    const client = await server.storage.getClient(request.client_id);
    if (client === undefined || (await consentNeeded(request, request.user.id, client, server))) {
      if (request.prompt.includes('none')) throw new AuthorizeError('consent_required', 'The user has not consented to this request', redirect);
      return await startInteraction(request, server, fromPost);
    }
    return await completeAuthorizationRequest(request, { isAuthorizationApproved: true }, server, { fromPost });
  } catch (err) {
    if (err instanceof AuthorizeError) return authorizationErrorResponse(err, server, { fromPost });
    // A storage outage once the redirect URI is trusted: RFC 6749 §4.1.2.1 temporarily_unavailable.
    if (err instanceof StorageUnavailableError) {
      server.logger.warn({ event: 'authorization.unavailable', detail: err.message }, 'authorization failed: storage unavailable');
      return authorizationErrorResponse(new AuthorizeError('temporarily_unavailable', UNAVAILABLE_DESCRIPTION, redirect), server, { fromPost });
    }
    // Anything unexpected after the redirect URI is trusted: tell the client, with no detail.
    server.logger.error({ event: 'authorization.failed', detail: err instanceof Error ? err.stack : String(err) }, 'authorization failed');
    return authorizationErrorResponse(new AuthorizeError('server_error', 'The server encountered an unexpected error', redirect), server, { fromPost });
  }
}

/**
 * /interaction/<id> (GET: the login or consent page), /interaction/<id>/login and
 * /interaction/<id>/consent (POST). The interaction cookie binds the request to the browser that
 * started it; every POST carries a CSRF token bound to the interaction.
 */
export async function interactionEndpoint(req: OAuthRequest, server: ServerContext, uid: string, action: string | undefined): Promise<OAuthResponse> {
  const now = server.clock();
  const record = /^[0-9a-f-]{36}$/.test(uid) ? await server.storage.findArtifact('interaction', sha256(uid), now) : undefined;
  if (record === undefined || record.consumed_at !== undefined) return errorPage(server, 400, 'invalid_request', 'This sign-in request has expired or was already completed. Go back to the application and start again.');
  const bound = server.signer.unsign(parseCookies(req.headers.cookie)[INTERACTION_COOKIE]);
  if (bound !== uid) return errorPage(server, 400, 'invalid_request', 'This sign-in request belongs to another browser session. Go back to the application and start again.');
  const request = record.data as unknown as AuthorizationRequest;
  const client = await server.storage.getClient(request.client_id);
  if (client === undefined) return errorPage(server, 400, 'invalid_request', 'The client is unknown');

  if (req.method === 'GET' && action === undefined) {
    return request.user === undefined ? loginPage(server, request, 200) : consentPage(server, request, client);
  }
  if (req.method !== 'POST' || (action !== 'login' && action !== 'consent')) {
    const res = errorPage(server, 405, 'invalid_request', 'The request must use POST');
    res.headers.allow = action === undefined ? 'GET' : 'POST';
    return res;
  }
  const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') return errorPage(server, 400, 'invalid_request', 'The form must be application/x-www-form-urlencoded');
  let form;
  try {
    const body = bodyText(req);
    if (body.length > server.maxBodyBytes) return errorPage(server, 413, 'invalid_request', 'The form is too large');
    form = parseUrlEncoded(body).single;
  } catch {
    return errorPage(server, 400, 'invalid_request', 'The form could not be read');
  }
  if (form.csrf === undefined || !server.signer.verify(`csrf:${uid}`, form.csrf)) {
    return errorPage(server, 403, 'invalid_request', 'The form expired or did not come from this site (CSRF check failed). Go back and try again.');
  }
  return action === 'login' ? login(req, server, request, client, form) : consent(server, request, client, form);
}

async function login(req: OAuthRequest, server: ServerContext, request: AuthorizationRequest, client: ClientRecord, form: Record<string, string | undefined>): Promise<OAuthResponse> {
  const username = form.username?.slice(0, 255);
  const password = form.password;
  if (username === undefined || password === undefined) return loginPage(server, request, 400, BAD_LOGIN, username);
  const now = server.clock();
  const limits = server.loginThrottle;
  const userKey = `login_attempts_user:${username.toLowerCase()}`;
  const userHits = await server.storage.hitRateLimit(userKey, limits.windowSeconds, now);
  const addrHits = req.ip === undefined ? undefined : await server.storage.hitRateLimit(`login_attempts_addr:${req.ip}`, limits.windowSeconds, now);
  if (userHits.count > limits.maxAttemptsPerUser || (addrHits !== undefined && addrHits.count > limits.maxAttemptsPerAddress)) {
    return loginPage(server, request, 429, TOO_MANY, username);
  }
  const user = await server.storage.getUserByUsername(username);
  const ok = await verifyPassword(password.slice(0, 1024), user?.password_hash);
  if (!ok || user === undefined) return loginPage(server, request, 400, BAD_LOGIN, username);
  await server.storage.resetRateLimit(userKey);

  // A fresh session id at every sign-in (no session fixation).
  const previous = await server.sessions.current(req.headers.cookie);
  const cookies: string[] = [];
  if (previous !== undefined) await server.sessions.destroy(previous);
  const { session, setCookie } = await server.sessions.create(user.id, ['pwd']);
  cookies.push(setCookie);
  request.user = sessionUser(session);
  if (await consentNeeded(request, user.id, client, server)) {
    await server.storage.updateArtifactData('interaction', sha256(request.id), request as unknown as Record<string, unknown>);
    return seeOther(interactionUrl(server, request.id), cookies);
  }
  return finish(server, request, true, cookies);
}

async function consent(server: ServerContext, request: AuthorizationRequest, client: ClientRecord, form: Record<string, string | undefined>): Promise<OAuthResponse> {
  if (request.user === undefined) return errorPage(server, 400, 'invalid_request', 'Sign in first');
  const decision = form.decision;
  if (decision !== 'approve' && decision !== 'deny') return consentPage(server, request, client, 400);
  if (decision === 'approve') await rememberConsent(server, request.user.id, client.client_id, request.scope);
  return finish(server, request, decision === 'approve', []);
}

/** Consume the interaction (so it completes once), then issue the code or the denial. */
async function finish(server: ServerContext, request: AuthorizationRequest, approved: boolean, cookies: string[]): Promise<OAuthResponse> {
  const consumed = await server.storage.consumeArtifact('interaction', sha256(request.id), server.clock());
  if (consumed.status !== 'consumed') return errorPage(server, 400, 'invalid_request', 'This sign-in request was already completed.');
  cookies.push(serializeCookie(INTERACTION_COOKIE, '', { path: interactionPath(server, request.id), secure: server.cookie.secure, maxAge: 0 }));
  return completeAuthorizationRequest(request, { isAuthorizationApproved: approved }, server, { fromPost: true, setCookies: cookies });
}

async function startInteraction(request: AuthorizationRequest, server: ServerContext, fromPost: boolean): Promise<OAuthResponse> {
  request.id = randomUUID();
  await server.storage.saveArtifact({
    kind: 'interaction',
    id: sha256(request.id),
    client_id: request.client_id,
    ...(request.user !== undefined ? { user_id: request.user.id } : {}),
    scope: request.scope.join(' '),
    created_at: request.created_at,
    expires_at: request.expires_at,
    data: request as unknown as Record<string, unknown>,
  });
  const cookie = serializeCookie(INTERACTION_COOKIE, server.signer.sign(request.id), { path: interactionPath(server, request.id), secure: server.cookie.secure, maxAge: INTERACTION_TTL });
  const res = seeOther(interactionUrl(server, request.id), [cookie]);
  if (!fromPost) res.status = 302;
  return res;
}

async function consentNeeded(request: AuthorizationRequest, userId: string, client: ClientRecord, server: ServerContext): Promise<boolean> {
  if (request.prompt.includes('consent')) return true;
  if (client.first_party === true) return false;
  const granted = await consentedScopes(server, userId, client.client_id);
  return request.scope.some((s) => !granted.has(s));
}

/** Scopes the user already allowed this client (remembered consent). */
async function consentedScopes(server: ServerContext, userId: string, clientId: string): Promise<Set<string>> {
  const record = await server.storage.findArtifact('consent', consentId(userId, clientId), server.clock());
  if (record === undefined || record.revoked_at !== undefined) return new Set();
  const scope = record.data?.scope;
  return new Set(typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);
}

async function rememberConsent(server: ServerContext, userId: string, clientId: string, scope: readonly string[]): Promise<void> {
  const now = server.clock();
  const id = consentId(userId, clientId);
  const merged = [...new Set([...(await consentedScopes(server, userId, clientId)), ...scope])].join(' ');
  if (await server.storage.updateArtifactData('consent', id, { scope: merged })) return;
  await server.storage.saveArtifact({ kind: 'consent', id, client_id: clientId, user_id: userId, scope: '', created_at: now, expires_at: now + CONSENT_TTL, data: { scope: merged } });
}

function consentId(userId: string, clientId: string): string {
  return sha256(`consent\u0000${userId}\u0000${clientId}`);
}

function sessionUser(session: Session): NonNullable<AuthorizationRequest['user']> {
  return { id: session.userId, auth_time: session.authTime, amr: session.amr, session_id: session.id };
}

function loginPage(server: ServerContext, request: AuthorizationRequest, status: number, error?: string, username?: string): OAuthResponse {
  const prefill = username ?? request.login_hint;
  return htmlResponse(status, server, (nonce) =>
    server.pages.login({
      nonce,
      serviceName: server.serviceName,
      ...(request.ui_locales?.[0] !== undefined ? { lang: request.ui_locales[0] } : {}),
      action: `${interactionUrl(server, request.id)}/login`,
      csrfToken: server.signer.mac(`csrf:${request.id}`),
      clientName: request.client_name ?? request.client_id,
      ...(prefill !== undefined ? { username: prefill } : {}),
      ...(error !== undefined ? { error } : {}),
    }),
    { formAction: formActionFor(request.redirect_uri) },
  );
}

async function consentPage(server: ServerContext, request: AuthorizationRequest, client: ClientRecord, status = 200): Promise<OAuthResponse> {
  const user = request.user === undefined ? undefined : await server.storage.getUser(request.user.id);
  const userName = typeof user?.claims.name === 'string' ? user.claims.name : user?.username ?? 'you';
  return htmlResponse(status, server, (nonce) =>
    server.pages.consent({
      nonce,
      serviceName: server.serviceName,
      ...(request.ui_locales?.[0] !== undefined ? { lang: request.ui_locales[0] } : {}),
      action: `${interactionUrl(server, request.id)}/consent`,
      csrfToken: server.signer.mac(`csrf:${request.id}`),
      clientName: client.client_name ?? client.client_id,
      userName,
      scopes: request.scope.map((name) => ({ name, description: server.scopes.descriptions[name] ?? STANDARD_SCOPES[name] ?? name })),
    }),
    { formAction: formActionFor(request.redirect_uri) },
  );
}

function errorPage(server: ServerContext, status: number, error: string, description: string): OAuthResponse {
  return htmlResponse(status, server, (nonce) => server.pages.error({ nonce, serviceName: server.serviceName, error, description }));
}

function seeOther(location: string, cookies: string[]): OAuthResponse {
  const res: OAuthResponse = { status: 303, headers: { location, 'cache-control': 'no-store', pragma: 'no-cache' }, body: '' };
  if (cookies.length > 0) res.setCookies = cookies;
  return res;
}

function interactionPath(server: ServerContext, id: string): string {
  return `${new URL(server.endpoints.interaction).pathname}/${id}`;
}

function interactionUrl(server: ServerContext, id: string): string {
  return `${server.endpoints.interaction}/${id}`;
}
