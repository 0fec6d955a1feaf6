import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { createLogger } from '../../src/shared/logger.js';
import { generateServingCertificates } from '../../src/webhook/ca/certs.js';
import { NO_CLAIMS } from '../../src/webhook/lookups/claim-source.js';
import { createMetrics } from '../../src/webhook/server/metrics.js';
import { ManifestSecretSource } from '../../src/webhook/lookups/secret-source.js';
import { startWebhookServer } from '../../src/webhook/server/server.js';
import { defaultConfig } from '../webhook/fixtures.js';
import { helmTemplate } from '../support/helm.js';

// Every value the chart documents changes what it renders, and a value it does not know
// (or of the wrong type) is refused instead of being ignored.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

type Obj = { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, any>;

function objects(yaml: string): Map<string, Obj> {
  const map = new Map<string, Obj>();
  for (const doc of parseAllDocuments(yaml)) {
    const object = doc.toJS() as Obj | null;
    if (object) map.set(`${object.kind}/${object.metadata.name}`, object);
  }
  return map;
}

async function render(...sets: string[]): Promise<Map<string, Obj>> {
  return objects(await helmTemplate(['--namespace', 'sessions-system', ...sets.flatMap((set) => ['--set', set])]));
}

const deployment = (rendered: Map<string, Obj>) => rendered.get('Deployment/session-storage-webhook')!;
const podSpec = (rendered: Map<string, Obj>) => deployment(rendered).spec.template.spec;
const container = (rendered: Map<string, Obj>) => podSpec(rendered).containers[0];
const webhook = (rendered: Map<string, Obj>) => rendered.get('MutatingWebhookConfiguration/ambient-session-storage')!.webhooks[0];

async function refused(...sets: string[]): Promise<string> {
  const error = await helmTemplate(['--namespace', 'sessions-system', ...sets.flatMap((set) => ['--set', set])]).then(
    () => undefined,
    (failure: { stderr?: string }) => failure.stderr ?? String(failure),
  );
  expect(error, `helm template ${sets.join(' ')} rendered`).toBeDefined();
  return error!;
}

describe('values.schema.json', () => {
  it.each([
    ['failurePolicy=Ignore', /additional properties 'failurePolicy' not allowed|failurePolicy/],
    ['replicas=two', /replicas/],
    ['webhook.failurePolicy=Sometimes', /failurePolicy/],
    ['certificates.mode=vault', /mode/],
    ['image.pullPolicy=Sometimes', /pullPolicy/],
    ['webhook.timeoutSeconds=60', /timeoutSeconds/],
    ['serviceMonitor.enable=true', /enable/],
    ['uninstallHook.enabled=sometimes', /enabled/],
    ['gc.retention=a month', /retention/],
    ['gc.keep=1', /keep/],
  ])('refuses --set %s', async (set, message) => {
    expect(await refused(set)).toMatch(message);
  });
});

describe('chart values', () => {
  it('the retention CronJob: its schedule and retention, or none of its objects with gc.enabled=false', async () => {
    const rendered = await render('gc.schedule=0 1 * * 0', 'gc.retention=90d', 'gc.resources.limits.memory=1Gi', 'imagePullSecrets[0].name=mirror');
    const cronJob = rendered.get('CronJob/session-storage-gc')!;
    expect(cronJob.spec.schedule).toBe('0 1 * * 0');
    const pod = cronJob.spec.jobTemplate.spec.template.spec;
    expect(pod.containers[0].args).toEqual(['gc', '--yes', '--retention', '90d']);
    expect(pod.containers[0].resources.limits.memory).toBe('1Gi');
    expect(pod.imagePullSecrets).toEqual([{ name: 'mirror' }]);
    expect(rendered.get('ClusterRoleBinding/session-storage-gc')!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'session-storage-gc', namespace: 'sessions-system' }]);
    const off = await render('gc.enabled=false');
    expect([...off.keys()].filter((key) => key.endsWith('/session-storage-gc'))).toEqual([]);
  });

  it('renders without --kube-version, as helm template is usually run', async () => {
    const rendered = objects(await helmTemplate([], { kubeVersion: false }));
    expect(rendered.has('Deployment/session-storage-webhook')).toBe(true);
  });

  it('affinity, tolerations, nodeSelector, pod annotations and labels, pull secrets', async () => {
    const rendered = await render(
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool',
      'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists',
      'tolerations[0].key=dedicated',
      'tolerations[0].operator=Exists',
      'nodeSelector.pool=system',
      'podAnnotations.example\\.com/owner=platform',
      'podLabels.team=platform',
      'imagePullSecrets[0].name=my-registry',
    );
    const spec = podSpec(rendered);
    expect(spec.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'Exists' }] }] } },
    });
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists' }]);
    expect(spec.nodeSelector).toEqual({ pool: 'system' });
    expect(spec.imagePullSecrets).toEqual([{ name: 'my-registry' }]);
    const template = deployment(rendered).spec.template.metadata;
    expect(template.annotations['example.com/owner']).toBe('platform');
    expect(template.annotations['ambient-code.io/agent-image']).toBe(container(rendered).image);
    expect(template.labels).toEqual({ team: 'platform', 'app.kubernetes.io/name': 'session-storage-webhook' });
  });

  it('failurePolicy, timeout and extra namespace selector expressions reach the webhook configuration', async () => {
    const rendered = await render(
      'webhook.failurePolicy=Ignore',
      'webhook.timeoutSeconds=5',
      'webhook.namespaceSelectorExpressions[0].key=team',
      'webhook.namespaceSelectorExpressions[0].operator=In',
      'webhook.namespaceSelectorExpressions[0].values[0]=research',
    );
    expect(webhook(rendered)).toMatchObject({ failurePolicy: 'Ignore', timeoutSeconds: 5 });
    expect(webhook(rendered).namespaceSelector.matchExpressions).toEqual([
      { key: 'ambient-code.io/session-storage', operator: 'In', values: ['enabled'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'sessions-system'] },
      { key: 'team', operator: 'In', values: ['research'] },
    ]);
  });

  it('resources and replicas; the PodDisruptionBudget only when it can be satisfied', async () => {
    const one = await render('replicas=1', 'resources.limits.memory=512Mi');
    expect(deployment(one).spec.replicas).toBe(1);
    expect(container(one).resources.limits.memory).toBe('512Mi');
    expect(one.has('PodDisruptionBudget/session-storage-webhook')).toBe(false);
    const three = await render('replicas=3');
    expect(deployment(three).spec.replicas).toBe(3);
    expect(three.get('PodDisruptionBudget/session-storage-webhook')?.spec.minAvailable).toBe(1);
  });

  it('env replaces a variable the chart sets in place (no duplicate entry) and adds the others', async () => {
    const rendered = await render('env.NODE_OPTIONS=--max-old-space-size=200', 'env.WEBHOOK_NAMESPACE=elsewhere', 'env.SIDECAR_MODE=legacy', 'env.SYNC_INTERVAL=30');
    const env = container(rendered).env as Array<{ name: string; value?: string; valueFrom?: unknown }>;
    const names = env.map((entry) => entry.name);
    expect(new Set(names).size).toBe(names.length);
    expect(env.find((entry) => entry.name === 'NODE_OPTIONS')).toEqual({ name: 'NODE_OPTIONS', value: '--max-old-space-size=200' });
    expect(env.find((entry) => entry.name === 'WEBHOOK_NAMESPACE')).toEqual({ name: 'WEBHOOK_NAMESPACE', value: 'elsewhere' });
    expect(env.find((entry) => entry.name === 'SIDECAR_MODE')?.value).toBe('legacy');
    expect(env.find((entry) => entry.name === 'SYNC_INTERVAL')?.value).toBe('30');
  });

  it('namespace.create installs into its own namespace, which the release namespace cannot be', async () => {
    const rendered = objects(await helmTemplate(['--namespace', 'default', '--set', 'namespace.create=true']));
    const namespace = rendered.get('Namespace/ambient-session-storage');
    expect(namespace?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const object of rendered.values()) {
      if (object.metadata.namespace !== undefined) expect(object.metadata.namespace, object.kind).toBe('ambient-session-storage');
    }
    const error = await helmTemplate(['--namespace', 'ambient-session-storage', '--set', 'namespace.create=true']).then(
      () => '',
      (failure: { stderr?: string }) => failure.stderr ?? '',
    );
    expect(error).toContain("cannot also be the release's namespace");
  });

  it('certificates.mode=cert-manager renders what the cert-manager overlay does', async () => {
    const chart = await render('certificates.mode=cert-manager');
    expect(chart.get('Issuer/session-storage-selfsigned')?.spec).toEqual({ selfSigned: {} });
    expect(chart.get('Certificate/session-storage-webhook')?.spec.dnsNames).toEqual([
      'session-storage-webhook.sessions-system.svc',
      'session-storage-webhook.sessions-system.svc.cluster.local',
    ]);
    expect(chart.get('MutatingWebhookConfiguration/ambient-session-storage')?.metadata.annotations).toEqual({
      'cert-manager.io/inject-ca-from': 'sessions-system/session-storage-webhook',
    });
    expect(container(chart).env.find((entry: { name: string }) => entry.name === 'CERT_MODE').value).toBe('files');
    expect(podSpec(chart).volumes[0]).toEqual({ name: 'certs', secret: { secretName: 'session-storage-webhook-tls' } });
    expect(chart.has('Role/session-storage-webhook-ca')).toBe(false);
    const rules = chart.get('ClusterRole/session-storage-webhook')!.rules as Array<{ resources: string[] }>;
    expect(rules.flatMap((rule) => rule.resources)).not.toContain('mutatingwebhookconfigurations');

    const overlay = objects((await run('kubectl', ['kustomize', path.join(ROOT, 'manifests/overlays/cert-manager')])).stdout);
    const inOverlay = (key: string) => overlay.get(key)!;
    expect(chart.get('Certificate/session-storage-webhook')?.spec.privateKey).toEqual(inOverlay('Certificate/session-storage-webhook').spec.privateKey);
    expect(rules).toEqual(inOverlay('ClusterRole/session-storage-webhook').rules);
  });

  it('certificates.mode=secret mounts an existing Secret and publishes the given caBundle', async () => {
    const chart = await render('certificates.mode=secret', 'certificates.secretName=my-tls', 'certificates.caBundle=Q0EK');
    expect(podSpec(chart).volumes[0]).toEqual({ name: 'certs', secret: { secretName: 'my-tls' } });
    expect(webhook(chart).clientConfig.caBundle).toBe('Q0EK');
    expect(chart.has('Role/session-storage-webhook-ca')).toBe(false);
    expect(await refused('certificates.mode=secret', 'certificates.secretName=my-tls')).toContain('certificates.caBundle');
  });

  it('the monitoring kit behind values, with the labels and namespace Prometheus selects', async () => {
    const off = await render();
    expect([...off.keys()].filter((key) => /Monitor|PrometheusRule|dashboard/.test(key))).toEqual([]);
    const on = await render(
      'serviceMonitor.enabled=true',
      'podMonitor.enabled=true',
      'prometheusRule.enabled=true',
      'dashboard.enabled=true',
      'monitoring.namespace=monitoring',
      'monitoring.labels.release=kube-prometheus-stack',
    );
    for (const key of ['ServiceMonitor/session-storage-webhook', 'PodMonitor/session-storage-sync', 'PrometheusRule/session-storage']) {
      expect(on.get(key)?.metadata.namespace, key).toBe('monitoring');
      expect(on.get(key)?.metadata.labels?.release, key).toBe('kube-prometheus-stack');
    }
    expect(on.get('ServiceMonitor/session-storage-webhook')?.spec.namespaceSelector).toEqual({ matchNames: ['sessions-system'] });
    // The same rules and dashboard as manifests/monitoring: one tested source.
    const kit = parse(readFileSync(path.join(ROOT, 'manifests/monitoring/prometheusrule.yaml'), 'utf8')) as { spec: unknown };
    expect(on.get('PrometheusRule/session-storage')?.spec).toEqual(kit.spec);
    expect(on.get('ConfigMap/session-storage-dashboard')?.data['grafana-dashboard.json']).toBe(
      readFileSync(path.join(ROOT, 'manifests/monitoring/grafana-dashboard.json'), 'utf8').trimEnd(),
    );
  });
});

