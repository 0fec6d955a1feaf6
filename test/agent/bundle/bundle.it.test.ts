import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY } from '../../../src/agent/bundle/bundle-format.js';
import { addUser, createBucket, rootClient } from '../../support/minio.js';
import { perProjectPolicy, seedIamPolicy } from '../../support/policies.js';
import { agentEnv, listKeys, newPod, recordRequests, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

// The restore bundle against a real server: the final sync writes it, the next pod's
// hydrate reads it in one GET, and it is never mistaken for a session file.

const FILES: Record<string, Buffer> = {
  '.claude/history.jsonl': Buffer.from('{"turn":1}\n'),
  '.claude/projects/p/session.json': Buffer.from('{"id":"p"}'),
  [`artifacts/${'x'.repeat(251)}.txt`]: Buffer.from('a 255-byte name'),
  'artifacts/empty': Buffer.alloc(0),
  'artifacts/large.bin': Buffer.alloc(BUNDLE_FILE_LIMIT + 1, 3),
};
const SMALL_KEYS = Object.keys(FILES).filter((key) => FILES[key]!.length <= BUNDLE_FILE_LIMIT);

describe.each([
  ['with s3:ListBucket (the seed IAM policy)', seedIamPolicy],
  ['without s3:ListBucket (the per-project policy)', perProjectPolicy],
])('the restore bundle %s', (_name, policyFor) => {
  let bucket: string;
  let credentials: { accessKey: string; secretKey: string };
  const pods: Pod[] = [];
  const pod = async (session: string) => {
    const created = await newPod(
      agentEnv(minio, bucket, session, { AWS_ACCESS_KEY_ID: credentials.accessKey, AWS_SECRET_ACCESS_KEY: credentials.secretKey }),
    );
    pods.push(created);
    return created;
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'bundle');
    credentials = await addUser(minio, policyFor(bucket));
  });
  afterAll(async () => {
    for (const created of pods) await created.dispose();
  });

  it('is written by the final sync, read by the next hydrate in one GET, and never synced or restored as a file', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const first = await pod(session);
    expect(await first.hydrate()).toBe(true);
    for (const [rel, body] of Object.entries(FILES)) {
      await mkdir(path.dirname(path.join(first.workspace, rel)), { recursive: true });
      await writeFile(path.join(first.workspace, rel), body);
    }
    await chmod(path.join(first.workspace, '.claude/history.jsonl'), 0o600);
    expect(await first.sync()).toMatchObject({ ok: true });
    const root = rootClient(minio);
    expect(await listKeys(root, bucket, prefix)).not.toContain(BUNDLE_KEY);
    expect(await first.sync({ final: true })).toMatchObject({ ok: true });
    expect(await listKeys(root, bucket, prefix)).toContain(BUNDLE_KEY);

    // Any tar reads it: the entries are the object keys.
    const object = await root.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + BUNDLE_KEY }));
    const bundle = Buffer.from(await object.Body!.transformToByteArray());
    // (GNU tar names the agent's own pax records on stderr as unknown keywords.)
    const listed = execFileSync('tar', ['-tf', '-'], { input: bundle, stdio: ['pipe', 'pipe', 'ignore'] }).toString();
    expect(listed.trim().split('\n').sort()).toEqual([...SMALL_KEYS].sort());

    const second = await pod(session);
    const requests = recordRequests(second);
    expect(await second.hydrate()).toBe(true);
    const gets = requests.filter((request) => request.command === 'GetObject').map((request) => request.key);
    expect(gets.sort()).toEqual([BUNDLE_KEY, 'artifacts/large.bin', 'metadata.json'].sort());
    for (const [rel, body] of Object.entries(FILES)) expect((await readFile(path.join(second.workspace, rel))).equals(body), rel).toBe(true);
    expect((await stat(path.join(second.workspace, '.claude/history.jsonl'))).mode & 0o777).toBe(0o600);
    expect(await readdir(second.workspace)).not.toContain('.session-storage');

    // Later cycles of the next pod neither upload nor delete it.
    const before = requests.length;
    for (let cycle = 0; cycle < 3; cycle += 1) expect(await second.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
    expect(await second.sync({ final: true })).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
    // The final sync rewrites it, in one PutObject of the length announced up front; nothing else touches it.
    const touched = requests.slice(before).filter((request) => request.key === BUNDLE_KEY);
    expect(touched.map((request) => request.command)).toEqual(['PutObject']);
    expect(await listKeys(root, bucket, prefix)).toContain(BUNDLE_KEY);
  });

  it('restores per object what changed since the bundle', async () => {
    const session = uniqueSession();
    const first = await pod(session);
    expect(await first.hydrate()).toBe(true);
    await mkdir(path.join(first.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(first.workspace, 'artifacts/a.txt'), 'before');
    await writeFile(path.join(first.workspace, 'artifacts/b.txt'), 'unchanged');
    expect(await first.sync({ final: true })).toMatchObject({ ok: true });

    // A later pod that crashed: it synced a change but wrote no new bundle.
    const second = await pod(session);
    expect(await second.hydrate()).toBe(true);
    await writeFile(path.join(second.workspace, 'artifacts/a.txt'), 'after, longer');
    expect(await second.sync()).toMatchObject({ ok: true, uploaded: 1 });

    const third = await pod(session);
    const requests = recordRequests(third);
    expect(await third.hydrate()).toBe(true);
    expect(await readFile(path.join(third.workspace, 'artifacts/a.txt'), 'utf8')).toBe('after, longer');
    expect(await readFile(path.join(third.workspace, 'artifacts/b.txt'), 'utf8')).toBe('unchanged');
    const gets = requests.filter((request) => request.command === 'GetObject').map((request) => request.key);
    expect(gets.sort()).toEqual([BUNDLE_KEY, 'artifacts/a.txt', 'metadata.json'].sort());
  });
});

describe('the restore bundle with s3:ListBucket', () => {
  // Rule 9: the other tool's bytes are not the content the manifest names either, so they
  // are not restored (before, they were, and became the manifest's truth): the key is
  // named and left in S3.
  it('is not used for an object another tool overwrote since (its ETag differs), nor are the bytes the manifest does not name', async () => {
    const bucket = await createBucket(minio, 'bundle-etag');
    const session = uniqueSession();
    const first = await newPod(agentEnv(minio, bucket, session));
    const second = await newPod(agentEnv(minio, bucket, session));
    try {
      expect(await first.hydrate()).toBe(true);
      await mkdir(path.join(first.workspace, 'artifacts'), { recursive: true });
      await writeFile(path.join(first.workspace, 'artifacts/a.txt'), 'from the pod');
      expect(await first.sync({ final: true })).toMatchObject({ ok: true });
      await rootClient(minio).send(
        new PutObjectCommand({ Bucket: bucket, Key: `project-a/${session}/artifacts/a.txt`, Body: 'from another tool' }),
      );
      expect(await second.hydrate()).toBe(true);
      await expect(readFile(path.join(second.workspace, 'artifacts/a.txt'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(second.log.text()).toMatch(/cannot restore artifacts\/a\.txt: content does not match the manifest: sha256 \w+ \(17 bytes\), expected \w+, fetched twice/);
    } finally {
      await first.dispose();
      await second.dispose();
    }
  });
});
