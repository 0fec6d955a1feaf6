import { lstatSync, readdirSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { AgentLog } from '../log.js';
import type { AgentSettings, SyncPath } from '../settings.js';
import { compileExcludes, type ExcludeMatcher } from '../files/patterns.js';
import { isPartialName } from '../files/partial-names.js';
import { ChangeDebounce, type ChangeTrigger } from './change-debounce.js';

type WatchListener = (event: string, name: string | null) => void;
export type WatchFunction = (directory: string, listener: WatchListener) => FSWatcher;

export interface ChangeWatcherOptions {
  workspaceDir: string;
  syncPaths: readonly SyncPath[];
  excludes: ExcludeMatcher;
  log: AgentLog;
  intervalSeconds: number;
  onChange: () => void;
  // Tests stand in for the kernel refusing a watch.
  watch?: WatchFunction;
}

interface Root {
  name: string;
  path: string;
}

interface Watched {
  watcher: FSWatcher;
  root: Root;
  // The directory relative to its sync path's root, as the walk and SYNC_EXCLUDE see it.
  relative: string;
}

interface Ancestor {
  watcher: FSWatcher;
  roots: Set<Root>;
}

// The kernel's limits on inotify: watches per user (ENOSPC), instances per user (EMFILE),
// kernel memory (ENOMEM). Past one of them no directory can be relied on to be watched.
const LIMITS: Record<string, string> = {
  ENOSPC: "the kernel's limit on inotify watches is reached (fs.inotify.max_user_watches)",
  EMFILE: "the kernel's limit on inotify instances is reached (fs.inotify.max_user_instances)",
  ENOMEM: 'the kernel is out of memory for inotify watches',
};

// A directory that went away or cannot be read between its listing and its watch: the
// walk reports what it cannot read; nothing is there to watch.
const SKIPPED = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP']);

const nodeWatch: WatchFunction = (directory, listener) => watch(directory, { persistent: false }, listener);

// The file system as events find it: whatever cannot be looked at (gone, a file where a
// directory was, unreadable) is not a directory to watch.
function isDirectory(target: string): boolean {
  try {
    return statSync(target, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

function entryAt(target: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(target, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function realDirectory(target: string): string | undefined {
  try {
    return realpathSync(target);
  } catch {
    return undefined;
  }
}

function inside(parent: string, candidate: string): boolean {
  const relative = path.relative(parent, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Watches every directory of the sync paths (one inotify watch each; excluded trees are
 * pruned as the walk prunes them) and calls `onChange` when something a cycle would sync
 * may have changed. A sync path that does not exist yet is waited for on its nearest
 * existing parent. At the kernel's watch limit it says so once, stops watching and leaves
 * the syncing to the SYNC_INTERVAL sweep.
 */
export class ChangeWatcher {
  private readonly dirs = new Map<string, Watched>();
  private readonly ancestors = new Map<string, Ancestor>();
  private readonly watchFn: WatchFunction;
  private state: 'watching' | 'fallen-back' | 'closed' = 'watching';

  constructor(private readonly options: ChangeWatcherOptions) {
    this.watchFn = options.watch ?? nodeWatch;
  }

  /** Directories watched now. */
  get watchedDirectories(): number {
    return this.dirs.size;
  }

  get watching(): boolean {
    return this.state === 'watching';
  }

  /** Arms every watch; true while watching (false: fell back to the interval, said why). */
  async start(): Promise<boolean> {
    const { workspaceDir, syncPaths } = this.options;
    // A missing workspace is the cycle's walk's to name; there is nothing to watch.
    const workspaceReal = realDirectory(workspaceDir);
    if (workspaceReal === undefined) return this.watching;
    for (const syncPath of syncPaths) {
      const root: Root = { name: syncPath.name, path: path.join(workspaceDir, syncPath.localDir) };
      // The walk skips a sync path that leads out of the workspace; so does the watching.
      const rootReal = realDirectory(root.path);
      if (rootReal !== undefined && !inside(workspaceReal, rootReal)) continue;
      await this.attach(root);
    }
    return this.watching;
  }

  close(): void {
    if (this.state === 'watching') this.state = 'closed';
    this.unwatchAll();
  }

  private async attach(root: Root): Promise<void> {
    if (isDirectory(root.path)) await this.addTree(root, root.path, '');
    else this.awaitRoot(root);
  }

  // Watches a directory and everything below it that is not pruned. Each directory is
  // watched before it is listed, so nothing created in between goes unseen; the event
  // loop gets a turn between directories.
  private async addTree(root: Root, top: string, topRelative: string): Promise<void> {
    const pending: Array<[string, string]> = [[top, topRelative]];
    while (pending.length > 0 && this.watching) {
      const [dir, relative] = pending.pop()!;
      if (this.dirs.has(dir) || !this.watchDir(dir, (event, name) => this.guarded(() => this.onEvent(dir, event, name)), { root, relative })) continue;
      let names: string[];
      try {
        names = readdirSync(dir, { withFileTypes: true })
          .filter((entry) => entry.isDirectory())
          .map((entry) => entry.name);
      } catch {
        continue;
      }
      for (const name of names) {
        const childRelative = relative === '' ? name : `${relative}/${name}`;
        if (!this.options.excludes.prunesDir(childRelative)) pending.push([path.join(dir, name), childRelative]);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  // One watch; false when the directory is not watched (gone, unreadable, or the limit).
  private watchDir(dir: string, listener: WatchListener, entry?: Omit<Watched, 'watcher'>): boolean {
    let watcher: FSWatcher;
    try {
      watcher = this.watchFn(dir, listener);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!SKIPPED.has(code)) this.fallBack(LIMITS[code] ?? `watching ${dir} failed: ${(error as Error).message}`);
      return false;
    }
    watcher.on('error', () => this.lost(dir));
    if (entry) this.dirs.set(dir, { watcher, ...entry });
    else this.ancestors.set(dir, { watcher, roots: new Set() });
    return true;
  }

  // An event handler that threw would take the sidecar down: whatever went wrong, the next
  // cycle's walk sees what is there.
  private guarded(handle: () => void): void {
    try {
      handle();
    } catch {
      this.options.onChange();
    }
  }

  private onEvent(dir: string, event: string, name: string | null): void {
    const watched = this.dirs.get(dir);
    if (!watched || !this.watching) return;
    if (name === null) {
      this.options.onChange();
      return;
    }
    const relative = watched.relative === '' ? name : `${watched.relative}/${name}`;
    if (event === 'rename') {
      this.renamed(watched, dir, name, relative);
      return;
    }
    if (!this.ignored(relative, name)) this.options.onChange();
  }

  // Something was created, removed or moved in `dir`, or `dir` itself was (reported under
  // its own name): new directories are watched, removed ones forgotten.
  private renamed(watched: Watched, dir: string, name: string, relative: string): void {
    const { onChange, excludes } = this.options;
    if (name === path.basename(dir) && !isDirectory(dir)) {
      this.dropTree(dir);
      if (watched.relative === '') this.awaitRoot(watched.root);
      onChange();
      return;
    }
    const target = path.join(dir, name);
    const stat = entryAt(target);
    if (stat?.isDirectory()) {
      if (excludes.prunesDir(relative)) return;
      if (!this.dirs.has(target)) void this.addTree(watched.root, target, relative);
      onChange();
    } else if (stat === undefined && this.dirs.has(target)) {
      this.dropTree(target);
      onChange();
    } else if (!this.ignored(relative, name)) {
      onChange();
    }
  }

  // What the walk leaves out: excluded files and hydrate's partial downloads.
  private ignored(relative: string, name: string): boolean {
    return this.options.excludes.excludesFile(relative) || isPartialName(name);
  }

  // A sync path that is not there (yet, or any more) is waited for on the nearest
  // directory above it inside the workspace.
  private awaitRoot(root: Root): void {
    if (!this.watching) return;
    let dir = path.dirname(root.path);
    while (!isDirectory(dir) && inside(this.options.workspaceDir, path.dirname(dir))) dir = path.dirname(dir);
    if (!isDirectory(dir)) return;
    if (!this.ancestors.has(dir) && !this.watchDir(dir, () => this.guarded(() => this.onAncestorEvent(dir)))) return;
    this.ancestors.get(dir)?.roots.add(root);
  }

  private onAncestorEvent(dir: string): void {
    const ancestor = this.ancestors.get(dir);
    if (!ancestor || !this.watching) return;
    const roots = [...ancestor.roots];
    ancestor.roots.clear();
    for (const root of roots) {
      if (isDirectory(root.path)) {
        void this.addTree(root, root.path, '');
        this.options.onChange();
      } else {
        this.awaitRoot(root);
      }
    }
    if (ancestor.roots.size === 0) {
      ancestor.watcher.close();
      this.ancestors.delete(dir);
    }
  }

  // An error on a live watch (its directory's file system went away) ends that watch; the
  // next cycle's walk sees what is there, and a sync path is waited for again.
  private lost(dir: string): void {
    const ancestor = this.ancestors.get(dir);
    if (ancestor) {
      ancestor.watcher.close();
      this.ancestors.delete(dir);
      for (const root of ancestor.roots) this.awaitRoot(root);
      return;
    }
    const watched = this.dirs.get(dir);
    this.dropTree(dir);
    if (watched?.relative === '') this.awaitRoot(watched.root);
    this.options.onChange();
  }

  private dropTree(top: string): void {
    const below = `${top}${path.sep}`;
    for (const [dir, watched] of this.dirs) {
      if (dir !== top && !dir.startsWith(below)) continue;
      watched.watcher.close();
      this.dirs.delete(dir);
    }
  }

  private fallBack(reason: string): void {
    if (!this.watching) return;
    this.state = 'fallen-back';
    const watched = this.dirs.size;
    this.unwatchAll();
    this.options.log.warn(
      `not watching the sync paths for changes: ${reason} after ${watched} directories; ` +
        `changes are synced every SYNC_INTERVAL (${this.options.intervalSeconds}s) only`,
    );
  }

  private unwatchAll(): void {
    for (const { watcher } of [...this.dirs.values(), ...this.ancestors.values()]) watcher.close();
    this.dirs.clear();
    this.ancestors.clear();
  }
}

/**
 * The sync paths watched for the sync loop: a cycle SYNC_DEBOUNCE_SECONDS after changes
 * settle, at most SYNC_INTERVAL after the first. Undefined when SYNC_DEBOUNCE_SECONDS is 0.
 * The watches are set up beside the first cycle rather than before it (a large tree has
 * thousands of directories); once they are, one cycle follows, for whatever changed in a
 * directory after the first cycle's walk passed it and before its watch was in place.
 * Where nothing can be watched (said why), the loop's interval is the only schedule.
 */
export function watchSyncPaths(
  settings: AgentSettings,
  log: AgentLog,
  watchFn?: WatchFunction,
): { trigger: ChangeTrigger; close(): void; armed: Promise<boolean> } | undefined {
  const { syncDebounceSeconds, syncIntervalSeconds } = settings;
  if (syncDebounceSeconds === 0) return undefined;
  const debounce = new ChangeDebounce({ quietMs: syncDebounceSeconds * 1000, maxWaitMs: syncIntervalSeconds * 1000 });
  const watcher = new ChangeWatcher({
    workspaceDir: settings.workspaceDir,
    syncPaths: settings.syncPaths,
    excludes: compileExcludes(settings.exclude),
    log,
    intervalSeconds: syncIntervalSeconds,
    onChange: () => debounce.changed(),
    ...(watchFn ? { watch: watchFn } : {}),
  });
  const close = () => {
    watcher.close();
    debounce.close();
  };
  const armed = watcher.start().then(
    (watching) => {
      if (!watching) {
        close();
        return false;
      }
      log.info(
        `Watching ${watcher.watchedDirectories} directories of the sync paths: a sync starts ${syncDebounceSeconds}s after changes settle ` +
          `(SYNC_DEBOUNCE_SECONDS), and every SYNC_INTERVAL (${syncIntervalSeconds}s) regardless`,
      );
      debounce.changed();
      return true;
    },
    (error: unknown) => {
      log.warn(`not watching the sync paths for changes: ${(error as Error).message}; changes are synced every SYNC_INTERVAL (${syncIntervalSeconds}s) only`);
      close();
      return false;
    },
  );
  return { trigger: debounce, close, armed };
}
