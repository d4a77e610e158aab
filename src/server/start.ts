/**
 * The ready-to-run server: the core behind node:http, configured from {@link ResolvedConfig}.
 * On a first start without a config file it creates the demo (see ./demo.ts): `demo-client`
 * (client_credentials), the user `demo` and the web client `demo-web`, and prints their secrets
 * once with a sign-in link; the server answers `demo-web`'s callback pages while that client exists.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeListener } from '../adapters/node-http.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Portcullis } from '../portcullis-types.js';
import { DEFAULT_DATABASE_URL, defaultIssuer, isLoopbackHost, isWildcardHost, type ResolvedConfig } from './config.js';
import {
  DEMO_USERNAME,
  DEMO_WEB_CLIENT_ID,
  DEMO_SECRET_VARIABLE,
  createDemoFlow,
  createDemoUser,
  createDemoWebClient,
  DEVICE_CODE_GRANT,
  demoWebClientMatches,
  withDemoPages,
  type DemoFlow,
  type DemoUser,
} from './demo.js';
import { createServerLogger } from './logger.js';
import {
  DEMO_CLIENT_ID,
  applyConfig,
  createDemoClient,
  describeStorage,
  openPortcullis,
  type GeneratedSecret,
} from './runtime.js';

export interface StartOptions {
  /** Default: a pino logger at the config's LOG_LEVEL, on stdout. */
  logger?: Logger;
  /** Print the start-up banner (plain text) on stdout. Default true. */
  printBanner?: boolean;
  /** Where the banner goes. Default: process.stdout. */
  write?: (text: string) => void;
  /** Seconds between sweeps of expired rows. Default 60. */
  sweepIntervalSeconds?: number;
  /** Milliseconds to wait for in-flight requests at shutdown before closing their connections. Default 10,000. */
  drainTimeoutMs?: number;
  /** The demo sign-in flow to answer `/demo/callback` with (a cluster worker gets worker 1's). Default: a new one. */
  demoFlow?: DemoFlow;
}

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:3000` (not necessarily the public issuer). */
  url: string;
  portcullis: Portcullis;
  server: Server;
  /** Set when this start created the demo client: its secret, shown once. */
  demoClient?: GeneratedSecret;
  /** Set when this start created the demo web client (`demo-web`): its secret, shown once. */
  demoWebClient?: GeneratedSecret;
  /** Set when this start created the demo user: its password, shown once. */
  demoUser?: DemoUser;
  /**
   * This process's demo sign-in (authorization URL, PKCE verifier, state, nonce): set when the
   * `demo-web` client exists and accepts this issuer's redirect URI. New at every start, never stored.
   */
  demoFlow?: DemoFlow;
  /** Secrets generated for config clients on their first start, shown once. */
  generatedSecrets: GeneratedSecret[];
  /** Insecure development defaults in force. */
  warnings: string[];
  /** Stop accepting connections, let in-flight requests finish, stop the timers, close the core and its storage. */
  close(): Promise<void>;
}

export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const SWEEP_BATCH = 1000;

/**
 * Start the server. When the issuer is not configured and the port is 0, the server listens first
 * and the issuer is computed from the port it got, before the core is created, so that the issuer
 * always names the real port. Requests that arrive in between are answered 503.
 */
export async function startServer(config: ResolvedConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? createServerLogger({ level: config.logLevel });
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const listenHost = stripBrackets(config.host);

  const server = createServer();
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  let listener: RequestListener = notReady;
  let closing = false;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // During a shutdown no connection is kept alive: each closes once its response is written
    // (connections whose response was under way when the shutdown began: see closeServer).
    if (closing) {
      res.setHeader('connection', 'close');
      res.once('finish', () => setImmediate(() => server.closeIdleConnections()));
    }
    listener(req, res);
  });

  let port: number | undefined;
  if (config.issuer === undefined) port = await listen(server, config.port, listenHost);
  const issuer = config.issuer ?? defaultIssuer(config.host, port!);

  let portcullis: Portcullis;
  try {
    portcullis = await openPortcullis(config, logger, issuer);
  } catch (err) {
    if (server.listening) await closeServer(server);
    throw err;
  }
  // Instances sharing a database learn of key rotations by reloading (PORTCULLIS_KEY_RELOAD_SECONDS).
  portcullis.keys.startAutoReload(config.keyReloadSeconds);

  let generatedSecrets: GeneratedSecret[];
  let demoClient: GeneratedSecret | undefined;
  let demoWebClient: GeneratedSecret | undefined;
  let demoUser: DemoUser | undefined;
  let demoWeb: DemoWebStatus;
  let demoUserExists = false;
  let warnings: string[];
  // Kept in memory only: the banner prints it, the demo callback page shows the verifier.
  const flow = options.demoFlow ?? createDemoFlow(portcullis);
  try {
    generatedSecrets = await applyConfig(portcullis, config);
    if (config.configFile === undefined && (await portcullis.clients.list()).length === 0) {
      demoClient = await createDemoClient(portcullis);
      logger.info({ client_id: demoClient.client_id }, 'demo client created');
      demoWebClient = await createDemoWebClient(portcullis);
      if (demoWebClient !== undefined) {
        logger.info({ client_id: demoWebClient.client_id }, 'demo web client created');
        demoUser = await createDemoUser(portcullis);
        if (demoUser !== undefined) logger.info({ username: demoUser.username }, 'demo user created');
      }
    }
    const matches = await demoWebClientMatches(portcullis, flow);
    demoWeb = matches === undefined ? 'absent' : matches ? 'ready' : 'mismatch';
    demoUserExists = demoWeb !== 'absent' && (await portcullis.users.findByUsername(DEMO_USERNAME)) !== undefined;
    warnings = await collectWarnings(config, portcullis);
    if (port === undefined) port = await listen(server, config.port, listenHost);
  } catch (err) {
    if (server.listening) await closeServer(server);
    await portcullis.close().catch(() => undefined);
    throw err;
  }

  const pages = withDemoPages(
    toNodeListener(portcullis, {
      trustProxy: config.trustProxy,
      coalesceWrites: config.coalesceWrites,
      onError: (err) => logger.error({ err }, 'request failed in the node adapter'),
    }),
    { portcullis, flow, logger },
  );
  // The access log costs a timer and a listener per request: none when its level is off (LOG_LEVEL=warn…).
  listener = ACCESS_LOG_LEVELS.has(config.logLevel) ? withAccessLog(pages, logger) : pages;

  // Sweep expired rows in the background; never two sweeps at once.
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    portcullis.storage
      .sweepExpired(systemClock(), SWEEP_BATCH)
      .then(
        (deleted) => {
          if (deleted > 0) logger.debug({ deleted }, 'expired rows swept');
        },
        (err: unknown) => logger.error({ err }, 'sweeping expired rows failed'),
      )
      .finally(() => {
        sweeping = false;
      });
  }, (options.sweepIntervalSeconds ?? 60) * 1000);
  sweeper.unref();

  const url = `http://${urlHost(config.host)}:${port}`;
  logger.info({ issuer, url, storage: portcullis.storage.name }, 'portcullis started');
  if (options.printBanner !== false) {
    write(banner({ config, portcullis, url, demoClient, demoWebClient, demoUser, demoUserExists, demoWeb, flow, generatedSecrets, warnings }));
  } else {
    for (const warning of warnings) logger.warn({}, warning);
  }

  let closed: Promise<void> | undefined;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const running: RunningServer = {
    url,
    portcullis,
    server,
    generatedSecrets,
    warnings,
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(sweeper);
        await closeServer(server, drainTimeoutMs);
        await portcullis.close();
        logger.info({}, 'portcullis stopped');
      })();
      return closed;
    },
  };
  if (demoClient !== undefined) running.demoClient = demoClient;
  if (demoWebClient !== undefined) running.demoWebClient = demoWebClient;
  if (demoUser !== undefined) running.demoUser = demoUser;
  if (demoWeb === 'ready') running.demoFlow = flow;
  return running;
}

