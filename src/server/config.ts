/**
 * Configuration of the ready-to-run server: a JSON file (validated with zod, strict) plus
 * environment variables, which win over the file.
 *
 * File: `PORTCULLIS_CONFIG`, else `./portcullis.config.json` when present, else none.
 * Env: `PORT` (default 3000), `HOST` (default 127.0.0.1), `PORTCULLIS_ISSUER`, `DATABASE_URL`
 * (default `sqlite:./data/portcullis.db`; `postgres://…` for PostgreSQL), `REDIS_URL` (optional,
 * with PostgreSQL: short-lived state in Redis), `PORTCULLIS_KEY_SECRET`, `PORTCULLIS_TRUST_PROXY`,
 * `PORTCULLIS_COALESCE_WRITES`, `PORTCULLIS_KEY_RELOAD_SECONDS`, `PORTCULLIS_SQLITE_CACHE_MIB`, `LOG_LEVEL`.
 *
 * Every error is a {@link ConfigError} whose message names the field, e.g.
 * `config: clients[1]: client "web": field "redirect_uris" has "http://x/cb": …`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { normalizeClientMetadata, type ClientMetadataInput } from '../clients/metadata.js';
import { ConfigError } from '../core/errors.js';
import { isLoopbackHost } from '../core/loopback.js';
import { DEFAULT_ROUTES, type GrantSwitches, type ResourceOptions, type RouteOptions, type TtlOptions } from '../core/options.js';
import { Sealer } from '../core/seal.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../keys/jwt-signer.js';
import { ASYMMETRIC_ALGORITHMS, type TrustedIssuerOptions } from '../grants/trusted-issuers.js';
import type { TokenExchangeTrustedIssuer } from '../grants/token-exchange.js';
import { resourceIndicatorProblem } from '../tokens/resource-indicators.js';
import type { UserInput } from '../users/registry.js';
import { parseLogLevel, type LogLevel } from './logger.js';

export const DEFAULT_CONFIG_FILE = 'portcullis.config.json';
export const DEFAULT_DATABASE_URL = 'sqlite:./data/portcullis.db';
export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = '127.0.0.1';

/** Where the server keeps its state. */
export type DatabaseConfig =
  | {
      kind: 'sqlite';
      /** Absolute path, or `:memory:`. */
      filename: string;
      url: string;
      /** PORTCULLIS_SQLITE_CACHE_MIB: the page cache in MiB (default: the storage's, 8). */
      cacheSizeMiB?: number;
    }
  | { kind: 'memory'; url: string }
  | {
      kind: 'postgres';
      /** What `pg` connects with: DATABASE_URL without the `schema` parameter (may hold a password). */
      connectionString: string;
      /** The `schema` parameter of DATABASE_URL; default `public`. */
      schema?: string;
      /** DATABASE_URL with the password replaced by `***`: safe for banners and logs. */
      url: string;
    };

/** REDIS_URL: short-lived state (codes, sessions, replay records, rate limits) in Redis. */
export interface RedisConfig {
  /** What the client connects with: REDIS_URL without the `prefix` parameter (may hold a password). */
  connectionUrl: string;
  /** The `prefix` parameter of REDIS_URL (every key starts with it); default `portcullis:`. */
  prefix?: string;
  /** REDIS_URL with the password replaced by `***`. */
  url: string;
}

export const DEFAULT_KEY_RELOAD_SECONDS = 60;

