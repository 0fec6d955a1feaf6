import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MinioInfo } from './minio.js';

// Debian's package, installed by scripts/install-rclone.sh (part of `npm run deps`).
export const RCLONE_BIN = '/usr/bin/rclone';

const execFileAsync = promisify(execFile);

// The exclude list of the platform's components/runners/state-sync/sync.sh.
const PLATFORM_EXCLUDES = [
  'repos/**',
  'node_modules/**',
  '.venv/**',
  '__pycache__/**',
  '.cache/**',
  '*.pyc',
  'target/**',
  'dist/**',
  'build/**',
  '.git/**',
  '.claude/debug/**',
];

export interface PlatformCredentials {
  accessKey: string;
  secretKey: string;
}

// Writes session state exactly the way the platform's state-sync sidecar does: one
// `rclone sync --checksum --copy-links` per path (the .claude directory first, then
// `artifacts` and `file-uploads` of the workspace), then metadata.json with an integer
// pathsSynced and no manifest, copied up with `rclone copy`. A missing rclone fails the
// test (it is never skipped): run scripts/install-rclone.sh.
export async function platformSync(
  minio: MinioInfo,
  bucket: string,
  namespace: string,
  session: string,
  workspace: string,
  credentials: PlatformCredentials = { accessKey: minio.accessKey, secretKey: minio.secretKey },
): Promise<void> {
  if (!existsSync(RCLONE_BIN)) {
    throw new Error(`${RCLONE_BIN} is missing: run \`npm run deps\` (scripts/install-rclone.sh) to install rclone`);
  }
  // The remote is configured on the fly from the environment, so no config file holds
  // the credentials.
  const env = {
    PATH: process.env.PATH ?? '',
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_PLATFORM_TYPE: 's3',
    RCLONE_CONFIG_PLATFORM_PROVIDER: 'Minio',
    RCLONE_CONFIG_PLATFORM_ACCESS_KEY_ID: credentials.accessKey,
    RCLONE_CONFIG_PLATFORM_SECRET_ACCESS_KEY: credentials.secretKey,
    RCLONE_CONFIG_PLATFORM_ENDPOINT: minio.endpoint,
    RCLONE_CONFIG_PLATFORM_REGION: minio.region,
    RCLONE_CONFIG_PLATFORM_ACL: 'private',
  };
  const remote = `platform:${bucket}/${namespace}/${session}`;
  const excludes = PLATFORM_EXCLUDES.flatMap((pattern) => ['--exclude', pattern]);
  let synced = 0;
  for (const name of ['.claude', 'artifacts', 'file-uploads']) {
    const local = path.join(workspace, name);
    if (!(await stat(local).catch(() => undefined))?.isDirectory()) continue;
    await execFileAsync(
      RCLONE_BIN,
      ['sync', local, `${remote}/${name}/`, '--checksum', '--copy-links', '--transfers', '4', '--fast-list', ...excludes],
      { env },
    );
    synced += 1;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'platform-metadata-'));
  try {
    const metadata = path.join(dir, 'metadata.json');
    await writeFile(
      metadata,
      `{"lastSync": "${new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00')}", "session": "${session}", "namespace": "${namespace}", "pathsSynced": ${synced}}\n`,
    );
    await execFileAsync(RCLONE_BIN, ['copy', metadata, `${remote}/`], { env });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
