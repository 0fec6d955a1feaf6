import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  adminApi,
  anyContainer,
  createNamespace,
  initContainer,
  integrationSecret,
  kubectl,
  kubectlOk,
  readYaml,
  toYaml,
  type WebhookProcess,
} from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook } from '../support/cluster-webhook.js';

const cluster = inject('cluster');
const minio = inject('minio');
const api = adminApi(cluster);
const OPT_IN = { 'ambient-code.io/session-storage': 'enabled' };
const STATUS = 'ambient-code.io/session-storage-status';

const completeSecret = (namespace: string) =>
  integrationSecret(namespace, {
    S3_ENABLED: 'true',
    S3_ENDPOINT: minio.endpoint,
    S3_BUCKET: 'sessions',
    S3_REGION: minio.region,
    S3_ACCESS_KEY: 'AKIAE2EACCESSKEY',
    S3_SECRET_KEY: 'e2e-secret-value-never-in-the-pod',
  });

/** A runner pod of test/fixtures/pods (the platform's by default), renamed into `namespace` for `session`. */
async function sessionPod(namespace: string, session: string, fixture = 'session-runner'): Promise<V1Pod> {
  const pod = await readYaml<V1Pod>(`test/fixtures/pods/${fixture}.yaml`);
  pod.metadata = { ...pod.metadata, name: `${session}-runner`, namespace, labels: { 'agentic-session': session, app: 'ambient-code-runner' } };
  delete pod.metadata.ownerReferences;
  const spec = pod.spec!;
  spec.serviceAccountName = 'ambient-session';
  spec.volumes = (spec.volumes ?? []).map((volume) =>
    volume.name === 'workspace' ? { name: 'workspace', persistentVolumeClaim: { claimName: `ambient-workspace-${session}` } } : volume,
  );
  return pod;
}

async function projectNamespace(name: string, labels: Record<string, string> = OPT_IN): Promise<void> {
  await createNamespace(cluster, name, labels, ['ambient-session']);
}

async function create(pod: object): Promise<{ code: number; stdout: string; stderr: string }> {
  return kubectl(cluster, ['create', '-f', '-'], { input: toYaml(pod) });
}

async function stored(namespace: string, name: string): Promise<V1Pod> {
  return api.core.readNamespacedPod({ name, namespace });
}