describe('helm uninstall', () => {
  it('a pre-delete hook removes the webhook configuration before anything else goes, with rights on that object only', async () => {
    const rendered = await render('nodeSelector.pool=system', 'imagePullSecrets[0].name=mirror');
    const hooks = [...rendered.values()].filter((object) => object.metadata.annotations?.['helm.sh/hook'] === 'pre-delete');
    expect(hooks.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual([
      'ClusterRole/session-storage-uninstall',
      'ClusterRoleBinding/session-storage-uninstall',
      'Job/session-storage-uninstall',
      'ServiceAccount/session-storage-uninstall',
    ]);
    const weight = (object: Obj) => Number(object.metadata.annotations?.['helm.sh/hook-weight']);
    const job = rendered.get('Job/session-storage-uninstall')!;
    for (const object of hooks) if (object !== job) expect(weight(object), object.kind).toBeLessThan(weight(job));
    expect(rendered.get('ClusterRole/session-storage-uninstall')!.rules).toEqual([
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['ambient-session-storage'], verbs: ['delete'] },
    ]);
    const pod = job.spec.template.spec;
    expect(pod.serviceAccountName).toBe('session-storage-uninstall');
    expect(rendered.get('ServiceAccount/session-storage-uninstall')!.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0].securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.containers[0].image).toBe(deployment(rendered).spec.template.spec.containers[0].image);
    expect(pod.nodeSelector).toEqual({ pool: 'system' });
    expect(pod.imagePullSecrets).toEqual([{ name: 'mirror' }]);
  });

  it('uninstallHook.enabled=false renders no hook', async () => {
    const rendered = await render('uninstallHook.enabled=false');
    expect([...rendered.keys()].filter((key) => key.includes('uninstall'))).toEqual([]);
  });
});

