import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSyncPaths } from '../../../src/agent/settings.js';
import { keyName } from '../../../src/agent/files/key-names.js';
import { compileExcludes } from '../../../src/agent/files/patterns.js';
import { walkSyncPaths } from '../../../src/agent/files/walk.js';
import { partialPaths } from '../../../src/agent/files/partial-names.js';

// A path whose last component is raw bytes (the file system allows any byte but "/" and NUL).
const rawPath = (dir: string, ...bytes: number[][]) =>
  Buffer.concat([Buffer.from(`${dir}/`), ...bytes.map((part, index) => Buffer.concat([Buffer.from(index ? '/' : ''), Buffer.from(part)]))]);
const latin1Cafe = [0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]; // "café.txt" in ISO-8859-1

describe('names the file system allows but UTF-8 does not', () => {
  let workspace: string;
  const excludes = compileExcludes([]);
  beforeEach(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), 'walk-names-'));
    await mkdir(path.join(workspace, 'artifacts'));
  });
  afterEach(async () => {
    await rm(workspace, { recursive: true, force: true });
  });

  it('maps each invalid byte to ‛XX (rclone\'s InvalidUtf8 encoding) and leaves valid names alone', () => {
    expect(keyName(Buffer.from(latin1Cafe))).toBe('caf‛E9.txt');
    expect(keyName(Buffer.from('café ‛ ünï.txt'))).toBe('café ‛ ünï.txt');
    // Truncated and overlong sequences, a UTF-16 surrogate encoded in UTF-8, bytes over F4.
    expect(keyName(Buffer.from([0x61, 0xe2, 0x82, 0x62]))).toBe('a‛E2‛82b');
    expect(keyName(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff]))).toBe('‛C0‛AF‛ED‛A0‛80‛FF');
    expect(keyName(Buffer.from([0xf0, 0x9f, 0x98, 0x80, 0xf5]))).toBe('😀‛F5');
  });

  it('walks files and directories with such names, keyed by the encoded name, readable through their raw path', async () => {
    await writeFile(rawPath(path.join(workspace, 'artifacts'), latin1Cafe), 'latin-1 name');
    await mkdir(rawPath(path.join(workspace, 'artifacts'), [0x64, 0xff]));
    await writeFile(rawPath(path.join(workspace, 'artifacts'), [0x64, 0xff], [0x69, 0x6e]), 'inside');
    const result = await walkSyncPaths(workspace, parseSyncPaths('artifacts'), excludes);
    expect(result.errors).toEqual([]);
    expect([...result.files.keys()].sort()).toEqual(['artifacts/caf‛E9.txt', 'artifacts/d‛FF/in']);
    const cafe = result.files.get('artifacts/caf‛E9.txt');
    expect(cafe?.size).toBe(12);
    expect(await readFile(cafe?.absolutePath as Buffer, 'utf8')).toBe('latin-1 name');
  });

  it('names the second of two files that map to one key in a warning instead of dropping it silently', async () => {
    await writeFile(rawPath(path.join(workspace, 'artifacts'), latin1Cafe), 'raw bytes');
    await writeFile(path.join(workspace, 'artifacts/caf‛E9.txt'), 'spelled out');
    const result = await walkSyncPaths(workspace, parseSyncPaths('artifacts'), excludes);
    expect(await readFile(result.files.get('artifacts/caf‛E9.txt')?.absolutePath as string, 'utf8')).toBe('spelled out');
    expect(result.unsyncable).toEqual([{ path: 'artifacts/caf‛E9.txt', reason: 'another file maps to the same S3 key' }]);
  });

  it('syncs a user file whose name ends in the agent\'s temp suffix, and skips only hydrate\'s own leftovers', async () => {
    await writeFile(path.join(workspace, 'artifacts/download.session-storage-partial'), 'mine');
    const leftover = partialPaths(path.join(workspace, 'artifacts/big.bin'));
    await writeFile(leftover.data, 'half a download');
    await writeFile(leftover.etag, '"etag"');
    const result = await walkSyncPaths(workspace, parseSyncPaths('artifacts'), excludes);
    expect([...result.files.keys()]).toEqual(['artifacts/download.session-storage-partial']);
  });
});
