import { Writable } from 'node:stream';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/agent/settings.js';
import { createAgentLog } from '../../src/agent/log.js';
import { createLogger } from '../../src/shared/logger.js';
import { redactEndpoint } from '../../src/shared/redact.js';
import { createApp } from '../../src/webhook/server/app.js';
import { createMetrics } from '../../src/webhook/server/metrics.js';
import { ManifestSecretSource } from '../../src/webhook/lookups/secret-source.js';
import { defaultConfig, loadReview } from './fixtures.js';
import { NO_CLAIMS } from '../../src/webhook/lookups/claim-source.js';

const KEY = 'AKIAREDACTME7Q';
const SECRET = 'sup3r-s3cret-v4lue';

// The ways an endpoint carrying a credential reaches the secret: pasted with userinfo,
// the s3:// typo, and no scheme at all.
const endpoints = [
  `https://${KEY}:${SECRET}@s3.example.com`,
  `s3://${KEY}:${SECRET}@s3.example.com`,
  `${KEY}:${SECRET}@s3.example.com:9000`,
  `https://${KEY}:${SECRET}@s3.example.com/?region=x`,
];

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, sink };
}

function setup(endpoint: string, env: Record<string, string>) {
  const { lines, sink } = capture();
  const config = defaultConfig(env);
  const secrets = new ManifestSecretSource([
    {
      kind: 'Secret',
      metadata: { name: 'ambient-non-vertex-integrations' },
      stringData: { S3_ENDPOINT: endpoint, S3_BUCKET: 'sessions', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' },
    },
  ]);
  const app = createApp({
    deps: { config: config.mutation, policy: config.policy, secrets, claims: NO_CLAIMS },
    metrics: createMetrics(),
    logger: createLogger('webhook', sink),
    bodyLimit: '3mb',
    ready: () => true,
  });
  return { app, lines };
}

describe('no credential in any message', () => {
  it.each(endpoints)('the denial and the log line for S3_ENDPOINT=%s hold neither key nor secret', async (endpoint) => {
    const { app, lines } = setup(endpoint, {});
    const res = await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    expect(res.body.response.allowed).toBe(false);
    expect(res.body.response.status.message).toMatch(/^invalid S3 configuration: S3_ENDPOINT /);
    const everything = JSON.stringify(res.body) + lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(KEY);
  });

  it.each(endpoints)('the warning, the patch and its status annotation for S3_ENDPOINT=%s in ephemeral mode hold neither', async (endpoint) => {
    const { app, lines } = setup(endpoint, { ON_INCOMPLETE: 'ephemeral' });
    const res = await request(app).post('/mutate').send(loadReview('create-session-pod')).expect(200);
    expect(res.body.response.allowed).toBe(true);
    expect(res.body.response.warnings).toHaveLength(1);
    const patch = Buffer.from(res.body.response.patch as string, 'base64').toString('utf8');
    expect(patch).toContain('session-storage-status');
    const everything = JSON.stringify(res.body) + patch + lines.join('');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(KEY);
  });

  it('still says which endpoint is wrong, without its userinfo', () => {
    expect(redactEndpoint(`s3://${KEY}:${SECRET}@s3.example.com`)).toBe('s3://***@s3.example.com');
    expect(redactEndpoint(`${KEY}:${SECRET}@host:9000`)).toBe('***@host:9000');
    expect(redactEndpoint(`https://${KEY}:p@ss@host/`)).toBe('https://***@host/');
    expect(redactEndpoint('http://minio:9000')).toBe('http://minio:9000');
  });

  it('a URL with userinfo logged by mistake, in the message or a field, is printed without it', () => {
    const { lines, sink } = capture();
    const logger = createLogger('webhook', sink);
    logger.warn({ err: { message: `GET https://${KEY}:${SECRET}@s3.example.com/x failed` }, nested: [`s3://${KEY}:${SECRET}@h`] }, `calling https://${KEY}:${SECRET}@h`);
    logger.error({ err: new Error(`connect ECONNREFUSED https://${KEY}:${SECRET}@h`) }, 'unexpected error answering a review');
    expect(lines.at(-1)).toContain('"type":"Error"');
    expect(lines.at(-1)).toContain('connect ECONNREFUSED https://***@h');
    // A stack trace's file URLs have no userinfo and stay readable.
    logger.info(`at file:///app/node_modules/@aws-sdk/client-s3/dist/index.js:1:2`);
    expect(lines.at(-1)).toContain('file:///app/node_modules/@aws-sdk/client-s3');
    expect(lines.join('')).toContain('https://***@s3.example.com/x');
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain(KEY);
  });

  it('credential fields logged by mistake are censored, and the object logged is left as it was', () => {
    const { lines, sink } = capture();
    const logger = createLogger('webhook', sink);
    const settings = { S3_ACCESS_KEY: KEY, S3_SECRET_KEY: SECRET, region: 'eu-1' };
    logger.info({ settings, headers: { authorization: `Bearer ${SECRET}` }, sdk: { accessKeyId: KEY, secretAccessKey: SECRET } }, 'settings');
    expect(lines.at(-1)).toContain('"S3_SECRET_KEY":"[redacted]"');
    expect(lines.at(-1)).toContain('"region":"eu-1"');
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain(KEY);
    expect(settings.S3_SECRET_KEY).toBe(SECRET);
  });

  it('the agent refuses such an endpoint without printing it, and its log lines drop userinfo', () => {
    const base = { S3_BUCKET: 'sessions', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', NAMESPACE: 'p', SESSION_NAME: 's' };
    for (const endpoint of endpoints) {
      expect(() => loadSettings({ ...base, S3_ENDPOINT: endpoint })).toThrow(/^S3_ENDPOINT /);
      try {
        loadSettings({ ...base, S3_ENDPOINT: endpoint });
      } catch (error) {
        expect(String(error)).not.toContain(SECRET);
      }
    }
    const out: string[] = [];
    const log = createAgentLog({ write: (line: string) => out.push(line) }, { write: (line: string) => out.push(line) });
    log.error(`hydrate failed: connection refused (http://${KEY}:${SECRET}@10.0.0.5:9000/bucket)`);
    log.warn(`retrying s3://${KEY}:${SECRET}@h`);
    expect(out.join('')).toContain('http://***@10.0.0.5:9000/bucket');
    expect(out.join('')).not.toContain(SECRET);
  });
});
