/**
 * What the server and the management commands share: opening the configured storage, creating the
 * core with the same options (so validation is the same), and applying the config's clients and users.
 */
import type { ClientMetadataInput } from '../clients/metadata.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PortcullisOptions } from '../core/options.js';
import type { Portcullis } from '../portcullis-types.js';
import { createPortcullis } from '../provider.js';
import type { Storage } from '../storage/contract.js';
import { createMemoryStorage } from '../storage/memory.js';
import { createPostgresStorage, type PostgresStorageOptions } from '../storage/postgres.js';
import { createRedisPostgresStorage } from '../storage/redis.js';
import { createSqliteStorage } from '../storage/sqlite.js';
import { defaultIssuer, type DatabaseConfig, type RedisConfig, type ResolvedConfig } from './config.js';

/**
 * Open the storage named by DATABASE_URL (and REDIS_URL): memory, SQLite, PostgreSQL, or
 * PostgreSQL + Redis. PostgreSQL applies its migrations before this resolves.
 * @throws StorageUnavailableError when PostgreSQL or Redis cannot be reached.
 */
export async function openStorage(database: DatabaseConfig, redis?: RedisConfig): Promise<Storage> {
  switch (database.kind) {
    case 'memory':
      return createMemoryStorage();
    case 'sqlite':
      return createSqliteStorage(database.cacheSizeMiB === undefined ? { filename: database.filename } : { filename: database.filename, cacheSizeMiB: database.cacheSizeMiB });
    case 'postgres': {
      const postgres: PostgresStorageOptions = { connectionString: database.connectionString };
      if (database.schema !== undefined) postgres.schema = database.schema;
      if (redis === undefined) return createPostgresStorage(postgres);
      return createRedisPostgresStorage({
        postgres,
        redis: { url: redis.connectionUrl, ...(redis.prefix !== undefined ? { prefix: redis.prefix } : {}) },
      });
    }
  }
}

/** A short description for banners and logs (never a password: URLs are shown redacted). */
export function describeStorage(database: DatabaseConfig, redis?: RedisConfig): string {
  if (database.kind === 'memory') return 'memory (everything is lost when the process exits)';
  if (database.kind === 'postgres') {
    const base = `postgres ${database.url}`;
    return redis === undefined ? base : `${base} + redis ${redis.url} (codes, sessions, replay records, rate limits)`;
  }
  return database.filename === ':memory:' ? 'sqlite in memory (everything is lost when the process exits)' : `sqlite ${database.filename}`;
}

/** The library options for a resolved config. */
export function portcullisOptions(config: ResolvedConfig, storage: Storage, logger: Logger, issuer: string): PortcullisOptions {
  const options: PortcullisOptions = { issuer, storage, logger };
  if (config.keyEncryptionSecret !== undefined) options.keyEncryptionSecret = config.keyEncryptionSecret;
  if (config.signingAlgorithm !== undefined) options.signingAlgorithm = config.signingAlgorithm;
  if (config.accessTokenFormat !== undefined) options.accessTokenFormat = config.accessTokenFormat;
  if (config.ttl !== undefined) options.ttl = config.ttl;
  if (config.scopes !== undefined) options.scopes = config.scopes;
  if (config.grants !== undefined) options.grants = config.grants;
  if (config.routes !== undefined) options.routes = config.routes;
  if (config.resources !== undefined) options.resources = config.resources;
  if (config.tokenExchange !== undefined) options.tokenExchange = config.tokenExchange;
  if (config.jwtBearer !== undefined) options.jwtBearer = config.jwtBearer;
  return options;
}

/**
 * Open the storage and create the core over it. On failure the storage is closed again.
 * Without `issuer`, the configured one (or the default for the configured host and port) is used.
 */
export async function openPortcullis(config: ResolvedConfig, logger: Logger, issuer?: string): Promise<Portcullis> {
  const storage = await openStorage(config.database, config.redis);
  try {
    return await createPortcullis(portcullisOptions(config, storage, logger, issuer ?? config.issuer ?? defaultIssuer(config.host, config.port)));
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
}

export interface GeneratedSecret {
  client_id: string;
  client_secret: string;
}

/**
 * Upsert the config's clients and users. A confidential config client without `client_secret`
 * gets a generated secret the first time only (returned, to be shown once); later starts keep
 * the stored hash.
 */
export async function applyConfig(portcullis: Portcullis, config: ResolvedConfig): Promise<GeneratedSecret[]> {
  const generated: GeneratedSecret[] = [];
  for (const [i, client] of config.clients.entries()) {
    try {
      const existing = await portcullis.clients.get(client.client_id);
      const result = await portcullis.clients.upsert(client as ClientMetadataInput, { generateSecret: existing === undefined });
      if (result.generatedSecret !== undefined) generated.push({ client_id: client.client_id, client_secret: result.generatedSecret });
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`config: clients[${i}]: ${err.message}`);
      throw err;
    }
  }
  for (const [i, user] of config.users.entries()) {
    try {
      await portcullis.users.upsert(user);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`config: users[${i}]: ${err.message}`);
      throw err;
    }
  }
  return generated;
}

export const DEMO_CLIENT_ID = 'demo-client';

/** The demo client created on a first start without a config file: client_credentials + refresh_token. */
export async function createDemoClient(portcullis: Portcullis): Promise<GeneratedSecret> {
  const grantTypes = ['client_credentials', 'refresh_token'].filter((g) => portcullis.grantTypes.includes(g));
  const result = await portcullis.clients.upsert(
    {
      client_id: DEMO_CLIENT_ID,
      client_name: 'Demo client (created on first start; remove it with: portcullis clients remove demo-client)',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: grantTypes,
      scope: 'api:read api:write',
    },
    { generateSecret: true },
  );
  if (result.generatedSecret === undefined) throw new Error('the demo client was created without a secret');
  return { client_id: DEMO_CLIENT_ID, client_secret: result.generatedSecret };
}
