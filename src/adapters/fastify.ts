/**
 * Fastify 5 adapter: an encapsulated plugin, `app.register(portcullisFastify, { prefix: '/oauth', portcullis })`,
 * and the `fastifyBearer` guard for API routes.
 * @module
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError, toOAuthError } from '../core/errors.js';
import type { OAuthRequest, OAuthResponse } from '../core/http.js';
import { errorResponse } from '../endpoints/respond.js';
import type { Portcullis } from '../portcullis-types.js';
import { DEFAULT_ADAPTER_MAX_BODY_BYTES, mountedTarget } from './mount.js';

export { fastifyBearer } from '../resource/fastify.js';

export interface PortcullisFastifyOptions {
  portcullis: Portcullis;
  /** Largest body accepted, bytes (default 65,536); larger ones get a 413 OAuth error. */
  maxBodyBytes?: number;
}

/**
 * The authorization server as an encapsulated Fastify plugin. Inside it (and only there) bodies are
 * kept raw: forms as text, anything else as bytes, so the core applies its own form rules. One
 * catch-all route serves GET, HEAD and POST under the prefix; endpoint URLs come from the configured
 * issuer, never from the request.
 * @example
 * ```ts
 * await app.register(portcullisFastify, { prefix: '/oauth', portcullis });
 * ```
 */
export const portcullisFastify: FastifyPluginAsync<PortcullisFastifyOptions> = async (fastify, options) => {
  const { portcullis } = options;
  if (portcullis === undefined || typeof portcullis.handle !== 'function') throw new TypeError('portcullisFastify: the `portcullis` option is required');
  const bodyLimit = options.maxBodyBytes ?? DEFAULT_ADAPTER_MAX_BODY_BYTES;
  const prefix = fastify.prefix;

  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit }, (_request, body, done) => done(null, body));
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));

  // Errors met before the handler (a body too large, unreadable, or of a strange media type) get the
  // RFC 6749 JSON shape; anything else is a bare server_error, never a stack trace.
  fastify.setErrorHandler((err: FastifyError, _request, reply) => {
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    let oauthErr: OAuthError;
    if (status === 413) oauthErr = new OAuthError('invalid_request', 'The request body is too large', { status: 413 });
    else if (status >= 400 && status < 500) oauthErr = new OAuthError('invalid_request', 'The request could not be read', { status: status === 415 ? 400 : status });
    else oauthErr = toOAuthError(err);
    return send(reply, errorResponse(oauthErr));
  });

  fastify.route({
    method: ['GET', 'HEAD', 'POST'],
    url: '/*',
    exposeHeadRoute: false,
    handler: async (request, reply) => send(reply, await portcullis.handle(toOAuthRequest(request, prefix))),
  });
};

function toOAuthRequest(request: FastifyRequest, prefix: string): OAuthRequest {
  const { path, query } = mountedTarget(request.url, prefix);
  const headers: Record<string, string | undefined> = Object.create(null);
  for (const [key, value] of Object.entries(request.headers)) headers[key] = Array.isArray(value) ? value.join(', ') : value;
  const req: OAuthRequest = { method: request.method.toUpperCase(), path, query, headers, ip: request.ip };
  const body: unknown = request.body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    if (body.length > 0) req.body = body;
  }
  return req;
}

function send(reply: FastifyReply, response: OAuthResponse): FastifyReply {
  reply.code(response.status);
  for (const key in response.headers) reply.header(key, response.headers[key]);
  if (response.setCookies !== undefined && response.setCookies.length > 0) reply.header('set-cookie', response.setCookies);
  return reply.send(response.body);
}
