import { OAuthError } from './errors.js';
import type { OAuthRequest } from './http.js';

/** Parameters of a form body: a null-prototype map of single string values. */
export type FormParams = Readonly<Record<string, string | undefined>>;

/** Default cap on form bodies at token, revocation and introspection (bytes). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Parse an `application/x-www-form-urlencoded` body per RFC 6749 §3.2 / App. B.
 * A parameter sent twice → `invalid_request` (RFC 6749 §3.1); an empty value counts as absent;
 * keys are plain strings in a null-prototype object, so `__proto__` or `constructor` are harmless.
 * `multi` names parameters that may repeat (e.g. `resource`); their values are joined with a space
 * only when the caller asks for them through {@link parseFormMulti}.
 */
export function parseForm(req: OAuthRequest, maxBytes = DEFAULT_MAX_BODY_BYTES): FormParams {
  return parseFormMulti(req, maxBytes).single;
}

export interface ParsedForm {
  single: FormParams;
  /** Every (non-empty) value of each parameter named in `multi`; no other parameter is here. */
  all: Readonly<Record<string, readonly string[] | undefined>>;
}

export function parseFormMulti(req: OAuthRequest, maxBytes = DEFAULT_MAX_BODY_BYTES, multi: readonly string[] = []): ParsedForm {
  if (req.method !== 'POST') {
    throw new OAuthError('invalid_request', 'The request must use POST', { status: 405, headers: { allow: 'POST' } });
  }
  const body = req.body;
  if (body !== undefined && typeof body === 'object' && !(body instanceof Uint8Array)) {
    return fromParsedObject(body, multi);
  }
  const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (contentType !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded');
  }
  let text: string;
  if (body === undefined) {
    text = '';
  } else if (typeof body === 'string') {
    if (Buffer.byteLength(body) > maxBytes) throw tooLarge();
    text = body;
  } else {
    if (body.byteLength > maxBytes) throw tooLarge();
    try {
      text = decoder.decode(body);
    } catch {
      throw new OAuthError('invalid_request', 'The request body is not valid UTF-8');
    }
  }
  return parseUrlEncoded(text, multi);
}

function tooLarge(): OAuthError {
  return new OAuthError('invalid_request', 'The request body is too large', { status: 413 });
}

/**
 * Parse a urlencoded string (body or query) with the duplicate and empty-value rules. One pass
 * with `indexOf` (no intermediate arrays): this runs on every token request.
 */
export function parseUrlEncoded(text: string, multi: readonly string[] = []): ParsedForm {
  const single: Record<string, string> = Object.create(null);
  const all: Record<string, string[]> = Object.create(null);
  /** Single-valued parameters seen with an empty value (a later value is still a repetition). */
  let seenEmpty: Set<string> | undefined;
  const length = text.length;
  let start = 0;
  while (start < length) {
    let end = text.indexOf('&', start);
    if (end === -1) end = length;
    if (end > start) {
      const eq = text.indexOf('=', start);
      const hasValue = eq !== -1 && eq < end;
      const key = decodeComponent(text.slice(start, hasValue ? eq : end));
      const value = hasValue ? decodeComponent(text.slice(eq + 1, end)) : '';
      if (multi.length > 0 && multi.includes(key)) {
        if (value !== '') {
          (all[key] ??= []).push(value);
          single[key] ??= value;
        }
      } else {
        if (single[key] !== undefined || seenEmpty?.has(key) === true) {
          throw new OAuthError('invalid_request', `Parameter ${safeName(key)} was sent more than once`);
        }
        if (value !== '') single[key] = value;
        else (seenEmpty ??= new Set()).add(key);
      }
    }
    start = end + 1;
  }
  return { single, all };
}

function decodeComponent(raw: string): string {
  const plus = raw.includes('+') ? raw.replace(/\+/g, ' ') : raw;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    throw new OAuthError('invalid_request', 'The request body is not valid form encoding');
  }
}

function fromParsedObject(body: Readonly<Record<string, unknown>>, multi: readonly string[]): ParsedForm {
  const single: Record<string, string> = Object.create(null);
  const all: Record<string, string[]> = Object.create(null);
  for (const key of Object.keys(body)) {
    const value = body[key];
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v !== 'string')) {
      throw new OAuthError('invalid_request', `Parameter ${safeName(key)} must be a string`);
    }
    const strings = (values as string[]).filter((v) => v !== '');
    if (strings.length > 1 && !multi.includes(key)) {
      throw new OAuthError('invalid_request', `Parameter ${safeName(key)} was sent more than once`);
    }
    if (strings.length > 0) {
      single[key] = strings[0]!;
      if (multi.includes(key)) all[key] = strings;
    }
  }
  return { single, all };
}

/** A parameter name safe to echo in an error_description. */
export function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '');
  return cleaned.length > 0 && cleaned.length <= 64 ? cleaned : '(unnamed)';
}

/** The request body as text (pre-parsed framework bodies are re-encoded), for endpoints that read forms themselves. */
export function bodyText(req: OAuthRequest): string {
  const body = req.body;
  if (body === undefined) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(body)) {
    for (const v of Array.isArray(value) ? value : [value]) if (typeof v === 'string') params.append(key, v);
  }
  return params.toString();
}
