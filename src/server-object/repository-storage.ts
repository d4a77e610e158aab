/**
 * `storageFromRepositories`: the core's {@link Storage} over an app's seed-shaped repositories
 * (`@jmondi/oauth2-server`'s client, token, auth code, scope and user repositories), for a migration
 * that keeps the app's tables.
 *
 * What goes where:
 *
 * | Storage part | Source of truth | Repository calls |
 * |---|---|---|
 * | clients (read) | inner store first, then `clientRepository.getByIdentifier` | mapped to RFC 7591 metadata |
 * | users (read) | inner store first, then `userRepository.getUserByCredentials(id)` | claims: standard OIDC claims only |
 * | clients, users (write, list, delete) | inner store | none: the seed shapes cannot write or list |
 * | authorization codes | inner store (atomic consume) | mirrored: `issueAuthCode` + `persist`, `revoke` once used; `isRevoked` honoured |
 * | refresh tokens, opaque access tokens | inner store (atomic rotation, reuse detection) | mirrored: `issueToken` + `persist`, `revoke`; `isRefreshTokenRevoked` / `isAccessTokenRevoked` honoured |
 * | grants, revoke-by-grant | inner store (atomic) | `revokeDescendantsOf(grantId)` after a grant is revoked |
 * | device codes, sessions, interactions, consents, server secrets, signing keys, replay records, rate limits | inner store | none: no seed shape |
 *
 * "Honoured" means fail closed: an artifact the app revoked in its own tables (or deleted) is revoked
 * here too, and a repository that throws while being asked makes the artifact unusable for that call.
 * The inner store must therefore be durable in production (SQLite, PostgreSQL…): the default, in
 * memory, loses grants, refresh tokens and signing keys on restart.
 */
