import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LEASE_KEY } from '../../src/agent/state/lease.js';
import { createNamespace, integrationSecret, kubectlOk, ROOT, serviceAccountKubeconfig, toYaml, waitUntil } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, WEBHOOK_NAMESPACE } from '../support/cluster-webhook.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { seedIamPolicy } from '../support/policies.js';

// rm and gc against the real API server (the platform's AgenticSession CRD, the
// manifests' CronJob ServiceAccount and its RBAC) and MinIO.

const cluster = inject('cluster');
const minio = inject('minio');
const CRD = 'test/fixtures/crds/agenticsessions-crd.yaml';
const OPTED_IN = 'e2e-retention';
const NOT_OPTED_IN = 'e2e-retention-off';
const DAY = 86_400_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], kubeconfig = cluster.kubeconfigPath): Promise<Run> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), KUBECONFIG: kubeconfig, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

let bucket: string;

async function put(key: string, body: string): Promise<void> {
  const s3 = rootClient(minio);
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  } finally {
    s3.destroy();
  }
}

async function keys(prefix: string): Promise<string[]> {
  const s3 = rootClient(minio);
  try {
    return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
  } finally {
    s3.destroy();
  }
}

// A stopped session's state as the platform's sync.sh leaves it: files and metadata.json.
async function saved(namespace: string, session: string, lastSync: Date): Promise<void> {
  await put(`${namespace}/${session}/artifacts/report.md`, `# ${session}\n`);
  await put(`${namespace}/${session}/.claude/history.jsonl`, '{"role":"user"}\n');
  await put(`${namespace}/${session}/metadata.json`, JSON.stringify({ lastSync: lastSync.toISOString().replace(/\.\d+Z$/, '+00:00'), session, namespace, pathsSynced: 3 }));
}

const agenticSession = (namespace: string, name: string, parent?: string) => ({
  apiVersion: 'vteam.ambient-code/v1alpha1',
  kind: 'AgenticSession',
  metadata: { name, namespace, ...(parent ? { annotations: { 'vteam.ambient-code/parent-session-id': parent } } : {}) },
  spec: { initialPrompt: 'hello' },
});

// Created before the namespace opts in, so no webhook is asked; it stays Pending (no kubelet).
const sessionPod = (namespace: string, session: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `${session}-runner`, namespace, labels: { 'agentic-session': session } },
  spec: { containers: [{ name: 'runner', image: 'registry.example.com/runner:1' }] },
});

const old = new Date(Date.now() - 40 * DAY);

