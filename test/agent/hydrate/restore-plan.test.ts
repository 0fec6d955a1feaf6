import { describe, expect, it } from 'vitest';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY } from '../../../src/agent/bundle/bundle-format.js';
import { inPlaceEntry, planCounts, planRestore, type RestoreInput, type RestorePlan } from '../../../src/agent/hydrate/restore-plan.js';
import { parseSyncPaths } from '../../../src/agent/settings.js';
import { remoteOnly, type FileEntry } from '../../../src/agent/state/metadata.js';
import type { LeaseBody } from '../../../src/agent/state/lease.js';
import type { Listing, MetadataRead } from '../../../src/agent/state/remote.js';

const syncPaths = parseSyncPaths('.claude,artifacts,uploads');
const HASH = 'a'.repeat(64);
const entry = (size: number, extra: Partial<FileEntry> = {}): FileEntry => ({ size, mtimeMs: 1_000, uploadedAt: 500, sha256: HASH, ...extra });
const LARGE = BUNDLE_FILE_LIMIT + 1;

// `null`: a manifest or lease without a generation.
const found = (manifest: Record<string, FileEntry> | undefined, generation: string | null = 'g1'): MetadataRead => ({
  kind: 'found',
  metadata: {
    lastSync: '2026-01-01T00:00:00.000Z',
    session: 's1',
    namespace: 'project-a',
    pathsSynced: 3,
    ...(generation === null ? {} : { generation }),
    ...(manifest === undefined ? {} : { manifest }),
  },
});
const listed = (sizes: Record<string, number>, bundle = true): Listing => ({
  kind: 'listed',
  sizes: new Map(Object.entries(sizes)),
  etags: new Map(Object.keys(sizes).map((key) => [key, `"${key}"`])),
  agentObjects: new Set(bundle ? [BUNDLE_KEY] : []),
});
const lease = (generation: string | null = 'g1', adopt?: Record<string, FileEntry>): LeaseBody => ({
  version: 1,
  owner: 'pod-b',
  state: 'active',
  renewedAt: '2026-01-01T00:00:00.000Z',
  ttlSeconds: 300,
  graceSeconds: 120,
  ...(generation === null ? {} : { generation }),
  ...(adopt === undefined ? {} : { adopt }),
});

// A session that synced one small and one large file, listed, with a restore bundle.
const manifest = { 'artifacts/small.txt': entry(10), 'artifacts/large.bin': entry(LARGE) };
const sizes = { 'artifacts/small.txt': 10, 'artifacts/large.bin': LARGE };
function input(overrides: Partial<RestoreInput> = {}): RestoreInput {
  return { metadata: found(manifest), listing: listed(sizes), lease: lease(), syncPaths, workspaceDir: '/workspace', ...overrides };
}

// What a row asserts about a plan: keys only, and every field but the manifest.
interface View {
  fresh: boolean;
  current: boolean;
  fetch: string[];
  fromBundle: string[];
  skipped: string[];
  runnerHas: string[];
  runnerDeleted: string[];
  files: string[];
  unrestored: string[];
  readAccessUnproven: boolean;
  counts: ReturnType<typeof planCounts>;
}

function view(plan: RestorePlan): View {
  return {
    fresh: plan.fresh,
    current: plan.current,
    fetch: plan.fetch.map((job) => job.key),
    fromBundle: plan.fromBundle.map((job) => job.key),
    skipped: plan.skipped.map((skip) => `${skip.refused ? 'refused' : 'unrestorable'} ${skip.key}: ${skip.reason}`),
    runnerHas: plan.runnerHas,
    runnerDeleted: plan.runnerDeleted,
    files: [...plan.files.keys()],
    unrestored: [...plan.unrestored],
    readAccessUnproven: plan.readAccessUnproven,
    counts: planCounts(plan),
  };
}