import { hashClientSecret } from '../clients/secrets.js';
import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import { StorageUnavailableError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { SUPPORTED_CLAIMS } from '../oidc/claims.js';
import type {
  ArtifactKind,
  ArtifactRecord,
  ClientRecord,
  ConsumeResult,
  GrantRecord,
  KeyRecord,
  RateLimitResult,
  Storage,
  UserRecord,
} from '../storage/contract.js';
import { createMemoryStorage } from '../storage/memory.js';
import type { OAuthClient, OAuthScope, OAuthToken, OAuthUser, Repositories } from './repositories.js';

export interface RepositoryStorageOptions {
  /** Where everything the repositories cannot express lives (see the module comment). Default: in memory. */
  inner?: Storage;
  /**
   * How `client.secret` is stored in the client repository:
   * - `plaintext` (default): the secret itself; hashed on read, compared in constant time by the core;
   * - `portcullis-hash`: a hash made by `hashClientSecret` (`sha256$…`).
   * A value that looks like another hash (bcrypt, argon2, scrypt, PBKDF2, crypt) is never used as a
   * plain secret: such a client cannot authenticate with a secret (fail closed) until its secret is
   * re-issued. See docs/migrating.md.
   */
  clientSecrets?: 'plaintext' | 'portcullis-hash';
  /**
   * The client's token endpoint authentication method. Default: `client_secret_basic` for a client
   * with a secret, `none` without one. A client that sends its secret in the body needs
   * `client_secret_post` here: Portcullis accepts only the registered method.
   */
  authMethod?: (client: OAuthClient) => TokenEndpointAuthMethod | undefined;
  /** The user's OIDC claims (ID tokens, userinfo). Default: the standard claim names the entity has (never other fields). */
  userClaims?: (user: OAuthUser) => Record<string, unknown>;
  /** The user's username. Default: `username`, else `email`, else the id. */
  username?: (user: OAuthUser) => string;
  /** Mirror codes and tokens into the token and auth code repositories (default true). */
  mirror?: boolean;
  logger?: Logger;
}

/** A {@link Storage} over repositories; the server object reads `repositories` to use the scope and user repositories too. */
export interface RepositoryStorage extends Storage {
  readonly repositories: Readonly<Repositories>;
  readonly inner: Storage;
  /** The seed entity of a client: from the repository, else built from the stored record. */
  clientEntity(clientId: string): Promise<OAuthClient | undefined>;
}

/** Whether a storage came from {@link storageFromRepositories}. */
export function isRepositoryStorage(storage: Storage): storage is RepositoryStorage {
  return storage instanceof RepositoryBackedStorage;
}

/**
 * The core's storage contract over seed-shaped repositories. Only `clientRepository` is required;
 * a missing token or auth code repository simply turns its mirroring off.
 * @example
 * ```ts
 * const storage = storageFromRepositories(
 *   { clientRepository, tokenRepository, authCodeRepository, scopeRepository, userRepository },
 *   { inner: createSqliteStorage({ filename: './portcullis.db' }) },
 * );
 * ```
 */
export function storageFromRepositories(repositories: Repositories, options: RepositoryStorageOptions = {}): RepositoryStorage {
  if (repositories === null || typeof repositories !== 'object' || typeof repositories.clientRepository?.getByIdentifier !== 'function') {
    throw new TypeError('storageFromRepositories: a clientRepository with getByIdentifier is required');
  }
  return new RepositoryBackedStorage(repositories, options);
}

const HASH_LIKE = /^(\$(2[abxy]?|argon2(id|i|d)|scrypt|pbkdf2[-\w]*|[156])\$|sha256\$|pbkdf2_|bcrypt\$|scrypt:)/i;
const CLAIM_NAMES = SUPPORTED_CLAIMS.filter((c) => !['sub', 'iss', 'auth_time', 'acr', 'amr', 'sid'].includes(c));
type RepoVerdict = 'live' | 'revoked' | 'unknown';

class RepositoryBackedStorage implements RepositoryStorage {
  readonly name: string;
  readonly repositories: Readonly<Repositories>;
  readonly inner: Storage;
  readonly #options: RepositoryStorageOptions;
  readonly #logger: Logger;
  readonly #mirror: boolean;
  readonly #warned = new Set<string>();

  constructor(repositories: Repositories, options: RepositoryStorageOptions) {
    this.repositories = Object.freeze({ ...repositories });
    this.inner = options.inner ?? createMemoryStorage();
    this.name = `repositories+${this.inner.name}`;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#mirror = options.mirror !== false;
  }

  // ---------------------------------------------------------------------------------------------
  // clients

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const stored = await this.inner.getClient(clientId);
    if (stored !== undefined) return stored;
    const entity = await this.#repoClient(clientId);
    return entity === undefined ? undefined : this.#clientRecord(entity);
  }

  upsertClient(client: ClientRecord): Promise<void> {
    return this.inner.upsertClient(client);
  }

  deleteClient(clientId: string): Promise<boolean> {
    return this.inner.deleteClient(clientId);
  }

  /** Clients of the inner store only: the client repository cannot list. */
  listClients(): Promise<ClientRecord[]> {
    return this.inner.listClients();
  }

  async clientEntity(clientId: string): Promise<OAuthClient | undefined> {
    const entity = await this.#repoClient(clientId);
    if (entity !== undefined) return entity;
    const stored = await this.inner.getClient(clientId);
    if (stored === undefined) return undefined;
    return {
      id: stored.client_id,
      name: stored.client_name ?? stored.client_id,
      redirectUris: [...stored.redirect_uris],
      allowedGrants: [...stored.grant_types],
      scopes: (stored.scope ?? '').split(' ').filter((s) => s !== '').map((name) => ({ name })),
    };
  }

  async #repoClient(clientId: string): Promise<OAuthClient | undefined> {
    let entity: OAuthClient | null | undefined;
    try {
      entity = await this.repositories.clientRepository.getByIdentifier(clientId);
    } catch (err) {
      // The seed contract throws for an unknown client. An outage must say so, not look like "unknown".
      if (err instanceof StorageUnavailableError) throw err;
      return undefined;
    }
    // A repository that matches loosely (case-insensitive column…) must not hand over another client.
    if (entity === null || entity === undefined || String(entity.id) !== clientId) return undefined;
    return entity;
  }

  #clientRecord(c: OAuthClient): ClientRecord {
    const clientId = String(c.id);
    const grants = [...new Set((c.allowedGrants ?? []).filter((g): g is string => typeof g === 'string' && g !== 'implicit'))];
    const secret = typeof c.secret === 'string' && c.secret !== '' ? c.secret : undefined;
    const method = this.#options.authMethod?.(c) ?? (secret !== undefined ? 'client_secret_basic' : 'none');
    const record: ClientRecord = {
      client_id: clientId,
      redirect_uris: [...(c.redirectUris ?? [])],
      grant_types: grants,
      response_types: grants.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: method,
      // The client's allowed scopes, enforced by the core (the seed left this to `finalize`).
      scope: (c.scopes ?? []).map((s) => s.name).filter((n) => typeof n === 'string' && n !== '').join(' '),
      created_at: 0,
      updated_at: 0,
    };
    if (typeof c.name === 'string' && c.name !== '') record.client_name = c.name;
    if (secret !== undefined) {
      const hash = this.#secretHash(clientId, secret);
      if (hash !== undefined) record.client_secret_hash = hash;
    }
    return record;
  }

  #secretHash(clientId: string, secret: string): string | undefined {
    if (this.#options.clientSecrets === 'portcullis-hash') {
      if (secret.startsWith('sha256$')) return secret;
      this.#warnOnce(`secret:${clientId}`, { client_id: clientId }, 'client secret is not a Portcullis hash (sha256$…): the client cannot authenticate with it');
      return undefined;
    }
    if (HASH_LIKE.test(secret)) {
      this.#warnOnce(`secret:${clientId}`, { client_id: clientId }, 'client secret looks like a password hash, not a plain secret: refused (re-issue the secret or use clientSecrets: "portcullis-hash")');
      return undefined;
    }
    return hashClientSecret(secret);
  }

  #warnOnce(key: string, obj: object, msg: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#logger.warn({ event: 'repositories.config', ...obj }, msg);
  }

  // ---------------------------------------------------------------------------------------------
  // users

  async getUser(id: string): Promise<UserRecord | undefined> {
    const stored = await this.inner.getUser(id);
    if (stored !== undefined) return stored;
    const entity = await this.#repoUser(id);
    // By id: the repository's user must be this id.
    return entity === undefined || String(entity.id) !== id ? undefined : this.#userRecord(entity);
  }

  async getUserByUsername(username: string): Promise<UserRecord | undefined> {
    const stored = await this.inner.getUserByUsername(username);
    if (stored !== undefined) return stored;
    const entity = await this.#repoUser(username);
    if (entity === undefined) return undefined;
    const record = this.#userRecord(entity);
    return record.username === username ? record : undefined;
  }

  async upsertUser(user: UserRecord): Promise<void> {
    const other = await this.#repoUser(user.username);
    if (other !== undefined && String(other.id) !== user.id && this.#userRecord(other).username === user.username) {
      throw new Error(`username ${JSON.stringify(user.username)} belongs to another user (in the user repository)`);
    }
    return this.inner.upsertUser(user);
  }

  deleteUser(id: string): Promise<boolean> {
    return this.inner.deleteUser(id);
  }

  /** Users of the inner store only: the user repository cannot list. */
  listUsers(): Promise<UserRecord[]> {
    return this.inner.listUsers();
  }

  async #repoUser(identifier: string): Promise<OAuthUser | undefined> {
    const repo = this.repositories.userRepository;
    if (repo === undefined) return undefined;
    try {
      return (await repo.getUserByCredentials(identifier)) ?? undefined;
    } catch (err) {
      if (err instanceof StorageUnavailableError) throw err;
      return undefined;
    }
  }

  #userRecord(u: OAuthUser): UserRecord {
    const fields = u as unknown as Record<string, unknown>;
    const username = this.#options.username?.(u) ?? (typeof fields.username === 'string' ? fields.username : typeof fields.email === 'string' ? fields.email : String(u.id));
    let claims: Record<string, unknown>;
    if (this.#options.userClaims !== undefined) claims = { ...this.#options.userClaims(u) };
    else {
      claims = {};
      for (const name of CLAIM_NAMES) if (fields[name] !== undefined && fields[name] !== null) claims[name] = fields[name];
    }
    return { id: String(u.id), username, claims, created_at: 0, updated_at: 0 };
  }

  async #userEntity(id: string): Promise<OAuthUser> {
    return (await this.#repoUser(id)) ?? { id };
  }

  // ---------------------------------------------------------------------------------------------
  // grants: inner store only

  createGrant(grant: GrantRecord): Promise<void> {
    return this.inner.createGrant(grant);
  }

  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.inner.getGrant(id);
  }

  async revokeGrant(grantId: string, now: number): Promise<boolean> {
    const revoked = await this.inner.revokeGrant(grantId, now);
    const repo = this.repositories.tokenRepository;
    if (revoked && this.#mirror && repo?.revokeDescendantsOf !== undefined) {
      await this.#quietly('revokeDescendantsOf', () => repo.revokeDescendantsOf!(grantId));
    }
    return revoked;
  }

  // ---------------------------------------------------------------------------------------------
  // artifacts

  async saveArtifact(record: ArtifactRecord): Promise<void> {
    await this.inner.saveArtifact(record);
    if (this.#mirrored(record.kind)) await this.#mirrorSave(record);
  }

  async findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined> {
    const record = await this.inner.findArtifact(kind, id, now);
    if (record === undefined || !this.#mirrored(kind) || record.consumed_at !== undefined || record.revoked_at !== undefined) return record;
    return this.#honourRepository(record, now);
  }

  async consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult> {
    const result = await this.inner.consumeArtifact(kind, id, now);
    if (result.status !== 'consumed' || !this.#mirrored(kind)) return result;
    const record = result.record.revoked_at === undefined ? await this.#honourRepository(result.record, now) : result.record;
    // The seed marks a used code (and a rotated refresh token) revoked.
    await this.#mirrorRevoke(kind, id);
    return { status: 'consumed', record };
  }

  async revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean> {
    const revoked = await this.inner.revokeArtifact(kind, id, now);
    if (revoked && this.#mirrored(kind)) await this.#mirrorRevoke(kind, id);
    return revoked;
  }

  updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean> {
    return this.inner.updateArtifactData(kind, id, data);
  }

  #mirrored(kind: ArtifactKind): boolean {
    if (!this.#mirror) return false;
    if (kind === 'authorization_code') return this.repositories.authCodeRepository !== undefined;
    if (kind === 'refresh_token' || kind === 'access_token') return this.repositories.tokenRepository !== undefined;
    return false;
  }

  /** The record, revoked if the app revoked (or deleted) it in its own tables. */
  async #honourRepository(record: ArtifactRecord, now: number): Promise<ArtifactRecord> {
    const verdict = await this.#repoVerdict(record.kind, record.id);
    if (verdict === 'live') return record;
    if (verdict === 'revoked') await this.inner.revokeArtifact(record.kind, record.id, now);
    // 'unknown' (the repository threw): unusable for this call, not revoked for good.
    return { ...record, revoked_at: now };
  }

  async #repoVerdict(kind: ArtifactKind, id: string): Promise<RepoVerdict> {
    try {
      if (kind === 'authorization_code') {
        return (await this.repositories.authCodeRepository!.isRevoked(id)) ? 'revoked' : 'live';
      }
      const repo = this.repositories.tokenRepository!;
      if (kind === 'refresh_token') {
        const row = await repo.getByRefreshToken(id);
        if (row === null || row === undefined) return 'revoked';
        return (await repo.isRefreshTokenRevoked(row)) ? 'revoked' : 'live';
      }
      if (repo.getByAccessToken === undefined) return 'live';
      const row = await repo.getByAccessToken(id);
      if (row === null || row === undefined) return 'revoked';
      return (await repo.isAccessTokenRevoked?.(row)) === true ? 'revoked' : 'live';
    } catch (err) {
      if (err instanceof StorageUnavailableError) throw err;
      this.#logger.warn({ event: 'repositories.lookup_failed', kind, error: err instanceof Error ? err.message : String(err) }, 'repository lookup failed: artifact refused for this request');
      return 'unknown';
    }
  }

  async #mirrorSave(record: ArtifactRecord): Promise<void> {
    const client = (await this.clientEntity(record.client_id)) ?? { id: record.client_id, name: record.client_id, redirectUris: [], allowedGrants: [], scopes: [] };
    const user = record.user_id === undefined ? undefined : await this.#userEntity(record.user_id);
    const scopes: OAuthScope[] = record.scope.split(' ').filter((s) => s !== '').map((name) => ({ name }));
    const data = record.data ?? {};
    const dead = record.consumed_at !== undefined || record.revoked_at !== undefined;
    if (record.kind === 'authorization_code') {
      const repo = this.repositories.authCodeRepository!;
      const code = await repo.issueAuthCode(client, user, scopes);
      // The row's code is the SHA-256 of the code: the code itself never reaches storage.
      code.code = record.id;
      code.expiresAt = new Date(record.expires_at * 1000);
      code.client = client;
      code.scopes = scopes;
      if (user !== undefined) code.user = user;
      code.redirectUri = typeof data.redirect_uri === 'string' ? data.redirect_uri : null;
      code.codeChallenge = typeof data.code_challenge === 'string' ? data.code_challenge : null;
      code.codeChallengeMethod = data.code_challenge_method === 'S256' || data.code_challenge_method === 'plain' ? data.code_challenge_method : null;
      await repo.persist(code);
      if (dead) await repo.revoke(record.id);
      return;
    }
    const repo = this.repositories.tokenRepository!;
    const token: OAuthToken = await repo.issueToken(client, scopes, user ?? null);
    token.client = client;
    token.scopes = scopes;
    if (user !== undefined) token.user = user;
    if (record.grant_id !== undefined) token.originatingAuthCodeId = record.grant_id;
    if (record.kind === 'access_token') {
      token.accessToken = record.id;
      token.accessTokenExpiresAt = new Date(record.expires_at * 1000);
    } else {
      // A refresh-token row: its access-token columns name no token (already expired).
      token.accessTokenExpiresAt = new Date(record.created_at * 1000);
      token.refreshToken = record.id;
      token.refreshTokenExpiresAt = new Date(record.expires_at * 1000);
    }
    await repo.persist(token);
    if (dead) await repo.revoke(token);
  }

  /** Mirror a revocation (the inner store already has it, and stays authoritative). */
  async #mirrorRevoke(kind: ArtifactKind, id: string): Promise<void> {
    await this.#quietly(`revoke ${kind}`, async () => {
      if (kind === 'authorization_code') return this.repositories.authCodeRepository!.revoke(id);
      const repo = this.repositories.tokenRepository!;
      const row = kind === 'refresh_token' ? await repo.getByRefreshToken(id) : await repo.getByAccessToken?.(id);
      if (row !== null && row !== undefined) await repo.revoke(row);
    });
  }

  async #quietly(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#logger.warn({ event: 'repositories.mirror_failed', what, error: err instanceof Error ? err.message : String(err) }, 'mirroring into the repository failed (the inner store has the change)');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // everything else: inner store only

  recordOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.inner.recordOnce(key, expiresAt, now);
  }

  hasRecord(key: string, now: number): Promise<boolean> {
    return this.inner.hasRecord(key, now);
  }

  hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult> {
    return this.inner.hitRateLimit(key, windowSeconds, now);
  }

  resetRateLimit(key: string): Promise<void> {
    return this.inner.resetRateLimit(key);
  }

  listKeys(): Promise<KeyRecord[]> {
    return this.inner.listKeys();
  }

  saveKey(key: KeyRecord): Promise<void> {
    return this.inner.saveKey(key);
  }

  updateKey(kid: string, fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>): Promise<boolean> {
    return this.inner.updateKey(kid, fields);
  }

  deleteKey(kid: string): Promise<boolean> {
    return this.inner.deleteKey(kid);
  }

  /** Expired rows of the inner store. Mirrored rows in the app's tables are the app's to clean up. */
  sweepExpired(now: number, limit?: number): Promise<number> {
    return this.inner.sweepExpired(now, limit);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
