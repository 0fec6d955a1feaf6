import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agentEnv, newPod } from '../agent/support/helpers.js';
import { createNamespace, integrationSecret, kubectlOk, ROOT, serviceAccountKubeconfig, toYaml } from '../support/cluster-client.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { freePort } from '../support/free-port.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';

// The user-facing tools against the real API server and MinIO: the namespace's secret
// read through a kubeconfig, the S3 data written by the agent itself, and a MinIO user
// holding the seed's per-project policy (no s3:ListBucket).

const cluster = inject('cluster');
const minio = inject('minio');
const LIST_FIX = 'grant s3:ListBucket on the bucket (a prefix condition is enough)';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(command, args, {
    // The images and `npm test` run Node 24; a run on an older node would add the AWS SDK's
    // version notice to the output under test.
    env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), KUBECONFIG: cluster.kubeconfigPath, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end();
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

const cli = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], env);

// The policies of the README: the seed's multi-tenant bucket policy (objects of the
// project's prefix, no listing) and the full agent policy.
const objectsOnly = (bucket: string, namespace: string) => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/${namespace}/*`] }],
});
const withListing = (bucket: string) => ({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
    { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
  ],
});

async function project(namespace: string, values: Record<string, string> | undefined): Promise<void> {
  await createNamespace(cluster, namespace);
  if (values) await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(namespace, values)));
}

const secretFor = (bucket: string, user: { accessKey: string; secretKey: string }, overrides: Record<string, string> = {}) => ({
  S3_ENABLED: 'true',
  S3_ENDPOINT: minio.endpoint,
  S3_BUCKET: bucket,
  S3_REGION: minio.region,
  S3_ACCESS_KEY: user.accessKey,
  S3_SECRET_KEY: user.secretKey,
  ...overrides,
});

let bucket: string;
let restricted: { accessKey: string; secretKey: string };
let full: { accessKey: string; secretKey: string };
let nobody: string;
const credentials = () => [restricted.accessKey, restricted.secretKey, full.accessKey, full.secretKey, minio.secretKey];

function expectNoCredential(result: Run): void {
  for (const credential of credentials()) expect(result.stdout + result.stderr).not.toContain(credential);
}

// The session's files as the runner wrote them; the agent's own sync puts them in S3.
const FILES: Record<string, string> = {
  'uploads/data.csv': 'a,b\n1,2\n',
  '.claude/projects/-workspace/history.jsonl': '{"role":"user"}\n',
  'artifacts/report.md': '# Report\n',
  'artifacts/charts/plot.svg': '<svg/>\n',
};
const REPORT_MTIME = new Date('2026-03-04T05:06:07Z');

beforeAll(async () => {
  bucket = await createBucket(minio, 'e2e-tools');
  restricted = await addUser(minio, objectsOnly(bucket, 'tools-seed'));
  full = await addUser(minio, withListing(bucket));
  await project('tools-seed', secretFor(bucket, restricted));
  await project('tools-full', secretFor(bucket, full));
  await project('check-wrong-key', secretFor(bucket, { accessKey: full.accessKey, secretKey: 'not-the-secret-key-123' }));
  await project('check-dead', secretFor(bucket, full, { S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` }));
  await project('check-none', undefined);
  await project('check-shared', secretFor(bucket, full, { STORAGE_MODE: 'shared' }));
  await project('check-userinfo', secretFor(bucket, full, { S3_ENDPOINT: `http://AKIAUSERINFO:userinfo-s3cr3t@127.0.0.1:${new URL(minio.endpoint).port}` }));
  await project('check-incomplete', { S3_ENABLED: 'true', S3_ENDPOINT: minio.endpoint, S3_ACCESS_KEY: 'x1234' });
  // A user of the cluster without any right on secrets.
  await kubectlOk(cluster, ['apply', '-f', '-'], toYaml({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nobody', namespace: 'tools-full' } }));
  nobody = await serviceAccountKubeconfig(cluster, 'tools-full', 'nobody');

  // A stopped session, synced by the agent with the seed's policy: only the manifest in
  // metadata.json names its files.
  const pod = await newPod(agentEnv(minio, bucket, 'sess-1', { NAMESPACE: 'tools-seed', AWS_ACCESS_KEY_ID: restricted.accessKey, AWS_SECRET_ACCESS_KEY: restricted.secretKey }));
  for (const [path, content] of Object.entries(FILES)) {
    await mkdir(dirname(join(pod.workspace, path)), { recursive: true });
    await writeFile(join(pod.workspace, path), content);
  }
  await utimes(join(pod.workspace, 'artifacts/report.md'), REPORT_MTIME, REPORT_MTIME);
  const synced = await pod.sync({ final: true });
  expect(synced.ok, pod.log.text()).toBe(true);
  await pod.dispose();

  // State the platform's own sync.sh wrote: an integer pathsSynced and no manifest.
  const s3 = rootClient(minio);
  for (const namespace of ['tools-seed', 'tools-full']) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${namespace}/platform-sess/artifacts/out.txt`, Body: 'from rclone\n' }));
    await s3.send(new PutObjectCommand({
      Bucket: bucket,
      Key: `${namespace}/platform-sess/metadata.json`,
      Body: JSON.stringify({ lastSync: '2026-11-30T10:00:00Z', session: 'platform-sess', namespace, pathsSynced: 3 }),
    }));
  }
  s3.destroy();
});

describe('kubectl session-storage ls / get', () => {
  let pluginPath: string;

  beforeAll(async () => {
    // What `npm install -g` does with package.json's bin entry: an executable named
    // kubectl-session_storage on PATH, which kubectl runs as `kubectl session-storage`.
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const target = join(ROOT, pkg.bin['kubectl-session_storage']!);
    await chmod(target, 0o755);
    const binDir = await mkdtemp(join(tmpdir(), 'plugin-bin-'));
    await symlink(target, join(binDir, 'kubectl-session_storage'));
    pluginPath = `${binDir}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  });

  const kubectlPlugin = (args: string[]) => run(cluster.kubectl, ['session-storage', ...args], { PATH: pluginPath });

  it('lists a stopped session from its manifest without s3:ListBucket, artifacts first, through kubectl', async () => {
    const listed = await kubectlPlugin(['ls', 'tools-seed/sess-1']);
    expect(listed.stderr).toMatch(/^s3:\/\/e2e-tools-[a-z0-9]+\/tools-seed\/sess-1\/: 4 files, .* \(from the manifest\)\n$/);
    expect(listed.code).toBe(0);
    const paths = listed.stdout.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/).pop());
    expect(paths).toEqual(['artifacts/charts/plot.svg', 'artifacts/report.md', '.claude/projects/-workspace/history.jsonl', 'uploads/data.csv']);
    expect(listed.stdout).toMatch(/9 B {2}2026-03-04T05:06:07Z {2}artifacts\/report\.md\n/);
    expect(listed.stdout.split('\n')[0]).toMatch(/SIZE +MODIFIED +PATH/);
    expectNoCredential(listed);
  });

  it('lists one folder, and JSON for scripts', async () => {
    const listed = await cli(['ls', 'tools-seed/sess-1', 'artifacts', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      { path: 'artifacts/charts/plot.svg', size: 7, modified: expect.any(String) },
      { path: 'artifacts/report.md', size: 9, modified: '2026-03-04T05:06:07Z' },
    ]);
  });

  it('downloads files and folders byte for byte with their mtime', async () => {
    const out = await mkdtemp(join(tmpdir(), 'get-'));
    const got = await kubectlPlugin(['get', 'tools-seed/sess-1', 'artifacts', '.claude/projects/-workspace/history.jsonl', '-o', out]);
    expect(got.stderr).toMatch(/^3 files, .* written to /);
    expect(got.code).toBe(0);
    for (const path of ['artifacts/report.md', 'artifacts/charts/plot.svg', '.claude/projects/-workspace/history.jsonl']) {
      expect(await readFile(join(out, path), 'utf8')).toBe(FILES[path]);
    }
    expect((await stat(join(out, 'artifacts/report.md'))).mtime.toISOString()).toBe(REPORT_MTIME.toISOString());
    await expect(stat(join(out, 'uploads'))).rejects.toThrow(/ENOENT/);
    expectNoCredential(got);
  });

  it('refuses a folder that is a symlink, writing nothing through it', async () => {
    const out = await mkdtemp(join(tmpdir(), 'get-'));
    const elsewhere = await mkdtemp(join(tmpdir(), 'elsewhere-'));
    await symlink(elsewhere, join(out, 'artifacts'));
    const got = await cli(['get', 'tools-seed/sess-1', 'artifacts/report.md', 'uploads', '-o', out]);
    expect(got.code).toBe(1);
    expect(got.stderr).toMatch(/error: artifacts\/report\.md: artifacts is a symlink/);
    expect(await readdir(elsewhere)).toEqual([]);
    expect(await readFile(join(out, 'uploads/data.csv'), 'utf8')).toBe(FILES['uploads/data.csv']);
  });

  it('refuses manifest entries that would escape the destination', async () => {
    // Anyone with write access to the bucket controls metadata.json.
    const s3 = rootClient(minio);
    const prefix = 'tools-full/tampered/';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/ok.txt`, Body: 'ok\n' }));
    const manifest = { 'artifacts/ok.txt': { size: 3, mtimeMs: 1 }, 'artifacts/../../escape.txt': { size: 3, mtimeMs: 1 } };
    await s3.send(new PutObjectCommand({
      Bucket: bucket,
      Key: `${prefix}metadata.json`,
      Body: JSON.stringify({ lastSync: '2026-11-30T10:00:00Z', session: 'tampered', namespace: 'tools-full', pathsSynced: 1, manifest }),
    }));
    s3.destroy();
    const parent = await mkdtemp(join(tmpdir(), 'get-parent-'));
    const out = join(parent, 'a', 'b');
    const got = await cli(['get', 'tools-full/tampered', 'artifacts', '-o', out]);
    expect(got.code).toBe(1);
    expect(got.stderr).toContain('refusing artifacts/../../escape.txt: contains ".."');
    expect(await readFile(join(out, 'artifacts/ok.txt'), 'utf8')).toBe('ok\n');
    expect(await readdir(parent)).toEqual(['a']);
    expect(await readdir(join(parent, 'a'))).toEqual(['b']);
  });

  it("lists the platform's state (no manifest) where listing is allowed, and names the fix where it is not", async () => {
    const listed = await cli(['ls', 'tools-full/platform-sess']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/12 B {2}- +artifacts\/out\.txt\n/);
    expect(listed.stderr).toContain('(from the listing)');

    const denied = await cli(['ls', 'tools-seed/platform-sess']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toBe(
      `error: cannot enumerate s3://${bucket}/tools-seed/platform-sess/: metadata.json has no manifest (written by the platform's sync) and listing is denied: ${LIST_FIX}\n`,
    );
  });

  it('exits 1 for a session with no saved state, and for a user who may not read the secret', async () => {
    const none = await cli(['ls', 'tools-full/never-ran']);
    expect(none).toEqual({ code: 1, stdout: '', stderr: `error: no saved files at s3://${bucket}/tools-full/never-ran/: the session never synced, or its state was deleted\n` });

    const forbidden = await cli(['get', 'tools-full/platform-sess', 'artifacts', '--kubeconfig', nobody]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/^error: cannot read secret tools-full\/ambient-non-vertex-integrations: HTTP 403: .*forbidden/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli(['ls', 'tools-full'])).code).toBe(2);
    expect((await cli(['get', 'tools-full/sess-1'])).code).toBe(2);
    expect((await cli(['ls', 'Tools/sess-1'])).stderr).toBe('error: namespace "Tools" is not a DNS label (lowercase letters, digits and "-")\n');
  });
});

describe('session-storage check', () => {
  async function probeLeftovers(): Promise<string[]> {
    const s3 = rootClient(minio);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    s3.destroy();
    return (listed.Contents ?? []).map((o) => o.Key ?? '').filter((key) => key.includes('.session-storage-check-'));
  }

  it('passes a project whose sessions would hydrate and sync, and cleans up its probe', async () => {
    const checked = await cli(['check', 'tools-full']);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain(`secret tools-full/ambient-non-vertex-integrations: S3_ENABLED=true, S3_ENDPOINT=${minio.endpoint}, S3_BUCKET=${bucket}, S3_REGION=us-east-1, S3_ACCESS_KEY set, S3_SECRET_KEY set\n`);
    expect(checked.stdout.split('\n').filter((line) => /^(ok|warn|FAIL)/.test(line)).map((line) => line.split(/\s+/)[0])).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(checked.stdout).toContain('result: a session in tools-full would hydrate and sync\n');
    expectNoCredential(checked);
    expect(await probeLeftovers()).toEqual([]);
  });

  it("passes the seed's policy without s3:ListBucket with a warning naming the fix", async () => {
    const checked = await cli(['check', 'tools-seed']);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/^warn +list s3:\/\/.*: access denied\. Sessions hydrate and sync from the manifest in metadata\.json/m);
    expect(checked.stdout).toContain(`      fix: ${LIST_FIX}\n`);
    expect(checked.stdout).toContain('ok    read a missing object: answered "not found" (a new session starts fresh)');
    expect(checked.stdout).toContain('result: a session in tools-seed would hydrate and sync (1 warning)\n');
    expectNoCredential(checked);
  });

  it('fails a wrong key with "access denied" and the fix', async () => {
    const checked = await cli(['check', 'check-wrong-key']);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/^FAIL +write s3:\/\/\S+: access denied \(/m);
    expect(checked.stdout).toContain('fix: the server does not accept S3_ACCESS_KEY/S3_SECRET_KEY: set the right keys in the secret');
    expect(checked.stdout).toContain('result: a session in check-wrong-key would NOT hydrate and sync (1 failed)');
    expect(checked.stdout + checked.stderr).not.toContain('not-the-secret-key-123');
    expectNoCredential(checked);
  });

  it('fails an unreachable endpoint with "connection refused"', async () => {
    const checked = await cli(['check', 'check-dead']);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/^FAIL +write \S+: connection refused/m);
    expect(checked.stdout).toContain('fix: nothing listens at S3_ENDPOINT http://127.0.0.1:');
  });

  it('fails a project without S3 settings or with incomplete ones, in the webhook\'s words', async () => {
    const none = await cli(['check', 'check-none']);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('secret check-none/ambient-non-vertex-integrations: absent\n');
    expect(none.stdout).toContain('FAIL  webhook: S3 not configured: session state is ephemeral\n');

    // The platform's cluster storage: the stale S3_* keys beside it are not used.
    const shared = await cli(['check', 'check-shared']);
    expect(shared.code).toBe(1);
    expect(shared.stdout).toContain('STORAGE_MODE=shared');
    expect(shared.stdout).toContain('FAIL  webhook: S3 not configured: session state is ephemeral (STORAGE_MODE=shared');
    expect(shared.stdout).toContain('fix: set STORAGE_MODE=custom with the S3_* keys in the project settings');

    const incomplete = await cli(['check', 'check-incomplete']);
    expect(incomplete.code).toBe(1);
    expect(incomplete.stdout).toContain('FAIL  webhook denies session pods: incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY\n');
    expect(incomplete.stdout).toContain('S3_ACCESS_KEY set, S3_SECRET_KEY missing');
    expect(incomplete.stdout).not.toContain('x1234');
  });

  it('fails, naming the right it lacks, when the kubeconfig user may not read the secret', async () => {
    const checked = await cli(['check', 'tools-full', '--kubeconfig', nobody]);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(/^FAIL +cannot read secret tools-full\/ambient-non-vertex-integrations: HTTP 403: /m);
    expect(checked.stdout).toContain('fix: your kubeconfig user needs "get" on secrets in tools-full');
  });

  it('never prints the credentials of an endpoint URL, which the webhook denies', async () => {
    const checked = await cli(['check', 'check-userinfo']);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain('S3_ENDPOINT=http://***@127.0.0.1:');
    expect(checked.stdout).toContain('FAIL  webhook denies session pods: invalid S3 configuration: S3_ENDPOINT must not embed credentials');
    expect(checked.stdout + checked.stderr).not.toMatch(/AKIAUSERINFO|userinfo-s3cr3t/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli(['check'])).code).toBe(2);
    expect((await cli(['check', 'Not_A_Namespace'])).code).toBe(2);
  });
});

describe('session-storage inject --secret-from-cluster', () => {
  const pod = join(ROOT, 'test/fixtures/pods/session-runner.yaml');

  it("injects with the live secret of the pod's namespace, referencing it without copying a value", async () => {
    const injected = await cli(['inject', '-f', pod, '-n', 'tools-full', '--secret-from-cluster']);
    expect(injected.stderr).toBe('');
    expect(injected.code).toBe(0);
    const mutated = parse(injected.stdout) as { spec: { initContainers: Array<{ name: string; env: Array<{ name: string; valueFrom?: unknown }> }> } };
    expect(mutated.spec.initContainers.map((c) => c.name)).toEqual(['init-hydrate', 'state-sync']);
    expect(mutated.spec.initContainers[0]!.env.find((e) => e.name === 'AWS_SECRET_ACCESS_KEY')?.valueFrom).toEqual({
      secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_SECRET_KEY' },
    });
    expectNoCredential(injected);
  });

  it('follows the decision table on what the cluster holds', async () => {
    const absent = await cli(['inject', '-f', pod, '-n', 'check-none', '--secret-from-cluster']);
    expect(absent.code).toBe(0);
    expect(absent.stderr).toBe('warning: S3 not configured: session state is ephemeral\n');

    const incomplete = await cli(['inject', '-f', pod, '-n', 'check-incomplete', '--secret-from-cluster']);
    expect(incomplete).toEqual({ code: 1, stdout: '', stderr: 'denied: incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY\n' });

    const forbidden = await cli(['inject', '-f', pod, '-n', 'tools-full', '--secret-from-cluster', '--kubeconfig', nobody]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr, forbidden.stderr).toMatch(/^denied: failed to read project secret: HTTP 403: /);
  });
});

// `check` used to report the seed's per-project policy on AWS as failing ("hydrate of a
// new session fails") while hydrate, with the same keys, succeeded: AWS answers 403 for a
// missing key to a caller without s3:ListBucket, and hydrate tells "missing" from "denied"
// by what the policy allows. Both now run against the AWS-semantics proxy and must agree.
describe('check agrees with hydrate on every policy', () => {
  let proxy: AwsSemanticsProxy;
  beforeAll(async () => {
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  afterAll(() => proxy.close());

  it.each([
    ["the seed's per-project policy (no s3:ListBucket)", 'agree-seed', (ns: string) => objectsOnly(bucket, ns), false, true],
    ['read but not write', 'agree-readonly', (ns: string) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/${ns}/*`] }] }), false, false],
    ['the full agent policy', 'agree-full', () => withListing(bucket), true, true],
  ] as const)('%s', async (_name, namespace, policy, lists, works) => {
    const user = await addUser(minio, policy(namespace));
    // AWS answers 403 for a missing key only to callers that may not list.
    if (!lists) proxy.withoutList.add(user.accessKey);
    await project(namespace, secretFor(bucket, user, { S3_ENDPOINT: proxy.endpoint }));
    const checked = await cli(['check', namespace]);
    const pod = await newPod(
      agentEnv(minio, bucket, `s-${namespace}`, { S3_ENDPOINT: proxy.endpoint, NAMESPACE: namespace, AWS_ACCESS_KEY_ID: user.accessKey, AWS_SECRET_ACCESS_KEY: user.secretKey }),
    );
    try {
      const hydrated = await pod.hydrate();
      expect({ check: checked.code === 0, hydrate: hydrated }, `${checked.stdout}\n${pod.log.text()}`).toEqual({ check: works, hydrate: works });
    } finally {
      await pod.dispose();
    }
    expect(checked.stdout + checked.stderr).not.toContain(user.secretKey);
  });
});
