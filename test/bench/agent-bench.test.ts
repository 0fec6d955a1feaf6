import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discardRun, type RunTrash } from '../../bench/agent-bench.js';

describe("a finished run's files", () => {
  let dir: string;
  let trash: RunTrash;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bench-trash-'));
    trash = { dir: path.join(dir, 'trash'), movedAside: 0, removedAtOnce: 0 };
    await mkdir(trash.dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function run(name: string): Promise<string> {
    const root = path.join(dir, 'runs', name);
    await mkdir(path.join(root, 'restore'), { recursive: true });
    await writeFile(path.join(root, 'restore', 'file'), 'x');
    return root;
  }

  it('are moved aside whole, to be deleted after the last run, while the disk has room', async () => {
    const root = await run('ours-r1');
    await discardRun(root, trash, 4096);
    expect(existsSync(root)).toBe(false);
    expect(await readdir(path.join(trash.dir, 'ours-r1', 'restore'))).toEqual(['file']);
    expect(trash).toMatchObject({ movedAside: 1, removedAtOnce: 0 });
  });

  it('are deleted at once, and counted, when keeping them would fill the disk', async () => {
    const root = await run('ours-r2');
    await discardRun(root, trash, Number.MAX_SAFE_INTEGER / 8);
    expect(existsSync(root)).toBe(false);
    expect(await readdir(trash.dir)).toEqual([]);
    expect(trash).toMatchObject({ movedAside: 0, removedAtOnce: 1 });
  });
});
