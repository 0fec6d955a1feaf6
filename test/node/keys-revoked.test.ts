import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import aws4 from 'aws4';
import { expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { unhealthyAfterSeconds } from '../../src/shared/liveness.js';
import { kubectlOk, ROOT, waitUntil } from '../support/cluster-client.js';
import { addUser } from '../support/minio.js';
import {
  createPod,
  createProject,
  logs,
  objectHashes,
  podEvents,
  readPod,
  runnerPod,
  RUNNER_PRELUDE,
  running,
  sha256,
  waitForPod,
} from './support/node-tier.js';

const node = inject('node');
const NAMESPACE = 'node-keys';
const SESSION = 'sess-keys';
const POD = `${SESSION}-runner`;

// Disables (or enables again) a MinIO user through MinIO's admin API (SigV4-signed, no
// body): its keys stop working at once, as revoked keys do.
async function setUserStatus(accessKey: string, status: 'enabled' | 'disabled'): Promise<void> {
  const url = new URL(node.minio.endpoint);
  const request = aws4.sign(
    { host: url.host, path: `/minio/admin/v3/set-user-status?accessKey=${accessKey}&status=${status}`, method: 'PUT', service: 's3', region: node.minio.region },
    { accessKeyId: node.minio.accessKey, secretAccessKey: node.minio.secretKey },
  );
  const response = await fetch(`${url.origin}${request.path}`, { method: 'PUT', headers: request.headers as Record<string, string> });
  expect(response.status, await response.text()).toBe(200);
}

/** The sidecar's own series, as Prometheus would scrape them from the pod. */
async function scrape(podIp: string): Promise<Map<string, { labels: string; value: number }>> {
  const text = await (await fetch(`http://${podIp}:9464/metrics`)).text();
  const series = new Map<string, { labels: string; value: number }>();
  for (const line of text.split('\n')) {
    const match = /^(session_storage_sync_\w+?)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match) series.set(match[1]!, { labels: match[2] ?? '{}', value: Number(match[3]) });
  }
  return series;
}

const labelsOf = (labels: string): Record<string, string> =>
  Object.fromEntries([...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k!, v!]));

/** The liveness threshold and probe the webhook gave the pod's state-sync. */
function livenessOf(pod: V1Pod): { thresholdSeconds: number; periodSeconds: number; failureThreshold: number } {
  const sync = pod.spec!.initContainers!.find((c) => c.name === 'state-sync')!;
  const env = Object.fromEntries((sync.env ?? []).map((e) => [e.name, e.value]));
  return {
    thresholdSeconds: unhealthyAfterSeconds(Number(env.SYNC_INTERVAL), Number(env.SYNC_UNHEALTHY_MIN_SECONDS)),
    periodSeconds: sync.livenessProbe!.periodSeconds!,
    failureThreshold: sync.livenessProbe!.failureThreshold!,
  };
}

const WHILE_REVOKED = 'written while nothing could be saved\n'.repeat(100);

