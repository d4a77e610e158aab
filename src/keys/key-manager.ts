/**
 * Signing keys: generation, encryption at rest, publication (JWKS), rotation and selection.
 *
 * Life of a key (all times in seconds, from the one injected clock):
 * - **pending**: saved and published in the JWKS, `activates_at` in the future: relying parties
 *   can fetch it before any token is signed with it (`rotationDelay`, default 10 minutes);
 * - **active**: `activates_at <= now` and not deactivated; of the active keys of an algorithm the
 *   one with the latest `activates_at` signs (ties broken by the greatest kid, so every instance
 *   sharing a database picks the same key);
 * - **retiring**: `deactivated_at <= now`: no longer signs, still published until `expires_at`
 *   (= `deactivated_at + maxTokenLifetime`), so every token it signed verifies until it expires;
 * - **expired**: `expires_at <= now`: gone from the JWKS (storage sweeps it later).
 *
 * Keys are read from storage and imported into `KeyObject`s once (at open / reload, never per
 * request); private keys are decrypted only for keys that may still sign. `signer()`, `sign()`,
 * `jwks()` and `verify()` are synchronous: the selection of signing keys and the JWKS (object and
 * JSON text) are cached and recomputed only when the clock passes the next known key boundary
 * (an `activates_at`, `deactivated_at` or `expires_at`) or after a reload.
 *
 * Several instances may share one database: each re-reads the keys with `reload()` (or
 * `startAutoReload()`, whose interval must stay well below `rotationDelay` so that every instance
 * learns of a rotation before the new key starts signing).
 */
import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { JWK } from 'jose';
import type { Clock } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { isSealed } from '../core/seal.js';
import type { Sealer } from '../core/seal.js';
import type { KeyRecord, Storage } from '../storage/contract.js';
import { JwtSigner, isSigningAlgorithm, verifyCompactJws } from './jwt-signer.js';
import type { ResolvedVerificationKey, SigningAlgorithm } from './jwt-signer.js';

export interface KeyManagerOptions {
  storage: Storage;
  clock: Clock;
  /** The default signing algorithm (default `ES256`). A key for it is generated at open when missing. */
  algorithm?: SigningAlgorithm;
  /** Encrypts private keys at rest. Without it they are stored as plain JSON (a warning is logged). */
  sealer?: Sealer;
  logger?: Logger;
  /** Seconds: the longest lifetime of anything signed (access / ID tokens). */
  maxTokenLifetime: number;
  /** Seconds between publishing a new key and signing with it (default 600). */
  rotationDelay?: number;
}

export interface RotateOptions {
  algorithm?: SigningAlgorithm;
  /** Seconds until the new key signs (default `rotationDelay`; 0 = at once). */
  activateIn?: number;
}

export type KeyStatus = 'pending' | 'active' | 'retiring' | 'expired';

export interface KeyInfo {
  kid: string;
  alg: string;
  created_at: number;
  activates_at: number;
  deactivated_at?: number;
  expires_at?: number;
  status: KeyStatus;
  /** Whether this key is the one currently signing for its algorithm. */
  signing: boolean;
}

export interface JsonWebKeySet {
  keys: JWK[];
}

export const DEFAULT_ROTATION_DELAY = 600;
export const DEFAULT_AUTO_RELOAD_INTERVAL = 60;

const UNENCRYPTED_WARNING = 'signing keys are stored unencrypted; set a key-encryption secret';

/** The public members of each key type (RFC 7518 §6); everything else is dropped from the JWKS. */
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['crv', 'x', 'y'],
  RSA: ['n', 'e'],
  OKP: ['crv', 'x'],
};

/** Key material imported once per kid and reused across reloads. */
interface ImportedKey {
  alg: SigningAlgorithm;
  /** `kty` + public members only (no kid/alg/use): what the material is. */
  material: Record<string, string>;
  publicKey: KeyObject;
  /** Present when the private key was needed (the key may sign now or later). */
  signer?: JwtSigner;
  verification: Readonly<ResolvedVerificationKey>;
  /** The JWKS entry (frozen). */
  jwk: Readonly<JWK>;
}

interface LoadedKey {
  record: KeyRecord;
  imported: ImportedKey;
}

/** The clock-dependent view, recomputed only at key boundaries and after reloads. */
interface View {
  computedAt: number;
  nextBoundary: number;
  signers: Map<SigningAlgorithm, JwtSigner>;
  jwks: JsonWebKeySet;
  jwksJson: string;
}

export class KeyManager {
  readonly #storage: Storage;
  readonly #clock: Clock;
  readonly #algorithm: SigningAlgorithm;
  readonly #sealer: Sealer | undefined;
  readonly #logger: Logger;
  readonly #maxTokenLifetime: number;
  readonly #rotationDelay: number;

