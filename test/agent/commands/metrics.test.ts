import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveSyncMetrics, SyncMetrics } from '../../../src/agent/commands/metrics.js';

function clock(start: number) {
  let now = start;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

const report = { uploaded: 0, uploadedBytes: 0, deleted: 0, skipped: 0, durationSeconds: 0.2 };

describe('state-sync metrics', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  it('a sidecar whose cycles keep failing turns unhealthy once no cycle succeeded for the threshold', () => {
    const time = clock(1_000_000);
    const metrics = new SyncMetrics({ session: 's1', intervalSeconds: 60, version: 't', unhealthyAfterSeconds: 180, now: time.now });
    expect(metrics.healthy()).toBe(true);
    time.advance(60);
    metrics.record({ ...report, ok: true });
    time.advance(120);
    metrics.record({ ...report, ok: false });
    expect(metrics.healthy()).toBe(true);
    time.advance(61);
    metrics.record({ ...report, ok: false });
    expect(metrics.healthy()).toBe(false);
    expect(metrics.secondsSinceSuccess()).toBe(181);
    metrics.record({ ...report, ok: true });
    expect(metrics.healthy()).toBe(true);
  });

  it('a cycle still running is never unhealthy, so a long first upload is not killed and started over', () => {
    const time = clock(0);
    const metrics = new SyncMetrics({ session: 's1', intervalSeconds: 60, version: 't', unhealthyAfterSeconds: 180, now: time.now });
    metrics.cycleStarted();
    time.advance(600);
    expect(metrics.healthy()).toBe(true);
    metrics.record({ ...report, ok: false });
    expect(metrics.healthy()).toBe(false);
  });

  it('a sidecar that never succeeds is unhealthy after the threshold from its start', () => {
    const time = clock(0);
    const metrics = new SyncMetrics({ session: 's1', intervalSeconds: 60, version: 't', unhealthyAfterSeconds: 180, now: time.now });
    time.advance(181);
    expect(metrics.healthy()).toBe(false);
  });

  it('serves the series the alerts and the dashboard use, and /healthz from the same state', async () => {
    const time = clock(1_700_000_000_000);
    const metrics = new SyncMetrics({ session: 's1', intervalSeconds: 30, version: '9.9.9', unhealthyAfterSeconds: 90, now: time.now });
    metrics.record({ ok: true, uploaded: 3, uploadedBytes: 4096, deleted: 1, skipped: 2, durationSeconds: 0.5 });
    const server = await serveSyncMetrics(metrics, 0, '127.0.0.1');
    close = () => server.close();
    const base = `http://127.0.0.1:${server.port}`;
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(body).toContain('session_storage_sync_last_success_timestamp_seconds{session="s1"} 1700000000');
    expect(body).toContain('session_storage_sync_interval_seconds{session="s1"} 30');
    expect(body).toContain('session_storage_sync_cycles_total{result="ok",session="s1"} 1');
    expect(body).toContain('session_storage_sync_cycles_total{result="failed",session="s1"} 0');
    expect(body).toContain('session_storage_sync_uploaded_bytes_total{session="s1"} 4096');
    expect(body).toContain('session_storage_sync_skipped_files{session="s1"} 2');
    expect(body).toContain('session_storage_agent_build_info{version="9.9.9",session="s1"} 1');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    time.advance(91);
    const unhealthy = await fetch(`${base}/healthz`);
    expect(unhealthy.status).toBe(503);
    expect(await unhealthy.text()).toBe('no successful sync for 91s\n');
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('holds at most 32 connections however many idle sockets clients open, and still answers /healthz', async () => {
    const metrics = new SyncMetrics({ session: 's1', intervalSeconds: 60, version: 't', unhealthyAfterSeconds: 300 });
    const server = await serveSyncMetrics(metrics, 0, '127.0.0.1');
    const sockets: Socket[] = [];
    close = () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    };
    // 1,000 idle sockets from 25 loopback addresses (each one is the loopback interface on Linux).
    await Promise.all(
      Array.from(
        { length: 1_000 },
        (_, n) =>
          new Promise<void>((resolve) => {
            const socket = connect({ host: '127.0.0.1', port: server.port, localAddress: `127.0.0.${(n % 25) + 2}` }, resolve);
            socket.on('error', () => resolve());
            sockets.push(socket);
          }),
      ),
    );
    const open = await new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    expect(open).toBeLessThanOrEqual(32);
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });
});
