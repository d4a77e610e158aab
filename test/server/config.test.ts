import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { DEFAULT_KEY_RELOAD_SECONDS, loadConfig, parseDatabaseUrl, parseRedisUrl } from '../../src/server/config.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A temp dir holding `portcullis.config.json` with `content` (JSON-encoded unless a string). */
function withConfig(content?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
  dirs.push(dir);
  if (content !== undefined) {
    writeFileSync(join(dir, 'portcullis.config.json'), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('config file', () => {
  test('a complete valid file is read and merged with the defaults', () => {
    const cwd = withConfig({
      issuer: 'https://auth.example.com',
      clients: [
        { client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials'], scope: 'api:read' },
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://app.example.com/cb'], grant_types: ['refresh_token'] },
      ],
      users: [{ username: 'alice', password: 'correct horse', claims: { email: 'alice@example.com' } }],
      scopes: { 'api:read': 'Read the API', 'api:write': 'Write the API' },
      ttl: { accessToken: 600, refreshToken: 86400, grant: 864000, authorizationCode: 30, idToken: 600, deviceCode: 300 },
      accessTokenFormat: 'opaque',
      grants: { password: true, client_credentials: true, refresh_token: true },
      routes: { token: '/oauth2/token', jwks: '/.well-known/jwks.json' },
      signingAlgorithm: 'EdDSA',
      keyEncryptionSecret: 'sixteen-chars-at-least',
      port: 8080,
      host: 'localhost',
    });
    const config = loadConfig({}, cwd);
    assert.equal(config.configFile, join(cwd, 'portcullis.config.json'));
    assert.equal(config.issuer, 'https://auth.example.com');
    assert.equal(config.issuerSource, 'config');
    assert.equal(config.port, 8080);
    assert.equal(config.host, 'localhost');
    assert.equal(config.clients.length, 2);
    assert.equal(config.clients[0]?.client_secret, 'a-long-client-secret');
    assert.deepEqual(config.users, [{ username: 'alice', password: 'correct horse', claims: { email: 'alice@example.com' } }]);
    assert.deepEqual(config.scopes, { 'api:read': 'Read the API', 'api:write': 'Write the API' });
    assert.equal(config.ttl?.accessToken, 600);
    assert.equal(config.accessTokenFormat, 'opaque');
    assert.deepEqual(config.grants, { password: true, client_credentials: true, refresh_token: true });
    assert.deepEqual(config.routes, { token: '/oauth2/token', jwks: '/.well-known/jwks.json' });
    assert.equal(config.signingAlgorithm, 'EdDSA');
    assert.equal(config.keyEncryptionSecret, 'sixteen-chars-at-least');
    assert.deepEqual(config.database, { kind: 'sqlite', filename: join(cwd, 'data', 'portcullis.db'), url: 'sqlite:./data/portcullis.db' });
    assert.equal(config.logLevel, 'info');
  });

  test('without a file every default applies', () => {
    const cwd = withConfig();
    const config = loadConfig({}, cwd);
    assert.equal(config.configFile, undefined);
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.issuer, 'http://127.0.0.1:3000');
    assert.equal(config.issuerSource, 'default');
    assert.deepEqual(config.clients, []);
    assert.deepEqual(config.users, []);
    assert.equal(config.keyEncryptionSecret, undefined);
    assert.equal(config.trustProxy, false);
    assert.equal(config.coalesceWrites, true);
  });

  test('an unknown top-level key is refused, by name', () => {
    const message = configError(() => loadConfig({}, withConfig({ issuer: 'https://a.example', isuer: 'typo' })));
    assert.equal(message, 'config: isuer: unknown field');
  });

  test('an unknown key inside ttl is refused with its path', () => {
    const message = configError(() => loadConfig({}, withConfig({ ttl: { accesToken: 60 } })));
    assert.equal(message, 'config: ttl.accesToken: unknown field');
  });

  test('a ttl that is not a positive integer names the field', () => {
    for (const bad of [0, -5, 1.5, '60']) {
      const message = configError(() => loadConfig({}, withConfig({ ttl: { accessToken: bad } })));
      assert.match(message, /^config: ttl\.accessToken: must be a positive integer \(seconds\)$/);
    }
  });

  test('several problems are all reported, one per line', () => {
    const message = configError(() => loadConfig({}, withConfig({ port: 70000, accessTokenFormat: 'paseto', routes: { token: 'token' } })));
    const lines = message.split('\n');
    assert.ok(lines.includes('config: port: must be an integer from 0 to 65535'), message);
    assert.ok(lines.includes('config: accessTokenFormat: must be "jwt" or "opaque"'), message);
    assert.ok(lines.some((l) => l.startsWith('config: routes.token: must start with "/"')), message);
  });

  test('a scope name outside the RFC 6749 grammar names its index', () => {
    const message = configError(() => loadConfig({}, withConfig({ scopes: ['ok', 'not ok'] })));
    assert.match(message, /^config: scopes\[1\]: must be a scope token/);
  });

  test('a user field error names the user index and field', () => {
    assert.equal(configError(() => loadConfig({}, withConfig({ users: [{ username: 'a', password: 'long-enough' }, { username: 'b', pasword: 'x' }] }))), 'config: users[1].pasword: unknown field');
    assert.match(configError(() => loadConfig({}, withConfig({ users: [{ username: 'a', password: 'short' }] }))), /^config: users\[0\]\.password: user "a": must be at least 8 characters$/);
    assert.match(configError(() => loadConfig({}, withConfig({ users: [{ username: 'a' }, { username: 'a' }] }))), /^config: users\[1\]\.username: "a" is already users\[0\]$/);
  });

  test('a client with a bad redirect URI is refused, naming the client and the field', () => {
    const cwd = withConfig({
      clients: [
        { client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials'] },
        { client_id: 'web', client_secret: 'another-long-secret', redirect_uris: ['http://app.example.com/cb'] },
      ],
    });
    const message = configError(() => loadConfig({}, cwd));
    assert.match(message, /^config: clients\[1\]: /);
    assert.match(message, /client "web"/);
    assert.match(message, /field "redirect_uris"/);
    assert.match(message, /http:\/\/app\.example\.com\/cb/);
  });

  test('client metadata errors from the registry rules name the client and field', () => {
    const noSecret = configError(() => loadConfig({}, withConfig({ clients: [{ client_id: 'svc', client_secret: 'short', grant_types: ['client_credentials'] }] })));
    assert.match(noSecret, /^config: clients\[0\]: client "svc": field "client_secret" must be at least 8 characters$/);
    const password = configError(() => loadConfig({}, withConfig({ clients: [{ client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['password'] }] })));
    assert.equal(password, 'config: clients[0]: client "svc": field "grant_types" lists "password", which is off unless grants.password is true');
    const refresh = configError(() => loadConfig({}, withConfig({ grants: { refresh_token: false }, clients: [{ client_id: 'svc', client_secret: 'a-long-client-secret', grant_types: ['client_credentials', 'refresh_token'] }] })));
    assert.equal(refresh, 'config: clients[0]: client "svc": field "grant_types" lists "refresh_token", which is off: grants.refresh_token is false');
    const noId = configError(() => loadConfig({}, withConfig({ clients: [{ client_secret: 'x' }] })));
    assert.match(noId, /^config: clients\[0\]\.client_id: /);
    const duplicate = configError(() =>
      loadConfig({}, withConfig({ clients: [{ client_id: 'a', client_secret: 'a-long-secret', grant_types: ['client_credentials'] }, { client_id: 'a', client_secret: 'a-long-secret', grant_types: ['client_credentials'] }] })),
    );
    assert.match(duplicate, /^config: clients\[1\]\.client_id: "a" is already clients\[0\]$/);
  });

  test('a confidential client may leave out its secret (one is generated at its first start); a public one may not have one', () => {
    const config = loadConfig({}, withConfig({ clients: [{ client_id: 'svc', grant_types: ['client_credentials'] }] }));
    assert.equal(config.clients[0]?.client_secret, undefined);
    const message = configError(() => loadConfig({}, withConfig({ clients: [{ client_id: 'spa', token_endpoint_auth_method: 'none', client_secret: 'a-long-client-secret', redirect_uris: ['https://a.example/cb'] }] })));
    assert.match(message, /^config: clients\[0\]: client "spa": field "client_secret" must not be set/);
  });

  test('a route that collides with another route or a health check is refused', () => {
    assert.match(configError(() => loadConfig({}, withConfig({ routes: { revoke: '/token' } }))), /^config: routes\.revoke: \/token is also the path of routes\.token$/);
    assert.match(configError(() => loadConfig({}, withConfig({ routes: { jwks: '/healthz' } }))), /^config: routes\.jwks: \/healthz is reserved/);
  });

  test('invalid JSON is reported with the file name', () => {
    const cwd = withConfig('{ "issuer": ');
    assert.match(configError(() => loadConfig({}, cwd)), /^config: .*portcullis\.config\.json is not valid JSON/);
  });

  test('a file that is not an object is refused', () => {
    assert.match(configError(() => loadConfig({}, withConfig('[]'))), /^config: \(root\): the config file must contain a JSON object$/);
  });

  test('PORTCULLIS_CONFIG names the file (relative to cwd); a missing one is an error', () => {
    const cwd = withConfig();
    mkdirSync(join(cwd, 'etc'));
    writeFileSync(join(cwd, 'etc', 'auth.json'), JSON.stringify({ issuer: 'https://auth.example.com' }));
    const config = loadConfig({ PORTCULLIS_CONFIG: 'etc/auth.json' }, cwd);
    assert.equal(config.configFile, join(cwd, 'etc', 'auth.json'));
    assert.equal(config.issuer, 'https://auth.example.com');
    assert.match(configError(() => loadConfig({ PORTCULLIS_CONFIG: 'nope.json' }, cwd)), /^PORTCULLIS_CONFIG: .*nope\.json does not exist$/);
  });
});

describe('environment overrides', () => {
  test('PORT, HOST, PORTCULLIS_ISSUER, PORTCULLIS_KEY_SECRET and LOG_LEVEL win over the file', () => {
    const cwd = withConfig({ issuer: 'https://file.example.com', port: 8080, host: '127.0.0.2', keyEncryptionSecret: 'from-the-file-1234' });
    const config = loadConfig(
      { PORT: '9090', HOST: 'localhost', PORTCULLIS_ISSUER: 'https://env.example.com', PORTCULLIS_KEY_SECRET: 'from-the-environment', LOG_LEVEL: 'warn' },
      cwd,
    );
    assert.equal(config.port, 9090);
    assert.equal(config.host, 'localhost');
    assert.equal(config.issuer, 'https://env.example.com');
    assert.equal(config.issuerSource, 'env');
    assert.equal(config.keyEncryptionSecret, 'from-the-environment');
    assert.equal(config.logLevel, 'warn');
  });

  test('the default issuer follows PORT and HOST', () => {
    const cwd = withConfig();
    assert.equal(loadConfig({ PORT: '4000' }, cwd).issuer, 'http://127.0.0.1:4000');
    assert.equal(loadConfig({ PORT: '4000', HOST: 'localhost' }, cwd).issuer, 'http://localhost:4000');
    assert.equal(loadConfig({ PORT: '4000', HOST: '::1' }, cwd).issuer, 'http://[::1]:4000');
    assert.equal(loadConfig({ PORT: '4000', HOST: '0.0.0.0' }, cwd).issuer, 'http://127.0.0.1:4000');
  });

  test('with PORT=0 and no issuer, the issuer is left for the server to compute from the real port', () => {
    const config = loadConfig({ PORT: '0' }, withConfig());
    assert.equal(config.port, 0);
    assert.equal(config.issuer, undefined);
    assert.equal(config.issuerSource, 'default');
  });

  test('a non-loopback HOST needs an explicit issuer', () => {
    const cwd = withConfig();
    assert.match(configError(() => loadConfig({ HOST: '192.0.2.10' }, cwd)), /^issuer: HOST 192\.0\.2\.10 is not a loopback address/);
    assert.equal(loadConfig({ HOST: '192.0.2.10', PORTCULLIS_ISSUER: 'https://auth.example.com' }, cwd).issuer, 'https://auth.example.com');
  });

  test('bad environment values name the variable', () => {
    const cwd = withConfig();
    assert.match(configError(() => loadConfig({ PORT: 'eighty' }, cwd)), /^PORT: must be an integer from 0 to 65535/);
    assert.match(configError(() => loadConfig({ PORT: '65536' }, cwd)), /^PORT: /);
    assert.match(configError(() => loadConfig({ PORTCULLIS_ISSUER: 'not a url' }, cwd)), /^PORTCULLIS_ISSUER: must be an absolute URL/);
    assert.match(configError(() => loadConfig({ PORTCULLIS_ISSUER: 'https://a.example/?x=1' }, cwd)), /^PORTCULLIS_ISSUER: must not have a query/);
    assert.match(configError(() => loadConfig({ PORTCULLIS_KEY_SECRET: 'short' }, cwd)), /^PORTCULLIS_KEY_SECRET: must be at least 16 characters$/);
    assert.match(configError(() => loadConfig({ LOG_LEVEL: 'loud' }, cwd)), /^LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent/);
    assert.match(configError(() => loadConfig({ PORTCULLIS_TRUST_PROXY: 'maybe' }, cwd)), /^PORTCULLIS_TRUST_PROXY: must be true or false/);
    assert.match(configError(() => loadConfig({ PORTCULLIS_COALESCE_WRITES: 'sometimes' }, cwd)), /^PORTCULLIS_COALESCE_WRITES: must be true or false/);
    for (const bad of ['0', '-8', '1.5', 'lots', '65537']) {
      assert.match(configError(() => loadConfig({ PORTCULLIS_SQLITE_CACHE_MIB: bad }, cwd)), /^PORTCULLIS_SQLITE_CACHE_MIB: must be a whole number of MiB from 1 to 65536/, bad);
    }
    assert.match(configError(() => loadConfig({ PORTCULLIS_SQLITE_CACHE_MIB: '64', DATABASE_URL: 'memory:' }, cwd)), /^PORTCULLIS_SQLITE_CACHE_MIB: only for a sqlite: DATABASE_URL/);
  });

  test('PORTCULLIS_SQLITE_CACHE_MIB sizes the SQLite page cache; unset, the storage default applies', () => {
    const set = loadConfig({ PORTCULLIS_SQLITE_CACHE_MIB: '64' }, withConfig()).database;
    assert.ok(set.kind === 'sqlite' && set.cacheSizeMiB === 64);
    const unset = loadConfig({}, withConfig()).database;
    assert.ok(unset.kind === 'sqlite' && unset.cacheSizeMiB === undefined);
  });

  test('PORTCULLIS_COALESCE_WRITES=false turns coalesced writes off', () => {
    assert.equal(loadConfig({ PORTCULLIS_COALESCE_WRITES: 'false' }, withConfig()).coalesceWrites, false);
  });

  test('LOG_LEVEL accepts silent; PORTCULLIS_TRUST_PROXY accepts true', () => {
    const config = loadConfig({ LOG_LEVEL: 'silent', PORTCULLIS_TRUST_PROXY: 'true' }, withConfig());
    assert.equal(config.logLevel, 'silent');
    assert.equal(config.trustProxy, true);
  });
});

describe('DATABASE_URL', () => {
  const cwd = '/srv/portcullis';

  test('defaults to sqlite:./data/portcullis.db, resolved against cwd', () => {
    assert.deepEqual(loadConfig({}, withConfig()).database.kind, 'sqlite');
    assert.deepEqual(parseDatabaseUrl('sqlite:./data/portcullis.db', cwd), { kind: 'sqlite', filename: '/srv/portcullis/data/portcullis.db', url: 'sqlite:./data/portcullis.db' });
  });

  test('sqlite paths: relative, absolute, triple-slash and in memory', () => {
    assert.equal(parseDatabaseUrl('sqlite:db.sqlite', cwd).kind, 'sqlite');
    assert.deepEqual(parseDatabaseUrl('sqlite:db.sqlite', cwd), { kind: 'sqlite', filename: '/srv/portcullis/db.sqlite', url: 'sqlite:db.sqlite' });
    assert.deepEqual(parseDatabaseUrl('sqlite:/var/lib/p.db', cwd), { kind: 'sqlite', filename: '/var/lib/p.db', url: 'sqlite:/var/lib/p.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:///var/lib/p.db', cwd), { kind: 'sqlite', filename: '/var/lib/p.db', url: 'sqlite:///var/lib/p.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite::memory:', cwd), { kind: 'sqlite', filename: ':memory:', url: 'sqlite::memory:' });
  });

  test('memory: selects the memory store', () => {
    assert.deepEqual(parseDatabaseUrl('memory:', cwd), { kind: 'memory', url: 'memory:' });
    assert.equal(loadConfig({ DATABASE_URL: 'memory:' }, withConfig()).database.kind, 'memory');
  });

  test('postgres:// and postgresql:// select PostgreSQL; the password is only ever shown redacted', () => {
    assert.deepEqual(parseDatabaseUrl('postgres://u:p@db/portcullis', cwd), {
      kind: 'postgres',
      connectionString: 'postgres://u:p@db/portcullis',
      url: 'postgres://u:***@db/portcullis',
    });
    assert.deepEqual(parseDatabaseUrl('postgresql://db:5433/portcullis?sslmode=require', cwd), {
      kind: 'postgres',
      connectionString: 'postgresql://db:5433/portcullis?sslmode=require',
      url: 'postgresql://db:5433/portcullis?sslmode=require',
    });
    const config = loadConfig({ DATABASE_URL: 'postgres://u:s3cret@127.0.0.1:5432/test' }, withConfig());
    assert.equal(config.database.kind, 'postgres');
    assert.equal(config.redis, undefined);
  });

  test('postgres: the schema parameter picks the schema and is not passed to the driver', () => {
    assert.deepEqual(parseDatabaseUrl('postgres://u:p@db/app?schema=auth&sslmode=require', cwd), {
      kind: 'postgres',
      connectionString: 'postgres://u:p@db/app?sslmode=require',
      schema: 'auth',
      url: 'postgres://u:***@db/app?schema=auth&sslmode=require',
    });
    assert.match(configError(() => parseDatabaseUrl('postgres://db/app?schema=a-b', cwd)), /^DATABASE_URL: schema must be letters, digits and "_"/);
    assert.match(configError(() => parseDatabaseUrl('postgres://db/app?schema=a&schema=b', cwd)), /^DATABASE_URL: give the schema parameter once/);
  });

  test('postgres: a URL without host or database is refused without echoing it', () => {
    for (const url of ['postgres://u:pw@db', 'postgres://u:pw@db/', 'postgres:nothing', 'postgres://u:pw@[bad/x']) {
      const message = configError(() => parseDatabaseUrl(url, cwd));
      assert.match(message, /^DATABASE_URL: /);
      assert.ok(!message.includes('pw'), `the password is not echoed: ${message}`);
    }
  });

  test('REDIS_URL adds Redis next to PostgreSQL; prefix parameter; password redacted', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://db/app', REDIS_URL: 'redis://:hunter2@cache:6380/2?prefix=auth:' }, withConfig());
    assert.deepEqual(config.redis, { connectionUrl: 'redis://:hunter2@cache:6380/2', prefix: 'auth:', url: 'redis://:***@cache:6380/2?prefix=auth:' });
    assert.deepEqual(parseRedisUrl('rediss://cache'), { connectionUrl: 'rediss://cache', url: 'rediss://cache' });
    assert.match(configError(() => parseRedisUrl('http://cache')), /^REDIS_URL: unsupported scheme "http:"/);
    assert.match(configError(() => parseRedisUrl('redis://cache/db')), /^REDIS_URL: the path must be a database number/);
    assert.match(configError(() => parseRedisUrl('redis://cache?prefix=')), /^REDIS_URL: prefix must not be empty/);
  });

  test('REDIS_URL without a PostgreSQL DATABASE_URL is refused', () => {
    for (const database of [undefined, 'sqlite:db.sqlite', 'memory:']) {
      const env: Record<string, string> = { REDIS_URL: 'redis://127.0.0.1:6379' };
      if (database !== undefined) env.DATABASE_URL = database;
      assert.match(configError(() => loadConfig(env, withConfig())), /^REDIS_URL: Redis holds only short-lived state next to PostgreSQL/);
    }
  });

  test('PORTCULLIS_KEY_RELOAD_SECONDS: default 60, positive seconds up to an hour', () => {
    assert.equal(DEFAULT_KEY_RELOAD_SECONDS, 60);
    assert.equal(loadConfig({}, withConfig()).keyReloadSeconds, 60);
    assert.equal(loadConfig({ PORTCULLIS_KEY_RELOAD_SECONDS: '1' }, withConfig()).keyReloadSeconds, 1);
    assert.equal(loadConfig({ PORTCULLIS_KEY_RELOAD_SECONDS: '0.5' }, withConfig()).keyReloadSeconds, 0.5);
    for (const bad of ['0', '-1', 'soon', '3601']) {
      assert.match(configError(() => loadConfig({ PORTCULLIS_KEY_RELOAD_SECONDS: bad }, withConfig())), /^PORTCULLIS_KEY_RELOAD_SECONDS: /);
    }
  });

  test('other schemes and an empty sqlite path are refused', () => {
    assert.match(configError(() => parseDatabaseUrl('mysql://db/x', cwd)), /^DATABASE_URL: unsupported/);
    assert.match(configError(() => parseDatabaseUrl('sqlite:', cwd)), /^DATABASE_URL: sqlite: needs a file path/);
  });
});
