/**
 * hapi 21 adapter: the `portcullisHapi` plugin (`server.register({ plugin: portcullisHapi, options: { portcullis }, routes: { prefix: '/oauth' } })`),
 * which also registers the `portcullis` auth scheme for bearer-protected routes.
 * @module
 */
import type { Lifecycle, Plugin, Request, ResponseObject, ResponseToolkit } from '@hapi/hapi';
import { OAuthError, toOAuthError } from '../core/errors.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { errorResponse } from '../endpoints/respond.js';
import type { Portcullis } from '../portcullis-types.js';
import { hapiBearerScheme } from '../resource/hapi.js';
import { DEFAULT_ADAPTER_MAX_BODY_BYTES, mountedTarget } from './mount.js';
import { readStreamCapped } from './node-http.js';

export { hapiBearerScheme, type HapiBearerStrategyOptions, type HapiBearerRouteOptions, type HapiBearerCredentials } from '../resource/hapi.js';

export interface PortcullisHapiOptions {
  portcullis: Portcullis;
  /** Largest body accepted, bytes (default 65,536); larger ones get a 413 OAuth error. */
  maxBodyBytes?: number;
  /** Register the `portcullis` auth scheme (default true). Set false when it is registered elsewhere. */
  scheme?: boolean;
}

/**
 * The authorization server as a hapi plugin. Its routes take the raw payload (`parse: false`), skip
 * cookie parsing and authentication (they do their own), and build endpoint URLs from the
 * configured issuer, never from the request. It also registers the `portcullis` auth scheme:
 * `server.auth.strategy('oauth', 'portcullis', { portcullis, audience, scopes })`.
 * @example
 * ```ts
 * await server.register({ plugin: portcullisHapi, options: { portcullis }, routes: { prefix: '/oauth' } });
 * ```
 */
export const portcullisHapi: Plugin<PortcullisHapiOptions> = {
  name: 'portcullis',
  version: '0.1.0',
  requirements: { hapi: '>=21.0.0' },
  register(server, options) {
    const { portcullis } = options;
    if (portcullis === undefined || typeof portcullis.handle !== 'function') throw new TypeError('portcullisHapi: the `portcullis` option is required');
    const maxBytes = options.maxBodyBytes ?? DEFAULT_ADAPTER_MAX_BODY_BYTES;
    const prefix = server.realm.modifiers.route.prefix ?? '';
    if (options.scheme !== false) server.auth.scheme('portcullis', hapiBearerScheme);

    const payloadFailed: Lifecycle.Method = (_request, h, err) => {
      const status = (err as { output?: { statusCode?: number } } | undefined)?.output?.statusCode ?? 400;
      const oauthErr =
        status === 413
          ? new OAuthError('invalid_request', 'The request body is too large', { status: 413 })
          : status < 500
            ? new OAuthError('invalid_request', 'The request could not be read', { status: status === 415 ? 400 : status })
            : toOAuthError(err);
      return reply(h, errorResponse(oauthErr)).takeover();
    };

    const handler: Lifecycle.Method = async (request, h) => {
      const req = toOAuthRequest(request, prefix);
      if (isReadable(request.payload)) {
        // The payload stream is read here, capped: over the cap, reading stops and hapi closes the
        // connection after our 413 (its own reader would destroy the socket without an answer).
        try {
          const body = await readStreamCapped(request.payload, maxBytes);
          if (body !== undefined) req.body = body;
        } catch (err) {
          return reply(h, errorResponse(toOAuthError(err)));
        }
      }
      return reply(h, await portcullis.handle(req));
    };
    const common = { auth: false, state: { parse: false, failAction: 'ignore' }, response: { emptyStatusCode: 200 }, handler } as const;
    // GET also answers HEAD (hapi drops the body).
    server.route({ method: 'GET', path: '/{path*}', options: common });
    server.route({ method: 'POST', path: '/{path*}', options: { ...common, payload: { parse: false, output: 'stream', maxBytes, failAction: payloadFailed } } });
  },
};

function toOAuthRequest(request: Request, prefix: string): OAuthRequest {
  const { path, query } = mountedTarget(request.url.pathname + request.url.search, prefix);
  const headers: Record<string, string | undefined> = Object.create(null);
  for (const [key, value] of Object.entries(request.headers)) headers[key] = Array.isArray(value) ? value.join(', ') : (value as string | undefined);
  const req: OAuthRequest = { method: request.method.toUpperCase(), path, query, headers, ip: request.info.remoteAddress };
  return req;
}

function isReadable(value: unknown): value is NodeJS.ReadableStream {
  return typeof value === 'object' && value !== null && typeof (value as NodeJS.ReadableStream).on === 'function' && typeof (value as NodeJS.ReadableStream).pause === 'function';
}

function reply(h: ResponseToolkit, response: OAuthResponse): ResponseObject {
  const res = h.response(response.body).code(response.status);
  for (const key in response.headers) res.header(key, response.headers[key]!);
  if (response.setCookies !== undefined && response.setCookies.length > 0) res.header('set-cookie', response.setCookies as unknown as string);
  return res;
}
