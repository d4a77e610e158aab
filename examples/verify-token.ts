/**
 * Verify an access token against the issuer's published JWKS, as a resource server would.
 * Usage: node --import tsx examples/verify-token.ts <issuer> <access_token>
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, token] = process.argv.slice(2);
if (issuer === undefined || token === undefined) {
  console.error('usage: node --import tsx examples/verify-token.ts <issuer> <access_token>');
  process.exit(2);
}
const metadata = (await (await fetch(new URL('.well-known/openid-configuration', issuer.endsWith('/') ? issuer : issuer + '/'))).json()) as { jwks_uri: string; issuer: string };
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: metadata.issuer, typ: 'at+jwt' });
  console.log(JSON.stringify({ valid: true, header: protectedHeader, claims: payload }, null, 2));
} catch (err) {
  console.log(JSON.stringify({ valid: false, reason: (err as Error).message }));
  process.exit(1);
}
