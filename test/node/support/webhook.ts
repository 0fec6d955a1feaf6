import type { V1Pod } from '@kubernetes/client-node';
import { kubectlOk, toYaml, waitUntil } from '../../support/cluster-client.js';
import type { NodeTier } from './node-tier.js';

const NAMESPACE = 'ambient-session-storage';
const MARKER_NAMESPACE = 'node-webhook-marker';
/** What the tier's webhook injects: a fast sync cycle, so periodic syncs show within seconds. */
export const SYNC_INTERVAL_SECONDS = 3;
/**
 * And a liveness floor of 20 s instead of 5 min, so a sidecar that cannot save is restarted
 * within half a minute (scenario 4): the probe then runs every 2 s.
 */
export const UNHEALTHY_MIN_SECONDS = 20;

/**
 * The README's install, then two adaptations to this node, both on the Deployment's env:
 * - there is no kube-proxy (no iptables), so the in-cluster client cannot reach the API
 *   server's ClusterIP; KUBERNETES_SERVICE_HOST/PORT point it at the API server's address
 *   (the kubelet's service variables are overridden by a container's own env);
 * - SYNC_INTERVAL and SYNC_UNHEALTHY_MIN_SECONDS, so the scenarios see periodic syncs and
 *   liveness restarts in seconds.
 * The API server reaches the webhook the usual way, through the Service named in the
 * MutatingWebhookConfiguration: with --enable-aggregator-routing it dials an endpoint of the
 * Service (a pod IP on the node's bridge) instead of the ClusterIP, and checks the certificate
 * for the Service's DNS name, which the self-managed CA issued. Returns once a server-side
 * dry-run of a session pod comes back mutated.
 */
export async function installWebhook(node: NodeTier): Promise<void> {
  await kubectlOk(node, ['apply', '-f', 'manifests/base/namespace.yaml']);
  await kubectlOk(node, ['apply', '-k', 'manifests/']);
  const port = new URL(node.server).port;
  await kubectlOk(node, ['-n', NAMESPACE, 'set', 'env', 'deployment/session-storage-webhook',
    `KUBERNETES_SERVICE_HOST=${node.nodeIp}`, `KUBERNETES_SERVICE_PORT=${port}`, `SYNC_INTERVAL=${SYNC_INTERVAL_SECONDS}`,
    `SYNC_UNHEALTHY_MIN_SECONDS=${UNHEALTHY_MIN_SECONDS}`]);
  await kubectlOk(node, ['-n', NAMESPACE, 'rollout', 'status', 'deployment/session-storage-webhook', '--timeout=180s']);
  await kubectlOk(node, ['apply', '-f', '-'], toYaml({
    apiVersion: 'v1', kind: 'Namespace', metadata: { name: MARKER_NAMESPACE, labels: { 'ambient-code.io/session-storage': 'enabled' } },
  }));
  // A minimal session pod: its namespace has no secret, so the webhook answers with the
  // ephemeral mutation and writes its status annotation.
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'marker', namespace: MARKER_NAMESPACE, labels: { 'agentic-session': 'marker' } },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'runner', image: node.image }] },
  };
  await waitUntil('the API server calling the webhook pods', async () => {
    const out = await kubectlOk(node, ['create', '--dry-run=server', '-o', 'json', '-f', '-'], toYaml(pod));
    const stored = JSON.parse(out) as V1Pod;
    return stored.metadata?.annotations?.['ambient-code.io/session-storage-status'] ? true : undefined;
  }, 60_000, 500);
}
