import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearRecord, readRecord, writeRecord, type LocalRecord } from '../../../src/agent/state/record.js';

// The record's files as a plain Map, to compare with what was written.
const asMaps = (read: LocalRecord | undefined) => read && { ...read, files: new Map(read.files) };

describe('local record', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'record-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const record = {
    bucket: 'b',
    prefix: 'ns/s/',
    hydrated: true,
    files: new Map([['artifacts/a.txt', { size: 3, mtimeMs: 1700000000123.5, mode: 0o600 }]]),
  };

  it('round-trips what sync needs for change detection and delete safety', async () => {
    await writeRecord(dir, record);
    expect(asMaps(await readRecord(dir, 'b', 'ns/s/'))).toEqual(record);
  });

  it('reads a record as earlier agents wrote it, entries with and without mode and upload time', async () => {
    await writeFile(
      path.join(dir, 'record.json'),
      '{"version":1,"bucket":"b","prefix":"ns/s/","hydrated":true,"files":{"artifacts/a.txt":{"size":3,"mtimeMs":1700000000123.5,"mode":384,"uploadedAt":1700000001000},"file-uploads/x.pdf":{"size":9,"mtimeMs":-1},"artifacts/é ✓.txt":{"size":0,"mtimeMs":0,"mode":420}},"unrestored":["artifacts/denied.txt"]}',
    );
    expect(asMaps(await readRecord(dir, 'b', 'ns/s/'))).toEqual({
      bucket: 'b',
      prefix: 'ns/s/',
      hydrated: true,
      files: new Map([
        ['artifacts/a.txt', { size: 3, mtimeMs: 1700000000123.5, mode: 0o600, uploadedAt: 1700000001000 }],
        ['file-uploads/x.pdf', { size: 9, mtimeMs: -1 }],
        ['artifacts/é ✓.txt', { size: 0, mtimeMs: 0, mode: 0o644 }],
      ]),
      unrestored: new Set(['artifacts/denied.txt']),
    });
  });

  it('keeps the keys hydrate could not restore, so sync never deletes them', async () => {
    const withUnrestored = { ...record, unrestored: new Set(['artifacts/denied.txt']) };
    await writeRecord(dir, withUnrestored);
    expect(asMaps(await readRecord(dir, 'b', 'ns/s/'))).toEqual(withUnrestored);
  });

  it('says nothing about another bucket or session', async () => {
    await writeRecord(dir, record);
    expect(await readRecord(dir, 'other', 'ns/s/')).toBeUndefined();
    expect(await readRecord(dir, 'b', 'ns/other/')).toBeUndefined();
  });

  it('treats a missing, cleared or corrupt record as no record (deletions stay off)', async () => {
    expect(await readRecord(dir, 'b', 'ns/s/')).toBeUndefined();
    await writeRecord(dir, record);
    await clearRecord(dir);
    expect(await readRecord(dir, 'b', 'ns/s/')).toBeUndefined();
    await writeFile(path.join(dir, 'record.json'), '{"version":1,"hydr');
    expect(await readRecord(dir, 'b', 'ns/s/')).toBeUndefined();
  });

  it('writes the version-1 document earlier agents read, entry by entry', async () => {
    const many = new Map(Array.from({ length: 5000 }, (_, index) => [`artifacts/"q"/${index}.txt`, { size: index, mtimeMs: index + 0.5, mode: 0o644, uploadedAt: 1 }]));
    await writeRecord(dir, { ...record, files: many, unrestored: new Set(['artifacts/x']) });
    expect(JSON.parse(await readFile(path.join(dir, 'record.json'), 'utf8'))).toEqual({
      version: 1,
      bucket: 'b',
      prefix: 'ns/s/',
      hydrated: true,
      files: Object.fromEntries(many),
      unrestored: ['artifacts/x'],
    });
  });

  it('treats a record with a malformed entry as no record', async () => {
    for (const entry of [{ size: -1, mtimeMs: 1 }, { size: 1 }, { size: 1, mtimeMs: 1, mode: 'rw' }, { size: 1, mtimeMs: 1, uploadedAt: 'x' }, null]) {
      await writeFile(path.join(dir, 'record.json'), JSON.stringify({ version: 1, bucket: 'b', prefix: 'ns/s/', hydrated: true, files: { 'artifacts/a': entry } }));
      expect(await readRecord(dir, 'b', 'ns/s/')).toBeUndefined();
    }
  });
});
