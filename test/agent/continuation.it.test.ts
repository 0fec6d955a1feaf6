import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LEASE_KEY } from '../../src/agent/state/lease.js';
import { addUser, createBucket } from '../support/minio.js';
import { perProjectPolicy } from '../support/policies.js';
import { agentEnv, ensureBuilt, getMetadata, getText, listKeys, newPod, runCli, uniqueSession, type Pod } from './support/helpers.js';

// A continuation's first pod starts from its parent's saved state (DESIGN rule 13): the
// built CLI's hydrate, as init-hydrate runs it with PARENT_SESSION_NAME, against MinIO.

const minio = inject('minio');

const PARENT_FILES: Record<string, string> = {
  '.claude/projects/-workspace/history.jsonl': '{"role":"user","content":"start"}\n',
  'artifacts/report.md': '# Report v1\n',
  'artifacts/charts/plot.svg': '<svg/>\n',
};
const REPORT_MTIME = new Date('2026-02-03T04:05:06Z');

describe('a continuation starts from its parent', () => {
  let bucket: string;
  const pods: Pod[] = [];

  async function pod(session: string, overrides: Record<string, string> = {}): Promise<Pod> {
    const created = await newPod(agentEnv(minio, bucket, session, { HYDRATE_TIMEOUT_SECONDS: '20', ...overrides }));
    pods.push(created);
    return created;
  }

  async function write(target: Pod, files: Record<string, string>): Promise<void> {
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(target.workspace, file)), { recursive: true });
      await writeFile(path.join(target.workspace, file), content);
    }
  }

  // A parent that ran, wrote its files and stopped (its final sync released the session).
  async function stoppedParent(overrides: Record<string, string> = {}): Promise<{ session: string; pod: Pod }> {
    const session = uniqueSession();
    const parent = await pod(session, overrides);
    expect(await parent.hydrate()).toBe(true);
    await write(parent, PARENT_FILES);
    await utimes(path.join(parent.workspace, 'artifacts/report.md'), REPORT_MTIME, REPORT_MTIME);
    expect((await parent.sync({ final: true })).ok, parent.log.text()).toBe(true);
    return { session, pod: parent };
  }

  const hydrateCli = (target: Pod) => runCli(['hydrate'], target.env, 60_000);

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'continuation');
  });
  afterAll(async () => {
    for (const created of pods) await created.dispose();
  });

  it("restores the parent's files byte for byte with their mtimes, in the child's own prefix, and leaves the parent as it was", async () => {
    const parent = await stoppedParent();
    const parentPrefix = `project-a/${parent.session}/`;
    const before = await listKeys(parent.pod.client, bucket, parentPrefix);
    const parentMetadata = await getText(parent.pod.client, bucket, `${parentPrefix}metadata.json`);
    const parentLease = await getText(parent.pod.client, bucket, `${parentPrefix}${LEASE_KEY}`);

    const childSession = uniqueSession();
    const child = await pod(childSession, { PARENT_SESSION_NAME: parent.session });
    const run = await hydrateCli(child);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`Continuation of session ${parent.session}: copied 3 files`);
    for (const [file, content] of Object.entries(PARENT_FILES)) expect(await readFile(path.join(child.workspace, file), 'utf8')).toBe(content);
    expect(Math.floor((await stat(path.join(child.workspace, 'artifacts/report.md'))).mtimeMs / 1000)).toBe(REPORT_MTIME.getTime() / 1000);

    const childPrefix = `project-a/${childSession}/`;
    expect(await listKeys(child.client, bucket, childPrefix)).toEqual([...Object.keys(PARENT_FILES), 'metadata.json'].sort());
    expect((await getMetadata(child.client, bucket, childPrefix)).session).toBe(childSession);
    // The parent: same objects, same manifest, same lease.
    expect(await listKeys(parent.pod.client, bucket, parentPrefix)).toEqual(before);
    expect(await getText(parent.pod.client, bucket, `${parentPrefix}metadata.json`)).toBe(parentMetadata);
    expect(await getText(parent.pod.client, bucket, `${parentPrefix}${LEASE_KEY}`)).toBe(parentLease);

    // The child works and syncs: into its own prefix only.
    await write(child, { 'artifacts/report.md': '# Report v2 by the child\n' });
    expect((await child.sync({ final: true })).ok, child.log.text()).toBe(true);
    expect(await getText(child.client, bucket, `${childPrefix}artifacts/report.md`)).toBe('# Report v2 by the child\n');
    expect(await getText(parent.pod.client, bucket, `${parentPrefix}artifacts/report.md`)).toBe('# Report v1\n');

    // A grandchild starts from the child, which holds the parent's state and its own work.
    const grandchild = await pod(uniqueSession(), { PARENT_SESSION_NAME: childSession });
    expect((await hydrateCli(grandchild)).code).toBe(0);
    expect(await readFile(path.join(grandchild.workspace, 'artifacts/report.md'), 'utf8')).toBe('# Report v2 by the child\n');
    expect(await readFile(path.join(grandchild.workspace, '.claude/projects/-workspace/history.jsonl'), 'utf8')).toBe(PARENT_FILES['.claude/projects/-workspace/history.jsonl']);
  });

  it('copies once: a later pod of the child restores its own state, not the parent\'s newer one', async () => {
    const parent = await stoppedParent();
    const childSession = uniqueSession();
    const first = await pod(childSession, { PARENT_SESSION_NAME: parent.session });
    expect((await hydrateCli(first)).code).toBe(0);
    await write(first, { 'artifacts/child.md': 'the child\'s own' });
    expect((await first.sync({ final: true })).ok).toBe(true);

    // The parent moves on after the continuation started.
    await parent.pod.client.send(new PutObjectCommand({ Bucket: bucket, Key: `project-a/${parent.session}/artifacts/later.md`, Body: 'later' }));

    const second = await pod(childSession, { PARENT_SESSION_NAME: parent.session });
    const run = await hydrateCli(second);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('copied');
    expect(await readFile(path.join(second.workspace, 'artifacts/child.md'), 'utf8')).toBe('the child\'s own');
    await expect(stat(path.join(second.workspace, 'artifacts/later.md'))).rejects.toThrow();
  });

  it("keeps files the platform pre-uploaded for the child over the parent's of the same name", async () => {
    const parent = await stoppedParent();
    const childSession = uniqueSession();
    await parent.pod.client.send(new PutObjectCommand({ Bucket: bucket, Key: `project-a/${childSession}/artifacts/report.md`, Body: 'uploaded for the child' }));
    const child = await pod(childSession, { PARENT_SESSION_NAME: parent.session });
    expect((await hydrateCli(child)).code).toBe(0);
    expect(await readFile(path.join(child.workspace, 'artifacts/report.md'), 'utf8')).toBe('uploaded for the child');
    expect(await readFile(path.join(child.workspace, 'artifacts/charts/plot.svg'), 'utf8')).toBe('<svg/>\n');
  });

  it('does not wait for a parent that still runs, and restores what its objects hold now', async () => {
    const session = uniqueSession();
    const parent = await pod(session, { TERMINATION_GRACE_SECONDS: '600' });
    expect(await parent.hydrate()).toBe(true);
    await write(parent, PARENT_FILES);
    // A periodic cycle: the parent keeps its session (active lease).
    expect((await parent.sync()).ok).toBe(true);
    const lease = await getText(parent.client, bucket, `project-a/${session}/${LEASE_KEY}`);
    expect(JSON.parse(lease)).toMatchObject({ state: 'active' });
    // Written after the parent's last manifest: its hash there is older than the object.
    await parent.client.send(new PutObjectCommand({ Bucket: bucket, Key: `project-a/${session}/artifacts/report.md`, Body: '# Report, newer than the manifest\n' }));

    const child = await pod(uniqueSession(), { PARENT_SESSION_NAME: session });
    const run = await hydrateCli(child);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.ms).toBeLessThan(20_000);
    expect(await readFile(path.join(child.workspace, 'artifacts/report.md'), 'utf8')).toBe('# Report, newer than the manifest\n');
    expect(await getText(parent.client, bucket, `project-a/${session}/${LEASE_KEY}`)).toBe(lease);
  });

  it("works from the parent's manifest under the seed's per-project policy (no s3:ListBucket)", async () => {
    const user = await addUser(minio, perProjectPolicy(bucket));
    const keys = { AWS_ACCESS_KEY_ID: user.accessKey, AWS_SECRET_ACCESS_KEY: user.secretKey };
    const parent = await stoppedParent(keys);
    const child = await pod(uniqueSession(), { ...keys, PARENT_SESSION_NAME: parent.session });
    const run = await hydrateCli(child);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const [file, content] of Object.entries(PARENT_FILES)) expect(await readFile(path.join(child.workspace, file), 'utf8')).toBe(content);
  });

  it('starts fresh when the parent has no saved state', async () => {
    const child = await pod(uniqueSession(), { PARENT_SESSION_NAME: uniqueSession() });
    const run = await hydrateCli(child);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('which has no saved state: starting fresh');
    expect(run.stdout).toContain('No existing state found, starting fresh session');
  });

  it("copies inside the store: the child's objects keep their metadata (mtime) and content type", async () => {
    const parent = await stoppedParent();
    const child = await pod(uniqueSession(), { PARENT_SESSION_NAME: parent.session });
    expect((await hydrateCli(child)).code).toBe(0);
    const head = (session: string) =>
      parent.pod.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `project-a/${session}/artifacts/report.md` }));
    const [from, to] = [await head(parent.session), await head(child.settings.session)];
    expect(to.Metadata).toEqual(from.Metadata);
    expect(to.ContentType).toBe(from.ContentType);
  });
});
