/**
 * The JWT bearer grant (RFC 7523 §2.1): a batch job holds a JWT signed by the corporate identity
 * provider that says "this is alice", and trades it for an access token for alice.
 * Run: node --import tsx examples/jwt-bearer.ts
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createPortcullis } from '../src/index.js';
import { createMemoryStorage } from '../src/storage/memory.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const CORPORATE_IDP = 'https://idp.corp.example';

export async function main(): Promise<{ status: number; body: Record<string, unknown> }> {
  // The identity provider's key pair. Portcullis only ever sees the public half (its JWKS).
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const idpJwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'corp-2025', alg: 'ES256', use: 'sig' }] };

  const server = await createPortcullis({
    issuer: 'http://127.0.0.1:3000',
    storage: createMemoryStorage(),
    grants: { jwt_bearer: true }, // off by default
    jwtBearer: {
      // Keys come only from here (or a jwksUri): never from the token itself.
      trustedIssuers: [{ issuer: CORPORATE_IDP, jwks: idpJwks, algorithms: ['ES256'] }],
      // Optional: map the assertion to one of your users (default: user id, then username = sub).
      mapSubject: async (claims) => (typeof claims.email === 'string' ? (await server.storage.getUserByUsername(claims.email.split('@')[0]!))?.id : undefined),
    },
  });
  try {
    await server.clients.upsert({ client_id: 'batch-job', client_secret: 'batch-job-secret-change-me-0123', grant_types: [JWT_BEARER], scope: 'reports:read' });
    await server.users.upsert({ username: 'alice', password: 'alice-password' });

    // What the identity provider hands the batch job: short-lived, single-use (jti), for our token endpoint.
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ email: 'alice@corp.example' })
      .setProtectedHeader({ alg: 'ES256', kid: 'corp-2025' })
      .setIssuer(CORPORATE_IDP)
      .setSubject('00u1a2b3c4')
      .setAudience(server.endpoints.token)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(privateKey);

    const res = await server.handle({
      method: 'POST',
      path: '/token',
      query: '',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from('batch-job:batch-job-secret-change-me-0123').toString('base64'),
      },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, scope: 'reports:read' }).toString(),
    });
    return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { status, body } = await main();
  console.log(status, body);
}
