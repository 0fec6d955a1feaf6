import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl, kubectlOk, ROOT } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { WEBHOOK_NAMESPACE, WEBHOOK_SERVICE_ACCOUNT } from '../support/cluster-webhook.js';

const cluster = inject('cluster');
const SA = `system:serviceaccount:${WEBHOOK_NAMESPACE}:${WEBHOOK_SERVICE_ACCOUNT}`;

async function canI(verb: string, resource: string, namespace?: string, as = SA): Promise<boolean> {
  const args = ['auth', 'can-i', verb, resource, `--as=${as}`, ...(namespace ? ['-n', namespace] : [])];
  const result = await kubectl(cluster, args);
  return result.stdout.trim() === 'yes';
}

// Asked with a SubjectAccessReview: kubectl auth can-i resolves a resource through
// discovery, and the AgenticSession CRD need not be installed for RBAC to grant it.
async function mayOnAgenticSessions(verb: string, user: string): Promise<boolean> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { group: 'vteam.ambient-code', resource: 'agenticsessions', verb, namespace: 'any-project' } },
  };
  const answer = JSON.parse(await kubectlOk(cluster, ['create', '-o', 'json', '-f', '-'], JSON.stringify(review))) as { status: { allowed?: boolean } };
  return answer.status.allowed === true;
}

describe('manifests against a real API server', () => {
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    // A dry-run cannot create the namespace the other objects live in: the README has
    // users apply the namespace first, and so does this.
    await kubectlOk(cluster, ['apply', '-f', 'manifests/base/namespace.yaml']);
    const crds = join(ROOT, '.cache/crds/cert-manager');
    const files = (await readdir(crds)).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    await kubectlOk(cluster, ['apply', '--server-side', ...files.flatMap((f) => ['-f', join(crds, f)])]);
    await kubectlOk(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/certificates.cert-manager.io', 'crd/issuers.cert-manager.io']);
  });

  afterAll(async () => {
    await unlock?.();
  });

  it.each(['manifests/', 'manifests/overlays/cert-manager', 'manifests/overlays/openshift'])('kubectl apply --dry-run=server -k %s passes', async (dir) => {
    const result = await kubectl(cluster, ['apply', '--dry-run=server', '-k', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('mutatingwebhookconfiguration.admissionregistration.k8s.io/ambient-session-storage');
  });

  it('installs with kubectl apply -k manifests/ and stores what the README promises', async () => {
    const applied = await kubectl(cluster, ['apply', '-k', 'manifests/']);
    expect(applied.code, applied.stderr).toBe(0);
    // The namespace enforces Pod Security "restricted": the API server warns about a
    // Deployment whose pod template would be rejected.
    expect(applied.stderr).not.toContain('PodSecurity');
    const deployment = JSON.parse(
      await kubectlOk(cluster, ['get', 'deployment', 'session-storage-webhook', '-n', WEBHOOK_NAMESPACE, '-o', 'json']),
    ) as { spec: { replicas: number; template: { spec: { containers: Array<{ securityContext: object }> } } } };
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const webhook = JSON.parse(
      await kubectlOk(cluster, ['get', 'mutatingwebhookconfiguration', 'ambient-session-storage', '-o', 'json']),
    ) as { webhooks: Array<Record<string, unknown>> };
    expect(webhook.webhooks[0]).toMatchObject({
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      matchPolicy: 'Equivalent',
      reinvocationPolicy: 'IfNeeded',
      rules: [expect.objectContaining({ operations: ['CREATE'], resources: ['pods'] })],
    });
    expect(webhook.webhooks[0]?.timeoutSeconds).toBeLessThanOrEqual(10);
    await kubectlOk(cluster, ['get', 'pdb', 'session-storage-webhook', '-n', WEBHOOK_NAMESPACE]);
    await kubectlOk(cluster, ['get', 'service', 'session-storage-webhook', '-n', WEBHOOK_NAMESPACE]);
    const policy = JSON.parse(
      await kubectlOk(cluster, ['get', 'networkpolicy', 'session-storage-webhook', '-n', WEBHOOK_NAMESPACE, '-o', 'json']),
    ) as { spec: { podSelector: unknown; policyTypes: string[] } };
    expect(policy.spec).toMatchObject({ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'session-storage-webhook' } }, policyTypes: ['Ingress'] });
  });

  it('grants the webhook exactly what it needs and nothing more', async () => {
    expect(await canI('get', 'secrets/ambient-non-vertex-integrations', 'any-project')).toBe(true);
    expect(await canI('watch', 'secrets/ambient-non-vertex-integrations', 'any-project')).toBe(true);
    expect(await canI('get', 'secrets/some-other-secret', 'any-project')).toBe(false);
    expect(await canI('list', 'secrets', 'any-project')).toBe(false);
    expect(await canI('update', 'secrets/ambient-non-vertex-integrations', 'any-project')).toBe(false);
    expect(await canI('patch', 'mutatingwebhookconfigurations/ambient-session-storage')).toBe(true);
    expect(await canI('patch', 'mutatingwebhookconfigurations/someone-elses')).toBe(false);
    expect(await canI('create', 'mutatingwebhookconfigurations')).toBe(false);
    expect(await canI('update', 'secrets/session-storage-webhook-ca', WEBHOOK_NAMESPACE)).toBe(true);
    expect(await canI('get', 'secrets/other', WEBHOOK_NAMESPACE)).toBe(false);
    expect(await canI('create', 'secrets', 'any-project')).toBe(false);
    expect(await canI('list', 'pods', 'any-project')).toBe(false);
    // One read of the PVC a session pod names and of its namespace's opt-in time; nothing
    // that would let the webhook enumerate or change either.
    expect(await canI('get', 'persistentvolumeclaims/ambient-workspace-sess-1', 'any-project')).toBe(true);
    expect(await canI('get', 'namespaces/any-project')).toBe(true);
    for (const verb of ['list', 'watch', 'create', 'update', 'patch', 'delete']) {
      expect(await canI(verb, 'persistentvolumeclaims', 'any-project'), `${verb} persistentvolumeclaims`).toBe(false);
      expect(await canI(verb, 'namespaces'), `${verb} namespaces`).toBe(false);
    }
  });

  // The retention CronJob's ServiceAccount: what gc reads, and nothing it could change.
  it('grants the gc CronJob exactly what it needs and nothing more', async () => {
    const gc = `system:serviceaccount:${WEBHOOK_NAMESPACE}:session-storage-gc`;
    expect(await canI('list', 'namespaces', undefined, gc)).toBe(true);
    expect(await canI('list', 'pods', 'any-project', gc)).toBe(true);
    expect(await mayOnAgenticSessions('list', gc)).toBe(true);
    expect(await canI('get', 'secrets/ambient-non-vertex-integrations', 'any-project', gc)).toBe(true);
    expect(await canI('get', 'secrets/some-other-secret', 'any-project', gc)).toBe(false);
    expect(await canI('list', 'secrets', 'any-project', gc)).toBe(false);
    for (const verb of ['create', 'update', 'patch', 'delete']) {
      expect(await canI(verb, 'pods', 'any-project', gc), `${verb} pods`).toBe(false);
      expect(await mayOnAgenticSessions(verb, gc), `${verb} agenticsessions`).toBe(false);
      expect(await canI(verb, 'namespaces', undefined, gc), `${verb} namespaces`).toBe(false);
    }
    expect(await canI('get', 'pods/x', 'any-project', gc)).toBe(false);
  });
});
