/** Shared fixtures of the RFC 8707 tests: resource URIs, clients that may use them, form helpers. */
import type { OAuthResponse } from '../../src/core/http.js';
import type { PortcullisOptions } from '../../src/core/options.js';
import { createHarness, type Harness } from '../helpers/harness.js';

export const API_A = 'https://api-a.example.com/';
export const API_B = 'https://api-b.example.com/v1';
export const API_OPAQUE = 'https://opaque.example.com/';
export const API_SHORT = 'https://short.example.com/';
export const API_RS = 'https://rs256.example.com/';
export const API_SCOPED = 'https://orders.example.com/';
/** Allowed to no client. */
export const API_OTHER = 'https://other.example.com/';

export const RSVC: [string, string] = ['rsvc', 'rsvc-secret-0123456789'];
export const PWD: [string, string] = ['pwd', 'pwd-secret-0123456789'];
export const RS_A: [string, string] = ['rs-a', 'rs-a-secret-0123456789'];
export const RS_B: [string, string] = ['rs-b', 'rs-b-secret-0123456789'];
export const RS_OPAQUE: [string, string] = ['rs-opaque', 'rs-opaque-secret-0123456789'];

export const RESOURCES: NonNullable<PortcullisOptions['resources']> = {
  [API_OPAQUE]: { accessTokenFormat: 'opaque' },
  [API_SHORT]: { accessTokenTtl: 120 },
  [API_RS]: { signingAlgorithm: 'RS256' },
  [API_SCOPED]: { scopes: ['orders:read', 'orders:write'] },
};

/** The standard harness plus clients allowed some resources, and resource servers for A, B and the opaque one. */
export async function createResourceHarness(options: Partial<PortcullisOptions> = {}): Promise<Harness> {
  const h = await createHarness({ resources: RESOURCES, ...options });
  const all = [API_A, API_B, API_OPAQUE, API_SHORT, API_RS, API_SCOPED];
  await h.portcullis.clients.upsert({ client_id: RSVC[0], client_secret: RSVC[1], grant_types: ['client_credentials'], scope: 'api:read orders:read orders:write', allowed_audiences: all });
  await h.portcullis.clients.upsert({ client_id: PWD[0], client_secret: PWD[1], grant_types: ['password', 'refresh_token'], scope: 'api:read api:write', allowed_audiences: [API_A, API_B, API_SHORT] });
  await h.portcullis.clients.upsert({ client_id: RS_A[0], client_secret: RS_A[1], grant_types: ['client_credentials'], resource_server_audiences: [API_A] });
  await h.portcullis.clients.upsert({ client_id: RS_B[0], client_secret: RS_B[1], grant_types: ['client_credentials'], resource_server_audiences: [API_B] });
  await h.portcullis.clients.upsert({ client_id: RS_OPAQUE[0], client_secret: RS_OPAQUE[1], grant_types: ['client_credentials'], resource_server_audiences: [API_OPAQUE] });
  return h;
}

/** A urlencoded body where `resource` (or any name) may repeat. */
export function form(fields: Record<string, string | string[]>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) params.append(name, v);
  return params.toString();
}

export function jwtParts(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}

export function body(res: OAuthResponse): Record<string, unknown> {
  return JSON.parse(res.body) as Record<string, unknown>;
}
