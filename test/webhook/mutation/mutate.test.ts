import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { mutate, type MutationResult } from '../../../src/webhook/mutation/mutate.js';
import { decideS3, type S3Decision } from '../../../src/webhook/config/s3-settings.js';
import { STATUS_ANNOTATION } from '../../../src/webhook/config/names.js';
import { defaultConfig, loadPod, loadSecretSummary, readFixture, TEST_VERSION } from '../fixtures.js';

const SYNC: S3Decision = { kind: 'sync', reason: 's3-configured', hasRegion: true };

function run(pod: V1Pod, env: Record<string, string> = {}, s3: S3Decision = SYNC): MutationResult {
  return mutate(pod, defaultConfig(env).mutation, s3);
}

function patched(pod: V1Pod, env: Record<string, string> = {}, s3: S3Decision = SYNC) {
  const result = run(pod, env, s3);
  if (result.outcome !== 'patched') throw new Error(`expected a patched pod, got ${result.outcome}`);
  return result;
}

const byName = (containers: V1Container[] | undefined, name: string) => containers?.find((c) => c.name === name);
const envOf = (container: V1Container | undefined) =>
  Object.fromEntries((container?.env ?? []).map((e: V1EnvVar) => [e.name, e.value ?? e.valueFrom]));

describe('which pods are mutated', () => {
  it('leaves pods that are not session pods alone', () => {
    const pod = loadPod('plain-pod');
    expect(run(pod)).toEqual({ outcome: 'allowed', reason: 'not-session-pod', pod, warnings: [] });
  });

  it('leaves opted-out session pods alone, PVC included', () => {
    const pod = loadPod('opted-out');
    const result = run(pod);
    expect(result).toMatchObject({ outcome: 'allowed', reason: 'opted-out' });
    expect(result.outcome !== 'denied' && result.pod.spec?.volumes?.[0]?.persistentVolumeClaim).toBeTruthy();
  });

  it('denies session names that are not DNS labels, since they become S3 keys', () => {
    expect(run(loadPod('bad-session-name'))).toEqual({
      outcome: 'denied',
      reason: 'invalid-session-name',
      message:
        'invalid session name "My_Session.v2": it becomes part of S3 keys and must be a DNS label ' +
        '(lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)',
      warnings: [],
    });
  });

  it("denies a pod sharing its process namespace: the runner could read state-sync's S3 keys from /proc", () => {
    const pod = loadPod('session-runner');
    pod.spec!.shareProcessNamespace = true;
    const result = run(pod);
    expect(result).toMatchObject({ outcome: 'denied', reason: 'shared-process-namespace' });
    expect(result.outcome === 'denied' && result.message).toBe(
      "shareProcessNamespace: true would expose the project's S3 keys in state-sync's environment to the runner: remove it",
    );
  });

  it('admits a pod sharing its process namespace when no credential is injected (S3 not configured)', () => {
    const pod = loadPod('session-runner');
    pod.spec!.shareProcessNamespace = true;
    const result = run(pod, {}, { kind: 'ephemeral', reason: 'secret-absent', warning: 'S3 not configured: session state is ephemeral' });
    expect(result).toMatchObject({ outcome: 'patched', reason: 'secret-absent' });
  });

  it("leaves a pod of the platform's own S3 support exactly as it is, with a warning", () => {
    const pod = loadPod('platform-s3-operator');
    const before = structuredClone(pod);
    const result = run(pod);
    expect(result).toEqual({
      outcome: 'allowed',
      reason: 'already-managed',
      pod: before,
      warnings: ["the platform's own init-hydrate, state-sync already manage this pod's state: left unchanged"],
    });
    expect(pod).toEqual(before);
  });

  it.each([
    ['only the hydrate (repositories seeded, no persistence)', (pod: V1Pod) => {
      pod.spec!.containers = pod.spec!.containers.filter((c) => c.name !== 'state-sync');
    }, 'init-hydrate'],
    ['the sync script wrapped in a shell', (pod: V1Pod) => {
      pod.spec!.initContainers = [];
      byName(pod.spec!.containers, 'state-sync')!.command = ['/bin/sh', '-c', 'exec /usr/local/bin/sync.sh'];
    }, 'state-sync'],
    ['a PVC still in the pod', (pod: V1Pod) => {
      pod.spec!.volumes = [{ name: 'workspace', persistentVolumeClaim: { claimName: 'ambient-workspace-sess-op1' } }];
    }, 'init-hydrate, state-sync'],
  ])("never replaces the platform's containers: %s", (_name, change, names) => {
    const pod = loadPod('platform-s3-operator');
    change(pod);
    expect(run(pod)).toMatchObject({
      outcome: 'allowed',
      reason: 'already-managed',
      pod,
      warnings: [`the platform's own ${names} already manage this pod's state: left unchanged`],
    });
  });

  it("denies a pod whose containers take our names without being ours or the platform's", () => {
    const pod = loadPod('session-runner');
    pod.spec!.initContainers = [{ name: 'init-hydrate', image: 'someone/else:1', command: ['/bin/restore'] }];
    expect(run(pod)).toEqual({
      outcome: 'denied',
      reason: 'name-collision',
      message:
        'the pod already uses names session storage adds to session pods: container "init-hydrate"; ' +
        'rename them, or opt the pod out with the annotation ambient-code.io/session-storage: disabled',
      warnings: [],
    });
  });

  it('passes a denial of the S3 settings through with its message', () => {
    const config = defaultConfig();
    const s3 = decideS3(loadSecretSummary('incomplete'), config.policy);
    expect(mutate(loadPod('session-runner'), config.mutation, s3)).toEqual({
      outcome: 'denied',
      reason: 'incomplete',
      message: 'incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY',
      warnings: [],
    });
  });

  it('is idempotent: a reinvocation changes nothing', () => {
    for (const fixture of ['session-runner', 'session-generate-name']) {
      for (const mode of ['native', 'legacy']) {
        const once = patched(loadPod(fixture), { SIDECAR_MODE: mode });
        const twice = run(once.pod, { SIDECAR_MODE: mode });
        expect(twice).toEqual({ outcome: 'allowed', reason: 'reinvocation', pod: once.pod, warnings: [] });
      }
    }
  });

  it('does not trust a status annotation whose injected containers are gone', () => {
    const once = patched(loadPod('session-runner'));
    const stripped = structuredClone(once.pod);
    stripped.spec!.initContainers = [];
    const again = patched(stripped);
    expect(again.pod).toEqual(once.pod);
  });

  it('takes the session name from the label, else the annotation, never the pod name', () => {
    expect(envOf(byName(patched(loadPod('session-runner')).pod.spec?.initContainers, 'init-hydrate')).SESSION_NAME).toBe('sess-7f3a');
    expect(envOf(byName(patched(loadPod('session-generate-name')).pod.spec?.initContainers, 'init-hydrate')).SESSION_NAME).toBe('sess-b2');
  });
});

