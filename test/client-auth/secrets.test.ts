import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authenticateClient, invalidClient } from '../../src/client-auth/index.js';
import { parseBasicAuthorization } from '../../src/client-auth/client-secret-basic.js';
import { OAuthError } from '../../src/core/errors.js';
import { parseForm } from '../../src/core/form.js';
import { REALM, basic, basicRaw, harness, rejects, rejectsClient, request, wire } from './fixtures.js';

const SECRET = 'correct horse battery staple';
const ODD_SECRET = 'p:a%s+s w:rd%2B';

async function setup(overrides: Parameters<typeof harness>[0] = {}) {
  const h = harness(overrides);
  await h.register({ client_id: 'basic-client', client_secret: SECRET, grant_types: ['client_credentials'] });
  await h.register({ client_id: 'odd-client', client_secret: ODD_SECRET, grant_types: ['client_credentials'] });
  await h.register({
    client_id: 'post-client',
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials'],
  });
  await h.register({ client_id: 'public-client', redirect_uris: ['https://app.example.com/cb'] });
  return h;
}

describe('client_secret_basic', () => {
  it('authenticates with the right secret', async () => {
    const h = await setup();
    const result = await h.auth({}, basic('basic-client', SECRET));
    assert.equal(result.method, 'client_secret_basic');
    assert.equal(result.client.client_id, 'basic-client');
  });

  it('accepts a lower-case scheme and a matching body client_id', async () => {
    const h = await setup();
    const header = basic('basic-client', SECRET).authorization!.replace('Basic', 'bAsIc');
    const result = await h.auth({ client_id: 'basic-client' }, { authorization: header });
    assert.equal(result.client.client_id, 'basic-client');
  });

  it('form-decodes a secret with ":", "%", "+" and a space (RFC 6749 App. B), split at the first colon', async () => {
    const h = await setup();
    const header = basic('odd-client', ODD_SECRET);
    // The encoded credentials really use App. B: %3A for ':', %25 for '%', %2B for '+', '+' for space.
    const decoded = Buffer.from(header.authorization!.slice(6), 'base64').toString();
    assert.equal(decoded, 'odd-client:p%3Aa%25s%2Bs+w%3Ard%252B');
    const result = await h.auth({}, header);
    assert.equal(result.client.client_id, 'odd-client');
  });

  it('splits at the first colon when the secret has raw colons', async () => {
    const h = harness();
    await h.register({ client_id: 'colon', client_secret: 'a:b:c:d:e', grant_types: ['client_credentials'] });
    const result = await h.auth({}, basicRaw('colon:a:b:c:d:e'));
    assert.equal(result.client.client_id, 'colon');
  });

  it('a wrong secret is invalid_client with WWW-Authenticate', async () => {
    const h = await setup();
    const err = await rejectsClient(h.auth({}, basic('basic-client', 'wrong secret!')));
    assert.equal(err.detail, 'wrong client secret');
  });

  it('an empty secret is a failed authentication, not a malformed request', async () => {
    const h = await setup();
    await rejectsClient(h.auth({}, basicRaw('basic-client:')));
  });

  it('an unknown client and a wrong secret give byte-identical answers', async () => {
    const h = await setup();
    const unknown = await rejectsClient(h.auth({}, basic('no-such-client', SECRET)));
    const wrong = await rejectsClient(h.auth({}, basic('basic-client', 'not the secret')));
    assert.deepStrictEqual(wire(unknown), wire(wrong));
    assert.notEqual(unknown.detail, wrong.detail);
  });

  for (const [name, authorization] of [
    ['bare "Basic"', 'Basic'],
    ['"Basic " with spaces only', 'Basic    '],
    ['not base64', 'Basic !!!'],
    ['base64url alphabet', 'Basic YWJj-_8='],
    ['bad padding', 'Basic Zm9vOmJhcg'.slice(0, 11) + '='],
    ['no colon', 'Basic Zm9v'],
    ['not UTF-8', `Basic ${Buffer.from([0x66, 0xff, 0xfe, 0x3a, 0x61]).toString('base64')}`],
    ['undecodable %', `Basic ${Buffer.from('basic-client:%zz').toString('base64')}`],
    ['percent-encoded invalid UTF-8', `Basic ${Buffer.from('basic-client:%ff').toString('base64')}`],
    ['empty client id', `Basic ${Buffer.from(':secret').toString('base64')}`],
    ['two headers joined', `${basic('a', 'b').authorization}, ${basic('c', 'd').authorization}`],
    ['empty header', ''],
    ['Bearer scheme', 'Bearer abc.def.ghi'],
    ['DPoP scheme', 'DPoP abc'],
  ] as const) {
    it(`malformed or unsupported Authorization (${name}) is 400 invalid_request`, async () => {
      const h = await setup();
      const err = await rejects(h.auth({}, { authorization }), 'invalid_request', 400);
      assert.deepEqual(err.headers, {});
    });
  }

  it('parseBasicAuthorization returns undefined without a header', () => {
    assert.equal(parseBasicAuthorization(undefined), undefined);
    assert.deepEqual(parseBasicAuthorization('Basic ' + Buffer.from('a+b:c%20d').toString('base64')), {
      clientId: 'a b',
      clientSecret: 'c d',
    });
  });

  it('Basic plus a body client_secret is invalid_request', async () => {
    const h = await setup();
    await rejects(h.auth({ client_id: 'basic-client', client_secret: SECRET }, basic('basic-client', SECRET)), 'invalid_request', 400);
  });

  it('Basic plus a client_assertion is invalid_request', async () => {
    const h = await setup();
    await rejects(
      h.auth(
        { client_assertion: 'a.b.c', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' },
        basic('basic-client', SECRET),
      ),
      'invalid_request',
      400,
    );
  });

  it('a Basic user different from the body client_id is invalid_request', async () => {
    const h = await setup();
    await rejects(h.auth({ client_id: 'post-client' }, basic('basic-client', SECRET)), 'invalid_request', 400);
  });

  it('a client registered for client_secret_post cannot use Basic, even with the right secret', async () => {
    const h = await setup();
    const err = await rejectsClient(h.auth({}, basic('post-client', SECRET)));
    assert.match(err.detail ?? '', /registered for client_secret_post/);
  });

  it('a method not enabled on the server is refused even when registered', async () => {
    const h = await setup({ methods: ['client_secret_post', 'none'] });
    const err = await rejectsClient(h.auth({}, basic('basic-client', SECRET)));
    assert.match(err.detail ?? '', /not enabled/);
  });

  it('a client_id of an impossible format is invalid_client', async () => {
    const h = await setup();
    await rejectsClient(h.auth({}, basic('has space', SECRET)));
    await rejectsClient(h.auth({}, basic('x'.repeat(256), SECRET)));
  });
});

describe('client_secret_post', () => {
  it('authenticates with client_id and client_secret in the body', async () => {
    const h = await setup();
    const result = await h.auth({ client_id: 'post-client', client_secret: SECRET });
    assert.deepEqual([result.method, result.client.client_id], ['client_secret_post', 'post-client']);
  });

  it('a wrong secret is the uniform invalid_client', async () => {
    const h = await setup();
    await rejectsClient(h.auth({ client_id: 'post-client', client_secret: 'nope nope' }));
  });

  it('an unknown client and a wrong secret give byte-identical answers', async () => {
    const h = await setup();
    const unknown = await rejectsClient(h.auth({ client_id: 'ghost', client_secret: SECRET }));
    const wrong = await rejectsClient(h.auth({ client_id: 'post-client', client_secret: 'wrong!!!' }));
    assert.deepStrictEqual(wire(unknown), wire(wrong));
  });

  it('a client registered for client_secret_basic cannot post its secret', async () => {
    const h = await setup();
    await rejectsClient(h.auth({ client_id: 'basic-client', client_secret: SECRET }));
  });

  it('client_secret without client_id is invalid_request', async () => {
    const h = await setup();
    await rejects(h.auth({ client_secret: SECRET }), 'invalid_request', 400);
  });

  it('client_secret plus client_assertion is invalid_request', async () => {
    const h = await setup();
    await rejects(
      h.auth({
        client_id: 'post-client',
        client_secret: SECRET,
        client_assertion: 'a.b.c',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      }),
      'invalid_request',
      400,
    );
  });
});

describe('none (public clients) and missing credentials', () => {
  it('a public client authenticates with client_id only', async () => {
    const h = await setup();
    const result = await h.auth({ client_id: 'public-client' });
    assert.deepEqual([result.method, result.client.client_id], ['none', 'public-client']);
  });

  it('a public client sending a secret is invalid_client (Basic and post)', async () => {
    const h = await setup();
    await rejectsClient(h.auth({}, basic('public-client', 'any secret')));
    await rejectsClient(h.auth({ client_id: 'public-client', client_secret: 'any secret' }));
  });

  it('a confidential client sending only its client_id is invalid_client', async () => {
    const h = await setup();
    const err = await rejectsClient(h.auth({ client_id: 'basic-client' }));
    assert.match(err.detail ?? '', /registered for client_secret_basic but used none/);
  });

  it('an unknown client_id alone is invalid_client', async () => {
    const h = await setup();
    await rejectsClient(h.auth({ client_id: 'ghost' }));
  });

  it('none must be enabled on the server', async () => {
    const h = await setup({ methods: ['client_secret_basic'] });
    await rejectsClient(h.auth({ client_id: 'public-client' }));
  });

  it('no credentials and no client_id is 401 invalid_client', async () => {
    const h = await setup();
    await rejectsClient(h.auth({}));
  });
});

describe('client_assertion_type rules', () => {
  it('an unsupported client_assertion_type is invalid_request', async () => {
    const h = await setup();
    await rejects(
      h.auth({ client_id: 'basic-client', client_assertion: 'a.b.c', client_assertion_type: 'urn:example:saml' }),
      'invalid_request',
      400,
    );
  });

  it('client_assertion without its type, or the type alone, is invalid_request', async () => {
    const h = await setup();
    await rejects(h.auth({ client_id: 'basic-client', client_assertion: 'a.b.c' }), 'invalid_request', 400);
    await rejects(
      h.auth({ client_id: 'basic-client', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }),
      'invalid_request',
      400,
    );
  });
});

describe('invalidClient', () => {
  it('escapes quotes and backslashes in the realm', () => {
    const err = invalidClient({ issuer: 'https://a.example/"x\\y' }, 'detail');
    assert.ok(err instanceof OAuthError);
    assert.equal(err.status, 401);
    assert.deepEqual(err.headers, { 'www-authenticate': 'Basic realm="https://a.example/\\"x\\\\y"' });
    assert.equal(err.detail, 'detail');
    assert.deepEqual(err.toJSON(), { error: 'invalid_client', error_description: 'Client authentication failed' });
  });

  it('adds Retry-After when asked', () => {
    const err = invalidClient({ issuer: 'https://a.example' }, 'd', 12);
    assert.deepEqual(err.headers, { 'www-authenticate': 'Basic realm="https://a.example"', 'retry-after': '12' });
  });

  it('uses the issuer as realm in real answers', async () => {
    const h = await setup();
    const req = request({}, basic('basic-client', 'bad secret'));
    await assert.rejects(authenticateClient(req, parseForm(req), h.options), (err: OAuthError) => {
      assert.equal(err.headers['www-authenticate'], REALM);
      return true;
    });
  });
});
