import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MINIO_ADMIN_BIN, type MinioInfo } from '../../scripts/lib/minio.js';

// The server itself is scripts/lib/minio.ts, shared with `npm run demo`; users and
// policies are a test concern.
export {
  createBucket,
  MINIO_ADMIN_BIN,
  MINIO_BIN,
  rootClient,
  startMinio,
  type MinioInfo,
  type MinioServer,
} from '../../scripts/lib/minio.js';

const execFileAsync = promisify(execFile);

// Creates a MinIO user with exactly the given IAM policy (scripts/minio-admin).
export async function addUser(minio: MinioInfo, policy: object): Promise<{ accessKey: string; secretKey: string }> {
  const accessKey = `user${randomBytes(5).toString('hex')}`;
  const secretKey = randomBytes(16).toString('hex');
  const dir = await mkdtemp(path.join(tmpdir(), 'minio-policy-'));
  const policyFile = path.join(dir, 'policy.json');
  try {
    await writeFile(policyFile, JSON.stringify(policy));
    await execFileAsync(MINIO_ADMIN_BIN, ['add-user', minio.endpoint, accessKey, secretKey, policyFile], {
      env: { MINIO_ROOT_USER: minio.accessKey, MINIO_ROOT_PASSWORD: minio.secretKey },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { accessKey, secretKey };
}
