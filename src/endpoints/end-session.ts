import { randomUUID } from 'node:crypto';
import { matchRedirectUri } from '../authorize/redirect-uri.js';
import { sha256 } from '../core/crypto.js';
import { bodyText, parseUrlEncoded } from '../core/form.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { formActionFor, htmlResponse } from '../interaction/respond.js';
import type { ServerContext } from '../server-context.js';

const PENDING_TTL = 600;

/**
 * OIDC RP-initiated logout (`end_session_endpoint`). `id_token_hint` must be one of our ID tokens
 * (expired is fine); `post_logout_redirect_uri` must exactly match one the client registered.
 * With a hint naming the signed-in user the session ends at once; otherwise the user confirms on a
 * page (CSRF-protected), so a third party cannot sign a user out with a link.
 * @see https://openid.net/specs/openid-connect-rpinitiated-1_0.html
 */
export async function endSessionEndpoint(req: OAuthRequest, server: ServerContext): Promise<OAuthResponse> {
  const params = readParams(req, server.maxBodyBytes);
  if (params === undefined) return errorPage(server, 400, 'The request could not be read');

  // The confirmation form posts back here with `logout=<id>`.
  if (req.method === 'POST' && params.logout !== undefined) return confirm(req, server, params);

  let hintSub: string | undefined;
  let clientId = params.client_id;
  if (params.id_token_hint !== undefined) {
    const payload = params.id_token_hint.length <= 8192 ? server.keys.verify(params.id_token_hint, 'JWT') : undefined;
    if (payload === undefined || payload.iss !== server.issuer || typeof payload.sub !== 'string' || typeof payload.aud !== 'string') {
      return errorPage(server, 400, 'The id_token_hint is not a valid ID token from this server');
    }
    if (clientId !== undefined && clientId !== payload.aud) return errorPage(server, 400, 'client_id does not match the id_token_hint');
    clientId = payload.aud;
    hintSub = payload.sub;
  }
  const client = clientId === undefined ? undefined : await server.storage.getClient(clientId);
  if (clientId !== undefined && client === undefined) return errorPage(server, 400, 'The client is unknown');
  const postLogout = params.post_logout_redirect_uri;
  if (postLogout !== undefined) {
    if (client === undefined) return errorPage(server, 400, 'post_logout_redirect_uri needs id_token_hint or client_id');
    // The redirect URI rules apply: exact match, and for http loopback IP literals only the port may vary.
    if (!matchRedirectUri(postLogout, client.post_logout_redirect_uris ?? [])) return errorPage(server, 400, 'The post_logout_redirect_uri is not registered for this client');
  }
  const target = postLogout === undefined ? undefined : { uri: postLogout, ...(params.state !== undefined ? { state: params.state } : {}) };

  const session = await server.sessions.current(req.headers.cookie);
  if (session === undefined) return done(server, target, []);
  if (hintSub !== undefined && hintSub === session.userId) return done(server, target, [await server.sessions.destroy(session)]);

  // Ask the user: park the request, render the confirmation page.
  const id = randomUUID();
  const now = server.clock();
  await server.storage.saveArtifact({
    kind: 'interaction',
    id: sha256(`logout:${id}`),
    client_id: clientId ?? '',
    user_id: session.userId,
    scope: '',
    created_at: now,
    expires_at: now + PENDING_TTL,
    data: { logout: true, ...(target !== undefined ? { target } : {}) },
  });
  return htmlResponse(200, server, (nonce) =>
    server.pages.logoutConfirm({
      nonce,
      serviceName: server.serviceName,
      action: `${server.endpoints.end_session}?logout=${id}`,
      csrfToken: server.signer.mac(`logout:${id}`),
      ...(client !== undefined ? { clientName: client.client_name ?? client.client_id } : {}),
    }),
    { formAction: formActionFor(target?.uri) },
  );
}

async function confirm(req: OAuthRequest, server: ServerContext, params: Record<string, string | undefined>): Promise<OAuthResponse> {
  const id = params.logout!;
  if (params.csrf === undefined || !server.signer.verify(`logout:${id}`, params.csrf)) return errorPage(server, 403, 'The form expired or did not come from this site (CSRF check failed)');
  const consumed = await server.storage.consumeArtifact('interaction', sha256(`logout:${id}`), server.clock());
  if (consumed.status !== 'consumed') return errorPage(server, 400, 'This sign-out request has expired or was already used');
  const target = consumed.record.data?.target as { uri: string; state?: string } | undefined;
  const session = await server.sessions.current(req.headers.cookie);
  if (params.decision !== 'logout') {
    return target === undefined ? errorPage(server, 200, 'You are still signed in. You can close this page.') : redirect(target, []);
  }
  const cookies = session !== undefined && session.userId === consumed.record.user_id ? [await server.sessions.destroy(session)] : [];
  return done(server, target, cookies);
}

function done(server: ServerContext, target: { uri: string; state?: string } | undefined, cookies: string[]): OAuthResponse {
  if (target !== undefined) return redirect(target, cookies);
  return htmlResponse(200, server, (nonce) => server.pages.loggedOut({ nonce, serviceName: server.serviceName }), { setCookies: cookies });
}

function redirect(target: { uri: string; state?: string }, cookies: string[]): OAuthResponse {
  const location = target.state === undefined ? target.uri : target.uri + (target.uri.includes('?') ? '&' : '?') + new URLSearchParams({ state: target.state }).toString();
  const res: OAuthResponse = { status: 303, headers: { location, 'cache-control': 'no-store' }, body: '' };
  if (cookies.length > 0) res.setCookies = cookies;
  return res;
}

function errorPage(server: ServerContext, status: number, description: string): OAuthResponse {
  return htmlResponse(status, server, (nonce) => server.pages.error({ nonce, serviceName: server.serviceName, error: status === 200 ? 'cancelled' : 'invalid_request', description }));
}

function readParams(req: OAuthRequest, maxBytes: number): Record<string, string | undefined> | undefined {
  try {
    const query = parseUrlEncoded(req.query).single;
    if (req.method !== 'POST') return query;
    const body = bodyText(req);
    if (body.length > maxBytes) return undefined;
    return { ...query, ...parseUrlEncoded(body).single };
  } catch {
    return undefined;
  }
}
