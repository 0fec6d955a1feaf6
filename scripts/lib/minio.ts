import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './free-port.js';

// The one MinIO harness of the repository: the test tiers (test/support/minio.ts),
// `npm run demo` and `npm run bench` start their servers through it. The demo is compiled to another folder,
// so the repository root is found from the harness's own location in either layout.
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root above scripts/lib');
    dir = parent;
  }
  return dir;
}

export const ROOT = findRoot();
export const MINIO_BIN = path.join(ROOT, '.cache/bin/minio');
export const MINIO_ADMIN_BIN = path.join(ROOT, '.cache/bin/minio-admin');

export interface MinioInfo {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  binPath: string;
}

export interface MinioServer extends MinioInfo {
  dataDir: string;
  // Stops the server, keeping its data, so a test can restart it on the same port.
  stop(): Promise<void>;
  start(): Promise<void>;
  // Freezes the server (SIGSTOP): connections are accepted by the kernel but never
  // answered, the way a hung endpoint behaves.
  pause(): void;
  resume(): void;
  // Stops the server and removes its data.
  destroy(): Promise<void>;
}

// Over TLS the server's certificate is checked against the test's CA.
function ready(endpoint: string, ca: string | undefined): Promise<boolean> {
  const url = `${endpoint}/minio/health/ready`;
  if (ca === undefined) return fetch(url).then((response) => response.ok);
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    }).once('error', reject);
  });
}

async function waitReady(endpoint: string, child: ChildProcess, output: () => string, ca?: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`minio exited with ${child.exitCode}: ${output()}`);
    try {
      if (await ready(endpoint, ca)) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`minio did not become ready within 30s: ${output()}`);
}

export interface MinioOptions {
  /** emptied and used instead of a temporary folder (the bench keeps its data on disk) */
  dataDir?: string;
  /** serve /minio/metrics without a token: the bench reads its request counters there */
  publicMetrics?: boolean;
  /** the server's region (MINIO_SITE_REGION); requests signed for another are refused */
  region?: string;
  /** serve HTTPS with this certificate (PEM), issued by `ca` */
  tls?: { cert: string; key: string; ca: string };
  /** CA certificates (PEM) MinIO trusts for its own outgoing requests (an OpenID provider's) */
  trustedCas?: string[];
  /** more server settings (MINIO_IDENTITY_OPENID_*, ...) */
  env?: Record<string, string>;
}

// A real MinIO on a free loopback port with a temporary data folder and random root
// credentials. The binary comes from scripts/build-minio.sh.
export async function startMinio(options: MinioOptions = {}): Promise<MinioServer> {
  if (!existsSync(MINIO_BIN)) {
    throw new Error(`${MINIO_BIN} is missing: run \`npm run deps\` (scripts/build-minio.sh) to build MinIO`);
  }
  const port = await freePort();
  const consolePort = await freePort();
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'minio-data-')));
  if (options.dataDir !== undefined) {
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dataDir, { recursive: true });
  }
  const accessKey = `root${randomBytes(6).toString('hex')}`;
  const secretKey = randomBytes(18).toString('hex');
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  // MinIO serves TLS from public.crt/private.key and trusts CAs/* of its certificate folder.
  const certsDir = path.join(dataDir, '..', `${path.basename(dataDir)}-certs`);
  await mkdir(path.join(certsDir, 'CAs'), { recursive: true });
  if (options.tls) {
    await writeFile(path.join(certsDir, 'public.crt'), options.tls.cert);
    await writeFile(path.join(certsDir, 'private.key'), options.tls.key, { mode: 0o600 });
  }
  for (const [index, ca] of (options.trustedCas ?? []).entries()) await writeFile(path.join(certsDir, 'CAs', `ca-${index}.crt`), ca);

  const start = async () => {
    let log = '';
    const proc = spawn(
      MINIO_BIN,
      ['server', '--quiet', '--certs-dir', certsDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, dataDir],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dataDir,
          MINIO_ROOT_USER: accessKey,
          MINIO_ROOT_PASSWORD: secretKey,
          MINIO_BROWSER: 'off',
          MINIO_UPDATE: 'off',
          MINIO_CI_CD: '1',
          ...(options.publicMetrics ? { MINIO_PROMETHEUS_AUTH_TYPE: 'public' } : {}),
          ...(options.region === undefined ? {} : { MINIO_SITE_REGION: options.region }),
          ...options.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    proc.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child = proc;
    await waitReady(endpoint, proc, () => log.slice(-2000), options.tls?.ca);
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    endpoint,
    region: options.region ?? 'us-east-1',
    accessKey,
    secretKey,
    binPath: MINIO_BIN,
    dataDir,
    stop,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    destroy: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
      await rm(certsDir, { recursive: true, force: true });
    },
  };
}

export function rootClient(minio: MinioInfo): S3Client {
  return new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createBucket(minio: MinioInfo, prefix = 'test'): Promise<string> {
  const bucket = `${prefix}-${randomBytes(5).toString('hex')}`;
  const client = rootClient(minio);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}
