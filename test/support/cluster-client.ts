import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type { ClusterInfo } from './cluster.js';
import { IMAGE_CLI } from './image-layout.js';

// What e2e tests do to the real API server: kubectl exactly as a user types it, the
// client library for reads, and the webhook run as its own process.

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Api {
  core: CoreV1Api;
  admission: AdmissionregistrationV1Api;
}

export function adminApi(cluster: ClusterInfo): Api {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  return { core: kc.makeApiClient(CoreV1Api), admission: kc.makeApiClient(AdmissionregistrationV1Api) };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function kubectl(
  cluster: ClusterInfo,
  args: string[],
  options: { input?: string; kubeconfig?: string } = {},
): Promise<CommandResult> {
  const child = spawn(cluster.kubectl, ['--kubeconfig', options.kubeconfig ?? cluster.kubeconfigPath, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  const code = await new Promise<number>((done) => child.on('close', (c) => done(c ?? 1)));
  return { code, stdout, stderr };
}

/** kubectl that must succeed; returns stdout. */
export async function kubectlOk(cluster: ClusterInfo, args: string[], input?: string): Promise<string> {
  const result = await kubectl(cluster, args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

export function toYaml(...documents: object[]): string {
  return documents.map((d) => stringify(d)).join('---\n');
}

export async function readYaml<T>(path: string): Promise<T> {
  return parse(await readFile(resolve(ROOT, path), 'utf8')) as T;
}

/**
 * A project namespace as the platform makes one. There is no controller-manager, so the
 * `default` ServiceAccount the ServiceAccount admission plugin requires is created here.
 */
export async function createNamespace(
  cluster: ClusterInfo,
  name: string,
  labels: Record<string, string> = {},
  serviceAccounts: string[] = [],
): Promise<void> {
  await kubectlOk(
    cluster,
    ['apply', '-f', '-'],
    toYaml(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } },
      ...['default', ...serviceAccounts].map((sa) => ({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: name },
        automountServiceAccountToken: false,
      })),
    ),
  );
}

export function integrationSecret(namespace: string, values: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'ambient-non-vertex-integrations', namespace },
    type: 'Opaque',
    stringData: values,
  };
}

/** A kubeconfig holding a real token of a ServiceAccount (TokenRequest API). */
export async function serviceAccountKubeconfig(
  cluster: ClusterInfo,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const token = (await kubectlOk(cluster, ['create', 'token', serviceAccount, '-n', namespace, '--duration=2h'])).trim();
  const dir = await mkdtemp(join(tmpdir(), 'sa-kubeconfig-'));
  const path = join(dir, 'kubeconfig');
  const ca = await readFile(cluster.serverCaPath);
  await writeFile(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority-data': ca.toString('base64') } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: serviceAccount } }],
      'current-context': 'e2e',
    }),
    { mode: 0o600 },
  );
  return path;
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface WebhookProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `node dist/cli.js webhook` from the image's layout on a loopback port, as the Deployment runs it, with `env` added. */
export async function startWebhook(
  port: number,
  env: Record<string, string>,
): Promise<WebhookProcess> {
  const child = spawn(process.execPath, [IMAGE_CLI, 'webhook'], {
    env: { PATH: process.env.PATH ?? '', ADDRESS: '127.0.0.1', PORT: String(port), METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const url = `https://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitUntil(
      'webhook /readyz',
      async () => {
        if (child.exitCode !== null) throw new Error(`webhook exited ${child.exitCode}: ${output}`);
        return (await httpsStatus(`${url}/readyz`)) === 200 ? true : undefined;
      },
      30_000,
      200,
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${output}`);
  }
  return { url, child, output: () => output, stop };
}

// Readiness only: the TLS trust the test cares about is the API server's, via caBundle.
function httpsStatus(url: string): Promise<number> {
  return new Promise((done) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', () => done(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export function initContainer(pod: V1Pod, name: string): V1Container | undefined {
  return pod.spec?.initContainers?.find((c) => c.name === name);
}

export function anyContainer(pod: V1Pod, name: string): V1Container | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === name);
}
