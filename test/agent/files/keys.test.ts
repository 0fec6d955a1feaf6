import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import path from 'node:path';
import { parseSyncPaths } from '../../../src/agent/settings.js';
import { longComponent, resolveKey, unsafeKeyReason } from '../../../src/agent/files/keys.js';

const syncPaths = parseSyncPaths('.claude,artifacts,uploads,home=nested/home');
const workspace = '/workspace';

describe('object key safety', () => {
  it.each([
    ['../etc/passwd', 'contains ".."'],
    ['artifacts/../../etc/passwd', 'contains ".."'],
    ['/etc/passwd', 'absolute path'],
    ['artifacts//x', 'contains an empty or "." segment'],
    ['artifacts/./x', 'contains an empty or "." segment'],
    ['artifacts/x\0y', 'contains a NUL byte'],
  ])('refuses %j (%s)', (key, reason) => {
    expect(resolveKey(key, syncPaths, workspace)).toEqual({ kind: 'refused', key, reason });
  });

  it('maps keys to their sync path directory', () => {
    expect(resolveKey('home/a b/ü.txt', syncPaths, workspace)).toMatchObject({
      kind: 'file',
      localPath: '/workspace/nested/home/a b/ü.txt',
    });
    expect(resolveKey('.claude/projects/x.jsonl', syncPaths, workspace)).toMatchObject({
      kind: 'file',
      localPath: '/workspace/.claude/projects/x.jsonl',
    });
  });

  it('ignores keys outside the configured sync paths', () => {
    expect(resolveKey('metadata.json', syncPaths, workspace).kind).toBe('unmapped');
    expect(resolveKey('other/file', syncPaths, workspace).kind).toBe('unmapped');
  });

  it('never resolves any accepted key outside the workspace', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '', 'a', '.claude', 'artifacts', '~', '\\..'), fc.string());
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), (segments) => {
        const key = segments.join('/');
        const resolution = resolveKey(key, syncPaths, workspace);
        if (resolution.kind !== 'file') return;
        expect(unsafeKeyReason(key)).toBeUndefined();
        const relative = path.relative(workspace, resolution.localPath);
        expect(relative.startsWith('..') || path.isAbsolute(relative)).toBe(false);
      }),
    );
  });

  it('tells names no local file can have by their UTF-8 bytes, not their characters', () => {
    expect(longComponent(`artifacts/${'a'.repeat(255)}`)).toBe(false);
    expect(longComponent(`artifacts/${'日'.repeat(85)}`)).toBe(false);
    expect(longComponent(`artifacts/${'日'.repeat(86)}`)).toBe(true);
    expect(longComponent(`${'é'.repeat(128)}/x`)).toBe(true);
  });
});
