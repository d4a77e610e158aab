/**
 * The bearer guard as Hono middleware: `c.get('auth')` holds the verified token.
 * @module
 */
import type { MiddlewareHandler } from 'hono';
import { bearerErrorResponse, queryOf, toBearerVerifier, type BearerCheck, type BearerOptions, type BearerVerifier, type VerifiedAccessToken } from './bearer.js';

/** The context variables `honoBearer` sets: `new Hono<{ Variables: BearerVariables }>()`. */
export interface BearerVariables {
  auth: VerifiedAccessToken;
}

/**
 * Middleware that verifies the bearer token (RFC 6750) and sets `c.var.auth`; a request without a
 * valid token is answered here (401/403/400 with `WWW-Authenticate`). A form body is read (through
 * Hono's body cache, so handlers can still read it) to find an `access_token` parameter.
 * @example
 * ```ts
 * const app = new Hono<{ Variables: BearerVariables }>();
 * app.use('/api/*', honoBearer({ portcullis, audience: 'https://api.example.com' }));
 * app.get('/api/me', (c) => c.json({ sub: c.var.auth.sub }));
 * ```
 */
export function honoBearer(options: BearerOptions | BearerVerifier, check?: BearerCheck): MiddlewareHandler<{ Variables: BearerVariables }> {
  const verifier = toBearerVerifier(options);
  return async (c, next) => {
    const method = c.req.method.toUpperCase();
    let body: string | undefined;
    const contentType = (c.req.header('content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (method !== 'GET' && method !== 'HEAD' && contentType === 'application/x-www-form-urlencoded') {
      body = await c.req.text().catch(() => undefined);
    }
    const result = await verifier.verify({ method, headers: c.req.raw.headers, query: queryOf(c.req.url), body }, check);
    if (!result.ok) {
      const response = bearerErrorResponse(result);
      return new Response(response.body === '' ? null : response.body, { status: response.status, headers: response.headers });
    }
    c.set('auth', result.token);
    await next();
    return undefined;
  };
}