/** The configuration after the file and the environment have been merged and validated. */
export interface ResolvedConfig {
  /** Absolute path of the config file, when one was read. */
  configFile?: string;
  /**
   * The issuer. `undefined` only when it was not configured and the port is 0: the server then
   * computes it from the port it actually listens on.
   */
  issuer: string | undefined;
  issuerSource: 'config' | 'env' | 'default';
  port: number;
  host: string;
  database: DatabaseConfig;
  /** Set by REDIS_URL (only with a PostgreSQL DATABASE_URL). */
  redis?: RedisConfig;
  /** Seconds between reloads of the signing keys from storage (PORTCULLIS_KEY_RELOAD_SECONDS, default 60). */
  keyReloadSeconds: number;
  keyEncryptionSecret?: string;
  logLevel: LogLevel;
  trustProxy: boolean;
  /** Write the responses of one event-loop turn together (PORTCULLIS_COALESCE_WRITES, default true; see toNodeListener). */
  coalesceWrites: boolean;
  clients: ClientMetadataInput[];
  users: UserInput[];
  scopes?: string[] | Record<string, string>;
  ttl?: Partial<TtlOptions>;
  accessTokenFormat?: 'jwt' | 'opaque';
  grants?: GrantSwitches;
  routes?: Partial<RouteOptions>;
  signingAlgorithm?: SigningAlgorithm;
  /** Per-resource settings (RFC 8707), keyed by resource URI. */
  resources?: Record<string, ResourceOptions>;
  /** Token exchange (RFC 8693): trusted JWT issuers (the policy is library-only). */
  tokenExchange?: { trustedIssuers?: TokenExchangeTrustedIssuer[] };
  /** JWT bearer grant (RFC 7523): trusted assertion issuers (mapSubject is library-only). */
  jwtBearer?: { trustedIssuers: TrustedIssuerOptions[] };
}

/** The config file as written (after validation). */
export type ConfigFile = z.infer<typeof configFileSchema>;

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** Paths the server answers itself, outside the core's routes. */
export const RESERVED_PATHS = ['/healthz', '/readyz'] as const;

const issuerSchema = z.string({ error: 'must be a string (the issuer URL)' }).superRefine((value, ctx) => {
  const problem = issuerProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const positiveSeconds = z
  .number({ error: 'must be a positive integer (seconds)' })
  .int({ error: 'must be a positive integer (seconds)' })
  .positive({ error: 'must be a positive integer (seconds)' });

const scopeName = z
  .string({ error: 'must be a string' })
  .regex(SCOPE_TOKEN, { error: 'must be a scope token: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)' });

const routePath = z
  .string({ error: 'must be a string' })
  .regex(/^\/[^\s?#]*$/, { error: 'must start with "/" and contain no spaces, "?" or "#"' });

const portSchema = z
  .number({ error: 'must be an integer from 0 to 65535' })
  .int({ error: 'must be an integer from 0 to 65535' })
  .min(0, { error: 'must be an integer from 0 to 65535' })
  .max(65535, { error: 'must be an integer from 0 to 65535' });

const clientSchema = z.looseObject(
  {
    client_id: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }),
    client_secret: z.string({ error: 'must be a string' }).optional(),
  },
  { error: 'must be an object of RFC 7591 client metadata' },
);

const userSchema = z.strictObject(
  {
    username: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }),
    password: z.string({ error: 'must be a string' }).optional(),
    password_hash: z.string({ error: 'must be a string' }).optional(),
    id: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).optional(),
    claims: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
  },
  { error: 'must be an object { username, password?, password_hash?, id?, claims? }' },
);

const routeKeys = Object.keys(DEFAULT_ROUTES) as (keyof RouteOptions)[];

const routesSchema = z.strictObject(
  Object.fromEntries(routeKeys.map((key) => [key, routePath.optional()])) as Record<keyof RouteOptions, z.ZodOptional<typeof routePath>>,
  { error: 'must be an object of endpoint paths' },
);

const signingAlgorithmSchema = z.enum(SIGNING_ALGORITHMS as [SigningAlgorithm, ...SigningAlgorithm[]], {
  error: `must be one of ${SIGNING_ALGORITHMS.join(', ')}`,
});

const resourceSchema = z.strictObject(
  {
    accessTokenFormat: z.enum(['jwt', 'opaque'], { error: 'must be "jwt" or "opaque"' }).optional(),
    accessTokenTtl: positiveSeconds.optional(),
    signingAlgorithm: signingAlgorithmSchema.optional(),
    scopes: z.array(scopeName, { error: 'must be an array of scope names' }).optional(),
  },
  { error: 'must be an object { accessTokenFormat?, accessTokenTtl?, signingAlgorithm?, scopes? }' },
);