  /** kid → imported material; survives reloads so each key is imported once. */
  readonly #imported = new Map<string, ImportedKey>();
  /** Loaded keys by kid, and in JWKS order (latest activation first). */
  #byKid = new Map<string, LoadedKey>();
  #ordered: LoadedKey[] = [];
  #view: View | undefined;

  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #autoReloadInFlight = false;
  #warnedUnencrypted = false;

  /** Bound once: the resolver handed to `verifyCompactJws`. */
  readonly #resolve = (kid: string): ResolvedVerificationKey | undefined => this.verificationKey(kid);

  private constructor(options: KeyManagerOptions) {
    const algorithm = options.algorithm ?? 'ES256';
    if (!isSigningAlgorithm(algorithm)) throw new TypeError(`Unsupported signing algorithm: ${String(algorithm)}`);
    if (!Number.isFinite(options.maxTokenLifetime) || options.maxTokenLifetime <= 0) {
      throw new TypeError('maxTokenLifetime must be a positive number of seconds');
    }
    const rotationDelay = options.rotationDelay ?? DEFAULT_ROTATION_DELAY;
    if (!Number.isFinite(rotationDelay) || rotationDelay < 0) {
      throw new TypeError('rotationDelay must be a non-negative number of seconds');
    }
    this.#storage = options.storage;
    this.#clock = options.clock;
    this.#algorithm = algorithm;
    this.#sealer = options.sealer;
    this.#logger = options.logger ?? silentLogger;
    this.#maxTokenLifetime = Math.ceil(options.maxTokenLifetime);
    this.#rotationDelay = Math.ceil(rotationDelay);
  }

