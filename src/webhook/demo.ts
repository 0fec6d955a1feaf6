import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// `npm run demo`: the webhook binary on loopback with dev certificates and the secret from
// test/fixtures, answering real AdmissionReviews; no cluster needed.
const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
const secretFile = join(root, 'test/fixtures/secrets/demo.yaml');
const reviewFile = join(root, 'test/fixtures/reviews/create-session-pod.json');
const badPodFile = join(root, 'test/fixtures/pods/bad-session-name.yaml');

interface ReviewResponse {
  response: { uid: string; allowed: boolean; patch?: string; warnings?: string[]; status?: { code: number; message: string } };
}

async function main(): Promise<void> {
  const certDir = await mkdtemp(join(tmpdir(), 'session-storage-demo-'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  try {
    say(`1. session-storage certs --service session-storage-webhook --namespace ambient-session-storage --dev --out ${certDir}`);
    const certs = spawnSync(
      process.execPath,
      [cli, 'certs', '--service', 'session-storage-webhook', '--namespace', 'ambient-session-storage', '--dev', '--out', certDir],
      { encoding: 'utf8' },
    );
    if (certs.status !== 0) throw new Error(`session-storage certs failed: ${certs.stderr.trim()}`);
    say(`   caBundle ${certs.stdout.trim().slice(0, 48)}... (ca.crt, tls.crt, tls.key)`);
    const ca = await readFile(join(certDir, 'ca.crt'), 'utf8');

    say(`2. session-storage webhook --secret-file ${relative(secretFile)}   (https://127.0.0.1, TLS >= 1.2)`);
    const child = spawn(process.execPath, [cli, 'webhook', '--secret-file', secretFile], {
      env: {
        ...process.env,
        ADDRESS: '127.0.0.1',
        PORT: '0',
        METRICS_PORT: '0',
        TLS_CERT_FILE: join(certDir, 'tls.crt'),
        TLS_KEY_FILE: join(certDir, 'tls.key'),
        SHUTDOWN_DELAY_SECONDS: '0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const logs: Record<string, unknown>[] = [];
    const listening = new Promise<number>((resolve, reject) => {
      child.once('exit', (status) => reject(new Error(`webhook exited early with status ${status}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'webhook listening') resolve(entry.port as number);
      });
    });
    const port = await listening;
    await waitReady(port, ca);
    say(`   listening on https://127.0.0.1:${port}, /readyz says ready`);

    const review = JSON.parse(await readFile(reviewFile, 'utf8')) as { request: { uid: string; object: unknown } };
    say(`3. POST /mutate  ${relative(reviewFile)}  (session pod sess-7f3a-runner, PVC workspace)`);
    show(await post(port, ca, review), say);

    const { parse } = await import('yaml');
    review.request.uid = 'c0ffee00-0000-4000-8000-000000000002';
    review.request.object = parse(await readFile(badPodFile, 'utf8'));
    say(`4. POST /mutate  same review carrying ${relative(badPodFile)}`);
    show(await post(port, ca, review), say);

    say('5. the webhook logged one line per decision:');
    for (const entry of logs.filter((e) => e.msg === 'admission decision')) say(`   ${JSON.stringify(entry)}`);

    child.removeAllListeners('exit');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    say(`6. SIGTERM: drained and exited with status ${await exited}`);
  } finally {
    await rm(certDir, { recursive: true, force: true });
  }
}

function show(reply: ReviewResponse, say: (line: string) => void): void {
  const { response } = reply;
  say(`   uid ${response.uid}  allowed: ${response.allowed}`);
  for (const warning of response.warnings ?? []) say(`   warning: ${warning}`);
  if (response.status) say(`   denied (${response.status.code}): ${response.status.message}`);
  if (response.patch) {
    const operations = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as {
      op: string;
      path: string;
      value?: unknown;
    }[];
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

function relative(path: string): string {
  return path.startsWith(root) ? path.slice(root.length) : path;
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

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