// Scenario 4 of issue 22: the project's S3 keys are revoked while a session pod runs. The
// README documents what follows: state-sync keeps the local data and retries; once no cycle
// has succeeded for 5 intervals (at least SYNC_UNHEALTHY_MIN_SECONDS: the tier's webhook
// sets 20 s instead of 5 min, and its probe runs every 2 s instead of 30) its /healthz fails,
// three failed liveness probes restart it, and the pod's events and restart count show it;
// the work done meanwhile is uploaded once the keys work again; SessionStateNotSaved fires
// on its series.
it('revoked keys: the liveness probe restarts state-sync, events show it, nothing is lost, the alert fires', { timeout: 300_000 }, async () => {
  const bucket = `${NAMESPACE}`;
  const user = await addUser(node.minio, {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
    ],
  });
  await createProject(node, NAMESPACE, { credentials: user });
  await createPod(node, await runnerPod(node, NAMESPACE, POD, SESSION, `${RUNNER_PRELUDE}
    let n = 0;
    setInterval(() => write('/workspace/artifacts/progress.txt', String(n++)), 1000);
  `));
  const started = await waitForPod(node, NAMESPACE, POD, 'the runner running', running('ambient-code-runner'));
  const liveness = livenessOf(started);
  expect(liveness).toEqual({ thresholdSeconds: 20, periodSeconds: 2, failureThreshold: 3 });
  await waitUntil('a first successful sync', async () =>
    (await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`)).has('artifacts/progress.txt') ? true : undefined, 60_000, 1_000);

  await setUserStatus(user.accessKey, 'disabled');
  const revoked = Date.now();
  // Work the user does while nothing can be saved: it stays in the pod meanwhile.
  await kubectlOk(node, ['-n', NAMESPACE, 'exec', POD, '-c', 'ambient-code-runner', '--', '/nodejs/bin/node', '-e',
    `require('node:fs').writeFileSync('/workspace/artifacts/while-revoked.txt', ${JSON.stringify(WHILE_REVOKED)})`]);
  // The sidecar's own series a few failed cycles after the revocation (more than three
  // intervals, before the threshold), as Prometheus would scrape them from the pod:
  // SessionStateNotSaved is evaluated on these below.
  await new Promise((r) => setTimeout(r, 11_000));
  const running1 = (await readPod(node, NAMESPACE, POD))!;
  const series = await scrape(running1.status!.podIP!);
  const scrapedAt = Date.now() / 1000;
  const lastSuccess = series.get('session_storage_sync_last_success_timestamp_seconds')!;
  const interval = series.get('session_storage_sync_interval_seconds')!;
  expect(lastSuccess.value).toBeLessThanOrEqual(revoked / 1000 + 1);
  expect(scrapedAt - lastSuccess.value).toBeGreaterThan(3 * interval.value);

  const restarted = await waitForPod(node, NAMESPACE, POD, 'state-sync restarted by its liveness probe', (p) =>
    (p.status?.initContainerStatuses?.find((s) => s.name === 'state-sync')?.restartCount ?? 0) >= 1, 120_000);
  const afterSeconds = Date.now() / 1000 - lastSuccess.value;
  // Not before the threshold has passed since the last good cycle and the probe has failed
  // three times in a row (1 s for the ticker), and not long after.
  const { thresholdSeconds, periodSeconds, failureThreshold } = liveness;
  expect(afterSeconds).toBeGreaterThan(thresholdSeconds + (failureThreshold - 1) * periodSeconds - 1);
  expect(afterSeconds).toBeLessThan(thresholdSeconds + failureThreshold * periodSeconds + 15);
  expect(restarted.status!.phase).toBe('Running');
  expect(restarted.status!.containerStatuses!.find((s) => s.name === 'ambient-code-runner')!.restartCount).toBe(0);
  const events = await podEvents(node, NAMESPACE, POD);
  const messages = events.map((e) => `${e.reason}: ${e.message}`);
  expect(messages.some((m) => /^Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 503/.test(m)), messages.join('\n')).toBe(true);
  // A native sidecar is an init container to the kubelet: "Init container state-sync failed
  // liveness probe" (Killing), after the probe failures (Unhealthy).
  expect(messages.some((m) => /^Killing: Init container state-sync failed liveness probe/.test(m)), messages.join('\n')).toBe(true);
  // The restarted sidecar's predecessor said why: the keys, not the network.
  expect(await logs(node, NAMESPACE, POD, 'state-sync', true)).toMatch(/access denied/i);

  // Nothing is lost: once the keys work again, the restarted sidecar uploads what was
  // written while they did not.
  await setUserStatus(user.accessKey, 'enabled');
  await waitUntil('the work done while the keys were revoked uploaded', async () =>
    (await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`)).get('artifacts/while-revoked.txt') === sha256(WHILE_REVOKED) ? true : undefined,
  90_000, 1_000);

  // SessionStateNotSaved in a promtool test whose clock puts the scrape at 10m, the series
  // held as the sidecar serves them.
  const target = `namespace="${NAMESPACE}", pod="${POD}"`;
  const withTarget = (labels: string) => (labels === '{}' ? `{${target}}` : labels.replace('{', `{${target}, `));
  const at = 600; // the scrape happens at promtool's 10m
  const rule = parse(await readFile(join(ROOT, 'manifests/monitoring/prometheusrule.yaml'), 'utf8')) as { spec: unknown };
  const dir = await mkdtemp(join(tmpdir(), 'node-rules-'));
  try {
    // What is asserted here is that the expression fires on the real series; the
    // annotations' text (durations computed from the series) is test/manifests/monitoring's.
    const spec = rule.spec as { groups: Array<{ rules: Array<{ annotations?: unknown }> }> };
    for (const group of spec.groups) for (const each of group.rules) delete each.annotations;
    await writeFile(join(dir, 'rules.yaml'), stringify(spec));
    await writeFile(join(dir, 'test.yaml'), stringify({
      rule_files: [join(dir, 'rules.yaml')],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: [
          { series: `session_storage_sync_last_success_timestamp_seconds${withTarget(lastSuccess.labels)}`, values: `${lastSuccess.value - scrapedAt + at}x20` },
          { series: `session_storage_sync_interval_seconds${withTarget(interval.labels)}`, values: `${interval.value}x20` },
        ],
        // The sidecar keeps serving the same last success while no cycle succeeds: pending at
        // the scrape, firing once the rule's `for: 5m` has passed.
        alert_rule_test: [
          { eval_time: '10m', alertname: 'SessionStateNotSaved', exp_alerts: [] },
          {
            eval_time: '16m',
            alertname: 'SessionStateNotSaved',
            exp_alerts: [{ exp_labels: { severity: 'warning', namespace: NAMESPACE, pod: POD, ...labelsOf(lastSuccess.labels) } }],
          },
        ],
      }],
    }));
    const { stdout } = await promisify(execFile)(join(ROOT, '.cache/bin/promtool'), ['test', 'rules', join(dir, 'test.yaml')]).catch(
      (error: { stdout?: string; stderr?: string }) => { throw new Error(`promtool: ${error.stdout ?? ''}${error.stderr ?? ''}`); });
    expect(stdout).toContain('SUCCESS');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
