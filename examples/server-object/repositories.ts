/**
 * Repositories shaped like the seed package's (`@jmondi/oauth2-server`), kept in memory: what an
 * app migrating to Portcullis already has (usually over Prisma / TypeORM / SQL). Used by the worked
 * example of docs/migrating.md (./from-repositories.ts) and its tests.
 *
 * Two choices worth copying into real repositories:
 * - revocation is a `revokedAt` column, not "expiry in the past": Portcullis keeps expiry itself and
 *   asks the repository only whether the app revoked something;
 * - passwords are hashed by the app (scrypt here) and checked in `getUserByCredentials`; client
 *   secrets are stored in plain text here (the seed's examples do), hashed by Portcullis on read.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type {
  GrantIdentifier,
  OAuthAuthCode,
  OAuthAuthCodeRepository,
  OAuthClient,
  OAuthClientRepository,
  OAuthScope,
  OAuthScopeRepository,
  OAuthToken,
  OAuthTokenRepository,
  OAuthUser,
  OAuthUserRepository,
} from '../../src/server-object/index.js';

export interface ExampleUser extends OAuthUser {
  id: string;
  username: string;
  email?: string;
  name?: string;
  /** `scrypt$<salt>$<hash>`: the app's own format; never a claim. */
  passwordHash: string;
}

type Row<T> = T & { revokedAt?: Date };

/** The app's tables. */
export interface ExampleDb {
  clients: Map<string, OAuthClient>;
  users: Map<string, ExampleUser>;
  scopes: Map<string, OAuthScope>;
  /** Keyed by accessToken. */
  tokens: Map<string, Row<OAuthToken>>;
  /** Keyed by code. */
  authCodes: Map<string, Row<OAuthAuthCode>>;
}

export function createExampleDb(): ExampleDb {
  return { clients: new Map(), users: new Map(), scopes: new Map(), tokens: new Map(), authCodes: new Map() };
}

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64url')}$${scryptSync(password, salt, 32).toString('base64url')}`;
}

