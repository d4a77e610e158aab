/**
 * The ready-to-run server's logger: pino JSON lines, with every credential-bearing field redacted,
 * adapted to the library's {@link Logger} interface.
 */
import { pino, type Logger as PinoLogger } from 'pino';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** Keys whose values are credentials, wherever they appear in a log object. */
export const SECRET_KEYS = [
  'client_secret',
  'password',
  'password_hash',
  'code',
  'refresh_token',
  'access_token',
  'id_token',
  'code_verifier',
  'client_assertion',
  'token',
  'assertion',
  'device_code',
  'private_jwk',
  'keyEncryptionSecret',
] as const;

/**
 * pino (fast-redact) paths: each secret key at the top level and up to three levels deep
 * (`*.x` matches one level), plus the credential headers of a request or response.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`, `*.*.*.${key}`]),
];

export const REDACT_CENSOR = '[redacted]';

export interface ServerLoggerOptions {
  level?: LogLevel;
  /** File descriptor to write to: 1 (stdout, default) or 2 (stderr, for the management commands). */
  fd?: 1 | 2;
  /** A custom destination stream (tests). */
  stream?: NodeJS.WritableStream;
}

/** A pino logger with the server's redaction rules. */
export function createPinoLogger(options: ServerLoggerOptions = {}): PinoLogger {
  const pinoOptions = {
    level: options.level ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: REDACT_CENSOR },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const destination = options.stream ?? pino.destination({ dest: options.fd ?? 1, sync: true });
  return pino(pinoOptions, destination);
}

/** Adapt a pino logger to the library's {@link Logger} (the subset the core calls). */
export function toLibraryLogger(logger: PinoLogger): Logger {
  return {
    debug: (obj, msg) => logger.debug(obj, msg),
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
    child: (bindings) => toLibraryLogger(logger.child(bindings as Record<string, unknown>)),
  };
}

/** The server logger at the given level (LOG_LEVEL; default `info`, `silent` allowed). */
export function createServerLogger(options: ServerLoggerOptions = {}): Logger {
  return toLibraryLogger(createPinoLogger(options));
}

/** Parse LOG_LEVEL; undefined or empty means `info`. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined || value.trim() === '') return 'info';
  const level = value.trim().toLowerCase();
  if (!isLogLevel(level)) throw new ConfigError(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(value)})`);
  return level;
}
