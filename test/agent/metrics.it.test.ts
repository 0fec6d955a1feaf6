import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { createBucket } from '../support/minio.js';
import { agentEnv, ensureBuilt, newPod, runCli, startCli, uniqueSession, type Pod } from './helpers.js';

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

  it('serves nothing unless given a port', async () => {
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), {}));
    pods.push(pod);
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const run = await runCli(['sync', '--once'], pod.env);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('metrics');
  });
});
