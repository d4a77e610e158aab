/**
 * The demo of the ready-to-run server: on a first start without a config file, a demo user and a
 * demo web client (`demo-web`) are created next to `demo-client`, and the server itself answers the
 * demo client's redirect URI (`<issuer>/demo/callback`) and post-logout redirect URI
 * (`<issuer>/demo/logged-out`), so that a person can run the authorization code flow with nothing
 * but a browser and curl.
 *
 * These pages belong to the server, not to the core: {@link withDemoPages} wraps the node listener
 * and answers the two paths before the core, only while the `demo-web` client exists. The store is
 * asked on every request to one of the two paths (one indexed read; other paths cost nothing), so
 * `portcullis clients remove demo-web` turns the pages off at once, without a restart.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { matchRedirectUri } from '../authorize/redirect-uri.js';
import type { Logger } from '../core/logger.js';
import { newNonce, pageHeaders } from '../interaction/headers.js';
import { defaultPages } from '../interaction/pages.js';
import type { Portcullis } from '../portcullis-types.js';
import type { GeneratedSecret } from './runtime.js';

export const DEMO_WEB_CLIENT_ID = 'demo-web';
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const DEMO_USERNAME = 'demo';
export const DEMO_CALLBACK_PATH = '/demo/callback';
export const DEMO_LOGGED_OUT_PATH = '/demo/logged-out';
/** What the callback page's curl shows in place of the client secret: a shell variable to set. */
export const DEMO_SECRET_VARIABLE = 'DEMO_WEB_SECRET';
const SERVICE_NAME = 'Portcullis';
const MAX_FORM_BYTES = 64 * 1024;

export interface DemoUser {
  username: string;
  password: string;
}

/** The authorization request this process offers in its banner: fresh at every start, kept in memory only. */
export interface DemoFlow {
  redirectUri: string;
  postLogoutRedirectUri: string;
  /** The full authorization URL, with a PKCE S256 challenge of {@link codeVerifier}. */
  authorizationUrl: string;
  codeVerifier: string;
  state: string;
  nonce: string;
  /** The curl that exchanges a code from this flow (`<code>` in place of the code). */
  curl: string;
}

/** Paths and URLs of the demo for an issuer. */
export function demoUrls(issuer: string): { base: string; redirectUri: string; postLogoutRedirectUri: string } {
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  return { base, redirectUri: base + DEMO_CALLBACK_PATH, postLogoutRedirectUri: base + DEMO_LOGGED_OUT_PATH };
}

/**
 * The demo web client: confidential (client_secret_basic, secret generated and returned once),
 * authorization code + refresh token, redirect URI `<issuer>/demo/callback`. Not first-party, so the
 * consent page is shown. Undefined when the server does not serve the authorization code grant.
 */
export async function createDemoWebClient(portcullis: Portcullis): Promise<GeneratedSecret | undefined> {
  if (!portcullis.grantTypes.includes('authorization_code')) return undefined;
  const { redirectUri, postLogoutRedirectUri } = demoUrls(portcullis.issuer);
  const result = await portcullis.clients.upsert(
    {
      client_id: DEMO_WEB_CLIENT_ID,
      client_name: 'Portcullis demo app',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT].filter((g) => portcullis.grantTypes.includes(g)),
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogoutRedirectUri],
      scope: 'openid profile email offline_access api:read',
      id_token_signed_response_alg: 'ES256',
    },
    { generateSecret: true },
  );
  if (result.generatedSecret === undefined) throw new Error('the demo web client was created without a secret');
  return { client_id: DEMO_WEB_CLIENT_ID, client_secret: result.generatedSecret };
}

/**
 * The demo user, with a generated password (returned once; stored only as an argon2id hash).
 * An existing user of that name is left alone: undefined then.
 */
export async function createDemoUser(portcullis: Portcullis): Promise<DemoUser | undefined> {
  if ((await portcullis.users.findByUsername(DEMO_USERNAME)) !== undefined) return undefined;
  const password = randomBytes(15).toString('base64url');
  await portcullis.users.upsert({
    username: DEMO_USERNAME,
    password,
    claims: { name: 'Demo User', email: 'demo@example.com', email_verified: true },
  });
  return { username: DEMO_USERNAME, password };
}

