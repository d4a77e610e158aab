/**
 * Resource Indicators for OAuth 2.0 (RFC 8707): parsing and checking the `resource` parameter, the
 * audience it gives an access token, and the per-resource settings of the server.
 *
 * Rules, in order: each value must be an absolute URI without a fragment; the client must be allowed
 * the resource (its `allowed_audiences`; the server's default audience is always allowed); at the
 * token endpoint for a grant that already has resources (authorization_code, refresh_token), each
 * requested resource must be one of the grant's. Every failure is `invalid_target`.
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
import { ConfigError, OAuthError } from '../core/errors.js';
import type { ResourceOptions } from '../core/options.js';
import { parseScope } from '../core/scope.js';
import { isSigningAlgorithm } from '../keys/jwt-signer.js';
import type { ClientRecord } from '../storage/contract.js';

/** Most `resource` values one request may carry. */
export const MAX_RESOURCES = 16;
/** Longest accepted resource indicator. */
export const MAX_RESOURCE_LENGTH = 2048;

const MALFORMED = 'The resource parameter must be an absolute URI without a fragment';
const TOO_MANY = 'Too many resource parameters';
const NOT_ALLOWED = 'The client may not obtain tokens for the requested resource';
const NOT_GRANTED = 'The requested resource is not part of the original grant';

/** scheme ":" then printable ASCII (RFC 3986 §4.3 absolute-URI; non-ASCII must be percent-encoded). */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$/;

/** Values that passed {@link resourceIndicatorProblem} (a pure check; the same few come back on every request). Bounded. */
const wellFormed = new Set<string>();
const MAX_WELL_FORMED = 256;

/** Why `value` cannot be a resource indicator, or undefined when it can. */
export function resourceIndicatorProblem(value: string): string | undefined {
  if (wellFormed.has(value)) return undefined;
  if (value.length > MAX_RESOURCE_LENGTH) return `must be at most ${MAX_RESOURCE_LENGTH} characters`;
  if (!ABSOLUTE_URI.test(value) || !URL.canParse(value)) return 'must be an absolute URI';
  if (value.includes('#')) return 'must not have a fragment';
  if (wellFormed.size >= MAX_WELL_FORMED) wellFormed.clear();
  wellFormed.add(value);
  return undefined;
}

/**
 * The `resource` values of a request, checked and de-duplicated (order kept).
 * @throws OAuthError `invalid_target` for a malformed value or too many values.
 */
export function parseResourceIndicators(values: readonly string[] | undefined): string[] {
  if (values === undefined || values.length === 0) return [];
  if (values.length > MAX_RESOURCES) throw new OAuthError('invalid_target', TOO_MANY);
  const out: string[] = [];
  for (const value of values) {
    if (resourceIndicatorProblem(value) !== undefined) throw new OAuthError('invalid_target', MALFORMED);
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

/**
 * Check that the client may obtain tokens for every target (RFC 8707 resources, RFC 8693 audiences):
 * each must be in its `allowed_audiences` or be the server's default audience.
 * @throws OAuthError `invalid_target`.
 */
export function assertTargetsAllowed(client: ClientRecord, targets: readonly string[], defaultAudience: string): void {
  const allowed = client.allowed_audiences ?? [];
  for (const target of targets) {
    if (target !== defaultAudience && !allowed.includes(target)) {
      throw new OAuthError('invalid_target', NOT_ALLOWED, { detail: `client ${client.client_id} may not obtain tokens for ${target}` });
    }
  }
}

/**
 * Check that every requested resource belongs to the original grant (RFC 8707 §2.2). A grant made
 * without resources is a grant for the default audience.
 * @throws OAuthError `invalid_target`.
 */
export function assertWithinGrant(requested: readonly string[], granted: readonly string[], defaultAudience: string): void {
  const within = granted.length > 0 ? granted : [defaultAudience];
  for (const resource of requested) {
    if (!within.includes(resource)) throw new OAuthError('invalid_target', NOT_GRANTED, { detail: `${resource} is not among the resources of the grant` });
  }
}

/** The resources stored in a grant's (or code's) `data.resources`. */
export function grantedResources(data: Readonly<Record<string, unknown>> | undefined): string[] {
  const value = data?.resources;
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** `aud` for these targets: undefined for none (the default applies), a string for one, an array for several. */
export function audienceOf(targets: readonly string[]): string | string[] | undefined {
  if (targets.length === 0) return undefined;
  if (targets.length === 1) return targets[0]!;
  return [...targets];
}

/**
 * Validate the server's `resources` option; returns a frozen copy keyed by resource URI.
 * @throws ConfigError naming the resource and the field.
 */
export function normalizeResourceOptions(resources: Readonly<Record<string, ResourceOptions>> | undefined): ReadonlyMap<string, Readonly<ResourceOptions>> {
  const out = new Map<string, Readonly<ResourceOptions>>();
  if (resources === undefined) return out;
  if (resources === null || typeof resources !== 'object' || Array.isArray(resources)) throw new ConfigError('resources must be an object of resource URI → settings');
  for (const [uri, settings] of Object.entries(resources)) {
    const name = `resources[${JSON.stringify(uri)}]`;
    const problem = resourceIndicatorProblem(uri);
    if (problem !== undefined) throw new ConfigError(`${name}: the resource ${problem}`);
    if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) throw new ConfigError(`${name} must be an object`);
    const known = new Set(['accessTokenFormat', 'accessTokenTtl', 'signingAlgorithm', 'scopes']);
    for (const key of Object.keys(settings)) if (!known.has(key)) throw new ConfigError(`${name}.${key} is not a resource setting`);
    const copy: ResourceOptions = {};
    const { accessTokenFormat: format, accessTokenTtl: ttl, signingAlgorithm: alg, scopes } = settings;
    if (format !== undefined) {
      if (format !== 'jwt' && format !== 'opaque') throw new ConfigError(`${name}.accessTokenFormat must be "jwt" or "opaque"`);
      copy.accessTokenFormat = format;
    }
    if (ttl !== undefined) {
      if (!Number.isInteger(ttl) || ttl <= 0) throw new ConfigError(`${name}.accessTokenTtl must be a positive whole number of seconds`);
      copy.accessTokenTtl = ttl;
    }
    if (alg !== undefined) {
      if (!isSigningAlgorithm(alg)) throw new ConfigError(`${name}.signingAlgorithm must be ES256, RS256, PS256 or EdDSA`);
      copy.signingAlgorithm = alg;
    }
    if (scopes !== undefined) {
      if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string')) throw new ConfigError(`${name}.scopes must be an array of scope names`);
      const parsed: string[] = [];
      for (const scope of scopes as string[]) {
        let tokens: string[] = [];
        try {
          tokens = parseScope(scope);
        } catch {
          // reported below
        }
        if (tokens.length !== 1 || tokens[0] !== scope) throw new ConfigError(`${name}.scopes must be scope tokens (RFC 6749 §3.3)`);
        if (!parsed.includes(scope)) parsed.push(scope);
      }
      copy.scopes = Object.freeze(parsed) as string[];
    }
    out.set(uri, Object.freeze(copy));
  }
  return out;
}
