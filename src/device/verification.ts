import { setTimeout as sleep } from 'node:timers/promises';
import { randomToken } from '../core/crypto.js';
import { bodyText, parseUrlEncoded } from '../core/form.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { parseCookies, serializeCookie } from '../interaction/cookies.js';
import { htmlResponse } from '../interaction/respond.js';
import type { Session } from '../interaction/sessions.js';
import { STANDARD_SCOPES } from '../oidc/claims.js';
import type { ServerContext } from '../server-context.js';
import type { ArtifactRecord, ClientRecord } from '../storage/contract.js';
import { verifyPassword } from '../users/passwords.js';
import { DEVICE_CODE_GRANT_TYPE, claimVersion, readDeviceState, userCodeId, writeDeviceState, type DeviceCodeState } from './state.js';
import { USER_CODE_LENGTH, formatUserCode, isNormalizedUserCode, normalizeUserCode } from './user-code.js';

/** Per-browser cookie of the device flow: binds CSRF tokens and counts code attempts before sign-in. */
export const DEVICE_COOKIE = 'portcullis.device';
const DEVICE_COOKIE_TTL = 24 * 3600;
/** Prefix of the rate-limit keys that count user-code submissions (`browser:`, `addr:`, `global`). */
export const USER_CODE_ATTEMPTS_PREFIX = 'device_user_code_attempts:';

const WRONG_CODE = 'That code is not valid. Check the code shown on your device and try again.';
const TOO_MANY_CODES = 'Too many codes were tried; wait a few minutes and try again.';
const CODE_USED = 'This code has already been used. Start again on your device.';
const CODE_EXPIRED = 'This code has expired. Start again on your device.';
const BAD_LOGIN = 'The username or password is incorrect';
const TOO_MANY = 'Too many sign-in attempts; try again later';

/** A decision retries this often when polls hold the device code's state version. */
const DECISION_ATTEMPTS = 40;
const DECISION_RETRY_MS = 25;

interface Browser {
  /** Random id of this browser's device-flow cookie. */
  id: string;
  /** Set when the browser had no (valid) cookie yet. */
  setCookie?: string;
}

/** A live user code and everything the pages need about it. */
interface Found {
  /** Normalized user code. */
  userCode: string;
  /** Storage id of the device code. */
  id: string;
  record: ArtifactRecord;
  state: DeviceCodeState;
  client: ClientRecord;
}

type Form = Record<string, string | undefined>;

/**
 * The hosted verification page (RFC 8628 §3.3), with the security rules of the login and consent pages:
 * - `GET <device>[?user_code=…]`: the code form (prefilled from `verification_uri_complete`, never
 *   submitted automatically: the user confirms, RFC 8628 §5.4);
 * - `POST <device>`: a code. Counted against the per-browser, per-address and global limits BEFORE it is
 *   looked up (past a limit: 429, no lookup); then the login form when nobody is signed in, else the
 *   confirmation page naming the client, the scopes and the code;
 * - `POST <device>/login`: hosted sign-in (the hosted login's throttling), then the confirmation page;
 * - `POST <device>/confirm`: `decision=approve|deny`, recorded on the device code.
 * Every POST carries a CSRF token: an HMAC bound to this browser's device-flow cookie (and, after the
 * code step, to the code and the session), so a form cannot be forged or replayed in another browser.
 */
export async function deviceVerificationEndpoint(req: OAuthRequest, server: ServerContext, action: 'login' | 'confirm' | undefined): Promise<OAuthResponse> {
  const browser = browserOf(req, server);
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (action !== undefined) return errorPage(server, 405, 'invalid_request', 'The request must use POST', browser);
    const typed = new URLSearchParams(req.query).get('user_code') ?? undefined;
    const prefill = shownCode(typed);
    return codePage(server, browser, 200, prefill === undefined ? {} : { userCode: prefill });
  }
  if (req.method !== 'POST') return errorPage(server, 405, 'invalid_request', 'The request must use GET or POST', browser);
  const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') return errorPage(server, 400, 'invalid_request', 'The form must be application/x-www-form-urlencoded', browser);
  let form: Form;
  try {
    const body = bodyText(req);
    if (body.length > server.maxBodyBytes) return errorPage(server, 413, 'invalid_request', 'The form is too large', browser);
    form = parseUrlEncoded(body).single;
  } catch {
    return errorPage(server, 400, 'invalid_request', 'The form could not be read', browser);
  }
  if (action === undefined) return submitCode(req, server, browser, form);
  if (action === 'login') return login(req, server, browser, form);
  return confirm(req, server, browser, form);
}

