import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket } from '../../support/minio.js';
import { agentEnv, ensureBuilt, listKeys, newPod, runCli, startCli, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

// `kubectl exec POD -c state-sync -- ... sync-now`: the running sidecar syncs at once,
// in its own process, instead of waiting out SYNC_INTERVAL.
describe('session-storage sync-now', () => {
  let bucket: string;
  let pod: Pod;

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'sync-now');
    pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { SYNC_INTERVAL: '3600', SYNC_PATHS: 'artifacts' }));
  });
  afterAll(async () => {
    await pod.dispose();
  });

  it('makes the running sidecar sync now, and says so when there is none', async () => {
    expect(await pod.hydrate()).toBe(true);
    await mkdir(path.join(pod.workspace, 'artifacts'));
    const sidecar = startCli(['sync'], pod.env);
    await sidecar.waitFor(/Sync complete/);
    await writeFile(path.join(pod.workspace, 'artifacts/now.txt'), 'wanted in S3 before the hour is up');
    await new Promise((resolve) => setTimeout(resolve, 300));

    // The same container: the same env, hence the same AGENT_STATE_DIR.
    const asked = await runCli(['sync-now'], { AGENT_STATE_DIR: pod.env.AGENT_STATE_DIR! });
    expect(asked.stderr).toBe('');
    expect(asked.code).toBe(0);
    expect(asked.stdout).toContain(`asked state-sync (pid ${sidecar.child.pid}) for a sync cycle now`);
    await sidecar.waitFor(/Sync complete/, 2, 10_000);
    expect(sidecar.stdout()).toContain('Received SIGUSR1: syncing now');
    expect(await listKeys(pod.client, bucket, `project-a/${pod.settings.session}/`)).toContain('artifacts/now.txt');
    // SIGUSR1 must never have opened the inspector.
    expect(sidecar.stderr()).not.toContain('Debugger listening');

    sidecar.child.kill('SIGTERM');
    expect((await sidecar.exited).code).toBe(0);
    const none = await runCli(['sync-now'], { AGENT_STATE_DIR: pod.env.AGENT_STATE_DIR! });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error: no running state-sync announced itself in .*state-sync\.pid/);
  });
});
