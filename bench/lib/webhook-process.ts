import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { freePort } from '../../scripts/lib/free-port.js';
import path from 'node:path';
import { parse } from 'yaml';

export interface WebhookProcess {
  url: string;
  pid: number;
  ca: Buffer;
  rssMiB(): Promise<number>;
  stop(): Promise<void>;
}

export function httpsPost(url: string, body: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca, agent: new Agent({ ca }), headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function httpsGet(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitReady(base: string, ca: Buffer, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`webhook exited with ${child.exitCode} before becoming ready`);
    if ((await httpsGet(`${base}/readyz`, ca).catch(() => 0)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('webhook not ready within 30 s');
}

interface DeploymentManifest {
  spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } } };
}

/**
 * The V8 flags the Deployment gives the webhook (its NODE_OPTIONS): the benchmarked process
 * runs with the same heap limits as production, or its RSS says nothing about a replica's.
 */
export async function deploymentNodeFlags(repoRoot: string): Promise<string[]> {
  const manifest = parse(await readFile(path.join(repoRoot, 'manifests', 'base', 'deployment.yaml'), 'utf8')) as DeploymentManifest;
  const env = manifest.spec.template.spec.containers.flatMap((container) => container.env ?? []);
  return (env.find((variable) => variable.name === 'NODE_OPTIONS')?.value ?? '').split(/\s+/).filter(Boolean);
}

export interface StartOptions {
  repoRoot: string;
  certDir: string;
  logFile: string;
  nodeFlags: string[];
  /** the image's environment besides NODE_OPTIONS (which the Deployment replaces with nodeFlags) */
  imageEnv: Record<string, string>;
  /** the session-storage webhook with this secret file, or the bare baseline server answering this file */
  serve: { webhook: { secretFile: string } } | { baseline: { answerFile: string } };
}

/**
 * `session-storage webhook` as an operator runs it locally: HTTPS with the dev certificates
 * and the file secret source, its decision log going to a file as a container's stdout
 * would; or the bare baseline server on the same certificate.
 */
export async function startWebhook(options: StartOptions): Promise<WebhookProcess> {
  const port = await freePort();
  const ca = await readFile(path.join(options.certDir, 'ca.crt'));
  const out = openSync(options.logFile, 'a');
  const tls = { TLS_CERT_FILE: path.join(options.certDir, 'tls.crt'), TLS_KEY_FILE: path.join(options.certDir, 'tls.key') };
  const [script, env] =
    'webhook' in options.serve
      ? [
          [path.join(options.repoRoot, 'dist', 'cli.js'), 'webhook', '--secret-file', options.serve.webhook.secretFile],
          { ADDRESS: '127.0.0.1', METRICS_PORT: '0', SHUTDOWN_DELAY_SECONDS: '0', DRAIN_TIMEOUT_SECONDS: '5' },
        ]
      : [[path.join(options.repoRoot, 'bench', 'work', 'build', 'bench', 'baseline-server.js')], { ANSWER_FILE: options.serve.baseline.answerFile }];
  const child = spawn(process.execPath, [...options.nodeFlags, ...script], {
    env: { ...options.imageEnv, PATH: process.env.PATH, PORT: String(port), ...tls, ...env },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const base = `https://127.0.0.1:${port}`;
  try {
    await waitReady(base, ca, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url: `${base}/mutate`,
    pid: child.pid!,
    ca,
    async rssMiB() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      return kib / 1024;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
