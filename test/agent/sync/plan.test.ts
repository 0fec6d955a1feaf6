import { describe, expect, it } from 'vitest';
import type { FileEntry, FileMap } from '../../../src/agent/state/metadata.js';
import { compileExcludes } from '../../../src/agent/files/patterns.js';
import { planAdoption, planDeletions, planRefreshes, planUploads, type DeletionInput } from '../../../src/agent/sync/plan.js';
import { DEFAULT_EXCLUDE, parseSyncPaths } from '../../../src/agent/settings.js';
import type { LocalFile } from '../../../src/agent/files/walk.js';
import { parseList } from '../../../src/shared/agent-env.js';

const syncPaths = parseSyncPaths('.claude,artifacts,uploads');
const excludes = compileExcludes([...parseList(DEFAULT_EXCLUDE), '*.tmp']);

const entry = (size: number, mtimeMs = 1_000, uploadedAt?: number): FileEntry => ({ size, mtimeMs, ...(uploadedAt === undefined ? {} : { uploadedAt }) });
const file = (key: string, size: number, mtimeMs = 1_000): LocalFile => ({ key, size, mtimeMs, absolutePath: `/workspace/${key}` });
const files = (...list: LocalFile[]) => new Map(list.map((f) => [f.key, f]));

// A hydrated pod that knew three files under artifacts/ and one under .claude/; locally
// artifacts/gone.txt was deleted and the rest is still there.
function input(overrides: Partial<DeletionInput> = {}, known: Record<string, FileEntry> = {}): DeletionInput {
  const record = {
    hydrated: true,
    files: new Map<string, FileEntry>(Object.entries({
      'artifacts/kept.txt': entry(1),
      'artifacts/gone.txt': entry(2),
      '.claude/history.jsonl': entry(3),
      ...known,
    })),
    unrestored: new Set<string>(),
  };
  const local = files(file('artifacts/kept.txt', 1), file('.claude/history.jsonl', 3));
  return {
    record,
    local,
    counts: new Map([['artifacts', 1], ['.claude', 1]]),
    walkHadErrors: false,
    uploadsFailed: false,
    syncPaths,
    excludes,
    ...overrides,
  };
}

describe('deletion guards (data-safety invariant 1)', () => {
  const base = input();
  it.each<[string, DeletionInput, string[], Record<string, number>]>([
    ['a known file gone locally after a hydrate in this pod is deleted', base, ['artifacts/gone.txt'], {}],
    ['nothing without a completed hydrate in this pod', input({ record: { ...base.record, hydrated: false } }), [], {}],
    ['nothing when the walk could not read a directory', input({ walkHadErrors: true }), [], {}],
    ['nothing in a cycle where an upload failed', input({ uploadsFailed: true }), [], {}],
    [
      'nothing from a sync path empty locally over files in S3 (a missing mount)',
      input({ local: files(file('.claude/history.jsonl', 3)), counts: new Map([['artifacts', 0], ['.claude', 1]]) }),
      [],
      { artifacts: 2 },
    ],
    [
      'nothing anywhere when the whole tree is empty over a non-empty remote',
      input({ local: new Map(), counts: new Map() }),
      [],
      { artifacts: 2, '.claude': 1 },
    ],
    [
      'not a key hydrate could not restore',
      input({ record: { ...base.record, unrestored: new Set(['artifacts/gone.txt']) } }),
      [],
      {},
    ],
    ['not an object only known from a listing (marked remote)', input({}, { 'artifacts/gone.txt': { ...entry(2, -1), remote: true } }), [], {}],
    // Manifests and records from before the marker spelled it mtimeMs -1, without a hash.
    ['not an object only known from a listing (a legacy entry: mtimeMs -1, no hash)', input({}, { 'artifacts/gone.txt': entry(2, -1) }), [], {}],
    // Case 7 of issue 21: a negative mtime was the "remote" sentinel, so such a file's
    // deletion never reached S3.
    ['a file from before 1970 gone locally is deleted like any other', input({}, { 'artifacts/gone.txt': entry(2, -14_182_940_000) }), ['artifacts/gone.txt'], {}],
    [
      'a file whose mtime is exactly -1 ms, uploaded with a hash, is deleted like any other',
      input({}, { 'artifacts/gone.txt': { ...entry(2, -1), sha256: 'a'.repeat(64) } }),
      ['artifacts/gone.txt'],
      {},
    ],
    ['not an excluded file', input({}, { 'artifacts/scratch.tmp': entry(1) }), ['artifacts/gone.txt'], {}],
    ['not a file inside an excluded directory', input({}, { 'artifacts/node_modules/x/index.js': entry(1) }), ['artifacts/gone.txt'], {}],
    ['not a file of a sync path this pod does not sync', input({}, { 'file-uploads/spec.pdf': entry(1) }), ['artifacts/gone.txt'], {}],
    ['not a file still there locally, whatever its stat', input({ local: files(file('artifacts/kept.txt', 9, 5), file('artifacts/gone.txt', 2), file('.claude/history.jsonl', 3)) }), [], {}],
  ])('%s', (_, deletionInput, deletions, guarded) => {
    const plan = planDeletions(deletionInput);
    expect(plan.deletions).toEqual(deletions);
    expect(Object.fromEntries(plan.guarded)).toEqual(guarded);
  });
});

