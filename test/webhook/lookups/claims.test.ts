import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { admitPod } from '../../../src/webhook/admission/admission.js';
import { decideClaim, type ClaimLookup, type ClaimSource, type NamespaceLookup } from '../../../src/webhook/lookups/claim-source.js';
import { ApiException } from '@kubernetes/client-node';
import { describeError, limitedRead, RateLimiter } from '../../../src/webhook/lookups/kube-read.js';
import { ManifestSecretSource, parseSecretManifests, type SecretSource } from '../../../src/webhook/lookups/secret-source.js';
import { defaultConfig, loadPod, readFixture } from '../fixtures.js';

const ENABLED_AT = 'ambient-code.io/session-storage-enabled-at';
const OPT_IN = '2026-01-15T09:00:00Z';

/** A cluster with the given PVCs and namespace annotations, recording every read. */
function cluster(
  claims: Record<string, ClaimLookup>,
  namespace: NamespaceLookup = { kind: 'present', annotations: { [ENABLED_AT]: OPT_IN } },
) {
  const reads: string[] = [];
  const source: ClaimSource = {
    claim: (ns, name) => {
      reads.push(`pvc ${ns}/${name}`);
      return Promise.resolve(claims[name] ?? { kind: 'absent' });
    },
    namespace: (name) => {
      reads.push(`namespace ${name}`);
      return Promise.resolve(namespace);
    },
  };
  return { source, reads };
}

const pvc = (createdAt: string, phase = 'Bound', annotations: Record<string, string> = {}): ClaimLookup => ({
  kind: 'present',
  createdAt: new Date(createdAt),
  phase,
  annotations,
});
const decide = (pod: V1Pod, source: ClaimSource) =>
  decideClaim(pod, 'project-a', pod.metadata?.labels?.['agentic-session'] ?? 'sess-b2', 'workspace', source);

