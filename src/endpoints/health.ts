import type { OAuthResponse } from '../core/http.js';
import type { ServerContext } from '../server-context.js';

function json(status: number, body: unknown): OAuthResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: JSON.stringify(body) };
}

/** Liveness: no I/O. */
export function healthEndpoint(): OAuthResponse {
  return json(200, { status: 'ok' });
}

/** Readiness: the store answers and a signing key is loaded. */
export async function readinessEndpoint(server: ServerContext): Promise<OAuthResponse> {
  try {
    await server.storage.ping();
  } catch {
    return json(503, { status: 'unavailable', check: 'storage' });
  }
  if (server.keys.algorithms().length === 0) return json(503, { status: 'unavailable', check: 'keys' });
  return json(200, { status: 'ok' });
}
