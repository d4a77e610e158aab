/**
 * The bearer guard as Express middleware: `req.auth` holds the verified token.
 * @module
 */
import type { RequestHandler } from 'express';
import { writeNodeResponse } from '../adapters/node-http.js';
import { bearerErrorResponse, queryOf, toBearerVerifier, type BearerCheck, type BearerOptions, type BearerVerifier, type VerifiedAccessToken } from './bearer.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The access token verified by `expressBearer`. */
      auth?: VerifiedAccessToken;
    }
  }
}

/**
 * Express middleware that verifies the bearer token (RFC 6750) and sets `req.auth`; a request
 * without a valid token is answered here (401/403/400 with `WWW-Authenticate`). A form body is
 * searched for `access_token` only when a body parser (`express.urlencoded()`) ran first.
 * @example
 * ```ts
 * const guard = createBearerVerifier({ portcullis, audience: 'https://api.example.com' });
 * app.get('/api/me', expressBearer(guard, { requiredScopes: ['api:read'] }), (req, res) => res.json({ sub: req.auth!.sub }));
 * ```
 */
export function expressBearer(options: BearerOptions | BearerVerifier, check?: BearerCheck): RequestHandler {
  const verifier = toBearerVerifier(options);
  return (req, res, next) => {
    const body: unknown = req.readableEnded ? req.body : undefined;
    verifier.verify({ method: req.method, headers: req.headers, query: queryOf(req.originalUrl), body }, check).then((result) => {
      if (result.ok) {
        req.auth = result.token;
        next();
        return;
      }
      writeNodeResponse(req, res, bearerErrorResponse(result));
    }, next);
  };
}
