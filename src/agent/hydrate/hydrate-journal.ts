import { closeSync, openSync, writeSync } from 'node:fs';
import { lstat, readdir, readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isPartialName } from '../files/partial-names.js';

const FILE_NAME = 'hydrate-created-dirs';

/*
 * The directories hydrate created, in the state directory until a hydrate completes. In a
 * directory it created, hydrate writes small files under their final names (no temporary
 * name, no rename): nothing else can be there. A hydrate killed mid-way may leave such a
 * file cut short; a later attempt restores every key that is still in S3 over it (its size
 * and mtime, set last, do not match), and the sweep removes the rest before the record is
 * written, so sync never takes a cut-short file for the runner's. Each directory is on
 * disk here before the first file is written into it; the runner cannot have written into
 * these directories, since it starts only after a hydrate completed, which deletes the list.
 */
export class CreatedDirs {
  private readonly dirs: Set<string>;
  private fd: number | undefined;

  private constructor(
    private readonly file: string,
    earlier: Iterable<string>,
  ) {
    this.dirs = new Set(earlier);
  }

  // The list an interrupted hydrate left, if any, continued.
  static async open(stateDir: string): Promise<CreatedDirs> {
    const file = path.join(stateDir, FILE_NAME);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      return '';
    });
    // A line cut short by a kill is the one directory not yet written into.
    const earlier = text.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as string];
      } catch {
        return [];
      }
    });
    return new CreatedDirs(file, earlier);
  }

  // Synchronous so it is on disk before the caller writes a file into the directory.
  add(relativeDir: string): void {
    this.fd ??= openSync(this.file, 'a', 0o600);
    // JSON: a directory name may hold a newline.
    writeSync(this.fd, `${JSON.stringify(relativeDir)}\n`);
    this.dirs.add(relativeDir);
  }

  /**
   * Before a complete hydrate's record: removes from the listed directories every file that
   * is not in `kept` (relative paths this attempt restored or found in place), which is
   * what an interrupted attempt wrote for a key no longer in S3 or not restorable, then
   * the list itself: from here on the runner may write into these directories. Partial
   * downloads stay (sync never reads them). A directory reached through a symlink, or gone,
   * is left alone.
   */
  async settle(root: string, kept: ReadonlySet<string>): Promise<void> {
    for (const dir of this.dirs) {
      if (!(await plainDirectory(root, dir))) continue;
      for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
        const relativePath = path.join(dir, entry.name);
        if (entry.isFile() && !isPartialName(entry.name) && !kept.has(relativePath)) await unlink(path.join(root, relativePath));
      }
    }
    this.close();
    await rm(this.file, { force: true });
    this.dirs.clear();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

async function plainDirectory(root: string, relativeDir: string): Promise<boolean> {
  let current = root;
  for (const component of relativeDir.split(path.sep)) {
    current = path.join(current, component);
    const info = await lstat(current).catch(() => undefined);
    if (!info?.isDirectory()) return false;
  }
  return true;
}
