import { verifyClientSecret } from '../clients/secrets.js';
import { OAuthError } from '../core/errors.js';
import type { ClientRecord } from '../storage/contract.js';

/** Client id and secret carried by an `Authorization: Basic …` header, already form-decoded. */
export interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

/** Standard base64 alphabet (RFC 4648 §4), optional padding; no whitespace, no base64url. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** `auth-scheme [ 1*SP token68 ]` (RFC 9110 §11.4); the scheme is a `token`. */
const CREDENTIALS = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ \t]+(.*))?$/s;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parse the `Authorization` header of a token, revocation or introspection request.
 *
 * - No header → `undefined` (the request does not use HTTP Basic).
 * - The scheme is matched case-insensitively (RFC 9110 §11.1); any scheme other than `Basic`
 *   (e.g. `Bearer`, `DPoP`) is refused with 400 `invalid_request` ("unsupported authorization
 *   scheme") rather than ignored: a client that sends credentials we do not read must learn so,
 *   instead of being silently treated as a public client.
 * - The credentials are base64 of `client_id:client_secret`, split at the FIRST colon (a secret may
 *   contain colons), each part form-url-decoded per RFC 6749 §2.3.1 / App. B (`+` → space, `%XX`).
 * - Malformed credentials (missing or empty, not base64, no colon, not UTF-8, an undecodable
 *   `%` sequence, an empty client id) → 400 `invalid_request`. Never a 500.
 *
 * An empty secret (`client_id:`) is well-formed: it simply fails authentication (401 invalid_client).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @see https://www.rfc-editor.org/rfc/rfc7617#section-2
 */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined) return undefined;
  let token: string;
  if (header.startsWith('Basic ')) {
    // The usual spelling: what the general syntax below would give, without the regex.
    token = header.slice(6).trim();
  } else {
    const match = CREDENTIALS.exec(header.trim());
    if (match === null) throw malformed('The Authorization header is malformed');
    if (match[1]!.toLowerCase() !== 'basic') {
      throw malformed('Unsupported authorization scheme: use HTTP Basic or credentials in the request body');
    }
    token = (match[2] ?? '').trim();
  }
  if (token === '' || !BASE64.test(token) || token.length % 4 === 1 || (token.includes('=') && token.length % 4 !== 0)) {
    throw malformed('The Basic credentials are not valid base64');
  }
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    throw malformed('The Basic credentials are not valid UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon === -1) throw malformed('The Basic credentials must be client_id:client_secret');
  const clientId = formDecode(decoded.slice(0, colon));
  const clientSecret = formDecode(decoded.slice(colon + 1));
  if (clientId === '') throw malformed('The Basic credentials have an empty client_id');
  return { clientId, clientSecret };
}

/**
 * Check a secret presented with HTTP Basic. `client` is the registered client when it is known AND
 * registered for `client_secret_basic` (the caller passes `undefined` otherwise), so the same
 * constant-time hash comparison runs in every case. Returns a failure detail for logs, or
 * `undefined` when the secret is right.
 */
export function verifyClientSecretBasic(client: ClientRecord | undefined, secret: string): string | undefined {
  return checkClientSecret(client, secret);
}

/** Constant-time secret check shared by the two shared-secret methods (see client-secret-post.ts). */
export function checkClientSecret(client: ClientRecord | undefined, secret: string): string | undefined {
  const ok = verifyClientSecret(secret, client?.client_secret_hash);
  if (client === undefined) return 'client unknown or not registered for this method';
  if (client.client_secret_hash === undefined) return 'client has no secret';
  return ok ? undefined : 'wrong client secret';
}

/** RFC 6749 App. B decoding: `+` is a space, then percent-decoding (UTF-8). */
function formDecode(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  const plus = raw.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    throw malformed('The Basic credentials are not valid form encoding (RFC 6749 Appendix B)');
  }
}

function malformed(description: string): OAuthError {
  return new OAuthError('invalid_request', description);
}
