import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { createBucket } from '../support/minio.js';
import { LEASE_KEY } from '../../src/agent/state/lease.js';
import { agentEnv, ensureBuilt, getText, newPod, runCli, startCli, uniqueSession, type Pod } from './support/helpers.js';

const minio = inject('minio');
const ISO = '\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\]';

describe('session-storage hydrate / sync (built CLI)', () => {
  let bucket: string;
  const pods: Pod[] = [];
  const podEnv = async (overrides: Record<string, string> = {}) => {
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { HYDRATE_TIMEOUT_SECONDS: '2', ...overrides }));
    pods.push(pod);
    return pod;
  };

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'cli');
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('exits 2 with one line naming a missing setting', async () => {
    const pod = await podEnv();
    const { S3_BUCKET: _omitted, ...env } = pod.env;
    const run = await runCli(['hydrate'], env);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`^${ISO} ERROR: invalid configuration: S3_BUCKET is required\\n$`));
  });

  it.each([
    ['wrong credentials', { AWS_SECRET_ACCESS_KEY: 'not-the-secret-123' }, 'access denied'],
    ['a missing bucket', { S3_BUCKET: 'no-such-bucket-here' }, 'bucket not found'],
  ])('names %s and gives up within HYDRATE_TIMEOUT_SECONDS', async (_name, overrides, message) => {
    const pod = await podEnv(overrides);
    const run = await runCli(['hydrate'], pod.env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`ERROR: hydrate failed: ${message}`);
    expect(run.stdout).toContain(`WARNING: hydrate attempt 1 failed: ${message}`);
    expect(run.ms).toBeLessThan(8_000);
    expect(run.stdout + run.stderr).not.toContain(pod.env.AWS_SECRET_ACCESS_KEY);
  });

  it('names a dead endpoint "connection refused" and gives up in bounded time', async () => {
    const pod = await podEnv({ S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` });
    const run = await runCli(['hydrate'], pod.env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERROR: hydrate failed: connection refused');
    expect(run.ms).toBeLessThan(8_000);
  });

  it('sync --once prints the log lines operators grep for and exits 0', async () => {
    const pod = await podEnv();
    await mkdir(path.join(pod.workspace, '.claude'), { recursive: true });
    await writeFile(path.join(pod.workspace, '.claude/history.jsonl'), 'x');
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const run = await runCli(['sync', '--once'], pod.env);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${ISO} Starting sync to S3\\.\\.\\.$`)));
    expect(lines).toContain('  Syncing .claude/...');
    expect(lines).toContain('  Syncing artifacts/...');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${ISO} Sync complete \\(5 paths synced\\)$`)));
    expect(run.stdout + run.stderr).not.toContain(pod.env.AWS_SECRET_ACCESS_KEY);
  });

  // `sync --once` is a pod's last word too (the migration Job's, a one-off save): a session
  // it leaves "active" makes every next pod wait out the whole grace period for it.
  it('sync --once releases the session: the next pod hydrates at once, not after the grace period', async () => {
    const slowGrace = { TERMINATION_GRACE_SECONDS: '600', HYDRATE_TIMEOUT_SECONDS: '30' };
    const first = await podEnv(slowGrace);
    await mkdir(path.join(first.workspace, '.claude'), { recursive: true });
    await writeFile(path.join(first.workspace, '.claude/history.jsonl'), 'turn 1\n');
    expect((await runCli(['sync', '--once'], first.env)).code).toBe(0);
    const lease = JSON.parse(await getText(first.client, bucket, `project-a/${first.env.SESSION_NAME}/${LEASE_KEY}`)) as { state: string };
    expect(lease.state).toBe('released');

    // The next pod: the same session, its own (empty) workspace and state.
    const { WORKSPACE_DIR: _workspace, AGENT_STATE_DIR: _state, ...sessionEnv } = first.env;
    const next = await newPod(sessionEnv);
    pods.push(next);
    const run = await runCli(['hydrate'], next.env);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('still waiting');
    expect(run.ms).toBeLessThan(20_000);
    expect(await readFile(path.join(next.workspace, '.claude/history.jsonl'), 'utf8')).toBe('turn 1\n');
  });

  it('sync --once beside a live sidecar (kubectl exec) leaves the release to the sidecar\'s final sync', async () => {
    const pod = await podEnv({ TERMINATION_GRACE_SECONDS: '600', SYNC_INTERVAL: '3600' });
    await mkdir(path.join(pod.workspace, '.claude'), { recursive: true });
    await writeFile(path.join(pod.workspace, '.claude/history.jsonl'), 'turn 1\n');
    const leaseKey = `project-a/${pod.env.SESSION_NAME}/${LEASE_KEY}`;
    const sidecar = startCli(['sync'], pod.env);
    try {
      await sidecar.waitFor(/Sync complete/);
      await writeFile(path.join(pod.workspace, '.claude/history.jsonl'), 'turn 1\nturn 2\n');
      expect((await runCli(['sync', '--once'], pod.env)).code).toBe(0);
      expect((JSON.parse(await getText(pod.client, bucket, leaseKey)) as { state: string }).state).toBe('active');
    } finally {
      sidecar.child.kill('SIGTERM');
      expect((await sidecar.exited).code).toBe(0);
    }
    expect((JSON.parse(await getText(pod.client, bucket, leaseKey)) as { state: string }).state).toBe('released');
  });

  it('syncs everything else when one file cannot be read, and exits 0', async () => {
    const pod = await podEnv();
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/readable.txt'), 'ok');
    const locked = path.join(pod.workspace, 'artifacts/locked.txt');
    await writeFile(locked, 'private');
    await chmod(locked, 0o000);
    const run = await runCli(['sync', '--once'], pod.env, 60_000, true);
    expect(run.stdout).toContain('WARNING: cannot read artifacts/locked.txt (EACCES): not synced');
    expect(run.stdout).toContain('1 uploaded, 0 deleted, 0 unchanged, 0 skipped, 0 failed');
    expect(run.code).toBe(0);
  });
});
