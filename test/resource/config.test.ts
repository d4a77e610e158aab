/** The ready-to-run server's `resources` config: validated by the schema, passed through to the core. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { loadConfig, parseConfigFile } from '../../src/server/config.js';
import { openPortcullis, portcullisOptions } from '../../src/server/runtime.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import { basicAuth } from '../helpers/harness.js';
import { jwtParts } from './helpers.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function configDir(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-resources-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'portcullis.config.json'), JSON.stringify(content));
  return dir;
}

function configError(json: unknown): string {
  try {
    parseConfigFile(json);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const API = 'https://api.example.com/';

describe('config file: resources', () => {
  it('a valid resources object is read and passed to the core options', () => {
    const resources = { [API]: { accessTokenFormat: 'opaque', accessTokenTtl: 300, signingAlgorithm: 'RS256', scopes: ['api:read'] }, 'urn:example:billing': {} };
    const config = loadConfig({ DATABASE_URL: 'memory:' }, configDir({ resources }));
    assert.deepEqual(config.resources, resources);
    const options = portcullisOptions(config, createMemoryStorage(), silentLogger, 'http://127.0.0.1:3000');
    assert.deepEqual(options.resources, resources);
  });

  it('no resources → no option', () => {
    const config = loadConfig({ DATABASE_URL: 'memory:' }, configDir({}));
    assert.equal(config.resources, undefined);
    assert.equal(portcullisOptions(config, createMemoryStorage(), silentLogger, 'http://127.0.0.1:3000').resources, undefined);
  });

  it('a resource URI with a fragment or a relative one is refused, naming it', () => {
    assert.match(configError({ resources: { 'https://api.example.com/#x': {} } }), /config: resources\["https:\/\/api\.example\.com\/#x"\]: the resource URI must not have a fragment/);
    assert.match(configError({ resources: { '/api': {} } }), /config: resources\["\/api"\]: the resource URI must be an absolute URI/);
  });

  it('bad settings are refused, naming the field', () => {
    assert.match(configError({ resources: { [API]: { accessTokenTtl: -1 } } }), /resources\[".*"\]\.accessTokenTtl: must be a positive integer/);
    assert.match(configError({ resources: { [API]: { accessTokenFormat: 'x' } } }), /accessTokenFormat: must be "jwt" or "opaque"/);
    assert.match(configError({ resources: { [API]: { signingAlgorithm: 'HS256' } } }), /signingAlgorithm: must be one of/);
    assert.match(configError({ resources: { [API]: { scopes: ['a b'] } } }), /scopes\[0\]: must be a scope token/);
    assert.match(configError({ resources: { [API]: { audience: 'x' } } }), /resources\[".*"\]\.audience: unknown field/);
    assert.match(configError({ resources: [API] }), /resources: must be an object of resource URI → settings/);
  });

  it('the server built from the config issues tokens with the resource settings', async () => {
    const config = loadConfig({ DATABASE_URL: 'memory:' }, configDir({
      resources: { [API]: { accessTokenTtl: 300, signingAlgorithm: 'PS256' } },
      clients: [{ client_id: 'svc', client_secret: 'svc-secret-0123456789abcdef0123456789', grant_types: ['client_credentials'], allowed_audiences: [API] }],
    }));
    const portcullis = await openPortcullis(config, silentLogger);
    try {
      await portcullis.clients.upsert(config.clients[0]!);
      const res = await portcullis.handle({
        method: 'POST',
        path: '/token',
        query: '',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('svc', 'svc-secret-0123456789abcdef0123456789') },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString(),
      });
      assert.equal(res.status, 200, res.body);
      const tokenBody = JSON.parse(res.body) as { access_token: string; expires_in: number };
      assert.equal(tokenBody.expires_in, 300);
      const { header, payload } = jwtParts(tokenBody.access_token);
      assert.equal(header.alg, 'PS256');
      assert.equal(payload.aud, API);
    } finally {
      await portcullis.close();
    }
  });
});