const resourcesSchema = z
  .record(z.string(), resourceSchema, { error: 'must be an object of resource URI → settings' })
  .superRefine((value, ctx) => {
    for (const uri of Object.keys(value)) {
      const problem = resourceIndicatorProblem(uri);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [uri], message: `the resource URI ${problem}` });
    }
  });

/** A trusted JWT issuer (token exchange, JWT bearer): its keys inline or by URL; the core checks the rest at start. */
const trustedIssuerShape = {
  issuer: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }),
  jwks: z
    .looseObject({ keys: z.array(z.record(z.string(), z.unknown()), { error: 'must be an array of JWKs' }) }, { error: 'must be a JWK Set { keys: [...] }' })
    .optional(),
  jwksUri: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).optional(),
  algorithms: z
    .array(z.enum(ASYMMETRIC_ALGORITHMS as [string, ...string[]], { error: `must be one of ${ASYMMETRIC_ALGORITHMS.join(', ')} (asymmetric only)` }))
    .min(1, { error: 'must not be empty' })
    .optional(),
};

function oneKeySet(value: { jwks?: unknown; jwksUri?: unknown }, ctx: z.RefinementCtx): void {
  if ((value.jwks === undefined) === (value.jwksUri === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of "jwks" and "jwksUri"' });
}

const trustedIssuerSchema = z
  .strictObject(trustedIssuerShape, { error: 'must be an object { issuer, jwks | jwksUri, algorithms? }' })
  .superRefine(oneKeySet);

const exchangeIssuerSchema = z
  .strictObject(
    { ...trustedIssuerShape, audience: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).optional() },
    { error: 'must be an object { issuer, jwks | jwksUri, algorithms?, audience? }' },
  )
  .superRefine(oneKeySet);

const configFileSchema = z.strictObject(
  {
    $schema: z.string().optional(),
    issuer: issuerSchema.optional(),
    clients: z.array(clientSchema, { error: 'must be an array of client metadata objects' }).optional(),
    users: z.array(userSchema, { error: 'must be an array of user objects' }).optional(),
    scopes: z
      .union([z.array(scopeName), z.record(scopeName, z.string({ error: 'must be a string (the description)' }))], {
        error: 'must be an array of scope names or an object of name → description',
      })
      .optional(),
    ttl: z
      .strictObject(
        {
          accessToken: positiveSeconds.optional(),
          refreshToken: positiveSeconds.optional(),
          grant: positiveSeconds.optional(),
          authorizationCode: positiveSeconds.optional(),
          idToken: positiveSeconds.optional(),
          deviceCode: positiveSeconds.optional(),
        },
        { error: 'must be an object of lifetimes in seconds' },
      )
      .optional(),
    accessTokenFormat: z.enum(['jwt', 'opaque'], { error: 'must be "jwt" or "opaque"' }).optional(),
    grants: z
      .strictObject(
        {
          password: z.boolean({ error: 'must be true or false' }).optional(),
          authorization_code: z.boolean({ error: 'must be true or false' }).optional(),
          device_code: z.boolean({ error: 'must be true or false' }).optional(),
          client_credentials: z.boolean({ error: 'must be true or false' }).optional(),
          refresh_token: z.boolean({ error: 'must be true or false' }).optional(),
          token_exchange: z.boolean({ error: 'must be true or false' }).optional(),
          jwt_bearer: z.boolean({ error: 'must be true or false' }).optional(),
        },
        { error: 'must be an object { authorization_code?, device_code?, password?, client_credentials?, refresh_token?, token_exchange?, jwt_bearer? }' },
      )
      .optional(),
    routes: routesSchema.optional(),
    signingAlgorithm: signingAlgorithmSchema.optional(),
    resources: resourcesSchema.optional(),
    tokenExchange: z
      .strictObject({ trustedIssuers: z.array(exchangeIssuerSchema, { error: 'must be an array of trusted issuers' }).optional() }, { error: 'must be an object { trustedIssuers? }' })
      .optional(),
    jwtBearer: z
      .strictObject({ trustedIssuers: z.array(trustedIssuerSchema, { error: 'must be an array of trusted issuers' }) }, { error: 'must be an object { trustedIssuers }' })
      .optional(),
    keyEncryptionSecret: z.string({ error: 'must be a string' }).min(16, { error: 'must be at least 16 characters' }).optional(),
    port: portSchema.optional(),
    host: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).optional(),
  },
  { error: 'the config file must contain a JSON object' },
);

