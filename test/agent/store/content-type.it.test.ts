import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, newPod, recordRequests, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');
// 0.00002 days = 1.728 s, as in refresh.it.test.ts.
const AGE_MS = 0.00002 * 86_400_000;

const FILES: Record<string, { body: Buffer; type: string }> = {
  'artifacts/report.md': { body: Buffer.from('# report\n'), type: 'text/markdown; charset=utf-8' },
  'artifacts/data.json': { body: Buffer.from('{"a":1}'), type: 'application/json' },
  'artifacts/shot.png': { body: Buffer.from([0x89, 0x50, 0x4e, 0x47]), type: 'image/png' },
  'artifacts/notes': { body: Buffer.from('no extension'), type: 'application/octet-stream' },
  // Past SMALL_FILE: streamed from disk rather than read whole.
  'artifacts/table.csv': { body: Buffer.alloc(2 * 2 ** 20, 'a,b\n'), type: 'text/csv; charset=utf-8' },
};

describe('objects S3 browsers can preview', () => {
  let bucket: string;
  let root: S3Client;
  let pod: Pod;

  beforeAll(async () => {
    bucket = await createBucket(minio, 'content-type');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    await pod?.dispose();
  });

  it('uploads carry a Content-Type from the file name, and the refresh copy keeps it', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    pod = await newPod(agentEnv(minio, bucket, session, { REFRESH_AFTER_DAYS: '0.00002' }));
    expect(await pod.hydrate()).toBe(true);
    for (const [rel, file] of Object.entries(FILES)) {
      await mkdir(path.dirname(path.join(pod.workspace, rel)), { recursive: true });
      await writeFile(path.join(pod.workspace, rel), file.body);
    }
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: Object.keys(FILES).length });
    const typeOf = async (key: string) => (await root.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix + key }))).ContentType;
    for (const [rel, file] of Object.entries(FILES)) expect(await typeOf(rel), rel).toBe(file.type);
    expect(await typeOf('metadata.json')).toBe('application/json');

    await new Promise((resolve) => setTimeout(resolve, AGE_MS + 500));
    const requests = recordRequests(pod);
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(requests.filter((request) => request.command === 'CopyObject').map((request) => request.key).sort()).toEqual(Object.keys(FILES).sort());
    for (const [rel, file] of Object.entries(FILES)) expect(await typeOf(rel), rel).toBe(file.type);
  });
});
