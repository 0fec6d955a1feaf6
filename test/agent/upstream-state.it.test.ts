import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRESH_SESSION_MESSAGE } from '../../src/agent/hydrate/hydrate.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { platformSync } from '../support/rclone.js';
import { agentEnv, getText, listKeys, newPod, uniqueSession, type Pod } from './support/helpers.js';
import { perProjectPolicy } from '../support/policies.js';

const minio = inject('minio');
const SYNC_PATHS = '.claude,artifacts,uploads,file-uploads';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface PlatformFile {
  rel: string;
  body: Buffer;
  // Seconds with a fraction, the precision rclone keeps in x-amz-meta-mtime.
  mtime: number;
}

const platformFiles: PlatformFile[] = [
  { rel: '.claude/projects/-workspace/5f1c.jsonl', body: Buffer.from('{"type":"user"}\n'), mtime: 1717171717.123456 },
  { rel: '.claude/settings.json', body: Buffer.from('{}'), mtime: 1717000000.5 },
  { rel: 'artifacts/report ü 日本.md', body: Buffer.from('# report'), mtime: 1716000000.987654 },
  { rel: 'artifacts/empty.txt', body: Buffer.alloc(0), mtime: 1715000000 },
  { rel: 'artifacts/charts/figure.png', body: randomBytes(3 * 2 ** 20 + 1), mtime: 1714000000.000001 },
  { rel: 'file-uploads/spec.pdf', body: randomBytes(40_000), mtime: 1713000000.75 },
  { rel: 'file-uploads/nested/data.csv', body: Buffer.from('a,b\n1,2\n'), mtime: 1712000000.25 },
];

async function writePlatformTree(workspace: string): Promise<void> {
  for (const file of platformFiles) {
    const absolute = path.join(workspace, file.rel);
    await mkdir(path.dirname(absolute), { recursive: true });
    await writeFile(absolute, file.body);
    await utimes(absolute, file.mtime, file.mtime);
  }
  // Excluded by sync.sh: never uploaded.
  await mkdir(path.join(workspace, 'artifacts/node_modules/x'), { recursive: true });
  await writeFile(path.join(workspace, 'artifacts/node_modules/x/index.js'), 'excluded');
}

// Records every S3 command a pod's client sends.
function recordCommands(pod: Pod): string[] {
  const commands: string[] = [];
  pod.client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return commands;
}

