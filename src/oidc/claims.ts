import type { UserRecord } from '../storage/contract.js';

/** OIDC Core §5.4: the claims each standard scope releases. */
export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  profile: ['name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
});

/** Standard scopes every server knows, with the descriptions the consent page shows. */
export const STANDARD_SCOPES: Readonly<Record<string, string>> = Object.freeze({
  openid: 'Sign you in with your account',
  profile: 'Your basic profile: name, picture, locale',
  email: 'Your email address',
  address: 'Your postal address',
  phone: 'Your phone number',
  offline_access: 'Stay connected when you are not using it (refresh tokens)',
});

export const SUPPORTED_CLAIMS: readonly string[] = ['sub', 'iss', 'auth_time', 'acr', 'amr', 'sid', ...Object.values(SCOPE_CLAIMS).flat()];

/**
 * The user's claims released for these scopes, plus claims requested by name through the OIDC
 * `claims` parameter (for this target), always with `sub`. `preferred_username` falls back to the username.
 */
export function releasedClaims(user: UserRecord, scope: readonly string[], requested?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { sub: user.id };
  const source: Record<string, unknown> = { preferred_username: user.username, ...user.claims };
  const names = new Set<string>();
  for (const s of scope) for (const c of SCOPE_CLAIMS[s] ?? []) names.add(c);
  if (requested !== undefined) for (const c of Object.keys(requested)) if (SUPPORTED_CLAIMS.includes(c) || c in user.claims) names.add(c);
  for (const name of names) {
    if (name === 'sub') continue;
    const value = source[name];
    if (value !== undefined && value !== null) out[name] = value;
  }
  return out;
}