/**
 * Read the config file and the environment, validate them and merge them (env wins).
 * @throws ConfigError naming the field.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): ResolvedConfig {
  const { file, path: configFile } = readConfigFile(env, cwd);

  const port = env.PORT !== undefined && env.PORT.trim() !== '' ? parsePort(env.PORT) : file.port ?? DEFAULT_PORT;
  const host = nonEmpty(env.HOST) ?? file.host ?? DEFAULT_HOST;

  let issuer: string | undefined;
  let issuerSource: ResolvedConfig['issuerSource'];
  const envIssuer = nonEmpty(env.PORTCULLIS_ISSUER);
  if (envIssuer !== undefined) {
    const problem = issuerProblem(envIssuer);
    if (problem !== undefined) throw new ConfigError(`PORTCULLIS_ISSUER: ${problem}`);
    issuer = envIssuer;
    issuerSource = 'env';
  } else if (file.issuer !== undefined) {
    issuer = file.issuer;
    issuerSource = 'config';
  } else {
    issuerSource = 'default';
    issuer = port === 0 ? undefined : defaultIssuer(host, port);
    if (!isLoopbackHost(host) && !isWildcardHost(host)) {
      throw new ConfigError(
        `issuer: HOST ${host} is not a loopback address, so the issuer cannot default to a plain http URL; ` +
          'set PORTCULLIS_ISSUER (or "issuer" in the config file) to the public https URL of this server',
      );
    }
  }

  const envSecret = env.PORTCULLIS_KEY_SECRET === '' ? undefined : env.PORTCULLIS_KEY_SECRET;
  if (envSecret !== undefined && envSecret.length < 16) {
    throw new ConfigError('PORTCULLIS_KEY_SECRET: must be at least 16 characters');
  }
  const keyEncryptionSecret = envSecret ?? file.keyEncryptionSecret;

  const database = parseDatabaseUrl(nonEmpty(env.DATABASE_URL) ?? DEFAULT_DATABASE_URL, cwd);
  const cacheSizeMiB = parseCacheMiB(env.PORTCULLIS_SQLITE_CACHE_MIB);
  if (cacheSizeMiB !== undefined) {
    if (database.kind !== 'sqlite') throw new ConfigError('PORTCULLIS_SQLITE_CACHE_MIB: only for a sqlite: DATABASE_URL (unset it, or use SQLite)');
    database.cacheSizeMiB = cacheSizeMiB;
  }
  const redisUrl = nonEmpty(env.REDIS_URL);
  const redis = redisUrl === undefined ? undefined : parseRedisUrl(redisUrl);
  if (redis !== undefined && database.kind !== 'postgres') {
    throw new ConfigError('REDIS_URL: Redis holds only short-lived state next to PostgreSQL; set DATABASE_URL=postgres://… too (or unset REDIS_URL)');
  }

  const config: ResolvedConfig = {
    issuer,
    issuerSource,
    port,
    host,
    database,
    keyReloadSeconds: parseKeyReloadSeconds(env.PORTCULLIS_KEY_RELOAD_SECONDS),
    logLevel: parseLogLevel(env.LOG_LEVEL),
    trustProxy: parseBoolean(env.PORTCULLIS_TRUST_PROXY, 'PORTCULLIS_TRUST_PROXY') ?? false,
    coalesceWrites: parseBoolean(env.PORTCULLIS_COALESCE_WRITES, 'PORTCULLIS_COALESCE_WRITES') ?? true,
    clients: (file.clients ?? []) as ClientMetadataInput[],
    users: (file.users ?? []) as UserInput[],
  };
  if (configFile !== undefined) config.configFile = configFile;
  if (redis !== undefined) config.redis = redis;
  if (keyEncryptionSecret !== undefined) config.keyEncryptionSecret = keyEncryptionSecret;
  if (file.scopes !== undefined) config.scopes = file.scopes;
  if (file.ttl !== undefined) config.ttl = file.ttl;
  if (file.accessTokenFormat !== undefined) config.accessTokenFormat = file.accessTokenFormat;
  if (file.grants !== undefined) config.grants = file.grants;
  if (file.routes !== undefined) config.routes = file.routes;
  if (file.signingAlgorithm !== undefined) config.signingAlgorithm = file.signingAlgorithm;
  if (file.resources !== undefined) config.resources = file.resources;
  if (file.tokenExchange !== undefined) config.tokenExchange = file.tokenExchange;
  if (file.jwtBearer !== undefined) config.jwtBearer = file.jwtBearer;

  checkRoutes(config.routes);
  checkUsers(config.users);
  checkClients(config);
  return config;
}

/** The issuer used when none is configured: `http://127.0.0.1:<port>` (or the loopback HOST given). */
export function defaultIssuer(host: string, port: number): string {
  const h = host.toLowerCase();
  if (h === 'localhost') return `http://localhost:${port}`;
  if (h === '::1' || h === '[::1]') return `http://[::1]:${port}`;
  if (/^127(?:\.\d{1,3}){3}$/.test(h)) return `http://${h}:${port}`;
  return `http://127.0.0.1:${port}`;
}

