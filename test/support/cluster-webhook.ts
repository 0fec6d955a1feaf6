import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ClusterInfo } from './cluster.js';
import { freePort } from './free-port.js';
import {
  createNamespace,
  kubectl,
  kubectlOk,
  serviceAccountKubeconfig,
  startWebhook,
  toYaml,
  waitUntil,
  type WebhookProcess,
} from './cluster-client.js';

export const WEBHOOK_NAMESPACE = 'ambient-session-storage';
export const WEBHOOK_SERVICE_ACCOUNT = 'session-storage-webhook';
export const WEBHOOK_CONFIGURATION = 'ambient-session-storage';
const MARKER_NAMESPACE = 'e2e-webhook-marker';

/** The README's install step, verbatim. */
export async function installManifests(cluster: ClusterInfo): Promise<void> {
  await kubectlOk(cluster, ['apply', '-k', 'manifests/']);
}

/**
 * The webhook as a separate process, authenticated as the manifests' ServiceAccount (a
 * real token, so the manifests' RBAC is all it has), in self-managed certificate mode: it
 * creates the CA Secret and writes the caBundle itself. The installed configuration is
 * pointed at its loopback URL (the one change a cluster with a Service would not need),
 * and this returns once the API server is calling it.
 */
export async function runInstalledWebhook(
  cluster: ClusterInfo,
  env: Record<string, string> = {},
): Promise<WebhookProcess> {
  const port = await freePort();
  const kubeconfig = await serviceAccountKubeconfig(cluster, WEBHOOK_NAMESPACE, WEBHOOK_SERVICE_ACCOUNT);
  const certs = await mkdtemp(join(tmpdir(), 'webhook-certs-'));
  await pointAt(cluster, `https://127.0.0.1:${port}/mutate`);
  const webhook = await startWebhook(port, {
    KUBECONFIG: kubeconfig,
    CERT_MODE: 'self-managed',
    WEBHOOK_NAMESPACE,
    CERT_EXTRA_SANS: '127.0.0.1',
    TLS_CERT_FILE: join(certs, 'tls.crt'),
    TLS_KEY_FILE: join(certs, 'tls.key'),
    AGENT_IMAGE: 'ghcr.io/ambient-code/ambient-session-storage:0.1.0',
    // The agent runs in the e2e with exactly the pod's env: a short interval keeps it quick.
    SYNC_INTERVAL: '2',
    SHUTDOWN_DELAY_SECONDS: '0',
    ...env,
  });
  try {
    await waitUntilEffective(cluster);
  } catch (error) {
    await webhook.stop();
    throw new Error(`${(error as Error).message}\nwebhook output:\n${webhook.output()}`);
  }
  return webhook;
}

// The installed configuration re-applied with a loopback URL in place of the Service, so
// kubectl's record of what was applied stays true and a later `apply -k manifests/`
// switches it back cleanly.
async function pointAt(cluster: ClusterInfo, url: string): Promise<void> {
  const rendered = parseAllDocuments(await kubectlOk(cluster, ['kustomize', 'manifests/'])).map(
    (doc) => doc.toJS() as { kind: string; webhooks?: Array<{ clientConfig: Record<string, unknown> }> },
  );
  const configuration = rendered.find((doc) => doc.kind === 'MutatingWebhookConfiguration');
  if (!configuration?.webhooks) throw new Error('manifests/ renders no MutatingWebhookConfiguration');
  for (const webhook of configuration.webhooks) webhook.clientConfig = { url };
  await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(configuration));
}

/** Polls with a server-side dry-run of a session pod until our webhook has mutated it. */
async function waitUntilEffective(cluster: ClusterInfo): Promise<void> {
  // Replicas started together may race to create it: a conflict here is retried below.
  let namespaceReady = false;
  const marker = toYaml({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'marker', namespace: MARKER_NAMESPACE, labels: { 'agentic-session': 'marker' } },
    spec: {
      automountServiceAccountToken: false,
      containers: [{ name: 'c', image: 'busybox' }],
      volumes: [{ name: 'workspace', persistentVolumeClaim: { claimName: 'x' } }],
    },
  });
  await waitUntil(
    'the webhook to be called by the API server',
    async () => {
      if (!namespaceReady) {
        await createNamespace(cluster, MARKER_NAMESPACE, { 'ambient-code.io/session-storage': 'enabled' });
        namespaceReady = true;
      }
      const result = await kubectl(cluster, ['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: marker });
      return result.code === 0 && result.stdout.includes('ambient-code.io/session-storage-status') ? true : undefined;
    },
    30_000,
    200,
  );
}
