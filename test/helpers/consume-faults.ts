import type { ArtifactKind, ArtifactRecord, Storage } from '../../src/storage/contract.js';
import { createMemoryStorage } from '../../src/storage/memory.js';

/**
 * A memory storage that, while `armed.on`, records every artifact saved and runs
 * `atConsume` just before a consume of that kind: for tests where the consume of a single-use
 * artifact fails (the tests check that nothing new was written).
 */
export function consumeFaults(
  kind: ArtifactKind,
  atConsume: (inner: Storage, id: string) => Promise<void>,
): { storage: Storage; saved: ArtifactRecord[]; armed: { on: boolean } } {
  const inner = createMemoryStorage();
  const saved: ArtifactRecord[] = [];
  const armed = { on: false };
  const storage = new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'saveArtifact') {
        return (record: ArtifactRecord) => {
          if (armed.on) saved.push(record);
          return target.saveArtifact(record);
        };
      }
      if (key === 'consumeArtifact') {
        return async (k: ArtifactKind, id: string, now: number) => {
          if (armed.on && k === kind) await atConsume(target, id);
          return target.consumeArtifact(k, id, now);
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { storage, saved, armed };
}