export { isLoopbackHost };

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/**
 * `sqlite:<path>` (relative to cwd; `sqlite:///abs` also works), `sqlite::memory:`, `memory:`, or
 * `postgres://` / `postgresql://` URLs (libpq syntax; the extra parameter `schema=<name>` picks the
 * schema holding the tables). Error messages never echo the URL (it may hold a password).
 */
export function parseDatabaseUrl(url: string, cwd: string = process.cwd()): DatabaseConfig {
  const value = url.trim();
  if (value === 'memory:' || value === 'memory://') return { kind: 'memory', url: value };
  if (/^postgres(?:ql)?:/i.test(value)) return parsePostgresUrl(value);
  if (value.toLowerCase().startsWith('sqlite:')) {
    let path = value.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new ConfigError('DATABASE_URL: sqlite: needs a file path, e.g. sqlite:./data/portcullis.db or sqlite::memory:');
    if (path === ':memory:') return { kind: 'sqlite', filename: ':memory:', url: value };
    return { kind: 'sqlite', filename: isAbsolute(path) ? path : resolve(cwd, path), url: value };
  }
  // Name only the scheme: the rest of a URL may hold a password.
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(value)?.[0];
  throw new ConfigError(
    `DATABASE_URL: unsupported ${scheme === undefined ? 'value' : `scheme "${scheme}"`}; use postgres://user:password@host:5432/database, sqlite:<path>, sqlite::memory: or memory:`,
  );
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function parsePostgresUrl(value: string): DatabaseConfig {
  // A unix-socket URL (postgres:///db?host=/run/postgresql) parses too: the host is then empty.
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError('DATABASE_URL: not a valid postgres:// URL (expected postgres://user:password@host:5432/database; percent-encode special characters in the password)');
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
    throw new ConfigError('DATABASE_URL: the postgres:// URL names no host (expected postgres://user:password@host:5432/database)');
  }
  if (parsed.pathname === '' || parsed.pathname === '/') {
    throw new ConfigError('DATABASE_URL: the postgres:// URL names no database (expected postgres://user:password@host:5432/database)');
  }
  const schemas = parsed.searchParams.getAll('schema');
  if (schemas.length > 1) throw new ConfigError('DATABASE_URL: give the schema parameter once');
  const schema = schemas[0];
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new ConfigError('DATABASE_URL: schema must be letters, digits and "_" (not starting with a digit), at most 63 characters');
  }
  parsed.searchParams.delete('schema');
  // Hand pg the URL as written unless a parameter of ours had to come out.
  const connectionString = schema === undefined ? value : parsed.href;
  const config: DatabaseConfig = { kind: 'postgres', connectionString, url: redactUrl(value) };
  if (schema !== undefined) config.schema = schema;
  return config;
}

