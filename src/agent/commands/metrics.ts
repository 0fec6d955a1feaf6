import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { guardConnections } from '../../shared/connection-guard.js';

// What one sync cycle did, as the metrics need it.
export interface CycleReport {
  ok: boolean;
  uploaded: number;
  uploadedBytes: number;
  deleted: number;
  skipped: number;
  durationSeconds: number;
}

export interface SyncMetricsOptions {
  session: string;
  intervalSeconds: number;
  version: string;
  // A sidecar with no successful cycle for this long is reported unhealthy.
  unhealthyAfterSeconds: number;
  /** the last successful cycle of an earlier run of this sidecar in the same pod (ms) */
  lastSuccessMs?: number;
  /** files of the manifest this pod's hydrate found gone from S3 (missing-files.ts) */
  hydrateMissingFiles?: number;
  now?: () => number;
}

// The state-sync sidecar's own signal that a session stopped being saved: a sidecar whose
// keys were revoked stays Running, so only "time since the last good cycle" tells. The
// namespace and pod labels come from the scrape target (PodMonitor), not from here, so they
// never clash with Prometheus' own.
export class SyncMetrics {
  readonly registry = new Registry();
  private readonly lastSuccess: Gauge;
  private readonly cycles: Counter<'result'>;
  private readonly uploadedFiles: Counter;
  private readonly uploadedBytes: Counter;
  private readonly deletedFiles: Counter;
  private readonly skippedFiles: Gauge;
  private readonly duration: Histogram;
  private readonly started: number;
  private lastOk: number | undefined;
  private running = false;
  private readonly now: () => number;

  constructor(private readonly options: SyncMetricsOptions) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
    const labels = { session: options.session };
    const registers = [this.registry];
    this.registry.setDefaultLabels(labels);
    new Gauge({
      name: 'session_storage_agent_build_info',
      help: 'Version of the session-storage agent; always 1',
      labelNames: ['version'],
      registers,
    }).set({ version: options.version }, 1);
    new Gauge({
      name: 'session_storage_sync_interval_seconds',
      help: 'SYNC_INTERVAL of this sidecar: a session is late when its last good cycle is older than a few intervals',
      registers,
    }).set(options.intervalSeconds);
    this.lastSuccess = new Gauge({
      name: 'session_storage_sync_last_success_timestamp_seconds',
      help: 'Unix time of the last sync cycle that saved everything it had to (also across sidecar restarts; start of the first sidecar until the first one)',
      registers,
    });
    this.lastSuccess.set((options.lastSuccessMs ?? this.started) / 1000);
    this.cycles = new Counter({
      name: 'session_storage_sync_cycles_total',
      help: 'Sync cycles, by result (ok or failed)',
      labelNames: ['result'],
      registers,
    });
    this.cycles.inc({ result: 'ok' }, 0);
    this.cycles.inc({ result: 'failed' }, 0);
    this.uploadedFiles = new Counter({ name: 'session_storage_sync_uploaded_files_total', help: 'Files uploaded', registers });
    this.uploadedBytes = new Counter({ name: 'session_storage_sync_uploaded_bytes_total', help: 'Bytes uploaded', registers });
    this.deletedFiles = new Counter({
      name: 'session_storage_sync_deleted_files_total',
      help: 'Remote objects deleted because their file was removed locally',
      registers,
    });
    this.skippedFiles = new Gauge({
      name: 'session_storage_sync_skipped_files',
      help: 'Files the last cycle did not sync because of MAX_SYNC_SIZE',
      registers,
    });
    new Gauge({
      name: 'session_storage_hydrate_missing_files',
      help: "Files of the session's saved state this pod's hydrate found missing from S3 (expired or deleted): the runner started without them",
      registers,
    }).set(options.hydrateMissingFiles ?? 0);
    this.duration = new Histogram({
      name: 'session_storage_sync_cycle_duration_seconds',
      help: 'Duration of sync cycles',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
  }

  cycleStarted(): void {
    this.running = true;
  }

  record(report: CycleReport): void {
    this.running = false;
    this.cycles.inc({ result: report.ok ? 'ok' : 'failed' });
    this.uploadedFiles.inc(report.uploaded);
    this.uploadedBytes.inc(report.uploadedBytes);
    this.deletedFiles.inc(report.deleted);
    this.skippedFiles.set(report.skipped);
    this.duration.observe(report.durationSeconds);
    if (report.ok) {
      this.lastOk = this.now();
      this.lastSuccess.set(this.lastOk / 1000);
    }
  }

  // Healthy until no cycle has succeeded for unhealthyAfterSeconds (counted from the start
  // when none has yet): the kubelet's liveness probe turns that into an event and a restart
  // count on the pod, where users look. A cycle still running is never unhealthy: a first
  // upload of a large tree may take longer than the threshold, and killing it would only
  // start it over (its requests time out on their own when S3 hangs).
  healthy(): boolean {
    if (this.running) return true;
    const since = this.lastOk ?? this.started;
    return this.now() - since <= this.options.unhealthyAfterSeconds * 1000;
  }

  secondsSinceSuccess(): number {
    return Math.round((this.now() - (this.lastOk ?? this.started)) / 1000);
  }
}

// Prometheus and the kubelet's probe need a connection or two each; idle sockets beyond
// these are closed, so no client can grow the sidecar's memory with them (what one costs:
// docs/BENCHMARKS.md).
const SYNC_METRICS_LIMITS = { max: 32, perSource: 8 };
const SYNC_METRICS_TIMEOUTS = { headersTimeout: 5_000, requestTimeout: 10_000, connectionsCheckingInterval: 1_000 };

// GET /metrics (Prometheus) and GET /healthz on a plain-HTTP port of the pod; nothing else.
export async function serveSyncMetrics(metrics: SyncMetrics, port: number, address = '0.0.0.0'): Promise<Server & { port: number }> {
  const server = createServer(SYNC_METRICS_TIMEOUTS, (req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
      });
      return;
    }
    if (req.url === '/healthz') {
      const healthy = metrics.healthy();
      res
        .writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' })
        .end(healthy ? 'ok\n' : `no successful sync for ${metrics.secondsSinceSuccess()}s\n`);
      return;
    }
    res.writeHead(404).end();
  });
  guardConnections(server, SYNC_METRICS_LIMITS);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A metrics port must never keep the sidecar alive after its final sync.
  server.unref();
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}
