#!/usr/bin/env node
/**
 * The `portcullis` command line: run the server, and manage its clients, users and signing keys
 * in the same storage (DATABASE_URL) without starting the HTTP server.
 *
 *   portcullis [start] [--port N] [--host H] [--config FILE] [--workers N|auto]
 *   portcullis clients add|list|remove …
 *   portcullis users add|list|remove …
 *   portcullis keys list|rotate …
 *
 * Exit codes: 0 ok, 1 error (one line on stderr; the stack only with DEBUG=portcullis).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { TOKEN_ENDPOINT_AUTH_METHODS, type ClientMetadataInput, type TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { Logger } from '../core/logger.js';
import type { KeyInfo } from '../keys/key-manager.js';
import type { Portcullis } from '../portcullis-types.js';
import type { ClientRecord, UserRecord } from '../storage/contract.js';
import { inMemoryStorageProblem, parseWorkerCount, runCluster } from '../server/cluster.js';
import { loadConfig, type ResolvedConfig } from '../server/config.js';
import { isEntryModule } from '../server/entry-point.js';
import { createServerLogger, parseLogLevel } from '../server/logger.js';
import { openPortcullis } from '../server/runtime.js';
import { runUntilSignal, startServer } from '../server/start.js';

/** An error for the user: printed as `portcullis: <message>`, exit code 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Where the commands write; tests may replace it. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Read the whole of stdin, or undefined when stdin is a terminal. */
  readStdin(): Promise<string | undefined>;
}

const defaultIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  readStdin,
};

interface GlobalOptions {
  config?: string;
}

/**
 * Run the command line with the user's arguments (without `node` and the script path).
 * Resolves with the exit code. `start` resolves only once the server has shut down.
 */