/**
 * REDIS_URL: `redis://[user:password@]host:port[/db]` or `rediss://` (TLS); the extra parameter
 * `prefix=<text>` starts every key (default `portcullis:`).
 */
export function parseRedisUrl(url: string): RedisConfig {
  const value = url.trim();
  if (!/^rediss?:\/\//i.test(value)) {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(value)?.[0];
    throw new ConfigError(`REDIS_URL: unsupported ${scheme === undefined ? 'value' : `scheme "${scheme}"`}; use redis://host:6379 or rediss://host:6380`);
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError('REDIS_URL: not a valid redis:// URL (expected redis://[user:password@]host:6379[/db])');
  }
  if (parsed.hostname === '') throw new ConfigError('REDIS_URL: the redis:// URL names no host');
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d+$/.test(parsed.pathname)) {
    throw new ConfigError('REDIS_URL: the path must be a database number, e.g. redis://host:6379/0');
  }
  const prefixes = parsed.searchParams.getAll('prefix');
  if (prefixes.length > 1) throw new ConfigError('REDIS_URL: give the prefix parameter once');
  const prefix = prefixes[0];
  if (prefix !== undefined && prefix === '') throw new ConfigError('REDIS_URL: prefix must not be empty');
  parsed.searchParams.delete('prefix');
  const config: RedisConfig = { connectionUrl: prefix === undefined ? value : parsed.href, url: redactUrl(value) };
  if (prefix !== undefined) config.prefix = prefix;
  return config;
}

/** The URL with its password replaced by `***` (and a `password` query parameter too). */
export function redactUrl(value: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.password !== '') parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.href;
  } catch {
    return '(unparsable URL)';
  }
}

function parseCacheMiB(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = value.trim();
  const mib = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(mib) || mib < 1 || mib > 65_536) {
    throw new ConfigError(`PORTCULLIS_SQLITE_CACHE_MIB: must be a whole number of MiB from 1 to 65536 (got ${JSON.stringify(value)})`);
  }
  return mib;
}

function parseKeyReloadSeconds(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_KEY_RELOAD_SECONDS;
  const text = value.trim();
  const seconds = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new ConfigError(`PORTCULLIS_KEY_RELOAD_SECONDS: must be a number of seconds above 0 and at most 3600 (got ${JSON.stringify(value)})`);
  }
  return seconds;
}

/** Why a string cannot be an issuer, or undefined when it can (the core checks the scheme rules). */
export function issuerProblem(value: string): string | undefined {
  if (!URL.canParse(value)) return 'must be an absolute URL (e.g. https://auth.example.com)';
  const url = new URL(value);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https URL';
  if (url.search !== '' || value.includes('?')) return 'must not have a query';
  if (url.hash !== '' || value.includes('#')) return 'must not have a fragment';
  if (url.username !== '' || url.password !== '') return 'must not contain user information';
  return undefined;
}

function readConfigFile(env: NodeJS.ProcessEnv, cwd: string): { file: ConfigFile; path?: string } {
  const explicit = nonEmpty(env.PORTCULLIS_CONFIG);
  let path: string;
  if (explicit !== undefined) {
    path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new ConfigError(`PORTCULLIS_CONFIG: ${path} does not exist`);
  } else {
    path = resolve(cwd, DEFAULT_CONFIG_FILE);
    if (!existsSync(path)) return { file: {} };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return { file: parseConfigFile(json), path };
}

/** Validate the parsed JSON of a config file. */
export function parseConfigFile(json: unknown): ConfigFile {
  const result = configFileSchema.safeParse(json);
  if (result.success) return result.data;
  throw new ConfigError(formatIssues(result.error.issues));
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`config: ${formatPath([...issue.path, key])}: unknown field`);
    } else {
      lines.push(`config: ${issue.path.length === 0 ? '(root)' : formatPath(issue.path)}: ${issue.message}`);
    }
  }
  return lines.join('\n');
}