/**
 * Run until SIGTERM or SIGINT, then shut down gracefully. Resolves with the exit code (0, or 1
 * when the shutdown failed). A second signal during the shutdown exits at once with code 1.
 */
export function runUntilSignal(running: RunningServer, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without waiting for in-flight requests');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down: waiting for in-flight requests');
      running.close().then(
        () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function notReady(_req: IncomingMessage, res: ServerResponse): void {
  const body = '{"error":"temporarily_unavailable","error_description":"The server is starting; try again shortly"}';
  res.writeHead(503, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'retry-after': '1',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Levels at which the access log writes anything (`info` lines; the probes at `debug`). */
const ACCESS_LOG_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info']);

/** One log line per request: method, path (never the query), status, duration. Probes log at debug. */
function withAccessLog(inner: RequestListener, logger: Logger): RequestListener {
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const entry = {
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 100) / 100,
      };
      if (path === '/healthz' || path === '/readyz') logger.debug(entry, 'request');
      else logger.info(entry, 'request');
    });
    inner(req, res);
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = `${host}:${port}`;
      if (err.code === 'EADDRINUSE') reject(new Error(`cannot listen on ${where}: the address is already in use (set PORT or --port)`));
      else if (err.code === 'EACCES') reject(new Error(`cannot listen on ${where}: permission denied (use a port above 1023)`));
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new Error(`cannot listen on ${where}: no such address on this machine (check HOST)`));
      else reject(new Error(`cannot listen on ${where}: ${err.message}`));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Stop accepting, close idle keep-alive connections, wait for the rest (at most `drainTimeoutMs`).
 * A connection whose response was under way when this began becomes idle once it is written: it is
 * closed at the next sweep ({@link IDLE_SWEEP_MS}).
 */
