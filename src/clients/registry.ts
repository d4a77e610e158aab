import type { Clock } from '../core/clock.js';
import type { Sealer } from '../core/seal.js';
import type { ClientRecord, Storage } from '../storage/contract.js';
import { normalizeClientMetadata, type ClientMetadataInput } from './metadata.js';
import { generateClientSecret } from './secrets.js';

export interface RegisteredClient {
  record: ClientRecord;
  /** The secret in clear, only when this call generated it. Shown once; never stored. */
  generatedSecret?: string;
}

/** Clients of the server, validated on the way in (RFC 7591 metadata), stored through the storage contract. */
export class ClientRegistry {
  readonly #storage: Storage;
  readonly #clock: Clock;
  readonly #grantTypes: () => readonly string[];
  readonly #sealer: Sealer | undefined;

  constructor(storage: Storage, clock: Clock, grantTypes: () => readonly string[], sealer?: Sealer) {
    this.#storage = storage;
    this.#clock = clock;
    this.#grantTypes = grantTypes;
    this.#sealer = sealer;
  }

  /** Validate without storing: throws ConfigError naming the client and field. */
  validate(metadata: ClientMetadataInput, existing?: ClientRecord): ClientRecord {
    return normalizeClientMetadata(metadata, {
      now: this.#clock(),
      grantTypes: this.#grantTypes(),
      ...(this.#sealer ? { sealer: this.#sealer } : {}),
      ...(existing ? { existing } : {}),
    });
  }

  /**
   * Insert or replace a client. With `generateSecret` and a secret-based method but no
   * `client_secret`, a 256-bit secret is generated and returned once.
   */
  async upsert(metadata: ClientMetadataInput, options: { generateSecret?: boolean } = {}): Promise<RegisteredClient> {
    const existing = await this.#storage.getClient(metadata.client_id);
    let generatedSecret: string | undefined;
    let input = metadata;
    const method = metadata.token_endpoint_auth_method;
    const wantsSecret = method === undefined || method.startsWith('client_secret');
    if (options.generateSecret === true && metadata.client_secret === undefined && wantsSecret && metadata.jwks === undefined && metadata.jwks_uri === undefined) {
      generatedSecret = generateClientSecret();
      input = { ...metadata, client_secret: generatedSecret };
    }
    const record = this.validate(input, existing);
    await this.#storage.upsertClient(record);
    return generatedSecret === undefined ? { record } : { record, generatedSecret };
  }

  /** The client's record: a copy of its own for the caller (storage may share frozen records). */
  async get(clientId: string): Promise<ClientRecord | undefined> {
    const record = await this.#storage.getClient(clientId);
    return record === undefined ? undefined : structuredClone(record);
  }

  list(): Promise<ClientRecord[]> {
    return this.#storage.listClients();
  }

  remove(clientId: string): Promise<boolean> {
    return this.#storage.deleteClient(clientId);
  }
}