describe('session-storage gc and rm', () => {
  let unlock: (() => Promise<void>) | undefined;
  let gcKubeconfig: string;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    gcKubeconfig = await serviceAccountKubeconfig(cluster, WEBHOOK_NAMESPACE, 'session-storage-gc');
    bucket = await createBucket(minio, 'e2e-retention');
    const user = await addUser(minio, seedIamPolicy(bucket));
    const secret = { S3_ENABLED: 'true', S3_ENDPOINT: minio.endpoint, S3_BUCKET: bucket, S3_REGION: minio.region, S3_ACCESS_KEY: user.accessKey, S3_SECRET_KEY: user.secretKey };
    for (const namespace of [OPTED_IN, NOT_OPTED_IN]) {
      await createNamespace(cluster, namespace);
      await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(namespace, secret)));
    }
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(sessionPod(OPTED_IN, 'gone-pod')));
    await kubectlOk(cluster, ['label', 'namespace', OPTED_IN, 'ambient-code.io/session-storage=enabled']);

    for (const session of ['kept-cr', 'gone-old', 'gone-pod', 'gone-owner', 'gone-parent']) await saved(OPTED_IN, session, old);
    await saved(OPTED_IN, 'gone-recent', new Date(Date.now() - DAY));
    await saved(NOT_OPTED_IN, 'gone-old', old);
    // A pod of gone-owner still owns its state (renewed just now).
    await put(
      `${OPTED_IN}/gone-owner/${LEASE_KEY}`,
      JSON.stringify({ version: 1, owner: 'uid-1', pod: 'gone-owner-runner', state: 'active', renewedAt: new Date().toISOString(), ttlSeconds: 300, graceSeconds: 90 }),
    );
  });

  afterAll(async () => {
    await kubectlOk(cluster, ['delete', '--ignore-not-found', '-f', CRD]).catch(() => undefined);
    await unlock?.();
  });

  it('without the AgenticSession CRD says so and removes nothing', async () => {
    const run = await cli(['gc', '--yes'], gcKubeconfig);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('the AgenticSession CRD (API group vteam.ambient-code) is not installed');
    expect(await keys(`${OPTED_IN}/gone-old/`)).toHaveLength(3);
  });

  describe('with the CRD', () => {
    beforeAll(async () => {
      await kubectlOk(cluster, ['apply', '-f', CRD]);
      await kubectlOk(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/agenticsessions.vteam.ambient-code']);
      // Discovery may lag the Established condition by a moment.
      await waitUntil('the AgenticSession API to be served', async () => ((await kubectlOk(cluster, ['api-resources', '--api-group=vteam.ambient-code'])).includes('agenticsessions') ? true : undefined), 30_000, 250);
      await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(agenticSession(OPTED_IN, 'kept-cr'), agenticSession(OPTED_IN, 'child-x', 'gone-parent')));
    });

    // The e2e cluster is shared: other files leave opted-in namespaces behind whose secrets
    // name servers or keys that are gone. gc reports each such namespace and exits 1, as a
    // CronJob should; these tests look at their own namespace.
    it('gc is a dry run without --yes', async () => {
      const run = await cli(['gc', '-n', OPTED_IN], gcKubeconfig);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`gc: ${OPTED_IN}/gone-old: would remove 3 objects`);
      expect(run.stdout).toMatch(/gc: would remove 1 sessions, [\d.]+ B to free; kept 4/);
      expect(await keys(`${OPTED_IN}/gone-old/`)).toHaveLength(3);
    });

    it("gc --yes, as the CronJob's ServiceAccount, removes only deleted sessions past the retention, whole", async () => {
      const run = await cli(['gc', '--yes', '--retention', '30d'], gcKubeconfig);
      const failures = run.stderr.split('\n').filter((line) => line.startsWith('gc: '));
      expect(failures.filter((line) => line.startsWith(`gc: ${OPTED_IN}:`)), run.stderr).toEqual([]);
      expect(run.code, run.stdout + run.stderr).toBe(failures.length > 0 ? 1 : 0);
      expect(run.stdout).toMatch(new RegExp(`gc: ${OPTED_IN}/gone-old: removed 3 objects \\([\\d.]+ B freed\\); 3 objects, [\\d.]+ B; last sync ${old.toISOString().slice(0, 10)}`));
      expect(run.stdout).toContain(`gc: ${OPTED_IN}/gone-pod: kept (no AgenticSession): pod gone-pod-runner is running`);
      expect(run.stdout).toContain(`gc: ${OPTED_IN}/gone-owner: kept (no AgenticSession): pod gone-owner-runner (uid-1) holds the session`);
      expect(run.stdout).toContain(`gc: ${OPTED_IN}/gone-parent: kept (no AgenticSession): parent of AgenticSession child-x`);
      expect(run.stdout).toMatch(new RegExp(`gc: ${OPTED_IN}/gone-recent: kept \\(no AgenticSession\\): last written .*, within the retention`));
      expect(run.stdout).toMatch(/gc: removed \d+ sessions, [\d.]+ B freed; kept \d+/);
      expect(run.stdout).not.toContain('kept-cr');
      expect(await keys(`${OPTED_IN}/gone-old/`)).toEqual([]);
      for (const session of ['kept-cr', 'gone-pod', 'gone-parent', 'gone-recent']) expect(await keys(`${OPTED_IN}/${session}/`), session).toHaveLength(3);
      expect(await keys(`${OPTED_IN}/gone-owner/`)).toHaveLength(4);
      // Not opted in: not looked at.
      expect(await keys(`${NOT_OPTED_IN}/gone-old/`)).toHaveLength(3);
    });

    it('rm refuses while a pod of the session runs, or a pod owns its state', async () => {
      const running = await cli(['rm', `${OPTED_IN}/gone-pod`, '--yes']);
      expect(running.code).toBe(1);
      expect(running.stderr).toContain(`error: ${OPTED_IN}/gone-pod: refusing, pod gone-pod-runner is running for it: stop the session first`);
      const owned = await cli(['rm', `${OPTED_IN}/gone-owner`, '--yes']);
      expect(owned.code).toBe(1);
      expect(owned.stderr).toContain('refusing, pod gone-owner-runner (uid-1) holds the session');
      expect(await keys(`${OPTED_IN}/gone-pod/`)).toHaveLength(3);
      expect(await keys(`${OPTED_IN}/gone-owner/`)).toHaveLength(4);
    });

    it('rm is a dry run by default; with --yes it removes the session whole, its own objects included', async () => {
      await put(`${OPTED_IN}/kept-cr/${LEASE_KEY}`, JSON.stringify({ version: 1, owner: 'uid-2', state: 'released', renewedAt: old.toISOString(), ttlSeconds: 300, graceSeconds: 90 }));
      const dry = await cli(['rm', `${OPTED_IN}/kept-cr`]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(new RegExp(`s3://${bucket}/${OPTED_IN}/kept-cr/: 4 objects, [\\d.]+ B, last written ${old.toISOString().slice(0, 10)}`));
      expect(dry.stdout).toContain('dry run: nothing removed; run again with --yes to remove them');
      expect(dry.stderr).toContain(`note: AgenticSession ${OPTED_IN}/kept-cr still exists`);
      expect(await keys(`${OPTED_IN}/kept-cr/`)).toHaveLength(4);

      const done = await cli(['rm', `${OPTED_IN}/kept-cr`, '--yes']);
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(new RegExp(`removed 4 objects \\([\\d.]+ B freed\\) from s3://${bucket}/${OPTED_IN}/kept-cr/`));
      expect(await keys(`${OPTED_IN}/kept-cr/`)).toEqual([]);
      expect((await cli(['rm', `${OPTED_IN}/kept-cr`])).stdout).toContain('nothing saved');
    });
  });
});
