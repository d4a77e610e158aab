/**
 * Fastify for the server object, as the seed's `/fastify` entry: `requestFromFastify`,
 * `handleFastifyReply` (also `handleFastifyResponse`), `handleFastifyError`, `responseFromFastify`.
 *
 * Fastify parses JSON only: register a parser for forms that keeps the text, and the core reads it:
 * `app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body))`
 * (a parser that yields an object works too: the parsed object is used).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorToWire, OAuthRequest, OAuthResponse, rawQueryOf, toWire, type ResponseInterface, type WireResponse } from './http.js';
import { parsedView } from './node.js';

export function requestFromFastify(req: FastifyRequest): OAuthRequest {
  const body = req.body;
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
  const parsed = body !== null && typeof body === 'object' && !Buffer.isBuffer(body) ? (body as Record<string, unknown>) : undefined;
  const request = new OAuthRequest({
    headers: { ...req.headers },
    query: { ...(req.query as Record<string, unknown>) },
    body: parsed ?? (text !== undefined ? parsedView(req.headers['content-type'], text) : {}),
  });
  return OAuthRequest.withCore(request, {
    method: req.method,
    query: rawQueryOf(req.raw.url ?? req.url),
    ...(typeof body === 'string' || Buffer.isBuffer(body) ? { body } : parsed !== undefined ? { body: parsed } : {}),
    ip: req.ip,
  });
}

/** Send a server-object response (the seed's name). Returns the reply, so a handler can `return` it. */
export function handleFastifyReply(res: FastifyReply, response: OAuthResponse | ResponseInterface): FastifyReply {
  return send(res, toWire(response));
}

/** The same as {@link handleFastifyReply}, named like the other adapters. */
export const handleFastifyResponse = handleFastifyReply;

/** Send what a caught error must look like (see `handleExpressError`). */
export function handleFastifyError(e: unknown, res: FastifyReply): FastifyReply {
  return send(res, errorToWire(e));
}

export function responseFromFastify(res: FastifyReply): OAuthResponse {
  return new OAuthResponse({ headers: res.getHeaders() as Record<string, unknown> });
}

function send(reply: FastifyReply, wire: WireResponse): FastifyReply {
  reply.code(wire.status);
  reply.headers(wire.headers);
  return wire.body === '' ? reply.send() : reply.send(wire.body);
}
