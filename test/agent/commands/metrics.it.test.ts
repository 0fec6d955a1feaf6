import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../support/free-port.js';
import { createBucket } from '../../support/minio.js';
import { agentEnv, ensureBuilt, newPod, runCli, startCli, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('state-sync metrics (built CLI, real MinIO)', () => {
  let bucket: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'metrics');
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('counts what the sidecar uploads and when its last good cycle was, and reports it healthy', async () => {
    const port = await freePort();
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session, { SYNC_INTERVAL: '1', SYNC_METRICS_PORT: String(port) }));
    pods.push(pod);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/report.md'), 'x'.repeat(1000));
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);

    const sidecar = startCli(['sync'], pod.env);
    try {
      await sidecar.waitFor(/Sync complete/);
      const body = await scrape(port);
      expect(value(body, `session_storage_sync_uploaded_files_total{session="${session}"}`)).toBe(1);
      expect(value(body, `session_storage_sync_uploaded_bytes_total{session="${session}"}`)).toBe(1000);
      expect(value(body, `session_storage_sync_cycles_total{result="ok",session="${session}"}`)).toBeGreaterThanOrEqual(1);
      const lastGood = value(body, `session_storage_sync_last_success_timestamp_seconds{session="${session}"}`)!;
      expect(Math.abs(lastGood - Date.now() / 1000)).toBeLessThan(30);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
    }
  });

  it('a restarted sidecar reports the last good cycle of the one before it, not its own start', async () => {
    const port = await freePort();
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session, { SYNC_INTERVAL: '1', SYNC_METRICS_PORT: String(port) }));
    pods.push(pod);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/report.md'), 'x');
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const series = `session_storage_sync_last_success_timestamp_seconds{session="${session}"}`;

    const first = startCli(['sync'], pod.env);
    await first.waitFor(/Sync complete/);
    const seenGood = value(await scrape(port), series)!;
    // The liveness probe kills a sidecar minutes after its last good cycle, not as it ends.
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Killed the way the kubelet's liveness probe ends one (no final sync), then S3
    // stops answering: the second sidecar's cycles all fail.
    first.child.kill('SIGKILL');
    await first.exited;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const restartedAt = Date.now() / 1000;
    const second = startCli(['sync'], { ...pod.env, S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` });
    try {
      // S3 unreachable: no cycle of this sidecar can succeed, whatever it logs.
      let body: string | undefined;
      const deadline = Date.now() + 30_000;
      while (body === undefined && Date.now() < deadline) {
        body = await scrape(port).catch(() => undefined);
        if (body === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const reported = value(body ?? '', series)!;
      // The first sidecar's last good cycle: at or after what it served, before the restart.
      expect(reported).toBeGreaterThanOrEqual(seenGood);
      expect(reported).toBeLessThan(restartedAt - 1);
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });

  it('serves nothing unless given a port', async () => {
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), {}));
    pods.push(pod);
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const run = await runCli(['sync', '--once'], pod.env);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('metrics');
  });
});
