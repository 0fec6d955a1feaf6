import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterInfo } from './cluster.js';

// The e2e files share one API server and its single MutatingWebhookConfiguration, which
// each file points at its own webhook process. Each file holds this lock from its first
// hook to its last, so their correctness does not hang on the pool settings of
// vitest.config.ts (fileParallelism cannot be set per project). mkdir is atomic, and the
// lock lives in the cluster's temporary folder, so it disappears with the cluster.
export async function lockCluster(cluster: ClusterInfo, timeoutMs = 280_000): Promise<() => Promise<void>> {
  const path = join(cluster.dataDir, 'e2e.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(path);
      return () => rmdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (Date.now() > deadline) throw new Error(`another e2e file held ${path} for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
