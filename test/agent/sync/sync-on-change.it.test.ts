import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createBucket } from '../../support/minio.js';
import { agentEnv, ensureBuilt, getText, newPod, startCli, uniqueSession, type Pod, type RunningCli } from '../support/helpers.js';

const minio = inject('minio');

// What S3 holds at `key` now, or undefined.
async function remoteText(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return await getText(client, bucket, key);
  } catch {
    return undefined;
  }
}

// Milliseconds until S3 holds `expected` at `key` (polled every 50 ms), or Infinity.
async function msUntilRemote(client: S3Client, bucket: string, key: string, expected: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if ((await remoteText(client, bucket, key)) === expected) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Infinity;
}

// The state-sync sidecar of a new pod, hydrated, after its first cycle.
async function sidecar(bucket: string, env: Record<string, string>, under: string[] = []): Promise<{ pod: Pod; sync: RunningCli; key: (rel: string) => string }> {
  const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { SYNC_PATHS: '.claude,artifacts', ...env }));
  await mkdir(path.join(pod.workspace, '.claude/projects/p1'), { recursive: true });
  await mkdir(path.join(pod.workspace, 'artifacts/reports'), { recursive: true });
  expect(await pod.hydrate()).toBe(true);
  const sync = startCli(['sync'], pod.env, false, under);
  await sync.waitFor(/Sync complete/);
  // The watches are set up beside the first cycle: watching, or the reason it is not.
  await sync.waitFor(/Watching \d+ directories|not watching/);
  return { pod, sync, key: (rel) => `project-a/${pod.settings.session}/${rel}` };
}

// Sync on change (issue 26): the sidecar watches the sync paths and syncs a debounce after
// changes settle, with SYNC_INTERVAL as the sweep and the longest a change waits.
describe('sync on change', () => {
  const pods: Pod[] = [];
  const running: RunningCli[] = [];
  afterAll(async () => {
    for (const sync of running) {
      sync.child.kill('SIGTERM');
      await sync.exited;
    }
    for (const pod of pods) await pod.dispose();
  });

  it('has a write in S3 within the debounce and a cycle, an hour before SYNC_INTERVAL', async () => {
    await ensureBuilt();
    const bucket = await createBucket(minio, 'on-change');
    const { pod, sync, key } = await sidecar(bucket, { SYNC_INTERVAL: '3600', SYNC_DEBOUNCE_SECONDS: '1' });
    pods.push(pod);
    running.push(sync);
    expect(sync.stdout()).toMatch(/Watching 5 directories of the sync paths: a sync starts 1s after changes settle/);

    const history = path.join(pod.workspace, '.claude/projects/p1/history.jsonl');
    await writeFile(history, '{"turn":1}\n');
    const first = await msUntilRemote(pod.client, bucket, key('.claude/projects/p1/history.jsonl'), '{"turn":1}\n', 15_000);
    // A debounce of 1 s plus a cycle of a few requests; a loaded machine gets a margin.
    expect(first).toBeLessThan(6_000);
    await appendFile(history, '{"turn":2}\n');
    const second = await msUntilRemote(pod.client, bucket, key('.claude/projects/p1/history.jsonl'), '{"turn":1}\n{"turn":2}\n', 15_000);
    expect(second).toBeLessThan(6_000);
    // In a directory made after the sidecar started.
    await mkdir(path.join(pod.workspace, 'artifacts/reports/2026'));
    await writeFile(path.join(pod.workspace, 'artifacts/reports/2026/summary.md'), '# done');
    expect(await msUntilRemote(pod.client, bucket, key('artifacts/reports/2026/summary.md'), '# done', 15_000)).toBeLessThan(6_000);
    expect(sync.stdout()).not.toContain('not watching');
  });

  it('still uploads a file that never stops changing, at least every SYNC_INTERVAL', async () => {
    const bucket = await createBucket(minio, 'never-settles');
    // The writer appends every 250 ms: the sync paths never stay quiet for the 2 s debounce.
    const { pod, sync, key } = await sidecar(bucket, { SYNC_INTERVAL: '3', SYNC_DEBOUNCE_SECONDS: '2' });
    pods.push(pod);
    running.push(sync);
    const log = path.join(pod.workspace, 'artifacts/reports/build.log');
    const remoteLengths: number[] = [];
    let written = '';
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      const line = `line ${written.length}\n`;
      written += line;
      await appendFile(log, line);
      remoteLengths.push((await remoteText(pod.client, bucket, key('artifacts/reports/build.log')))?.length ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Over 10 s of writing with a 3 s interval: uploaded several times while it changed.
    const versions = new Set(remoteLengths.filter((length) => length > 0));
    expect(versions.size).toBeGreaterThanOrEqual(2);
    expect(remoteLengths.findIndex((length) => length > 0)).toBeLessThan(6_000 / 250);
    // Once the writer stops, the last lines go up a debounce later.
    expect(await msUntilRemote(pod.client, bucket, key('artifacts/reports/build.log'), written, 15_000)).toBeLessThan(8_000);
  });

  it("at the kernel's inotify watch limit says so once and syncs every SYNC_INTERVAL", async () => {
    const bucket = await createBucket(minio, 'watch-limit');
    // A user namespace of its own with room for 2 inotify watches: the 5 directories of
    // the sync paths do not fit, and the kernel answers ENOSPC as at fs.inotify.max_user_watches.
    const under = ['unshare', '-Ur', 'sh', '-c', 'echo 2 > /proc/sys/user/max_inotify_watches && exec "$@"', 'limited'];
    expect(execFileSync('unshare', ['-Ur', 'sh', '-c', 'echo 2 > /proc/sys/user/max_inotify_watches && cat /proc/sys/user/max_inotify_watches']).toString().trim()).toBe('2');
    const { pod, sync, key } = await sidecar(bucket, { SYNC_INTERVAL: '2', SYNC_DEBOUNCE_SECONDS: '1' }, under);
    pods.push(pod);
    running.push(sync);
    expect(sync.stdout()).toMatch(
      /WARNING: not watching the sync paths for changes: the kernel's limit on inotify watches is reached \(fs\.inotify\.max_user_watches\) after 2 directories; changes are synced every SYNC_INTERVAL \(2s\) only/,
    );
    expect(sync.stdout()).not.toContain('Watching');

    await writeFile(path.join(pod.workspace, 'artifacts/reports/late.md'), 'swept');
    expect(await msUntilRemote(pod.client, bucket, key('artifacts/reports/late.md'), 'swept', 15_000)).toBeLessThan(8_000);
    await sync.waitFor(/Sync complete/, 3);
    expect(sync.stdout().match(/not watching/g)).toHaveLength(1);
  });
});
