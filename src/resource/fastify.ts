/**
 * The bearer guard as a Fastify `preHandler` hook: `request.auth` holds the verified token.
 * @module
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerErrorResponse, queryOf, toBearerVerifier, type BearerCheck, type BearerOptions, type BearerVerifier, type VerifiedAccessToken } from './bearer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The access token verified by `fastifyBearer`. */
    auth?: VerifiedAccessToken;
  }
}

/**
 * A `preHandler` hook that verifies the bearer token (RFC 6750) and sets `request.auth`; a request
 * without a valid token is answered here (401/403/400 with `WWW-Authenticate`). A form body is
 * searched for `access_token` when a content-type parser produced it.
 * @example
 * ```ts
 * app.decorateRequest('auth', undefined); // optional: a stable request shape
 * const guard = createBearerVerifier({ portcullis, audience: 'https://api.example.com' });
 * app.get('/api/me', { preHandler: fastifyBearer(guard, { requiredScopes: ['api:read'] }) }, async (request) => ({ sub: request.auth!.sub }));
 * ```
 */
export function fastifyBearer(options: BearerOptions | BearerVerifier, check?: BearerCheck): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const verifier = toBearerVerifier(options);
  return async (request, reply) => {
    const result = await verifier.verify({ method: request.method, headers: request.headers, query: queryOf(request.url), body: request.body }, check);
    if (result.ok) {
      request.auth = result.token;
      return;
    }
    const response = bearerErrorResponse(result);
    reply.code(response.status).headers(response.headers);
    await reply.send(response.body === '' ? undefined : response.body);
  };
}
