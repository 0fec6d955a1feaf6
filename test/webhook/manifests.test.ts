import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/webhook/config/config.js';

const manifest = (name: string) => parse(readFileSync(new URL(`../../manifests/base/${name}`, import.meta.url), 'utf8'));

// The NetworkPolicy names ports by number: if the Deployment or the defaults move a port,
// the policy must move with it or the API server (or Prometheus) is cut off.
describe('the NetworkPolicy matches what the webhook listens on', () => {
  const policy = manifest('networkpolicy.yaml');
  const deployment = manifest('deployment.yaml');
  const ports = Object.fromEntries(
    (deployment.spec.template.spec.containers[0].ports as { name: string; containerPort: number }[]).map((p) => [p.name, p.containerPort]),
  );
  const defaults = loadConfig({}).server;
  const [admission, metrics] = policy.spec.ingress as { from?: unknown[]; ports: { port: number }[] }[];

  it('selects the webhook pods and restricts ingress only', () => {
    expect(policy.spec.podSelector).toEqual({ matchLabels: deployment.spec.selector.matchLabels });
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    expect(manifest('kustomization.yaml').resources).toContain('networkpolicy.yaml');
  });

  it('opens the admission port to every source, and nothing else to every source', () => {
    expect(admission).toEqual({ ports: [{ protocol: 'TCP', port: ports.https }] });
    expect(ports.https).toBe(defaults.port);
  });

  it('opens the metrics port only to namespaces labelled for monitoring', () => {
    expect(metrics).toEqual({
      from: [{ namespaceSelector: { matchLabels: { 'ambient-code.io/monitoring': 'enabled' } } }],
      ports: [{ protocol: 'TCP', port: ports.metrics }],
    });
    expect(ports.metrics).toBe(defaults.metricsPort);
    expect(policy.spec.ingress).toHaveLength(2);
  });
});
