import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { findContinuation } from '../../../src/webhook/mutation/continuation.js';
import { mutate, type MutationResult } from '../../../src/webhook/mutation/mutate.js';
import type { S3Decision } from '../../../src/webhook/config/s3-settings.js';
import { PARENT_ANNOTATION } from '../../../src/webhook/config/names.js';
import { defaultConfig, loadPod } from '../fixtures.js';

const SYNC: S3Decision = { kind: 'sync', reason: 's3-configured', hasRegion: true };

function patched(pod: V1Pod, s3: S3Decision = SYNC): Extract<MutationResult, { outcome: 'patched' }> {
  const result = mutate(pod, defaultConfig().mutation, s3);
  if (result.outcome !== 'patched') throw new Error(`expected a patched pod, got ${result.outcome}`);
  return result;
}

const byName = (containers: V1Container[] | undefined, name: string) => containers?.find((c) => c.name === name);
const envOf = (container: V1Container | undefined) => Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));
const runner = (pod: V1Pod) => byName(pod.spec!.containers, 'ambient-code-runner')!;

describe('recognising a continuation in each pod generation', () => {
  it("the PVC era's pod: the parent's claim and PARENT_SESSION_ID (test/fixtures/pods/pvc-continuation.yaml)", () => {
    expect(findContinuation(loadPod('pvc-continuation'), 'sess-child', [])).toEqual({ parent: 'sess-parent', from: 'env' });
  });

  it("the PVC era's claim alone, from operators that did not pass the parent to the runner", () => {
    const pod = loadPod('pvc-continuation');
    runner(pod).env = runner(pod).env!.filter((e) => e.name !== 'PARENT_SESSION_ID');
    expect(findContinuation(pod, 'sess-child', [])).toEqual({ parent: 'sess-parent', from: 'claim' });
  });

  it("the operator's PARENT_SESSION_ID on a pod with its own claim (the parent's volume was gone: a grandchild)", () => {
    const pod = loadPod('pvc-continuation');
    pod.spec!.volumes![0]!.persistentVolumeClaim!.claimName = 'ambient-workspace-sess-child';
    expect(findContinuation(pod, 'sess-child', [])).toEqual({ parent: 'sess-parent', from: 'env' });
  });

  it("the operator's PARENT_SESSION_ID on an EmptyDir pod; the last value of the container wins", () => {
    const pod = loadPod('session-runner');
    pod.spec!.volumes = [{ name: 'workspace', emptyDir: {} }];
    runner(pod).env!.push({ name: 'PARENT_SESSION_ID', value: 'first' }, { name: 'PARENT_SESSION_ID', value: ' sess-root ' });
    expect(findContinuation(pod, 'sess-7f3a', [])).toEqual({ parent: 'sess-root', from: 'env' });
  });

  it("none in the session's own pods, nor in the control plane's, which carry no parent (test/fixtures/pods/control-plane.yaml)", () => {
    expect(findContinuation(loadPod('session-runner'), 'sess-7f3a', [])).toBeUndefined();
    expect(findContinuation(loadPod('control-plane'), 'sess-cp1', [])).toBeUndefined();
  });

  it('ignores a parent that is the session itself, or a reference it cannot read', () => {
    const pod = loadPod('session-runner');
    runner(pod).env!.push({ name: 'PARENT_SESSION_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(findContinuation(pod, 'sess-7f3a', [])).toBeUndefined();
    runner(pod).env!.push({ name: 'PARENT_SESSION_ID', value: 'sess-7f3a' });
    expect(findContinuation(pod, 'sess-7f3a', [])).toBeUndefined();
  });

  it('warns about a parent that cannot name a session, and starts the session without it', () => {
    const pod = loadPod('session-runner');
    runner(pod).env!.push({ name: 'PARENT_SESSION_ID', value: 'Not_A_Session' });
    const warnings: string[] = [];
    expect(findContinuation(pod, 'sess-7f3a', warnings)).toBeUndefined();
    expect(warnings).toEqual(['parent session "Not_A_Session" is not a session name: this session starts without its parent\'s state']);
  });
});

describe('what the mutation gives a continuation', () => {
  it("tells init-hydrate the parent and records it on the pod; state-sync and the runner are left as they were", () => {
    const result = patched(loadPod('pvc-continuation'));
    expect(envOf(byName(result.pod.spec!.initContainers, 'init-hydrate')).PARENT_SESSION_NAME).toBe('sess-parent');
    expect(envOf(byName(result.pod.spec!.initContainers, 'state-sync'))).not.toHaveProperty('PARENT_SESSION_NAME');
    expect(result.pod.metadata!.annotations![PARENT_ANNOTATION]).toBe('sess-parent');
    // The child's own prefix: a continuation has its own state after its first pod.
    expect(envOf(byName(result.pod.spec!.initContainers, 'init-hydrate')).SESSION_NAME).toBe('sess-child');
    expect(result.pod.spec!.volumes!.find((v) => v.name === 'workspace')).toEqual({ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } });
  });

  it('keeps the parent when the mutation is applied again over its own output, the claim gone', () => {
    const once = patched(loadPod('pvc-continuation')).pod;
    runner(once).env = runner(once).env!.filter((e) => e.name !== 'PARENT_SESSION_ID');
    // A stale earlier injection: the status annotation without our containers.
    once.spec!.initContainers = once.spec!.initContainers!.filter((c) => c.name === 'init-workspace');
    const again = patched(once);
    expect(envOf(byName(again.pod.spec!.initContainers, 'init-hydrate')).PARENT_SESSION_NAME).toBe('sess-parent');
    expect(byName(again.pod.spec!.initContainers, 'init-hydrate')!.env!.filter((e) => e.name === 'PARENT_SESSION_NAME')).toHaveLength(1);
  });

  it('gives an ephemeral continuation (no S3) nothing: there is no state to start from', () => {
    const result = patched(loadPod('pvc-continuation'), { kind: 'ephemeral', reason: 'secret-absent', warning: 'S3 not configured: session state is ephemeral' });
    expect(result.pod.metadata!.annotations).not.toHaveProperty(PARENT_ANNOTATION);
  });
});
