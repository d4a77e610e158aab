/**
 * The seed package's Express route handlers (shared/seeds/003, 004: `/token`, `/authorize`,
 * `/token/revoke`), running on Portcullis with only the import path changed, plus what the seed
 * leaves to the app: a session, a login page and a consent page (server-rendered, CSRF-protected,
 * escaped with the `html` tag).
 *
 * The flow: GET /authorize → validateAuthorizationRequest → no user: /login → back to /authorize →
 * not approved: /scopes (consent) → back to /authorize → completeAuthorizationRequest → the client's
 * redirect URI with a code. Deny on the consent page → the client gets `error=access_denied`.
 *
 * Run (Portcullis storage in memory, a demo client and user):
 *   node --import tsx examples/server-object/express-app.ts
 * The same app over the seed's repositories: examples/server-object/from-repositories.ts.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { html, type HtmlString } from '../../src/interaction/html.js';
import { AuthorizationServer, OAuthRequest } from '../../src/server-object/index.js';
import { handleExpressError, handleExpressResponse, requestFromExpress } from '../../src/server-object/express.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    /** The signed-in user (the passport convention). */
    interface User {
      id: string;
      username: string;
    }
    interface Request {
      user?: User;
      /**
       * The seed's handler calls `req.redirect(…)` (Express only has `res.redirect`): the session
       * middleware below provides it, and remembers the authorization request for the round trip.
       */
      redirect(url: string): void;
    }
  }
}

/** How the app checks a password (its own user table). */
export interface Accounts {
  verify(username: string, password: string): Promise<Express.User | undefined>;
}

interface Session {
  id: string;
  csrf: string;
  user?: Express.User;
  /** The /authorize URL to come back to after login or consent. */
  returnTo?: string;
  /** /authorize URLs the user approved on the consent page; each approval is used once. */
  approvals: Set<string>;
}

export interface ExampleAppOptions {
  authorizationServer: AuthorizationServer;
  accounts: Accounts;
  /** The issuer: cookies get `Secure` when it is https. */
  issuer: string;
}

