export { OAuthError, StorageUnavailableError, ConfigError, ERROR_STATUS, type OAuthErrorCode } from './core/errors.js';
