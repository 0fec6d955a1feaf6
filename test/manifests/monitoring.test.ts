import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { SyncMetrics } from '../../src/agent/commands/metrics.js';
import { createMetrics } from '../../src/webhook/server/metrics.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROMTOOL = path.join(ROOT, '.cache/bin/promtool');
const MONITORING = path.join(ROOT, 'manifests/monitoring');

async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  expect(existsSync(PROMTOOL), `${PROMTOOL} is missing: run npm run deps`).toBe(true);
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, args, { cwd: ROOT }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe('the PrometheusRule', () => {
  let dir: string;
  let rulesFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rules-'));
    // promtool reads plain rule groups: the spec of the PrometheusRule object.
    const rule = parse(readFileSync(path.join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: unknown };
    rulesFile = path.join(dir, 'rules.yaml');
    await writeFile(rulesFile, stringify(rule.spec));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes promtool check rules', async () => {
    const result = await promtool(['check', 'rules', rulesFile]);
    expect(result.output).toContain('SUCCESS');
    expect(result.code, result.output).toBe(0);
  });

  it('fires each alert on trouble and stays quiet when healthy (promtool test rules)', async () => {
    const tests = parse(readFileSync(path.join(MONITORING, 'rules-test.yaml'), 'utf8')) as Record<string, unknown>;
    const testFile = path.join(dir, 'rules-test.yaml');
    await writeFile(testFile, stringify({ rule_files: [rulesFile], ...tests }));
    const result = await promtool(['test', 'rules', testFile]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  it('every alert has a test', () => {
    const rule = parse(readFileSync(path.join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as {
      spec: { groups: Array<{ rules: Array<{ alert?: string }> }> };
    };
    const alerts = rule.spec.groups.flatMap((group) => group.rules.map((r) => r.alert)).filter(Boolean);
    const tested = readFileSync(path.join(MONITORING, 'rules-test.yaml'), 'utf8');
    for (const alert of alerts) expect(tested).toContain(`alertname: ${alert}`);
  });
});

describe('our series', () => {
  async function exposition(): Promise<{ webhook: string; agent: string }> {
    const sync = new SyncMetrics({ session: 's1', intervalSeconds: 60, version: 'test', unhealthyAfterSeconds: 300 });
    sync.record({ ok: true, uploaded: 1, uploadedBytes: 10, deleted: 0, skipped: 0, durationSeconds: 0.1 });
    return { webhook: await createMetrics().registry.metrics(), agent: await sync.registry.metrics() };
  }

  it('pass promtool check metrics (names, help, types, units)', async () => {
    const { webhook, agent } = await exposition();
    // The Node.js process series come from prom-client's defaults; ours are what we name.
    const ours = (body: string) => `${body.split('\n').filter((line) => /^(# (HELP|TYPE) )?session_storage_/.test(line)).join('\n')}\n`;
    for (const body of [webhook, agent].map(ours)) {
      expect(body).toContain('# TYPE session_storage_');
      const result = await promtool(['check', 'metrics'], body);
      expect(result.output).toBe('');
      expect(result.code).toBe(0);
    }
  });

  it('include every session_storage_* series the alerts and the dashboard query', async () => {
    const { webhook, agent } = await exposition();
    const exported = `${webhook}\n${agent}`;
    const queried = ['prometheusrule.yaml', 'rules-test.yaml', 'grafana-dashboard.json'].flatMap((file) =>
      [...readFileSync(path.join(MONITORING, file), 'utf8').matchAll(/session_storage_[a-z_]+/g)].map((m) => m[0]),
    );
    expect(queried.length).toBeGreaterThan(10);
    for (const name of new Set(queried)) {
      const family = name.replace(/_(bucket|count|sum)$/, '');
      expect(exported, name).toMatch(new RegExp(`^# TYPE ${family} `, 'm'));
    }
  });
});

describe('the monitoring kit (kubectl apply -k manifests/monitoring)', () => {
  it("carries kube-prometheus-stack's release label, and scrapes the webhook's namespace from wherever it is applied", async () => {
    const overlay = await mkdtemp(path.join(tmpdir(), 'monitoring-overlay-'));
    try {
      await writeFile(
        path.join(overlay, 'kustomization.yaml'),
        stringify({ resources: [path.relative(overlay, MONITORING)], namespace: 'monitoring', labels: [{ pairs: { release: 'prom' } }] }),
      );
      for (const [dir, release, namespace] of [[MONITORING, 'kube-prometheus-stack', 'ambient-session-storage'], [overlay, 'prom', 'monitoring']] as const) {
        const { stdout } = await promisify(execFile)('kubectl', ['kustomize', dir]);
        const objects = parseAllDocuments(stdout).map((doc) => doc.toJS() as { kind: string; metadata: { namespace?: string; labels?: Record<string, string> }; spec?: Record<string, unknown> });
        for (const object of objects.filter((o) => ['ServiceMonitor', 'PodMonitor', 'PrometheusRule'].includes(o.kind))) {
          expect(object.metadata.labels?.release, object.kind).toBe(release);
          expect(object.metadata.namespace, object.kind).toBe(namespace);
        }
        expect(objects.find((o) => o.kind === 'ServiceMonitor')?.spec?.namespaceSelector).toEqual({ matchNames: ['ambient-session-storage'] });
      }
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });
});