async function submitCode(req: OAuthRequest, server: ServerContext, browser: Browser, form: Form): Promise<OAuthResponse> {
  if (browser.setCookie !== undefined || form.csrf === undefined || !server.signer.verify(codeStepMessage(browser.id), form.csrf)) return csrfFailed(server, browser);
  const typed = form.user_code?.slice(0, 64);
  const shown = shownCode(typed);
  const keep = shown === undefined ? {} : { userCode: shown };
  if (await tooManyAttempts(req, server, browser)) return codePage(server, browser, 429, { ...keep, error: TOO_MANY_CODES });
  const now = server.clock();
  const normalized = normalizeUserCode(typed);
  const found = normalized === undefined ? undefined : await lookup(server, normalized, now);
  if (found === undefined) {
    server.logger.info({ event: 'device.user_code_rejected', ip: req.ip }, 'a wrong user code was entered');
    return codePage(server, browser, 400, { ...keep, error: WRONG_CODE });
  }
  // A right code clears this browser's count, so it counts consecutive wrong codes (a user connecting
  // several devices is not locked out). The per-address and global counts are never cleared.
  await server.storage.resetRateLimit(browserKey(browser));
  const problem = codeProblem(found, now);
  if (problem !== undefined) return codePage(server, browser, 400, { ...keep, error: problem });
  const session = await server.sessions.current(req.headers.cookie);
  if (session === undefined) return loginPage(server, browser, found, 200);
  return confirmPage(server, browser, found, session, 200);
}

async function login(req: OAuthRequest, server: ServerContext, browser: Browser, form: Form): Promise<OAuthResponse> {
  const code = readStepToken(server, 'login', browser, '', form.csrf);
  if (code === undefined) return csrfFailed(server, browser);
  const now = server.clock();
  const found = await lookup(server, code, now);
  if (found === undefined) return codePage(server, browser, 400, { error: CODE_EXPIRED });
  const problem = codeProblem(found, now);
  if (problem !== undefined) return codePage(server, browser, 400, { error: problem });

  const username = form.username?.slice(0, 255);
  const password = form.password;
  if (username === undefined || password === undefined) return loginPage(server, browser, found, 400, BAD_LOGIN, username);
  // The hosted login's throttling, with the same counters: one budget per username and per address.
  const limits = server.loginThrottle;
  const userKey = `login_attempts_user:${username.toLowerCase()}`;
  const userHits = await server.storage.hitRateLimit(userKey, limits.windowSeconds, now);
  const addrHits = req.ip === undefined ? undefined : await server.storage.hitRateLimit(`login_attempts_addr:${req.ip}`, limits.windowSeconds, now);
  if (userHits.count > limits.maxAttemptsPerUser || (addrHits !== undefined && addrHits.count > limits.maxAttemptsPerAddress)) {
    return loginPage(server, browser, found, 429, TOO_MANY, username);
  }
  const user = await server.storage.getUserByUsername(username);
  const ok = await verifyPassword(password.slice(0, 1024), user?.password_hash);
  if (!ok || user === undefined) return loginPage(server, browser, found, 400, BAD_LOGIN, username);
  await server.storage.resetRateLimit(userKey);

  // A fresh session id at every sign-in (no session fixation).
  const previous = await server.sessions.current(req.headers.cookie);
  if (previous !== undefined) await server.sessions.destroy(previous);
  const { session, setCookie } = await server.sessions.create(user.id, ['pwd']);
  return confirmPage(server, browser, found, session, 200, [setCookie]);
}