/** A fresh authorization request for the demo web client: PKCE verifier, state and nonce of this process. */
export function createDemoFlow(portcullis: Portcullis): DemoFlow {
  const { redirectUri, postLogoutRedirectUri } = demoUrls(portcullis.issuer);
  const codeVerifier = randomBytes(32).toString('base64url'); // 43 characters
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const challenge = createHash('sha256').update(codeVerifier).digest('base64url');
  const query = [
    'response_type=code',
    `client_id=${encodeURIComponent(DEMO_WEB_CLIENT_ID)}`,
    `redirect_uri=${encodeURIComponent(redirectUri)}`,
    'scope=openid%20profile%20email',
    `state=${state}`,
    `nonce=${nonce}`,
    `code_challenge=${challenge}`,
    'code_challenge_method=S256',
  ].join('&');
  const authorize = portcullis.endpoints.authorize;
  return {
    redirectUri,
    postLogoutRedirectUri,
    authorizationUrl: `${authorize}${authorize.includes('?') ? '&' : '?'}${query}`,
    codeVerifier,
    state,
    nonce,
    curl: exchangeCurl(portcullis.endpoints.token, redirectUri, undefined, codeVerifier),
  };
}

/**
 * Whether the stored demo web client accepts this process's redirect URI (it may have been
 * registered under another issuer). Loopback IP redirect URIs match on any port (RFC 8252 §7.3).
 */
export async function demoWebClientMatches(portcullis: Portcullis, flow: DemoFlow): Promise<boolean | undefined> {
  const client = await portcullis.clients.get(DEMO_WEB_CLIENT_ID);
  if (client === undefined) return undefined;
  return matchRedirectUri(flow.redirectUri, client.redirect_uris);
}

/**
 * `curl -s -u demo-web:$DEMO_WEB_SECRET -d grant_type=authorization_code -d code=… -d redirect_uri=…
 * -d code_verifier=… <token endpoint>`. The secret is never put in: it is not stored in clear, and
 * this command is shown on a web page. Values from the request are shell-quoted when they need it,
 * so that pasting the command cannot run anything else.
 */
export function exchangeCurl(tokenEndpoint: string, redirectUri: string, code: string | undefined, codeVerifier: string | undefined): string {
  return [
    'curl -s',
    `-u ${DEMO_WEB_CLIENT_ID}:$${DEMO_SECRET_VARIABLE}`,
    '-d grant_type=authorization_code',
    code === undefined ? '-d code=<code>' : formArg('code', code),
    formArg('redirect_uri', redirectUri),
    codeVerifier === undefined ? '-d code_verifier=$CODE_VERIFIER' : formArg('code_verifier', codeVerifier),
    shellWord(tokenEndpoint),
  ].join(' ');
}

/** `-d name=value` when the value needs no form encoding, else `--data-urlencode name=value`; shell-quoted as needed. */
function formArg(name: string, value: string): string {
  const plain = /^[A-Za-z0-9._~:/-]*$/.test(value);
  return `${plain ? '-d' : '--data-urlencode'} ${shellWord(`${name}=${value}`)}`;
}

