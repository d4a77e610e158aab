/**
 * Express 5 adapter: `app.use('/oauth', portcullisRouter(portcullis))`, and the `expressBearer`
 * guard for API routes.
 * @module
 */
import { Router } from 'express';
import type { Request } from 'express';
import type { OAuthRequest } from '../core/http.js';
import type { Portcullis } from '../portcullis-types.js';
import { corePathMatcher, DEFAULT_ADAPTER_MAX_BODY_BYTES, mountedTarget } from './mount.js';
import { nodeHeaders, readNodeBody, unreadableRequestResponse, writeNodeResponse } from './node-http.js';

export { expressBearer } from '../resource/express.js';

export interface PortcullisRouterOptions {
  /** Largest body read from the socket when no body parser ran, bytes (default 65,536). */
  maxBodyBytes?: number;
  /**
   * Hand paths the server does not serve to the next route (`next()`), decided before any body is
   * read. Default true; false answers them with the core's JSON 404.
   */
  fallthrough?: boolean;
}

/**
 * An Express router serving the authorization server, mountable under any prefix. Endpoint URLs
 * come from the configured issuer, never from the request; the path the core sees is the part after
 * the mount (`req.originalUrl` minus `req.baseUrl`). A body that `express.urlencoded()` (or another
 * parser) already read is used as parsed; otherwise the raw body is read with a byte cap.
 * @example
 * ```ts
 * const portcullis = await createPortcullis({ issuer: 'https://example.com/oauth', storage });
 * app.use('/oauth', portcullisRouter(portcullis));
 * ```
 */
export function portcullisRouter(portcullis: Portcullis, options: PortcullisRouterOptions = {}): Router {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_ADAPTER_MAX_BODY_BYTES;
  const fallthrough = options.fallthrough !== false;
  const serves = corePathMatcher(portcullis);
  const router = Router();
  router.use((req, res, next) => {
    const target = req.originalUrl.startsWith(req.baseUrl) ? req.originalUrl.slice(req.baseUrl.length) : req.url;
    const { path, query } = mountedTarget(target, '');
    if (fallthrough && !serves(path)) {
      next();
      return;
    }
    const oauthReq: OAuthRequest = { method: req.method.toUpperCase(), path, query, headers: nodeHeaders(req) };
    const ip = req.ip ?? req.socket.remoteAddress;
    if (ip !== undefined) oauthReq.ip = ip;
    bodyOf(req, maxBodyBytes)
      .then(
        async (body) => {
          if (body !== undefined) oauthReq.body = body;
          return portcullis.handle(oauthReq);
        },
        (err: unknown) => unreadableRequestResponse(err),
      )
      .then((response) => writeNodeResponse(req, res, response))
      .catch(next);
  });
  return router;
}

/** The body: what a parser left in `req.body` when the stream was consumed, else the raw bytes (capped). */
function bodyOf(req: Request, maxBodyBytes: number): Promise<OAuthRequest['body']> {
  if (!req.readableEnded) return readNodeBody(req, maxBodyBytes);
  const parsed: unknown = req.body;
  if (parsed === undefined || parsed === null) return Promise.resolve(undefined);
  if (typeof parsed === 'string' || parsed instanceof Uint8Array) return Promise.resolve(parsed);
  const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  // A parsed form is used as is; anything else (JSON…) goes back to text, so the core refuses it
  // for its content type instead of reading it as form parameters.
  if (contentType === 'application/x-www-form-urlencoded' && typeof parsed === 'object') return Promise.resolve(parsed as Readonly<Record<string, unknown>>);
  return Promise.resolve(JSON.stringify(parsed));
}
