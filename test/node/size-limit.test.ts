import { expect, inject, it } from 'vitest';
import { waitUntil } from '../support/cluster-client.js';
import { createPod, createProject, logs, objectHashes, podEvents, RUNNER_PRELUDE, sessionPod, sha256, waitForPod } from './support/node-tier.js';

const node = inject('node');
const NAMESPACE = 'node-size';
const SESSION = 'sess-size';
const LIMIT = '16Mi';

// Scenario 7 of issue 22: the runner fills the workspace EmptyDir past its sizeLimit. What
// the kubelet does is recorded here and in the README ("Troubleshooting"): its eviction
// manager measures the volume (every volumeStatsAggPeriod), evicts the whole pod with the
// reason Evicted and a message naming the volume and the limit, and kills it with the
// eviction's own short grace period, not the pod's: state-sync is stopped with the other
// containers, so what the last periodic cycle uploaded is what S3 keeps.
// The workspace's limit comes from the pod here (the control plane's plain EmptyDir with a
// sizeLimit, which the webhook leaves as it is): the webhook's own EMPTYDIR_SIZE_LIMIT is one
// setting for the whole tier, 10Gi, too large to fill on a test machine.
it('an EmptyDir past its sizeLimit: the kubelet evicts the pod; what was synced before stays in S3', async () => {
  const bucket = await createProject(node, NAMESPACE);
  // 1 MiB made in the pod (the script is one argument, limited to 128 KiB by the kernel).
  const before = Buffer.alloc(1024 * 1024, 'written before the limit ');
  const pod = await sessionPod(node, 'control-plane', {
    namespace: NAMESPACE,
    name: `${SESSION}-runner`,
    session: SESSION,
    script: `${RUNNER_PRELUDE}
      write('/workspace/artifacts/before.bin', Buffer.alloc(1024 * 1024, 'written before the limit '));
      report('before', {});
      // Two sync cycles' time, then 40 MiB into a 16 MiB volume.
      setTimeout(() => { write('/workspace/artifacts/big.bin', randomBytes(40 * 1024 * 1024)); report('filled', {}); }, 10_000);
      forever();
    `,
  });
  pod.spec!.volumes!.find((v) => v.name === 'workspace')!.emptyDir = { sizeLimit: LIMIT };
  await createPod(node, pod);
  await waitUntil('the periodic sync of the file written before the limit', async () =>
    (await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`)).get('artifacts/before.bin') === sha256(before) ? true : undefined, 90_000, 1_000);

  const filled = Date.now();
  const evicted = await waitForPod(node, NAMESPACE, `${SESSION}-runner`, 'the pod evicted', (p) => p.status?.phase === 'Failed', 180_000);
  const seconds = (Date.now() - filled) / 1000;
  expect(evicted.status!.reason).toBe('Evicted');
  expect(evicted.status!.message).toContain(`Usage of EmptyDir volume "workspace" exceeds the limit "${LIMIT}"`);
  const events = await podEvents(node, NAMESPACE, `${SESSION}-runner`);
  expect(events.some((e) => e.reason === 'Evicted')).toBe(true);
  // The eviction stops every container at once: state-sync included, whatever its final
  // sync was doing. What it logged is read back while the Failed pod still exists.
  const syncLog = await logs(node, NAMESPACE, `${SESSION}-runner`, 'state-sync');
  const objects = await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`);
  expect(objects.get('artifacts/before.bin')).toBe(sha256(before));
  console.log(JSON.stringify({
    evictedAfterSeconds: seconds,
    finalSyncStarted: /Received SIGTERM/.test(syncLog),
    finalSyncCompleted: /Final sync complete/.test(syncLog),
    bigInS3: objects.has('artifacts/big.bin'),
    syncTerminated: evicted.status!.initContainerStatuses!.find((s) => s.name === 'state-sync')!.state?.terminated,
  }, null, 1));
});
