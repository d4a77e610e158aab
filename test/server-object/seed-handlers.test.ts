/**
 * The seed's route handlers (shared/seeds/003 and 004) appear in examples/server-object/express-app.ts
 * unchanged, up to indentation: only the import path differs (`@jmondi/oauth2-server/express` →
 * the server-object Express adapter). The handler texts are copied here from the seeds; when the
 * seeds are present next to the repository, they are read from there too.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const HANDLERS = [
  `app.post("/token", async (req: Express.Request, res: Express.Response) => {
try {
const oauthResponse = await authorizationServer.respondToAccessTokenRequest(req);
return handleExpressResponse(res, oauthResponse);
} catch (e) {
handleExpressError(e, res);
return;
}
});`,
  `app.get("/authorize", async (req: Express.Request, res: Express.Response) => {
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

// Redirect back to redirect_uri with \`code\` and \`state\` as url query params.
const oauthResponse = await authorizationServer.completeAuthorizationRequest(authRequest);
return handleExpressResponse(res, oauthResponse);
} catch (e) {
handleExpressError(e, res);
}
});`,
  `app.post("/token/revoke", async (req: Express.Request, res: Express.Response) => {
try {
const oauthResponse = await authorizationServer.revoke(req);
return handleExpressResponse(res, oauthResponse);
} catch (e) {
handleExpressError(e, res);
return;
}
});`,
];

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();
const example = squash(readFileSync(join(REPO_ROOT, 'examples/server-object/express-app.ts'), 'utf8'));

describe('the seed handlers run unchanged in the Express example', () => {
  for (const handler of HANDLERS) {
    it(handler.split('\n', 1)[0]!, () => {
      assert.ok(example.includes(squash(handler)), 'handler text differs from the seed');
    });
  }

  const seeds = join(REPO_ROOT, '..', 'shared', 'seeds');
  it('the copies above match shared/seeds/003 and 004 (when present)', { skip: !existsSync(seeds) && 'shared/seeds not present' }, () => {
    const files = readdirSync(seeds).filter((f) => /^00[34]_/.test(f));
    const text = squash(files.map((f) => readFileSync(join(seeds, f), 'utf8')).join('\n'));
    for (const handler of HANDLERS) assert.ok(text.includes(squash(handler)), `not in the seeds: ${handler.split('\n', 1)[0]}`);
  });

  it('only the import path changed', () => {
    assert.match(example, /import \{ handleExpressError, handleExpressResponse, requestFromExpress \} from '\.\.\/\.\.\/src\/server-object\/express\.js';/);
  });
});
