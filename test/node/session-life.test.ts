import { randomBytes } from 'node:crypto';
import { describe as suite, expect, inject, it } from 'vitest';
import { kubectlOk } from '../support/cluster-client.js';
import {
  createPod,
  createProject,
  logs,
  objectHashes,
  putObject,
  reportOf,
  runnerPod,
  RUNNER_PRELUDE,
  running,
  sha256,
  waitForPod,
  waitForPodGone,
} from './support/node-tier.js';
import { waitUntil } from '../support/cluster-client.js';

const node = inject('node');
const NAMESPACE = 'node-life';
const SESSION = 'sess-life';
const PREFIX = `${NAMESPACE}/${SESSION}/`;

// Scenario 1 of issue 22: a session's whole life in real pods. The platform's PVC-era
// runner pod is mutated by the webhook running in the cluster, init-hydrate restores what
// the bucket holds, the runner (uid 1001, fsGroup 1001) works on it, state-sync uploads it
// periodically, `kubectl delete pod` runs the final sync inside the grace period, and a
// new pod of the session restores the same bytes.
suite("a session's whole life in real pods", () => {
  it('restores, syncs periodically and on delete, and restores the same bytes in the next pod', async () => {
    const bucket = await createProject(node, NAMESPACE);
    // State the platform's rclone scripts left: plain objects and their metadata.json.
    const seed = { history: '{"turn":0,"role":"user"}\n', note: 'seeded before the first pod\n' };
    await putObject(node, bucket, `${PREFIX}.claude/history.jsonl`, seed.history);
    await putObject(node, bucket, `${PREFIX}artifacts/seed.txt`, seed.note);
    await putObject(node, bucket, `${PREFIX}metadata.json`, JSON.stringify({
      lastSync: '2026-11-30T18:00:00+00:00', session: SESSION, namespace: NAMESPACE, pathsSynced: 2,
    }));

    const report = randomBytes(4096).toString('base64');
    const turn = '{"turn":1,"role":"assistant"}\n';
    const late = 'written by the runner on SIGTERM\n'.repeat(1000);
    const first = await createPod(node, await runnerPod(node, NAMESPACE, `${SESSION}-runner`, SESSION, `${RUNNER_PRELUDE}
      report('seen', { claude: hashes('/app/.claude'), artifacts: hashes('/workspace/artifacts') });
      appendFileSync('/app/.claude/history.jsonl', ${JSON.stringify(turn)});
      write('/workspace/artifacts/report.md', ${JSON.stringify(report)});
      write('/workspace/file-uploads/data.bin', randomBytes(3 * 1024 * 1024));
      report('wrote', { data: hashes('/workspace/file-uploads')['data.bin'] });
      onTerm(() => write('/workspace/artifacts/late.txt', ${JSON.stringify(late)}));
      forever();
    `));
    // The webhook in the cluster mutated it: EmptyDir for the PVC, the agent containers.
    expect(first.spec!.volumes!.find((v) => v.name === 'workspace')).toMatchObject({ emptyDir: {} });
    expect(first.spec!.initContainers!.map((c) => c.name)).toEqual(['init-hydrate', 'state-sync']);
    const grace = first.spec!.terminationGracePeriodSeconds!;
    expect(grace).toBeGreaterThan(60);

    await waitForPod(node, NAMESPACE, `${SESSION}-runner`, 'the runner running', running('ambient-code-runner'));
    const runnerLog = await waitUntil('the runner wrote its files', async () => {
      const log = await logs(node, NAMESPACE, `${SESSION}-runner`, 'ambient-code-runner');
      return log.includes('wrote ') ? log : undefined;
    }, 60_000, 500);
    // init-hydrate ran before the runner: the runner's first look saw the restored state.
    expect(reportOf(runnerLog, 'seen')).toEqual({
      claude: { 'history.jsonl': sha256(seed.history) },
      artifacts: { 'seed.txt': sha256(seed.note) },
    });
    const dataHash = reportOf<{ data: string }>(runnerLog, 'wrote').data;
    const hydrateLog = await logs(node, NAMESPACE, `${SESSION}-runner`, 'init-hydrate');
    expect(hydrateLog).toMatch(/Hydrate complete \(2 files restored/);

    // A periodic cycle, with the pod not terminating, uploads the runner's work.
    const expectedLive = {
      '.claude/history.jsonl': sha256(seed.history + turn),
      'artifacts/report.md': sha256(report),
      'file-uploads/data.bin': dataHash,
    };
    await waitUntil('a periodic sync of the runner\'s files', async () => {
      const objects = await objectHashes(node, bucket, PREFIX);
      return Object.entries(expectedLive).every(([k, v]) => objects.get(k) === v) ? true : undefined;
    }, 60_000, 1_000);
    expect((await objectHashes(node, bucket, PREFIX)).has('artifacts/late.txt')).toBe(false);
    expect(await logs(node, NAMESPACE, `${SESSION}-runner`, 'state-sync')).toMatch(/Sync complete \(\d+ paths synced\)/);

    // kubectl delete: the runner gets SIGTERM and writes late.txt; the native sidecar is
    // stopped only after it exited, and its final sync must land well inside the grace
    // period (a sidecar killed at the deadline would make the delete take the whole grace).
    const deleted = Date.now();
    await kubectlOk(node, ['-n', NAMESPACE, 'delete', 'pod', `${SESSION}-runner`, '--wait=false']);
    await waitForPodGone(node, NAMESPACE, `${SESSION}-runner`, (grace + 30) * 1000);
    const took = (Date.now() - deleted) / 1000;
    expect(took).toBeLessThan(grace - 10);
    const afterDelete = await objectHashes(node, bucket, PREFIX);
    expect(afterDelete.get('artifacts/late.txt')).toBe(sha256(late));
    for (const [key, hash] of Object.entries(expectedLive)) expect(afterDelete.get(key), key).toBe(hash);
    expect(afterDelete.get('artifacts/seed.txt')).toBe(sha256(seed.note));

    // A new pod of the session restores every byte: the runner reports what it finds, exits
    // 0, and the pod completes.
    await createPod(node, await runnerPod(node, NAMESPACE, `${SESSION}-runner-2`, SESSION, `${RUNNER_PRELUDE}
      report('found', { claude: hashes('/app/.claude'), workspace: hashes('/workspace') });
    `));
    await waitForPod(node, NAMESPACE, `${SESSION}-runner-2`, 'the second pod Succeeded', (p) => p.status?.phase === 'Succeeded');
    const found = reportOf<{ claude: Record<string, string>; workspace: Record<string, string> }>(
      await logs(node, NAMESPACE, `${SESSION}-runner-2`, 'ambient-code-runner'), 'found');
    expect(found.claude).toEqual({ 'history.jsonl': sha256(seed.history + turn) });
    expect(found.workspace).toMatchObject({
      'artifacts/report.md': sha256(report),
      'artifacts/late.txt': sha256(late),
      'artifacts/seed.txt': sha256(seed.note),
      'file-uploads/data.bin': dataHash,
      [`sessions/${SESSION}/.claude/history.jsonl`]: sha256(seed.history + turn),
    });
  });
});
