import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket } from '../../support/minio.js';
import { agentEnv, ensureBuilt, newPod, runCli, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

// Loaded with --import: any load of the AWS SDK fails, so a command that needs it fails.
// The CLI is a bundle (scripts/build.mjs): the SDK is inside a chunk, which esbuild marks
// with the path of each module it holds, relative to the checkout ("// node_modules/..."),
// or through a link to another checkout's ("// ../main/node_modules/...").
const GUARD = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function load(url, context, next) {
  const loaded = await next(url, context);
  const source = String(loaded.source);
  if (/^\\\\/\\\\/ (\\\\S*\\\\/)?node_modules\\\\/@(aws-sdk|smithy)\\\\//m.test(source)) throw new Error('SDK imported: ' + url);
  return loaded;
}\`));
`;

// A restore sends only GET and list requests, which go without the SDK: a crashed pod's
// successor, and every empty session's first start, never pays for loading it. Nor does
// a final sync that uploads files under 64 MiB, deletes, and writes the restore bundle.
describe('hydrate and the final sync without the AWS SDK (built CLI)', () => {
  let bucket: string;
  let guardDir: string;
  let nodeOptions: string;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'nosdk');
    guardDir = await mkdtemp(path.join(tmpdir(), 'no-sdk-'));
    await writeFile(path.join(guardDir, 'guard.mjs'), GUARD);
    nodeOptions = `--import=${path.join(guardDir, 'guard.mjs')}`;
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    await rm(guardDir, { recursive: true, force: true });
  });

  const pod = async (session: string) => {
    const created = await newPod(agentEnv(minio, bucket, session, { HYDRATE_TIMEOUT_SECONDS: '30' }));
    pods.push(created);
    return created;
  };

  it('restores a crashed pod\'s session (no bundle) and starts an empty one', async () => {
    const session = uniqueSession();
    const first = await pod(session);
    await mkdir(path.join(first.workspace, '.claude', 'projects'), { recursive: true });
    await writeFile(path.join(first.workspace, '.claude', 'projects', 'a & <b> résumé.jsonl'), '{"x":1}\n');
    await mkdir(path.join(first.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(first.workspace, 'artifacts', 'report.md'), '# report\n');
    await writeFile(path.join(first.workspace, 'artifacts', 'data.bin'), Buffer.alloc(3 * 2 ** 20, 7));
    await first.sync();

    const next = await pod(session);
    const run = await runCli(['hydrate'], { ...next.env, NODE_OPTIONS: nodeOptions });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(await readFile(path.join(next.workspace, '.claude', 'projects', 'a & <b> résumé.jsonl'), 'utf8')).toBe('{"x":1}\n');
    expect((await readFile(path.join(next.workspace, 'artifacts', 'data.bin'))).equals(Buffer.alloc(3 * 2 ** 20, 7))).toBe(true);

    // The final sync uploads and writes the restore bundle through the lean client too.
    await writeFile(path.join(next.workspace, 'artifacts', 'later.md'), 'later\n');
    const final = await runCli(['sync', '--once'], { ...next.env, NODE_OPTIONS: nodeOptions });
    expect(final.code, final.stdout + final.stderr).toBe(0);
    expect(final.stdout, final.stdout + final.stderr).toMatch(/1 uploaded[\s\S]*Restore bundle written: 3 files/);

    const fresh = await pod(uniqueSession());
    const empty = await runCli(['hydrate'], { ...fresh.env, NODE_OPTIONS: nodeOptions });
    expect(empty.code, empty.stdout + empty.stderr).toBe(0);
  });

  it('propagates a deletion without the SDK too', async () => {
    const owner = await pod(uniqueSession());
    // A pod that hydrated may propagate deletions.
    expect(await owner.hydrate()).toBe(true);
    await mkdir(path.join(owner.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(owner.workspace, 'artifacts', 'gone.md'), 'x');
    await writeFile(path.join(owner.workspace, 'artifacts', 'kept.md'), 'y');
    await owner.sync();
    await unlink(path.join(owner.workspace, 'artifacts', 'gone.md'));
    const run = await runCli(['sync', '--once'], { ...owner.env, NODE_OPTIONS: nodeOptions });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('1 deleted');
  });

  it('the guard does stop a command that needs the SDK (a multipart upload)', async () => {
    const owner = await pod(uniqueSession());
    expect(await owner.hydrate()).toBe(true);
    await mkdir(path.join(owner.workspace, 'artifacts'), { recursive: true });
    // At the multipart threshold (transfer.ts), a file goes up in parts, through the SDK.
    await writeFile(path.join(owner.workspace, 'artifacts', 'large.bin'), Buffer.alloc(64 * 2 ** 20, 1));
    const run = await runCli(['sync', '--once'], { ...owner.env, NODE_OPTIONS: nodeOptions });
    expect(run.stdout + run.stderr).toContain('SDK imported');
  });
});
