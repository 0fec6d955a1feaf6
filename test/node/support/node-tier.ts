import { createHash } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CoreV1Api, KubeConfig, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import type { ClusterInfo } from '../../support/cluster.js';
import { integrationSecret, kubectl, kubectlOk, readYaml, toYaml, waitUntil } from '../../support/cluster-client.js';
import type { MinioInfo } from '../../support/minio.js';

/** What the node tier's global setup provides: the cluster (kubectl helpers take it), the node and its MinIO. */
export interface NodeTier extends ClusterInfo {
  stateDir: string;
  nodeName: string;
  nodeIp: string;
  runtimeEndpoint: string;
  /** the product's image as imported into the node's containerd */
  image: string;
  /** the docker-archive scripts/build-image.mjs wrote for it */
  imageTar: string;
  /** MinIO on the node's bridge address: pods and the tests reach it at the same endpoint */
  minio: MinioInfo;
}

export function coreApi(node: NodeTier): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(node.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

export function s3(node: NodeTier): S3Client {
  return new S3Client({
    endpoint: node.minio.endpoint,
    region: node.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: node.minio.accessKey, secretAccessKey: node.minio.secretKey },
  });
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Every object under `prefix`, key relative to it => sha256 of its bytes. */
export async function objectHashes(node: NodeTier, bucket: string, prefix: string): Promise<Map<string, string>> {
  const client = s3(node);
  try {
    const hashes = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const { Key } of page.Contents ?? []) {
        const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
        hashes.set(Key!.slice(prefix.length), sha256(Buffer.from(await body.Body!.transformToByteArray())));
      }
      token = page.NextContinuationToken;
    } while (token);
    return hashes;
  } finally {
    client.destroy();
  }
}

export async function getObject(node: NodeTier, bucket: string, key: string): Promise<string> {
  const client = s3(node);
  try {
    return await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
  } finally {
    client.destroy();
  }
}

export async function putObject(node: NodeTier, bucket: string, key: string, body: Buffer | string): Promise<void> {
  const client = s3(node);
  try {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  } finally {
    client.destroy();
  }
}

/**
 * An opted-in project namespace as the platform makes one, with its integration secret
 * pointing at the tier's MinIO (a bucket of its own) and the runner's ServiceAccount and
 * secret. `labels` adds e.g. Pod Security enforcement.
 */
export async function createProject(
  node: NodeTier,
  namespace: string,
  options: { labels?: Record<string, string>; credentials?: { accessKey: string; secretKey: string } } = {},
): Promise<string> {
  const bucket = namespace;
  const client = s3(node);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  const credentials = options.credentials ?? { accessKey: node.minio.accessKey, secretKey: node.minio.secretKey };
  await kubectlOk(
    node,
    ['apply', '-f', '-'],
    toYaml(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'ambient-code.io/session-storage': 'enabled', ...options.labels } } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ambient-session', namespace }, automountServiceAccountToken: false },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ambient-runner-secrets', namespace }, stringData: { ANTHROPIC_API_KEY: 'not-a-key' } },
      integrationSecret(namespace, {
        S3_ENABLED: 'true',
        S3_ENDPOINT: node.minio.endpoint,
        S3_BUCKET: bucket,
        S3_REGION: node.minio.region,
        S3_ACCESS_KEY: credentials.accessKey,
        S3_SECRET_KEY: credentials.secretKey,
      }),
    ),
  );
  return bucket;
}

/**
 * A session pod of one of the platform's shapes (test/fixtures/pods/: `session-runner.yaml`
 * the PVC era, uid 1001 with fsGroup 1001 and `.claude` through a subPath;
 * `control-plane.yaml` the new control plane, `restartPolicy: Never`, a plain EmptyDir;
 * `openshift-restricted-v2.yaml` as OpenShift's SCC leaves it) for `session`, its runner
 * running `script` with the image's Node: the product's image stands in for the runner's,
 * as the one image this node has. What the fixture names that does not exist here is
 * adapted: the Job owner reference is dropped (the garbage collector would delete a pod
 * whose owner does not exist) and the ServiceAccount is the project's `ambient-session`.
 */