  /**
   * Load the keys from storage (importing each once) and make sure a signing key exists for the
   * configured algorithm, generating one (active at once) when there is none.
   */
  static async open(options: KeyManagerOptions): Promise<KeyManager> {
    const manager = new KeyManager(options);
    if (manager.#sealer === undefined) manager.#warnUnencrypted();
    await manager.#exclusive(async () => {
      await manager.#load();
      await manager.#ensureUnlocked(manager.#algorithm);
    });
    return manager;
  }

  /** The configured default algorithm. */
  get algorithm(): SigningAlgorithm {
    return this.#algorithm;
  }

  // ---------------------------------------------------------------------------------------------
  // hot path (synchronous)

  /** The key currently signing for `algorithm` (default: the configured one). O(1) between key boundaries. */
  signer(algorithm: SigningAlgorithm = this.#algorithm): JwtSigner {
    const signer = this.#current().signers.get(algorithm);
    if (signer === undefined) {
      throw new Error(`No active ${algorithm} signing key; call ensure('${algorithm}') or rotate()`);
    }
    return signer;
  }

  /** Sign `payload` as a compact JWS with the current key of `algorithm`. */
  sign(payload: object, typ: string, algorithm?: SigningAlgorithm): string {
    return this.signer(algorithm).sign(payload, typ);
  }

  /** The public JWKS: every published key (pending ones included). Cached and frozen: do not mutate. */
  jwks(): JsonWebKeySet {
    return this.#current().jwks;
  }

  /** The JWKS as JSON text (cached), ready to serve. */
  jwksJson(): string {
    return this.#current().jwksJson;
  }

  /** The public key of a published key (for verifying our own tokens), with its algorithm. */
  verificationKey(kid: string): ResolvedVerificationKey | undefined {
    const loaded = this.#byKid.get(kid);
    if (loaded === undefined) return undefined;
    const expiresAt = loaded.record.expires_at;
    if (expiresAt !== undefined && expiresAt <= this.#clock()) return undefined;
    return loaded.imported.verification;
  }

  /**
   * Verify a token signed by one of our published keys; with `typ`, the header `typ` must match
   * (compared as media types: case-insensitive, `application/` optional). Returns the payload or
   * `undefined`. Claims (`exp`, `iss`, `aud`, …) are the caller's to check.
   */
  verify(token: string, typ?: string): Record<string, unknown> | undefined {
    const result = verifyCompactJws(token, this.#resolve);
    if (result === undefined) return undefined;
    if (typ !== undefined) {
      const actual = result.header.typ;
      if (typeof actual !== 'string' || normalizeTyp(actual) !== normalizeTyp(typ)) return undefined;
    }
    return result.payload;
  }

  // ---------------------------------------------------------------------------------------------
  // inspection

  list(): KeyInfo[] {
    const now = this.#clock();
    const view = this.#current();
    return this.#ordered.map(({ record }) => {
      const info: KeyInfo = {
        kid: record.kid,
        alg: record.alg,
        created_at: record.created_at,
        activates_at: record.activates_at,
        status: statusOf(record, now),
        signing: isSigningAlgorithm(record.alg) && view.signers.get(record.alg)?.kid === record.kid,
      };
      if (record.deactivated_at !== undefined) info.deactivated_at = record.deactivated_at;
      if (record.expires_at !== undefined) info.expires_at = record.expires_at;
      return info;
    });
  }

  /** The algorithms that have a key signing now. */
  algorithms(): SigningAlgorithm[] {
    return [...this.#current().signers.keys()];
  }

  // ---------------------------------------------------------------------------------------------
  // changes

  /** Re-read the keys from storage (another instance may have rotated). */
  async reload(): Promise<void> {
    await this.#exclusive(() => this.#load());
  }

  /**
   * Generate a new key for `algorithm`, published now and signing from `now + activateIn`.
   * Every key of that algorithm still signing (or due to) stops at that time and stays published
   * for `maxTokenLifetime` more. Returns the stored record (its `private_jwk` as stored: do not log it).
   */
  async rotate(options: RotateOptions = {}): Promise<KeyRecord> {
    const algorithm = options.algorithm ?? this.#algorithm;
    if (!isSigningAlgorithm(algorithm)) throw new TypeError(`Unsupported signing algorithm: ${String(algorithm)}`);
    const activateIn = options.activateIn ?? this.#rotationDelay;
    if (!Number.isFinite(activateIn) || activateIn < 0) {
      throw new TypeError('activateIn must be a non-negative number of seconds');
    }
    return this.#exclusive(async () => {
      await this.#load(); // see rotations by other instances first
      const now = this.#clock();
      const activatesAt = now + Math.ceil(activateIn);
      const record = await this.#createKey(algorithm, now, activatesAt);
      // Publish the new key first: if we stop half-way, the new key still takes over at its time.
      const retired: string[] = [];
      for (const { record: old } of this.#ordered) {
        if (old.alg !== algorithm || old.kid === record.kid) continue;
        if (old.deactivated_at !== undefined && old.deactivated_at <= activatesAt) continue;
        const expiresAt = Math.max(old.expires_at ?? 0, activatesAt + this.#maxTokenLifetime);
        await this.#storage.updateKey(old.kid, { deactivated_at: activatesAt, expires_at: expiresAt });
        retired.push(old.kid);
      }
      await this.#load();
      this.#logger.info(
        { kid: record.kid, alg: algorithm, activates_at: activatesAt, retiring: retired },
        'signing key rotated',
      );
      return record;
    });
  }

  /** Make sure a key signs for `algorithm` (e.g. RS256 for ID tokens), generating one active at once if not. */
  async ensure(algorithm: SigningAlgorithm): Promise<JwtSigner> {
    if (!isSigningAlgorithm(algorithm)) throw new TypeError(`Unsupported signing algorithm: ${String(algorithm)}`);
    return this.#exclusive(async () => {
      if (!this.#current().signers.has(algorithm)) await this.#load();
      return this.#ensureUnlocked(algorithm);
    });
  }

  /** Reload from storage every `intervalSeconds` (timer unref'd). Keep it well below `rotationDelay`. */
  startAutoReload(intervalSeconds: number = DEFAULT_AUTO_RELOAD_INTERVAL): void {
    if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) {
      throw new TypeError('intervalSeconds must be a positive number');
    }
    this.stopAutoReload();
    if (intervalSeconds >= this.#rotationDelay && this.#rotationDelay > 0) {
      this.#logger.warn(
        { interval: intervalSeconds, rotation_delay: this.#rotationDelay },
        'signing key reload interval is not shorter than the rotation delay: other instances may sign with a key this one has not loaded yet',
      );
    }
    const timer = setInterval(() => {
      if (this.#autoReloadInFlight) return;
      this.#autoReloadInFlight = true;
      this.reload()
        .catch((err: unknown) => this.#logger.error({ err }, 'signing key reload failed; keeping the keys loaded before'))
        .finally(() => {
          this.#autoReloadInFlight = false;
        });
    }, intervalSeconds * 1000);
    timer.unref();
    this.#timer = timer;
  }

  stopAutoReload(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // internals

  /** Run mutations (load, rotate, ensure) one at a time within this instance. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #warnUnencrypted(kids?: string[]): void {
    if (this.#warnedUnencrypted) return;
    this.#warnedUnencrypted = true;
    this.#logger.warn(kids === undefined ? {} : { kids }, UNENCRYPTED_WARNING);
  }

  /** The cached view, recomputed when the clock passes a boundary (or goes backwards). */
  #current(): View {
    const now = this.#clock();
    const view = this.#view;
    if (view !== undefined && now < view.nextBoundary && now >= view.computedAt) return view;
    return this.#recompute(now);
  }

  #recompute(now: number): View {
    let nextBoundary = Number.POSITIVE_INFINITY;
    const signers = new Map<SigningAlgorithm, JwtSigner>();
    const chosen = new Map<SigningAlgorithm, KeyRecord>();
    const keys: JWK[] = [];
    for (const { record, imported } of this.#ordered) {
      for (const t of [record.activates_at, record.deactivated_at, record.expires_at]) {
        if (t !== undefined && t > now && t < nextBoundary) nextBoundary = t;
      }
      const published = record.expires_at === undefined || record.expires_at > now;
      if (!published) continue;
      keys.push(imported.jwk);
      const canSign =
        imported.signer !== undefined &&
        record.activates_at <= now &&
        (record.deactivated_at === undefined || record.deactivated_at > now);
      if (!canSign || imported.signer === undefined) continue;
      const best = chosen.get(imported.alg);
      if (
        best === undefined ||
        record.activates_at > best.activates_at ||
        (record.activates_at === best.activates_at && record.kid > best.kid)
      ) {
        chosen.set(imported.alg, record);
        signers.set(imported.alg, imported.signer);
      }
    }
    const jwks: JsonWebKeySet = Object.freeze({ keys: Object.freeze(keys) as JWK[] });
    const view: View = { computedAt: now, nextBoundary, signers, jwks, jwksJson: JSON.stringify(jwks) };
    this.#view = view;
    return view;
  }

  /** Read every key from storage; import only what was not imported before. Atomic: on error nothing changes. */
  async #load(): Promise<void> {
    const records = await this.#storage.listKeys();
    const now = this.#clock();
    const byKid = new Map<string, LoadedKey>();
    const plaintext: string[] = [];
    for (const record of records) {
      if (!isSigningAlgorithm(record.alg)) {
        this.#logger.warn({ kid: record.kid, alg: record.alg }, 'ignoring signing key with an unsupported algorithm');
        continue;
      }
      const needsPrivate =
        (record.deactivated_at === undefined || record.deactivated_at > now) &&
        (record.expires_at === undefined || record.expires_at > now);
      let imported = this.#imported.get(record.kid);
      if (
        imported === undefined ||
        imported.alg !== record.alg ||
        !sameMaterial(imported.material, record.public_jwk) ||
        (needsPrivate && imported.signer === undefined)
      ) {
        imported = this.#import(record, needsPrivate);
      }
      if (needsPrivate && !isSealed(record.private_jwk)) plaintext.push(record.kid);
      byKid.set(record.kid, { record, imported });
    }
    // Commit.
    this.#imported.clear();
    for (const [kid, loaded] of byKid) this.#imported.set(kid, loaded.imported);
    this.#byKid = byKid;
    this.#ordered = [...byKid.values()].sort(
      (a, b) => b.record.activates_at - a.record.activates_at || compareDesc(a.record.kid, b.record.kid),
    );
    this.#view = undefined;
    this.#recompute(now);
    if (this.#sealer !== undefined && plaintext.length > 0) this.#warnUnencrypted(plaintext);
  }

  /** Import one stored key: public part always, private part (decrypted) when it may still sign. */
  #import(record: KeyRecord, withPrivate: boolean): ImportedKey {
    const alg = record.alg as SigningAlgorithm;
    const kid = record.kid;
    const material = publicMaterial(record.public_jwk);
    if (material === undefined) throw new Error(`signing key ${kid} has a malformed public key`);
    let publicKey: KeyObject;
    let signer: JwtSigner | undefined;
    if (withPrivate) {
      let json = record.private_jwk;
      if (isSealed(json)) {
        if (this.#sealer === undefined) throw new Error(`signing key ${kid} is encrypted; set the key-encryption secret`);
        try {
          json = this.#sealer.open(json, `signing_key:${kid}`);
        } catch (cause) {
          throw new Error(`signing key ${kid} cannot be decrypted: is the key-encryption secret the one it was stored with?`, {
            cause,
          });
        }
      }
      let privateKey: KeyObject;
      try {
        privateKey = createPrivateKey({ key: JSON.parse(json) as JsonWebKey, format: 'jwk' });
      } catch (cause) {
        throw new Error(`signing key ${kid} has a malformed private key`, { cause });
      }
      publicKey = createPublicKey(privateKey);
      const derived = publicMaterial(publicKey.export({ format: 'jwk' }) as Record<string, unknown>);
      if (derived === undefined || !sameMaterial(derived, record.public_jwk)) {
        throw new Error(`signing key ${kid}: the stored public key does not match the private key`);
      }
      try {
        signer = new JwtSigner(kid, alg, privateKey);
      } catch (cause) {
        throw new Error(`signing key ${kid} is not a valid ${alg} key`, { cause });
      }
    } else {
      try {
        publicKey = createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
      } catch (cause) {
        throw new Error(`signing key ${kid} has a malformed public key`, { cause });
      }
    }
    return makeImported(kid, alg, material, publicKey, signer);
  }

  async #ensureUnlocked(algorithm: SigningAlgorithm): Promise<JwtSigner> {
    const existing = this.#current().signers.get(algorithm);
    if (existing !== undefined) return existing;
    const now = this.#clock();
    const record = await this.#createKey(algorithm, now, now);
    this.#logger.info({ kid: record.kid, alg: algorithm }, 'signing key generated');
    // Re-read: another instance starting at the same time may have saved its own first key;
    // both stay published and every instance picks the same one to sign with.
    await this.#load();
    return this.signer(algorithm);
  }

  /** Generate, save (sealed when possible) and pre-import a new key. */
  async #createKey(algorithm: SigningAlgorithm, now: number, activatesAt: number): Promise<KeyRecord> {
    const { privateKey, publicKey } = await generateKeyPairFor(algorithm);
    const material = publicMaterial(publicKey.export({ format: 'jwk' }) as Record<string, unknown>);
    if (material === undefined) throw new Error('generated key has no exportable public JWK');
    const kid = await calculateJwkThumbprint(material as JWK, 'sha256');
    const privateJson = JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid, alg: algorithm });
    const record: KeyRecord = {
      kid,
      alg: algorithm,
      public_jwk: { ...material, kid, alg: algorithm, use: 'sig' },
      private_jwk: this.#sealer === undefined ? privateJson : this.#sealer.seal(privateJson, `signing_key:${kid}`),
      created_at: now,
      activates_at: activatesAt,
    };
    await this.#storage.saveKey(record);
    // Pre-import so the reload that follows does not decrypt and parse what we already hold.
    this.#imported.set(kid, makeImported(kid, algorithm, material, publicKey, new JwtSigner(kid, algorithm, privateKey)));
    return record;
  }
}

