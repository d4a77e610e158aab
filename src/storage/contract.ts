/**
 * The one storage contract every backend implements (memory, SQLite; PostgreSQL and Redis later).
 *
 * Rules every backend keeps (checked by the conformance suite in `./conformance.ts`):
 * - times are whole seconds since the epoch, always passed in by the caller (one clock: the core's);
 * - codes, refresh tokens, opaque access tokens and device codes are stored under the SHA-256 of
 *   their value (`id`); the raw value never reaches storage;
 * - `consumeArtifact` is atomic: of many concurrent calls for one id, exactly one sees `consumed`;
 * - `revokeGrant` marks the grant and every artifact of the grant revoked in one step;
 * - an expired row is never returned as live; `sweepExpired` deletes expired rows in bounded batches.
 *
 * Backends may throw {@link StorageUnavailableError} when the store cannot be reached.
 * A SQL backend implements consume as `UPDATE … SET consumed_at = $now WHERE id = $id AND
 * consumed_at IS NULL RETURNING …`; a Redis backend as a Lua script.
 */

/** RFC 7591 client metadata as stored; the secret only as a hash. */
export interface ClientRecord {
  client_id: string;
  /** `sha256$<salt>$<digest>` (see clients/secrets.ts) or undefined for public / key-based clients. */
  client_secret_hash?: string;
  /**
   * Only for `client_secret_jwt` (HMAC needs the raw secret): the secret encrypted with the server's
   * key-encryption secret (`enc:v1:…`). Never stored in clear.
   */
  client_secret_encrypted?: string;
  client_name?: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  /** Space-delimited scope the client may request. */
  scope?: string;
  jwks?: { keys: Record<string, unknown>[] };
  jwks_uri?: string;
  /** Algorithm for client_secret_jwt / private_key_jwt assertions (RFC 7591 / OIDC Registration). */
  token_endpoint_auth_signing_alg?: string;
  /** Per-client access token format; the server default applies when absent. */
  access_token_format?: 'jwt' | 'opaque';
  /** Refresh-token rotation for confidential clients: default true. Public clients always rotate. */
  rotate_refresh_tokens?: boolean;
  /** Audiences (resource servers) this client may introspect tokens for, when it is a resource server. */
  resource_server_audiences?: string[];
  /** OIDC RP-initiated logout: where the client may be sent after logout (exact match). */
  post_logout_redirect_uris?: string[];
  /** Algorithm of ID tokens for this client (OIDC Registration); the server default when absent. */
  id_token_signed_response_alg?: string;
  /** A first-party client: consent is not asked (the operator vouches for it). */
  first_party?: boolean;
  /**
   * Audiences this client may obtain tokens for: RFC 8707 `resource` values and RFC 8693 `audience`
   * values. A target outside this list → `invalid_target`. Absent: only the server's default audience.
   */
  allowed_audiences?: string[];
  /** Any further RFC 7591 metadata (kept verbatim). */
  extra?: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

export interface UserRecord {
  /** Stable subject identifier. */
  id: string;
  username: string;
  /** PHC string (argon2id or scrypt). */
  password_hash?: string;
  /** OIDC claims (email, name, …). */
  claims: Record<string, unknown>;
  created_at: number;
  updated_at: number;
}

/** What an end user (or a client for itself) authorised: every token of one grant shares its id. */
export interface GrantRecord {
  id: string;
  client_id: string;
  /** End-user subject; undefined for grants without a user. */
  user_id?: string;
  /** Space-delimited scope originally granted. */
  scope: string;
  grant_type: string;
  created_at: number;
  /** Absolute end of the grant (refresh tokens never outlive it). */
  expires_at: number;
  revoked_at?: number;
  /** Seconds; the time the user authenticated (OIDC auth_time). */
  auth_time?: number;
  /** Free-form data a grant type needs (nonce, claims requested, …). */
  data?: Record<string, unknown>;
}

/**
 * Kinds of artifact. `user_code` (the device flow's lookup from a user code to its device code),
 * `session` (browser sign-in), `interaction` (an authorization request waiting for
 * login/consent), `consent` (what a user allowed a client) and `server_secret` (shared secrets such as
 * the cookie-signing key, so every instance agrees) live in the same store.
 */
export type ArtifactKind =
  | 'authorization_code'
  | 'refresh_token'
  | 'access_token'
  | 'device_code'
  | 'user_code'
  | 'session'
  | 'interaction'
  | 'consent'
  | 'server_secret';

/** A short- or long-lived secret thing looked up by the hash of its value. */
export interface ArtifactRecord {
  kind: ArtifactKind;
  /** SHA-256 (base64url) of the artifact value. */
  id: string;
  /** The grant it belongs to; undefined only for grant-less access tokens (client_credentials). */
  grant_id?: string;
  client_id: string;
  user_id?: string;
  scope: string;
  created_at: number;
  expires_at: number;
  consumed_at?: number;
  revoked_at?: number;
  /** Anything else the artifact needs (PKCE challenge, redirect_uri, claims, device state…). */
  data?: Record<string, unknown>;
}

export type ConsumeResult =
  | { status: 'consumed'; record: ArtifactRecord }
  | { status: 'already_consumed'; record: ArtifactRecord }
  | { status: 'not_found' };

/** A signing key. The private JWK may be encrypted at rest (then `private_jwk` is a `enc:v1:` string). */
export interface KeyRecord {
  kid: string;
  alg: string;
  /** Public JWK (JSON object). */
  public_jwk: Record<string, unknown>;
  /** Private JWK as JSON text, or `enc:v1:…` ciphertext when a key-encryption secret is set. */
  private_jwk: string;
  created_at: number;
  /** From this time on the key may sign (it is published before that). */
  activates_at: number;
  /** Set when a newer key takes over; the key stops signing at that time. */
  deactivated_at?: number;
  /** After this time the public key leaves the JWKS. */
  expires_at?: number;
}

export interface RateLimitResult {
  /** Hits in the current window, including this one. */
  count: number;
  /** When the current window ends (seconds). */
  reset_at: number;
}

export interface Storage {
  /** A short name for logs: `memory`, `sqlite`, … */
  readonly name: string;