const nothing: View = {
  fresh: false,
  current: true,
  fetch: [],
  fromBundle: [],
  skipped: [],
  runnerHas: [],
  runnerDeleted: [],
  files: [],
  unrestored: [],
  readAccessUnproven: false,
  counts: { restoring: 0, unchanged: 0, refused: 0, unrestorable: 0 },
};
const counts = (restoring: number, unchanged = 0, refused = 0, unrestorable = 0) => ({ counts: { restoring, unchanged, refused, unrestorable } });
const long = `artifacts/${'x'.repeat(256)}`;

describe('the restore plan', () => {
  it.each<[string, RestoreInput, Partial<View>]>([
    [
      'nothing in metadata.json or the listing: a fresh session',
      input({ metadata: { kind: 'missing' }, listing: listed({}), lease: lease(null) }),
      { fresh: true, readAccessUnproven: true },
    ],
    [
      'a fresh session without s3:ListBucket',
      input({ metadata: { kind: 'missing' }, listing: { kind: 'denied' }, lease: lease(null) }),
      { fresh: true, readAccessUnproven: true },
    ],
    [
      'no metadata.json under a lease whose cycles changed objects: not current, and nothing in S3 is still fresh',
      input({ metadata: { kind: 'missing' }, listing: listed({}) }),
      { fresh: true, current: false, readAccessUnproven: true },
    ],
    ['an empty manifest, listing denied: fresh', input({ metadata: found({}), listing: { kind: 'denied' } }), { fresh: true }],
    [
      'a fresh session in a re-run keeps what the record knows',
      input({ metadata: found({}), listing: listed({}), rerun: { files: new Map([['artifacts/mine.txt', entry(1)]]), unrestored: new Set(['artifacts/odd']) } }),
      { fresh: true, files: ['artifacts/mine.txt'], unrestored: ['artifacts/odd'] },
    ],
    ['small files from the bundle, large ones per object', input(), { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], ...counts(2) }],
    [
      'a file of exactly BUNDLE_FILE_LIMIT bytes is a small one',
      input({ metadata: found({ 'artifacts/edge': entry(BUNDLE_FILE_LIMIT) }), listing: listed({ 'artifacts/edge': BUNDLE_FILE_LIMIT }) }),
      { fromBundle: ['artifacts/edge'], ...counts(1) },
    ],
    [
      'no bundle in the listing: every file per object, large ones first',
      input({ listing: listed(sizes, false) }),
      { fetch: ['artifacts/large.bin', 'artifacts/small.txt'], ...counts(2) },
    ],
    [
      'without s3:ListBucket the bundle is tried: only its GET can tell',
      input({ listing: { kind: 'denied' } }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], ...counts(2) },
    ],
    [
      "a manifest older than the lease's generation (rule 12): no bundle",
      input({ lease: lease('g2') }),
      { current: false, fetch: ['artifacts/large.bin', 'artifacts/small.txt'], ...counts(2) },
    ],
    [
      'a manifest from before generations under a lease with one: not current',
      input({ metadata: found(manifest, null) }),
      { current: false, fetch: ['artifacts/large.bin', 'artifacts/small.txt'], ...counts(2) },
    ],
    [
      'a lease under which no cycle began: any manifest is current',
      input({ lease: lease(null), metadata: found(manifest, 'g0') }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], ...counts(2) },
    ],
    [
      'files a superseded pod left for the owner are restored',
      input({ lease: lease('g1', { 'artifacts/adopted.txt': entry(3) }) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/adopted.txt', 'artifacts/small.txt'], ...counts(3) },
    ],
    [
      'a listed object the manifest lacks is restored with its listed size',
      input({ listing: listed({ ...sizes, 'artifacts/new.txt': 5 }) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/new.txt', 'artifacts/small.txt'], ...counts(3) },
    ],
    [
      'metadata.json unreadable with a listing: restored from the listing',
      input({ metadata: { kind: 'invalid', reason: 'not JSON' }, lease: lease(null) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], ...counts(2) },
    ],
    [
      'keys that would escape the workspace are refused, not recorded',
      input({ metadata: found({ ...manifest, '../escape': entry(1), 'artifacts/../x': entry(1), '/etc/passwd': entry(1), 'artifacts//x': entry(1) }) }),
      {
        fetch: ['artifacts/large.bin'],
        fromBundle: ['artifacts/small.txt'],
        skipped: [
          'refused ../escape: contains ".."',
          'refused /etc/passwd: absolute path',
          'refused artifacts/../x: contains ".."',
          'refused artifacts//x: contains an empty or "." segment',
        ],
        ...counts(2, 0, 4),
      },
    ],
    [
      "objects of sync paths this pod does not sync are recorded for the next pod's manifest, not restored",
      input({ metadata: found({ ...manifest, 'file-uploads/spec.pdf': entry(7), 'top-level.txt': entry(2) }), listing: listed({ ...sizes, 'other/listed-only': 4 }) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], files: ['file-uploads/spec.pdf', 'other/listed-only', 'top-level.txt'], ...counts(2) },
    ],
    [
      'a path component longer than 255 bytes is not restorable: named, recorded, kept from deletion',
      input({ metadata: found({ ...manifest, [long]: entry(1) }) }),
      {
        fetch: ['artifacts/large.bin'],
        fromBundle: ['artifacts/small.txt'],
        skipped: [`unrestorable ${long}: a path component is longer than 255 bytes`],
        files: [long],
        unrestored: [long],
        ...counts(2, 0, 0, 1),
      },
    ],
    [
      'a key that is also a directory: the directory wins',
      input({ metadata: found({ 'artifacts/d': entry(1), 'artifacts/d/e/f': entry(2), 'artifacts/d/e': entry(3) }), listing: listed({}) }),
      {
        fromBundle: ['artifacts/d/e/f'],
        skipped: ['unrestorable artifacts/d: it is also a directory (artifacts/d/...)', 'unrestorable artifacts/d/e: it is also a directory (artifacts/d/e/...)'],
        files: ['artifacts/d', 'artifacts/d/e'],
        unrestored: ['artifacts/d', 'artifacts/d/e'],
        ...counts(1, 0, 0, 2),
      },
    ],
    [
      'no metadata.json: nothing shows these credentials may read here',
      input({ metadata: { kind: 'missing' }, lease: lease(null) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], readAccessUnproven: true, ...counts(2) },
    ],
  ])('%s', (_, restoreInput, expected) => {
    expect(view(planRestore(restoreInput))).toEqual({ ...nothing, ...expected });
  });
});

describe('a re-run of init-hydrate in a pod that hydrated (rule 11)', () => {
  const rerunFiles = (known: Record<string, FileEntry>) => new Map(Object.entries(known));
  it.each<[string, RestoreInput, Partial<View>]>([
    [
      "the runner's files stay as they are, whatever they hold",
      input({ rerun: { files: rerunFiles({ 'artifacts/small.txt': entry(99) }) }, present: new Set(['artifacts/small.txt', 'artifacts/large.bin']) }),
      { runnerHas: ['artifacts/large.bin', 'artifacts/small.txt'], files: ['artifacts/small.txt'], ...counts(0, 2) },
    ],
    [
      'a file this pod restored and the runner deleted is not restored',
      input({ rerun: { files: rerunFiles({ 'artifacts/small.txt': entry(10) }) }, present: new Set() }),
      { fetch: ['artifacts/large.bin'], runnerDeleted: ['artifacts/small.txt'], files: ['artifacts/small.txt'], ...counts(1) },
    ],
    [
      'a key this pod only knew remotely is restored',
      input({ rerun: { files: rerunFiles({ 'artifacts/small.txt': remoteOnly(10) }) }, present: new Set() }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], files: ['artifacts/small.txt'], ...counts(2) },
    ],
    [
      'a key the first run could not restore is tried again and stays unrestored until it is',
      input({ rerun: { files: rerunFiles({ 'artifacts/small.txt': entry(10) }), unrestored: new Set(['artifacts/small.txt']) }, present: new Set() }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], files: ['artifacts/small.txt'], unrestored: ['artifacts/small.txt'], ...counts(2) },
    ],
    [
      'keys of other sync paths and refused keys are not looked for locally',
      input({ metadata: found({ ...manifest, 'file-uploads/x': entry(1), '../y': entry(1) }), rerun: { files: rerunFiles({}) }, present: new Set(['artifacts/large.bin']) }),
      { fromBundle: ['artifacts/small.txt'], runnerHas: ['artifacts/large.bin'], skipped: ['refused ../y: contains ".."'], files: ['file-uploads/x'], ...counts(1, 1, 1) },
    ],
    [
      'without a re-run record, files present locally are restored over (an earlier attempt of this hydrate)',
      input({ present: new Set(['artifacts/small.txt']) }),
      { fetch: ['artifacts/large.bin'], fromBundle: ['artifacts/small.txt'], ...counts(2) },
    ],
  ])('%s', (_, restoreInput, expected) => {
    expect(view(planRestore(restoreInput))).toEqual({ ...nothing, ...expected });
  });
});

