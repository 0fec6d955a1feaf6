import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startCluster, type ClusterInfo } from './cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

// One control plane for the whole e2e tier: starting etcd + kube-apiserver costs seconds,
// and tests isolate themselves by namespace.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startCluster();
  const { stop, ...info } = cluster;
  project.provide('cluster', info);
  return stop;
}
