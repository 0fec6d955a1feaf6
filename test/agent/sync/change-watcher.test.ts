import { watch } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChangeWatcher, type WatchFunction } from '../../../src/agent/sync/change-watcher.js';
import { compileExcludes } from '../../../src/agent/files/patterns.js';
import { parseSyncPaths } from '../../../src/agent/settings.js';
import { captureLog, type CapturedLog } from '../support/helpers.js';

const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));

// Fails as inotify does at fs.inotify.max_user_watches once `limit` watches are armed.
function limitedWatch(limit: number): WatchFunction {
  let armed = 0;
  return (directory, listener) => {
    if (armed >= limit) throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${directory}'`), { code: 'ENOSPC' });
    armed += 1;
    return watch(directory, { persistent: false }, listener);
  };
}

describe('change watcher', () => {
  let workspace: string;
  let log: CapturedLog;
  let changes: number;
  let watcher: ChangeWatcher | undefined;

  const start = async (options: { exclude?: string[]; watch?: WatchFunction; syncPaths?: string } = {}) => {
    watcher = new ChangeWatcher({
      workspaceDir: workspace,
      syncPaths: parseSyncPaths(options.syncPaths ?? '.claude,artifacts'),
      excludes: compileExcludes(options.exclude ?? ['node_modules/**', '*.tmp']),
      log,
      intervalSeconds: 60,
      onChange: () => (changes += 1),
      ...(options.watch ? { watch: options.watch } : {}),
    });
    const watching = await watcher.start();
    return { watcher, watching };
  };

  // The number of changes `act` led to, once its events have arrived.
  const changesOf = async (act: () => Promise<unknown>) => {
    await settle(50);
    const before = changes;
    await act();
    await settle();
    return changes - before;
  };

  beforeEach(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), 'change-watcher-'));
    await mkdir(path.join(workspace, '.claude/projects/p1'), { recursive: true });
    await mkdir(path.join(workspace, 'artifacts/node_modules/lib'), { recursive: true });
    log = captureLog();
    changes = 0;
  });
  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(workspace, { recursive: true, force: true });
  });

  it('sees writes at any depth of the sync paths, and none in excluded trees or files', async () => {
    const { watcher, watching } = await start();
    expect(watching).toBe(true);
    // .claude, .claude/projects, .claude/projects/p1, artifacts: node_modules is pruned.
    expect(watcher.watchedDirectories).toBe(4);
    expect(await changesOf(() => writeFile(path.join(workspace, '.claude/projects/p1/history.jsonl'), '{}\n'))).toBeGreaterThan(0);
    expect(await changesOf(() => appendFile(path.join(workspace, '.claude/projects/p1/history.jsonl'), '{}\n'))).toBeGreaterThan(0);
    expect(await changesOf(() => writeFile(path.join(workspace, 'artifacts/node_modules/lib/index.js'), 'x'))).toBe(0);
    expect(await changesOf(() => writeFile(path.join(workspace, 'artifacts/scratch.tmp'), 'x'))).toBe(0);
    expect(await changesOf(() => rm(path.join(workspace, '.claude/projects/p1/history.jsonl')))).toBeGreaterThan(0);
  });

  it('watches directories created after it started, and forgets removed ones', async () => {
    const { watcher } = await start();
    expect(await changesOf(() => mkdir(path.join(workspace, 'artifacts/new/deeper'), { recursive: true }))).toBeGreaterThan(0);
    await settle();
    expect(watcher.watchedDirectories).toBe(6);
    expect(await changesOf(() => writeFile(path.join(workspace, 'artifacts/new/deeper/report.md'), '# r'))).toBeGreaterThan(0);
    expect(await changesOf(() => rename(path.join(workspace, 'artifacts/new'), path.join(workspace, 'artifacts/moved')))).toBeGreaterThan(0);
    expect(await changesOf(() => writeFile(path.join(workspace, 'artifacts/moved/deeper/again.md'), '# a'))).toBeGreaterThan(0);
    expect(watcher.watchedDirectories).toBe(6);
    expect(await changesOf(() => rm(path.join(workspace, 'artifacts/moved'), { recursive: true }))).toBeGreaterThan(0);
    expect(watcher.watchedDirectories).toBe(4);
  });

  it('waits for a sync path that does not exist yet, and for one removed and made again', async () => {
    const { watcher } = await start({ syncPaths: '.claude,uploads=files/uploads' });
    expect(watcher.watchedDirectories).toBe(3);
    // Unrelated entries beside the awaited path are no change.
    expect(await changesOf(() => writeFile(path.join(workspace, 'notes.txt'), 'x'))).toBe(0);
    await mkdir(path.join(workspace, 'files'));
    await settle();
    expect(await changesOf(() => mkdir(path.join(workspace, 'files/uploads')))).toBeGreaterThan(0);
    expect(await changesOf(() => writeFile(path.join(workspace, 'files/uploads/photo.png'), 'x'))).toBeGreaterThan(0);
    expect(watcher.watchedDirectories).toBe(4);
    expect(await changesOf(() => rm(path.join(workspace, 'files/uploads'), { recursive: true }))).toBeGreaterThan(0);
    expect(watcher.watchedDirectories).toBe(3);
    await mkdir(path.join(workspace, 'files/uploads'));
    await settle();
    expect(await changesOf(() => writeFile(path.join(workspace, 'files/uploads/again.png'), 'x'))).toBeGreaterThan(0);
  });

  it("says once that the kernel's watch limit is reached, and stops watching", async () => {
    const { watcher, watching } = await start({ watch: limitedWatch(2) });
    expect(watching).toBe(false);
    expect(watcher.watchedDirectories).toBe(0);
    expect(log.text().match(/not watching/g)).toHaveLength(1);
    expect(log.text()).toContain(
      "[warn] not watching the sync paths for changes: the kernel's limit on inotify watches is reached (fs.inotify.max_user_watches) after 2 directories; changes are synced every SYNC_INTERVAL (60s) only",
    );
    expect(await changesOf(() => writeFile(path.join(workspace, '.claude/projects/p1/history.jsonl'), '{}\n'))).toBe(0);
  });

  it('reaching the limit later, on a new directory, falls back the same way', async () => {
    const { watcher, watching } = await start({ watch: limitedWatch(4) });
    expect(watching).toBe(true);
    await mkdir(path.join(workspace, '.claude/projects/p2'));
    await settle();
    await mkdir(path.join(workspace, '.claude/projects/p3'));
    await settle();
    expect(watcher.watching).toBe(false);
    expect(watcher.watchedDirectories).toBe(0);
    expect(log.text().match(/not watching/g)).toHaveLength(1);
    expect(await changesOf(() => writeFile(path.join(workspace, '.claude/projects/p1/history.jsonl'), '{}\n'))).toBe(0);
  });
});
