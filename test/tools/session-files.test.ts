import { describe, expect, it } from 'vitest';
import { filesUnder, sortFiles, type SessionFile } from '../../src/tools/session-files.js';

const file = (key: string): SessionFile => ({ key, size: 1 });
const keys = (files: SessionFile[]) => files.map((f) => f.key);

describe('the files of a session as ls and get see them', () => {
  const files = sortFiles(['uploads/a.csv', '.claude/x.jsonl', 'artifacts/z.md', 'artifacts-old/y.md', 'artifacts/a/b.md'].map(file));

  it('puts artifacts first, then the rest in key order', () => {
    expect(keys(files)).toEqual(['artifacts/a/b.md', 'artifacts/z.md', '.claude/x.jsonl', 'artifacts-old/y.md', 'uploads/a.csv']);
  });

  it.each([
    ['artifacts', ['artifacts/a/b.md', 'artifacts/z.md']],
    ['artifacts/', ['artifacts/a/b.md', 'artifacts/z.md']],
    ['./artifacts/a', ['artifacts/a/b.md']],
    ['/workspace/artifacts/z.md', ['artifacts/z.md']],
    ['artifacts/z', []],
    ['', keys(files)],
  ])('selects %j as a file or a folder, never a name that only starts the same', (path, expected) => {
    expect(keys(filesUnder(files, path))).toEqual(expected);
  });
});