/** The Express app. */
export function createExpressApp({ authorizationServer, accounts, issuer }: ExampleAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));

  // ------------------------------------------------------------------------------------------
  // A minimal session (a real app uses its session middleware): random id in an HttpOnly cookie.
  const sessions = new Map<string, Session>();
  const secure = issuer.startsWith('https:');
  const context = new AsyncLocalStorage<{ req: express.Request; session: Session }>();
  const newSession = (res: express.Response, from?: Session): Session => {
    const session: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), approvals: new Set() };
    if (from?.returnTo !== undefined) session.returnTo = from.returnTo;
    sessions.set(session.id, session);
    res.cookie('sid', session.id, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
    return session;
  };
  app.use((req, res, next) => {
    const sid = /(?:^|;\s*)sid=([A-Za-z0-9_-]{43})(?:;|$)/.exec(req.headers.cookie ?? '')?.[1];
    const session = (sid !== undefined ? sessions.get(sid) : undefined) ?? newSession(res);
    if (session.user !== undefined) req.user = session.user;
    req.redirect = (url: string) => {
      if (req.path === '/authorize') session.returnTo = req.originalUrl;
      res.redirect(url);
    };
    context.run({ req, session }, next);
  });

  /** The seed calls this with no argument: the approval of THIS /authorize URL, from the session (used once). */
  function getIsAuthorizationApprovedFromSession(): boolean {
    const current = context.getStore();
    if (current === undefined) return false;
    return current.session.approvals.delete(current.req.originalUrl);
  }

  // ------------------------------------------------------------------------------------------
  // The seed's handlers, verbatim (shared/seeds/003 and 004).

  app.post("/token", async (req: Express.Request, res: Express.Response) => {
    try {
      const oauthResponse = await authorizationServer.respondToAccessTokenRequest(req);
      return handleExpressResponse(res, oauthResponse);
    } catch (e) {
      handleExpressError(e, res);
      return;
    }
  });

  app.get("/authorize", async (req: Express.Request, res: Express.Response) => {
    try {
      // Validate the HTTP request and return an AuthorizationRequest.
      const authRequest = await authorizationServer.validateAuthorizationRequest(
        requestFromExpress(req),
      );

      // You will probably redirect the user to a login endpoint.
      if (!req.user) {
        req.redirect("/login");
        return;
      }
      // After login, the user should be redirected back with user in the session.
      // You will need to manage the authorization query on the round trip.
      // The auth request object can be serialized and saved into a user's session.

      // Once the user has logged in set the user on the AuthorizationRequest
      authRequest.user = req.user;

      // Once the user has approved or denied the client update the status
      // (true = approved, false = denied)
      authRequest.isAuthorizationApproved = getIsAuthorizationApprovedFromSession();

      // If the user has not approved the client's authorization request,
      // the user should be redirected to the approval screen.
      if (!authRequest.isAuthorizationApproved) {
        // This form will ask the user to approve the client and the scopes requested.
        // "Do you authorize Jason to: read contacts? write contacts?"
        req.redirect("/scopes");
        return;
      }

      // At this point the user has approved the client for authorization.
      // Any last authorization requests such as Two Factor Authentication (2FA) can happen here.

      // Redirect back to redirect_uri with `code` and `state` as url query params.
      const oauthResponse = await authorizationServer.completeAuthorizationRequest(authRequest);
      return handleExpressResponse(res, oauthResponse);
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  app.post("/token/revoke", async (req: Express.Request, res: Express.Response) => {
    try {
      const oauthResponse = await authorizationServer.revoke(req);
      return handleExpressResponse(res, oauthResponse);
    } catch (e) {
      handleExpressError(e, res);
      return;
    }
  });

  // The same pattern for introspection, userinfo, JWKS and discovery.

  app.post('/token/introspect', async (req: Express.Request, res: Express.Response) => {
    try {
      return handleExpressResponse(res, await authorizationServer.introspect(req));
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  app.all('/userinfo', async (req, res) => {
    try {
      return handleExpressResponse(res, await authorizationServer.userInfo(req));
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  app.get('/jwks', async (_req, res) => {
    try {
      return handleExpressResponse(res, await authorizationServer.jwks());
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  app.get('/.well-known/openid-configuration', async (_req, res) => {
    try {
      return handleExpressResponse(res, await authorizationServer.openidConfiguration());
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  // ------------------------------------------------------------------------------------------
  // What the seed leaves to the app: login and consent.

  const session = (): Session => context.getStore()!.session;
  const csrfOk = (sent: unknown): boolean => {
    const expected = Buffer.from(session().csrf);
    const actual = Buffer.from(typeof sent === 'string' ? sent : '');
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  };

  app.get('/login', (_req, res) => {
    sendPage(res, 200, 'Sign in', loginForm(session().csrf));
  });

  app.post('/login', async (req, res) => {
    if (!csrfOk(req.body?.csrf)) return sendPage(res, 403, 'Sign in', html`<p role="alert">Your session expired. Please try again.</p>`);
    // A real app also limits attempts per username and per address here.
    const user = await accounts.verify(String(req.body?.username ?? ''), String(req.body?.password ?? ''));
    if (user === undefined) return sendPage(res, 401, 'Sign in', loginForm(session().csrf, 'The username or password is incorrect.'));
    // A new session on sign-in (no session fixation), keeping where to go back to.
    const old = session();
    sessions.delete(old.id);
    const fresh = newSession(res, old);
    fresh.user = user;
    res.redirect(303, fresh.returnTo ?? '/');
  });

  app.get('/scopes', async (req, res) => {
    const s = session();
    if (s.user === undefined || s.returnTo === undefined) return sendPage(res, 400, 'Nothing to approve', html`<p>There is no authorization request waiting.</p>`);
    try {
      const authRequest = await authorizationServer.validateAuthorizationRequest(pendingRequest(s.returnTo));
      sendPage(res, 200, 'Authorize', consentForm(s.csrf, s.user.username, authRequest.client.name, authRequest.scopes.map((x) => x.name), authRequest.redirectUri), [new URL(authRequest.redirectUri).origin]);
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  app.post('/scopes', async (req, res) => {
    const s = session();
    if (!csrfOk(req.body?.csrf)) return sendPage(res, 403, 'Authorize', html`<p role="alert">Your session expired. Please try again.</p>`);
    if (s.user === undefined || s.returnTo === undefined) return sendPage(res, 400, 'Nothing to approve', html`<p>There is no authorization request waiting.</p>`);
    const returnTo = s.returnTo;
    delete s.returnTo;
    if (req.body?.decision === 'approve') {
      s.approvals.add(returnTo);
      return res.redirect(303, returnTo);
    }
    try {
      const authRequest = await authorizationServer.validateAuthorizationRequest(pendingRequest(returnTo));
      authRequest.user = s.user;
      authRequest.isAuthorizationApproved = false;
      return handleExpressResponse(res, await authorizationServer.completeAuthorizationRequest(authRequest));
    } catch (e) {
      handleExpressError(e, res);
    }
  });

  return app;
}

/** The authorization request kept in the session, as a request object for the server object. */
function pendingRequest(returnTo: string): OAuthRequest {
  const query = Object.fromEntries(new URL(returnTo, 'http://localhost').searchParams);
  return new OAuthRequest({ query });
}

function sendPage(res: express.Response, status: number, title: string, body: HtmlString, formTargets: string[] = []): void {
  res.status(status);
  res.set({
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    // A POST answered by a redirect to the client counts as a form action: allow its origin.
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${formTargets.join(' ')}; frame-ancestors 'none'; base-uri 'none'`,
  });
  res.send(
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem">${body}</body></html>`.toString(),
  );
}

function loginForm(csrf: string, error?: string): HtmlString {
  return html`<h1>Sign in</h1>
${error !== undefined ? html`<p role="alert">${error}</p>` : ''}
<form method="post" action="/login">
  <input type="hidden" name="csrf" value="${csrf}">
  <p><label>Username <input name="username" autocomplete="username" required></label></p>
  <p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
  <p><button type="submit">Sign in</button></p>
</form>`;
}

function consentForm(csrf: string, username: string, clientName: string, scopes: string[], redirectUri: string): HtmlString {
  return html`<h1>Authorize ${clientName}</h1>
<p>Signed in as <strong>${username}</strong>.</p>
<p><strong>${clientName}</strong> asks to:</p>
<ul>${scopes.length === 0 ? html`<li>know who you are</li>` : scopes.map((s) => html`<li>${s}</li>`)}</ul>
<p>You will be sent back to <strong>${new URL(redirectUri).host}</strong>.</p>
<form method="post" action="/scopes">
  <input type="hidden" name="csrf" value="${csrf}">
  <button type="submit" name="decision" value="approve">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createMemoryStorage } = await import('../../src/storage/memory.js');
  const { hashPassword, createExampleDb } = await import('./repositories.js');
  const issuer = 'http://127.0.0.1:3000';
  const authorizationServer = new AuthorizationServer({ issuer, storage: createMemoryStorage(), routes: { revoke: '/token/revoke', introspect: '/token/introspect' } });
  authorizationServer.enableGrantType('authorization_code');
  const portcullis = await authorizationServer.getPortcullis();
  const { generatedSecret } = await portcullis.clients.upsert(
    { client_id: 'demo-web', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:8080/callback'], scope: 'openid profile email offline_access' },
    { generateSecret: true },
  );
  // The app's own user table (passwords hashed by the app); Portcullis learns the subject and claims.
  const db = createExampleDb();
  db.users.set('u-demo', { id: 'u-demo', username: 'demo', email: 'demo@example.com', passwordHash: hashPassword('demo-password') });
  await portcullis.users.upsert({ id: 'u-demo', username: 'demo', claims: { email: 'demo@example.com' } });
  const { InMemoryUserRepository } = await import('./repositories.js');
  const users = new InMemoryUserRepository(db);
  const app = createExpressApp({
    authorizationServer,
    issuer,
    accounts: {
      async verify(username, password) {
        const user = await users.getUserByCredentials(username, password);
        return user === undefined ? undefined : { id: user.id, username: user.username };
      },
    },
  });
  app.listen(3000, '127.0.0.1', () => {
    console.log(`listening on ${issuer}; client demo-web, secret ${generatedSecret}; user demo / demo-password`);
  });
}
