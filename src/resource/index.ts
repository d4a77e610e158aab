/**
 * The resource-server guard (RFC 6750) without a framework: `verifyBearer` / `createBearerVerifier`
 * for any request shape, and `nodeBearer` for `node:http`. The framework middlewares live in the
 * adapters: `portcullis/express` (`expressBearer`), `portcullis/fastify` (`fastifyBearer`),
 * `portcullis/hono` (`honoBearer`), `portcullis/hapi` (the `portcullis` auth scheme).
 * @module
 */
export {
  verifyBearer,
  createBearerVerifier,
  toBearerVerifier,
  extractBearerToken,
  bearerErrorResponse,
  DEFAULT_BEARER_ALGORITHMS,
  type BearerOptions,
  type BearerVerifier,
  type BearerRequest,
  type BearerResult,
  type BearerSuccess,
  type BearerFailure,
  type BearerCheck,
  type BearerErrorCode,
  type VerifiedAccessToken,
} from './bearer.js';
export { MAX_INTROSPECTION_CACHE_SECONDS, type IntrospectionOptions } from './introspection.js';
export { nodeBearer } from './node.js';
