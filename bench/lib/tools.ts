import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MinioInfo } from '../../scripts/lib/minio.js';

export interface Invocation {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  // For a process that keeps running: the line that ends the measured work.
  doneLine?: RegExp;
}

/** Where one run of one tool keeps its remote prefix and local state. */
export interface RunContext {
  bucket: string;
  // Unique per tool and run, a DNS label (it doubles as our session name).
  runId: string;
  workspace: string;
  stateDir: string;
  scratch: string;
}

export interface Tool {
  id: string;
  name: string;
  // How the tool was configured, as printed in the table.
  settings: string;
  // Untimed work a real deployment does before the first upload (our init container's hydrate).
  setup?(ctx: RunContext): Invocation;
  upload(ctx: RunContext): Invocation;
  // Untimed for the restore but reported: how the previous pod ended (our final sync,
  // which writes the restore bundle).
  finalSync?(ctx: RunContext): Invocation;
  restore(ctx: RunContext, into: string): Invocation;
}

export interface ToolPaths {
  repoRoot: string;
  s5cmd: string;
}

const BENCH_NAMESPACE = 'bench';
const PEER_ROOT = 'peers';

function baseEnv(minio: MinioInfo): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: minio.accessKey,
    AWS_SECRET_ACCESS_KEY: minio.secretKey,
    AWS_REGION: minio.region,
    AWS_DEFAULT_REGION: minio.region,
  };
}

// The sidecar's own contract line, printed at the end of every cycle.
const SYNC_COMPLETE = /Sync complete \(\d+ paths synced\)/;

/**
 * Ours as a pod runs it: `hydrate` first, then the `sync` sidecar, whose cycle is measured
 * from process start to its "Sync complete" line (the next cycle is an hour away; the
 * process is then killed, so no final sync runs). `sidecar`: the pod then ends with its
 * final sync (`sync --once`, the same path as SIGTERM's), which writes the restore bundle
 * the next pod's hydrate reads. `crashed`: no final sync, so no bundle: the restore is the
 * per-object path a crashed pod's successor takes (after the old pod's grace period, 1 s
 * here). `once`: `sync --once` for every upload.
 */
// The environment the image's runtime stage sets (its ENV lines after the last FROM: V8
// flags, the malloc arena limit), so the bench measures ours as a pod runs it.
export function imageEnv(dockerfile: string): Record<string, string> {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM ') + 1);
  const env: Record<string, string> = {};
  for (const match of runtime.matchAll(/^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S+))/gm)) {
    env[match[1]!] = match[2] ?? match[3]!;
  }
  return env;
}

