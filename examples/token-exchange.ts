/**
 * Token exchange (RFC 8693), delegation: an API gateway receives alice's access token and exchanges
 * it for a token to call the orders API on her behalf. The new token says who acts (`act`).
 * Run: node --import tsx examples/token-exchange.ts
 */
import { createPortcullis, type Portcullis } from '../src/index.js';
import { createMemoryStorage } from '../src/storage/memory.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const ORDERS_API = 'https://orders.example.com';

const WEB = { id: 'web', secret: 'web-secret-change-me-0123456789' };
const GATEWAY = { id: 'gateway', secret: 'gateway-secret-change-me-0123456789' };

/** POST a form to the token endpoint with HTTP Basic client credentials. */
async function token(server: Portcullis, client: { id: string; secret: string }, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await server.handle({
    method: 'POST',
    path: '/token',
    query: '',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client.id}:${client.secret}`).toString('base64'),
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
}

/** The claims of a JWT (decoded only: a resource server would verify it with the JWKS). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export async function main(): Promise<{ status: number; body: Record<string, unknown> }> {
  const server = await createPortcullis({
    issuer: 'http://127.0.0.1:3000',
    storage: createMemoryStorage(),
    // Token exchange is off by default: switch it on explicitly. (The password grant only stands in
    // for "alice signed in to the web app"; a real app uses the authorization code flow.)
    grants: { token_exchange: true, password: true },
  });
  try {
    await server.clients.upsert({ client_id: WEB.id, client_secret: WEB.secret, grant_types: ['password'], scope: 'orders:read orders:write' });
    // The gateway may exchange tokens, and only for the orders API.
    await server.clients.upsert({
      client_id: GATEWAY.id,
      client_secret: GATEWAY.secret,
      grant_types: ['client_credentials', TOKEN_EXCHANGE],
      scope: 'orders:read',
      allowed_audiences: [ORDERS_API],
    });
    await server.users.upsert({ username: 'alice', password: 'alice-password' });

    // 1. alice's token, issued to the web app, which sends it to the gateway.
    const alice = await token(server, WEB, { grant_type: 'password', username: 'alice', password: 'alice-password' });
    // 2. The gateway proves who it is with its own token (the actor)...
    const gateway = await token(server, GATEWAY, { grant_type: 'client_credentials' });
    // 3. ...and exchanges alice's token for one meant for the orders API.
    const exchanged = await token(server, GATEWAY, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: alice.body.access_token as string,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: gateway.body.access_token as string,
      actor_token_type: ACCESS_TOKEN_TYPE,
      audience: ORDERS_API,
    });
    return exchanged;
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { status, body } = await main();
  console.log(status, body);
  if (typeof body.access_token === 'string') {
    const { sub, aud, client_id, scope, act } = claimsOf(body.access_token);
    console.log('claims:', { sub, aud, client_id, scope, act });
  }
}