export async function sessionPod(
  node: NodeTier,
  fixture: 'session-runner' | 'control-plane' | 'openshift-restricted-v2',
  options: { namespace: string; name: string; session: string; script: string },
): Promise<V1Pod> {
  const { namespace, name, session, script } = options;
  const pod = await readYaml<V1Pod>(`test/fixtures/pods/${fixture}.yaml`);
  const fromFixture = pod.metadata!;
  pod.metadata = { name, namespace, labels: { ...fromFixture.labels }, annotations: { ...fromFixture.annotations } };
  if (fromFixture.labels?.['agentic-session']) pod.metadata.labels!['agentic-session'] = session;
  if (fromFixture.annotations?.['ambient-code.io/session-name']) pod.metadata.annotations!['ambient-code.io/session-name'] = session;
  pod.spec!.serviceAccountName = 'ambient-session';
  for (const volume of pod.spec!.volumes ?? []) {
    if (volume.persistentVolumeClaim) volume.persistentVolumeClaim.claimName = `ambient-workspace-${session}`;
  }
  const runner = pod.spec!.containers[0]!;
  runner.image = node.image;
  runner.imagePullPolicy = 'Never';
  runner.command = ['/nodejs/bin/node', '--input-type=module', '-e', script];
  runner.resources = { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } };
  for (const mount of runner.volumeMounts ?? []) {
    if (mount.subPath?.endsWith('/.claude')) mount.subPath = `sessions/${session}/.claude`;
  }
  return pod;
}

/** The PVC-era runner pod (session-runner.yaml) of `session`. */
export function runnerPod(node: NodeTier, namespace: string, name: string, session: string, script: string): Promise<V1Pod> {
  return sessionPod(node, 'session-runner', { namespace, name, session, script });
}

export async function createPod(node: NodeTier, pod: V1Pod): Promise<V1Pod> {
  await kubectlOk(node, ['create', '-f', '-'], toYaml(pod));
  return coreApi(node).readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });
}

export async function readPod(node: NodeTier, namespace: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await coreApi(node).readNamespacedPod({ name, namespace });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

/** Polls the pod until `ready(pod)`; the error names the pod's phase, container states and events. */
export async function waitForPod(
  node: NodeTier,
  namespace: string,
  name: string,
  what: string,
  ready: (pod: V1Pod) => boolean,
  timeoutMs = 120_000,
): Promise<V1Pod> {
  try {
    return await waitUntil(what, async () => {
      const pod = await readPod(node, namespace, name);
      return pod && ready(pod) ? pod : undefined;
    }, timeoutMs, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await describe(node, namespace, name)}`);
  }
}

export async function waitForPodGone(node: NodeTier, namespace: string, name: string, timeoutMs = 180_000): Promise<void> {
  await waitUntil(`pod ${namespace}/${name} gone`, async () => ((await readPod(node, namespace, name)) ? undefined : true), timeoutMs, 250);
}

export const running = (container: string) => (pod: V1Pod) =>
  [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].some((s) => s.name === container && s.state?.running !== undefined);

export async function describe(node: NodeTier, namespace: string, name: string): Promise<string> {
  const result = await kubectl(node, ['-n', namespace, 'describe', 'pod', name]);
  return result.stdout + result.stderr;
}

export async function podEvents(node: NodeTier, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await coreApi(node).listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}

export async function logs(node: NodeTier, namespace: string, pod: string, container: string, previous = false): Promise<string> {
  const result = await kubectl(node, ['-n', namespace, 'logs', pod, '-c', container, ...(previous ? ['--previous'] : [])]);
  if (result.code !== 0) throw new Error(`kubectl logs ${pod} -c ${container}: ${result.stderr}`);
  return result.stdout;
}

/** The JSON line a runner script printed with `report(...)` (see RUNNER_PRELUDE). */
export function reportOf<T>(log: string, tag: string): T {
  const line = log.split('\n').find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no "${tag}" line in the runner's log:\n${log}`);
  return JSON.parse(line.slice(tag.length + 1)) as T;
}

/**
 * Helpers for runner scripts (ES module source run by `node -e` in the pod): `hashes(dir)`
 * walks a folder into {relative path: sha256}, `report(tag, value)` prints one JSON line
 * the test reads back from `kubectl logs`, `onTerm(fn)` runs fn on SIGTERM then exits 0.
 */
export const RUNNER_PRELUDE = `
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
const hashes = (root) => {
  const out = {};
  const walk = (dir) => { for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p); else if (e.isFile()) out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
  } };
  try { walk(root); } catch {}
  return out;
};
const report = (tag, value) => console.log(tag + ' ' + JSON.stringify(value));
const onTerm = (fn) => process.on('SIGTERM', () => { try { fn(); } finally { process.exit(0); } });
const forever = () => setInterval(() => {}, 1 << 30);
const write = (path, data) => { mkdirSync(join(path, '..'), { recursive: true }); writeFileSync(path, data); };
`;