describe('helm test', () => {
  it("the test pod's script gets an answer from a running webhook, and fails against nothing", async () => {
    const rendered = objects(await helmTemplate(['--namespace', 'sessions-system']));
    const pod = rendered.get('Pod/session-storage-test-admission')!;
    expect(pod.metadata.annotations?.['helm.sh/hook']).toBe('test');
    const testContainer = pod.spec.containers[0] as { command: string[]; args: string[]; env: Array<{ name: string; value: string }> };
    expect(testContainer.env).toEqual([{ name: 'WEBHOOK_URL', value: 'https://session-storage-webhook.sessions-system.svc:443/mutate' }]);
    const script = testContainer.args[0]!;
    expect(testContainer.command).toEqual(['/nodejs/bin/node', '-e']);

    const dir = mkdtempSync(path.join(tmpdir(), 'helm-test-'));
    const material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    mkdirSync(path.join(dir, 'certs'));
    writeFileSync(path.join(dir, 'certs/tls.key'), material.key);
    writeFileSync(path.join(dir, 'certs/tls.crt'), material.cert);
    const config = defaultConfig({
      ADDRESS: '127.0.0.1',
      PORT: '0',
      METRICS_PORT: '0',
      TLS_CERT_FILE: path.join(dir, 'certs/tls.crt'),
      TLS_KEY_FILE: path.join(dir, 'certs/tls.key'),
      SHUTDOWN_DELAY_SECONDS: '0',
    });
    const webhookServer = await startWebhookServer({
      server: config.server,
      deps: { config: config.mutation, policy: config.policy, secrets: new ManifestSecretSource([]), claims: NO_CLAIMS },
      metrics: createMetrics(),
      logger: createLogger('webhook', new Writable({ write: (_c, _e, done) => done() })),
    });
    try {
      const answered = await run(process.execPath, ['-e', script], { env: { WEBHOOK_URL: `https://127.0.0.1:${webhookServer.port}/mutate` } });
      expect(answered.stdout).toContain('admission answered: allowed');
      const nothing = await run(process.execPath, ['-e', script], { env: { WEBHOOK_URL: 'https://127.0.0.1:1/mutate' } }).then(
        () => 0,
        (failure: { code?: number }) => failure.code,
      );
      expect(nothing).toBe(1);
    } finally {
      await webhookServer.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