function checkPassword(password: string, stored: string): boolean {
  const [scheme, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = scryptSync(password, Buffer.from(salt, 'base64url'), 32);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

const DUMMY = hashPassword('dummy-password-for-timing');

export class InMemoryClientRepository implements OAuthClientRepository {
  constructor(private readonly db: ExampleDb) {}

  async getByIdentifier(clientId: string): Promise<OAuthClient> {
    const client = this.db.clients.get(clientId);
    if (client === undefined) throw new Error(`client ${clientId} not found`);
    return client;
  }

  /** The seed called this for every token request; Portcullis does the same checks itself. */
  async isClientValid(grantType: GrantIdentifier, client: OAuthClient, clientSecret?: string): Promise<boolean> {
    if (client.secret && client.secret !== clientSecret) return false;
    return client.allowedGrants.includes(grantType);
  }
}

export class InMemoryTokenRepository implements OAuthTokenRepository {
  constructor(private readonly db: ExampleDb) {}

  async issueToken(client: OAuthClient, scopes: OAuthScope[], user?: OAuthUser | null): Promise<OAuthToken> {
    return {
      accessToken: randomBytes(40).toString('hex'),
      accessTokenExpiresAt: new Date(Date.now() + 3600_000),
      refreshToken: null,
      refreshTokenExpiresAt: null,
      client,
      user: user ?? null,
      scopes,
    };
  }

  async persist(token: OAuthToken): Promise<void> {
    this.db.tokens.set(token.accessToken, { ...token });
  }

  async issueRefreshToken(token: OAuthToken): Promise<OAuthToken> {
    token.refreshToken = randomBytes(40).toString('hex');
    token.refreshTokenExpiresAt = new Date(Date.now() + 30 * 86400_000);
    await this.persist(token);
    return token;
  }

  async revoke(token: OAuthToken): Promise<void> {
    const row = this.db.tokens.get(token.accessToken);
    if (row !== undefined) row.revokedAt ??= new Date();
  }

  async revokeDescendantsOf(authCodeId: string): Promise<void> {
    for (const row of this.db.tokens.values()) if (row.originatingAuthCodeId === authCodeId) row.revokedAt ??= new Date();
  }

  async isRefreshTokenRevoked(token: OAuthToken): Promise<boolean> {
    return this.db.tokens.get(token.accessToken)?.revokedAt !== undefined;
  }

  async isAccessTokenRevoked(token: OAuthToken): Promise<boolean> {
    return this.db.tokens.get(token.accessToken)?.revokedAt !== undefined;
  }

  async getByRefreshToken(refreshToken: string): Promise<OAuthToken> {
    for (const row of this.db.tokens.values()) if (row.refreshToken === refreshToken) return row;
    throw new Error('refresh token not found');
  }

  async getByAccessToken(accessToken: string): Promise<OAuthToken> {
    const row = this.db.tokens.get(accessToken);
    if (row === undefined) throw new Error('access token not found');
    return row;
  }
}

export class InMemoryAuthCodeRepository implements OAuthAuthCodeRepository {
  constructor(private readonly db: ExampleDb) {}

  issueAuthCode(client: OAuthClient, user: OAuthUser | undefined, scopes: OAuthScope[]): OAuthAuthCode {
    return { code: randomBytes(40).toString('hex'), expiresAt: new Date(Date.now() + 15 * 60_000), client, user: user ?? null, scopes };
  }

  async persist(authCode: OAuthAuthCode): Promise<void> {
    this.db.authCodes.set(authCode.code, { ...authCode });
  }

  async getByIdentifier(code: string): Promise<OAuthAuthCode> {
    const row = this.db.authCodes.get(code);
    if (row === undefined) throw new Error('auth code not found');
    return row;
  }

  async isRevoked(code: string): Promise<boolean> {
    return (await this.getByIdentifier(code) as Row<OAuthAuthCode>).revokedAt !== undefined;
  }

  async revoke(code: string): Promise<void> {
    const row = this.db.authCodes.get(code);
    if (row !== undefined) row.revokedAt ??= new Date();
  }
}

export class InMemoryScopeRepository implements OAuthScopeRepository {
  constructor(private readonly db: ExampleDb) {}

  async getAllByIdentifiers(names: string[]): Promise<OAuthScope[]> {
    return names.flatMap((n) => {
      const scope = this.db.scopes.get(n);
      return scope === undefined ? [] : [scope];
    });
  }

  /** Keep the scopes the client may have (the seed's `guardAgainstInvalidClientScopes`, as a filter). */
  async finalize(scopes: OAuthScope[], _grant: GrantIdentifier, client: OAuthClient): Promise<OAuthScope[]> {
    const allowed = new Set(client.scopes.map((s) => s.name));
    return scopes.filter((s) => allowed.has(s.name));
  }
}

export class InMemoryUserRepository implements OAuthUserRepository {
  constructor(private readonly db: ExampleDb) {}

  /** By id (code grant, ID tokens) or username; with a password, only when it is right. */
  async getUserByCredentials(identifier: string, password?: string): Promise<ExampleUser | undefined> {
    const user = this.db.users.get(identifier) ?? [...this.db.users.values()].find((u) => u.username === identifier);
    if (password === undefined) return user;
    const ok = checkPassword(password, user?.passwordHash ?? DUMMY);
    return ok ? user : undefined;
  }
}

/** The five repositories over one in-memory database. */
export function createInMemoryRepositories(db: ExampleDb = createExampleDb()): {
  db: ExampleDb;
  clientRepository: InMemoryClientRepository;
  tokenRepository: InMemoryTokenRepository;
  authCodeRepository: InMemoryAuthCodeRepository;
  scopeRepository: InMemoryScopeRepository;
  userRepository: InMemoryUserRepository;
} {
  return {
    db,
    clientRepository: new InMemoryClientRepository(db),
    tokenRepository: new InMemoryTokenRepository(db),
    authCodeRepository: new InMemoryAuthCodeRepository(db),
    scopeRepository: new InMemoryScopeRepository(db),
    userRepository: new InMemoryUserRepository(db),
  };
}