/** A POSIX shell word: as is when it holds only safe characters, else single-quoted. */
export function shellWord(value: string): string {
  if (/^[A-Za-z0-9._~:/=@%+,-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface DemoPagesOptions {
  portcullis: Portcullis;
  /** This process's flow: the callback page shows its code_verifier when the state matches. */
  flow: DemoFlow;
  logger: Logger;
}

/**
 * Answer `<issuer path>/demo/callback` and `<issuer path>/demo/logged-out` (also without the issuer
 * path, as the core does for its own routes, for a proxy that strips it) before `inner`, while the
 * `demo-web` client exists; everything else, and those paths when it does not exist, go to `inner`.
 * A path the core itself routes (a custom `routes` entry) always goes to the core.
 */
export function withDemoPages(inner: RequestListener, options: DemoPagesOptions): RequestListener {
  const { portcullis, flow, logger } = options;
  const { base } = demoUrls(portcullis.issuer);
  const issuerPath = new URL(portcullis.issuer).pathname.replace(/\/$/, '');
  const corePaths = Object.entries(portcullis.endpoints).map(([key, url]) => ({ key, path: url.slice(base.length) }));
  const ownedByCore = (path: string): boolean =>
    corePaths.some((r) => path === r.path || (r.key === 'interaction' && path.startsWith(r.path + '/')));

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q === -1 ? url : url.slice(0, q);
    if (issuerPath !== '' && path.startsWith(issuerPath + '/')) path = path.slice(issuerPath.length);
    if ((path !== DEMO_CALLBACK_PATH && path !== DEMO_LOGGED_OUT_PATH) || ownedByCore(path)) {
      inner(req, res);
      return;
    }
    portcullis.clients.get(DEMO_WEB_CLIENT_ID).then(
      (client) => {
        if (client === undefined) {
          inner(req, res);
          return;
        }
        const query = q === -1 ? '' : url.slice(q + 1);
        if (path === DEMO_LOGGED_OUT_PATH) return loggedOutPage(req, res);
        return callbackPage(req, res, query, portcullis, flow);
      },
      (err: unknown) => {
        logger.error({ err }, 'the demo pages could not read the demo web client');
        sendError(res, 500, 'server_error', 'The server encountered an unexpected error');
      },
    ).catch((err: unknown) => {
      logger.error({ err }, 'the demo page failed');
      if (!res.headersSent) sendError(res, 500, 'server_error', 'The server encountered an unexpected error');
      else res.destroy();
    });
  };
}

function loggedOutPage(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(req, res, 'GET, HEAD');
  req.resume();
  const nonce = newNonce();
  sendHtml(req, res, pageHeaders(nonce), defaultPages.loggedOut({ nonce, serviceName: SERVICE_NAME }).toString());
}

async function callbackPage(req: IncomingMessage, res: ServerResponse, query: string, portcullis: Portcullis, flow: DemoFlow): Promise<void> {
  let params: URLSearchParams;
  if (req.method === 'GET' || req.method === 'HEAD') {
    req.resume();
    params = new URLSearchParams(query);
  } else if (req.method === 'POST') {
    // response_mode=form_post: the parameters arrive in a form.
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      return sendError(res, 415, 'invalid_request', 'The form must be application/x-www-form-urlencoded');
    }
    const body = await readBody(req, MAX_FORM_BYTES);
    if (body === undefined) return sendError(res, 413, 'invalid_request', 'The form is too large', true);
    params = new URLSearchParams(body);
  } else {
    return methodNotAllowed(req, res, 'GET, HEAD, POST');
  }
  const get = (name: string): string | undefined => params.get(name) ?? undefined;
  const code = get('code');
  const state = get('state');
  const iss = get('iss');
  const error = get('error');
  const errorDescription = get('error_description');
  // The verifier of this process belongs to the authorization URL of its banner: shown only when the state says so.
  const verifier = state !== undefined && state === flow.state ? flow.codeVerifier : undefined;
  const nonce = newNonce();
  const tokenEndpoint = portcullis.endpoints.token;
  let curl: string | undefined;
  if (code !== undefined) {
    const notes = [`# ${DEMO_SECRET_VARIABLE}: the demo-web client secret printed when the server first started`];
    if (verifier === undefined) notes.push('# CODE_VERIFIER: the PKCE code_verifier of the authorization request that returned this code');
    curl = `${notes.join('\n')}\n${exchangeCurl(tokenEndpoint, flow.redirectUri, code, verifier)}`;
  }
  const page = defaultPages.demoCallback({
    nonce,
    serviceName: SERVICE_NAME,
    tokenEndpoint,
    ...(code !== undefined ? { code } : {}),
    ...(state !== undefined ? { state } : {}),
    ...(iss !== undefined ? { iss } : {}),
    ...(error !== undefined ? { error } : {}),
    ...(errorDescription !== undefined ? { errorDescription } : {}),
    ...(curl !== undefined ? { curl } : {}),
  });
  sendHtml(req, res, pageHeaders(nonce), page.toString());
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size).toString('utf8'));
      done = true;
    });
    req.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
  });
}

function sendHtml(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, body: string): void {
  res.statusCode = 200;
  for (const [key, value] of Object.entries(headers)) res.setHeader(key, value);
  res.setHeader('content-length', Buffer.byteLength(body));
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  req.resume();
  res.setHeader('allow', allow);
  sendError(res, 405, 'invalid_request', `The request must use ${allow.replace(/, (?=[^,]*$)/, ' or ')}`);
}

function sendError(res: ServerResponse, status: number, error: string, description: string, close = false): void {
  const body = JSON.stringify({ error, error_description: description });
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(body));
  // The rest of an oversized body is not read: close the connection after answering.
  if (close) res.setHeader('connection', 'close');
  res.end(body);
}
