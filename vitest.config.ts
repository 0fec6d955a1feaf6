import { defineConfig } from 'vitest/config';

// Three tiers, one `vitest run`: pure unit tests, integration tests against a real
// MinIO, and end-to-end tests against a real kube-apiserver + etcd (and MinIO).
// Each tier's global setup starts only the servers that tier needs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.it.test.ts', 'test/e2e/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.it.test.ts'],
          exclude: ['test/e2e/**'],
          globalSetup: ['test/support/minio-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/minio-global-setup.ts', 'test/support/cluster-global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // e2e files share one API server and MinIO; running them one at a time keeps
          // a 2-core CI machine from timing out the control plane.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
