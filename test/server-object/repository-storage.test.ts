/**
 * `storageFromRepositories` against the storage conformance suite (with the example repositories of
 * docs/migrating.md, holding the client and user the suite's artifacts name), plus what the suite
 * cannot see: the mirror into the app's tables, and revocations made there.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInMemoryRepositories, hashPassword } from '../../examples/server-object/repositories.js';
import { storageFromRepositories } from '../../src/server-object/index.js';
import { runStorageConformance } from '../../src/storage/conformance.js';
import { createMemoryStorage } from '../../src/storage/memory.js';
import type { ArtifactRecord } from '../../src/storage/contract.js';

function repositoriesWithFixtures(): ReturnType<typeof createInMemoryRepositories> {
  const repos = createInMemoryRepositories();
  repos.db.clients.set('client-1', { id: 'client-1', name: 'Client 1', secret: 'client-1-secret-0123456789', redirectUris: ['https://a.example/cb'], allowedGrants: ['authorization_code', 'refresh_token'], scopes: [{ name: 'openid' }, { name: 'profile' }] });
  repos.db.users.set('user-1', { id: 'user-1', username: 'user-1-name', email: 'u1@example.com', passwordHash: hashPassword('user-1-password') });
  return repos;
}

runStorageConformance('storageFromRepositories (memory inner store, example repositories)', () => storageFromRepositories(repositoriesWithFixtures(), { inner: createMemoryStorage() }));
runStorageConformance('storageFromRepositories (mirroring off)', () => storageFromRepositories(repositoriesWithFixtures(), { mirror: false }));

const T = 1_000_000;
const code = (id: string, fields: Partial<ArtifactRecord> = {}): ArtifactRecord => ({
  kind: 'authorization_code', id, grant_id: 'g1', client_id: 'client-1', user_id: 'user-1', scope: 'openid profile', created_at: T, expires_at: T + 60,
  data: { redirect_uri: 'https://a.example/cb', code_challenge: 'c'.repeat(43), code_challenge_method: 'S256' }, ...fields,
});

describe('storageFromRepositories: beyond the contract', () => {
  it('maps clients (secret hashed, implicit dropped, scopes enforced) and users (standard claims only)', async () => {
    const repos = repositoriesWithFixtures();
    repos.db.clients.set('mixed', { id: 'mixed', name: 'Mixed', secret: 'plain-secret-value', redirectUris: ['https://m.example/cb'], allowedGrants: ['implicit', 'authorization_code', 'client_credentials'], scopes: [{ name: 'a' }, { name: 'b' }] });
    repos.db.clients.set('public', { id: 'public', name: 'SPA', secret: null, redirectUris: ['https://spa.example/cb'], allowedGrants: ['authorization_code'], scopes: [] });
    const s = storageFromRepositories(repos);
    const mixed = await s.getClient('mixed');
    assert.deepEqual(mixed?.grant_types, ['authorization_code', 'client_credentials']);
    assert.deepEqual(mixed?.response_types, ['code']);
    assert.equal(mixed?.scope, 'a b');
    assert.equal(mixed?.token_endpoint_auth_method, 'client_secret_basic');
    assert.match(mixed?.client_secret_hash ?? '', /^sha256\$/);
    assert.equal(JSON.stringify(mixed).includes('plain-secret-value'), false);
    const pub = await s.getClient('public');
    assert.equal(pub?.token_endpoint_auth_method, 'none');
    assert.equal(pub?.client_secret_hash, undefined);
    assert.equal(pub?.scope, '', 'no scopes listed: none allowed');
    assert.equal(await s.getClient('MIXED'), undefined);
    const user = await s.getUser('user-1');
    assert.deepEqual(user?.claims, { email: 'u1@example.com' });
    assert.equal(user?.username, 'user-1-name');
    assert.equal(user?.password_hash, undefined);
    assert.equal(await s.getUser('user-1-name'), undefined, 'getUser is by id only');
    assert.equal((await s.getUserByUsername('user-1-name'))?.id, 'user-1');
    await assert.rejects(s.upsertUser({ id: 'other', username: 'user-1-name', claims: {}, created_at: T, updated_at: T }), /belongs to another user/);
    await s.close();
  });

  it('codes are mirrored under their hash with PKCE and redirect URI; consuming revokes the row', async () => {
    const repos = repositoriesWithFixtures();
    const s = storageFromRepositories(repos);
    await s.saveArtifact(code('hash-of-code'));
    const row = repos.db.authCodes.get('hash-of-code');
    assert.ok(row);
    assert.equal(row.codeChallenge, 'c'.repeat(43));
    assert.equal(row.codeChallengeMethod, 'S256');
    assert.equal(row.redirectUri, 'https://a.example/cb');
    assert.equal(row.user?.id, 'user-1');
    assert.equal(row.revokedAt, undefined);
    assert.equal((await s.consumeArtifact('authorization_code', 'hash-of-code', T + 1)).status, 'consumed');
    assert.ok(repos.db.authCodes.get('hash-of-code')?.revokedAt);
    await s.close();
  });

  it('a code or token revoked (or deleted) in the app tables is revoked here; a failing lookup refuses without revoking', async () => {
    const repos = repositoriesWithFixtures();
    const s = storageFromRepositories(repos);
    await s.saveArtifact(code('c1'));
    repos.db.authCodes.get('c1')!.revokedAt = new Date();
    const consumed = await s.consumeArtifact('authorization_code', 'c1', T + 1);
    assert.equal(consumed.status, 'consumed');
    assert.equal(consumed.status === 'consumed' && consumed.record.revoked_at, T + 1, 'the caller sees it revoked');

    await s.saveArtifact({ kind: 'refresh_token', id: 'r1', grant_id: 'g1', client_id: 'client-1', user_id: 'user-1', scope: 'openid', created_at: T, expires_at: T + 600 });
    const row = [...repos.db.tokens.values()].find((r) => r.refreshToken === 'r1');
    assert.ok(row);
    assert.equal(row.originatingAuthCodeId, 'g1');
    repos.db.tokens.delete(row.accessToken);
    assert.equal((await s.findArtifact('refresh_token', 'r1', T + 1))?.revoked_at, T + 1);
    // The seed's getByRefreshToken throws for a missing row: refused on every use while the row is gone.
    assert.equal((await s.findArtifact('refresh_token', 'r1', T + 2))?.revoked_at, T + 2);
    // A row marked revoked is recorded as revoked in the inner store for good.
    await s.saveArtifact({ kind: 'refresh_token', id: 'r2', grant_id: 'g1', client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600 });
    [...repos.db.tokens.values()].find((r) => r.refreshToken === 'r2')!.revokedAt = new Date();
    assert.equal((await s.findArtifact('refresh_token', 'r2', T + 3))?.revoked_at, T + 3);
    assert.equal((await s.inner.findArtifact('refresh_token', 'r2', T + 4))?.revoked_at, T + 3, 'kept revoked');

    await s.saveArtifact({ kind: 'access_token', id: 'a1', client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600 });
    const original = repos.tokenRepository.getByAccessToken.bind(repos.tokenRepository);
    repos.tokenRepository.getByAccessToken = async () => {
      throw new Error('database timeout');
    };
    assert.equal((await s.findArtifact('access_token', 'a1', T + 1))?.revoked_at, T + 1, 'refused for this call');
    repos.tokenRepository.getByAccessToken = original;
    assert.equal((await s.findArtifact('access_token', 'a1', T + 2))?.revoked_at, undefined, 'not revoked for good');
    await s.close();
  });

  it('revoking a grant revokes its rows through revokeDescendantsOf', async () => {
    const repos = repositoriesWithFixtures();
    const s = storageFromRepositories(repos);
    await s.createGrant({ id: 'g9', client_id: 'client-1', user_id: 'user-1', scope: 'openid', grant_type: 'authorization_code', created_at: T, expires_at: T + 86400 });
    await s.saveArtifact({ kind: 'refresh_token', id: 'r9', grant_id: 'g9', client_id: 'client-1', user_id: 'user-1', scope: 'openid', created_at: T, expires_at: T + 600 });
    await s.saveArtifact({ kind: 'refresh_token', id: 'r10', grant_id: 'g10', client_id: 'client-1', scope: 'openid', created_at: T, expires_at: T + 600 });
    assert.equal(await s.revokeGrant('g9', T + 5), true);
    const rows = [...repos.db.tokens.values()];
    assert.ok(rows.find((r) => r.refreshToken === 'r9')?.revokedAt);
    assert.equal(rows.find((r) => r.refreshToken === 'r10')?.revokedAt, undefined);
    await s.close();
  });

  it('portcullis-hash secrets pass through; anything else is refused in that mode', async () => {
    const repos = repositoriesWithFixtures();
    const { hashClientSecret } = await import('../../src/server-object/index.js');
    repos.db.clients.set('h', { id: 'h', name: 'H', secret: hashClientSecret('a-secret-value-123'), redirectUris: [], allowedGrants: ['client_credentials'], scopes: [] });
    repos.db.clients.set('p', { id: 'p', name: 'P', secret: 'plain-value-12345', redirectUris: [], allowedGrants: ['client_credentials'], scopes: [] });
    const s = storageFromRepositories(repos, { clientSecrets: 'portcullis-hash', authMethod: (c) => (c.id === 'h' ? 'client_secret_post' : undefined) });
    const h = await s.getClient('h');
    assert.equal(h?.client_secret_hash, repos.db.clients.get('h')?.secret);
    assert.equal(h?.token_endpoint_auth_method, 'client_secret_post');
    assert.equal((await s.getClient('p'))?.client_secret_hash, undefined);
    await s.close();
  });
});
