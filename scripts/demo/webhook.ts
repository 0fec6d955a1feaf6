import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'yaml';
import { ROOT } from '../lib/minio.js';

// The real `session-storage webhook` binary on loopback with dev certificates and a
// file-backed secret source, answering AdmissionReviews the way the API server sends them.

export const CLI = join(ROOT, 'dist', 'cli.js');
export const REVIEW_FILE = join(ROOT, 'test/fixtures/reviews/create-session-pod.json');
const DEMO_SECRET_FILE = join(ROOT, 'test/fixtures/secrets/demo.yaml');
const BAD_POD_FILE = join(ROOT, 'test/fixtures/pods/bad-session-name.yaml');

export type Say = (line: string) => void;

export interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

export interface ReviewResponse {
  response: { uid: string; allowed: boolean; patch?: string; warnings?: string[]; status?: { code: number; message: string } };
}

export interface Review {
  request: { uid: string; name?: string; object: unknown };
}

export interface DemoWebhook {
  port: number;
  logs: Record<string, unknown>[];
  post(review: unknown): Promise<ReviewResponse>;
  /** SIGTERM; resolves to the exit status. */
  stop(): Promise<number | null>;
  /** Kills the webhook if it still runs and removes the certificates. */
  cleanup(): Promise<void>;
}

export function relative(path: string): string {
  return path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path;
}

export async function readReview(): Promise<Review> {
  return JSON.parse(await readFile(REVIEW_FILE, 'utf8')) as Review;
}

/** Steps 1 and 2 of both demos: certificates, then the webhook until /readyz says ready. */
export async function startDemoWebhook(
  secretFile: string,
  env: Record<string, string>,
  say: Say,
  step: (text: string) => void,
): Promise<DemoWebhook> {
  const certDir = await mkdtemp(join(tmpdir(), 'session-storage-demo-'));
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(certDir, { recursive: true, force: true });
  };
  try {
    step(`session-storage certs --service session-storage-webhook --namespace ambient-session-storage --dev --out ${certDir}`);
    const certs = spawnSync(
      process.execPath,
      [CLI, 'certs', '--service', 'session-storage-webhook', '--namespace', 'ambient-session-storage', '--dev', '--out', certDir],
      { encoding: 'utf8' },
    );
    if (certs.status !== 0) throw new Error(`session-storage certs failed: ${certs.stderr.trim()}`);
    say(`   caBundle ${certs.stdout.trim().slice(0, 48)}... (ca.crt, tls.crt, tls.key)`);
    const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');

    step(`session-storage webhook --secret-file ${relative(secretFile)}   (https://127.0.0.1, TLS >= 1.2)`);
    const webhook = spawn(process.execPath, [CLI, 'webhook', '--secret-file', secretFile], {
      env: {
        ...process.env,
        ...env,
        ADDRESS: '127.0.0.1',
        PORT: '0',
        // Metrics have their own port; a fixed one could be taken on this machine.
        METRICS_PORT: '0',
        TLS_CERT_FILE: join(certDir, 'tls.crt'),
        TLS_KEY_FILE: join(certDir, 'tls.key'),
        SHUTDOWN_DELAY_SECONDS: '0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = webhook;
    const logs: Record<string, unknown>[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      webhook.once('exit', (status) => reject(new Error(`webhook exited early with status ${status}`)));
      createInterface({ input: webhook.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'webhook listening') resolve(entry.port as number);
      });
    });
    await waitReady(port, ca);
    say(`   listening on https://127.0.0.1:${port}, /readyz says ready`);

    return {
      port,
      logs,
      post: (review) => post(port, ca, review),
      stop: () => {
        webhook.removeAllListeners('exit');
        const exited = new Promise<number | null>((resolve) => webhook.once('exit', resolve));
        webhook.kill('SIGTERM');
        return exited;
      },
      cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

export function decodePatch(reply: ReviewResponse): PatchOperation[] {
  const patch = reply.response.patch;
  return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as PatchOperation[]);
}

export function show(reply: ReviewResponse, say: Say): void {
  const { response } = reply;
  say(`   uid ${response.uid}  allowed: ${response.allowed}`);
  for (const warning of response.warnings ?? []) say(`   warning: ${warning}`);
  if (response.status) say(`   denied (${response.status.code}): ${response.status.message}`);
  if (response.patch) {
    const operations = decodePatch(reply);
    say(`   JSONPatch, ${operations.length} operations (decoded from base64):`);
    for (const op of operations) {
      const value = op.value === undefined ? '' : ` ${summarize(op.value)}`;
      say(`     ${op.op.padEnd(7)} ${op.path}${value}`);
    }
  }
}

function summarize(value: unknown): string {
  const text = JSON.stringify(value);
  if (text.length <= 100) return text;
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item as { name?: string }).name ?? '...').join(', ')}] (full specs elided)`;
  }
  return `${text.slice(0, 97)}...`;
}

function call(port: number, ca: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, ca, headers: body === undefined ? {} : { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function waitReady(port: number, ca: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const answer = await call(port, ca, 'GET', '/readyz').catch(() => undefined);
    if (answer?.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the webhook never became ready');
}

async function post(port: number, ca: string, review: unknown): Promise<ReviewResponse> {
  const answer = await call(port, ca, 'POST', '/mutate', review);
  if (answer.status !== 200) throw new Error(`POST /mutate answered ${answer.status}: ${answer.text}`);
  return JSON.parse(answer.text) as ReviewResponse;
}

/** `npm run demo -- --webhook-only`: one admission, one denial, the logs, a drain. */
export async function webhookOnly(say: Say): Promise<void> {
  let n = 0;
  const step = (text: string) => say(`${++n}. ${text}`);
  const webhook = await startDemoWebhook(DEMO_SECRET_FILE, {}, say, step);
  try {
    const review = await readReview();
    step(`POST /mutate  ${relative(REVIEW_FILE)}  (session pod sess-7f3a-runner, PVC workspace)`);
    show(await webhook.post(review), say);

    review.request.uid = 'c0ffee00-0000-4000-8000-000000000002';
    review.request.object = parse(await readFile(BAD_POD_FILE, 'utf8'));
    step(`POST /mutate  same review carrying ${relative(BAD_POD_FILE)}`);
    show(await webhook.post(review), say);

    step('the webhook logged one line per decision:');
    for (const entry of webhook.logs.filter((e) => e.msg === 'admission decision')) say(`   ${JSON.stringify(entry)}`);

    step(`SIGTERM: drained and exited with status ${await webhook.stop()}`);
  } finally {
    await webhook.cleanup();
  }
}