export async function run(args: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(withDefaultCommand(args), { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander already printed its message
    reportError(err, io);
    return 1;
  }
}

const COMMANDS = new Set(['start', 'clients', 'users', 'keys', 'help']);

/**
 * `start` is the default command: insert it when no command is named (`portcullis`,
 * `portcullis --port 0`). Done here rather than with commander's `isDefault`, so that a mistyped
 * command is reported as unknown instead of as an argument of `start`.
 */
function withDefaultCommand(args: readonly string[]): string[] {
  let i = 0;
  while (i < args.length) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '--config') i += 2;
    else if (arg.startsWith('--config=')) i += 1;
    else break;
  }
  const first = args[i];
  if (first === undefined) return [...args, 'start'];
  if (COMMANDS.has(first) || ['-h', '--help', '-v', '--version'].includes(first)) return [...args];
  if (first.startsWith('-')) return [...args.slice(0, i), 'start', ...args.slice(i)];
  return [...args];
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('portcullis');
  program
    .description('Portcullis: an OAuth 2.0 / OpenID Connect authorization server')
    .version(packageVersion(), '-v, --version')
    .option('-c, --config <file>', 'config file (default: $PORTCULLIS_CONFIG, else ./portcullis.config.json when present)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run portcullis --help for usage)');

  program
    .command('start')
    .description('run the server (the default command)')
    .option('-p, --port <port>', 'port to listen on (default: $PORT, else 3000; 0 picks a free port)')
    .option('-H, --host <host>', 'address to listen on (default: $HOST, else 127.0.0.1)')
    .option('-c, --config <file>', 'config file')
    .option('--workers <n>', 'worker processes sharing the port, 1 to 64, or auto (one per CPU) (default: $PORTCULLIS_WORKERS, else one process, no workers)')
    .action(async (opts: { port?: string; host?: string; config?: string; workers?: string }, cmd: Command) => {
      const global = cmd.optsWithGlobals<GlobalOptions & typeof opts>();
      const env = environment(io, global);
      if (opts.port !== undefined) {
        if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) throw new CliError('--port: must be an integer from 0 to 65535');
        env.PORT = opts.port;
      }
      if (opts.host !== undefined) env.HOST = opts.host;
      const workers = workerCount(opts.workers, env);
      const config = loadConfig(env, io.cwd);
      const logger = createServerLogger({ level: config.logLevel });
      if (workers !== undefined) {
        const problem = inMemoryStorageProblem(config.database);
        if (problem !== undefined) throw new CliError(`${workers.source}: ${problem}`);
        setExitCode(await runCluster(config, { workers: workers.count, logger, write: io.out }));
        return;
      }
      const running = await startServer(config, { logger, printBanner: true, write: io.out });
      setExitCode(await runUntilSignal(running, logger));
    });

  // ------------------------------------------------------------------------------------------
  const clients = program.command('clients').description('manage OAuth clients');

  clients
    .command('add <client_id>')
    .description('register a client; a generated secret is printed once')
    .option('--secret <secret>', 'client secret (default: a generated 256-bit secret, printed once)')
    .option('--grant-types <list>', 'comma-separated grant types (default: client_credentials, or authorization_code,refresh_token with --redirect-uri)')
    .option('--scope <scope>', 'space-separated scopes the client may request')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect, [] as string[])
    .option('--auth-method <method>', `token endpoint auth method: ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`)
    .option('--name <name>', 'human-readable client name')
    .option('--public', 'public client (no secret, token_endpoint_auth_method none)')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: ClientAddOptions, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        if ((await portcullis.clients.get(clientId)) !== undefined) {
          throw new CliError(`client "${clientId}" already exists (remove it first: portcullis clients remove ${clientId})`);
        }
        const metadata = clientMetadata(clientId, opts);
        const confidential = metadata.token_endpoint_auth_method !== 'none';
        const { record, generatedSecret } = await portcullis.clients.upsert(metadata, {
          generateSecret: confidential && opts.secret === undefined,
        });
        if (opts.json === true) {
          io.out(json(generatedSecret === undefined ? { client: publicClient(record) } : { client: publicClient(record), client_secret: generatedSecret }));
          return;
        }
        io.out(
          `Client "${record.client_id}" added: ${record.token_endpoint_auth_method}; grant types ${record.grant_types.join(', ') || '(none)'}` +
            `${record.scope !== undefined ? `; scope "${record.scope}"` : ''}\n`,
        );
        if (generatedSecret !== undefined) {
          io.out(`client_secret: ${generatedSecret}\n`);
          io.out('This secret is shown only once and is not stored in clear: keep it now.\n');
        }
      });
    });

  clients
    .command('list')
    .description('list clients (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        const list = (await portcullis.clients.list()).sort((a, b) => compare(a.client_id, b.client_id));
        if (opts.json === true) return io.out(json(list.map(publicClient)));
        if (list.length === 0) return io.out('No clients.\n');
        io.out(
          table(
            ['CLIENT_ID', 'AUTH_METHOD', 'GRANT_TYPES', 'SCOPE', 'NAME'],
            list.map((c) => [c.client_id, c.token_endpoint_auth_method, c.grant_types.join(','), c.scope ?? '-', c.client_name ?? '-']),
          ),
        );
      });
    });

  clients
    .command('remove <client_id>')
    .description('remove a client')
    .action(async (clientId: string, _opts: unknown, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        if (!(await portcullis.clients.remove(clientId))) throw new CliError(`no client "${clientId}"`);
        io.out(`Client "${clientId}" removed.\n`);
      });
    });

  // ------------------------------------------------------------------------------------------
  const users = program.command('users').description('manage users of the built-in user store');

  users
    .command('add <username>')
    .description('add a user; without --password the password is read from stdin')
    .option('--password <password>', 'password in clear (it lands in your shell history: prefer piping it on stdin)')
    .option('--claims <json>', 'OIDC claims as a JSON object, e.g. \'{"email":"a@example.com"}\'')
    .option('--update', 'update the user when it exists (keeps its id)')
    .option('--json', 'print JSON')
    .action(async (username: string, opts: { password?: string; claims?: string; update?: boolean; json?: boolean }, cmd: Command) => {
      const claims = opts.claims === undefined ? undefined : parseClaims(opts.claims);
      let password = opts.password;
      if (password === undefined) {
        const stdin = await io.readStdin();
        if (stdin === undefined) throw new CliError('no password: give --password, or pipe it on stdin');
        password = stdin.replace(/\r?\n$/, '');
        if (password === '') throw new CliError('no password: stdin was empty');
      }
      await withPortcullis(io, cmd, async (portcullis) => {
        const existing = await portcullis.users.findByUsername(username);
        if (existing !== undefined && opts.update !== true) {
          throw new CliError(`user "${username}" already exists (use --update to change it)`);
        }
        const record = await portcullis.users.upsert({ username, password, ...(claims !== undefined ? { claims } : {}) });
        if (opts.json === true) return io.out(json(publicUser(record)));
        io.out(`User "${record.username}" ${existing === undefined ? 'added' : 'updated'} (id ${record.id}).\n`);
      });
    });

  users
    .command('list')
    .description('list users (never their password hashes)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        const list = (await portcullis.users.list()).sort((a, b) => compare(a.username, b.username));
        if (opts.json === true) return io.out(json(list.map(publicUser)));
        if (list.length === 0) return io.out('No users.\n');
        io.out(
          table(
            ['USERNAME', 'ID', 'PASSWORD', 'CLAIMS'],
            list.map((u) => [u.username, u.id, u.password_hash !== undefined ? 'yes' : 'no', Object.keys(u.claims).join(',') || '-']),
          ),
        );
      });
    });

  users
    .command('remove <username>')
    .description('remove a user')
    .action(async (username: string, _opts: unknown, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        if (!(await portcullis.users.remove(username))) throw new CliError(`no user "${username}"`);
        io.out(`User "${username}" removed.\n`);
      });
    });

  // ------------------------------------------------------------------------------------------
  const keys = program.command('keys').description('manage signing keys');

  keys
    .command('list')
    .description('list signing keys (public information only)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        const list = portcullis.keys.list();
        if (opts.json === true) return io.out(json(list));
        if (list.length === 0) return io.out('No signing keys.\n');
        io.out(
          table(
            ['KID', 'ALG', 'STATUS', 'ACTIVATES', 'DEACTIVATES', 'EXPIRES'],
            list.map((k) => [k.kid, k.alg, keyStatus(k), isoTime(k.activates_at), isoTime(k.deactivated_at), isoTime(k.expires_at)]),
          ),
        );
      });
    });

  keys
    .command('rotate')
    .description('generate a new signing key; it is published now and signs after the rotation delay (600 s)')
    .option('--now', 'sign with the new key at once')
    .option('--json', 'print JSON')
    .action(async (opts: { now?: boolean; json?: boolean }, cmd: Command) => {
      await withPortcullis(io, cmd, async (portcullis) => {
        const record = await portcullis.keys.rotate(opts.now === true ? { activateIn: 0 } : {});
        const info = portcullis.keys.list().find((k) => k.kid === record.kid);
        if (opts.json === true) {
          return io.out(json(info ?? { kid: record.kid, alg: record.alg, created_at: record.created_at, activates_at: record.activates_at }));
        }
        const delay = record.activates_at - record.created_at;
        const when = delay <= 0 ? 'now' : `at ${isoTime(record.activates_at)} (in ${delay} s)`;
        io.out(`New ${record.alg} signing key ${record.kid}: published now, signs ${when}.\n`);
        io.out('The previous key stops signing then and stays in the JWKS until the tokens it signed have expired.\n');
        io.out('Running servers load the new key within a minute.\n');
      });
    });

  return program;
}

