/**
 * A fast, synchronous compact-JWS (RFC 7515) signer and verifier on `node:crypto`.
 *
 * Signing sits on the token endpoint's hot path, so this module does the minimum per call: the
 * base64url header is computed once per `typ` and cached, the `node:crypto` options object is built
 * once per key, and nothing is async. jose is not used here (it is only used by the tests to prove
 * interoperability).
 *
 * Verification is strict: the header `alg` must equal the algorithm the key is bound to (never
 * `none`, never an algorithm chosen by the token), `crit` is rejected, segments must be base64url,
 * and the signature must be canonically encoded (so one signature has one token string).
 * `verifyCompactJws` never throws: every malformation is `undefined`.
 */
import { constants, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export type SigningAlgorithm = 'ES256' | 'RS256' | 'PS256' | 'EdDSA';

export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = Object.freeze(['ES256', 'RS256', 'PS256', 'EdDSA']);

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return value === 'ES256' || value === 'RS256' || value === 'PS256' || value === 'EdDSA';
}

/** A JOSE header as parsed from a verified token. */
export interface JwsHeader {
  alg: string;
  kid: string;
  typ?: string;
  [member: string]: unknown;
}

export interface VerifiedJws {
  header: JwsHeader;
  payload: Record<string, unknown>;
}

/** What a key resolver returns: the verification key and the one algorithm it is bound to. */
export interface ResolvedVerificationKey {
  key: KeyObject;
  alg: SigningAlgorithm | string;
}

/** Tokens longer than this are rejected before any parsing (a cheap guard against abuse). */
export const MAX_JWS_LENGTH = 64 * 1024;

/** Per-algorithm parameters for `crypto.sign` / `crypto.verify`. */
interface AlgorithmParams {
  hash: string | null;
  options: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
  /** Exact signature length in bytes when fixed by the algorithm (ES256, EdDSA). */
  signatureLength?: number;
}

const PARAMS: Readonly<Record<SigningAlgorithm, AlgorithmParams>> = {
  ES256: { hash: 'sha256', options: { dsaEncoding: 'ieee-p1363' }, signatureLength: 64 },
  RS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PADDING } },
  PS256: { hash: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  EdDSA: { hash: null, options: {}, signatureLength: 64 },
};

/** Whether `key` is of the type the algorithm needs (EC P-256, RSA ≥ 2048 bits, Ed25519). */
export function keyFitsAlgorithm(key: KeyObject, alg: SigningAlgorithm): boolean {
  if (key.type !== 'private' && key.type !== 'public') return false;
  switch (alg) {
    case 'ES256':
      return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    case 'RS256':
    case 'PS256':
      return key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519';
  }
}

/** Keys already checked by {@link keyFitsAlgorithm}, so verification checks each key only once. */
const checkedKeys = new WeakMap<KeyObject, string>();

function fits(key: KeyObject, alg: SigningAlgorithm): boolean {
  if (checkedKeys.get(key) === alg) return true;
  if (!keyFitsAlgorithm(key, alg)) return false;
  checkedKeys.set(key, alg);
  return true;
}

/** Header cache bound per signer: `typ` values are a handful of constants in practice. */
const MAX_CACHED_HEADERS = 32;

export class JwtSigner {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly #hash: string | null;
  readonly #signOptions: { key: KeyObject; dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
  /** `typ` → `base64url(header) + '.'` */
  readonly #headers = new Map<string, string>();

  constructor(kid: string, alg: SigningAlgorithm, privateKey: KeyObject) {
    if (typeof kid !== 'string' || kid.length === 0) throw new TypeError('JwtSigner: kid must be a non-empty string');
    if (!isSigningAlgorithm(alg)) throw new TypeError(`JwtSigner: unsupported algorithm ${String(alg)}`);
    if (privateKey.type !== 'private') throw new TypeError('JwtSigner: a private key is required');
    if (!keyFitsAlgorithm(privateKey, alg)) {
      throw new TypeError(`JwtSigner: key ${kid} does not fit ${alg}`);
    }
    this.kid = kid;
    this.alg = alg;
    const params = PARAMS[alg];
    this.#hash = params.hash;
    this.#signOptions = { key: privateKey, ...params.options };
  }

  /** `base64url({"alg","kid","typ"}) + '.'`, computed once per `typ`. */
  #headerPrefix(typ: string): string {
    let prefix = this.#headers.get(typ);
    if (prefix === undefined) {
      prefix = `${Buffer.from(JSON.stringify({ alg: this.alg, kid: this.kid, typ }), 'utf8').toString('base64url')}.`;
      if (this.#headers.size < MAX_CACHED_HEADERS) this.#headers.set(typ, prefix);
    }
    return prefix;
  }

  /** Sign `payload` (serialised with `JSON.stringify`) as a compact JWS with header `{alg, kid, typ}`. */
  sign(payload: object, typ: string): string {
    const input = this.#headerPrefix(typ) + Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const signature = cryptoSign(this.#hash, Buffer.from(input, 'latin1'), this.#signOptions);
    return `${input}.${signature.toString('base64url')}`;
  }
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

function parseObject(segment: string): Record<string, unknown> | undefined {
  if (!SEGMENT.test(segment)) return undefined;
  const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/**
 * Verify a compact JWS synchronously. `resolveKey` maps the header `kid` to a key and the one
 * algorithm that key is bound to; the header `alg` must equal it. Returns the parsed header and
 * payload (a JSON object), or `undefined` for anything malformed, unknown or not verifying.
 * Claims (`exp`, `iss`, `aud`, …) are not checked here.
 */
export function verifyCompactJws(
  token: string,
  resolveKey: (kid: string) => ResolvedVerificationKey | undefined,
): VerifiedJws | undefined {
  try {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_JWS_LENGTH) return undefined;
    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) return undefined;
    const headerSegment = token.slice(0, dot1);
    const payloadSegment = token.slice(dot1 + 1, dot2);
    const signatureSegment = token.slice(dot2 + 1);

    const header = parseObject(headerSegment);
    if (header === undefined) return undefined;
    const { alg, kid } = header;
    if (typeof alg !== 'string' || !isSigningAlgorithm(alg)) return undefined; // also rejects "none"
    if (typeof kid !== 'string' || kid.length === 0) return undefined;
    if (header['crit'] !== undefined) return undefined; // no extensions understood
    if (header['b64'] !== undefined && header['b64'] !== true) return undefined;
    if (header['typ'] !== undefined && typeof header['typ'] !== 'string') return undefined;

    const resolved = resolveKey(kid);
    if (resolved === undefined || resolved.alg !== alg) return undefined;
    if (!fits(resolved.key, alg)) return undefined;

    if (!SEGMENT.test(payloadSegment) || !SEGMENT.test(signatureSegment)) return undefined;
    const signature = Buffer.from(signatureSegment, 'base64url');
    // Canonical encoding only: no second token string for the same signature.
    if (signature.toString('base64url') !== signatureSegment) return undefined;
    const params = PARAMS[alg];
    if (params.signatureLength !== undefined && signature.length !== params.signatureLength) return undefined;

    // Every byte of the signing input is ASCII here (checked above), so latin1 is exact.
    const input = Buffer.from(token.slice(0, dot2), 'latin1');
    if (!cryptoVerify(params.hash, input, { key: resolved.key, ...params.options }, signature)) return undefined;

    const payload = parseObject(payloadSegment);
    if (payload === undefined) return undefined;
    return { header: header as JwsHeader, payload };
  } catch {
    return undefined;
  }
}
