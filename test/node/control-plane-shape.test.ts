import { randomBytes } from 'node:crypto';
import { expect, inject, it } from 'vitest';
import { createPod, createProject, logs, objectHashes, RUNNER_PRELUDE, sessionPod, sha256, waitForPod } from './support/node-tier.js';

const node = inject('node');
const NAMESPACE = 'node-cp';
const SESSION = 'sess-cp';

// Scenario 6 of issue 22: the new control plane's pod (restartPolicy Never, a plain EmptyDir
// workspace, the session in the session-name annotation). The runner writes its work and
// exits 0 at once, before any periodic cycle could see it: only state-sync's final sync,
// run when the kubelet stops the native sidecar after the runner, can save it; the pod
// must still reach Succeeded.
it('a runner that exits 0 has its work saved by the final sync and the pod Succeeds', async () => {
  const bucket = await createProject(node, NAMESPACE);
  // Kept well under the kernel's 128 KiB limit for one argument: the script is an argument.
  const result = randomBytes(8 * 1024).toString('hex');
  const pod = await sessionPod(node, 'control-plane', {
    namespace: NAMESPACE,
    name: `${SESSION}-runner`,
    session: SESSION,
    script: `${RUNNER_PRELUDE}
      write('/workspace/artifacts/result.txt', ${JSON.stringify(result)});
      report('done', {});
    `,
  });
  const stored = await createPod(node, pod);
  expect(stored.spec!.restartPolicy).toBe('Never');
  expect(stored.spec!.initContainers!.map((c) => [c.name, c.restartPolicy])).toEqual([
    ['init-hydrate', undefined],
    ['state-sync', 'Always'],
  ]);

  const done = await waitForPod(node, NAMESPACE, `${SESSION}-runner`, 'the pod Succeeded', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
  expect(done.status!.phase).toBe('Succeeded');
  const runner = done.status!.containerStatuses!.find((s) => s.name === 'ambient-code-runner')!;
  const sidecar = done.status!.initContainerStatuses!.find((s) => s.name === 'state-sync')!;
  expect(runner.state!.terminated!.exitCode).toBe(0);
  expect(sidecar.state!.terminated!.exitCode).toBe(0);
  // The sidecar stopped after the runner: its final sync saw the runner's last write.
  expect(Date.parse(String(sidecar.state!.terminated!.finishedAt))).toBeGreaterThanOrEqual(Date.parse(String(runner.state!.terminated!.finishedAt)));
  expect(await logs(node, NAMESPACE, `${SESSION}-runner`, 'state-sync')).toMatch(/Received SIGTERM: running the final sync[\s\S]*Final sync complete/);
  const objects = await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`);
  expect(objects.get('artifacts/result.txt')).toBe(sha256(result));
  expect(objects.has('metadata.json')).toBe(true);
});
