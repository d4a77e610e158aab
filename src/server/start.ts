/**
 * The ready-to-run server: the core behind node:http, configured from {@link ResolvedConfig}.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeListener } from '../adapters/node-http.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Portcullis } from '../portcullis-types.js';
import { defaultIssuer, isLoopbackHost, isWildcardHost, type ResolvedConfig } from './config.js';
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
}

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:3000` (not necessarily the public issuer). */
  url: string;
  portcullis: Portcullis;
  server: Server;
  /** Set when this start created the demo client: its secret, shown once. */
  demoClient?: GeneratedSecret;
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
    // During a shutdown no connection is kept alive: each closes once its response is written.
    if (closing) res.setHeader('connection', 'close');
    res.once('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
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

  let generatedSecrets: GeneratedSecret[];
  let demoClient: GeneratedSecret | undefined;
  let warnings: string[];
  try {
    generatedSecrets = await applyConfig(portcullis, config);
    if (config.configFile === undefined && (await portcullis.clients.list()).length === 0) {
      demoClient = await createDemoClient(portcullis);
      logger.info({ client_id: demoClient.client_id }, 'demo client created');
    }
    warnings = await collectWarnings(config, portcullis);
    if (port === undefined) port = await listen(server, config.port, listenHost);
  } catch (err) {
    if (server.listening) await closeServer(server);
    await portcullis.close().catch(() => undefined);
    throw err;
  }

  listener = withAccessLog(
    toNodeListener(portcullis, {
      trustProxy: config.trustProxy,
      onError: (err) => logger.error({ err }, 'request failed in the node adapter'),
    }),
    logger,
  );

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
    write(banner({ config, portcullis, url, demoClient, generatedSecrets, warnings }));
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

/** Stop accepting, close idle keep-alive connections, wait for the rest (at most `drainTimeoutMs`). */
function closeServer(server: Server, drainTimeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

async function collectWarnings(config: ResolvedConfig, portcullis: Portcullis): Promise<string[]> {
  const warnings: string[] = [];
  const issuerUrl = new URL(portcullis.issuer);
  if (issuerUrl.protocol === 'http:') {
    warnings.push(`the issuer ${portcullis.issuer} uses plain http: fine for development on this machine; use an https issuer (PORTCULLIS_ISSUER) in production`);
  }
  if (config.keyEncryptionSecret === undefined) {
    warnings.push('no key-encryption secret: signing keys are stored unencrypted; set PORTCULLIS_KEY_SECRET (16 characters or more)');
  }
  if (config.database.kind === 'memory' || config.database.filename === ':memory:') {
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
  return warnings;
}

function banner(input: {
  config: ResolvedConfig;
  portcullis: Portcullis;
  url: string;
  demoClient: GeneratedSecret | undefined;
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
    `  storage:    ${describeStorage(config.database)}`,
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

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function urlHost(host: string): string {
  if (isWildcardHost(host)) return '127.0.0.1';
  const bare = stripBrackets(host);
  return bare.includes(':') ? `[${bare}]` : bare;
}
