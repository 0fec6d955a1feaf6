import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, ensureBuilt, getText, listKeys, newPod, runCli, uniqueSession, type Pod } from '../support/helpers.js';

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

describe('files whose names sync used to skip in silence', () => {
  it('syncs a name that is not UTF-8 under its ‛XX key and a user file ending in the temp suffix, and propagates their deletion', async () => {
    const bucket = await createBucket(minio, 'rawnames');
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const pod = await newPod(agentEnv(minio, bucket, session));
    try {
      expect(await pod.hydrate()).toBe(true);
      await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
      // "résumé.txt" written by a Latin-1 tool.
      const latin1 = Buffer.concat([Buffer.from(`${pod.workspace}/artifacts/r`), Buffer.from([0xe9]), Buffer.from('sum'), Buffer.from([0xe9]), Buffer.from('.txt')]);
      await writeFile(latin1, 'latin-1 resume');
      await writeFile(path.join(pod.workspace, 'artifacts/model.bin.session-storage-partial'), 'user data');
      expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 2 });
      const root = rootClient(minio);
      expect(await listKeys(root, bucket, prefix)).toEqual([
        'artifacts/model.bin.session-storage-partial',
        'artifacts/r‛E9sum‛E9.txt',
        'metadata.json',
      ]);
      expect(await getText(root, bucket, `${prefix}artifacts/r‛E9sum‛E9.txt`)).toBe('latin-1 resume');
      expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0, unchanged: 2 });

      await writeFile(path.join(pod.workspace, 'artifacts/keep.txt'), 'keep');
      await rm(latin1);
      expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1, deleted: 1 });
      expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/r‛E9sum‛E9.txt');
      root.destroy();
    } finally {
      await pod.dispose();
    }
  });
});
