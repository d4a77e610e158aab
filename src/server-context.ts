import type { ClientAuthOptions } from './client-auth/types.js';
import type { Clock } from './core/clock.js';
import type { Logger } from './core/logger.js';
import type { DeviceFlowOptions, PasswordGrantOptions, RouteOptions, TokenHooks, TtlOptions } from './core/options.js';
import type { KeyManager } from './keys/key-manager.js';
import type { Storage } from './storage/contract.js';
import type { TokenService } from './tokens/token-service.js';
import type { ScopePolicy } from './core/scope-policy.js';
import type { CookieSigner } from './interaction/cookies.js';
import type { PageRenderers } from './interaction/pages.js';
import type { SessionManager } from './interaction/sessions.js';

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
  /** PKCE policy at the authorization endpoint. */
  pkce: { required: boolean; allowPlain: boolean };
  /** The page renderers (defaults, or the app's overrides). */
  pages: PageRenderers;
  /** Name shown on the hosted pages. */
  serviceName: string;
  sessions: SessionManager;
  /** Signs cookies and CSRF tokens. */
  signer: CookieSigner;
  /** Cookie attributes: path (the issuer's path) and Secure (https issuers). */
  cookie: { path: string; secure: boolean };
  /** Throttling of the hosted login form. */
  loginThrottle: { maxAttemptsPerUser: number; maxAttemptsPerAddress: number; windowSeconds: number };
  /** Device flow: polling interval and user-code throttling. */
  deviceFlow: DeviceFlowOptions;
  /** Signing algorithm of ID tokens (default: the server's signing algorithm). */
  idTokenSigningAlgorithm: string;
  /** Grant types the token endpoint serves (built-in switches and custom grants). */
  grantTypes(): readonly string[];
}
