/** Config-file keys of the ready-to-run server for token exchange and the JWT bearer grant. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { JWT_BEARER_GRANT_TYPE } from '../../src/grants/jwt-bearer.js';
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../../src/grants/token-exchange.js';
import { createPortcullis } from '../../src/provider.js';
import { loadConfig } from '../../src/server/config.js';
import { portcullisOptions } from '../../src/server/runtime.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function withConfig(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-te-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'portcullis.config.json'), JSON.stringify(content));
  return dir;
}

function configError(content: unknown): string {
  try {
    loadConfig({}, withConfig(content));
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const JWKS = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }] };

describe('config file: token exchange and JWT bearer', () => {
  it('reads the switches and trusted issuers and passes them to the core, which serves both grants', async () => {
    const cwd = withConfig({
      issuer: 'https://auth.example.com',
      grants: { token_exchange: true, jwt_bearer: true },
      tokenExchange: { trustedIssuers: [{ issuer: 'https://idp.example', jwks: JWKS, algorithms: ['ES256'], audience: 'https://auth.example.com' }] },
      jwtBearer: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks' }] },
      clients: [{ client_id: 'gw', client_secret: 'gw-secret-0123456789abcdef', grant_types: [TOKEN_EXCHANGE_GRANT_TYPE, JWT_BEARER_GRANT_TYPE] }],
    });
    const config = loadConfig({}, cwd);
    assert.deepEqual(config.grants, { token_exchange: true, jwt_bearer: true });
    assert.equal(config.tokenExchange?.trustedIssuers?.[0]?.audience, 'https://auth.example.com');
    assert.equal(config.jwtBearer?.trustedIssuers[0]?.jwksUri, 'https://idp.example/jwks');
    const options = portcullisOptions(config, createMemoryStorage(), silentLogger, 'https://auth.example.com');
    assert.deepEqual(options.tokenExchange, config.tokenExchange);
    assert.deepEqual(options.jwtBearer, config.jwtBearer);
    const core = await createPortcullis(options);
    try {
      assert.ok(core.grantTypes.includes(TOKEN_EXCHANGE_GRANT_TYPE));
      assert.ok(core.grantTypes.includes(JWT_BEARER_GRANT_TYPE));
      assert.ok((core.metadata().grant_types_supported as string[]).includes(TOKEN_EXCHANGE_GRANT_TYPE));
    } finally {
      await core.close();
    }
  });

  it('names the field of a bad trusted issuer', () => {
    assert.match(configError({ jwtBearer: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', algorithms: ['HS256'] }] } }), /jwtBearer\.trustedIssuers\[0\]\.algorithms\[0\]: must be one of .*asymmetric/);
    assert.match(configError({ jwtBearer: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', audience: 'x' }] } }), /jwtBearer\.trustedIssuers\[0\]\.audience: unknown field/);
    assert.match(configError({ tokenExchange: { trustedIssuers: [{ issuer: 'https://idp.example' }] } }), /tokenExchange\.trustedIssuers\[0\]: give exactly one of "jwks" and "jwksUri"/);
    assert.match(configError({ tokenExchange: { trustedIssuers: [{ issuer: '', jwks: JWKS }] } }), /tokenExchange\.trustedIssuers\[0\]\.issuer: must not be empty/);
    assert.match(configError({ tokenExchange: { policy: 'allow-all' } }), /tokenExchange\.policy: unknown field/);
    assert.match(configError({ jwtBearer: { mapSubject: 'sub' } }), /jwtBearer\.mapSubject: unknown field/);
    assert.match(configError({ grants: { token_exchange: 'yes' } }), /grants\.token_exchange: must be true or false/);
  });

  it('the core refuses what zod cannot see: a jwt_bearer switch without issuers, an http jwksUri', async () => {
    for (const [file, message] of [
      [{ grants: { jwt_bearer: true } }, /jwtBearer\.trustedIssuers/],
      [{ grants: { token_exchange: true }, tokenExchange: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'http://idp.example/jwks' }] } }, /jwksUri must be an https URL/],
    ] as const) {
      const options = portcullisOptions(loadConfig({}, withConfig({ issuer: 'https://auth.example.com', ...file })), createMemoryStorage(), silentLogger, 'https://auth.example.com');
      await assert.rejects(createPortcullis(options), message);
    }
  });
});
