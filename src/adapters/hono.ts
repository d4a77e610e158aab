/**
 * Hono adapter: `app.route('/oauth', portcullisHono(portcullis))` (or `app.mount('/oauth', portcullis.fetch)`),
 * and the `honoBearer` guard for API routes. Runs wherever Hono runs: Node, Bun, Deno, workers.
 * @module
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { basePath } from 'hono/route';
import { OAuthError, toOAuthError } from '../core/errors.js';
import type { OAuthRequest } from '../core/http.js';
import { errorResponse } from '../endpoints/respond.js';
import type { Portcullis } from '../portcullis-types.js';
import { oauthResponseToFetch, readCapped } from './fetch.js';
import { corePathMatcher, DEFAULT_ADAPTER_MAX_BODY_BYTES, mountedTarget } from './mount.js';

export { honoBearer, type BearerVariables } from '../resource/hono.js';

export interface PortcullisHonoOptions {
  /** Largest body read, bytes (default 65,536). */
  maxBodyBytes?: number;
  /** Hand paths the server does not serve to the next handler (decided before any body is read). Default true. */
  fallthrough?: boolean;
  /** The client address, for throttling (e.g. from `getConnInfo(c)` of your runtime's adapter). */
  clientIp?: (c: Context) => string | undefined;
}

/**
 * A Hono sub-app serving the authorization server under whatever path it is routed at. Endpoint
 * URLs come from the configured issuer, never from the request. A body that a middleware already
 * read through Hono (`c.req.parseBody()`, `c.req.text()`…) is taken from Hono's body cache.
 * @example
 * ```ts
 * const app = new Hono();
 * app.route('/oauth', portcullisHono(portcullis));
 * ```
 */
export function portcullisHono(portcullis: Portcullis, options: PortcullisHonoOptions = {}): Hono {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_ADAPTER_MAX_BODY_BYTES;
  const fallthrough = options.fallthrough !== false;
  const serves = corePathMatcher(portcullis);
  const app = new Hono();
  app.all('*', async (c, next) => {
    const url = new URL(c.req.url);
    const { path, query } = mountedTarget(url.pathname + url.search, basePath(c));
    if (fallthrough && !serves(path)) {
      await next();
      return undefined;
    }
    const headers: Record<string, string> = Object.create(null);
    c.req.raw.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const req: OAuthRequest = { method: c.req.method.toUpperCase(), path, query, headers };
    const ip = options.clientIp?.(c);
    if (ip !== undefined) req.ip = ip;
    try {
      const body = await bodyOf(c, maxBodyBytes);
      if (body !== undefined) req.body = body;
    } catch (err) {
      return oauthResponseToFetch(errorResponse(toOAuthError(err)));
    }
    return oauthResponseToFetch(await portcullis.handle(req));
  });
  return app;
}

async function bodyOf(c: Context, maxBodyBytes: number): Promise<OAuthRequest['body']> {
  const method = c.req.method.toUpperCase();
  if (method === 'GET' || method === 'HEAD') return undefined;
  const raw = c.req.raw;
  if (!raw.bodyUsed) {
    if (raw.body === null) return undefined;
    const declared = raw.headers.get('content-length');
    if (declared !== null && Number(declared) > maxBodyBytes) {
      await raw.body.cancel().catch(() => {});
      throw new OAuthError('invalid_request', 'The request body is too large', { status: 413 });
    }
    return readCapped(raw.body, maxBodyBytes);
  }
  // Read before us through Hono: use its cache rather than the spent stream.
  // Hono keeps the promise of each body reading it did (typed as the Body methods).
  const cache = c.req.bodyCache as unknown as { arrayBuffer?: Promise<ArrayBuffer>; text?: Promise<string>; formData?: Promise<FormData>; json?: Promise<unknown>; blob?: Promise<Blob> };
  if (cache.arrayBuffer !== undefined) return new Uint8Array(await cache.arrayBuffer);
  if (cache.text !== undefined) return await cache.text;
  if (cache.formData !== undefined) {
    const form: Record<string, string | string[]> = Object.create(null);
    (await cache.formData).forEach((value, key) => {
      if (typeof value !== 'string') return;
      const prev = form[key];
      form[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    });
    return form;
  }
  if (cache.json !== undefined) return JSON.stringify(await cache.json);
  if (cache.blob !== undefined) return new Uint8Array(await (await cache.blob).arrayBuffer());
  throw new Error('The request body was consumed outside Hono and cannot be read again');
}
