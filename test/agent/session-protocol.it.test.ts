import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { LEASE_KEY } from '../../src/agent/state/lease.js';
import { StoreError } from '../../src/agent/store/store.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { perProjectPolicy, seedIamPolicy } from '../support/policies.js';
import { agentEnv, ensureBuilt, getMetadata, getText, listKeys, newPod, runCli, startCli, uniqueSession, type Pod, type RunningCli } from './support/helpers.js';

const minio = inject('minio');

// DESIGN rules 8, 11 and 12 with the agent as the pods run it: each pod its own
// workspace, state dir and POD_UID, `hydrate` and `sync` as processes of the built CLI,
// against MinIO, under the seed's policy and under the per-project one without
// s3:ListBucket (where metadata.json is all a pod knows of the session).

async function put(pod: Pod, rel: string, body: string): Promise<void> {
  await mkdir(path.dirname(path.join(pod.workspace, rel)), { recursive: true });
  await writeFile(path.join(pod.workspace, rel), body);
}

const local = (pod: Pod, rel: string) => readFile(path.join(pod.workspace, rel), 'utf8');

describe.each([
  ['with s3:ListBucket (the seed IAM policy)', seedIamPolicy],
  ['without s3:ListBucket (the per-project policy)', perProjectPolicy],
])('one session, many pods %s', (_name, policyFor) => {
  let bucket: string;
  let credentials: { accessKey: string; secretKey: string };
  const pods: Pod[] = [];
  const sidecars: RunningCli[] = [];
  let podCount = 0;

  // A pod of the session: its own EmptyDirs and UID; `tuning` as the webhook would set it.
  const pod = async (session: string, tuning: Record<string, string> = {}) => {
    podCount += 1;
    const created = await newPod(
      agentEnv(minio, bucket, session, {
        AWS_ACCESS_KEY_ID: credentials.accessKey,
        AWS_SECRET_ACCESS_KEY: credentials.secretKey,
        POD_UID: `uid-${podCount}-${session}`,
        POD_NAME: `${session}-runner-${podCount}`,
        SYNC_INTERVAL: '1',
        HYDRATE_TIMEOUT_SECONDS: '20',
        ...tuning,
      }),
    );
    pods.push(created);
    return created;
  };
  const sidecar = (of: Pod) => {
    const started = startCli(['sync'], of.env);
    sidecars.push(started);
    return started;
  };
  const object = (session: string, key: string) => getText(rootClient(minio), bucket, `project-a/${session}/${key}`);

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'protocol');
    credentials = await addUser(minio, policyFor(bucket));
  });
  afterAll(async () => {
    for (const running of sidecars) if (running.child.exitCode === null) running.child.kill('SIGKILL');
    for (const created of pods) await created.dispose();
  });

  it("a new pod waits for the old pod's final sync and restores the runner's last turn; nothing it then writes is overwritten", async () => {
    const session = uniqueSession();
    // The old pod's grace period is long: the new pod waits for its release, not for that.
    const old = await pod(session, { TERMINATION_GRACE_SECONDS: '60' });
    expect((await runCli(['hydrate'], old.env)).code).toBe(0);
    await put(old, '.claude/history.jsonl', '{"turn":1}\n');
    await put(old, 'artifacts/report.md', 'report v1');
    const oldSync = sidecar(old);
    await oldSync.waitFor(/Sync complete/);

    // The Job's replacement starts while the old runner is still finishing its turn.
    const next = await pod(session);
    const hydrating = startCli(['hydrate'], next.env);
    await hydrating.waitFor(/Waiting for pod .*runner-\d+ .*to release the session/);
    await appendFile(path.join(old.workspace, '.claude/history.jsonl'), '{"turn":2}\n');
    await rm(path.join(old.workspace, 'artifacts/report.md'));
    oldSync.child.kill('SIGTERM');
    expect((await oldSync.exited).code).toBe(0);
    const hydrated = await hydrating.exited;
    expect(hydrated.code, hydrated.stdout + hydrated.stderr).toBe(0);
    expect(hydrated.stdout).toMatch(/took the session over from pod .*, which released it/);
    expect(await local(next, '.claude/history.jsonl')).toBe('{"turn":1}\n{"turn":2}\n');

    // The new runner regenerates the report; the old pod is gone and deletes nothing more.
    await put(next, 'artifacts/report.md', 'report v2');
    await appendFile(path.join(next.workspace, '.claude/history.jsonl'), '{"turn":3}\n');
    const nextSync = sidecar(next);
    await nextSync.waitFor(/Sync complete/, 2);
    expect(await object(session, '.claude/history.jsonl')).toBe('{"turn":1}\n{"turn":2}\n{"turn":3}\n');
    expect(await object(session, 'artifacts/report.md')).toBe('report v2');
    nextSync.child.kill('SIGTERM');
    expect((await nextSync.exited).code).toBe(0);
    const manifest = (await getMetadata(rootClient(minio), bucket, `project-a/${session}/`)).manifest ?? {};
    expect(Object.keys(manifest).sort()).toEqual(['.claude/history.jsonl', 'artifacts/report.md']);
  });

  it('an old pod still running after the new pod took over deletes nothing, never overwrites, keeps its copies beside the data, and its new file reaches the next pod', async () => {
    const session = uniqueSession();
    // A grace period of 1 s: the new pod stops waiting while the old one still renews.
    const old = await pod(session, { TERMINATION_GRACE_SECONDS: '1' });
    expect((await runCli(['hydrate'], old.env)).code).toBe(0);
    await put(old, '.claude/history.jsonl', '{"turn":1}\n');
    await put(old, 'artifacts/report.md', 'report v1');
    const oldSync = sidecar(old);
    await oldSync.waitFor(/Sync complete/);

    const next = await pod(session);
    const hydrated = await runCli(['hydrate'], next.env, 60_000);
    expect(hydrated.code, hydrated.stdout + hydrated.stderr).toBe(0);
    expect(hydrated.stdout).toMatch(/still holds the session after 1s \(its grace period\): taking it over/);
    await put(next, 'artifacts/report.md', 'report v2, regenerated');
    await appendFile(path.join(next.workspace, '.claude/history.jsonl'), '{"turn":"new pod"}\n');
    expect((await runCli(['sync', '--once'], next.env)).code).toBe(0);

    // The old pod resumes: its runner deletes the report, writes its last turn and a new
    // file. Its next write of the lease (before those changes go up) tells it it lost.
    await rm(path.join(old.workspace, 'artifacts/report.md'));
    await appendFile(path.join(old.workspace, '.claude/history.jsonl'), '{"turn":"old pod"}\n');
    await put(old, 'artifacts/only-old.txt', 'only the old pod has this');
    oldSync.child.kill('SIGTERM');
    const oldRun = await oldSync.exited;
    expect(oldRun.code).toBe(0);
    expect(oldRun.stdout + oldRun.stderr).toMatch(/pod .*runner-\d+ .* has taken this session over: this pod no longer deletes objects or writes metadata\.json/);

    expect(await object(session, 'artifacts/report.md')).toBe('report v2, regenerated');
    expect(await object(session, '.claude/history.jsonl')).toBe('{"turn":1}\n{"turn":"new pod"}\n');
    const kept = `.session-storage/superseded/${old.env.POD_UID}/.claude/history.jsonl`;
    expect(await object(session, kept)).toBe('{"turn":1}\n{"turn":"old pod"}\n');
    expect(oldRun.stdout + oldRun.stderr).toContain(`kept this pod's .claude/history.jsonl as s3://${bucket}/project-a/${session}/${kept}`);
    expect(await object(session, 'artifacts/only-old.txt')).toBe('only the old pod has this');
    expect(oldRun.stdout + oldRun.stderr).toContain("uploaded artifacts/only-old.txt, which the session's owner pod did not have");
    // metadata.json is still the owner's: it lists the report the old pod no longer has.
    const before = (await getMetadata(rootClient(minio), bucket, `project-a/${session}/`)).manifest ?? {};
    expect(Object.keys(before)).toContain('artifacts/report.md');

    // The owner adopts what the old pod left at its next cycle; a third pod restores it.
    const adopted = await runCli(['sync', '--once'], next.env);
    expect(adopted.code).toBe(0);
    expect(adopted.stdout).toContain('1 files a superseded pod of this session uploaded are added to metadata.json');
    const after = (await getMetadata(rootClient(minio), bucket, `project-a/${session}/`)).manifest ?? {};
    expect(Object.keys(after).sort()).toEqual(['.claude/history.jsonl', 'artifacts/only-old.txt', 'artifacts/report.md']);
    const third = await pod(session);
    expect((await runCli(['hydrate'], third.env, 60_000)).code).toBe(0);
    expect(await local(third, 'artifacts/only-old.txt')).toBe('only the old pod has this');
    expect(await local(third, 'artifacts/report.md')).toBe('report v2, regenerated');
  });

  it("a pod whose state-sync starts only after another pod took the session over learns it before changing anything", async () => {
    const session = uniqueSession();
    const writer = await pod(session);
    expect((await runCli(['hydrate'], writer.env)).code).toBe(0);
    await put(writer, 'artifacts/report.md', 'report v1');
    await put(writer, 'artifacts/notes.md', 'notes v1');
    expect((await runCli(['sync', '--once'], writer.env)).code).toBe(0);

    const old = await pod(session, { TERMINATION_GRACE_SECONDS: '1' });
    expect((await runCli(['hydrate'], old.env)).code).toBe(0);
    const next = await pod(session);
    const hydrated = await runCli(['hydrate'], next.env, 60_000);
    expect(hydrated.stdout).toMatch(/still holds the session after 1s \(its grace period\): taking it over/);

    // Only now does the old pod's state-sync start, from the lease as its hydrate wrote it.
    await rm(path.join(old.workspace, 'artifacts/notes.md'));
    await put(old, 'artifacts/report.md', 'report by the old pod');
    const oldRun = await runCli(['sync', '--once'], old.env);
    expect(oldRun.code).toBe(0);
    expect(oldRun.stdout + oldRun.stderr).toMatch(/has taken this session over: this pod no longer deletes objects or writes metadata\.json/);
    expect(await object(session, 'artifacts/notes.md')).toBe('notes v1');
    expect(await object(session, 'artifacts/report.md')).toBe('report v1');
    expect(await object(session, `.session-storage/superseded/${old.env.POD_UID}/artifacts/report.md`)).toBe('report by the old pod');
    const manifest = (await getMetadata(rootClient(minio), bucket, `project-a/${session}/`)).manifest ?? {};
    expect(Object.keys(manifest).sort()).toEqual(['artifacts/notes.md', 'artifacts/report.md']);
    expect(JSON.parse(await object(session, LEASE_KEY))).toMatchObject({ owner: next.env.POD_UID, state: 'active' });
  });

  it('a pod whose owner released the session hydrates without waiting', async () => {
    const session = uniqueSession();
    const old = await pod(session, { TERMINATION_GRACE_SECONDS: '60' });
    expect((await runCli(['hydrate'], old.env)).code).toBe(0);
    await put(old, 'artifacts/a.txt', 'a');
    const oldSync = sidecar(old);
    await oldSync.waitFor(/Sync complete/);
    oldSync.child.kill('SIGTERM');
    expect((await oldSync.exited).code).toBe(0);

    const next = await pod(session);
    const hydrated = await runCli(['hydrate'], next.env);
    expect(hydrated.code).toBe(0);
    expect(hydrated.stdout).not.toContain('Waiting for');
    expect(hydrated.ms).toBeLessThan(30_000);
    expect(await local(next, 'artifacts/a.txt')).toBe('a');
  });

  it('a crashed owner is taken over once its lease has been silent for its TTL', async () => {
    const session = uniqueSession();
    const old = await pod(session, { TERMINATION_GRACE_SECONDS: '120', LEASE_TTL_SECONDS: '3' });
    expect((await runCli(['hydrate'], old.env)).code).toBe(0);
    await put(old, 'artifacts/a.txt', 'synced before the crash');
    const oldSync = sidecar(old);
    await oldSync.waitFor(/Sync complete/);
    oldSync.child.kill('SIGKILL');
    await oldSync.exited;

    const next = await pod(session);
    const hydrated = await runCli(['hydrate'], next.env, 60_000);
    expect(hydrated.code, hydrated.stdout + hydrated.stderr).toBe(0);
    expect(hydrated.stdout).toMatch(/went silent for 3s \(crashed or lost\): taking it over/);
    expect(await local(next, 'artifacts/a.txt')).toBe('synced before the crash');
    const lease = JSON.parse(await object(session, LEASE_KEY)) as { owner: string; state: string };
    expect(lease).toMatchObject({ owner: next.env.POD_UID, state: 'active' });
  });

  it('init-hydrate run again in the same pod restores nothing over the live workspace and brings back nothing the runner deleted', async () => {
    const session = uniqueSession();
    const first = await pod(session);
    await put(first, 'artifacts/edited.txt', 'v1');
    await put(first, 'artifacts/deleted.txt', 'to be deleted');
    expect((await runCli(['hydrate'], first.env)).code).toBe(0);
    expect((await runCli(['sync', '--once'], first.env)).code).toBe(0);

    // The sandbox is recreated: the runner had edited one file, deleted one and added one.
    await put(first, 'artifacts/edited.txt', 'v2, not synced yet');
    await rm(path.join(first.workspace, 'artifacts/deleted.txt'));
    await put(first, 'artifacts/new.txt', 'new');
    const rerun = await runCli(['hydrate'], first.env);
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    expect(rerun.stdout).toContain('init-hydrate already completed in this pod');
    expect(await local(first, 'artifacts/edited.txt')).toBe('v2, not synced yet');
    await expect(local(first, 'artifacts/deleted.txt')).rejects.toThrow(/ENOENT/);
    expect(await local(first, 'artifacts/new.txt')).toBe('new');

    // Sync then sends the edit and the deletion, as owner.
    expect((await runCli(['sync', '--once'], first.env)).code).toBe(0);
    expect(await object(session, 'artifacts/edited.txt')).toBe('v2, not synced yet');
    const keys = await listKeys(rootClient(minio), bucket, `project-a/${session}/`);
    expect(keys.filter((key) => key.startsWith('artifacts/'))).toEqual(['artifacts/edited.txt', 'artifacts/new.txt']);
  });

  it('a restore bundle from before an upload whose metadata.json never went up is not used: the next pod gets the uploaded bytes', async () => {
    const session = uniqueSession();
    const first = await pod(session);
    expect(await first.hydrate()).toBe(true);
    await put(first, 'artifacts/state.json', '{"v":1}');
    expect(await first.sync({ final: true })).toMatchObject({ ok: true });

    const second = await pod(session);
    expect(await second.hydrate()).toBe(true);
    await put(second, 'artifacts/state.json', '{"v":2}');
    // The data goes up, then metadata.json's PUT fails (a 503, or the node dies there).
    second.faults.inject((command, key) => {
      if (command === 'PutObject' && key.endsWith('/metadata.json')) {
        throw new StoreError('other', { kind: 'server error', detail: 'injected 503 on metadata.json' });
      }
    });
    expect(await second.sync()).toMatchObject({ ok: false });
    expect(await object(session, 'artifacts/state.json')).toBe('{"v":2}');

    // The pod dies without a final sync; the next one waits out its grace period (1 s).
    const third = await pod(session);
    expect(await third.hydrate()).toBe(true);
    expect(third.log.text()).toContain("metadata.json is older than the session's last changes");
    expect(await local(third, 'artifacts/state.json')).toBe('{"v":2}');
    expect(await third.sync()).toMatchObject({ ok: true });
    expect(await object(session, 'artifacts/state.json')).toBe('{"v":2}');
  });
});

