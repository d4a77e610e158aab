/**
 * A custom grant: exchange a one-time "magic link" code that your own app created for tokens.
 * Run: node --import tsx examples/custom-grant.ts
 */
import { createPortcullis, issueTokens, OAuthError, type GrantHandler } from '../src/index.js';
import { createMemoryStorage } from '../src/storage/memory.js';

/** Magic-link codes your app handed out: code → username. A real app keeps these in its own store. */
export const magicCodes = new Map<string, string>();

export const magicLinkGrant: GrantHandler = {
  // Extension grants are absolute URIs (RFC 6749 §4.5).
  type: 'urn:example:params:oauth:grant-type:magic-link',
  // Public clients may use it: the code itself is the proof.
  allowPublicClients: true,
  async handle(ctx) {
    // The token endpoint has already parsed the body, authenticated the client and checked that
    // the client lists this grant type in its grant_types.
    const code = ctx.params.code;
    if (code === undefined) throw new OAuthError('invalid_request', 'Missing parameter: code');
    const username = magicCodes.get(code);
    magicCodes.delete(code); // single use
    const user = username === undefined ? undefined : await ctx.server.storage.getUserByUsername(username);
    if (user === undefined) throw new OAuthError('invalid_grant', 'The code is invalid or used');
    const scope = ctx.server.scopes.resolve(ctx.params.scope, ctx.client);
    const grant = await ctx.server.tokens.createGrant({ client: ctx.client, grantType: this.type, scope, userId: user.id });
    return issueTokens(ctx, { grantType: this.type, scope, userId: user.id, grant, refreshToken: ctx.client.grant_types.includes('refresh_token') });
  },
};

export async function main(): Promise<void> {
  const server = await createPortcullis({
    issuer: 'http://127.0.0.1:3000',
    storage: createMemoryStorage(),
    customGrants: [magicLinkGrant],
  });
  await server.clients.upsert({ client_id: 'app', token_endpoint_auth_method: 'none', grant_types: [magicLinkGrant.type, 'refresh_token'], scope: 'api:read' });
  await server.users.upsert({ username: 'alice', password: 'alice-password' });
  magicCodes.set('abc123', 'alice');
  const res = await server.handle({
    method: 'POST',
    path: '/token',
    query: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: magicLinkGrant.type, code: 'abc123', client_id: 'app' }).toString(),
  });
  console.log(res.status, JSON.parse(res.body));
  await server.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
