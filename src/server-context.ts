import type { ClientAuthOptions } from './client-auth/types.js';
import type { Clock } from './core/clock.js';
import type { Logger } from './core/logger.js';
import type { PasswordGrantOptions, RouteOptions, TokenHooks, TtlOptions } from './core/options.js';
import type { KeyManager } from './keys/key-manager.js';
import type { Storage } from './storage/contract.js';
import type { TokenService } from './tokens/token-service.js';
import type { ScopePolicy } from './core/scope-policy.js';

/** Everything endpoints and grants share, resolved once at start-up. */
export interface ServerContext {
  issuer: string;
  storage: Storage;
  clock: Clock;
  logger: Logger;
  keys: KeyManager;
  tokens: TokenService;
  scopes: ScopePolicy;
  ttl: TtlOptions;
  routes: RouteOptions;
  endpoints: Record<keyof RouteOptions, string>;
  clientAuth: ClientAuthOptions;
  passwordGrant: PasswordGrantOptions;
  hooks: TokenHooks;
  maxBodyBytes: number;
  /** Grant types the token endpoint serves (built-in switches and custom grants). */
  grantTypes(): readonly string[];
}
