/**
 * Express for the server object, as the seed's `/express` entry: `requestFromExpress`,
 * `handleExpressResponse`, `handleExpressError`, `responseFromExpress`.
 *
 * A body already parsed by `express.urlencoded()` is used as is; without a body parser the body is
 * read from the request when the server object needs it. Responses are written byte for byte as the
 * core made them (redirects, JSON with `Cache-Control: no-store`, `WWW-Authenticate` on 401s).
 * @example
 * ```ts
 * app.post('/token', async (req: Express.Request, res: Express.Response) => {
 *   try {
 *     const oauthResponse = await authorizationServer.respondToAccessTokenRequest(req);
 *     return handleExpressResponse(res, oauthResponse);
 *   } catch (e) {
 *     handleExpressError(e, res);
 *     return;
 *   }
 * });
 * ```
 */
import type { ServerResponse } from 'node:http';
import type { Request as ExpressRequest, Response as ExpressResponse } from 'express';
import { errorToWire, isConsumed, OAuthRequest, OAuthResponse, rawQueryOf, toWire, type ResponseInterface } from './http.js';
import { writeNode } from './node.js';

/** The request for the server object (sync, as in the seed: the body is read later when no parser ran). */
export function requestFromExpress(req: Express.Request): OAuthRequest {
  const r = req as ExpressRequest;
  const parsed = r.body !== null && typeof r.body === 'object' && !Buffer.isBuffer(r.body) ? (r.body as Record<string, unknown>) : undefined;
  const raw = typeof r.body === 'string' || Buffer.isBuffer(r.body) ? (r.body as string | Buffer) : undefined;
  const request = new OAuthRequest({ headers: { ...r.headers }, query: { ...(r.query as Record<string, unknown>) }, body: parsed ?? {} });
  const ip = r.ip ?? r.socket?.remoteAddress;
  return OAuthRequest.withCore(request, {
    method: r.method,
    query: rawQueryOf(r.originalUrl ?? r.url ?? ''),
    ...(raw !== undefined ? { body: raw } : parsed !== undefined && isConsumed(r) ? { body: parsed } : {}),
    ...(ip !== undefined ? { ip } : {}),
    ...(raw === undefined && !isConsumed(r) ? { node: r } : {}),
  });
}

/** Send a server-object response: the status, every header, and the body (none on a redirect). */
export function handleExpressResponse(expressResponse: Express.Response, oauthResponse: OAuthResponse | ResponseInterface): void {
  writeNode(expressResponse as ExpressResponse as ServerResponse, toWire(oauthResponse));
}

/**
 * Send what a caught error must look like: an `OAuthException` of the server object sends its
 * response (an RFC 6749 §5.2 error, a redirect to the client with `error`, or an error page); any
 * other error is a bare 500 `server_error` whose text is never sent.
 */
export function handleExpressError(e: unknown, res: Express.Response): void {
  writeNode(res as ExpressResponse as ServerResponse, errorToWire(e));
}

/** The seed's helper: an `OAuthResponse` with the headers already set on the Express response. */
export function responseFromExpress(res: Express.Response): OAuthResponse {
  return new OAuthResponse({ headers: (res as ExpressResponse).getHeaders() as Record<string, unknown> });
}
