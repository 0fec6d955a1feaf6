import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lockRecord } from '../../../src/agent/state/record.js';
import { createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, ensureBuilt, listKeys, newPod, runCli, startCli, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

async function writeFiles(workspace: string, files: Record<string, string>): Promise<void> {
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), body);
  }
}

describe('sync guards', () => {
  let bucket: string;
  const pods: Pod[] = [];
  const pod = async (overrides: Record<string, string> = {}) => {
    const created = await newPod(agentEnv(minio, bucket, uniqueSession(), overrides));
    pods.push(created);
    return created;
  };
  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'guards');
  });
  afterAll(async () => {
    for (const created of pods) await created.dispose();
  });

  it('fails the cycle when the workspace directory is missing instead of syncing nothing', async () => {
    const runner = await pod();
    expect(await runner.hydrate()).toBe(true);
    await rm(runner.workspace, { recursive: true });
    const result = await runner.sync();
    expect(result.ok).toBe(false);
    expect(runner.log.text()).toContain(`Sync failed: workspace directory ${runner.workspace} does not exist: is the volume mounted?`);
    expect(runner.log.text()).not.toContain('Sync complete');

    const run = await runCli(['sync', '--once'], runner.env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('is the volume mounted?');
  });

  it('waits for the record lock another process holds before touching the record', async () => {
    const runner = await pod();
    expect(await runner.hydrate()).toBe(true);
    await writeFiles(runner.workspace, { 'artifacts/a.txt': 'a' });
    const held = await lockRecord(runner.stateDir, { waitMs: 0 });
    let done = false;
    const cycle = runner.sync().then((result) => {
      done = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(done).toBe(false);
    await held.release();
    expect(await cycle).toMatchObject({ ok: true, uploaded: 1 });
  });

  it('sync --once beside the live sidecar: both complete, the record stays whole and nothing is lost', async () => {
    const runner = await pod({ SYNC_INTERVAL: '1' });
    expect((await runCli(['hydrate'], runner.env)).code).toBe(0);
    const sidecar = startCli(['sync'], runner.env);
    await sidecar.waitFor(/Sync complete/);
    const files: Record<string, string> = {};
    for (let index = 0; index < 200; index += 1) files[`artifacts/batch/f${index}.txt`] = `content ${index}`;
    await writeFiles(runner.workspace, files);
    const onces = await Promise.all(Array.from({ length: 3 }, () => runCli(['sync', '--once'], runner.env)));
    for (const run of onces) {
      expect(run.stderr).not.toContain('ERROR');
      expect(run.code).toBe(0);
    }
    await sidecar.waitFor(/Sync complete/, (sidecar.stdout().match(/Sync complete/g)?.length ?? 0) + 1);
    sidecar.child.kill('SIGTERM');
    const exit = await sidecar.exited;
    expect(exit.code).toBe(0);
    expect(exit.stderr).not.toContain('ERROR');
    const record = JSON.parse(await readFile(path.join(runner.stateDir, 'record.json'), 'utf8')) as { files: object };
    expect(Object.keys(record.files)).toHaveLength(200);
    const root = rootClient(minio);
    expect(await listKeys(root, bucket, `project-a/${runner.settings.session}/artifacts/batch/`)).toHaveLength(200);
    root.destroy();
  });
});