describe('volumes', () => {
  it('turns every PVC into an EmptyDir of the configured size, keeping names and mounts', () => {
    const pod = loadPod('session-generate-name');
    const result = patched(pod, { EMPTYDIR_SIZE_LIMIT: '20Gi' });
    const volumes = result.pod.spec!.volumes!;
    expect(volumes.slice(0, 3)).toEqual([
      { name: 'workspace', emptyDir: { sizeLimit: '20Gi' } },
      { name: 'cache', emptyDir: { sizeLimit: '20Gi' } },
      { name: 'tools', emptyDir: {} },
    ]);
    expect(volumes.some((v) => v.persistentVolumeClaim)).toBe(false);
    expect(byName(result.pod.spec!.containers, 'runner')!.volumeMounts).toEqual(pod.spec!.containers[0]!.volumeMounts);
  });

  it('swaps PVCs even when S3 is not configured, with the warning and no agent', () => {
    const config = defaultConfig();
    const result = patched(loadPod('session-runner'), {}, decideS3({ kind: 'absent' }, config.policy));
    expect(result.warnings).toEqual(['S3 not configured: session state is ephemeral']);
    expect(result.pod.spec!.volumes).toEqual([{ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } }]);
    expect(result.pod.spec!.initContainers).toBeUndefined();
    expect(result.status).toEqual({ mode: 'ephemeral', reason: 'secret-absent', injected: ['emptyDir:workspace'], version: TEST_VERSION });
  });

  it('uses the only PVC as state volume when none has the configured name', () => {
    const pod = loadPod('opted-out');
    delete pod.metadata!.annotations;
    pod.spec!.volumes![0]!.name = 'data';
    pod.spec!.containers[0]!.volumeMounts![0]!.name = 'data';
    const hydrate = byName(patched(pod).pod.spec!.initContainers, 'init-hydrate')!;
    expect(hydrate.volumeMounts![0]).toEqual({ name: 'data', mountPath: '/workspace' });
  });

  it('honours STATE_VOLUME', () => {
    const hydrate = byName(patched(loadPod('session-generate-name'), { STATE_VOLUME: 'cache' }).pod.spec!.initContainers, 'init-hydrate')!;
    expect(hydrate.volumeMounts![0]).toEqual({ name: 'cache', mountPath: '/workspace' });
  });

  it('injects nothing and warns when there is no state volume to sync', () => {
    const pod = loadPod('session-generate-name');
    pod.spec!.volumes = pod.spec!.volumes!.map((v) => (v.name === 'workspace' ? { ...v, name: 'scratch' } : v));
    const result = patched(pod);
    expect(result.warnings).toEqual(['no state volume "workspace" in the pod: session state is ephemeral']);
    expect(result.status.mode).toBe('ephemeral');
    expect(result.pod.spec!.initContainers!.map((c) => c.name)).toEqual(['istio-proxy', 'fetch-tools']);
  });

  it('adds the pod-scoped agent state and tmp EmptyDirs, mounted into both agent containers', () => {
    const spec = patched(loadPod('session-runner')).pod.spec!;
    expect(spec.volumes!.map((v) => v.name)).toEqual(['workspace', 'session-storage-state', 'session-storage-tmp']);
    for (const name of ['init-hydrate', 'state-sync']) {
      expect(byName(spec.initContainers, name)!.volumeMounts).toEqual([
        { name: 'workspace', mountPath: '/workspace' },
        { name: 'session-storage-state', mountPath: '/var/lib/session-storage' },
        { name: 'session-storage-tmp', mountPath: '/tmp' },
      ]);
    }
  });
});