/** Ours's environment as a pod gives it, with the image's runtime ENV; the agent's own defaults otherwise. */
export function oursEnv(minio: MinioInfo, repoRoot: string, ctx: RunContext, workspace: string, stateDir: string): NodeJS.ProcessEnv {
  return {
    ...baseEnv(minio),
    S3_ENDPOINT: minio.endpoint,
    S3_BUCKET: ctx.bucket,
    S3_REGION: minio.region,
    NAMESPACE: BENCH_NAMESPACE,
    SESSION_NAME: ctx.runId,
    WORKSPACE_DIR: workspace,
    AGENT_STATE_DIR: stateDir,
    TMPDIR: ctx.scratch,
    ...imageEnv(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8')),
  };
}

function ours(minio: MinioInfo, paths: ToolPaths, mode: 'sidecar' | 'crashed' | 'once'): Tool {
  const cli = path.join(paths.repoRoot, 'dist', 'cli.js');
  // The cycle measured is the sidecar's first (the watches armed before it); the next is an
  // hour away, and nothing changes the workspace while it runs.
  const env = (ctx: RunContext, workspace: string, stateDir: string): NodeJS.ProcessEnv => ({
    ...oursEnv(minio, paths.repoRoot, ctx, workspace, stateDir),
    SYNC_INTERVAL: '3600',
    // A crashed pod never releases the session: its successor waits for the lease to go
    // silent or for the old pod's grace period (30-120 s in a cluster, the session
    // protocol's price, not the restore's). Here the crashed pod's grace is 1 s, so (d)
    // measures the per-object restore itself.
    ...(mode === 'crashed' ? { TERMINATION_GRACE_SECONDS: '1' } : {}),
  });
  const once = (ctx: RunContext): Invocation => ({ command: process.execPath, args: [cli, 'sync', '--once'], env: env(ctx, ctx.workspace, ctx.stateDir) });
  const settings = {
    sidecar: 'sidecar cycle (`sync`), `hydrate` after the final sync (restore bundle)',
    crashed: 'sidecar cycle (`sync`), `hydrate` after a crash (no bundle: per object)',
    once: '`sync --once`',
  };
  return {
    id: { sidecar: 'ours', crashed: 'ours-crashed', once: 'ours-once' }[mode],
    name: 'session-storage',
    settings: settings[mode],
    setup: (ctx) => ({ command: process.execPath, args: [cli, 'hydrate'], env: env(ctx, ctx.workspace, ctx.stateDir) }),
    upload: (ctx) =>
      mode === 'once'
        ? once(ctx)
        : { command: process.execPath, args: [cli, 'sync'], env: env(ctx, ctx.workspace, ctx.stateDir), doneLine: SYNC_COMPLETE },
    ...(mode === 'sidecar' ? { finalSync: once } : {}),
    restore: (ctx, into) => ({
      command: process.execPath,
      args: [cli, 'hydrate'],
      env: env(ctx, into, path.join(ctx.scratch, 'restore-state')),
    }),
  };
}

function s5cmd(minio: MinioInfo, paths: ToolPaths, workers?: number): Tool {
  const global = ['--endpoint-url', minio.endpoint, ...(workers ? ['--numworkers', String(workers)] : [])];
  const remote = (ctx: RunContext) => `s3://${ctx.bucket}/${PEER_ROOT}/${ctx.runId}/`;
  return {
    id: workers ? `s5cmd-${workers}` : 's5cmd',
    name: 's5cmd 2.3.0',
    settings: workers ? `\`--numworkers ${workers}\`` : 'defaults (256 workers)',
    upload: (ctx) => ({ command: paths.s5cmd, args: [...global, 'sync', `${ctx.workspace}/`, remote(ctx)], env: baseEnv(minio) }),
    restore: (ctx, into) => ({ command: paths.s5cmd, args: [...global, 'cp', `${remote(ctx)}*`, `${into}/`], env: baseEnv(minio) }),
  };
}

/** rclone's remote `bench:` on MinIO, configured from the environment alone. */
export function rcloneEnv(minio: MinioInfo): NodeJS.ProcessEnv {
  return {
    ...baseEnv(minio),
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Minio',
    RCLONE_CONFIG_BENCH_ENV_AUTH: 'true',
    RCLONE_CONFIG_BENCH_ENDPOINT: minio.endpoint,
    RCLONE_CONFIG_BENCH_REGION: minio.region,
  };
}

function rclone(minio: MinioInfo, workers?: number): Tool {
  const env = rcloneEnv(minio);
  const flags = workers ? ['--transfers', String(workers), '--checkers', String(workers)] : [];
  const remote = (ctx: RunContext) => `bench:${ctx.bucket}/${PEER_ROOT}/${ctx.runId}`;
  return {
    id: workers ? `rclone-${workers}` : 'rclone',
    name: 'rclone 1.60',
    settings: workers ? `\`--transfers ${workers} --checkers ${workers}\`` : 'defaults (4 transfers, 8 checkers)',
    upload: (ctx) => ({ command: '/usr/bin/rclone', args: ['sync', ...flags, ctx.workspace, remote(ctx)], env }),
    restore: (ctx, into) => ({ command: '/usr/bin/rclone', args: ['copy', ...flags, remote(ctx), into], env }),
  };
}

function awsCli(minio: MinioInfo, scratch: string, workers?: number): Tool {
  const id = workers ? `aws-${workers}` : 'aws';
  const config = path.join(scratch, `${id}.config`);
  writeFileSync(
    config,
    ['[default]', `region = ${minio.region}`, 's3 =', '  addressing_style = path', ...(workers ? [`  max_concurrent_requests = ${workers}`] : []), ''].join('\n'),
  );
  const env: NodeJS.ProcessEnv = { ...baseEnv(minio), AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const global = ['--endpoint-url', minio.endpoint, '--no-cli-pager'];
  const remote = (ctx: RunContext) => `s3://${ctx.bucket}/${PEER_ROOT}/${ctx.runId}/`;
  return {
    id,
    name: 'aws-cli 2.9 (Debian)',
    settings: workers ? `\`max_concurrent_requests = ${workers}\`` : 'defaults (10 concurrent requests)',
    upload: (ctx) => ({ command: '/usr/bin/aws', args: [...global, 's3', 'sync', '--only-show-errors', ctx.workspace, remote(ctx)], env }),
    restore: (ctx, into) => ({ command: '/usr/bin/aws', args: [...global, 's3', 'sync', '--only-show-errors', remote(ctx), into], env }),
  };
}

/**
 * Ours first, then each peer with its own defaults and, where it has a knob, with the same
 * number of parallel transfers as ours. `ours-once` runs only when asked for (`--tools`).
 */
export function allTools(minio: MinioInfo, paths: ToolPaths, scratch: string, ourWorkers: number): Tool[] {
  return [
    ours(minio, paths, 'sidecar'),
    ours(minio, paths, 'crashed'),
    ours(minio, paths, 'once'),
    s5cmd(minio, paths),
    s5cmd(minio, paths, ourWorkers),
    rclone(minio),
    rclone(minio, ourWorkers),
    awsCli(minio, scratch),
    awsCli(minio, scratch, ourWorkers),
  ];
}
