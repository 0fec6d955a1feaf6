import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/agent/settings.js';
import { parseSize } from '../../../src/shared/size.js';
import { parseList } from '../../../src/shared/agent-env.js';
import { ConfigError, loadConfig } from '../../../src/webhook/config/config.js';
import { mutate } from '../../../src/webhook/mutation/mutate.js';
import { reviewAdmission } from '../../../src/webhook/admission/review.js';
import type { S3Decision } from '../../../src/webhook/config/s3-settings.js';
import { ManifestSecretSource } from '../../../src/webhook/lookups/secret-source.js';
import { defaultConfig, TEST_VERSION } from '../fixtures.js';

const volumeName = fc.constantFrom('workspace', 'cache', 'data', 'tools', 'session-storage-tmp');
const volume: fc.Arbitrary<V1Volume> = fc.oneof(
  volumeName.map((name) => ({ name, persistentVolumeClaim: { claimName: `pvc-${name}` } })),
  volumeName.map((name) => ({ name, emptyDir: {} })),
  volumeName.map((name) => ({ name, configMap: { name: 'cfg' } })),
);
const mount = fc.record({
  name: volumeName,
  mountPath: fc.constantFrom('/workspace', '/app/.claude', '/data', '/cache'),
  subPath: fc.option(
    fc.oneof(
      fc.constantFrom('.claude', 'sessions/s/.claude', 'x', 'a,b/.claude', ' s/.claude', 'a=b/.claude/', 'a//b/./.claude'),
      fc.string().map((prefix) => `${prefix}/.claude`),
    ),
    { nil: undefined },
  ),
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

  // Whatever the webhook starts with and whatever pod it sees, the agent it injects must
  // start: an env the agent rejects leaves every session pod stuck in Init.
  it('every env it gives the agent is one the agent accepts, with the same values', () => {
    // Mostly values the agent takes, so most runs reach the mutation; the rest probe the edge.
    const mostly = (valid: fc.Arbitrary<string>, other: fc.Arbitrary<string>) =>
      fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: other });
    const text = mostly(fc.constantFrom('1', '1.5', '60', ' 7 ', '86400'), fc.oneof(fc.string(), fc.constantFrom('', '0', '0.5', '1e9', '-3', 'x')));
    const syncEntry = fc
      .record({
        name: mostly(fc.constantFrom('.claude', 'artifacts', 'uploads', 'file-uploads'), fc.oneof(fc.constantFrom('metadata.json', '..', 'a/b', ''), fc.string())),
        local: fc.option(mostly(fc.constantFrom('x', 'a=b', './.', 'home/.claude'), fc.oneof(fc.constantFrom('../x', '/abs', ' sp '), fc.string())), { nil: undefined }),
      })
      .map(({ name, local }) => (local === undefined ? name : `${name}=${local}`));
    const env = fc.record(
      {
        SYNC_PATHS: mostly(fc.uniqueArray(syncEntry, { maxLength: 4, selector: (entry) => entry.split('=')[0]!.trim() }).map((entries) => entries.join(',')), fc.string()),
        SYNC_EXCLUDE: fc.string(),
        SYNC_INTERVAL: text,
        SYNC_DEBOUNCE_SECONDS: text,
        MAX_SYNC_SIZE: mostly(fc.constantFrom('1Gi', '1.5Gi', '500Mi', '1TB'), fc.oneof(fc.constantFrom('0', '2 gigs', '0.1'), fc.string())),
        HYDRATE_TIMEOUT_SECONDS: text,
        FINAL_SYNC_TIMEOUT_SECONDS: text,
        REFRESH_AFTER_DAYS: text,
        DEFAULT_S3_REGION: fc.constantFrom('us-east-1', 'EU West', 'eu-west-3'),
        SIDECAR_MODE: mode,
      },
      { requiredKeys: [] },
    );
    const namespace = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    const dummies: Record<string, string> = {
      S3_ENDPOINT: 'http://minio.example:9000',
      S3_BUCKET: 'sessions',
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY: 'access-key',
      S3_SECRET_KEY: 'secret-key',
    };
    let accepted = 0;
    fc.assert(
      fc.property(env, sessionPod, decision, namespace, (variables, pod, s3, ns) => {
        let config;
        try {
          config = loadConfig(variables as Record<string, string>, TEST_VERSION).mutation;
        } catch (error) {
          if (error instanceof ConfigError) return;
          throw error;
        }
        accepted += 1;
        const result = mutate(pod, config, s3);
        if (result.outcome === 'denied') return;
        const spec = result.pod.spec!;
        const agents = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.args?.[0] === 'hydrate' || c.args?.[0] === 'sync');
        for (const container of agents) {
          const resolved = Object.fromEntries(
            (container.env ?? []).map((e) => {
              if (e.value !== undefined) return [e.name, e.value];
              if (e.valueFrom?.secretKeyRef) return [e.name, dummies[e.valueFrom.secretKeyRef.key]];
              const field = e.valueFrom?.fieldRef?.fieldPath;
              expect(['metadata.namespace', 'metadata.uid', 'metadata.name']).toContain(field);
              return [e.name, field === 'metadata.namespace' ? ns : field === 'metadata.uid' ? '4f6c7c1e-0d4b-4c55-9a51-0c3a8e2b9d11' : 'sess-runner'];
            }),
          );
          const settings = loadSettings(resolved);
          expect(settings.syncIntervalSeconds).toBe(config.syncInterval);
          expect(settings.syncDebounceSeconds).toBe(config.syncDebounceSeconds);
          expect(settings.finalSyncTimeoutSeconds).toBe(config.finalSyncTimeoutSeconds);
          expect(settings.hydrateTimeoutSeconds).toBe(config.hydrateTimeoutSeconds);
          expect(settings.maxSyncSize).toBe(parseSize(config.maxSyncSize));
          expect(settings.exclude).toEqual(parseList(config.syncExclude));
          expect(settings.refreshAfterDays).toBe(config.refreshAfterDays === undefined ? 7 : Number(config.refreshAfterDays));
          // The session's next pod waits for this one's final sync as long as the kubelet gives it.
          expect(settings.terminationGraceSeconds).toBe(spec.terminationGracePeriodSeconds);
          expect(settings.podUid).toBe('4f6c7c1e-0d4b-4c55-9a51-0c3a8e2b9d11');
        }
      }),
      { numRuns: 400 },
    );
    // The generators must reach the mutation, not only configurations the webhook refuses.
    expect(accepted).toBeGreaterThan(50);
  });
});