async function confirm(req: OAuthRequest, server: ServerContext, browser: Browser, form: Form): Promise<OAuthResponse> {
  const session = await server.sessions.current(req.headers.cookie);
  const code = session === undefined ? undefined : readStepToken(server, 'confirm', browser, session.id, form.csrf);
  if (session === undefined || code === undefined) return csrfFailed(server, browser);
  const decision = form.decision;
  for (let attempt = 0; attempt < DECISION_ATTEMPTS; attempt++) {
    const now = server.clock();
    const found = await lookup(server, code, now);
    if (found === undefined) return codePage(server, browser, 400, { error: CODE_EXPIRED });
    const problem = codeProblem(found, now);
    if (problem !== undefined) return codePage(server, browser, 400, { error: problem });
    if (decision !== 'approve' && decision !== 'deny') return confirmPage(server, browser, found, session, 400);
    // Polls write the same state: claim its version, or wait for the poll in flight to finish.
    if (!(await claimVersion(server, found.id, found.state.version))) {
      await sleep(DECISION_RETRY_MS);
      continue;
    }
    const clientName = found.client.client_name ?? found.client.client_id;
    if (decision === 'approve') {
      const grant = await server.tokens.createGrant({
        client: found.client,
        grantType: DEVICE_CODE_GRANT_TYPE,
        scope: scopeOf(found.record),
        userId: session.userId,
        authTime: session.authTime,
        data: { amr: session.amr },
      });
      await writeDeviceState(server, found.id, found.state, { status: 'approved', user_id: session.userId, grant_id: grant.id, decided_at: now });
      server.logger.info({ event: 'device_code.approved', client_id: found.client.client_id, user_id: session.userId }, 'device authorization approved');
    } else {
      await writeDeviceState(server, found.id, found.state, { status: 'denied', user_id: session.userId, decided_at: now });
      server.logger.info({ event: 'device_code.denied', client_id: found.client.client_id, user_id: session.userId }, 'device authorization denied');
    }
    return htmlResponse(200, server, (nonce) => server.pages.deviceDone({ nonce, serviceName: server.serviceName, approved: decision === 'approve', clientName }));
  }
  return errorPage(server, 503, 'temporarily_unavailable', 'The device is busy; try again in a moment', browser);
}

/**
 * Count one submission against the per-browser, per-address and global windows, in that order; true
 * (refuse without looking the code up) as soon as one is over its limit. Counting comes before the
 * lookup and uses the atomic `hitRateLimit`, so however many submissions run at once, at most the
 * limit of them are ever looked up.
 */
async function tooManyAttempts(req: OAuthRequest, server: ServerContext, browser: Browser): Promise<boolean> {
  const o = server.deviceFlow;
  const now = server.clock();
  const windows: [string, number][] = [[browserKey(browser), o.maxCodeAttemptsPerBrowser]];
  if (req.ip !== undefined) windows.push([`${USER_CODE_ATTEMPTS_PREFIX}addr:${req.ip}`, o.maxCodeAttemptsPerAddress]);
  windows.push([`${USER_CODE_ATTEMPTS_PREFIX}global`, o.maxCodeAttemptsGlobal]);
  for (const [key, max] of windows) {
    const hit = await server.storage.hitRateLimit(key, o.windowSeconds, now);
    if (hit.count > max) {
      if (hit.count === max + 1) server.logger.warn({ event: 'device.user_code_throttled', limit: key.slice(USER_CODE_ATTEMPTS_PREFIX.length).split(':', 1)[0], ip: req.ip, reset_at: hit.reset_at }, 'user-code entry throttled');
      return true;
    }
  }
  return false;
}

/** The live device code a normalized user code names, with its client; undefined when unknown. */
async function lookup(server: ServerContext, userCode: string, now: number): Promise<Found | undefined> {
  const ucId = userCodeId(userCode);
  const link = await server.storage.findArtifact('user_code', ucId, now);
  const deviceId = link?.data?.device_code_id;
  if (typeof deviceId !== 'string') return undefined;
  const record = await server.storage.findArtifact('device_code', deviceId, now);
  const state = record === undefined ? undefined : readDeviceState(record);
  if (record === undefined || state === undefined || state.user_code_id !== ucId) return undefined;
  const client = await server.storage.getClient(record.client_id);
  if (client === undefined) return undefined;
  return { userCode, id: deviceId, record, state, client };
}

/** Why a found code cannot be approved any more, or undefined when it can. */
function codeProblem(found: Found, now: number): string | undefined {
  if (found.record.consumed_at !== undefined || found.record.revoked_at !== undefined || found.state.status !== 'pending') return CODE_USED;
  if (now >= found.state.expires_at) return CODE_EXPIRED;
  return undefined;
}

function browserOf(req: OAuthRequest, server: ServerContext): Browser {
  const value = server.signer.unsign(parseCookies(req.headers.cookie)[DEVICE_COOKIE]);
  if (value !== undefined && /^[A-Za-z0-9_-]{22}$/.test(value)) return { id: value };
  const id = randomToken(16);
  const setCookie = serializeCookie(DEVICE_COOKIE, server.signer.sign(id), { path: new URL(server.endpoints.device).pathname, secure: server.cookie.secure, maxAge: DEVICE_COOKIE_TTL });
  return { id, setCookie };
}

function browserKey(browser: Browser): string {
  return `${USER_CODE_ATTEMPTS_PREFIX}browser:${browser.id}`;
}

