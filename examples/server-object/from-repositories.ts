/**
 * The worked example of docs/migrating.md: an app that already has the seed package's repositories
 * keeps them, and swaps the import. The server is built with the seed's constructor
 * (`new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, secret, options)`),
 * the code grant is enabled with its repositories as in the seed, and the same Express app
 * (./express-app.ts) serves it.
 *
 * Under the hood `storageFromRepositories` maps the repositories to the Portcullis storage contract;
 * what they cannot express (atomic code redemption, grants and revoke-by-grant, refresh-token
 * rotation state, signing keys, rate limits) lives in the inner store: here SQLite when
 * PORTCULLIS_DB is set, else memory (lost on restart).
 *
 * Run: node --import tsx examples/server-object/from-repositories.ts
 */
import type { Storage } from '../../src/storage/contract.js';
import { AuthorizationServer, DateInterval } from '../../src/server-object/index.js';
import { createExpressApp } from './express-app.js';
import { createInMemoryRepositories, hashPassword, type ExampleDb } from './repositories.js';

export interface FromRepositoriesOptions {
  issuer: string;
  /** The inner store (default: memory). */
  inner?: Storage;
  db?: ExampleDb;
}

/** The app's repositories with demo data, and the server object over them. */
export function createServerFromRepositories(options: FromRepositoriesOptions): { authorizationServer: AuthorizationServer; repositories: ReturnType<typeof createInMemoryRepositories> } {
  const repositories = createInMemoryRepositories(options.db);
  const { clientRepository, tokenRepository, scopeRepository, authCodeRepository, userRepository } = repositories;

  // As in the seed. The secret no longer signs anything (Portcullis signs with asymmetric keys it
  // publishes as a JWKS); 16 characters or more, it encrypts those keys at rest in the inner store.
  const authorizationServer = new AuthorizationServer(clientRepository, tokenRepository, scopeRepository, 'a-secret-of-at-least-16-chars', {
    issuer: options.issuer,
    requiresPKCE: true,
    // Where the seed's routes are mounted (discovery lists them).
    routes: { revoke: '/token/revoke', introspect: '/token/introspect' },
    ...(options.inner !== undefined ? { storage: options.inner } : {}),
  });
  authorizationServer.enableGrantTypes(
    ['client_credentials', new DateInterval('1h')],
    ['refresh_token', new DateInterval('1h')],
    [{ grant: 'authorization_code', authCodeRepository, userRepository }, new DateInterval('1h')],
  );
  return { authorizationServer, repositories };
}

/** Demo rows: a confidential web client, a service client, two scopes, a user. */
export function seedExampleData(db: ExampleDb, redirectUri: string): void {
  const scopes = ['openid', 'profile', 'email', 'offline_access', 'contacts.read'].map((name) => ({ name }));
  for (const s of scopes) db.scopes.set(s.name, s);
  db.clients.set('web', {
    id: 'web',
    name: 'Contacts <Web>',
    secret: 'web-secret-0123456789',
    redirectUris: [redirectUri],
    allowedGrants: ['authorization_code', 'refresh_token'],
    scopes,
  });
  db.clients.set('service', {
    id: 'service',
    name: 'Nightly sync',
    secret: 'service-secret-0123456789',
    redirectUris: [],
    allowedGrants: ['client_credentials'],
    scopes: [{ name: 'contacts.read' }],
  });
  db.users.set('u-alice', { id: 'u-alice', username: 'alice', email: 'alice@example.com', name: 'Alice', passwordHash: hashPassword('alice-password') });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const issuer = 'http://127.0.0.1:3000';
  let inner: Storage | undefined;
  if (process.env.PORTCULLIS_DB !== undefined) {
    const { createSqliteStorage } = await import('../../src/storage/sqlite.js');
    inner = createSqliteStorage({ filename: process.env.PORTCULLIS_DB });
  }
  const { authorizationServer, repositories } = createServerFromRepositories({ issuer, ...(inner !== undefined ? { inner } : {}) });
  seedExampleData(repositories.db, 'http://127.0.0.1:8080/callback');
  const app = createExpressApp({
    authorizationServer,
    issuer,
    accounts: {
      async verify(username, password) {
        const user = await repositories.userRepository.getUserByCredentials(username, password);
        return user === undefined ? undefined : { id: user.id, username: user.username };
      },
    },
  });
  app.listen(3000, '127.0.0.1', () => console.log(`listening on ${issuer}; clients web / service; user alice / alice-password`));
}