describe('what each job is checked against', () => {
  it('a job carries the manifest entry, the record entry and the size S3 announces now', () => {
    const plan = planRestore(input({ metadata: found({ 'artifacts/grown.txt': entry(10) }), listing: listed({ 'artifacts/grown.txt': 12, 'artifacts/listed.txt': 5 }) }));
    const jobs = new Map([...plan.fetch, ...plan.fromBundle].map((job) => [job.key, job]));
    expect(jobs.get('artifacts/grown.txt')).toEqual({ key: 'artifacts/grown.txt', relativePath: 'artifacts/grown.txt', known: entry(10), remote: entry(10), announcedSize: 12 });
    expect(jobs.get('artifacts/listed.txt')).toEqual({ key: 'artifacts/listed.txt', relativePath: 'artifacts/listed.txt', known: undefined, remote: remoteOnly(5), announcedSize: 5 });
  });

  it('a sync path mounted elsewhere restores under its local directory', () => {
    const plan = planRestore(input({ metadata: found({ '.claude/settings.json': entry(1) }), listing: listed({}), syncPaths: parseSyncPaths('.claude=home/.claude') }));
    expect(plan.fromBundle.map((job) => job.relativePath)).toEqual(['home/.claude/settings.json']);
  });

  it('adopted files do not replace the manifest entry of the same key', () => {
    const plan = planRestore(input({ lease: lease('g1', { 'artifacts/small.txt': entry(11, { sha256: 'b'.repeat(64) }) }) }));
    expect(plan.manifest.get('artifacts/small.txt')).toEqual(entry(10));
  });

  it('a manifest that is not current loses its hashes: each object is checked against its own checksum', () => {
    const plan = planRestore(input({ lease: lease('g2', { 'artifacts/adopted.txt': entry(3) }) }));
    expect([...plan.manifest.values()].map((known) => known.sha256)).toEqual([undefined, undefined, undefined]);
    expect([...plan.fetch].map((job) => job.known?.sha256)).toEqual([undefined, undefined, undefined]);
  });
});

describe('a file already in place (an earlier attempt restored it)', () => {
  const local = { size: 10, mtimeMs: 1_000.4, mode: 0o644 };
  it.each<[string, FileEntry | undefined, typeof local | undefined, FileEntry | undefined]>([
    ["same size and mtime within 1 ms: kept, with the manifest's upload time and hash", entry(10), local, { ...local, uploadedAt: 500, sha256: HASH }],
    ['another size: restored', entry(11), local, undefined],
    ['another mtime: restored', entry(10, { mtimeMs: 2_000 }), local, undefined],
    ['no manifest entry to compare with: restored', undefined, local, undefined],
    ['known only from a listing: restored', remoteOnly(10), local, undefined],
    ['no regular file there: restored', entry(10), undefined, undefined],
  ])('%s', (_, known, stat, expected) => {
    expect(inPlaceEntry(known, stat)).toEqual(expected);
  });
});
