import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { freePort } from '../../test/support/free-port.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface Minio {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  pid: number;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

async function waitLive(endpoint: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`minio exited with ${child.exitCode} before becoming live`);
    try {
      const response = await fetch(`${endpoint}/minio/health/live`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('minio did not become live within 60 s');
}

/**
 * One MinIO on loopback for the whole benchmark. Its request counters are public so each
 * tool's requests can be read from the server's own accounting rather than a proxy that
 * would slow the tools down.
 */
export async function startMinio(binPath: string, dataDir: string): Promise<Minio> {
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKey = 'benchadmin';
  const secretKey = 'bench-secret-key';
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(
    binPath,
    ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    {
      env: {
        ...process.env,
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_PROMETHEUS_AUTH_TYPE: 'public',
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  await Promise.race([waitLive(endpoint, child), spawnFailed]);
  const region = 'us-east-1';
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
  return {
    endpoint,
    region,
    accessKey,
    secretKey,
    pid: child.pid!,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      client.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