describe('sessions that still live on a PVC', () => {
  it('keeps the PVC of a session created before the namespace opted in', async () => {
    const { source, reads } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-10T12:00:00Z') });
    expect(await decide(loadPod('session-runner'), source)).toEqual({
      kind: 'keep',
      warning: 'existing PVC kept, no S3 sync (created before the opt-in): ambient-workspace-sess-7f3a',
    });
    expect(reads).toEqual(['pvc project-a/ambient-workspace-sess-7f3a', 'namespace project-a']);
  });

  it.each([
    ['created at the opt-in time', '2026-01-15T09:00:00Z'],
    ['created after it (the operator creates the PVC just before the pod)', '2026-01-15T09:00:01Z'],
  ])('swaps a PVC %s: a new session, which gets S3', async (_name, createdAt) => {
    const { source } = cluster({ 'ambient-workspace-sess-7f3a': pvc(createdAt) });
    expect(await decide(loadPod('session-runner'), source)).toEqual({ kind: 'swap' });
  });

  it('compares instants, whatever offset the annotation is written in', async () => {
    const { source } = cluster(
      { 'ambient-workspace-sess-7f3a': pvc('2026-01-15T08:30:00Z') },
      { kind: 'present', annotations: { [ENABLED_AT]: '2026-01-15T10:00:00+01:00' } },
    );
    expect(await decide(loadPod('session-runner'), source)).toMatchObject({ kind: 'keep' });
  });

  it('swaps without reading the namespace when the PVC does not exist yet', async () => {
    const { source, reads } = cluster({});
    expect(await decide(loadPod('session-runner'), source)).toEqual({ kind: 'swap' });
    expect(reads).toEqual(['pvc project-a/ambient-workspace-sess-7f3a']);
  });

  it("looks up the PVC the pod names, so a continuation keeps its parent's PVC", async () => {
    const pod = loadPod('session-runner');
    pod.metadata!.labels!['agentic-session'] = 'sess-7f3a-cont';
    const { source, reads } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-02T00:00:00Z') });
    expect(await decide(pod, source)).toMatchObject({ kind: 'keep' });
    expect(reads[0]).toBe('pvc project-a/ambient-workspace-sess-7f3a');
  });

  it('looks up the only PVC when none is named like the state volume', async () => {
    const pod = loadPod('session-runner');
    pod.spec!.volumes![0]!.name = 'data';
    const { source, reads } = cluster({});
    await decide(pod, source);
    expect(reads).toEqual(['pvc project-a/ambient-workspace-sess-7f3a']);
  });

  it('reads nothing for a pod whose state volume is no PVC', async () => {
    const { source, reads } = cluster({});
    const pod = loadPod('session-generate-name');
    pod.spec!.volumes![0] = { name: 'workspace', emptyDir: {} };
    expect(await decide(pod, source)).toEqual({ kind: 'swap' });
    expect(await decide(loadPod('control-plane'), source)).toEqual({ kind: 'swap' });
    expect(reads).toEqual([]);
  });

  it("swaps a PVC whose files were copied to S3 under this session's name, for this session only", async () => {
    const migrated = { 'ambient-code.io/session-storage-migrated-to': 'sess-7f3a' };
    const { source, reads } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-10T12:00:00Z', 'Bound', migrated) });
    expect(await decide(loadPod('session-runner'), source)).toEqual({ kind: 'swap' });
    expect(reads).toEqual(['pvc project-a/ambient-workspace-sess-7f3a']);
    // A continuation names the same PVC; its own S3 prefix holds nothing.
    const continuation = loadPod('session-runner');
    continuation.metadata!.labels!['agentic-session'] = 'sess-7f3a-cont';
    expect(await decide(continuation, source)).toMatchObject({ kind: 'keep' });
  });

  describe('with no opt-in time recorded on the namespace', () => {
    const none: NamespaceLookup = { kind: 'present', annotations: {} };

    it.each(['Bound', 'Lost', undefined])('keeps a PVC in phase %s: it may hold state', async (phase) => {
      const { source } = cluster({ 'ambient-workspace-sess-7f3a': { kind: 'present', createdAt: new Date(), phase, annotations: {} } }, none);
      expect(await decide(loadPod('session-runner'), source)).toEqual({
        kind: 'keep',
        warning: 'existing PVC kept, no S3 sync (bound, namespace has no opt-in time): ambient-workspace-sess-7f3a',
      });
    });

    it('swaps a PVC that was never bound: it holds nothing', async () => {
      const { source } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2020-01-01T00:00:00Z', 'Pending') }, none);
      expect(await decide(loadPod('session-runner'), source)).toEqual({ kind: 'swap' });
    });
  });

  it.each(['yesterday', '2026-01-15', '2026-01-15 09:00:00', '1/15/2026'])(
    'denies when the opt-in time "%s" is not RFC 3339, naming the annotation and the format',
    async (value) => {
      const { source } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-10T12:00:00Z') }, { kind: 'present', annotations: { [ENABLED_AT]: value } });
      expect(await decide(loadPod('session-runner'), source)).toEqual({
        kind: 'deny',
        reason: 'invalid-enabled-at',
        message: `namespace annotation ${ENABLED_AT} must be an RFC 3339 time like 2026-01-15T09:00:00Z (got "${value}")`,
      });
    },
  );

  it('denies, never guesses, when the PVC or the namespace cannot be read', async () => {
    const failing = cluster({ 'ambient-workspace-sess-7f3a': { kind: 'error', reason: 'HTTP 403: forbidden' } });
    expect(await decide(loadPod('session-runner'), failing.source)).toEqual({
      kind: 'deny',
      reason: 'claim-lookup-failed',
      message: 'failed to read PVC ambient-workspace-sess-7f3a: HTTP 403: forbidden',
    });
    const noNamespace = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-10T12:00:00Z') }, { kind: 'error', reason: 'timed out after 2000 ms' });
    expect(await decide(loadPod('session-runner'), noNamespace.source)).toEqual({
      kind: 'deny',
      reason: 'claim-lookup-failed',
      message: 'failed to read namespace project-a: timed out after 2000 ms',
    });
  });
});