describe('MAX_SYNC_SIZE budget and what changed', () => {
  const known: FileMap = new Map([
    ['artifacts/same.txt', entry(10, 1_000)],
    ['artifacts/touched.txt', entry(10, 1_000)],
    ['artifacts/grown.txt', entry(10, 1_000)],
  ]);
  const local = files(
    file('artifacts/same.txt', 10, 1_000.4),
    file('artifacts/touched.txt', 10, 2_000),
    file('artifacts/grown.txt', 11, 1_000),
    file('artifacts/new.txt', 5),
    file('artifacts/big.bin', 60),
    file('artifacts/b-huge.bin', 100),
    file('artifacts/a-huge.bin', 100),
  );
  it.each<[string, number, string[], Array<[string, number]>, number]>([
    ['everything fits: only what changed goes up, smallest first (mtime within 1 ms is unchanged)', 1_000, ['artifacts/new.txt', 'artifacts/touched.txt', 'artifacts/grown.txt', 'artifacts/big.bin', 'artifacts/a-huge.bin', 'artifacts/b-huge.bin'], [], 1],
    ['past the budget the largest files are skipped, ties by path', 200, ['artifacts/new.txt', 'artifacts/touched.txt', 'artifacts/grown.txt', 'artifacts/big.bin', 'artifacts/a-huge.bin'], [['artifacts/b-huge.bin', 100]], 1],
    ['smallest first saves as many files as possible', 90, ['artifacts/new.txt', 'artifacts/touched.txt', 'artifacts/grown.txt'], [['artifacts/big.bin', 60], ['artifacts/a-huge.bin', 100], ['artifacts/b-huge.bin', 100]], 1],
    ['a budget below every file skips them all, unchanged ones too', 4, [], [['artifacts/new.txt', 5], ['artifacts/same.txt', 10], ['artifacts/touched.txt', 10], ['artifacts/grown.txt', 11], ['artifacts/big.bin', 60], ['artifacts/a-huge.bin', 100], ['artifacts/b-huge.bin', 100]], 0],
  ])('%s', (_, maxSyncSize, uploads, skipped, unchanged) => {
    const plan = planUploads(local, known, maxSyncSize);
    expect(plan.uploads).toEqual(uploads);
    expect(plan.skipped).toEqual(skipped.map(([path, size]) => ({ path, size, reason: 'MAX_SYNC_SIZE' })));
    expect(plan.unchanged).toBe(unchanged);
    expect([...plan.admitted.keys()].sort()).toEqual([...local.keys()].filter((key) => !skipped.some(([path]) => path === key)).sort());
  });
});

describe('refresh selection (invariant 7)', () => {
  const DAY = 86_400_000;
  const now = 100 * DAY;
  const known: FileMap = new Map([
    ['artifacts/fresh.txt', entry(1, 1, now - DAY)],
    ['artifacts/week-old.txt', entry(1, 1, now - 7 * DAY)],
    ['artifacts/b-old.txt', entry(1, 1, now - 20 * DAY)],
    ['artifacts/a-old.txt', entry(1, 1, now - 20 * DAY)],
    ['file-uploads/by-the-platform.pdf', entry(1, -1)],
    ['artifacts/oldest.txt', entry(1, 1, now - 29 * DAY)],
  ]);
  it.each<[string, number, number, string[]]>([
    ['past REFRESH_AFTER_DAYS, oldest first, unknown ages first, ties by key', 7, 100, ['file-uploads/by-the-platform.pdf', 'artifacts/oldest.txt', 'artifacts/a-old.txt', 'artifacts/b-old.txt', 'artifacts/week-old.txt']],
    ['bounded per cycle: the oldest go first', 7, 2, ['file-uploads/by-the-platform.pdf', 'artifacts/oldest.txt']],
    ['nothing is due when every object is recent enough', 30, 100, ['file-uploads/by-the-platform.pdf']],
  ])('%s', (_, days, limit, due) => {
    expect(planRefreshes(known, now, days * DAY, limit).map(([key]) => key)).toEqual(due);
  });
});

describe('adopting what others wrote under the prefix', () => {
  it('adds listed objects the record lacks with an unknown mtime, and makes vanished uploads due again', () => {
    const known: FileMap = new Map([
      ['artifacts/mine.txt', entry(3, 1, 50)],
      ['artifacts/expired.txt', entry(4, 1, 40)],
      ['file-uploads/adopted-earlier.pdf', entry(5, -1)],
    ]);
    const listed = new Map([
      ['artifacts/mine.txt', 3],
      ['file-uploads/new-upload.pdf', 7],
    ]);
    const { adopted, vanished } = planAdoption(known, listed);
    expect(Object.fromEntries(adopted)).toEqual({ 'file-uploads/new-upload.pdf': { size: 7, mtimeMs: -1, remote: true } });
    expect(vanished).toEqual(['artifacts/expired.txt']);
  });
});