describe('state the platform wrote (rclone sync.sh)', () => {
  let bucket: string;
  let root: S3Client;
  let perProject: { accessKey: string; secretKey: string };
  let platformSession: string;
  // The same platform state, never synced by us: the restore test's sync adopts the first
  // (writes our manifest), after which it no longer needs s3:ListBucket.
  let untouchedSession: string;
  let platformKeys: string[];
  const pods: Pod[] = [];
  const pod = async (session: string, overrides: Record<string, string> = {}) => {
    const created = await newPod(agentEnv(minio, bucket, session, { SYNC_PATHS, ...overrides }));
    pods.push(created);
    return created;
  };
  const asPerProject = () => ({ AWS_ACCESS_KEY_ID: perProject.accessKey, AWS_SECRET_ACCESS_KEY: perProject.secretKey });

  beforeAll(async () => {
    bucket = await createBucket(minio, 'upstream');
    root = rootClient(minio);
    perProject = await addUser(minio, perProjectPolicy(bucket));
    platformSession = uniqueSession();
    untouchedSession = uniqueSession();
    const tree = await mkdtemp(path.join(tmpdir(), 'platform-'));
    try {
      await writePlatformTree(tree);
      await platformSync(minio, bucket, 'project-a', platformSession, tree);
      await platformSync(minio, bucket, 'project-a', untouchedSession, tree);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
    // The platform's final sync also leaves git state beside the paths.
    await root.send(
      new PutObjectCommand({ Bucket: bucket, Key: `project-a/${platformSession}/repo-state/app/repo.bundle`, Body: 'bundle' }),
    );
    platformKeys = await listKeys(root, bucket, `project-a/${platformSession}/`);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  it('finds what rclone wrote: plain objects, fractional x-amz-meta-mtime, the upstream metadata.json', async () => {
    expect(platformKeys).toEqual(
      [...platformFiles.map((file) => file.rel), 'metadata.json', 'repo-state/app/repo.bundle'].sort(),
    );
    const head = await root.send(
      new HeadObjectCommand({ Bucket: bucket, Key: `project-a/${platformSession}/artifacts/report ü 日本.md` }),
    );
    expect(head.Metadata?.mtime).toMatch(/^1716000000\.98765/);
    const metadata = JSON.parse(await getText(root, bucket, `project-a/${platformSession}/metadata.json`)) as Record<string, unknown>;
    expect(Object.keys(metadata).sort()).toEqual(['lastSync', 'namespace', 'pathsSynced', 'session']);
    expect(metadata.pathsSynced).toBe(3);
  });

  it('restores it byte for byte with mtimes, file-uploads included, and the next sync changes nothing', async () => {
    const runner = await pod(platformSession);
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
    for (const file of platformFiles) {
      const absolute = path.join(runner.workspace, file.rel);
      expect(sha(await readFile(absolute)), file.rel).toBe(sha(file.body));
      expect(Math.abs((await stat(absolute)).mtimeMs - file.mtime * 1000), file.rel).toBeLessThan(1);
    }
    await expect(stat(path.join(runner.workspace, 'repo-state'))).rejects.toThrow();
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0, unchanged: platformFiles.length });
    expect(await listKeys(root, bucket, `project-a/${platformSession}/`)).toEqual(platformKeys);
  });

  it('fails without s3:ListBucket, naming the permission and the fix, and writes nothing to S3', async () => {
    const before = await listKeys(root, bucket, `project-a/${untouchedSession}/`);
    const runner = await pod(untouchedSession, asPerProject());
    const commands = recordCommands(runner);
    expect(await runner.hydrate()).toBe(false);
    const errors = runner.log.lines.filter((line) => line.startsWith('[error]'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('hydrate failed: state cannot be enumerated');
    expect(errors[0]).toContain('metadata.json has no manifest (written by the platform\'s sync.sh)');
    expect(errors[0]).toContain(`listing denied: grant s3:ListBucket on arn:aws:s3:::${bucket} with condition s3:prefix "project-a/*"`);
    expect(runner.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
    expect(commands.filter((name) => !['GetObjectCommand', 'ListObjectsV2Command'].includes(name))).toEqual([]);
    expect(await listKeys(root, bucket, `project-a/${untouchedSession}/`)).toEqual(before);
  });

  it('restores objects the platform backend pre-uploaded before any metadata.json exists', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}file-uploads/brief.docx`, Body: 'brief' }));
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
    expect(await readFile(path.join(runner.workspace, 'file-uploads/brief.docx'), 'utf8')).toBe('brief');
  });
  it('gives a pre-uploaded file its upload time (and does not upload it again) when an older pod that did not sync file-uploads wrote the manifest', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    // The backend's upload carries no x-amz-meta-mtime.
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}file-uploads/brief.docx`, Body: 'brief' }));
    const uploaded = Date.now();
    const older = await pod(session, { SYNC_PATHS: '.claude,artifacts,uploads' });
    expect(await older.hydrate()).toBe(true);
    expect((await older.sync({ final: true })).ok).toBe(true);
    const newer = await pod(session);
    expect(await newer.hydrate()).toBe(true);
    const restored = await stat(path.join(newer.workspace, 'file-uploads/brief.docx'));
    expect(Math.abs(restored.mtimeMs - uploaded)).toBeLessThan(10_000);
    // The time restored is the time recorded: the first sync has nothing to upload.
    expect(await newer.sync()).toMatchObject({ ok: true, uploaded: 0, unchanged: 1 });
  });
});