interface ClientAddOptions {
  secret?: string;
  grantTypes?: string;
  scope?: string;
  redirectUri: string[];
  authMethod?: string;
  name?: string;
  public?: boolean;
  json?: boolean;
}

function clientMetadata(clientId: string, opts: ClientAddOptions): ClientMetadataInput {
  let method: TokenEndpointAuthMethod | undefined;
  if (opts.authMethod !== undefined) {
    if (!(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(opts.authMethod)) {
      throw new CliError(`--auth-method: must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
    }
    method = opts.authMethod as TokenEndpointAuthMethod;
  }
  if (opts.public === true) {
    if (opts.secret !== undefined) throw new CliError('--public and --secret cannot be used together');
    if (method !== undefined && method !== 'none') throw new CliError(`--public and --auth-method ${method} cannot be used together`);
    method = 'none';
  }
  method ??= 'client_secret_basic';
  if (method === 'private_key_jwt') {
    throw new CliError('--auth-method private_key_jwt needs the client\'s public keys: register it in the config file with "jwks" or "jwks_uri"');
  }
  if (method === 'none' && opts.secret !== undefined) throw new CliError('--secret cannot be used with --auth-method none');

  let grantTypes: string[];
  if (opts.grantTypes !== undefined) {
    grantTypes = opts.grantTypes.split(',').map((g) => g.trim()).filter((g) => g !== '');
    if (grantTypes.length === 0) throw new CliError('--grant-types: give at least one grant type');
  } else if (opts.redirectUri.length > 0) {
    grantTypes = ['authorization_code', 'refresh_token'];
  } else if (method !== 'none') {
    grantTypes = ['client_credentials'];
  } else {
    throw new CliError('a public client needs --redirect-uri or --grant-types');
  }

  const metadata: ClientMetadataInput = { client_id: clientId, token_endpoint_auth_method: method, grant_types: grantTypes };
  if (opts.secret !== undefined) metadata.client_secret = opts.secret;
  if (opts.scope !== undefined) metadata.scope = opts.scope;
  if (opts.redirectUri.length > 0) metadata.redirect_uris = opts.redirectUri;
  if (opts.name !== undefined) metadata.client_name = opts.name;
  return metadata;
}

/**
 * Open the configured storage and the core (same options as the server, so the same validation),
 * run `fn`, and close again. The HTTP server is not started and the config's clients and users
 * are not applied.
 */
async function withPortcullis(io: CliIo, cmd: Command, fn: (portcullis: Portcullis, config: ResolvedConfig) => Promise<unknown>): Promise<void> {
  const global = cmd.optsWithGlobals<GlobalOptions>();
  const env = environment(io, global);
  const config = loadConfig(env, io.cwd);
  // Management output is for people and scripts: logs go to stderr, and only errors unless LOG_LEVEL says otherwise.
  const level = env.LOG_LEVEL !== undefined && env.LOG_LEVEL !== '' ? parseLogLevel(env.LOG_LEVEL) : 'error';
  const logger: Logger = createServerLogger({ level, fd: 2 });
  const portcullis = await openPortcullis(config, logger);
  try {
    await fn(portcullis, config);
  } finally {
    await portcullis.close();
  }
}

/** `--workers`, else PORTCULLIS_WORKERS; undefined: no cluster. */
function workerCount(flag: string | undefined, env: NodeJS.ProcessEnv): { count: number; source: string } | undefined {
  const fromEnv = env.PORTCULLIS_WORKERS?.trim();
  const [source, value] = flag !== undefined ? ['--workers', flag] : ['PORTCULLIS_WORKERS', fromEnv === '' ? undefined : fromEnv];
  if (value === undefined) return undefined;
  const parsed = parseWorkerCount(value);
  if (!parsed.ok) throw new CliError(`${source}: ${parsed.problem}`);
  return { count: parsed.count, source };
}

function environment(io: CliIo, global: GlobalOptions): NodeJS.ProcessEnv {
  const env = { ...io.env };
  if (global.config !== undefined) env.PORTCULLIS_CONFIG = global.config;
  return env;
}

function parseClaims(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError('--claims: must be a JSON object, e.g. \'{"email":"a@example.com"}\'');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CliError('--claims: must be a JSON object');
  return value as Record<string, unknown>;
}

/** A client record without anything secret (not even the hash). */
export function publicClient(record: ClientRecord): Omit<ClientRecord, 'client_secret_hash' | 'client_secret_encrypted'> {
  const { client_secret_hash: _hash, client_secret_encrypted: _encrypted, ...rest } = record;
  return rest;
}

/** A user record without its password hash. */
export function publicUser(record: UserRecord): Omit<UserRecord, 'password_hash'> & { has_password: boolean } {
  const { password_hash, ...rest } = record;
  return { ...rest, has_password: password_hash !== undefined };
}

function keyStatus(k: KeyInfo): string {
  return k.signing ? `${k.status}, signing` : k.status;
}

function isoTime(seconds: number | undefined): string {
  return seconds === undefined ? '-' : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY === true) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function reportError(err: unknown, io: CliIo): void {
  const message = err instanceof Error ? err.message : String(err);
  io.err(message.split('\n').map((line) => `portcullis: ${line}\n`).join(''));
  if (debugEnabled(io.env) && err instanceof Error && err.stack !== undefined) io.err(`${err.stack}\n`);
}

function debugEnabled(env: NodeJS.ProcessEnv): boolean {
  return (env.DEBUG ?? '').split(/[\s,]+/).some((name) => name === 'portcullis' || name === 'portcullis:*' || name === '*');
}

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'portcullis' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

if (isEntryModule(import.meta.url)) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Should a stray handle keep the loop alive, still exit (the timer itself keeps nothing alive).
    setTimeout(() => process.exit(code), 3000).unref();
  });
}