describe('a pod whose init-hydrate gave up', () => {
  let bucket: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'gaveup');
  });
  afterAll(async () => {
    for (const created of pods) await created.dispose();
  });

  // Its runner never started, so it has nothing to save: the Job's next pod must not wait
  // out its grace period (DESIGN rule 8 bounds the wait; this pod need not use it).
  it('releases the session it took, so the next pod starts at once', async () => {
    const credentials = await addUser(minio, perProjectPolicy(bucket));
    const session = uniqueSession();
    const pod = async (n: number) => {
      const created = await newPod(
        agentEnv(minio, bucket, session, {
          AWS_ACCESS_KEY_ID: credentials.accessKey,
          AWS_SECRET_ACCESS_KEY: credentials.secretKey,
          POD_UID: `uid-${n}-${session}`,
          TERMINATION_GRACE_SECONDS: '120',
          HYDRATE_TIMEOUT_SECONDS: '20',
        }),
      );
      pods.push(created);
      return created;
    };
    const key = `project-a/${session}/metadata.json`;
    // Without s3:ListBucket an unreadable metadata.json leaves the state unknowable: hydrate gives up.
    await rootClient(minio).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'not json' }));
    const failed = await runCli(['hydrate'], (await pod(1)).env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('hydrate failed: state cannot be enumerated');
    expect(JSON.parse(await getText(rootClient(minio), bucket, `project-a/${session}/${LEASE_KEY}`))).toMatchObject({ owner: `uid-1-${session}`, state: 'released' });

    await rootClient(minio).send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    const next = await runCli(['hydrate'], (await pod(2)).env);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(next.stdout).not.toContain('Waiting for');
  });
});
