import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentImageOf } from '../support/agent-image.js';
import { CHART, HELM, helmTemplate, KUBE_VERSION } from '../support/helm.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KUBECTL = existsSync(path.join(ROOT, '.cache/bin/kubectl')) ? path.join(ROOT, '.cache/bin/kubectl') : 'kubectl';
const run = promisify(execFile);

type Doc = { kind: string; metadata: { name: string; labels?: Record<string, string> } } & Record<string, unknown>;

// Helm's own bookkeeping labels are the only difference allowed.
const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/version', 'helm.sh/chart'];

function byObject(yaml: string): Map<string, Doc> {
  const objects = new Map<string, Doc>();
  for (const doc of parseAllDocuments(yaml)) {
    const object = doc.toJS() as (Doc & { metadata: { annotations?: Record<string, string> } }) | null;
    // Hooks (`helm test`'s pod, the uninstall Job) run around an install; they are no part of it.
    if (!object || object.metadata.annotations?.['helm.sh/hook']) continue;
    for (const label of HELM_LABELS) delete object.metadata.labels?.[label];
    objects.set(`${object.kind}/${object.metadata.name}`, object);
  }
  return objects;
}

describe('the Helm chart', () => {
  it('passes helm lint --strict', async () => {
    expect(existsSync(HELM), `${HELM} is missing: run npm run deps`).toBe(true);
    const { stdout } = await run(HELM, ['lint', '--strict', '--kube-version', KUBE_VERSION, CHART]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('renders exactly the objects of the kustomize base, so the two installs cannot drift', async () => {
    // The release lives elsewhere (Helm stores it before creating the namespace); `helm test`'s
    // pod is no part of the install.
    const chart = byObject(await helmTemplate(['--namespace', 'default', '--set', 'namespace.create=true', '--skip-tests']));
    const { stdout } = await run(KUBECTL, ['kustomize', path.join(ROOT, 'manifests/base')]);
    const base = byObject(stdout);
    expect([...chart.keys()].sort()).toEqual([...base.keys()].sort());
    for (const [key, object] of base) expect(chart.get(key), key).toEqual(object);
  });

  it('moves the agent image with the webhook image and takes extra settings', async () => {
    const rendered = await helmTemplate([
      '--namespace', 'sessions-system',
      '--set', 'image.repository=registry.example.com/mirror/session-storage',
      '--set', 'image.tag=9.9.9',
      '--set', 'env.SIDECAR_MODE=legacy',
    ]);
    const deployment = byObject(rendered).get('Deployment/session-storage-webhook') as unknown as {
      metadata: { namespace: string };
      spec: { template: { spec: { containers: Array<{ image: string; env: Array<{ name: string; value?: string }> }> } } };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    expect(deployment.metadata.namespace).toBe('sessions-system');
    expect(container.image).toBe('registry.example.com/mirror/session-storage:9.9.9');
    expect(agentImageOf(deployment)).toBe(container.image);
    expect(container.env.find((env) => env.name === 'SIDECAR_MODE')?.value).toBe('legacy');
    const webhook = byObject(rendered).get('MutatingWebhookConfiguration/ambient-session-storage') as unknown as {
      webhooks: Array<{ clientConfig: { service: { namespace: string } } }>;
    };
    expect(webhook.webhooks[0]?.clientConfig.service.namespace).toBe('sessions-system');
  });
});
