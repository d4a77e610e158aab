/**
 * The bearer guard for plain `node:http` servers.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeNodeResponse } from '../adapters/node-http.js';
import { bearerErrorResponse, queryOf, toBearerVerifier, type BearerCheck, type BearerOptions, type BearerVerifier, type VerifiedAccessToken } from './bearer.js';

/**
 * A guard for a `node:http` handler: resolves to the verified token, or answers the request itself
 * (401/403/400 with `WWW-Authenticate`) and resolves to `undefined`. Only the `Authorization`
 * header is read (and `req.body` when something already parsed a form body).
 * @example
 * ```ts
 * const guard = nodeBearer({ portcullis, audience: 'https://api.example.com', requiredScopes: ['api:read'] });
 * createServer(async (req, res) => {
 *   const auth = await guard(req, res);
 *   if (auth === undefined) return;
 *   res.end(`hello ${auth.sub}`);
 * });
 * ```
 */
export function nodeBearer(options: BearerOptions | BearerVerifier, check?: BearerCheck): (req: IncomingMessage, res: ServerResponse) => Promise<VerifiedAccessToken | undefined> {
  const verifier = toBearerVerifier(options);
  return async (req, res) => {
    const body = (req as IncomingMessage & { body?: unknown }).body;
    const result = await verifier.verify({ method: req.method ?? 'GET', headers: req.headers, query: queryOf(req.url ?? ''), body }, check);
    if (result.ok) return result.token;
    writeNodeResponse(req, res, bearerErrorResponse(result));
    return undefined;
  };
}
