import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { podVolumes, runContainer } from '../support/cluster-agent.js';
import { adminApi, anyContainer, createNamespace, initContainer, integrationSecret, kubectlOk, readYaml, toYaml, waitUntil, type WebhookProcess } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook } from '../support/cluster-webhook.js';
import { createBucket, startMinio, type MinioServer } from '../support/minio.js';

// IRSA without AWS: MinIO's STS trusts the test kube-apiserver as its OpenID provider (its
// ServiceAccount issuer, discovery document and JWKS), the webhook gives the agent a
// projected token of the pod's ServiceAccount, and the agent exchanges it
// (AssumeRoleWithWebIdentity) for credentials. No key is in the secret or the pod.
const cluster = inject('cluster');
const api = adminApi(cluster);
const SESSION = 'sess-wi';
const NAMESPACE = 'e2e-web-identity';
const AUDIENCE = 'sts.amazonaws.com';
const REGION = 'us-east-1';

// The ARN MinIO derives for the provider's role policy: a hash of its client id.
const roleArn = `arn:minio:iam:${REGION}::role/${createHash('sha1').update(AUDIENCE).digest('base64url')}`;

describe('S3_CREDENTIALS=workload-identity against MinIO STS trusting the API server', () => {
  let unlock: (() => Promise<void>) | undefined;
  let webhook: WebhookProcess | undefined;
  let sts: MinioServer | undefined;
  let bucket: string;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    // MinIO reads the issuer's discovery document and keys without credentials, as AWS
    // reads an EKS cluster's.
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'e2e-oidc-discovery' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    }));
    sts = await startMinio({
      region: REGION,
      trustedCas: [await readFile(cluster.serverCaPath, 'utf8')],
      env: {
        MINIO_IDENTITY_OPENID_CONFIG_URL: `${cluster.server}/.well-known/openid-configuration`,
        MINIO_IDENTITY_OPENID_CLIENT_ID: AUDIENCE,
        MINIO_IDENTITY_OPENID_ROLE_POLICY: 'readwrite',
      },
    });
    bucket = await createBucket(sts, 'e2e-wi');
    await installManifests(cluster);
    webhook = await runInstalledWebhook(cluster);
    await createNamespace(cluster, NAMESPACE, { 'ambient-code.io/session-storage': 'enabled' }, ['ambient-session']);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(NAMESPACE, {
      S3_ENABLED: 'true',
      S3_ENDPOINT: sts.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: REGION,
      S3_CREDENTIALS: 'workload-identity',
      S3_ROLE_ARN: roleArn,
      S3_STS_ENDPOINT: sts.endpoint,
    })));
  });

  afterAll(async () => {
    await webhook?.stop();
    await sts?.destroy();
    await kubectlOk(cluster, ['delete', 'clusterrolebinding', 'e2e-oidc-discovery', '--ignore-not-found']);
    await unlock?.();
  });

  it('hydrates and syncs with the projected token alone', async () => {
    const template = await readYaml<V1Pod>('test/fixtures/pods/session-runner.yaml');
    template.metadata = { name: `${SESSION}-runner`, namespace: NAMESPACE, labels: { 'agentic-session': SESSION } };
    template.spec!.serviceAccountName = 'ambient-session';
    // The session's own workspace claim: a claim of another session marks a continuation.
    for (const volume of template.spec!.volumes ?? []) {
      if (volume.persistentVolumeClaim) volume.persistentVolumeClaim.claimName = `ambient-workspace-${SESSION}`;
    }
    await kubectlOk(cluster, ['create', '-f', '-'], toYaml(template));
    const pod = await api.core.readNamespacedPod({ name: template.metadata.name!, namespace: NAMESPACE });

    // What the API server stored: the token volume, the role, no key anywhere.
    const hydrateSpec = initContainer(pod, 'init-hydrate')!;
    expect(pod.spec?.volumes).toContainEqual(expect.objectContaining({ name: 'session-storage-token' }));
    const names = (hydrateSpec.env ?? []).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['S3_CREDENTIALS', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'S3_STS_ENDPOINT']));
    expect(names).not.toContain('AWS_ACCESS_KEY_ID');
    expect(names).not.toContain('AWS_SECRET_ACCESS_KEY');

    // The kubelet's part: the projected token, for the pod's ServiceAccount and audience, bound to the pod.
    const volumes = await podVolumes(pod);
    const token = (
      await kubectlOk(cluster, ['create', 'token', 'ambient-session', '-n', NAMESPACE, '--audience', AUDIENCE, '--bound-object-kind', 'Pod', '--bound-object-name', pod.metadata!.name!, '--bound-object-uid', pod.metadata!.uid!, '--duration', '1h'])
    ).trim();
    await writeFile(join(volumes.get('session-storage-token')!, 'token'), token);

    const hydrate = await runContainer(api, pod, hydrateSpec, volumes);
    expect(await hydrate.exited, hydrate.output()).toBe(0);
    expect(hydrate.output()).toContain('No existing state found, starting fresh session');

    const ws = volumes.get('workspace')!;
    await mkdir(join(ws, 'artifacts'), { recursive: true });
    await writeFile(join(ws, 'artifacts/report.md'), '# written under a web identity\n');
    const sync = await runContainer(api, pod, anyContainer(pod, 'state-sync')!, volumes);
    const s3 = new S3Client({ endpoint: sts!.endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: sts!.accessKey, secretAccessKey: sts!.secretKey } });
    try {
      await waitUntil(
        'state-sync to upload under the web identity',
        async () => {
          const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${NAMESPACE}/${SESSION}/` }));
          return (listed.Contents ?? []).some((o) => o.Key === `${NAMESPACE}/${SESSION}/artifacts/report.md`) ? true : undefined;
        },
        30_000,
      );
    } finally {
      s3.destroy();
      sync.child.kill('SIGTERM');
    }
    expect(await sync.exited, sync.output()).toBe(0);
    expect(hydrate.output() + sync.output()).not.toContain(token);

    // MinIO checks what it is given: a token of the same ServiceAccount for another
    // audience is refused, and hydrate fails at once, naming it without printing it.
    const other = await podVolumes(pod);
    const wrongAudience = (await kubectlOk(cluster, ['create', 'token', 'ambient-session', '-n', NAMESPACE, '--audience', 'not-minio', '--duration', '1h'])).trim();
    await writeFile(join(other.get('session-storage-token')!, 'token'), wrongAudience);
    const refused = await runContainer(api, pod, hydrateSpec, other);
    expect(await refused.exited, refused.output()).toBe(1);
    expect(refused.output()).toContain('hydrate failed: access denied');
    expect(refused.output()).not.toContain(wrongAudience);
  });
});
