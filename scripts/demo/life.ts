import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { MINIO_BIN, ROOT, rootClient, startMinio, type MinioServer } from '../lib/minio.js';
import { podVolumes, runContainer, type ContainerProcess, type PodVolumes, type SecretValue } from '../lib/pod-process.js';
import { decodePatch, readReview, startDemoWebhook, type DemoWebhook, type Say } from './webhook.js';

// `npm run demo`: a session's whole life on one machine. The real webhook admits the
// platform's runner pod; the injected containers of the mutated pod run as processes with
// the env the kubelet would give them; a second pod of the same session restores the
// bytes the first one wrote.

const NAMESPACE = 'project-a';
const SESSION = 'sess-7f3a';
const BUCKET = 'ambient-sessions';
const SECRET_NAME = 'ambient-non-vertex-integrations';
// Short, so the demo shows a periodic cycle before the pod is deleted.
const SYNC_INTERVAL = '2';

// Where the runner writes, as the runner sees it and relative to the workspace volume
// (`.claude` is mounted from a subPath of it in the platform's pod).
const RUNNER_FILES: Array<{ seen: string; inVolume: string; content: () => Buffer }> = [
  {
    seen: '/app/.claude/projects/-workspace/history.jsonl',
    inVolume: `sessions/${SESSION}/.claude/projects/-workspace/history.jsonl`,
    content: () => Buffer.from('{"role":"user","content":"summarize the logs"}\n{"role":"assistant","content":"done"}\n'),
  },
  { seen: '/workspace/artifacts/report.md', inVolume: 'artifacts/report.md', content: () => Buffer.from('# Findings\n\nNo errors.\n') },
  { seen: '/workspace/uploads/data.bin', inVolume: 'uploads/data.bin', content: () => randomBytes(3 * 2 ** 20 + 17) },
];
// Written after the periodic sync, right before the pod is deleted: only the final sync
// on SIGTERM carries it.
const LATE_FILE = { seen: '/workspace/artifacts/late.txt', inVolume: 'artifacts/late.txt', content: () => Buffer.from('written just before SIGTERM\n') };

// The images run Node 24; on an older machine node the AWS SDK's notice about Node < 22
// would interleave with every agent line the demo is about. The SDK's own switch.
const QUIET_SDK = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

