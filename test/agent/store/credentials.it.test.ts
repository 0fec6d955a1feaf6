import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addUser, createBucket, rootClient } from '../../support/minio.js';
import { seedIamPolicy } from '../../support/policies.js';
import { assumeRole, type TemporaryCredentials } from '../../support/sts.js';
import { agentEnv, ensureBuilt, listKeys, newPod, runCli, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');
// The session's data, without the agent's own objects under .session-storage/.
const agentData = (key: string) => !key.startsWith('.session-storage/');

// What security teams allow instead of long-lived keys, against the real MinIO: its STS
// hands out temporary credentials (with a session token), as AWS STS does for a role.
describe('credentials other than long-lived keys', () => {
  let bucket: string;
  let user: { accessKey: string; secretKey: string };
  const pods: Pod[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'creds');
    user = await addUser(minio, seedIamPolicy(bucket));
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const secretsOf = (credentials: TemporaryCredentials) => [credentials.secretAccessKey, credentials.sessionToken];

  it('hydrates, uploads and deletes with temporary keys and their session token', async () => {
    const temporary = await assumeRole(minio, user);
    const pod = await newPod(
      agentEnv(minio, bucket, uniqueSession(), {
        AWS_ACCESS_KEY_ID: temporary.accessKeyId,
        AWS_SECRET_ACCESS_KEY: temporary.secretAccessKey,
        AWS_SESSION_TOKEN: temporary.sessionToken,
      }),
    );
    pods.push(pod);
    expect(await pod.hydrate()).toBe(true);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/a.txt'), 'a');
    await writeFile(path.join(pod.workspace, 'artifacts/b.txt'), 'b');
    // PutObject and DeleteObjects through the lean client: both sign with the token.
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 2 });
    await rm(path.join(pod.workspace, 'artifacts/b.txt'));
    expect(await pod.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect((await listKeys(pod.client, bucket, `project-a/${pod.settings.session}/`)).filter(agentData)).toEqual(['artifacts/a.txt', 'metadata.json']);
    for (const secret of secretsOf(temporary)) expect(pod.log.text()).not.toContain(secret);
  });

  it('names a temporary key without its token as a credentials failure, without printing it', async () => {
    const temporary = await assumeRole(minio, user);
    const env = agentEnv(minio, bucket, uniqueSession(), {
      AWS_ACCESS_KEY_ID: temporary.accessKeyId,
      AWS_SECRET_ACCESS_KEY: temporary.secretAccessKey,
    });
    const workspace = await mkdtemp(path.join(tmpdir(), 'ws-'));
    dirs.push(workspace);
    const run = await runCli(['hydrate'], { ...env, WORKSPACE_DIR: workspace, AGENT_STATE_DIR: path.join(workspace, '.state') });
    expect(run.code).toBe(1);
    expect(run.stderr + run.stdout).toContain('access denied');
    for (const secret of secretsOf(temporary)) expect(run.stderr + run.stdout).not.toContain(secret);
  });

  describe("EKS Pod Identity's container credentials", () => {
    // The Pod Identity agent's part, on loopback: credentials for the bearer of the pod's
    // token, from MinIO's STS, expiring soon enough that a long sync must fetch new ones.
    let agent: Server;
    let tokenFile: string;
    const served: string[] = [];
    const TOKEN = 'eks-pod-identity-token-example';

    beforeAll(async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'pod-identity-'));
      dirs.push(dir);
      tokenFile = path.join(dir, 'eks-pod-identity-token');
      await writeFile(tokenFile, TOKEN);
      agent = createServer((req, res) => {
        if (req.headers.authorization !== TOKEN) {
          res.writeHead(401).end();
          return;
        }
        void assumeRole(minio, user).then((temporary) => {
          served.push(temporary.accessKeyId);
          // Inside the five minutes before expiry at which the agent fetches again.
          const expiration = new Date(Date.now() + 4 * 60_000).toISOString();
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({ AccessKeyId: temporary.accessKeyId, SecretAccessKey: temporary.secretAccessKey, Token: temporary.sessionToken, Expiration: expiration }),
          );
        });
      });
      await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => agent.close(() => resolve())));

    it('restores and syncs with no key in the env, fetching credentials again before they expire', async () => {
      const workspace = await mkdtemp(path.join(tmpdir(), 'ws-'));
      dirs.push(workspace);
      const session = uniqueSession();
      const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...base } = agentEnv(minio, bucket, session);
      const env = {
        ...base,
        S3_CREDENTIALS: 'workload-identity',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${(agent.address() as AddressInfo).port}/v1/credentials`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
        WORKSPACE_DIR: workspace,
        AGENT_STATE_DIR: path.join(workspace, '.state'),
        SYNC_PATHS: 'artifacts',
      };
      const hydrated = await runCli(['hydrate'], env);
      expect(hydrated.stderr).toBe('');
      expect(hydrated.code).toBe(0);
      await mkdir(path.join(workspace, 'artifacts'), { recursive: true });
      for (let i = 0; i < 40; i += 1) await writeFile(path.join(workspace, `artifacts/f${i}.txt`), `file ${i}`);
      const synced = await runCli(['sync', '--once'], env);
      expect(synced.code).toBe(0);
      // Each process fetched, and every request after the first found them expiring: the
      // next ones came while the uploads went on, and the old ones stayed valid meanwhile.
      expect(served.length).toBeGreaterThanOrEqual(3);
      const client = rootClient(minio);
      const keys = await listKeys(client, bucket, `project-a/${session}/`);
      expect(keys.filter((key) => key.startsWith('artifacts/'))).toHaveLength(40);
      expect(keys).toContain('metadata.json');
      client.destroy();
      expect(hydrated.stdout + synced.stdout + synced.stderr).not.toContain(TOKEN);
    });

    it('fails hydrate at once, naming the missing identity, when the pod has none', async () => {
      const workspace = await mkdtemp(path.join(tmpdir(), 'ws-'));
      dirs.push(workspace);
      const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...base } = agentEnv(minio, bucket, uniqueSession());
      const started = Date.now();
      const run = await runCli(['hydrate'], { ...base, S3_CREDENTIALS: 'workload-identity', HYDRATE_TIMEOUT_SECONDS: '120', WORKSPACE_DIR: workspace, AGENT_STATE_DIR: path.join(workspace, '.state') });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('hydrate failed: access denied: S3_CREDENTIALS=workload-identity, but the pod has no workload identity');
      expect(Date.now() - started).toBeLessThan(20_000);
    });
  });
});