  // clients
  /**
   * The client, or undefined. The caller must not change the record: a backend may return a private
   * copy or a deeply frozen record it shares with other callers (the SQLite backend's exact cache).
   */
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  upsertClient(client: ClientRecord): Promise<void>;
  deleteClient(clientId: string): Promise<boolean>;
  listClients(): Promise<ClientRecord[]>;

  // users
  /** The user, or undefined. Like `getClient`, the record may be frozen and shared: do not change it. */
  getUser(id: string): Promise<UserRecord | undefined>;
  getUserByUsername(username: string): Promise<UserRecord | undefined>;
  upsertUser(user: UserRecord): Promise<void>;
  deleteUser(id: string): Promise<boolean>;
  listUsers(): Promise<UserRecord[]>;

  // grants
  createGrant(grant: GrantRecord): Promise<void>;
  /** Returns the grant even if revoked or expired: callers check `revoked_at` / `expires_at`. */
  getGrant(id: string): Promise<GrantRecord | undefined>;
  /**
   * Revoke the grant and every artifact with its id, atomically. Returns false when the grant
   * did not exist or was already revoked.
   */
  revokeGrant(grantId: string, now: number): Promise<boolean>;

  // artifacts (codes, refresh tokens, opaque access tokens, device codes)
  saveArtifact(record: ArtifactRecord): Promise<void>;
  /** The artifact, unless it is unknown or expired (`expires_at <= now`). Revoked/consumed ones are returned. */
  findArtifact(kind: ArtifactKind, id: string, now: number): Promise<ArtifactRecord | undefined>;
  /**
   * Atomically mark the artifact consumed. Exactly one of many concurrent callers gets `consumed`;
   * the rest get `already_consumed` with the record. Expired artifacts are `not_found`.
   * Revoked artifacts are returned as `already_consumed` when consumed before, else consumed as usual
   * (callers check `revoked_at`).
   */
  consumeArtifact(kind: ArtifactKind, id: string, now: number): Promise<ConsumeResult>;
  /** Mark one artifact revoked. Returns false if unknown. */
  revokeArtifact(kind: ArtifactKind, id: string, now: number): Promise<boolean>;
  /** Replace the `data` of a live artifact (device-code polling state). Returns false if unknown. */
  updateArtifactData(kind: ArtifactKind, id: string, data: Record<string, unknown>): Promise<boolean>;

  // replay protection (client-assertion jti, revoked JWT access-token jti)
  /**
   * Record `key` until `expiresAt`. Returns true the first time, false when the key is already
   * recorded and not expired. Atomic across concurrent callers.
   */
  recordOnce(key: string, expiresAt: number, now: number): Promise<boolean>;
  /** Whether `key` is recorded and not expired. */
  hasRecord(key: string, now: number): Promise<boolean>;

  // rate limits: fixed windows
  /** Atomically count one hit for `key` in the window of `windowSeconds` containing `now`. */
  hitRateLimit(key: string, windowSeconds: number, now: number): Promise<RateLimitResult>;
  resetRateLimit(key: string): Promise<void>;

  // signing keys
  listKeys(): Promise<KeyRecord[]>;
  saveKey(key: KeyRecord): Promise<void>;
  updateKey(kid: string, fields: Partial<Pick<KeyRecord, 'deactivated_at' | 'expires_at' | 'activates_at'>>): Promise<boolean>;
  deleteKey(kid: string): Promise<boolean>;

  // maintenance
  /**
   * Delete up to `limit` expired rows of EACH kind (artifacts, replay records, rate limits, expired grants,
   * signing keys past `expires_at`), so one call deletes at most 5 × limit. `limit <= 0` deletes nothing.
   * Returns the number deleted.
   */
  sweepExpired(now: number, limit?: number): Promise<number>;
  /** Cheap liveness check of the store; throws StorageUnavailableError when unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
