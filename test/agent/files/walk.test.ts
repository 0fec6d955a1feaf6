import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDE, parseSyncPaths } from '../../../src/agent/settings.js';
import { compileExcludes } from '../../../src/agent/files/patterns.js';
import { walkSyncPaths } from '../../../src/agent/files/walk.js';

describe('workspace walk', () => {
  let workspace: string;
  const excludes = compileExcludes(DEFAULT_EXCLUDE.split(','));

  beforeEach(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), 'walk-'));
  });
  afterEach(async () => {
    await rm(workspace, { recursive: true, force: true });
  });

  async function put(rel: string, body = 'x'): Promise<void> {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), body);
  }

  it('gives each file the path and stat a Map of file objects held, for odd, long and unicode names', async () => {
    const names = [`${'n'.repeat(255)}`, `${'é'.repeat(126)}abc`, 'a b,c=d', '😀/e\u0301/f', 'deep/er/still/x.txt', '-', '..x'];
    for (const [index, name] of names.entries()) await put(`home/./${name}`, 'y'.repeat(index));
    await put('uploads/u.txt');
    const result = await walkSyncPaths(`${workspace}/`, parseSyncPaths('notes=home/,uploads'), excludes, undefined, (key) => (key === 'uploads/u.txt' ? 'uploads/u.txt' : undefined));
    const expected = new Map([
      ...names.map((name, index) => [`notes/${name}`, { size: index, absolutePath: path.join(workspace, 'home', name) }] as const),
      ['uploads/u.txt', { size: 1, absolutePath: path.join(workspace, 'uploads/u.txt') }],
    ]);
    expect(result.files.size).toBe(expected.size);
    expect([...result.files.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const file of result.files.values()) {
      expect(file).toMatchObject({ ...expected.get(file.key), mode: expect.any(Number), mtimeMs: expect.any(Number) });
      expect(result.files.get(file.key)).toEqual(file);
      expect(result.files.has(file.key)).toBe(true);
    }
    expect(result.files.get('notes/absent')).toBeUndefined();
    expect(result.files.has('notes')).toBe(false);
  });

  it('keys files by sync path name and skips excluded trees and missing paths', async () => {
    await put('.claude/projects/a.jsonl');
    await put('home/notes.md', 'notes');
    await put('home/node_modules/x/index.js');
    await put('home/src/__pycache__/m.pyc');
    const result = await walkSyncPaths(workspace, parseSyncPaths('.claude,notes=home,uploads'), excludes);
    expect([...result.files.keys()].sort()).toEqual(['.claude/projects/a.jsonl', 'notes/notes.md']);
    expect(result.files.get('notes/notes.md')).toMatchObject({ size: 5, absolutePath: path.join(workspace, 'home/notes.md') });
    expect(Object.fromEntries(result.counts)).toEqual({ '.claude': 1, notes: 1, uploads: 0 });
    expect(result.errors).toEqual([]);
  });

  it('follows symlinks to files inside the workspace only', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
    await writeFile(path.join(outside, 'secret'), 'secret');
    await put('artifacts/real.txt');
    await symlink(path.join(workspace, 'artifacts/real.txt'), path.join(workspace, 'artifacts/alias.txt'));
    await symlink(path.join(outside, 'secret'), path.join(workspace, 'artifacts/leak.txt'));
    await symlink('/nonexistent/target', path.join(workspace, 'artifacts/dangling'));
    const result = await walkSyncPaths(workspace, parseSyncPaths('artifacts'), excludes);
    expect([...result.files.keys()].sort()).toEqual(['artifacts/alias.txt', 'artifacts/real.txt']);
    expect(result.symlinksSkipped).toEqual(['artifacts/leak.txt']);
    await rm(outside, { recursive: true, force: true });
  });

  it('refuses a workspace that does not exist: an unmounted volume is not an empty session', async () => {
    const absent = path.join(workspace, 'absent');
    await expect(walkSyncPaths(absent, parseSyncPaths('artifacts'), excludes)).rejects.toThrow(
      `workspace directory ${absent} does not exist: is the volume mounted?`,
    );
  });
});
