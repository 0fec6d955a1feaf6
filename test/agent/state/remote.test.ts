import { describe, expect, it } from 'vitest';
import type { FileMap } from '../../../src/agent/state/metadata.js';
import { writeMetadataOf } from '../../../src/agent/state/remote.js';
import { MemoryStore, storeError } from '../support/memory-store.js';

const fields = {
  lastSync: '2026-01-01T00:00:00.000Z',
  session: 's',
  namespace: 'ns',
  pathsSynced: 1,
  syncPaths: ['artifacts'],
  files: 1,
  bytes: 3,
  skipped: [],
  maxSyncSize: 100,
  agentVersion: '0.1.0',
};
const manifest: FileMap = new Map([['artifacts/a.txt', { size: 3, mtimeMs: 1700000000000, mode: 0o644 }]]);
const expected = JSON.stringify({ ...fields, manifest: Object.fromEntries(manifest) }, null, 2);

// metadata.json is all a pod without s3:ListBucket restores from, and the final sync has
// no next cycle: one transient failure must not leave it behind the data it describes.
describe('writing metadata.json', () => {
  it('survives one transient failure: the streamed document is produced again for a second attempt', async () => {
    const store = new MemoryStore().failNth('put', 1);
    await writeMetadataOf({ store, prefix: 'ns/s/' }, fields, manifest, new AbortController().signal);
    expect(store.text('ns/s/metadata.json')).toBe(expected);
    expect(store.calls.filter((call) => call.op === 'put')).toHaveLength(2);
  });

  it.each(['access-denied', 'credentials'] as const)('does not retry what a second attempt cannot fix (%s)', async (kind) => {
    const store = new MemoryStore().failNth('put', 1, storeError(kind));
    await expect(writeMetadataOf({ store, prefix: 'ns/s/' }, fields, manifest, new AbortController().signal)).rejects.toMatchObject({ kind });
    expect(store.calls.filter((call) => call.op === 'put')).toHaveLength(1);
  });

  it('gives up after the second transient failure, for the caller to report', async () => {
    const store = new MemoryStore().failAll('put');
    await expect(writeMetadataOf({ store, prefix: 'ns/s/' }, fields, manifest, new AbortController().signal)).rejects.toMatchObject({ kind: 'other' });
    expect(store.calls.filter((call) => call.op === 'put')).toHaveLength(2);
    expect(store.text('ns/s/metadata.json')).toBeUndefined();
  });
});
