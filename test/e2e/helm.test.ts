import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubectl, kubectlOk, ROOT } from '../support/cluster-client.js';
import { agentImageOf } from '../support/agent-image.js';
import { lockCluster } from '../support/cluster-lock.js';

const cluster = inject('cluster');
const HELM = path.join(ROOT, '.cache/bin/helm');
const CHART = path.join(ROOT, 'manifests/helm/session-storage');
const NAMESPACE = 'session-storage-helm';
const run = promisify(execFile);

function helm(args: string[]) {
  return run(HELM, ['--kubeconfig', cluster.kubeconfigPath, ...args]);
}

// The cluster-scoped objects both installs name the same: the other e2e files apply the
// kustomize base (and do so again in their own setup), so this file removes them first and
// the chart owns them while it runs.
const SHARED = [
  'clusterrole/session-storage-webhook',
  'clusterrolebinding/session-storage-webhook',
  'mutatingwebhookconfiguration/ambient-session-storage',
  'priorityclass/session-storage-webhook',
];

describe('helm install on a real API server', () => {
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await kubectlOk(cluster, ['delete', '--ignore-not-found', ...SHARED]);
  });

  afterAll(async () => {
    await helm(['uninstall', 'session-storage', '-n', NAMESPACE]).catch(() => undefined);
    await unlock?.();
  });

  it('installs into any namespace, with RBAC and the webhook pointing there, and uninstalls cleanly', async () => {
    const { stdout } = await helm(['install', 'session-storage', CHART, '-n', NAMESPACE, '--create-namespace']);
    expect(stdout).toContain('STATUS: deployed');
    // NOTES.txt: how to wait for it, test it, and opt a namespace in with its opt-in time.
    expect(stdout).toContain(`kubectl -n ${NAMESPACE} rollout status deployment/session-storage-webhook`);
    expect(stdout).toContain(`helm test session-storage -n ${NAMESPACE}`);
    expect(stdout).toContain('kubectl annotate namespace NS ambient-code.io/session-storage-enabled-at=');

    const deployment = JSON.parse(
      await kubectlOk(cluster, ['get', 'deployment', 'session-storage-webhook', '-n', NAMESPACE, '-o', 'json']),
    ) as { spec: { template: { spec: { containers: Array<{ image: string; env: Array<{ name: string; value?: string }> }> } } } };
    const container = deployment.spec.template.spec.containers[0]!;
    expect(agentImageOf(deployment)).toBe(container.image);

    const webhook = JSON.parse(
      await kubectlOk(cluster, ['get', 'mutatingwebhookconfiguration', 'ambient-session-storage', '-o', 'json']),
    ) as { webhooks: Array<{ clientConfig: { service: { namespace: string } }; namespaceSelector: unknown }> };
    expect(webhook.webhooks[0]?.clientConfig.service.namespace).toBe(NAMESPACE);
    expect(JSON.stringify(webhook.webhooks[0]?.namespaceSelector)).toContain(NAMESPACE);

    const as = `--as=system:serviceaccount:${NAMESPACE}:session-storage-webhook`;
    const canRead = await kubectl(cluster, ['auth', 'can-i', 'get', 'secret/ambient-non-vertex-integrations', '-n', 'project-x', as]);
    expect(canRead.stdout.trim()).toBe('yes');
    const canReadOther = await kubectl(cluster, ['auth', 'can-i', 'get', 'secret/other', '-n', 'project-x', as]);
    expect(canReadOther.stdout.trim()).toBe('no');

    await helm(['uninstall', 'session-storage', '-n', NAMESPACE]);
    const gone = await kubectl(cluster, ['get', '--ignore-not-found', '-o', 'name', ...SHARED]);
    expect(gone.stdout.trim()).toBe('');
  });

  it('namespace.create: helm install (release in default) creates the namespace, "restricted" enforced, and installs into it', async () => {
    const created = 'session-storage-helm-created';
    try {
      const { stdout } = await helm(['install', 'session-storage-ns', CHART, '-n', 'default', '--set', 'namespace.create=true', '--set', `namespace.name=${created}`]);
      expect(stdout).toContain('STATUS: deployed');
      const namespace = JSON.parse(await kubectlOk(cluster, ['get', 'namespace', created, '-o', 'json'])) as { metadata: { labels: Record<string, string> } };
      expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
      await kubectlOk(cluster, ['get', 'deployment', 'session-storage-webhook', '-n', created]);
    } finally {
      await helm(['uninstall', 'session-storage-ns', '-n', 'default']).catch(() => undefined);
    }
  });
});
