import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isSignedBy, splitPemBundle } from '../../src/webhook/ca/pki.js';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeCaSecretStore, KubeWebhookConfigStore } from '../../src/webhook/ca/stores.js';
import { adminApi, kubectl, kubectlOk, toYaml, type WebhookProcess } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook, WEBHOOK_NAMESPACE } from '../support/cluster-webhook.js';

const cluster = inject('cluster');
const api = adminApi(cluster);
const CA_SECRET = 'session-storage-webhook-ca';

function servingCertificate(url: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      done(new X509Certificate(raw).toString());
    });
    socket.on('error', fail);
  });
}

async function caSecret(): Promise<Record<string, string>> {
  const secret = await api.core.readNamespacedSecret({ name: CA_SECRET, namespace: WEBHOOK_NAMESPACE });
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

async function publishedBundle(): Promise<string[]> {
  const config = await api.admission.readMutatingWebhookConfiguration({ name: 'ambient-session-storage' });
  return splitPemBundle(Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
}

const marker = JSON.stringify({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'rotation-marker', namespace: 'e2e-webhook-marker', labels: { 'agentic-session': 'marker' } },
  spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }] },
});

describe('self-managed certificates against the real API server', () => {
  const replicas: WebhookProcess[] = [];

  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    // Start from nothing, as on a first install.
    await kubectl(cluster, ['delete', 'secret', CA_SECRET, '-n', WEBHOOK_NAMESPACE, '--ignore-not-found']);
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.stop();
    // The 24-second CA must not outlive this file: the next file's webhook would reuse it
    // and get a serving certificate capped at its last second.
    await kubectl(cluster, ['delete', 'secret', CA_SECRET, '-n', WEBHOOK_NAMESPACE, '--ignore-not-found']);
    await unlock?.();
  });

  it('two replicas starting together share one CA and rotate it without a failed admission', async () => {
    // Lifetimes in seconds so a whole rotation fits in the test: CA 24 s (rotated at
    // 16 s), serving certificates 8 s, checks every second, 2 s propagation delay.
    const env = {
      CA_VALIDITY_HOURS: String(24 / 3600),
      CERT_VALIDITY_HOURS: String(8 / 3600),
      CERT_CHECK_INTERVAL_SECONDS: '1',
      CA_PROPAGATION_SECONDS: '2',
    };
    const [first, second] = await Promise.all([runInstalledWebhook(cluster, env), runInstalledWebhook(cluster, env)]);
    replicas.push(first!, second!);
    const initial = await caSecret();
    const firstCa = initial['ca.crt'] ?? '';
    for (const replica of replicas) expect(isSignedBy(await servingCertificate(replica.url), firstCa)).toBe(true);
    expect((await publishedBundle()).map((p) => p.trim())).toContain(firstCa.trim());

    // Both replicas keep renewing; the API server keeps calling whichever one the
    // configuration points at. Not one admission may fail while the CA changes under it.
    const failures: string[] = [];
    let rotated: Record<string, string> | undefined;
    let bothTrusted = false;
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline) {
      const result = await kubectl(cluster, ['create', '--dry-run=server', '-o', 'name', '-f', '-'], { input: marker });
      if (result.code !== 0) failures.push(result.stderr);
      const now = await caSecret();
      if (now['ca.crt'] !== firstCa) {
        rotated = now;
        const bundle = (await publishedBundle()).map((p) => p.trim());
        if (bundle.includes(firstCa.trim()) && bundle.includes((now['ca.crt'] ?? '').trim())) bothTrusted = true;
        const serving = await Promise.all(replicas.map((r) => servingCertificate(r.url)));
        if (bothTrusted && serving.every((pem) => isSignedBy(pem, now['ca.crt'] ?? ''))) break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(failures).toEqual([]);
    expect(rotated?.['previous-ca.crt']).toBe(firstCa);
    expect(bothTrusted).toBe(true);
    for (const replica of replicas) {
      expect(isSignedBy(await servingCertificate(replica.url), rotated?.['ca.crt'] ?? '')).toBe(true);
    }
  });

  it('the API server refuses the stores\' writes based on a stale read, which is what keeps replicas to one writer', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster.kubeconfigPath);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'e2e-store-probe' },
      webhooks: ['a', 'b'].map((n) => ({
        name: `${n}.probe.ambient-code.io`,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        clientConfig: { url: 'https://127.0.0.1:1/never' },
        namespaceSelector: { matchLabels: { 'e2e-probe': 'never' } },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
      })),
    }));
    const webhooks = new KubeWebhookConfigStore(kubeConfig, 'e2e-store-probe');
    const read = await webhooks.read();
    expect(await webhooks.writeCaBundle(Buffer.from('first').toString('base64'), read!)).toBe(true);
    expect(await webhooks.writeCaBundle(Buffer.from('stale').toString('base64'), read!)).toBe(false);
    expect((await webhooks.read())?.bundles).toEqual(['first', 'first'].map((b) => Buffer.from(b).toString('base64')));

    const secrets = new KubeCaSecretStore(kubeConfig, WEBHOOK_NAMESPACE, 'e2e-store-probe');
    expect(await secrets.create({ 'ca.crt': 'one' })).toBe(true);
    expect(await secrets.create({ 'ca.crt': 'two' })).toBe(false);
    const stored = await secrets.read();
    expect(await secrets.replace({ 'ca.crt': 'three' }, stored!.resourceVersion)).toBe(true);
    expect(await secrets.replace({ 'ca.crt': 'four' }, stored!.resourceVersion)).toBe(false);
    expect((await secrets.read())?.data).toEqual({ 'ca.crt': 'three' });
  });
});
