import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
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

// This API server has no Job controller or kubelet: `helm uninstall` would wait for the
// pre-delete Job forever, so the tests run its container's script as a process (below)
// and uninstall with --no-hooks.
const uninstall = (release: string, namespace: string) => helm(['uninstall', release, '-n', namespace, '--no-hooks']);

type HookObject = {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { template: { spec: { serviceAccountName: string; containers: Array<{ command: string[]; args: string[]; env: Array<{ name: string; value: string }> }> } } };
};

/**
 * The chart's pre-delete hook as Helm would run it: its ServiceAccount and RBAC created,
 * then the Job's container run as a process with a token of that ServiceAccount (and the
 * cluster's CA, as the projected volume gives it), against this API server.
 */
async function runUninstallHook(release: string, namespace: string): Promise<{ code: number; output: string }> {
  const { stdout } = await helm(['get', 'hooks', release, '-n', namespace]);
  const hooks = parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as HookObject | null)
    .filter((object): object is HookObject => object?.metadata.annotations?.['helm.sh/hook'] === 'pre-delete');
  const job = hooks.find((object) => object.kind === 'Job')!;
  const rbac = hooks.filter((object) => object.kind !== 'Job');
  await kubectlOk(cluster, ['apply', '-n', namespace, '-f', '-'], rbac.map((object) => JSON.stringify(object)).join('\n'));
  const pod = job.spec!.template.spec;
  const token = (await kubectlOk(cluster, ['create', 'token', pod.serviceAccountName, '-n', namespace])).trim();
  const container = pod.containers[0]!;
  const env = Object.fromEntries(container.env.map(({ name, value }) => [name, value]));
  const tokenDir = await mkdtemp(path.join(tmpdir(), 'uninstall-hook-'));
  try {
    await writeFile(path.join(tokenDir, 'token'), token);
    await copyFile(cluster.serverCaPath, path.join(tokenDir, 'ca.crt'));
    const server = new URL(cluster.server);
    const [, ...nodeArgs] = [...container.command, ...container.args];
    const result = await run(process.execPath, nodeArgs, {
      env: { ...env, TOKEN_DIR: tokenDir, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
    }).then(
      ({ stdout: out, stderr }) => ({ code: 0, output: out + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
    );
    return result;
  } finally {
    await rm(tokenDir, { recursive: true, force: true });
  }
}

// The cluster-scoped objects both installs name the same: the other e2e files apply the
// kustomize base (and do so again in their own setup), so this file removes them first and
// the chart owns them while it runs.
const SHARED = [
  'clusterrole/session-storage-webhook',
  'clusterrolebinding/session-storage-webhook',
  'mutatingwebhookconfiguration/ambient-session-storage',
  'priorityclass/session-storage-webhook',
  'clusterrole/session-storage-gc',
  'clusterrolebinding/session-storage-gc',
];

describe('helm install on a real API server', () => {
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await kubectlOk(cluster, ['delete', '--ignore-not-found', ...SHARED]);
  });

  afterAll(async () => {
    await uninstall('session-storage', NAMESPACE).catch(() => undefined);
    await kubectl(cluster, ['delete', '--ignore-not-found', 'clusterrole/session-storage-uninstall', 'clusterrolebinding/session-storage-uninstall']);
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
    const gc = `--as=system:serviceaccount:${NAMESPACE}:session-storage-gc`;
    expect((await kubectl(cluster, ['auth', 'can-i', 'list', 'pods', '-n', 'project-x', gc])).stdout.trim()).toBe('yes');
    await kubectlOk(cluster, ['get', 'cronjob', 'session-storage-gc', '-n', NAMESPACE]);

    await uninstall('session-storage', NAMESPACE);
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
      await uninstall('session-storage-ns', 'default').catch(() => undefined);
    }
  });
  it('helm uninstall: the pre-delete hook removes the webhook configuration first, with RBAC for that one object only', async () => {
    await helm(['install', 'session-storage', CHART, '-n', NAMESPACE, '--create-namespace']);
    const as = `--as=system:serviceaccount:${NAMESPACE}:session-storage-uninstall`;

    const first = await runUninstallHook('session-storage', NAMESPACE);
    expect(first.output).toContain('MutatingWebhookConfiguration ambient-session-storage deleted');
    expect(first.code).toBe(0);
    // Admission is off while the webhook's Service and Deployment still stand: nothing is
    // refused in between.
    const left = await kubectl(cluster, ['get', '--ignore-not-found', '-o', 'name', 'mutatingwebhookconfiguration/ambient-session-storage']);
    expect(left.stdout.trim()).toBe('');
    await kubectlOk(cluster, ['get', 'service/session-storage-webhook', 'deployment/session-storage-webhook', '-n', NAMESPACE]);
    expect((await kubectl(cluster, ['auth', 'can-i', 'delete', 'mutatingwebhookconfiguration/other', as])).stdout.trim()).toBe('no');
    expect((await kubectl(cluster, ['auth', 'can-i', 'delete', 'service/session-storage-webhook', '-n', NAMESPACE, as])).stdout.trim()).toBe('no');

    // A second uninstall attempt (the first one failed later on) still passes the hook.
    const again = await runUninstallHook('session-storage', NAMESPACE);
    expect(again.output).toContain('was already gone');
    expect(again.code).toBe(0);
    await uninstall('session-storage', NAMESPACE);
  });
});
