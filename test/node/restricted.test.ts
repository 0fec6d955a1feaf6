import { randomBytes } from 'node:crypto';
import { expect, inject, it } from 'vitest';
import { kubectl, kubectlOk } from '../support/cluster-client.js';
import {
  createPod,
  createProject,
  logs,
  objectHashes,
  reportOf,
  RUNNER_PRELUDE,
  running,
  sessionPod,
  sha256,
  waitForPod,
  waitForPodGone,
} from './support/node-tier.js';
import { waitUntil } from '../support/cluster-client.js';

const node = inject('node');
const NAMESPACE = 'node-restricted';
const SESSION = 'sess-scc';

type Files = Record<string, { mode: number; sha: string }>;
// Mode and sha256 of every file of the workspace, from inside the pod.
const LIST = `
const files = (root) => Object.fromEntries(Object.entries(hashes(root)).map(([p, sha]) => [p, { mode: statSync(join(root, p)).mode & 0o7777, sha }]));
`;

// Scenario 5 of issue 22: the namespace enforces Pod Security "restricted", and the runner
// runs as OpenShift's restricted-v2 SCC leaves it: an arbitrary uid from the namespace's
// range (1000680000), that range's fsGroup, no runAsGroup. The mutated pod must be admitted
// and run there, and the runner's files, a 0600 one included, must sync and come back in
// the next pod with their bytes and modes.
it('a restricted namespace admits the mutated pod and files keep their bytes and modes', async () => {
  const bucket = await createProject(node, NAMESPACE, {
    labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' },
  });
  // The namespace really enforces: a pod that is not restricted is refused.
  const refused = await kubectl(node, ['-n', NAMESPACE, 'run', 'not-restricted', `--image=${node.image}`, '--image-pull-policy=Never']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/violates PodSecurity "restricted:latest"/);

  const secret = randomBytes(512).toString('hex');
  const script = '#!/bin/sh\necho hello\n';
  const settings = '{"theme":"dark"}\n';
  const first = await createPod(node, await sessionPod(node, 'openshift-restricted-v2', {
    namespace: NAMESPACE,
    name: `${SESSION}-runner`,
    session: SESSION,
    script: `${RUNNER_PRELUDE}${LIST}
      write('/workspace/artifacts/token.txt', ${JSON.stringify(secret)});
      chmodSync('/workspace/artifacts/token.txt', 0o600);
      write('/workspace/artifacts/run.sh', ${JSON.stringify(script)});
      chmodSync('/workspace/artifacts/run.sh', 0o755);
      write('/app/.claude/settings.json', ${JSON.stringify(settings)});
      report('ids', { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() });
      report('wrote', files('/workspace'));
      onTerm(() => {});
      forever();
    `,
  }));
  expect(first.spec!.initContainers!.map((c) => c.name)).toEqual(['init-hydrate', 'state-sync']);
  await waitForPod(node, NAMESPACE, `${SESSION}-runner`, 'the runner running', running('ambient-code-runner'));
  const log = await waitUntil('the runner wrote', async () => {
    const out = await logs(node, NAMESPACE, `${SESSION}-runner`, 'ambient-code-runner');
    return out.includes('wrote ') ? out : undefined;
  }, 60_000, 500);
  const ids = reportOf<{ uid: number; groups: number[] }>(log, 'ids');
  expect(ids.uid).toBe(1000680000);
  expect(ids.groups).toContain(1000680000);
  const wrote = reportOf<Files>(log, 'wrote');
  expect(wrote['artifacts/token.txt']).toEqual({ mode: 0o600, sha: sha256(secret) });
  expect(wrote['artifacts/run.sh']).toEqual({ mode: 0o755, sha: sha256(script) });
  expect(wrote['sessions/sess-scc/.claude/settings.json']?.sha).toBe(sha256(settings));

  // state-sync (same uid as the runner) reads the 0600 file: it is in S3.
  await waitUntil('the periodic sync of the 0600 file', async () =>
    (await objectHashes(node, bucket, `${NAMESPACE}/${SESSION}/`)).get('artifacts/token.txt') === sha256(secret) ? true : undefined, 60_000, 1_000);
  await kubectlOk(node, ['-n', NAMESPACE, 'delete', 'pod', `${SESSION}-runner`, '--wait=false']);
  await waitForPodGone(node, NAMESPACE, `${SESSION}-runner`);

  await createPod(node, await sessionPod(node, 'openshift-restricted-v2', {
    namespace: NAMESPACE,
    name: `${SESSION}-runner-2`,
    session: SESSION,
    script: `${RUNNER_PRELUDE}${LIST}
      report('found', files('/workspace'));
    `,
  }));
  await waitForPod(node, NAMESPACE, `${SESSION}-runner-2`, 'the second pod Succeeded', (p) => p.status?.phase === 'Succeeded');
  const found = reportOf<Files>(await logs(node, NAMESPACE, `${SESSION}-runner-2`, 'ambient-code-runner'), 'found');
  for (const path of ['artifacts/token.txt', 'artifacts/run.sh', 'sessions/sess-scc/.claude/settings.json']) {
    expect(found[path], path).toEqual(wrote[path]);
  }
});
