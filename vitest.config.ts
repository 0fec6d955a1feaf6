import { defineConfig } from 'vitest/config';

// Five tiers, one `vitest run`: pure unit tests, tests of the built CLI, integration tests
// against a real MinIO, end-to-end tests against a real kube-apiserver + etcd (and MinIO),
// and real pods on a kubelet + containerd + runc node (test/node). Each tier's global setup starts only what that tier needs; every tier that runs
// dist/cli.js builds it first (once per run).
const BUILD = 'test/support/build-global-setup.ts';
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.it.test.ts', 'test/e2e/**', 'test/cli/**', 'test/node/**'],
        },
      },
      {
        test: {
          name: 'cli',
          include: ['test/cli/**/*.test.ts'],
          exclude: ['test/**/*.it.test.ts'],
          globalSetup: [BUILD],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.it.test.ts'],
          exclude: ['test/e2e/**', 'test/node/**'],
          globalSetup: [BUILD, 'test/support/minio-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: [BUILD, 'test/support/minio-global-setup.ts', 'test/support/cluster-global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // e2e files share one API server and MinIO; running them one at a time keeps
          // a 2-core CI machine from timing out the control plane.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          // The image is built from dist/ (scripts/build-image.mjs), then the node comes up
          // with it imported (scripts/node-tier.sh) and the webhook is installed from
          // manifests/ as a Deployment: one node for the tier, namespaces per scenario.
          globalSetup: [BUILD, 'test/node/support/node-global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          // Scenarios mostly wait on pods (grace periods, probes): files run side by side so
          // the long waits overlap; each scenario has its own namespace and bucket.
          pool: 'forks',
        },
      },
    ],
  },
});
