import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMinio, type MinioInfo } from './minio.js';

declare module 'vitest' {
  export interface ProvidedContext {
    minio: MinioInfo;
  }
}

// One MinIO for the tier; tests isolate themselves with their own buckets.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const minio = await startMinio();
  project.provide('minio', {
    endpoint: minio.endpoint,
    region: minio.region,
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
    binPath: minio.binPath,
  });
  return minio.destroy;
}