function closeServer(server: Server, drainTimeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
    timer.unref();
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    sweep.unref();
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** How often a shutting-down server closes the connections that have become idle. */
const IDLE_SWEEP_MS = 25;

async function collectWarnings(config: ResolvedConfig, portcullis: Portcullis): Promise<string[]> {
  const warnings: string[] = [];
  const issuerUrl = new URL(portcullis.issuer);
  if (issuerUrl.protocol === 'http:') {
    warnings.push(`the issuer ${portcullis.issuer} uses plain http: fine for development on this machine; use an https issuer (PORTCULLIS_ISSUER) in production`);
  }
  if (config.keyEncryptionSecret === undefined) {
    warnings.push('no key-encryption secret: signing keys are stored unencrypted; set PORTCULLIS_KEY_SECRET (16 characters or more)');
  }
  if (config.database.kind === 'memory' || (config.database.kind === 'sqlite' && config.database.filename === ':memory:')) {
    warnings.push('storage is in memory: clients, users, keys and tokens are lost when the process exits (set DATABASE_URL=sqlite:<path>)');
  }
  if (isWildcardHost(config.host) && config.issuerSource === 'default') {
    warnings.push(`listening on every interface (${config.host}) with the default issuer ${portcullis.issuer}: set PORTCULLIS_ISSUER to the URL clients use`);
  } else if (!isLoopbackHost(config.host) && issuerUrl.protocol === 'http:') {
    warnings.push(`listening on ${config.host}, beyond this machine, with a plain http issuer`);
  }
  if (portcullis.grantTypes.includes('password')) {
    warnings.push('the password grant is enabled: RFC 9700 §2.4 says not to use it; prefer the authorization code flow');
  }
  const weak = config.clients.filter((c) => typeof c.client_secret === 'string' && c.client_secret.length < 32).map((c) => c.client_id);
  if (weak.length > 0) {
    warnings.push(`client secrets shorter than 32 characters (${weak.join(', ')}): they are stored as fast salted hashes, so use long random values`);
  }
  if ((await portcullis.clients.get(DEMO_CLIENT_ID)) !== undefined) {
    warnings.push(`the demo client ${DEMO_CLIENT_ID} is registered: remove it before production (portcullis clients remove ${DEMO_CLIENT_ID})`);
  }
  if ((await portcullis.clients.get(DEMO_WEB_CLIENT_ID)) !== undefined) {
    warnings.push(
      `the demo web client ${DEMO_WEB_CLIENT_ID} is registered, and the server answers its demo pages (/demo/callback, /demo/logged-out) while it is: ` +
        `remove it before production (portcullis clients remove ${DEMO_WEB_CLIENT_ID})`,
    );
  }
  if ((await portcullis.users.findByUsername(DEMO_USERNAME)) !== undefined) {
    warnings.push(`the demo user ${DEMO_USERNAME} exists: remove it before production (portcullis users remove ${DEMO_USERNAME})`);
  }
  return warnings;
}

/** Whether the `demo-web` client exists, and if so whether it accepts this issuer's redirect URI. */
type DemoWebStatus = 'absent' | 'ready' | 'mismatch';

function banner(input: {
  config: ResolvedConfig;
  portcullis: Portcullis;
  url: string;
  demoClient: GeneratedSecret | undefined;
  demoWebClient: GeneratedSecret | undefined;
  demoUser: DemoUser | undefined;
  demoUserExists: boolean;
  demoWeb: DemoWebStatus;
  flow: DemoFlow;
  generatedSecrets: GeneratedSecret[];
  warnings: string[];
}): string {
  const { config, portcullis, url, demoClient, generatedSecrets, warnings } = input;
  const issuer = portcullis.issuer;
  const base = issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
  const lines = [
    '',
    'Portcullis authorization server is running',
    `  issuer:     ${issuer}`,
    `  discovery:  ${base}/.well-known/openid-configuration`,
    `  token:      ${portcullis.endpoints.token}`,
    `  listening:  ${url}`,
    `  storage:    ${describeStorage(config.database, config.redis)}`,
    `  config:     ${config.configFile ?? 'none (defaults and environment variables)'}`,
    `  grants:     ${portcullis.grantTypes.join(', ')}`,
  ];
  if (demoClient !== undefined) {
    lines.push(
      '',
      'A demo client was created. Its secret is shown only this once and is not stored in clear:',
      `  client_id:      ${demoClient.client_id}`,
      `  client_secret:  ${demoClient.client_secret}`,
      '  get a token:',
      `    curl -s -u ${demoClient.client_id}:${demoClient.client_secret} -d grant_type=client_credentials -d scope=api:read ${portcullis.endpoints.token}`,
    );
  }
  lines.push(...demoWebBanner(input));
  if (generatedSecrets.length > 0) {
    lines.push('', 'Secrets generated for config clients (shown only this once, not stored in clear):');
    for (const s of generatedSecrets) lines.push(`  ${s.client_id}:  ${s.client_secret}`);
  }
  if (warnings.length > 0) {
    lines.push('', 'Warnings:');
    for (const w of warnings) lines.push(`  ! ${w}`);
  }
  lines.push('', 'Stop with Ctrl-C (SIGINT) or SIGTERM.', '');
  return lines.join('\n') + '\n';
}

/** The demo web client's part of the banner: its credentials when just created, and this process's sign-in link. */
function demoWebBanner(input: {
  config: ResolvedConfig;
  portcullis: Portcullis;
  demoWebClient: GeneratedSecret | undefined;
  demoUser: DemoUser | undefined;
  demoUserExists: boolean;
  demoWeb: DemoWebStatus;
  flow: DemoFlow;
}): string[] {
  const { config, portcullis, demoWebClient, demoUser, demoUserExists, demoWeb, flow } = input;
  if (demoWeb === 'absent') return [];
  const lines: string[] = [''];
  if (demoWebClient !== undefined) {
    lines.push(
      'A demo user and a demo web client were created for the authorization code flow.',
      'The password and the secret are shown only this once and are not stored in clear:',
    );
    if (demoUser !== undefined) {
      lines.push(`  username:       ${demoUser.username}`, `  password:       ${demoUser.password}`);
    } else {
      lines.push(`  username:       ${DEMO_USERNAME} (the user already existed: its password was not changed)`);
    }
    lines.push(
      `  client_id:      ${demoWebClient.client_id}`,
      `  client_secret:  ${demoWebClient.client_secret}`,
      `  redirect_uri:   ${flow.redirectUri}`,
    );
  } else {
    const where =
      config.database.url === DEFAULT_DATABASE_URL
        ? `the ./data directory (${config.database.kind === 'sqlite' ? config.database.filename : config.database.url})`
        : config.database.kind === 'sqlite' && config.database.filename !== ':memory:'
          ? `the database file ${config.database.filename}`
          : 'the database';
    const remove = `portcullis clients remove ${DEMO_WEB_CLIENT_ID}${demoUserExists ? ` && portcullis users remove ${DEMO_USERNAME}` : ''}`;
    lines.push(
      demoUserExists
        ? `The demo web client ${DEMO_WEB_CLIENT_ID} and the demo user ${DEMO_USERNAME} exist; their secret and password were shown at the first start only.`
        : `The demo web client ${DEMO_WEB_CLIENT_ID} exists; its secret was shown at the first start only.`,
      `  To start over (a new secret and password): stop the server and delete ${where}, then start again;`,
      `  or remove them (${remove}) and register your own.`,
    );
  }
  if (demoWeb === 'mismatch') {
    lines.push(`  Its redirect URIs do not include ${flow.redirectUri} (the issuer changed?): start over as above to use it with this issuer.`);
    return lines;
  }
  lines.push(
    '',
    'Open in a browser to sign in:',
    `  ${flow.authorizationUrl}`,
    `  code_verifier:  ${flow.codeVerifier}`,
    '  (the sign-in link and its PKCE code_verifier are new at every start)',
    '  then exchange the code (the callback page shows this command with the code filled in):',
  );
  if (demoWebClient !== undefined) lines.push(`    export ${DEMO_SECRET_VARIABLE}=${demoWebClient.client_secret}`);
  else lines.push(`    # ${DEMO_SECRET_VARIABLE}: the ${DEMO_WEB_CLIENT_ID} secret shown at the first start`);
  lines.push(`    ${flow.curl}`);
  if (portcullis.grantTypes.includes(DEVICE_CODE_GRANT)) {
    const deviceAuthorization = portcullis.endpoints.device_authorization;
    lines.push(
      '',
      'Try the device flow (RFC 8628) as a TV or CLI would:',
      `    curl -s -u ${DEMO_WEB_CLIENT_ID}:$${DEMO_SECRET_VARIABLE} -d scope=openid ${deviceAuthorization}`,
      `  open the verification_uri_complete it returns, sign in as ${DEMO_USERNAME} and approve, while polling every "interval" seconds:`,
      `    curl -s -u ${DEMO_WEB_CLIENT_ID}:$${DEMO_SECRET_VARIABLE} -d grant_type=${DEVICE_CODE_GRANT} -d device_code=<device_code> ${portcullis.endpoints.token}`,
      '  (docs/device-flow.md has the whole walk-through)',
    );
  }
  return lines;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function urlHost(host: string): string {
  if (isWildcardHost(host)) return '127.0.0.1';
  const bare = stripBrackets(host);
  return bare.includes(':') ? `[${bare}]` : bare;
}
