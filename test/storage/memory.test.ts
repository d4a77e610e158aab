import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/core/errors.js';
import { runStorageConformance } from '../../src/storage/conformance.js';
import { MemoryStorage, createMemoryStorage } from '../../src/storage/memory.js';

runStorageConformance('memory', () => createMemoryStorage());

describe('MemoryStorage', () => {
  it('is named memory', () => {
    const storage = createMemoryStorage();
    assert.ok(storage instanceof MemoryStorage);
    assert.equal(storage.name, 'memory');
  });

  it('rejects every call with StorageUnavailableError once closed', async () => {
    const storage = createMemoryStorage();
    await storage.close();
    await assert.rejects(storage.ping(), StorageUnavailableError);
    await assert.rejects(storage.getClient('c'), StorageUnavailableError);
    await assert.rejects(storage.consumeArtifact('authorization_code', 'x', 1), StorageUnavailableError);
    await assert.rejects(storage.recordOnce('k', 2, 1), StorageUnavailableError);
    await assert.rejects(storage.sweepExpired(1), StorageUnavailableError);
    await storage.close();
  });

  it('rejects a duplicate artifact instead of resetting it', async () => {
    const storage = createMemoryStorage();
    const code = { kind: 'authorization_code' as const, id: 'c', client_id: 'x', scope: '', created_at: 1, expires_at: 100 };
    await storage.saveArtifact(code);
    assert.equal((await storage.consumeArtifact('authorization_code', 'c', 2)).status, 'consumed');
    await assert.rejects(storage.saveArtifact(code));
    assert.equal((await storage.consumeArtifact('authorization_code', 'c', 3)).status, 'already_consumed');
  });

  it('rejects a non-positive rate-limit window', async () => {
    const storage = createMemoryStorage();
    await assert.rejects(storage.hitRateLimit('k', 0, 10), RangeError);
  });
});
