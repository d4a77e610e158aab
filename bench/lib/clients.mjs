/**
 * The identities every target is given (env BENCH_CLIENTS, JSON): fresh random secrets per run,
 * all of them 43 characters (256 bits), so no target takes a shortcut for short secrets.
 */
import { createHash, randomBytes } from 'node:crypto';

export const RESOURCE = 'https://api.example.com';
export const SCOPE = 'api:read';
/** Never contacted: the bench reads codes from the Location header. */
export const REDIRECT_URI = 'https://client.example/cb';

export function createIdentities() {
  const secret = () => randomBytes(32).toString('base64url');
  const verifier = randomBytes(32).toString('base64url');
  return {
    resource: RESOURCE,
    scope: SCOPE,
    /** client_credentials, JWT (ES256) access tokens. */
    jwt: { id: 'bench-jwt', secret: secret() },
    /** client_credentials, opaque access tokens. */
    opaque: { id: 'bench-opaque', secret: secret() },
    /** authorization_code + refresh_token, first party (no consent page). */
    web: { id: 'bench-web', secret: secret(), redirectUri: REDIRECT_URI },
    user: { username: 'bench', password: secret() },
    /** PORTCULLIS_KEY_SECRET: signing keys encrypted at rest, as in production. */
    keySecret: secret(),
    pkce: { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') },
  };
}

export function basic(client, secret = client.secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}
