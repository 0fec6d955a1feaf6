import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CreatedDirs } from '../../../src/agent/hydrate/hydrate-journal.js';
import { partialPaths } from '../../../src/agent/files/partial-names.js';

describe('CreatedDirs', () => {
  let root: string;
  let workspace: string;
  let stateDir: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'journal-'));
    workspace = path.join(root, 'ws');
    stateDir = path.join(root, 'state');
    await mkdir(workspace);
    await mkdir(stateDir);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps each directory on disk as it is added, names with newlines included', async () => {
    const dirs = await CreatedDirs.open(stateDir);
    dirs.add('a');
    dirs.add('a/line\nbreak');
    dirs.close();
    expect(await readFile(path.join(stateDir, 'hydrate-created-dirs'), 'utf8')).toBe('"a"\n"a/line\\nbreak"\n');
  });

  it('sweeps the directories an interrupted hydrate listed, a line cut short by the kill ignored', async () => {
    await mkdir(path.join(workspace, 'a/b'), { recursive: true });
    await writeFile(path.join(stateDir, 'hydrate-created-dirs'), '"a"\n"a/b"\n"a/b/c');
    await writeFile(path.join(workspace, 'a/kept.txt'), 'whole');
    await writeFile(path.join(workspace, 'a/cut.txt'), 'cut sh');
    await writeFile(path.join(workspace, 'a/b/cut.txt'), 'cut');
    const partial = partialPaths(path.join(workspace, 'a/large.bin'));
    await writeFile(partial.data, 'resumable');

    const dirs = await CreatedDirs.open(stateDir);
    await dirs.settle(workspace, new Set(['a/kept.txt']));

    expect((await readdir(path.join(workspace, 'a'))).sort()).toEqual([path.basename(partial.data), 'b', 'kept.txt'].sort());
    expect(await readdir(path.join(workspace, 'a/b'))).toEqual([]);
    await expect(stat(path.join(stateDir, 'hydrate-created-dirs'))).rejects.toThrow();
  });

  it('leaves a listed directory alone when a component is now a symlink', async () => {
    const outside = path.join(root, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'theirs.txt'), 'not ours');
    await symlink(outside, path.join(workspace, 'a'));
    await writeFile(path.join(stateDir, 'hydrate-created-dirs'), '"a"\n');

    await (await CreatedDirs.open(stateDir)).settle(workspace, new Set());

    expect(await readdir(outside)).toEqual(['theirs.txt']);
  });
});
