import { describe, expect, it } from 'vitest';
import { metadataPieces, type FileMap } from '../../../src/agent/state/metadata.js';

const fields = {
  lastSync: '2026-01-01T00:00:00.000Z',
  session: 's',
  namespace: 'ns',
  pathsSynced: 2,
  syncPaths: ['.claude', 'artifacts'],
  files: 3,
  bytes: 10,
  skipped: [{ path: 'artifacts/big', size: 5, reason: 'MAX_SYNC_SIZE' }],
  maxSyncSize: 100,
  agentVersion: '0.1.0',
};

describe('metadata.json written in pieces', () => {
  it.each([
    ['an empty manifest', new Map()],
    [
      'keys out of order, quoted and non-ASCII, entries with and without optional fields',
      new Map([
        ['artifacts/z "q".md', { size: 1, mtimeMs: 1700000000123.5, mode: 0o644, uploadedAt: 1 }],
        ['.claude/é/日本', { size: 2, mtimeMs: -1 }],
        ['artifacts/a\\b\n', { size: 7, mtimeMs: 3, mode: undefined }],
      ]),
    ],
  ])('is the text JSON.stringify(…, null, 2) made of the document with %s', (_, manifest: FileMap) => {
    const sorted = Object.fromEntries([...manifest].sort(([a], [b]) => (a < b ? -1 : 1)));
    const expected = JSON.stringify({ ...fields, manifest: sorted }, null, 2);
    for (const chunk of [1, 64 * 1024]) {
      expect([...metadataPieces(fields, manifest, chunk)].join('')).toBe(expected);
    }
  });
});