function codeStepMessage(browserId: string): string {
  return `device-code\u0000${browserId}`;
}

function stepMessage(step: 'login' | 'confirm', browserId: string, sessionId: string, code: string): string {
  return `device-${step}\u0000${browserId}\u0000${sessionId}\u0000${code}`;
}

/**
 * The CSRF token of the login and confirmation forms: `<user code>.<HMAC>`, the HMAC over the step, the
 * browser, the session (confirmation) and the code. It carries the code from step to step, so several
 * tabs with different codes cannot be confused, and the code is never looked up (or counted) again.
 */
function stepToken(server: ServerContext, step: 'login' | 'confirm', browser: Browser, sessionId: string, code: string): string {
  return `${code}.${server.signer.mac(stepMessage(step, browser.id, sessionId, code))}`;
}

function readStepToken(server: ServerContext, step: 'login' | 'confirm', browser: Browser, sessionId: string, token: string | undefined): string | undefined {
  if (browser.setCookie !== undefined || token === undefined || token.indexOf('.') !== USER_CODE_LENGTH) return undefined;
  const code = token.slice(0, USER_CODE_LENGTH);
  if (!isNormalizedUserCode(code)) return undefined;
  return server.signer.verify(stepMessage(step, browser.id, sessionId, code), token.slice(USER_CODE_LENGTH + 1)) ? code : undefined;
}

/** What to show back in the input: the formatted code when it is one, else what was typed (bounded). */
function shownCode(typed: string | undefined): string | undefined {
  if (typed === undefined || typed === '') return undefined;
  const normalized = normalizeUserCode(typed);
  return normalized === undefined ? typed.slice(0, 32) : formatUserCode(normalized);
}

function scopeOf(record: ArtifactRecord): string[] {
  return record.scope === '' ? [] : record.scope.split(' ');
}

function cookiesOf(browser: Browser, extra: string[] = []): string[] {
  return browser.setCookie === undefined ? extra : [browser.setCookie, ...extra];
}

function codePage(server: ServerContext, browser: Browser, status: number, props: { userCode?: string; error?: string }): OAuthResponse {
  return htmlResponse(
    status,
    server,
    (nonce) =>
      server.pages.deviceCode({
        nonce,
        serviceName: server.serviceName,
        action: server.endpoints.device,
        csrfToken: server.signer.mac(codeStepMessage(browser.id)),
        ...props,
      }),
    { setCookies: cookiesOf(browser) },
  );
}

function loginPage(server: ServerContext, browser: Browser, found: Found, status: number, error?: string, username?: string): OAuthResponse {
  return htmlResponse(
    status,
    server,
    (nonce) =>
      server.pages.login({
        nonce,
        serviceName: server.serviceName,
        action: `${server.endpoints.device}/login`,
        csrfToken: stepToken(server, 'login', browser, '', found.userCode),
        clientName: found.client.client_name ?? found.client.client_id,
        ...(username !== undefined ? { username } : {}),
        ...(error !== undefined ? { error } : {}),
      }),
    { setCookies: cookiesOf(browser) },
  );
}

async function confirmPage(server: ServerContext, browser: Browser, found: Found, session: Session, status: number, cookies: string[] = []): Promise<OAuthResponse> {
  const user = await server.storage.getUser(session.userId);
  const userName = typeof user?.claims.name === 'string' ? user.claims.name : user?.username ?? 'you';
  return htmlResponse(
    status,
    server,
    (nonce) =>
      server.pages.deviceConfirm({
        nonce,
        serviceName: server.serviceName,
        action: `${server.endpoints.device}/confirm`,
        csrfToken: stepToken(server, 'confirm', browser, session.id, found.userCode),
        clientName: found.client.client_name ?? found.client.client_id,
        userName,
        userCode: formatUserCode(found.userCode),
        scopes: scopeOf(found.record).map((name) => ({ name, description: server.scopes.descriptions[name] ?? STANDARD_SCOPES[name] ?? name })),
      }),
    { setCookies: cookiesOf(browser, cookies) },
  );
}

function csrfFailed(server: ServerContext, browser: Browser): OAuthResponse {
  return errorPage(server, 403, 'invalid_request', 'The form expired or did not come from this site (CSRF check failed). Go back and try again.', browser);
}

function errorPage(server: ServerContext, status: number, error: string, description: string, browser: Browser): OAuthResponse {
  return htmlResponse(status, server, (nonce) => server.pages.error({ nonce, serviceName: server.serviceName, error, description }), { setCookies: cookiesOf(browser) });
}