function expectMutated(pod: V1Pod): void {
  expect(pod.spec?.volumes?.find((v) => v.name === 'workspace')).toMatchObject({ emptyDir: { sizeLimit: '10Gi' } });
  expect(pod.spec?.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
  expect(initContainer(pod, 'init-hydrate')).toBeDefined();
  expect(JSON.parse(pod.metadata?.annotations?.[STATUS] ?? '{}')).toMatchObject({ mode: expect.any(String) });
  // No secret value ever lands in the pod spec.
  expect(JSON.stringify(pod)).not.toContain('e2e-secret-value-never-in-the-pod');
  expect(JSON.stringify(pod)).not.toContain('AKIAE2EACCESSKEY');
}

function expectUntouched(pod: V1Pod): void {
  expect(pod.metadata?.annotations?.[STATUS]).toBeUndefined();
  expect(pod.spec?.initContainers ?? []).toEqual([]);
  expect(pod.spec?.volumes?.some((v) => v.persistentVolumeClaim)).toBe(true);
}

describe('admission through the real API server', () => {
  let webhook: WebhookProcess;

  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    webhook = await runInstalledWebhook(cluster);
  });

  afterAll(async () => {
    await webhook?.stop();
    await unlock?.();
  });

  it('the webhook created its CA Secret and published the caBundle itself (self-managed)', async () => {
    const secret = await api.core.readNamespacedSecret({ name: 'session-storage-webhook-ca', namespace: 'ambient-session-storage' });
    const caCert = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
    const config = await api.admission.readMutatingWebhookConfiguration({ name: 'ambient-session-storage' });
    const bundle = Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8');
    expect(caCert).toContain('BEGIN CERTIFICATE');
    expect(bundle).toContain(caCert.trim());
  });

  it('stores a session pod in an opted-in namespace mutated, with state-sync as a native sidecar', async () => {
    await projectNamespace('e2e-native');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-native')));
    const result = await create(await sessionPod('e2e-native', 'sess-native'));
    expect(result.stderr).toBe('');
    const pod = await stored('e2e-native', 'sess-native-runner');
    expectMutated(pod);
    expect(initContainer(pod, 'state-sync')).toMatchObject({ restartPolicy: 'Always', args: ['sync'] });
    expect(initContainer(pod, 'init-hydrate')?.args).toEqual(['hydrate']);
    const env = initContainer(pod, 'init-hydrate')?.env ?? [];
    expect(env.find((e) => e.name === 'AWS_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef).toEqual({
      name: 'ambient-non-vertex-integrations',
      key: 'S3_SECRET_KEY',
    });
    expect(pod.spec?.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
  });

  it("refuses a session pod sharing its process namespace, which would expose state-sync's keys to the runner", async () => {
    const pod = await sessionPod('e2e-native', 'sess-shared-pid');
    pod.spec!.shareProcessNamespace = true;
    const result = await create(pod);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("shareProcessNamespace: true would expose the project's S3 keys in state-sync's environment to the runner: remove it");
  });

  it('finds a secret created a moment before the pod', async () => {
    await projectNamespace('e2e-fresh-secret');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-fresh-secret'), await sessionPod('e2e-fresh-secret', 'sess-fresh')));
    const pod = await stored('e2e-fresh-secret', 'sess-fresh-runner');
    expectMutated(pod);
    expect(anyContainer(pod, 'state-sync')).toBeDefined();
  });

  it('leaves pods in a namespace that has not opted in untouched', async () => {
    await projectNamespace('e2e-not-opted-in', {});
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-not-opted-in')));
    expect((await create(await sessionPod('e2e-not-opted-in', 'sess-plain'))).code).toBe(0);
    expectUntouched(await stored('e2e-not-opted-in', 'sess-plain-runner'));
  });

  it('leaves a non-session pod and an opted-out session pod in an opted-in namespace untouched', async () => {
    await projectNamespace('e2e-others');
    const plain = await readYaml<V1Pod>('test/fixtures/pods/plain-pod.yaml');
    plain.metadata!.namespace = 'e2e-others';
    const optedOut = await readYaml<V1Pod>('test/fixtures/pods/opted-out.yaml');
    optedOut.metadata!.namespace = 'e2e-others';
    expect((await create(plain)).code).toBe(0);
    expect((await create(optedOut)).code).toBe(0);
    expectUntouched(await stored('e2e-others', plain.metadata!.name!));
    expectUntouched(await stored('e2e-others', optedOut.metadata!.name!));
  });

  it('rejects a session pod when the secret is incomplete, naming every missing key', async () => {
    await projectNamespace('e2e-incomplete');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret('e2e-incomplete', { S3_ENABLED: 'true', S3_ENDPOINT: minio.endpoint, S3_ACCESS_KEY: 'a' })));
    const result = await create(await sessionPod('e2e-incomplete', 'sess-incomplete'));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY');
  });

  it('admits with a warning the client sees when S3 is disabled, and injects no S3 containers', async () => {
    await projectNamespace('e2e-disabled');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret('e2e-disabled', { S3_ENABLED: 'false' })));
    const result = await create(await sessionPod('e2e-disabled', 'sess-disabled'));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Warning: S3 disabled in project settings');
    const pod = await stored('e2e-disabled', 'sess-disabled-runner');
    expect(pod.spec?.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
    expect(anyContainer(pod, 'init-hydrate')).toBeUndefined();
    expect(anyContainer(pod, 'state-sync')).toBeUndefined();
  });

  it('passes Pod Security "restricted" enforcement with the injected containers', async () => {
    await projectNamespace('e2e-restricted', { ...OPT_IN, 'pod-security.kubernetes.io/enforce': 'restricted' });
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-restricted')));
    const result = await create(await sessionPod('e2e-restricted', 'sess-restricted'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectMutated(await stored('e2e-restricted', 'sess-restricted-runner'));
  });

  it('stores a pod as the OpenShift SCC left it under Pod Security "restricted", the agent with its assigned uid', async () => {
    await projectNamespace('e2e-scc', { ...OPT_IN, 'pod-security.kubernetes.io/enforce': 'restricted' });
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-scc')));
    const result = await create(await sessionPod('e2e-scc', 'sess-scc', 'openshift-restricted-v2'));
    expect(result.stderr).toBe('');
    const pod = await stored('e2e-scc', 'sess-scc-runner');
    expectMutated(pod);
    for (const name of ['init-hydrate', 'state-sync']) {
      expect(initContainer(pod, name)?.securityContext).toMatchObject({ runAsUser: 1000680000, runAsNonRoot: true });
    }
    expect(pod.spec?.securityContext).toMatchObject({ fsGroup: 1000680000, seLinuxOptions: { level: 's0:c26,c15' } });
  });

  it('stores a classic Istio pod with init-hydrate and state-sync before istio-init, warning about the final sync', async () => {
    await projectNamespace('e2e-istio');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-istio')));
    const result = await create(await sessionPod('e2e-istio', 'sess-istio', 'istio-classic'));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("Warning: classic istio-proxy may exit before state-sync's final sync");
    const pod = await stored('e2e-istio', 'sess-istio-runner');
    expectMutated(pod);
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['init-hydrate', 'state-sync', 'istio-init']);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['ambient-code-runner', 'istio-proxy']);
  });

  it("the README's examples: the quickstart MinIO, an opted-in project and its session pod, stored mutated", async () => {
    await kubectlOk(cluster, ['apply', '-f', 'manifests/examples/minio-quickstart.yaml']);
    await kubectlOk(cluster, ['apply', '-f', 'manifests/examples/project-namespace.yaml']);
    // A real cluster's controller-manager creates `default`; this API server runs alone.
    await createNamespace(cluster, 'project-a', OPT_IN);
    const result = await kubectl(cluster, ['apply', '-f', 'manifests/examples/session-pod.yaml']);
    expect(result.stderr).toBe('');
    const pod = await stored('project-a', 'demo-session-runner');
    expect(anyContainer(pod, 'state-sync')).toBeDefined();
    expect(pod.spec?.volumes?.find((v) => v.name === 'workspace')?.emptyDir).toBeDefined();
    const sync = initContainer(pod, 'state-sync');
    expect(sync?.env?.find((e) => e.name === 'SYNC_PATHS')?.value).toContain('.claude');
  });

  it('the manifests\' RBAC was enough: the webhook logged no authorization failure', () => {
    expect(webhook.output()).toContain('TLS material loaded');
    expect(webhook.output()).not.toMatch(/forbidden|HTTP 403/i);
  });

  it('stores a valid pod in legacy sidecar mode too', async () => {
    await webhook.stop();
    webhook = await runInstalledWebhook(cluster, { SIDECAR_MODE: 'legacy' });
    await projectNamespace('e2e-legacy');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-legacy')));
    const result = await create(await sessionPod('e2e-legacy', 'sess-legacy'));
    expect(result.stderr).toBe('');
    const pod = await stored('e2e-legacy', 'sess-legacy-runner');
    expectMutated(pod);
    expect(pod.spec?.containers.find((c) => c.name === 'state-sync')).toMatchObject({ args: ['sync'] });
    expect(initContainer(pod, 'state-sync')).toBeUndefined();
  });

  it('with the webhook down, behaves as the README says for failurePolicy Fail', async () => {
    await webhook.stop();
    await projectNamespace('e2e-down');
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret('e2e-down')));

    const session = await create(await sessionPod('e2e-down', 'sess-down'));
    expect(session.code).not.toBe(0);
    expect(session.stderr).toContain('failed calling webhook "session-storage.ambient-code.io"');

    // Everything the selectors exclude is still admitted: the outage is confined to
    // session pods of opted-in namespaces.
    const plain = await readYaml<V1Pod>('test/fixtures/pods/plain-pod.yaml');
    plain.metadata!.namespace = 'e2e-down';
    expect((await create(plain)).code).toBe(0);
    const optedOut = await readYaml<V1Pod>('test/fixtures/pods/opted-out.yaml');
    optedOut.metadata!.namespace = 'e2e-down';
    expect((await create(optedOut)).code).toBe(0);
    await projectNamespace('e2e-down-other', {});
    expect((await create(await sessionPod('e2e-down-other', 'sess-elsewhere'))).code).toBe(0);
  });
});
