import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Storage, UserRecord } from '../storage/contract.js';
import { hashPassword, isPasswordHash } from './passwords.js';

export interface UserInput {
  username: string;
  /** Password in clear; hashed with argon2id before it is stored. */
  password?: string;
  /** A PHC argon2 hash, when the operator hashed the password beforehand. */
  password_hash?: string;
  /** Stable subject; generated when absent (kept when the user already exists). */
  id?: string;
  /** OIDC claims: email, name, … */
  claims?: Record<string, unknown>;
}

const USERNAME = /^[^\s\x00-\x1f\x7f]{1,255}$/u;

/** The built-in user store: usernames, argon2id password hashes, claims. */
export class UserRegistry {
  readonly #storage: Storage;
  readonly #clock: Clock;

  constructor(storage: Storage, clock: Clock) {
    this.#storage = storage;
    this.#clock = clock;
  }

  async upsert(input: UserInput): Promise<UserRecord> {
    const who = `user ${JSON.stringify(input.username ?? null)}`;
    if (typeof input.username !== 'string' || !USERNAME.test(input.username)) {
      throw new ConfigError(`${who}: field "username" must be 1-255 characters without spaces or control characters`);
    }
    if (input.password !== undefined && input.password_hash !== undefined) {
      throw new ConfigError(`${who}: give either "password" or "password_hash", not both`);
    }
    if (input.password !== undefined && (typeof input.password !== 'string' || input.password.length < 8)) {
      throw new ConfigError(`${who}: field "password" must be at least 8 characters`);
    }
    if (input.password_hash !== undefined && (typeof input.password_hash !== 'string' || !isPasswordHash(input.password_hash))) {
      throw new ConfigError(`${who}: field "password_hash" must be an argon2 PHC string ($argon2id$v=19$m=…)`);
    }
    if (input.claims !== undefined && (input.claims === null || typeof input.claims !== 'object' || Array.isArray(input.claims))) {
      throw new ConfigError(`${who}: field "claims" must be an object`);
    }
    const existing = await this.#storage.getUserByUsername(input.username);
    if (input.id !== undefined && existing !== undefined && existing.id !== input.id) {
      throw new ConfigError(`${who}: field "id" differs from the stored user's id ${existing.id}`);
    }
    const now = this.#clock();
    const passwordHash =
      input.password !== undefined ? await hashPassword(input.password) : input.password_hash ?? existing?.password_hash;
    const record: UserRecord = {
      id: existing?.id ?? input.id ?? randomUUID(),
      username: input.username,
      claims: input.claims ?? existing?.claims ?? {},
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    if (passwordHash !== undefined) record.password_hash = passwordHash;
    await this.#storage.upsertUser(record);
    return record;
  }

  /** The user's record: a copy of its own for the caller (storage may share frozen records). */
  async get(id: string): Promise<UserRecord | undefined> {
    const record = await this.#storage.getUser(id);
    return record === undefined ? undefined : structuredClone(record);
  }

  findByUsername(username: string): Promise<UserRecord | undefined> {
    return this.#storage.getUserByUsername(username);
  }

  list(): Promise<UserRecord[]> {
    return this.#storage.listUsers();
  }

  async remove(usernameOrId: string): Promise<boolean> {
    const user = (await this.#storage.getUserByUsername(usernameOrId)) ?? (await this.#storage.getUser(usernameOrId));
    return user === undefined ? false : this.#storage.deleteUser(user.id);
  }
}
