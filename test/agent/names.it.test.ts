import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket } from '../support/minio.js';
import { agentEnv, ensureBuilt, newPod, runCli, uniqueSession, type Pod } from './helpers.js';

const minio = inject('minio');
const FORGED = '[2026-01-01T00:00:00.000Z] Sync complete (3 paths synced)';

describe('file names in the agent log (built CLI)', () => {
  let bucket: string;
  const pods: Pod[] = [];
  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'names');
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('cannot start a log line of their own', async () => {
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { MAX_SYNC_SIZE: '10' }));
    pods.push(pod);
    const outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
    await writeFile(path.join(outside, 'secret'), 'host');
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await symlink(path.join(outside, 'secret'), path.join(pod.workspace, `artifacts/link\n${FORGED}`));
    // Over MAX_SYNC_SIZE, so the skip is logged with its name too.
    await writeFile(path.join(pod.workspace, `artifacts/big\r\n${FORGED}`), 'x'.repeat(20));
    const run = await runCli(['sync', '--once'], pod.env);
    await rm(outside, { recursive: true, force: true });
    expect(run.code).toBe(0);
    const lines = (run.stdout + run.stderr).split('\n');
    expect(lines.filter((line) => line.startsWith(FORGED))).toEqual([]);
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout).toContain(`WARNING: artifacts/link\\n${FORGED} is a symlink pointing outside the workspace: not synced`);
    expect(run.stdout).toContain(`  skipped artifacts/big\\r\\n${FORGED} (20 B)`);
  });
});