function makeImported(
  kid: string,
  alg: SigningAlgorithm,
  material: Record<string, string>,
  publicKey: KeyObject,
  signer: JwtSigner | undefined,
): ImportedKey {
  const jwk = Object.freeze({ ...material, kid, alg, use: 'sig' }) as JWK;
  const imported: ImportedKey = {
    alg,
    material,
    publicKey,
    verification: Object.freeze({ key: publicKey, alg }),
    jwk,
  };
  if (signer !== undefined) imported.signer = signer;
  return imported;
}

/** `kty` and the public members of a JWK, or undefined when it is not an EC / RSA / OKP public key. */
function publicMaterial(jwk: Record<string, unknown>): Record<string, string> | undefined {
  const kty = jwk['kty'];
  if (typeof kty !== 'string') return undefined;
  const members = PUBLIC_MEMBERS[kty];
  if (members === undefined) return undefined;
  const out: Record<string, string> = { kty };
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== 'string' || value.length === 0) return undefined;
    out[name] = value;
  }
  return out;
}

function sameMaterial(material: Record<string, string>, jwk: Record<string, unknown>): boolean {
  for (const [name, value] of Object.entries(material)) if (jwk[name] !== value) return false;
  return true;
}

function statusOf(record: KeyRecord, now: number): KeyStatus {
  if (record.expires_at !== undefined && record.expires_at <= now) return 'expired';
  if (record.deactivated_at !== undefined && record.deactivated_at <= now) return 'retiring';
  if (record.activates_at > now) return 'pending';
  return 'active';
}

function compareDesc(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

/** Media-type comparison of `typ` values (RFC 7515 §4.1.9): case-insensitive, `application/` optional. */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') && !lower.includes('/', 12) ? lower.slice(12) : lower;
}

function generateKeyPairFor(alg: SigningAlgorithm): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => {
      if (err) reject(err);
      else resolve({ privateKey, publicKey });
    };
    switch (alg) {
      case 'ES256':
        generateKeyPair('ec', { namedCurve: 'P-256' }, done);
        break;
      case 'RS256':
      case 'PS256':
        generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x10001 }, done);
        break;
      case 'EdDSA':
        generateKeyPair('ed25519', {}, done);
        break;
    }
  });
}
