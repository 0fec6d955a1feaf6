import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../support/minio.js';
import { agentEnv, ensureBuilt, getMetadata, newPod, type Pod, runCli, startCli, uniqueSession, writeFiles } from './support/helpers.js';

// Issue 21 case 6: when the local record cannot be written (AGENT_STATE_DIR full), the
// cycle still writes metadata.json from the record in memory, reports the failure and
// keeps the manifest due. The state dir is a small tmpfs filled to its last page, which
// the record lock takes: the record itself then finds no space (ENOSPC). (A state dir
// without even that page fails the cycle at the lock, before any upload.) Needs root to
// mount; the agent runs as the real CLI against MinIO.

const minio = inject('minio');
const run = promisify(execFile);
// A full state dir is a small tmpfs the test mounts, which takes root. A developer's
// non-root run skips it; under CI=true it runs (and fails without root), never a skip.
const root = process.getuid?.() === 0 || process.env.CI === 'true';
const PAGE = 4096;

// Leaves `pages` free: one for the record lock (and one for the pid file the sidecar
// announces itself with), none for the record.
async function fillToLastPages(dir: string, pages: number): Promise<void> {
  const info = await statfs(dir);
  const free = info.bavail * info.bsize;
  if (free > pages * PAGE) await writeFile(path.join(dir, 'filler'), Buffer.alloc(free - pages * PAGE));
  const after = await statfs(dir);
  expect(after.bavail * after.bsize).toBe(pages * PAGE);
}

// Files whose keys make a record of several pages.
function manyFiles(count: number, tag: string): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`artifacts/${tag}-a-rather-long-file-name-to-fill-the-record-${i}.txt`, `${tag} ${i}`]));
}

describe.skipIf(!root)('a full AGENT_STATE_DIR', () => {
  let bucket: string;
  let s3: S3Client;
  let stateDir: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'full-state');
    s3 = rootClient(minio);
  });
  afterEach(async () => {
    await run('umount', [stateDir]).catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
  });
  afterAll(async () => {
    s3.destroy();
    for (const pod of pods) await pod.dispose();
  });

  // A hydrated pod whose state dir is a 64 KiB tmpfs.
  async function podOnTmpfs(): Promise<{ pod: Pod; env: Record<string, string>; prefix: string }> {
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    stateDir = await mkdtemp(path.join(tmpdir(), 'full-state-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', stateDir]);
    const env = { ...pod.env, AGENT_STATE_DIR: stateDir };
    expect((await runCli(['hydrate'], env)).code).toBe(0);
    return { pod, env, prefix: `project-a/${session}/` };
  }

  it('sync --once still writes metadata.json and fails the cycle; with space again, the next cycle writes the record', async () => {
    const { pod, env, prefix } = await podOnTmpfs();
    const first = manyFiles(60, 'first');
    await writeFiles(pod.workspace, first);
    await fillToLastPages(stateDir, 1);
    const failed = await runCli(['sync', '--once'], env);
    expect(failed.code, failed.stdout).toBe(1);
    expect(failed.stdout + failed.stderr).toMatch(/cannot write the local record in .*ENOSPC/);
    expect(Object.keys((await getMetadata(s3, bucket, prefix)).manifest ?? {}).sort()).toEqual(Object.keys(first).sort());

    await rm(path.join(stateDir, 'filler'));
    const again = await runCli(['sync', '--once'], env);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toMatch(/0 uploaded/);
    const record = JSON.parse(await readFile(path.join(stateDir, 'record.json'), 'utf8')) as { files: Record<string, unknown> };
    expect(Object.keys(record.files).sort()).toEqual(Object.keys(first).sort());
  });

  it('the final sync (SIGTERM) writes metadata.json with what it uploaded', async () => {
    const { pod, env, prefix } = await podOnTmpfs();
    await fillToLastPages(stateDir, 2);
    const sidecar = startCli(['sync'], { ...env, SYNC_INTERVAL: '3600' });
    await sidecar.waitFor(/Sync (complete|failed)/);
    const last = manyFiles(60, 'last-turn');
    await writeFiles(pod.workspace, last);
    sidecar.child.kill('SIGTERM');
    const exited = await sidecar.exited;
    expect(exited.stdout + exited.stderr).toMatch(/cannot write the local record in .*ENOSPC/);
    expect(exited.code).toBe(1);
    expect(Object.keys((await getMetadata(s3, bucket, prefix)).manifest ?? {}).sort()).toEqual(Object.keys(last).sort());
  });
});
