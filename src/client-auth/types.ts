import type { TokenEndpointAuthMethod } from '../clients/metadata.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Sealer } from '../core/seal.js';
import type { ClientRecord, Storage } from '../storage/contract.js';

export interface ClientAuthOptions {
  storage: Storage;
  /** The issuer identifier (exact string); an accepted `aud` of client assertions. */
  issuer: string;
  /** Absolute URL of the token endpoint; also an accepted `aud` of client assertions. */
  tokenEndpoint: string;
  clock: Clock;
  logger: Logger;
  /** Needed to open the sealed secret of client_secret_jwt clients. */
  sealer?: Sealer;
  /** Methods the server accepts at all. A client's registered method must be one of these. */
  methods: readonly TokenEndpointAuthMethod[];
  /** JWS algorithms accepted for private_key_jwt assertions (asymmetric only). */
  assertionSigningAlgorithms: readonly string[];
  /** Longest accepted `exp - now` of a client assertion, seconds (default 300). */
  maxAssertionLifetime: number;
  /** Clock skew tolerated on exp/nbf/iat, seconds (default 15). */
  clockTolerance: number;
  /** Failed authentications per client_id per minute before further attempts are refused (default 20). */
  maxFailuresPerMinute: number;
}

export interface AuthenticatedClient {
  client: ClientRecord;
  method: TokenEndpointAuthMethod;
}
