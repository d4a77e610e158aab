/**
 * The bare limit: a node:http server doing the least a correct client_credentials token endpoint
 * must do, so the others can be compared with it. Per request it reads and parses the form body
 * (URLSearchParams), checks HTTP Basic client authentication in constant time (SHA-256 of the
 * presented secret against the stored digest, timingSafeEqual), and signs the same RFC 9068
 * `at+jwt` ES256 payload as Portcullis (iss, sub, aud, exp, iat, jti, client_id, scope) with
 * node:crypto and a key object imported once. No storage, no framework.
 *
 *   POST /token   client_credentials only
 *   GET  /jwks    the public key (a constant body)
 *
 * Environment: PORT, HOST (default 127.0.0.1), BENCH_CLIENTS (JSON, see bench/lib/clients.mjs),
 * BENCH_COALESCE_WRITES=1: hold each response until the end of the event loop's poll phase and write
 * the turn's responses together (what Portcullis's ready-to-run server does, see
 * src/adapters/node-http.ts `coalesceWrites`), so the bench can show the limit with and without it.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 0);
const setup = JSON.parse(process.env.BENCH_CLIENTS || '{}');
const issuer = `http://${host}:${port}`;
const TTL = 3600;
const MAX_BODY = 65536;

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = publicKey.export({ format: 'jwk' });
const kid = createHash('sha256')
  .update(JSON.stringify({ crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y }))
  .digest('base64url');
const jwksBody = JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] });
const headerB64 = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid })).toString('base64url');

/** client_id → SHA-256 of the secret (only client_credentials clients). */
const clients = new Map();
for (const c of [setup.jwt, setup.opaque]) {
  if (c?.id && c.secret) clients.set(c.id, { digest: createHash('sha256').update(c.secret).digest(), scope: setup.scope ?? 'api:read' });
}
const dummyDigest = createHash('sha256').update('no such client').digest();

const JSON_HEADERS = { 'content-type': 'application/json;charset=UTF-8', 'cache-control': 'no-store', pragma: 'no-cache' };

const COALESCE = process.env.BENCH_COALESCE_WRITES === '1';
let queue = [];
function flush() {
  const batch = queue;
  queue = [];
  for (const [res, status, headers, body] of batch) {
    res.writeHead(status, headers);
    res.end(body);
  }
}

function write(res, status, headers, body) {
  if (!COALESCE) {
    res.writeHead(status, headers);
    res.end(body);
    return;
  }
  if (queue.length === 0) setImmediate(flush);
  queue.push([res, status, headers, body]);
}

function send(res, status, body, extra) {
  write(res, status, extra === undefined ? { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) } : { ...JSON_HEADERS, ...extra, 'content-length': Buffer.byteLength(body) }, body);
}

function error(res, status, code, description, extra) {
  send(res, status, JSON.stringify({ error: code, error_description: description }), extra);
}

/** `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1) → the client, or undefined. */
function authenticate(header) {
  if (typeof header !== 'string' || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  let id;
  let secret;
  try {
    id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
  const client = clients.get(id);
  const presented = createHash('sha256').update(secret).digest();
  // Compare even for an unknown client, so the time does not tell which ids exist.
  const ok = timingSafeEqual(presented, client?.digest ?? dummyDigest);
  return ok && client !== undefined ? { id, ...client } : undefined;
}

function token(res, body, authorization) {
  const client = authenticate(authorization);
  if (client === undefined) {
    return error(res, 401, 'invalid_client', 'Client authentication failed', { 'www-authenticate': 'Basic realm="token"' });
  }
  const params = new URLSearchParams(body);
  if (params.get('grant_type') !== 'client_credentials') return error(res, 400, 'unsupported_grant_type', 'Only client_credentials');
  const requested = params.get('scope');
  const scope = requested === null ? client.scope : requested;
  if (!scope.split(' ').every((s) => client.scope.split(' ').includes(s))) return error(res, 400, 'invalid_scope', 'Scope not allowed');
  const resource = params.get('resource');
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer,
    sub: client.id,
    aud: resource ?? issuer,
    exp: now + TTL,
    iat: now,
    jti: randomBytes(16).toString('base64url'),
    client_id: client.id,
    scope,
  };
  const input = `${headerB64}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  send(res, 200, JSON.stringify({ access_token: `${input}.${signature}`, token_type: 'Bearer', expires_in: TTL, scope }));
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/jwks') {
    write(res, 200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=300', 'content-length': Buffer.byteLength(jwksBody) }, jwksBody);
    return;
  }
  if (req.method !== 'POST' || req.url !== '/token') return error(res, 404, 'not_found', 'Not found');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return error(res, 413, 'invalid_request', 'Body too large');
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/x-www-form-urlencoded')) return error(res, 400, 'invalid_request', 'Form body expected');
    token(res, Buffer.concat(chunks).toString('utf8'), req.headers.authorization);
  });
});
server.keepAliveTimeout = 5000;
server.listen(port, host, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