/** `clients[1].redirect_uris` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function checkRoutes(routes: Partial<RouteOptions> | undefined): void {
  if (routes === undefined) return;
  const merged: Record<string, string> = { ...DEFAULT_ROUTES, ...routes };
  const seen = new Map<string, string>();
  for (const [key, path] of Object.entries(merged)) {
    if ((RESERVED_PATHS as readonly string[]).includes(path)) {
      throw new ConfigError(`config: routes.${key}: ${path} is reserved for the server's health checks`);
    }
    const other = seen.get(path);
    if (other !== undefined) {
      const [mine, theirs] = key in routes ? [key, other] : [other, key];
      throw new ConfigError(`config: routes.${mine}: ${path} is also the path of routes.${theirs}`);
    }
    seen.set(path, key);
  }
}

function checkUsers(users: readonly UserInput[]): void {
  const seen = new Map<string, number>();
  users.forEach((user, i) => {
    const first = seen.get(user.username);
    if (first !== undefined) throw new ConfigError(`config: users[${i}].username: "${user.username}" is already users[${first}]`);
    seen.set(user.username, i);
    if (user.password !== undefined && user.password_hash !== undefined) {
      throw new ConfigError(`config: users[${i}]: user "${user.username}": give either "password" or "password_hash", not both`);
    }
    if (user.password !== undefined && user.password.length < 8) {
      throw new ConfigError(`config: users[${i}].password: user "${user.username}": must be at least 8 characters`);
    }
  });
}

/**
 * A first pass of the client registry's own validation (RFC 7591 rules, redirect URIs, secrets),
 * so a bad client is reported before anything starts. Which grant types the server serves is only
 * known to the core: the registry checks that again at start.
 */
function checkClients(config: ResolvedConfig): void {
  const switches = config.grants ?? {};
  const disabled = new Set<string>();
  if (switches.password !== true) disabled.add('password');
  if (switches.client_credentials === false) disabled.add('client_credentials');
  if (switches.refresh_token === false) disabled.add('refresh_token');
  const sealer = config.keyEncryptionSecret !== undefined ? new Sealer(config.keyEncryptionSecret) : undefined;
  const seen = new Map<string, number>();
  config.clients.forEach((client, i) => {
    const first = seen.get(client.client_id);
    if (first !== undefined) throw new ConfigError(`config: clients[${i}].client_id: "${client.client_id}" is already clients[${first}]`);
    seen.set(client.client_id, i);
    const listed = Array.isArray(client.grant_types) ? client.grant_types.filter((g): g is string => typeof g === 'string') : [];
    for (const g of listed) {
      if (disabled.has(g)) {
        const how = g === 'password' ? 'is off unless grants.password is true' : `is off: grants.${g} is false`;
        throw new ConfigError(`config: clients[${i}]: client "${client.client_id}": field "grant_types" lists "${g}", which ${how}`);
      }
    }
    // Other grant types are checked against what the core serves when the server starts.
    const grantTypes = [...new Set(['authorization_code', ...listed])];
    // A confidential client without a secret gets one generated at its first start (see applyConfig).
    const method = client.token_endpoint_auth_method;
    const getsSecret =
      client.client_secret === undefined &&
      (method === undefined || (typeof method === 'string' && method.startsWith('client_secret'))) &&
      client.jwks === undefined &&
      client.jwks_uri === undefined;
    const input = getsSecret ? { ...client, client_secret: 'placeholder-for-a-generated-secret' } : client;
    try {
      normalizeClientMetadata(input, { now: 0, grantTypes, ...(sealer ? { sealer } : {}) });
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`config: clients[${i}]: ${err.message}`);
      throw err;
    }
  });
}

function parsePort(value: string): number {
  const text = value.trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`PORT: must be an integer from 0 to 65535 (got ${JSON.stringify(value)})`);
  }
  return port;
}

function parseBoolean(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name}: must be true or false (got ${JSON.stringify(value)})`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
