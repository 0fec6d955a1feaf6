import { expect, inject, it } from 'vitest';
import { waitUntil } from '../support/cluster-client.js';
import { createPod, createProject, objectHashes, RUNNER_PRELUDE, sessionPod, sha256, waitForPod } from './support/node-tier.js';

const node = inject('node');
const NAMESPACE = 'node-size';
const SESSION = 'sess-size';
const LIMIT = '16Mi';
const PREFIX = `${NAMESPACE}/${SESSION}/`;

// Scenario 7 of issue 22: the runner fills the workspace EmptyDir past its sizeLimit. What
// the kubelet (v1.36) does, recorded here and in the README (Troubleshooting, Agent):
// - its eviction manager measures the volume every volumeStatsAggPeriod (default 1 min; the
//   tier uses 5 s) and evicts the whole pod: phase Failed, reason Evicted, message `Usage of
//   EmptyDir volume "workspace" exceeds the limit "16Mi".`;
// - it stops every container at once with the eviction's grace period, not the pod's: 1 s,
//   raised to the runtime's minimum of 2 s, then SIGKILL. The native sidecar is not kept
//   until the runner has exited: both get SIGTERM in the same second;
// - state-sync's final sync runs in those 2 s: here it had nothing large left (the periodic
//   cycle had uploaded the big file before the kubelet measured the volume) and wrote
//   metadata.json; a final sync with much to upload is cut off by the SIGKILL, so what the
//   last periodic cycle uploaded is what S3 keeps;
// - the containers are removed with the pod's sandbox: their status becomes
//   ContainerStatusUnknown (exit 137) and `kubectl logs` has nothing left to show.
// The workspace's limit comes from the pod here (the control plane's plain EmptyDir with a
// sizeLimit, which the webhook leaves as it is): the webhook's own EMPTYDIR_SIZE_LIMIT is one
// setting for the whole tier, 10Gi, too large to fill on a test machine.
it('an EmptyDir past its sizeLimit: the kubelet evicts the pod at once; the final sync gets 2 s', async () => {
  const bucket = await createProject(node, NAMESPACE);
  // 1 MiB made in the pod (the script is one argument, limited to 128 KiB by the kernel).
  const before = Buffer.alloc(1024 * 1024, 'written before the limit ');
  const pod = await sessionPod(node, 'control-plane', {
    namespace: NAMESPACE,
    name: `${SESSION}-runner`,
    session: SESSION,
    script: `${RUNNER_PRELUDE}
      write('/workspace/artifacts/before.bin', Buffer.alloc(1024 * 1024, 'written before the limit '));
      // Two sync cycles' time, then 40 MiB into a 16 MiB volume.
      setTimeout(() => write('/workspace/artifacts/big.bin', Buffer.alloc(40 * 1024 * 1024, 'past the limit ')), 10_000);
      onTerm(() => {});
      forever();
    `,
  });
  pod.spec!.volumes!.find((v) => v.name === 'workspace')!.emptyDir = { sizeLimit: LIMIT };
  await createPod(node, pod);
  await waitUntil('the periodic sync of the file written before the limit', async () =>
    (await objectHashes(node, bucket, `${PREFIX}`)).get('artifacts/before.bin') === sha256(before) ? true : undefined, 90_000, 1_000);

  const evicted = await waitForPod(node, NAMESPACE, `${SESSION}-runner`, 'the pod evicted', (p) => p.status?.phase === 'Failed', 180_000);
  expect(evicted.status!.reason).toBe('Evicted');
  expect(evicted.status!.message).toContain(`Usage of EmptyDir volume "workspace" exceeds the limit "${LIMIT}"`);
  // How the kubelet stops the containers (events, the sidecar's reported end, whether the
  // final sync's metadata.json lands in the 2 s it gets) varied between runs here and is
  // documented in the README from what was observed, not asserted.

  // What S3 keeps: everything the periodic cycles uploaded.
  const objects = await objectHashes(node, bucket, PREFIX);
  expect(objects.get('artifacts/before.bin')).toBe(sha256(before));
  // The big file is there only if a periodic cycle ran before the kubelet measured the
  // volume (it did in every run so far); never with other bytes than the runner's.
  if (objects.has('artifacts/big.bin')) expect(objects.get('artifacts/big.bin')).toBe(sha256(Buffer.alloc(40 * 1024 * 1024, 'past the limit ')));
});
