import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueCertificate } from '../../src/webhook/ca/pki.js';
import { startMinio, type MinioServer } from '../support/minio.js';
import { ensureBuilt, listKeys, runCli, uniqueSession } from './support/helpers.js';

const DAY_MS = 86_400_000;

// An S3 server behind a private CA, reached through the cluster's proxy: what on-prem
// Ceph RGW or MinIO look like from many clusters. The CA reaches the agent as the webhook
// gives it (NODE_EXTRA_CA_CERTS, a file from a ConfigMap), the proxy as HTTPS_PROXY.
describe('S3 over TLS with an internal CA, through a proxy', () => {
  let minio: MinioServer;
  let client: S3Client;
  let bucket: string;
  let dir: string;
  let caFile: string;
  let proxy: Server;
  const tunnels: string[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    const ca = await createCA('session-storage test CA', DAY_MS);
    const serving = await issueCertificate(ca, { commonName: 'minio', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server', validityMs: DAY_MS });
    minio = await startMinio({ tls: { ...serving, ca: ca.cert } });
    dir = await mkdtemp(path.join(tmpdir(), 'network-'));
    caFile = path.join(dir, 'ca.crt');
    await writeFile(caFile, ca.cert);
    client = new S3Client({
      endpoint: minio.endpoint,
      region: minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
      requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: ca.cert }) }),
    });
    bucket = `tls-${uniqueSession().slice(-8).replace(/[^a-z0-9]/g, '')}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    // A CONNECT proxy, as squid or a corporate egress proxy serves HTTPS.
    proxy = createServer();
    proxy.on('connect', (req, socket, head) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    client?.destroy();
    proxy?.closeAllConnections();
    await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
    await minio?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const envFor = async (session: string, extra: Record<string, string>) => {
    const workspace = path.join(dir, session);
    await mkdir(path.join(workspace, 'artifacts'), { recursive: true });
    return {
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: minio.region,
      AWS_ACCESS_KEY_ID: minio.accessKey,
      AWS_SECRET_ACCESS_KEY: minio.secretKey,
      NAMESPACE: 'project-a',
      SESSION_NAME: session,
      HYDRATE_TIMEOUT_SECONDS: '3',
      WORKSPACE_DIR: workspace,
      AGENT_STATE_DIR: path.join(workspace, '.state'),
      SYNC_PATHS: 'artifacts',
      ...extra,
    };
  };

  it('refuses the server without the CA, naming the certificate problem', async () => {
    const run = await runCli(['hydrate'], await envFor(uniqueSession(), {}));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/certificate/);
  });

  it('hydrates and syncs, deletions included, with the CA bundle and through HTTPS_PROXY', async () => {
    const session = uniqueSession();
    const env = await envFor(session, { NODE_EXTRA_CA_CERTS: caFile, HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
    expect(await runCli(['hydrate'], env)).toMatchObject({ code: 0 });
    await writeFile(path.join(env.WORKSPACE_DIR, 'artifacts/a.txt'), 'a');
    await writeFile(path.join(env.WORKSPACE_DIR, 'artifacts/b.txt'), 'b');
    expect(await runCli(['sync', '--once'], env)).toMatchObject({ code: 0 });
    await rm(path.join(env.WORKSPACE_DIR, 'artifacts/b.txt'));
    // The deletion goes through the lean client too, on the same sockets.
    const synced = await runCli(['sync', '--once'], env);
    expect(synced.code).toBe(0);
    expect(synced.stdout).toContain('1 deleted');
    const keys = await listKeys(client, bucket, `project-a/${session}/`);
    expect(keys.filter((key) => key.startsWith('artifacts/'))).toEqual(['artifacts/a.txt']);
    const port = new URL(minio.endpoint).port;
    expect(tunnels.length).toBeGreaterThan(0);
    expect(new Set(tunnels)).toEqual(new Set([`127.0.0.1:${port}`]));
  });

  it('goes direct to the hosts NO_PROXY names', async () => {
    const before = tunnels.length;
    const env = await envFor(uniqueSession(), {
      NODE_EXTRA_CA_CERTS: caFile,
      HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      NO_PROXY: '127.0.0.1',
    });
    expect(await runCli(['hydrate'], env)).toMatchObject({ code: 0 });
    await writeFile(path.join(env.WORKSPACE_DIR, 'artifacts/a.txt'), 'a');
    expect(await runCli(['sync', '--once'], env)).toMatchObject({ code: 0 });
    expect(tunnels.length).toBe(before);
  });
});
