import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { mutate } from '../../../src/webhook/mutation/mutate.js';
import { defaultConfig, loadPod } from '../fixtures.js';

// The Gemini runner keeps its state in .gemini, named by RUNNER_STATE_DIR, which the
// platform's operator sets on the runner from its agent registry and mounts as
// /app/<dir> from that subPath of the workspace (components/operator/internal/handlers/
// sessions.go, components/manifests/base/core/agent-registry-configmap.yaml).
function geminiRunner(dir: string | undefined, subPath?: string): V1Pod {
  const pod = loadPod('session-runner');
  const runner = pod.spec!.containers[0]!;
  if (dir !== undefined) runner.env!.push({ name: 'RUNNER_STATE_DIR', value: dir });
  runner.volumeMounts = [{ name: 'workspace', mountPath: '/workspace' }, ...(subPath ? [{ name: 'workspace', mountPath: `/app/${dir}`, subPath }] : [])];
  return pod;
}

function syncPaths(pod: V1Pod, env: Record<string, string> = {}): { paths: string; warnings: string[] } {
  const result = mutate(pod, defaultConfig(env).mutation, { kind: 'sync', reason: 's3-configured', hasRegion: true });
  if (result.outcome !== 'patched') throw new Error(result.outcome);
  const hydrate = result.pod.spec!.initContainers!.find((c: V1Container) => c.name === 'init-hydrate')!;
  return { paths: hydrate.env!.find((e) => e.name === 'SYNC_PATHS')!.value!, warnings: result.warnings };
}

describe("the runner's state directory", () => {
  it('syncs .gemini beside .claude by default', () => {
    expect(syncPaths(geminiRunner(undefined)).paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads');
    expect(syncPaths(geminiRunner('.gemini', '.gemini')).paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads');
  });

  it('adds a RUNNER_STATE_DIR the sync paths do not name, from the subPath the runner mounts it from', () => {
    expect(syncPaths(geminiRunner('.codex', '.codex')).paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads,.codex');
    expect(syncPaths(geminiRunner('.codex', 'sessions/s1/.codex/')).paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads,.codex=sessions/s1/.codex');
    expect(syncPaths(geminiRunner('.codex')).paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads,.codex');
  });

  it("adds it to an operator's own SYNC_PATHS as well", () => {
    expect(syncPaths(geminiRunner('.gemini', '.gemini'), { SYNC_PATHS: '.claude,artifacts' }).paths).toBe('.claude,artifacts,.gemini');
  });

  it('warns about a RUNNER_STATE_DIR that cannot be a sync path, and syncs the rest', () => {
    const { paths, warnings } = syncPaths(geminiRunner('state/.codex'));
    expect(paths).toBe('.claude,.gemini,artifacts,uploads,file-uploads');
    expect(warnings).toContain('RUNNER_STATE_DIR "state/.codex" cannot be a sync path: the runner\'s state there is not saved');
  });
});
