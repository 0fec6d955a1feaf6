import { NO_CLAIMS } from '../../src/webhook/claim-source.js';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { mutate } from '../../src/webhook/mutate.js';
import { reviewAdmission } from '../../src/webhook/review.js';
import type { S3Decision } from '../../src/webhook/s3-settings.js';
import { ManifestSecretSource } from '../../src/webhook/secret-source.js';
import { defaultConfig } from './fixtures.js';

const volumeName = fc.constantFrom('workspace', 'cache', 'data', 'tools', 'session-storage-tmp');
const volume: fc.Arbitrary<V1Volume> = fc.oneof(
  volumeName.map((name) => ({ name, persistentVolumeClaim: { claimName: `pvc-${name}` } })),
  volumeName.map((name) => ({ name, emptyDir: {} })),
  volumeName.map((name) => ({ name, configMap: { name: 'cfg' } })),
);
const mount = fc.record({
  name: volumeName,
  mountPath: fc.constantFrom('/workspace', '/app/.claude', '/data', '/cache'),
  subPath: fc.option(fc.constantFrom('.claude', 'sessions/s/.claude', 'x'), { nil: undefined }),
});
const container = (names: string[]): fc.Arbitrary<V1Container> =>
  fc.record({
    name: fc.constantFrom(...names),
    image: fc.constantFrom('runner:1', 'proxy:2'),
    restartPolicy: fc.option(fc.constant('Always'), { nil: undefined }),
    volumeMounts: fc.array(mount, { maxLength: 3 }),
    securityContext: fc.option(fc.record({ runAsUser: fc.integer({ min: 0, max: 70000 }) }), { nil: undefined }),
  }).map((c) => JSON.parse(JSON.stringify(c)) as V1Container);

const uniqueByName = <T extends { name: string }>(items: T[]) => [...new Map(items.map((i) => [i.name, i])).values()];

const sessionPod: fc.Arbitrary<V1Pod> = fc
  .record({
    session: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/),
    byLabel: fc.boolean(),
    grace: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
    volumes: fc.array(volume, { maxLength: 5 }),
    initContainers: fc.array(container(['istio-proxy', 'setup', 'init-hydrate', 'vault-agent-init']), { maxLength: 3 }),
    containers: fc.array(container(['runner', 'helper', 'state-sync']), { minLength: 1, maxLength: 3 }),
    podUid: fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined }),
  })
  .map(({ session, byLabel, grace, volumes, initContainers, containers, podUid }) => {
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${session}-runner-`,
        namespace: 'project-a',
        ...(byLabel ? { labels: { 'agentic-session': session } } : { annotations: { 'ambient-code.io/session-name': session } }),
        managedFields: [{ manager: 'operator', operation: 'Update', apiVersion: 'v1' }],
      },
      spec: {
        containers: uniqueByName(containers),
        volumes: uniqueByName(volumes),
        ...(initContainers.length > 0 ? { initContainers: uniqueByName(initContainers) } : {}),
        ...(grace === undefined ? {} : { terminationGracePeriodSeconds: grace }),
        ...(podUid === undefined ? {} : { securityContext: { runAsUser: podUid } }),
      },
    };
    return pod;
  });

const decision: fc.Arbitrary<S3Decision> = fc.constantFrom<S3Decision>(
  { kind: 'sync', reason: 's3-configured', hasRegion: true },
  { kind: 'sync', reason: 's3-configured', hasRegion: false },
  { kind: 'ephemeral', reason: 'secret-absent', warning: 'S3 not configured: session state is ephemeral' },
);
const mode = fc.constantFrom('native', 'legacy');

describe('mutation properties over generated session pods', { timeout: 30_000 }, () => {
  it('mutate(mutate(p)) equals mutate(p)', () => {
    fc.assert(
      fc.property(sessionPod, decision, mode, (pod, s3, sidecarMode) => {
        const config = defaultConfig({ SIDECAR_MODE: sidecarMode }).mutation;
        const once = mutate(pod, config, s3);
        if (once.outcome === 'denied') return;
        const twice = mutate(once.pod, config, s3);
        expect(twice.outcome === 'denied' ? undefined : twice.pod).toEqual(once.pod);
      }),
      { numRuns: 300 },
    );
  });

  it('never leaves a PVC and never lowers the grace period', () => {
    fc.assert(
      fc.property(sessionPod, decision, (pod, s3) => {
        const once = mutate(pod, defaultConfig().mutation, s3);
        if (once.outcome === 'denied') return;
        expect(once.pod.spec!.volumes!.some((v) => v.persistentVolumeClaim)).toBe(false);
        const before = pod.spec!.terminationGracePeriodSeconds;
        const after = once.pod.spec!.terminationGracePeriodSeconds;
        if (before !== undefined) expect(after).toBeGreaterThanOrEqual(before);
      }),
      { numRuns: 300 },
    );
  });

  it('the patch in the AdmissionReview response turns the request pod into the mutated pod', async () => {
    const secrets = new ManifestSecretSource([
      {
        kind: 'Secret',
        metadata: { name: 'ambient-non-vertex-integrations' },
        stringData: { S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'sessions', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' },
      },
    ]);
    await fc.assert(
      fc.asyncProperty(sessionPod, mode, async (pod, sidecarMode) => {
        const config = defaultConfig({ SIDECAR_MODE: sidecarMode });
        const deps = { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS };
        const body = {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'project-a', object: pod },
        };
        const review = await reviewAdmission(structuredClone(body), deps);
        const response = review.response as { response: { uid: string; patch?: string } };
        expect(response.response.uid).toBe('u-1');
        const expected = mutate(pod, config.mutation, { kind: 'sync', reason: 's3-configured', hasRegion: false });
        if (expected.outcome === 'denied') return;
        const operations = JSON.parse(Buffer.from(response.response.patch ?? 'W10=', 'base64').toString('utf8')) as jsonPatch.Operation[];
        expect(operations.some((op) => op.path.startsWith('/metadata/managedFields'))).toBe(false);
        const applied = jsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
        expect(applied).toEqual(expected.pod);
      }),
      { numRuns: 200 },
    );
  });
});