export async function wholeLife(say: Say): Promise<void> {
  Object.assign(process.env, QUIET_SDK);
  const started = Date.now();
  let n = 0;
  const step = (text: string) => say(`${++n}. ${text}`);
  const cleanups: Array<() => Promise<unknown>> = [];
  const processes: ContainerProcess[] = [];
  try {
    step('MinIO from its Go module: bash scripts/build-minio.sh');
    if (!existsSync(MINIO_BIN)) {
      say('   first run: building MinIO into .cache/bin (usually 5-8 min on 2 cores with a cold Go cache; reused afterwards)');
    }
    let since = Date.now();
    await buildMinio(say);
    const minio = await startMinio();
    cleanups.push(() => minio.destroy());
    await createDemoBucket(minio);
    say(`   minio ${minio.endpoint} ready, bucket ${BUCKET} created (${seconds(since)})`);

    const secretDir = await mkdtemp(join(tmpdir(), 'session-storage-demo-secret-'));
    cleanups.push(() => rm(secretDir, { recursive: true, force: true }));
    const secretFile = join(secretDir, 'secret.yaml');
    const secret: Record<string, string> = {
      S3_ENABLED: 'true',
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: BUCKET,
      S3_REGION: minio.region,
      S3_ACCESS_KEY: minio.accessKey,
      S3_SECRET_KEY: minio.secretKey,
    };
    await writeFile(
      secretFile,
      stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET_NAME, namespace: NAMESPACE }, stringData: secret }),
      { mode: 0o600 },
    );
    say(`   secret ${NAMESPACE}/${SECRET_NAME}: S3_ENDPOINT=${minio.endpoint} S3_BUCKET=${BUCKET} S3_ACCESS_KEY, S3_SECRET_KEY set`);
    // What the kubelet does for secretKeyRef: the pod only sees its own namespace's secret.
    const secretValue: SecretValue = async (name, key) => (name === SECRET_NAME ? secret[key] : undefined);

    const webhook = await startDemoWebhook(secretFile, { SYNC_INTERVAL }, say, step);
    cleanups.push(() => webhook.cleanup());

    step(`POST /mutate: the platform creates runner pod ${SESSION}-runner (PVC workspace)`);
    const first = await admit(webhook, `${SESSION}-runner`, 'c0ffee00-0000-4000-8000-00000000a001', say);
    const firstVolumes = await podVolumes(first);
    cleanups.push(() => removeVolumes(firstVolumes));
    const workspace = firstVolumes.get('workspace')!;

    step('init-hydrate of the first pod (new session: nothing in S3)');
    since = Date.now();
    await runToEnd(first, 'init-hydrate', firstVolumes, secretValue, say, processes);
    say(`   exit 0 (${seconds(since)})`);

    step('the runner writes its files into the workspace');
    const written = new Map<string, string>();
    for (const file of RUNNER_FILES) {
      const bytes = file.content();
      await writeInVolume(workspace, file.inVolume, bytes);
      written.set(file.seen, sha256(bytes));
      say(`   ${file.seen.padEnd(48)} ${String(bytes.length).padStart(8)} B  sha256 ${sha256(bytes).slice(0, 16)}`);
    }

    step(`state-sync starts as a native sidecar (SYNC_INTERVAL=${SYNC_INTERVAL}s)`);
    since = Date.now();
    const sync = await runContainer(first, container(first, 'state-sync'), firstVolumes, secretValue, {
      onOutput: prefixed('state-sync', say),
      runtimeEnv: QUIET_SDK,
    });
    processes.push(sync);
    await waitFor('the first periodic sync', () => /Sync complete/.test(sync.output()), 30_000);
    say(`   first periodic sync done (${seconds(since)})`);

    const lateBytes = LATE_FILE.content();
    await writeInVolume(workspace, LATE_FILE.inVolume, lateBytes);
    written.set(LATE_FILE.seen, sha256(lateBytes));
    say(`   the runner writes ${LATE_FILE.seen} (sha256 ${sha256(lateBytes).slice(0, 16)}) just before the pod goes`);

    step('the pod is deleted: SIGTERM to state-sync, final sync');
    since = Date.now();
    sync.child.kill('SIGTERM');
    const syncStatus = await sync.exited;
    if (syncStatus !== 0) throw new Error(`state-sync exited with ${syncStatus}`);
    say(`   state-sync exited 0 after its final sync (${seconds(since)})`);

    step(`what S3 holds: s3://${BUCKET}/${NAMESPACE}/${SESSION}/`);
    await showLayout(minio, say);

    step(`POST /mutate: a new runner pod ${SESSION}-runner-2 for the same session`);
    const second = await admit(webhook, `${SESSION}-runner-2`, 'c0ffee00-0000-4000-8000-00000000a002', say);
    const secondVolumes = await podVolumes(second);
    cleanups.push(() => removeVolumes(secondVolumes));

    step('init-hydrate of the second pod restores the session into its empty workspace');
    since = Date.now();
    await runToEnd(second, 'init-hydrate', secondVolumes, secretValue, say, processes);
    say(`   exit 0 (${seconds(since)})`);

    step('the second pod sees the same bytes');
    const restoredWorkspace = secondVolumes.get('workspace')!;
    let different = 0;
    for (const file of [...RUNNER_FILES, LATE_FILE]) {
      const restored = await readFile(join(restoredWorkspace, file.inVolume)).catch(() => undefined);
      const sum = restored === undefined ? 'missing' : sha256(restored);
      const same = sum === written.get(file.seen);
      if (!same) different += 1;
      say(`   ${file.seen.padEnd(48)} sha256 ${sum.slice(0, 16)}  ${same ? 'same' : 'DIFFERENT'}`);
    }
    if (different > 0) throw new Error(`${different} files came back different`);

    step(`SIGTERM to the webhook: drained and exited with status ${await webhook.stop()}`);
    say(`the whole life took ${seconds(started)}`);
  } finally {
    for (const process of processes) process.child.kill('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

// The script prints "reusing" when the pinned build is there and builds it otherwise; its
// lines are shown as they come so a first run does not look hung.
async function buildMinio(say: Say): Promise<void> {
  const child = spawn('bash', [join(ROOT, 'scripts/build-minio.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const forward = prefixed('', say);
  child.stdout.on('data', (chunk: Buffer) => forward(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => forward(chunk.toString()));
  const status = await new Promise<number | null>((done) => child.on('close', done));
  if (status !== 0) {
    throw new Error(
      `scripts/build-minio.sh failed (exit ${status}); it needs Go on PATH. The webhook alone needs no MinIO: npm run demo -- --webhook-only`,
    );
  }
}

async function createDemoBucket(minio: MinioServer): Promise<void> {
  const client = rootClient(minio);
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } finally {
    client.destroy();
  }
}

/** The pod the API server would store: the review's pod under `name` with the patch applied. */
async function admit(webhook: DemoWebhook, name: string, uid: string, say: Say): Promise<V1Pod> {
  const review = await readReview();
  const pod = review.request.object as V1Pod;
  pod.metadata = { ...pod.metadata, name };
  review.request.uid = uid;
  review.request.name = name;
  const reply = await webhook.post(review);
  if (!reply.response.allowed) throw new Error(`the webhook denied ${name}: ${reply.response.status?.message ?? ''}`);
  for (const warning of reply.response.warnings ?? []) say(`   warning: ${warning}`);
  const operations = decodePatch(reply);
  const mutated = jsonPatch.applyPatch(structuredClone(pod), operations as jsonPatch.Operation[], false, false).newDocument;
  const volumes = (mutated.spec?.volumes ?? []).map((v) => `${v.name} (${v.emptyDir ? 'emptyDir' : 'other'})`);
  const init = (mutated.spec?.initContainers ?? []).map((c) => (c.restartPolicy === 'Always' ? `${c.name} (sidecar)` : c.name));
  say(`   allowed, ${operations.length} patch operations: volumes ${volumes.join(', ')}; initContainers ${init.join(', ')}`);
  return mutated;
}

function container(pod: V1Pod, name: string): V1Container {
  const found = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name);
  if (!found) throw new Error(`the mutated pod has no ${name} container`);
  return found;
}

async function runToEnd(
  pod: V1Pod,
  name: string,
  volumes: PodVolumes,
  secretValue: SecretValue,
  say: Say,
  processes: ContainerProcess[],
): Promise<void> {
  const run = await runContainer(pod, container(pod, name), volumes, secretValue, { onOutput: prefixed(name, say), runtimeEnv: QUIET_SDK });
  processes.push(run);
  const status = await run.exited;
  if (status !== 0) throw new Error(`${name} exited with ${status}`);
}

/** Forwards a process's output line by line, indented under the step and tagged. */
function prefixed(tag: string, say: Say): (text: string) => void {
  let pending = '';
  const label = tag === '' ? '   ' : `   ${tag} | `;
  return (text) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) say(`${label}${line}`);
  };
}

async function writeInVolume(volume: string, path: string, bytes: Buffer): Promise<void> {
  await mkdir(dirname(join(volume, path)), { recursive: true });
  await writeFile(join(volume, path), bytes);
}

async function showLayout(minio: MinioServer, say: Say): Promise<void> {
  const client = rootClient(minio);
  const prefix = `${NAMESPACE}/${SESSION}/`;
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    for (const object of listed.Contents ?? []) {
      say(`   ${String(object.Size ?? 0).padStart(8)} B  ${object.Key ?? ''}`);
    }
    const metadata = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}metadata.json` }));
    const parsed = JSON.parse((await metadata.Body?.transformToString()) ?? '{}') as Record<string, unknown>;
    say(`   metadata.json: lastSync ${String(parsed.lastSync)}, pathsSynced ${String(parsed.pathsSynced)}, files ${String(parsed.files)}, bytes ${String(parsed.bytes)}, manifest of ${Object.keys((parsed.manifest as object | undefined) ?? {}).length} files`);
  } finally {
    client.destroy();
  }
}

async function waitFor(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function removeVolumes(volumes: PodVolumes): Promise<void> {
  for (const dir of volumes.values()) await rm(dir, { recursive: true, force: true });
}
