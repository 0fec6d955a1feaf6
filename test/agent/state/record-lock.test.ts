import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockRecord, readRecord, writeRecord, type LocalRecord } from '../../../src/agent/state/record.js';

function recordWith(count: number): LocalRecord {
  const files = new Map<string, { size: number; mtimeMs: number }>();
  for (let index = 0; index < count; index += 1) files.set(`artifacts/f${index}.txt`, { size: index, mtimeMs: 1e12 + index });
  return { bucket: 'b', prefix: 'ns/s/', hydrated: true, files };
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('one writer of the record', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'record-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('concurrent writes never collide on a temp file: each lands whole, none fails', async () => {
    const writes = Array.from({ length: 20 }, (_, index) => writeRecord(dir, recordWith(200 + index)));
    await expect(Promise.all(writes)).resolves.toBeDefined();
    const record = await readRecord(dir, 'b', 'ns/s/');
    expect(record?.files.size).toBeGreaterThanOrEqual(200);
    expect(await readdir(dir)).toEqual(['record.json']);
  });

  it('lets a second holder in only after the first released the lock', async () => {
    const first = await lockRecord(dir, { waitMs: 5_000 });
    expect((await readFile(path.join(dir, 'record.lock'), 'utf8')).trim()).toBe(String(process.pid));
    let secondHeld = false;
    const second = lockRecord(dir, { waitMs: 5_000 }).then((lock) => {
      secondHeld = true;
      return lock;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(secondHeld).toBe(false);
    await first.release();
    await (await second).release();
    expect(secondHeld).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('gives up with a message naming the live holder when the wait runs out', async () => {
    // The test runner's parent is alive and is not this process: a live holder.
    await writeFile(path.join(dir, 'record.lock'), `${process.ppid}\n`);
    const started = Date.now();
    await expect(lockRecord(dir, { waitMs: 400 })).rejects.toThrow(
      `another sync process (pid ${process.ppid}) holds ${path.join(dir, 'record.lock')}`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('takes over a lock left by a process that died, or by an earlier run of this container (same pid)', async () => {
    await writeFile(path.join(dir, 'record.lock'), `${await deadPid()}\n`);
    await (await lockRecord(dir, { waitMs: 0 })).release();
    await writeFile(path.join(dir, 'record.lock'), `${process.pid}\n`);
    await (await lockRecord(dir, { waitMs: 0 })).release();
  });

  it('stops waiting when the cycle is aborted', async () => {
    await writeFile(path.join(dir, 'record.lock'), `${process.ppid}\n`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(lockRecord(dir, { waitMs: 60_000, signal: controller.signal })).rejects.toThrow(/aborted/);
  });
});
