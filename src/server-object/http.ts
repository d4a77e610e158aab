/**
 * The server object's request and response objects, shaped like the seed package's
 * (`{ headers, query, body }` in, `{ status, headers, body }` out), and their conversion to and from
 * the core's plain {@link CoreRequest} / {@link CoreResponse}.
 *
 * A request reaches the core with its raw query string and raw body when the adapter had them
 * (nothing is re-encoded), else re-encoded from the parsed objects.
 */
import type { IncomingMessage } from 'node:http';
import { toOAuthError } from '../core/errors.js';
import type { OAuthRequest as CoreRequest, OAuthResponse as CoreResponse } from '../core/http.js';
import { errorResponse } from '../endpoints/respond.js';
import { fetchToOAuthRequest } from '../adapters/fetch.js';
import { nodeToOAuthRequest } from '../adapters/node-http.js';
import { isOAuthError, OAuthException, responseOfException, type ErrorType } from './errors.js';

/** Default cap on bodies read from a stream by the server object (bytes). */
export const MAX_BODY_BYTES = 64 * 1024;

const CORE = Symbol('portcullis.server-object.core-request');

/** What the core needs beyond `{ headers, query, body }`, kept by the adapters. */
export interface CoreParts {
  method?: string;
  /** Raw query string (no `?`). */
  query?: string;
  /** Raw body bytes or text, or the framework's parsed form object. */
  body?: CoreRequest['body'];
  ip?: string;
  /** The node request whose body no parser read yet: read (capped) when the request is used. */
  node?: IncomingMessage;
}

export interface RequestOptions {
  headers?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The seed's request interface: parsed headers, query and body. */
export interface RequestInterface {
  headers: { [key: string]: unknown };
  query: { [key: string]: unknown };
  body: { [key: string]: unknown };
}

/**
 * An OAuth request as the seed package builds it. `requestFrom<Framework>(…)` returns one; you can
 * also build one by hand: `new OAuthRequest({ body: { grant_type: 'client_credentials' }, headers })`.
 */
export class OAuthRequest implements RequestInterface {
  headers: Record<string, unknown>;
  query: Record<string, unknown>;
  body: Record<string, unknown>;
  /** @internal raw parts for the core; not enumerable, not serialised. */
  declare readonly [CORE]?: CoreParts;

  constructor(options: RequestOptions = {}) {
    this.headers = lowerCaseKeys(options.headers ?? {});
    this.query = { ...options.query };
    this.body = { ...options.body };
  }

  set(field: string, value: unknown): void {
    this.headers[field.toLowerCase()] = value;
  }

  /** @internal attach the raw parts an adapter read. */
  static withCore(request: OAuthRequest, parts: CoreParts): OAuthRequest {
    if (parts.node === undefined) delete parts.node;
    Object.defineProperty(request, CORE, { value: parts, enumerable: false });
    return request;
  }
}

export interface ResponseOptions {
  status?: number;
  headers?: Record<string, unknown>;
  body?: Record<string, unknown> | string;
  [key: string]: unknown;
}

/** The seed's response interface. */
export interface ResponseInterface {
  status: number;
  headers: { [key: string]: unknown };
  body: Record<string, unknown> | string;
  get(field: string): unknown;
  set(field: string, value: string): void;
  redirect(location: string): void;
}

/**
 * A response of the server object: `status`, lower-case `headers`, and `body` — the parsed JSON
 * object for JSON responses (`oauthResponse.body.access_token`), the text for pages, `{}` when empty.
 * The adapters write it back byte for byte as the core produced it.
 */
export class OAuthResponse implements ResponseInterface {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown> | string;

  constructor(options: ResponseOptions = {}) {
    this.status = options.status ?? 200;
    this.headers = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) if (v !== undefined && v !== null) this.headers[k.toLowerCase()] = String(v);
    this.body = options.body ?? {};
  }

  get(field: string): string | undefined {
    return this.headers[field.toLowerCase()];
  }

  set(field: string, value: string): void {
    this.headers[field.toLowerCase()] = value;
  }

  redirect(location: string): void {
    this.set('location', location);
    this.status = 302;
  }
}

/** The seed-shaped response of a core response. */
export function fromCoreResponse(res: CoreResponse): OAuthResponse {
  const type = (res.headers['content-type'] ?? '').toLowerCase();
  let body: Record<string, unknown> | string = res.body;
  if (res.body === '') body = {};
  else if (type.startsWith('application/json') || type.includes('+json')) {
    try {
      const parsed: unknown = JSON.parse(res.body);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      // keep the text
    }
  }
  return new OAuthResponse({ status: res.status, headers: res.headers, body });
}

/** What an adapter writes: status, headers, body text. */
export interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The bytes to send for a response: an object body is JSON (a core JSON body round-trips to the same
 * text), a string body is sent as is; an empty object on a redirect or a body-less status is no body.
 */
export function toWire(response: ResponseInterface | OAuthResponse): WireResponse {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(response.headers ?? {})) if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
  const status = typeof response.status === 'number' ? response.status : 200;
  const raw = response.body;
  let body: string;
  if (typeof raw === 'string') body = raw;
  else if (raw === undefined || raw === null || (Object.keys(raw).length === 0 && (headers['content-type'] === undefined || (status >= 300 && status < 400)))) body = '';
  else {
    body = JSON.stringify(raw);
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  return { status, headers, body };
}

/**
 * What to send for anything a route handler caught: the response an {@link OAuthException} of the
 * server object carries; an RFC 6749 §5.2 body for other OAuth errors (app code, the core's
 * OAuthError); a bare 500 `server_error` for anything else — its text is never sent.
 */
