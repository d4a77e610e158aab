/**
 * @jmondi/oauth2-server 4 behind Express 5, as its documentation sets it up: the express adapter
 * (requestFromExpress / handleExpressResponse / handleExpressError), express.urlencoded for the
 * form, in-memory repositories, client_credentials only.
 *
 *   BENCH_ALG=ES256  a JwtService over an ES256 private key object (jsonwebtoken, algorithm ES256)
 *   BENCH_ALG=HS256  the library's default: a string secret (HS256)
 *
 * The token repository keeps issued tokens in a Map bounded to the 10,000 newest (like
 * oidc-provider's in-memory LRU), so memory stays flat over a long run.
 *
 * Environment: PORT, HOST (default 127.0.0.1), BENCH_CLIENTS (JSON, see bench/lib/clients.mjs), BENCH_ALG.
 */
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthorizationServer, DateInterval, JwtService } from '@jmondi/oauth2-server';
import { handleExpressError, handleExpressResponse, requestFromExpress } from '@jmondi/oauth2-server/express';
import express from 'express';
import jwt from 'jsonwebtoken';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 0);
const alg = (process.env.BENCH_ALG || 'ES256').toUpperCase();
const setup = JSON.parse(process.env.BENCH_CLIENTS || '{}');
const issuer = `http://${host}:${port}`;

const scopes = new Map((setup.scope ?? 'api:read').split(' ').map((name) => [name, { name }]));
const clients = new Map();
for (const c of [setup.jwt, setup.opaque]) {
  if (!c?.id) continue;
  clients.set(c.id, {
    id: c.id,
    name: c.id,
    secret: c.secret,
    secretDigest: createHash('sha256').update(c.secret).digest(),
    redirectUris: [],
    allowedGrants: ['client_credentials'],
    scopes: [...scopes.values()],
  });
}

const clientRepository = {
  async getByIdentifier(clientId) {
    const client = clients.get(clientId);
    if (client === undefined) throw new Error('unknown client');
    return client;
  },
  async isClientValid(grantType, client, clientSecret) {
    if (!client.allowedGrants.includes(grantType)) return false;
    if (typeof clientSecret !== 'string') return false;
    return timingSafeEqual(createHash('sha256').update(clientSecret).digest(), client.secretDigest);
  },
};

const scopeRepository = {
  async getAllByIdentifiers(names) {
    return names.map((name) => scopes.get(name)).filter((s) => s !== undefined);
  },
  async finalize(requested) {
    return requested;
  },
};

const TOKENS_KEPT = 10_000;
const tokens = new Map();
const tokenRepository = {
  async issueToken(client, tokenScopes, user) {
    return {
      accessToken: randomBytes(16).toString('hex'),
      accessTokenExpiresAt: new DateInterval('1h').getEndDate(),
      refreshToken: null,
      refreshTokenExpiresAt: null,
      client,
      user,
      scopes: tokenScopes,
    };
  },
  async issueRefreshToken(accessToken) {
    return accessToken;
  },
  async persist(token) {
    tokens.set(token.accessToken, token);
    if (tokens.size > TOKENS_KEPT) tokens.delete(tokens.keys().next().value);
  },
  async revoke(token) {
    tokens.delete(token.accessToken);
  },
  async isRefreshTokenRevoked() {
    return true;
  },
  async getByRefreshToken() {
    throw new Error('no refresh tokens');
  },
  async getByAccessToken(id) {
    const token = tokens.get(id);
    if (token === undefined) throw new Error('unknown token');
    return token;
  },
};

/** ES256 over an imported key object: the library's JwtService with the algorithm named. */
class Es256JwtService extends JwtService {
  #privateKey;
  #publicKey;
  #kid;
  constructor(privateKey, publicKey, kid) {
    super(privateKey);
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#kid = kid;
  }
  sign(payload) {
    return new Promise((resolve, reject) => {
      jwt.sign(payload, this.#privateKey, { algorithm: 'ES256', keyid: this.#kid }, (err, encoded) => (encoded ? resolve(encoded) : reject(err)));
    });
  }
  verify(token, options = {}) {
    return new Promise((resolve, reject) => {
      jwt.verify(token, this.#publicKey, { ...options, algorithms: ['ES256'] }, (err, decoded) => (decoded ? resolve(decoded) : reject(err)));
    });
  }
}

let jwtService;
let publicJwk;
if (alg === 'ES256') {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  publicJwk = { ...publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'jmondi-es256' };
  jwtService = new Es256JwtService(privateKey, publicKey, publicJwk.kid);
} else if (alg === 'HS256') {
  jwtService = randomBytes(32).toString('base64url'); // the default: a string secret, HS256
} else {
  throw new Error(`BENCH_ALG must be ES256 or HS256, not ${alg}`);
}

const authorizationServer = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, jwtService, {
  issuer,
  requiresPKCE: true,
});
// The constructor enables client_credentials (and refresh_token) with a 1 h access-token TTL.

const app = express();
app.use(express.urlencoded({ extended: false }));
app.post('/token', async (req, res) => {
  try {
    const oauthResponse = await authorizationServer.respondToAccessTokenRequest(requestFromExpress(req));
    return handleExpressResponse(res, oauthResponse);
  } catch (e) {
    handleExpressError(e, res);
  }
});

const server = app.listen(port, host, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port, alg, publicJwk })}\n`);
});
server.keepAliveTimeout = 5000;
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