describe('admission with existing PVCs', () => {
  const config = defaultConfig();
  const secretsOf = (name: string) => new ManifestSecretSource(parseSecretManifests(readFixture(`secrets/${name}.yaml`), name));
  const unread: SecretSource = {
    get: () => Promise.reject(new Error('the secret must not be read for this pod')),
    ready: () => true,
    close: () => undefined,
  };
  const admit = (pod: V1Pod, claims: ClaimSource, secrets: SecretSource) =>
    admitPod(pod, 'project-a', { config: config.mutation, policy: config.policy, secrets, claims });

  it('admits an old session unchanged, whatever its S3 settings now say', async () => {
    const pod = loadPod('session-runner');
    const before = structuredClone(pod);
    const { source } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-10T12:00:00Z') });
    expect(await admit(pod, source, unread)).toEqual({
      outcome: 'allowed',
      reason: 'existing-pvc-session',
      pod: before,
      warnings: ['existing PVC kept, no S3 sync (created before the opt-in): ambient-workspace-sess-7f3a'],
    });
  });

  it('gives a new session S3 and the EmptyDir', async () => {
    const { source } = cluster({ 'ambient-workspace-sess-7f3a': pvc('2026-01-16T00:00:00Z') });
    const result = await admit(loadPod('session-runner'), source, secretsOf('complete'));
    expect(result).toMatchObject({ outcome: 'patched', reason: 's3-configured' });
    if (result.outcome !== 'patched') return;
    expect(result.pod.spec!.volumes![0]).toEqual({ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } });
    expect(result.pod.spec!.initContainers!.map((c) => c.name)).toEqual(['init-hydrate', 'state-sync']);
  });

  it('passes a lookup failure on as a denial', async () => {
    const { source } = cluster({ 'ambient-workspace-sess-7f3a': { kind: 'error', reason: 'HTTP 500' } });
    expect(await admit(loadPod('session-runner'), source, unread)).toEqual({
      outcome: 'denied',
      reason: 'claim-lookup-failed',
      message: 'failed to read PVC ambient-workspace-sess-7f3a: HTTP 500',
      warnings: [],
    });
  });

  it("reads nothing at all for the platform's own S3 pods, plain pods and opted-out pods", async () => {
    const { source, reads } = cluster({});
    for (const name of ['platform-s3-operator', 'plain-pod', 'opted-out']) {
      expect((await admit(loadPod(name), source, unread)).outcome).toBe('allowed');
    }
    expect(reads).toEqual([]);
  });
});

describe('API read pacing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('allows a burst of the per-second rate, then spaces reads evenly', () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new RateLimiter(5);
    expect([0, 1, 2, 3, 4].map(() => limiter.reserve(0))).toEqual([0, 0, 0, 0, 0]);
    expect(limiter.reserve(0)).toBeUndefined();
    expect(limiter.reserve(1000)).toBe(200);
    expect(limiter.reserve(1000)).toBe(400);
    vi.setSystemTime(2000);
    expect(limiter.reserve(0)).toBe(0);
  });

  it('takes no slot from a caller that will not wait long enough', () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new RateLimiter(1);
    expect(limiter.reserve(0)).toBe(0);
    expect(limiter.reserve(500)).toBeUndefined();
    expect(limiter.reserve(1000)).toBe(1000);
  });

  it('times a read out, counting the wait for its slot', async () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new RateLimiter(1);
    limiter.reserve(0);
    const read = limitedRead(limiter, 1500, () => new Promise<never>(() => undefined));
    const settled = expect(read).rejects.toThrow('timed out after 1500 ms');
    await vi.advanceTimersByTimeAsync(1499);
    await vi.advanceTimersByTimeAsync(1);
    await settled;
  });

  it('refuses a read that could not start within its timeout', async () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new RateLimiter(1);
    limiter.reserve(0);
    await expect(limitedRead(limiter, 500, () => Promise.resolve('x'))).rejects.toThrow('over the API read rate limit for 500 ms');
  });
});

describe('API read failures', () => {
  it("name the API server's reason, whether the client hands the body over as text or parsed", () => {
    const status = { kind: 'Status', message: 'persistentvolumeclaims "x" is forbidden: User "system:serviceaccount:a:b" cannot get resource' };
    expect(describeError(new ApiException(403, 'Unknown API Status Code!', JSON.stringify(status), {}))).toBe(`HTTP 403: ${status.message}`);
    expect(describeError(new ApiException(403, 'Unknown API Status Code!', status, {}))).toBe(`HTTP 403: ${status.message}`);
    expect(describeError(new ApiException(502, 'Unknown API Status Code!', '<html>bad gateway</html>', {}))).toBe('HTTP 502');
    expect(describeError(new Error('timed out after 2000 ms'))).toBe('timed out after 2000 ms');
  });
});
