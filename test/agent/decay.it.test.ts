import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BUNDLE_KEY } from '../../src/agent/bundle/bundle-format.js';
import { freePort } from '../support/free-port.js';
import { addUser, createBucket } from '../support/minio.js';
import { perProjectPolicy } from '../support/policies.js';
import { agentEnv, ensureBuilt, newPod, runCli, startCli, uniqueSession, type Pod } from './support/helpers.js';

// A resume after a bucket lifecycle rule expired part of a stopped session: hydrate
// restores the rest and exits 0, and says what is missing where users look (its last log
// line, the termination message the kubelet reads, state-sync's gauge).

const minio = inject('minio');

const FILES: Record<string, string> = {
  '.claude/projects/-workspace/history.jsonl': '{"role":"user"}\n',
  'artifacts/report.md': '# Report\n',
  'artifacts/old-notes.md': 'written long ago\n',
  'uploads/data.csv': 'a,b\n',
};
const EXPIRED = ['artifacts/old-notes.md', 'uploads/data.csv'];

describe('a stopped session that lost objects', () => {
  let bucket: string;
  const pods: Pod[] = [];

  async function stoppedSession(overrides: Record<string, string> = {}): Promise<{ session: string; env: Record<string, string> }> {
    const session = uniqueSession();
    const first = await newPod(agentEnv(minio, bucket, session, overrides));
    pods.push(first);
    expect(await first.hydrate()).toBe(true);
    for (const [file, content] of Object.entries(FILES)) {
      await mkdir(path.dirname(path.join(first.workspace, file)), { recursive: true });
      await writeFile(path.join(first.workspace, file), content);
    }
    expect((await first.sync({ final: true })).ok).toBe(true);
    // What the lifecycle rule does to a stopped session: object by object, by age; the
    // restore bundle, written by the same final sync, goes with them.
    for (const file of [...EXPIRED, BUNDLE_KEY]) await first.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `project-a/${session}/${file}` }));
    return { session, env: overrides };
  }

  // The next pod, with the file the kubelet gives every container for its message.
  async function nextPod(session: string, overrides: Record<string, string>): Promise<{ pod: Pod; message: string }> {
    const pod = await newPod(agentEnv(minio, bucket, session, overrides));
    pods.push(pod);
    const message = path.join(pod.stateDir, '..', `${path.basename(pod.stateDir)}-termination-log`);
    await writeFile(message, '');
    pod.env.TERMINATION_MESSAGE_PATH = message;
    return { pod, message };
  }

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'decay');
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('restores the rest, exits 0, and names the missing files in its last line and its termination message', async () => {
    const { session } = await stoppedSession();
    const { pod, message } = await nextPod(session, {});
    const run = await runCli(['hydrate'], pod.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /WARNING: 2 files of this session's saved state were missing from S3 \(expired or deleted\); the runner started without them: artifacts\/old-notes\.md, uploads\/data\.csv$/,
    );
    expect(await readFile(message, 'utf8')).toBe(
      "2 files of this session's saved state were missing from S3 (expired or deleted); the runner started without them: artifacts/old-notes.md, uploads/data.csv",
    );
    expect(await readFile(path.join(pod.workspace, 'artifacts/report.md'), 'utf8')).toBe('# Report\n');

    // state-sync's metrics carry the count for as long as the pod lives.
    const port = await freePort();
    const sync = startCli(['sync'], { ...pod.env, SYNC_METRICS_PORT: String(port), SYNC_INTERVAL: '3600' });
    try {
      await sync.waitFor(/Sync complete/);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^session_storage_hydrate_missing_files\{session="[^"]+"\} 2$/m);
    } finally {
      sync.child.kill('SIGTERM');
      expect((await sync.exited).code).toBe(0);
    }
  });

  it('counts them without s3:ListBucket too, where a missing object answers 403', async () => {
    const user = await addUser(minio, perProjectPolicy(bucket));
    const keys = { AWS_ACCESS_KEY_ID: user.accessKey, AWS_SECRET_ACCESS_KEY: user.secretKey };
    const { session } = await stoppedSession(keys);
    const { pod, message } = await nextPod(session, keys);
    const run = await runCli(['hydrate'], pod.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toContain('2 files of this session\'s saved state were missing from S3');
    expect(await readFile(message, 'utf8')).toContain('artifacts/old-notes.md, uploads/data.csv');
  });

  it('says nothing and leaves the message empty when the whole state is there; the gauge is 0', async () => {
    const session = uniqueSession();
    const first = await newPod(agentEnv(minio, bucket, session));
    pods.push(first);
    expect(await first.hydrate()).toBe(true);
    await mkdir(path.join(first.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(first.workspace, 'artifacts/whole.md'), 'whole');
    expect((await first.sync({ final: true })).ok).toBe(true);
    const { pod, message } = await nextPod(session, {});
    const run = await runCli(['hydrate'], pod.env);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toMatch(/Hydrate complete \(1 files restored/);
    expect(await readFile(message, 'utf8')).toBe('');
    expect(await readFile(path.join(pod.stateDir, 'hydrate-missing-files'), 'utf8')).toBe('0\n');
  });
});