export function errorToWire(e: unknown): WireResponse {
  if (isOAuthError(e)) return e.response !== undefined ? toWire(e.response) : responseOfException(e);
  // Core errors pass; anything else becomes a bare server_error (503 for an unreachable store).
  return errorResponse(toOAuthError(e));
}

/** The exception thrown for an error response of the core (status ≥ 400, or a redirect carrying `error`). */
export function exceptionFromResponse(res: CoreResponse, known?: { code?: string; description?: string }): OAuthException {
  const response = fromCoreResponse(res);
  let code = known?.code;
  let description = known?.description;
  if (typeof response.body === 'object') {
    if (typeof response.body.error === 'string') code ??= response.body.error;
    if (typeof response.body.error_description === 'string') description ??= response.body.error_description;
  }
  const location = res.headers.location;
  if (location !== undefined && URL.canParse(location)) {
    const params = new URL(location).searchParams;
    code ??= params.get('error') ?? undefined;
    description ??= params.get('error_description') ?? undefined;
  }
  const type = (code ?? 'server_error') as ErrorType;
  return new OAuthException(description ?? type, type, description, undefined, res.status, response);
}

// ---------------------------------------------------------------------------------------------
// Anything request-shaped → the core's request.

/** Where the request is going in the core: default method and path. */
export interface CoreTarget {
  path: string;
  method: 'GET' | 'POST';
  maxBodyBytes: number;
}

/**
 * Convert what a route handler passes (`requestFrom<Framework>(req)`, a raw Express / node:http /
 * Fastify request, a fetch `Request`, or any `{ headers, query, body }`) into the core's shape.
 */
export async function toCoreRequest(input: unknown, target: CoreTarget): Promise<CoreRequest> {
  if (input === null || typeof input !== 'object') {
    throw new TypeError('The server object needs a request: pass requestFrom<Framework>(req), the framework request, or { headers, query, body }');
  }
  if (typeof Request !== 'undefined' && input instanceof Request) {
    const req = await fetchToOAuthRequest(input, { maxBodyBytes: target.maxBodyBytes });
    return { ...req, path: target.path };
  }
  const parts = (input as { [CORE]?: CoreParts })[CORE];
  const obj = input as Record<string, unknown>;
  // Fastify: the node request is `raw`, the parsed body and query are on the Fastify request.
  const raw = isNodeRequest(obj.raw) ? obj.raw : undefined;
  const node = isNodeRequest(input) ? (input as IncomingMessage & Record<string, unknown>) : raw;
  const headers = headerRecord(obj.headers ?? node?.headers);
  const method = (parts?.method ?? (typeof obj.method === 'string' ? obj.method : node?.method) ?? target.method).toUpperCase();

  let query: string;
  if (parts?.query !== undefined) query = parts.query;
  else if (node !== undefined) query = rawQueryOf(typeof obj.originalUrl === 'string' ? obj.originalUrl : (node.url ?? ''));
  else query = encodeParams(obj.query);

  const req: CoreRequest = { method, path: target.path, query, headers };
  const ip = parts?.ip ?? (typeof obj.ip === 'string' ? obj.ip : node?.socket?.remoteAddress);
  if (ip !== undefined) req.ip = ip;
  if (method === 'GET' || method === 'HEAD') return req;

  if (parts !== undefined) {
    if (parts.body !== undefined) req.body = parts.body;
    else if (parts.node !== undefined && !isConsumed(parts.node)) {
      const read = await nodeToOAuthRequest(parts.node, { maxBodyBytes: target.maxBodyBytes, trustProxy: false });
      if (read.body !== undefined) req.body = read.body;
    }
    return req;
  }
  const body = obj.body;
  if (typeof body === 'string' || body instanceof Uint8Array) req.body = body;
  else if (body !== null && typeof body === 'object' && (Object.keys(body).length > 0 || node === undefined || isConsumed(node))) req.body = body as Record<string, unknown>;
  else if (node !== undefined && !isConsumed(node)) {
    // No body parser ran: read the stream (capped), as the core's node adapter does.
    const read = await nodeToOAuthRequest(node, { maxBodyBytes: target.maxBodyBytes, trustProxy: false });
    if (read.body !== undefined) req.body = read.body;
  }
  return req;
}

export function isNodeRequest(value: unknown): value is IncomingMessage {
  return typeof value === 'object' && value !== null && typeof (value as IncomingMessage).on === 'function' && typeof (value as IncomingMessage).headers === 'object' && 'socket' in value;
}

/** Whether a body parser (or anyone) already read the request's body. */
export function isConsumed(req: IncomingMessage): boolean {
  // `complete` only says the parser has the whole body, not that anyone read it: not a sign here.
  return req.readableEnded || (req as { _body?: boolean })._body === true;
}

function headerRecord(value: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = Object.create(null);
  if (value === null || typeof value !== 'object') return out;
  const entries: [string, unknown][] = value instanceof Headers ? [...value.entries()] : Object.entries(value);
  for (const [k, v] of entries) {
    if (v === undefined || v === null) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.map(String).join(', ') : String(v);
  }
  return out;
}

export function rawQueryOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

function encodeParams(value: unknown): string {
  if (value === null || typeof value !== 'object') return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(value)) {
    for (const item of Array.isArray(v) ? v : [v]) if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') params.append(k, String(item));
  }
  return params.toString();
}

function lowerCaseKeys(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.toLowerCase()] = v;
  return out;
}