describe('injected containers', () => {
  it('appends init-hydrate then the native state-sync sidecar after other init containers, in order', () => {
    const spec = patched(loadPod('session-generate-name')).pod.spec!;
    expect(spec.initContainers!.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['istio-proxy', 'Always'],
      ['fetch-tools', undefined],
      ['init-hydrate', undefined],
      ['state-sync', 'Always'],
    ]);
    expect(byName(spec.initContainers, 'init-hydrate')!.args).toEqual(['hydrate']);
    expect(byName(spec.initContainers, 'state-sync')!.args).toEqual(['sync']);
    expect(byName(spec.initContainers, 'state-sync')!.command).toBeUndefined();
  });

  it('puts state-sync among the containers in legacy mode', () => {
    const spec = patched(loadPod('session-runner'), { SIDECAR_MODE: 'legacy' }).pod.spec!;
    expect(spec.initContainers!.map((c) => c.name)).toEqual(['init-hydrate']);
    expect(spec.containers.map((c) => [c.name, c.restartPolicy])).toEqual([
      ['ambient-code-runner', undefined],
      ['state-sync', undefined],
    ]);
  });

  it('replaces, never duplicates, stale containers our status annotation says we injected', () => {
    const pod = loadPod('session-runner');
    pod.spec!.initContainers = [{ name: 'init-hydrate', image: 'old:1' }];
    pod.metadata!.annotations = {
      [STATUS_ANNOTATION]: JSON.stringify({ mode: 'sync', reason: 's3-configured', injected: ['initContainer:init-hydrate', 'initContainer:state-sync'], version: '0.0.1' }),
    };
    const spec = patched(pod).pod.spec!;
    expect(spec.initContainers!.map((c) => [c.name, c.image])).toEqual([
      ['init-hydrate', 'ghcr.io/ambient-code/ambient-session-storage:' + TEST_VERSION],
      ['state-sync', 'ghcr.io/ambient-code/ambient-session-storage:' + TEST_VERSION],
    ]);
  });

  it('passes credentials only through secretKeyRef and the namespace through fieldRef', () => {
    const sync = byName(patched(loadPod('session-runner')).pod.spec!.initContainers, 'state-sync')!;
    const env = envOf(sync);
    const ref = (key: string) => ({ secretKeyRef: { name: 'ambient-non-vertex-integrations', key } });
    expect(env).toMatchObject({
      S3_ENDPOINT: ref('S3_ENDPOINT'),
      S3_BUCKET: ref('S3_BUCKET'),
      S3_REGION: ref('S3_REGION'),
      AWS_ACCESS_KEY_ID: ref('S3_ACCESS_KEY'),
      AWS_SECRET_ACCESS_KEY: ref('S3_SECRET_KEY'),
      NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
  });

  it('writes no secret value anywhere in the pod', () => {
    const config = defaultConfig();
    const s3 = decideS3(loadSecretSummary('complete'), config.policy);
    const result = mutate(loadPod('session-runner'), config.mutation, s3);
    const text = JSON.stringify(result);
    for (const value of ['AKIAEXAMPLEACCESSKEY', 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY', 'minio.ambient-system.svc', 'ambient-sessions']) {
      expect(text).not.toContain(value);
    }
    expect(readFixture('secrets/complete.yaml')).toContain('S3_SECRET_KEY');
  });

  it('uses the configured default region when the secret has none', () => {
    const hydrate = byName(
      patched(loadPod('session-runner'), { DEFAULT_S3_REGION: 'eu-west-3' }, { kind: 'sync', reason: 's3-configured', hasRegion: false }).pod.spec!.initContainers,
      'init-hydrate',
    );
    expect(envOf(hydrate).S3_REGION).toBe('eu-west-3');
  });

  it('hands the sync settings to the agent', () => {
    const env = envOf(byName(
      patched(loadPod('session-generate-name'), {
        SYNC_INTERVAL: '15',
        SYNC_DEBOUNCE_SECONDS: '3',
        MAX_SYNC_SIZE: '500Mi',
        SYNC_EXCLUDE: 'node_modules/**,*.tmp',
        SYNC_PATHS: '.claude,artifacts',
        HYDRATE_TIMEOUT_SECONDS: '300',
      }).pod.spec!.initContainers,
      'state-sync',
    ));
    expect(env).toMatchObject({
      SYNC_INTERVAL: '15',
      SYNC_DEBOUNCE_SECONDS: '3',
      MAX_SYNC_SIZE: '500Mi',
      SYNC_EXCLUDE: 'node_modules/**,*.tmp',
      SYNC_PATHS: '.claude,artifacts',
      HYDRATE_TIMEOUT_SECONDS: '300',
      WORKSPACE_DIR: '/workspace',
      AGENT_STATE_DIR: '/var/lib/session-storage',
    });
  });

  // The agent has its own default; the webhook passes the setting only when an operator chose one.
  it('passes REFRESH_AFTER_DAYS on only when it is set', () => {
    const env = (settings: Record<string, string>) =>
      envOf(byName(patched(loadPod('session-runner'), settings).pod.spec!.initContainers, 'state-sync'));
    expect(env({})).not.toHaveProperty('REFRESH_AFTER_DAYS');
    expect(env({ REFRESH_AFTER_DAYS: '2.5' }).REFRESH_AFTER_DAYS).toBe('2.5');
  });

  it.each([
    ['sessions/sess-7f3a/.claude', '.claude=sessions/sess-7f3a/.claude,.gemini,artifacts,uploads,file-uploads'],
    ['state/.claude/', '.claude=state/.claude,.gemini,artifacts,uploads,file-uploads'],
    ['a//b/./.claude', '.claude=a/b/.claude,.gemini,artifacts,uploads,file-uploads'],
    ['x=y/.claude', '.claude=x=y/.claude,.gemini,artifacts,uploads,file-uploads'],
    ['.claude', '.claude,.gemini,artifacts,uploads,file-uploads'],
    ['claude-home', '.claude,.gemini,artifacts,uploads,file-uploads'],
  ])('maps .claude to the runner subPath %s', (subPath, expected) => {
    const pod = loadPod('session-runner');
    pod.spec!.containers[0]!.volumeMounts![1]!.subPath = subPath;
    expect(envOf(byName(patched(pod).pod.spec!.initContainers, 'init-hydrate')).SYNC_PATHS).toBe(expected);
  });

  // SYNC_PATHS is comma-separated and trimmed: such a subPath cannot reach the agent
  // intact, and syncing another directory would lose .claude without anyone noticing.
  it.each(['sessions/a,b/.claude', ' padded/.claude'])('denies a runner whose .claude subPath %j SYNC_PATHS cannot express', (subPath) => {
    const pod = loadPod('session-runner');
    pod.spec!.containers[0]!.volumeMounts![1]!.subPath = subPath;
    expect(run(pod)).toEqual({
      outcome: 'denied',
      reason: 'unsyncable-subpath',
      message:
        `the runner mounts .claude from subPath "${subPath}", which the agent's SYNC_PATHS cannot express ` +
        '(no commas, no leading or trailing spaces): rename that directory',
      warnings: [],
    });
  });

  it('hardens both containers so the pod can pass Pod Security "restricted"', () => {
    const spec = patched(loadPod('session-runner')).pod.spec!;
    for (const name of ['init-hydrate', 'state-sync']) {
      expect(byName(spec.initContainers, name)!.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 1001,
        runAsGroup: 0,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
  });

  it("runs as the runner's own uid and gid, container level before pod level", () => {
    const pod = loadPod('session-runner');
    pod.spec!.containers[0]!.securityContext = { runAsUser: 2000, runAsGroup: 3000 };
    const hydrate = byName(patched(pod).pod.spec!.initContainers, 'init-hydrate')!;
    expect(hydrate.securityContext).toMatchObject({ runAsUser: 2000, runAsGroup: 3000 });
  });

  it('falls back to AGENT_RUN_AS_USER with a warning when the runner runs as root or declares nothing', () => {
    const pod = loadPod('session-runner');
    pod.spec!.securityContext = { runAsUser: 0 };
    const result = patched(pod, { AGENT_RUN_AS_USER: '4242' });
    expect(byName(result.pod.spec!.initContainers, 'state-sync')!.securityContext).toMatchObject({ runAsUser: 4242, runAsNonRoot: true });
    expect(result.warnings).toEqual([
      'runner has no non-root runAsUser: agent runs as uid 4242, may miss its private files',
    ]);
  });

  it('with AGENT_RUN_AS_USER=none sets no uid when the runner declares none', () => {
    const pod = loadPod('session-runner');
    delete pod.spec!.securityContext!.runAsUser;
    const result = patched(pod, { AGENT_RUN_AS_USER: 'none' });
    for (const name of ['init-hydrate', 'state-sync']) {
      const context = byName(result.pod.spec!.initContainers, name)!.securityContext!;
      expect(context.runAsNonRoot).toBe(true);
      expect(context).not.toHaveProperty('runAsUser');
    }
    expect(result.warnings).toEqual([
      "runner has no non-root runAsUser: agent runs as the image's or the SCC's uid, may miss its private files",
    ]);
  });

  it('applies the configured resources', () => {
    const hydrate = byName(
      patched(loadPod('session-runner'), { AGENT_CPU_REQUEST: '50m', AGENT_MEMORY_REQUEST: '64Mi', AGENT_CPU_LIMIT: '2', AGENT_MEMORY_LIMIT: '2Gi' }).pod.spec!.initContainers,
      'init-hydrate',
    )!;
    expect(hydrate.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '2', memory: '2Gi' } });
  });
});

// Pods as OpenShift's SCC admission leaves them before the webhooks see them.
describe('OpenShift SCC-admitted pods', () => {
  it("run the agent as the runner's SCC-assigned uid, under the pod's fsGroup and SELinux level", () => {
    const pod = loadPod('openshift-restricted-v2');
    const result = patched(pod);
    expect(result.warnings).toEqual([]);
    for (const name of ['init-hydrate', 'state-sync']) {
      const context = byName(result.pod.spec!.initContainers, name)!.securityContext!;
      expect(context).toMatchObject({ runAsUser: 1000680000, runAsNonRoot: true });
      // The pod-level fsGroup and SELinux level apply to every container; none of ours overrides them.
      expect(context).not.toHaveProperty('seLinuxOptions');
    }
    expect(result.pod.spec!.securityContext).toEqual(pod.spec!.securityContext);
    expect(result.pod.spec!.securityContext).toMatchObject({ fsGroup: 1000680000, seLinuxOptions: { level: 's0:c26,c15' } });
  });

  it('never fall back to a fixed uid, which would be outside the range: the SCC or the image decides', () => {
    const result = patched(loadPod('openshift-anyuid'), { AGENT_RUN_AS_USER: '1001' });
    for (const name of ['init-hydrate', 'state-sync']) {
      expect(byName(result.pod.spec!.initContainers, name)!.securityContext).not.toHaveProperty('runAsUser');
    }
    expect(result.warnings).toEqual([
      "runner has no non-root runAsUser: agent runs as the image's or the SCC's uid, may miss its private files",
    ]);
  });
});

// A pod Istio injected before us (test/fixtures/pods/istio-classic.yaml).
describe('Istio sidecars', () => {
  const names = (containers: V1Container[] | undefined) => (containers ?? []).map((c) => c.name);

  it('put init-hydrate and state-sync before istio-init, so hydrate reaches S3 before the egress redirect', () => {
    const result = patched(loadPod('istio-classic'));
    expect(names(result.pod.spec!.initContainers)).toEqual(['init-hydrate', 'state-sync', 'istio-init']);
    expect(names(result.pod.spec!.containers)).toEqual(['ambient-code-runner', 'istio-proxy']);
    expect(result.warnings).toEqual(["classic istio-proxy may exit before state-sync's final sync: use Istio native sidecars"]);
  });

  it('in legacy mode put init-hydrate before istio-init and state-sync among the containers', () => {
    const result = patched(loadPod('istio-classic'), { SIDECAR_MODE: 'legacy' });
    expect(names(result.pod.spec!.initContainers)).toEqual(['init-hydrate', 'istio-init']);
    expect(names(result.pod.spec!.containers)).toEqual(['ambient-code-runner', 'istio-proxy', 'state-sync']);
  });

  it('come after a native istio-proxy sidecar, which is up before hydrate starts', () => {
    const pod = loadPod('istio-classic');
    const proxy = pod.spec!.containers.pop()!;
    pod.spec!.initContainers!.push({ ...proxy, restartPolicy: 'Always' });
    const result = patched(pod);
    expect(names(result.pod.spec!.initContainers)).toEqual(['istio-init', 'istio-proxy', 'init-hydrate', 'state-sync']);
    expect(result.warnings).toEqual([]);
  });

  it('warn where no placement helps: a classic istio-proxy behind Istio CNI', () => {
    const pod = loadPod('istio-classic');
    pod.spec!.initContainers![0]!.name = 'istio-validation';
    const result = patched(pod);
    expect(names(result.pod.spec!.initContainers)).toEqual(['istio-validation', 'init-hydrate', 'state-sync']);
    expect(result.warnings).toEqual(['classic istio-proxy with Istio CNI: init-hydrate cannot reach S3; use Istio native sidecars']);
  });

  it('are placed the same when the webhook is invoked again over its own injection', () => {
    const once = patched(loadPod('istio-classic'));
    expect(run(once.pod)).toMatchObject({ outcome: 'allowed', reason: 'reinvocation' });
  });
});

describe('names the webhook adds never clobber the pod', () => {
  const platform = (name: string, script: string): V1Container => ({ name, image: 'quay.io/ambient_code/vteam_state_sync:latest', command: [script] });

  it.each([
    ['an init container', (pod: V1Pod) => (pod.spec!.initContainers = [{ name: 'init-hydrate', image: 'old:1' }]), 'container "init-hydrate"'],
    ['a user sidecar', (pod: V1Pod) => pod.spec!.containers.push({ name: 'state-sync', image: 'mine:1' }), 'container "state-sync"'],
    ['a native user sidecar', (pod: V1Pod) => (pod.spec!.initContainers = [{ name: 'state-sync', image: 'mine:1', restartPolicy: 'Always' }]), 'container "state-sync"'],
    ['a volume', (pod: V1Pod) => pod.spec!.volumes!.push({ name: 'session-storage-state', emptyDir: {} }), 'volume "session-storage-state"'],
    ['a claim', (pod: V1Pod) => pod.spec!.volumes!.push({ name: 'session-storage-tmp', persistentVolumeClaim: { claimName: 'x' } }), 'volume "session-storage-tmp"'],
  ])('denies a pod that already has %s under one of our names, naming it', (_what, change, named) => {
    const pod = loadPod('session-runner');
    change(pod);
    const before = structuredClone(pod);
    for (const mode of ['native', 'legacy']) {
      expect(run(pod, { SIDECAR_MODE: mode })).toEqual({
        outcome: 'denied',
        reason: 'name-collision',
        message:
          `the pod already uses names session storage adds to session pods: ${named}; ` +
          'rename them, or opt the pod out with the annotation ambient-code.io/session-storage: disabled',
        warnings: [],
      });
    }
    expect(pod).toEqual(before);
  });

  it('names every collision in one message', () => {
    const pod = loadPod('session-runner');
    pod.spec!.containers.push({ name: 'state-sync', image: 'mine:1' });
    pod.spec!.volumes!.push({ name: 'session-storage-tmp', emptyDir: {} });
    const result = run(pod);
    expect(result.outcome === 'denied' && result.message).toContain('container "state-sync", volume "session-storage-tmp";');
  });

  it('admits a colliding pod without an agent where none is injected, changing nothing of it', () => {
    const pod = loadPod('session-runner');
    pod.spec!.containers.push({ name: 'state-sync', image: 'mine:1' });
    const result = patched(pod, {}, decideS3({ kind: 'absent' }, defaultConfig().policy));
    expect(result.pod.spec!.containers).toEqual(pod.spec!.containers);
  });

  it("leaves the platform's own rclone agent, which carries our container names, in place", () => {
    const pod = loadPod('session-runner');
    pod.spec!.initContainers = [platform('init-hydrate', '/usr/local/bin/hydrate.sh')];
    pod.spec!.containers.push(platform('state-sync', '/usr/local/bin/sync.sh'));
    expect(run(pod)).toMatchObject({ outcome: 'allowed', reason: 'already-managed', pod });
  });

  it('a user container named state-sync that runs something else is not the platform\'s', () => {
    const pod = loadPod('session-runner');
    pod.spec!.containers.push({ ...platform('state-sync', '/usr/local/bin/hydrate.sh') });
    expect(run(pod)).toMatchObject({ outcome: 'denied', reason: 'name-collision' });
  });
});

describe('grace period', () => {
  // The kubelet stops the native sidecar only after the runner exits, within one grace
  // period: the runner keeps its own share and the final sync gets its budget on top.
  it.each([
    [undefined, {}, 90],
    [20, {}, 80],
    [60, {}, 120],
    [300, {}, 360],
    [60, { FINAL_SYNC_TIMEOUT_SECONDS: '100' }, 175],
    [60, { FINAL_SYNC_TIMEOUT_SECONDS: '30.5', GRACE_PERIOD_MARGIN_SECONDS: '5' }, 96],
  ])('from %s with %o becomes %s: the pod\'s own value plus the final-sync budget plus the margin', (before, env, after) => {
    const pod = loadPod('session-runner');
    pod.spec!.terminationGracePeriodSeconds = before;
    const spec = patched(pod, env).pod.spec!;
    expect(spec.terminationGracePeriodSeconds).toBe(after);
    const budget = Number(envOf(byName(spec.initContainers, 'state-sync')).FINAL_SYNC_TIMEOUT_SECONDS);
    expect(after - (before ?? 30)).toBeGreaterThan(budget);
  });

  it('adds the budget once when re-applied over an earlier injection, and never lowers a forged record', () => {
    const once = patched(loadPod('session-runner'));
    const stripped = structuredClone(once.pod);
    stripped.spec!.initContainers = [];
    expect(patched(stripped).pod.spec!.terminationGracePeriodSeconds).toBe(120);

    const forged = structuredClone(stripped);
    forged.spec!.terminationGracePeriodSeconds = 600;
    expect(patched(forged).pod.spec!.terminationGracePeriodSeconds).toBe(600);
  });

  it('leaves the grace period alone when no agent is injected', () => {
    const pod = loadPod('session-runner');
    const result = patched(pod, {}, decideS3({ kind: 'absent' }, defaultConfig().policy));
    expect(result.pod.spec!.terminationGracePeriodSeconds).toBe(60);
  });
});

describe('status annotation', () => {
  it('records mode, reason, what was injected and the version', () => {
    const result = patched(loadPod('session-runner'), { SIDECAR_MODE: 'legacy' });
    expect(JSON.parse(result.pod.metadata!.annotations![STATUS_ANNOTATION]!)).toEqual({
      mode: 'sync',
      reason: 's3-configured',
      injected: ['emptyDir:workspace', 'volume:session-storage-state', 'volume:session-storage-tmp', 'initContainer:init-hydrate', 'container:state-sync'],
      version: TEST_VERSION,
      podGracePeriodSeconds: 60,
    });
  });
});

describe('state-sync metrics, health and storage reservation', () => {
  it('serves metrics and liveness on SYNC_METRICS_PORT and labels the pod for the PodMonitor', () => {
    const result = patched(loadPod('session-runner'), { SYNC_METRICS_PORT: '9555' });
    const sync = byName(result.pod.spec!.initContainers, 'state-sync')!;
    expect(envOf(sync).SYNC_METRICS_PORT).toBe('9555');
    expect(sync.ports).toEqual([{ name: 'sync-metrics', containerPort: 9555, protocol: 'TCP' }]);
    expect(sync.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'sync-metrics' });
    expect(byName(result.pod.spec!.initContainers, 'init-hydrate')!.ports).toBeUndefined();
    expect(result.pod.metadata!.labels!['ambient-code.io/session-storage-sync']).toBe('enabled');
  });

  it('probes liveness three times 30 s apart at the default threshold, and a tenth of a lower one apart', () => {
    const probe = (env: Record<string, string>) => byName(patched(loadPod('session-runner'), env).pod.spec!.initContainers, 'state-sync')!;
    const standard = probe({});
    expect(envOf(standard).SYNC_UNHEALTHY_MIN_SECONDS).toBe('300');
    expect(envOf(byName(patched(loadPod('session-runner')).pod.spec!.initContainers, 'init-hydrate')!)).not.toHaveProperty('SYNC_UNHEALTHY_MIN_SECONDS');
    expect(standard.livenessProbe).toMatchObject({ periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 });
    // 5 intervals of 3 s is below the floor of 20 s: the threshold is 20 s, probed every 2 s.
    const fast = probe({ SYNC_INTERVAL: '3', SYNC_UNHEALTHY_MIN_SECONDS: '20' });
    expect(envOf(fast).SYNC_UNHEALTHY_MIN_SECONDS).toBe('20');
    expect(fast.livenessProbe).toMatchObject({ periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 });
    // A long interval sets the threshold whatever the floor: 5 x 600 s, probed every 30 s.
    expect(probe({ SYNC_INTERVAL: '600', SYNC_UNHEALTHY_MIN_SECONDS: '20' }).livenessProbe).toMatchObject({ periodSeconds: 30 });
  });

  it('leaves a port the pod already uses to the pod, with a warning', () => {
    const pod = loadPod('session-runner');
    pod.spec!.containers[0]!.ports = [{ containerPort: 9464 }];
    const result = patched(pod);
    const sync = byName(result.pod.spec!.initContainers, 'state-sync')!;
    expect(sync.ports).toBeUndefined();
    expect(sync.livenessProbe).toBeUndefined();
    expect(envOf(sync)).not.toHaveProperty('SYNC_METRICS_PORT');
    expect(envOf(sync)).not.toHaveProperty('SYNC_UNHEALTHY_MIN_SECONDS');
    expect(result.warnings).toContain('port 9464 is in use in the pod: state-sync serves no metrics or health');
  });

  it('SYNC_METRICS_PORT=0 injects no port and no probe', () => {
    const sync = byName(patched(loadPod('session-runner'), { SYNC_METRICS_PORT: '0' }).pod.spec!.initContainers, 'state-sync')!;
    expect(sync.ports).toBeUndefined();
    expect(sync.livenessProbe).toBeUndefined();
  });

  it('reserves the swapped workspace as ephemeral storage on state-sync, only for a swapped PVC', () => {
    const request = (pod: V1Pod, env: Record<string, string> = {}) =>
      byName(patched(pod, env).pod.spec!.initContainers, 'state-sync')!.resources!.requests!['ephemeral-storage'];
    expect(request(loadPod('session-runner'))).toBe('10Gi');
    expect(request(loadPod('session-runner'), { EMPTYDIR_SIZE_LIMIT: '3Gi' })).toBe('3Gi');
    expect(request(loadPod('session-runner'), { RESERVE_WORKSPACE_STORAGE: 'false' })).toBeUndefined();
    expect(request(loadPod('control-plane'))).toBeUndefined();
  });
});

describe('the credentials each S3_CREDENTIALS mode injects', () => {
  const summary = (values: Record<string, string>) => decideS3(
    { kind: 'present', present: new Set(Object.keys(values) as never[]), values },
    { onIncomplete: 'deny', onSecretError: 'deny' },
  );
  const agentOf = (s3: S3Decision) => {
    const pod = patched(loadPod('session-runner'), {}, s3).pod;
    return { hydrate: byName(pod.spec?.initContainers, 'init-hydrate'), sync: byName(pod.spec?.initContainers, 'state-sync'), pod };
  };
  const base = { S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_BUCKET: 'sessions' };

  it('passes a session token from the secret by reference, next to the keys', () => {
    const { hydrate, sync } = agentOf(summary({ ...base, S3_ACCESS_KEY: 'x', S3_SECRET_KEY: 'y', S3_SESSION_TOKEN: 'z' }));
    for (const container of [hydrate, sync]) {
      expect(envOf(container)).toMatchObject({
        AWS_ACCESS_KEY_ID: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_ACCESS_KEY' } },
        AWS_SECRET_ACCESS_KEY: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_SECRET_KEY' } },
        AWS_SESSION_TOKEN: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_SESSION_TOKEN' } },
      });
    }
  });

  it('injects no key references for a workload identity EKS provides', () => {
    const { hydrate, pod } = agentOf(summary({ ...base, S3_CREDENTIALS: 'workload-identity' }));
    const env = envOf(hydrate);
    expect(env.S3_CREDENTIALS).toBe('workload-identity');
    expect(Object.keys(env).filter((name) => name.startsWith('AWS_'))).toEqual([]);
    expect(pod.spec?.volumes?.map((v) => v.name)).not.toContain('session-storage-token');
  });

  it('gives the agent its own web identity token for S3_ROLE_ARN, from STS at S3_STS_ENDPOINT', () => {
    const { hydrate, sync, pod } = agentOf(
      summary({ ...base, S3_CREDENTIALS: 'workload-identity', S3_ROLE_ARN: 'arn:minio:iam:::role/sessions', S3_STS_ENDPOINT: 'https://minio.example.com' }),
    );
    for (const container of [hydrate, sync]) {
      const env = envOf(container);
      expect(env).toMatchObject({
        S3_CREDENTIALS: 'workload-identity',
        AWS_ROLE_ARN: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_ROLE_ARN' } },
        S3_STS_ENDPOINT: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_STS_ENDPOINT' } },
        AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/session-storage/serviceaccount/token',
      });
      expect(env.AWS_ACCESS_KEY_ID).toBeUndefined();
      expect(container?.volumeMounts).toContainEqual({ name: 'session-storage-token', mountPath: '/var/run/secrets/session-storage/serviceaccount', readOnly: true });
    }
    expect(pod.spec?.volumes).toContainEqual({
      name: 'session-storage-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 3600, path: 'token' } }] },
    });
  });
});

describe("the agent's network: a private CA and a proxy", () => {
  it('mounts the CA bundle of AGENT_CA_CONFIGMAP for Node and passes the proxy settings on', () => {
    const pod = patched(loadPod('session-runner'), {
      AGENT_CA_CONFIGMAP: 'internal-ca',
      AGENT_CA_KEY: 'bundle.pem',
      AGENT_HTTPS_PROXY: 'http://proxy.internal:3128',
      AGENT_NO_PROXY: '.svc,.cluster.local,10.0.0.0/8',
    }).pod;
    for (const name of ['init-hydrate', 'state-sync']) {
      const container = byName(pod.spec?.initContainers, name);
      expect(envOf(container)).toMatchObject({
        NODE_EXTRA_CA_CERTS: '/etc/session-storage/ca/ca.crt',
        HTTPS_PROXY: 'http://proxy.internal:3128',
        NO_PROXY: '.svc,.cluster.local,10.0.0.0/8',
      });
      expect(container?.volumeMounts).toContainEqual({ name: 'session-storage-ca', mountPath: '/etc/session-storage/ca', readOnly: true });
    }
    expect(pod.spec?.volumes).toContainEqual({ name: 'session-storage-ca', configMap: { name: 'internal-ca', items: [{ key: 'bundle.pem', path: 'ca.crt' }] } });
  });

  it('adds nothing of the kind when none is configured', () => {
    const pod = patched(loadPod('session-runner')).pod;
    const env = envOf(byName(pod.spec?.initContainers, 'init-hydrate'));
    for (const name of ['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']) expect(env[name]).toBeUndefined();
  });
});