describe('a metadata.json that cannot be read', () => {
  let bucket: string;
  let root: S3Client;
  let perProject: { accessKey: string; secretKey: string };
  const pods: Pod[] = [];

  beforeAll(async () => {
    bucket = await createBucket(minio, 'corrupt');
    root = rootClient(minio);
    perProject = await addUser(minio, perProjectPolicy(bucket));
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  async function corruptSession(body: string): Promise<string> {
    const session = uniqueSession();
    const writer = await newPod(agentEnv(minio, bucket, session));
    pods.push(writer);
    expect(await writer.hydrate()).toBe(true);
    await mkdir(path.join(writer.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(writer.workspace, 'artifacts/work.txt'), 'work');
    expect((await writer.sync()).ok).toBe(true);
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `project-a/${session}/metadata.json`, Body: body }));
    return session;
  }

  it.each([
    ['not JSON', '{"lastSync": "2026-', 'not JSON'],
    ['JSON of another shape', '{"lastSync": 5}', 'metadata.json unreadable: '],
  ])('without s3:ListBucket (%s) fails, naming both causes in one line', async (_name, body, why) => {
    const session = await corruptSession(body);
    const runner = await newPod(
      agentEnv(minio, bucket, session, { AWS_ACCESS_KEY_ID: perProject.accessKey, AWS_SECRET_ACCESS_KEY: perProject.secretKey }),
    );
    pods.push(runner);
    expect(await runner.hydrate()).toBe(false);
    const errors = runner.log.lines.filter((line) => line.startsWith('[error]'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('hydrate failed: state cannot be enumerated: metadata.json unreadable: ');
    expect(errors[0]).toContain(why);
    expect(errors[0]).toContain('; listing denied: grant s3:ListBucket on');
    expect(runner.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
  });

  it('with s3:ListBucket restores from the listing, with a warning', async () => {
    const session = await corruptSession('garbage');
    const runner = await newPod(agentEnv(minio, bucket, session));
    pods.push(runner);
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain('metadata.json is unreadable (not JSON): restoring from the listing');
    expect(await readFile(path.join(runner.workspace, 'artifacts/work.txt'), 'utf8')).toBe('work');
  });
});

// AWS answers 403 AccessDenied, not 404, for a missing key when the caller may not list
// the bucket; MinIO answers 404. The proxy gives the per-project users AWS's answer.
describe('AWS semantics: a missing key looks denied without s3:ListBucket', () => {
  let bucket: string;
  let root: S3Client;
  let proxy: AwsSemanticsProxy;
  const pods: Pod[] = [];
  const user = async (actions?: string[]) => {
    const credentials = await addUser(minio, perProjectPolicy(bucket, actions));
    proxy.withoutList.add(credentials.accessKey);
    return { AWS_ACCESS_KEY_ID: credentials.accessKey, AWS_SECRET_ACCESS_KEY: credentials.secretKey };
  };
  const pod = async (session: string, overrides: Record<string, string>) => {
    const created = await newPod(agentEnv(minio, bucket, session, { S3_ENDPOINT: proxy.endpoint, ...overrides }));
    pods.push(created);
    return created;
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'aws');
    root = rootClient(minio);
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
    await proxy.close();
  });

  it('the proxy answers 403 where MinIO answers 404', async () => {
    const credentials = await user();
    const runner = await pod(uniqueSession(), credentials);
    await expect(runner.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'project-a/absent' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
  });

  it('starts a brand-new session under the per-project policy, leaving no probe behind', async () => {
    const session = uniqueSession();
    const runner = await pod(session, await user());
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain(FRESH_SESSION_MESSAGE);
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual([]);
    await mkdir(path.join(runner.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(runner.workspace, 'artifacts/first.txt'), 'first');
    expect((await runner.sync()).ok).toBe(true);

    const next = await pod(session, await user());
    expect(await next.hydrate()).toBe(true);
    expect(await readFile(path.join(next.workspace, 'artifacts/first.txt'), 'utf8')).toBe('first');
  });

  it.each([
    ['may write but not read', ['s3:PutObject', 's3:DeleteObject']],
    ['may read but not write', ['s3:GetObject']],
  ])('fails with "access denied" for credentials that %s, never starting fresh', async (_name, actions) => {
    const session = uniqueSession();
    const runner = await pod(session, await user(actions));
    expect(await runner.hydrate()).toBe(false);
    expect(runner.log.text()).toContain('hydrate failed: access denied');
    expect(runner.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual([]);
  });
});
