import { sha256 } from '../core/crypto.js';
import type { ServerContext } from '../server-context.js';
import type { ArtifactRecord } from '../storage/contract.js';

/** RFC 8628 §3.4: the grant type of device-code polling at the token endpoint. */
export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** RFC 8628 §3.5: each `slow_down` adds this many seconds to the interval, for this and every later poll. */
export const SLOW_DOWN_STEP = 5;

/**
 * Device-code and user-code artifacts are kept this long after the code's real expiry, so a device
 * that polls late is told `expired_token` (not `invalid_grant`) and the verification page can say the
 * code expired. The real expiry is in the artifact's data.
 */
export const EXPIRED_RETENTION_SECONDS = 3600;

/**
 * How long a claim on a state version is held. A writer claims version n, then writes version n+1;
 * a writer that dies in between blocks further writes for at most this long.
 */
const VERSION_CLAIM_SECONDS = 60;

export type DeviceStatus = 'pending' | 'approved' | 'denied';

/**
 * The `data` of a `device_code` artifact. Every write goes through {@link claimVersion} +
 * {@link writeDeviceState}, so concurrent writers (polls, the verification page) never overwrite
 * each other: of all writers that read version n, exactly one may write version n+1.
 */
export interface DeviceCodeState {
  status: DeviceStatus;
  /** The real expiry (seconds); the artifact outlives it by {@link EXPIRED_RETENTION_SECONDS}. */
  expires_at: number;
  /** Seconds the device must wait between polls; grows by {@link SLOW_DOWN_STEP} at each slow_down. */
  interval: number;
  /** Time of the last accepted poll (a poll answered slow_down does not count). */
  last_poll?: number;
  /** Optimistic-concurrency version of this state. */
  version: number;
  /** Storage id of the user-code artifact. */
  user_code_id: string;
  /** Set at approval: who approved, and the grant the tokens will belong to. */
  user_id?: string;
  grant_id?: string;
  decided_at?: number;
}

/** The data of a `user_code` artifact: which device code it names. */
export interface UserCodeState {
  device_code_id: string;
}

/** Storage id of a device code (SHA-256 of its value, like every code). */
export function deviceCodeId(deviceCode: string): string {
  return sha256(deviceCode);
}

/** Storage id of a normalized user code. */
export function userCodeId(normalized: string): string {
  return sha256(normalized);
}

/** The device state of an artifact, or undefined when it is not one (never trust stored shapes blindly). */
export function readDeviceState(record: ArtifactRecord): DeviceCodeState | undefined {
  const d = record.data;
  if (d === undefined) return undefined;
  if (d.status !== 'pending' && d.status !== 'approved' && d.status !== 'denied') return undefined;
  if (typeof d.expires_at !== 'number' || typeof d.interval !== 'number' || typeof d.version !== 'number' || typeof d.user_code_id !== 'string') return undefined;
  const state: DeviceCodeState = { status: d.status, expires_at: d.expires_at, interval: d.interval, version: d.version, user_code_id: d.user_code_id };
  if (typeof d.last_poll === 'number') state.last_poll = d.last_poll;
  if (typeof d.user_id === 'string') state.user_id = d.user_id;
  if (typeof d.grant_id === 'string') state.grant_id = d.grant_id;
  if (typeof d.decided_at === 'number') state.decided_at = d.decided_at;
  return state;
}

/**
 * Claim the right to write the successor of `version` (a compare-and-set built on the atomic
 * `recordOnce`). True for exactly one of any number of concurrent callers.
 */
export function claimVersion(server: ServerContext, id: string, version: number): Promise<boolean> {
  const now = server.clock();
  return server.storage.recordOnce(`device_code_version:${id}:${version}`, now + VERSION_CLAIM_SECONDS, now);
}

/** Write the next version of the state (call only after {@link claimVersion} of `previous.version` succeeded). */
export async function writeDeviceState(server: ServerContext, id: string, previous: DeviceCodeState, changes: Partial<DeviceCodeState>): Promise<DeviceCodeState> {
  const next: DeviceCodeState = { ...previous, ...changes, version: previous.version + 1 };
  await server.storage.updateArtifactData('device_code', id, next as unknown as Record<string, unknown>);
  return next;
}
