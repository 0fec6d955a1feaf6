import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { describeMachine, type Machine } from './lib/machine.js';
import { imageEnv } from './lib/tools.js';
import { deploymentNodeFlags, httpsPost, startWebhook, type WebhookProcess } from './lib/webhook-process.js';
import type { PacedResult } from './paced-load.js';

const run = promisify(execFile);

export interface LoadResult {
  generator: 'autocannon' | 'paced';
  connections: number;
  seconds: number;
  rate?: number;
  requests: number;
  perSecond: number;
  non2xx: number;
  errors: number;
  latencyMs: { p50: number; p99: number; p99_9: number; max: number; mean: number };
}

export interface WebhookReport {
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  // The Deployment's NODE_OPTIONS the webhook ran with (absent in reports written before).
  nodeFlags?: string[];
  // The image's other ENV (absent in reports written before it was applied).
  imageEnv?: Record<string, string>;
  review: { file: string; bytes: number; patchOps: number; responseBytes: number };
  max: LoadResult;
  // The same client against a bare node:https server answering the same bytes (absent in
  // reports written before it was measured).
  baseline?: LoadResult;
  // The paced generator against that bare server: the latency floor of this machine, Node's
  // TLS and the client at the same rate (absent in reports written before it was measured).
  baselinePaced?: LoadResult;
  // autocannon -R: each connection's share of a second goes out as one burst.
  bursty: LoadResult;
  // The open-loop generator: one review every millisecond, latency counted from when it was due.
  fixed: LoadResult;
  idleRssMiB: number;
  rss: Array<{ second: number; mib: number }>;
  loadAverageAtEnd: string;
  profile: ProfileSummary & { seconds: number; file: string };
}

interface Options {
  repoRoot: string;
  workDir: string;
  seconds: number;
  command: string;
  log: (line: string) => void;
}

// A realistic session pod (the runner of a Job, with a workspace PVC), in the namespace of
// the integration secret below, so every review is a full mutation with S3 containers.
const REVIEW = 'test/fixtures/reviews/create-session-pod.json';
const SECRET = 'test/fixtures/secrets/complete.yaml';
const MAX_CONNECTIONS = 32;
const FIXED_RATE = 1000;
const FIXED_CONNECTIONS = 16;
const BURSTY_SECONDS = 30;
// The paced generator's connection pool; it opens only as many as the latency needs.
const PACED_SOCKETS = 64;
// Long enough for a stable p99 (60,000 reviews), short of the webhook's five minutes: the
// bare server holds nothing that could grow.
const BASELINE_PACED_SECONDS = 60;

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; p99_9: number; max: number; mean: number };
  non2xx: number;
  errors: number;
  duration: number;
}

/** autocannon in its own process, so the load generator does not share the webhook's event loop. */
async function autocannon(options: Options, url: string, bodyFile: string, connections: number, seconds: number, rate?: number): Promise<LoadResult> {
  const cli = path.join(options.repoRoot, 'node_modules', 'autocannon', 'autocannon.js');
  const args = [cli, '-j', '-m', 'POST', '-H', 'content-type=application/json', '-i', bodyFile, '-c', String(connections), '-d', String(seconds)];
  if (rate) args.push('-R', String(rate));
  const { stdout } = await run(process.execPath, [...args, url], { maxBuffer: 16 * 1024 * 1024 });
  const json = JSON.parse(stdout) as AutocannonJson;
  return {
    generator: 'autocannon',
    connections,
    seconds,
    ...(rate ? { rate } : {}),
    requests: json.requests.total,
    perSecond: json.requests.total / json.duration,
    non2xx: json.non2xx,
    errors: json.errors,
    latencyMs: { p50: json.latency.p50, p99: json.latency.p99, p99_9: json.latency.p99_9, max: json.latency.max, mean: json.latency.mean },
  };
}

async function paced(options: Options, url: string, ca: string, bodyFile: string, rate: number, seconds: number): Promise<LoadResult> {
  const script = path.join(options.repoRoot, 'bench', 'work', 'build', 'bench', 'paced-load.js');
  const { stdout } = await run(process.execPath, [script, JSON.stringify({ url, ca, body: bodyFile, rate, seconds, warmupSeconds: 2 })], {
    maxBuffer: 1024 * 1024,
  });
  const result = JSON.parse(stdout) as PacedResult;
  if (result.errors > 0) options.log(`paced run errors: ${JSON.stringify(result.errorCodes)}`);
  return {
    generator: 'paced',
    connections: PACED_SOCKETS,
    seconds,
    rate,
    requests: result.sent,
    perSecond: result.achievedPerSecond,
    non2xx: result.non2xx,
    errors: result.errors,
    latencyMs: result.latencyMs,
  };
}

async function sampleRss(webhook: WebhookProcess, everyMs: number, until: Promise<unknown>): Promise<Array<{ second: number; mib: number }>> {
  const samples: Array<{ second: number; mib: number }> = [];
  const started = Date.now();
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    samples.push({ second: Math.round((Date.now() - started) / 1000), mib: Math.round((await webhook.rssMiB()) * 10) / 10 });
    await Promise.race([new Promise((resolve) => setTimeout(resolve, everyMs)), until.catch(() => undefined)]);
  }
  samples.push({ second: Math.round((Date.now() - started) / 1000), mib: Math.round((await webhook.rssMiB()) * 10) / 10 });
  return samples;
}

// A broken webhook aborts the benchmark; a handful of failures in a long run is a finding
// the table reports (its failures column), not a reason to throw away the run.
function assertMostlyGood(name: string, result: LoadResult, log: (line: string) => void): void {
  const failures = result.non2xx + result.errors;
  if (failures > 0) log(`${name}: ${result.non2xx} non-2xx responses and ${result.errors} errors out of ${result.requests}`);
  if (failures > result.requests * 0.01) throw new Error(`${name}: more than 1% of the reviews failed`);
}

export async function benchWebhook(options: Options): Promise<WebhookReport> {
  const { repoRoot, workDir, log } = options;
  const dir = path.join(workDir, 'webhook');
  const certDir = path.join(dir, 'certs');
  const profileDir = path.join(dir, 'profile');
  await rm(dir, { recursive: true, force: true });
  await mkdir(profileDir, { recursive: true });
  await run(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'certs', '--service', 'session-storage-webhook', '--namespace', 'session-storage', '--dev', '--out', certDir]);
  const bodyFile = path.join(repoRoot, REVIEW);
  const body = await readFile(bodyFile, 'utf8');
  const secretFile = path.join(repoRoot, SECRET);
  const startedAt = new Date().toISOString();
  const machine = describeMachine();

  const nodeFlags = await deploymentNodeFlags(repoRoot);
  // The Deployment's NODE_OPTIONS replaces the image's; the rest of the image's ENV applies,
  // to the bare baseline as well, so the two differ only in the server.
  const { NODE_OPTIONS: _replaced, ...image } = imageEnv(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'));
  const webhook = await startWebhook({ repoRoot, certDir, serve: { webhook: { secretFile } }, logFile: path.join(dir, 'webhook.log'), nodeFlags, imageEnv: image });
  let answerBody: string;
  let max: LoadResult;
  let fixed: LoadResult;
  let bursty: LoadResult;
  let rss: Array<{ second: number; mib: number }>;
  let review: WebhookReport['review'];
  let idleRssMiB: number;
  try {
    idleRssMiB = Math.round((await webhook.rssMiB()) * 10) / 10;
    const answer = await httpsPost(webhook.url, body, webhook.ca);
    const response = (JSON.parse(answer.body) as { response?: { allowed?: boolean; patch?: string } }).response;
    if (answer.status !== 200 || response?.allowed !== true || !response.patch) {
      throw new Error(`the fixture review was not answered with an allowed patch: HTTP ${answer.status} ${answer.body.slice(0, 300)}`);
    }
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown[];
    review = { file: REVIEW, bytes: Buffer.byteLength(body), patchOps: patch.length, responseBytes: Buffer.byteLength(answer.body) };
    answerBody = answer.body;

    log('webhook: warm-up 5 s');
    await autocannon(options, webhook.url, bodyFile, MAX_CONNECTIONS, 5);
    log(`webhook: maximum throughput, ${MAX_CONNECTIONS} connections, 20 s`);
    max = await autocannon(options, webhook.url, bodyFile, MAX_CONNECTIONS, 20);
    assertMostlyGood('maximum throughput', max, log);
    log(`webhook: ${Math.round(max.perSecond)} reviews/s; autocannon -R ${FIXED_RATE} for ${BURSTY_SECONDS} s`);
    bursty = await autocannon(options, webhook.url, bodyFile, FIXED_CONNECTIONS, BURSTY_SECONDS, FIXED_RATE);
    assertMostlyGood('autocannon at a fixed rate', bursty, log);
    log(`webhook: paced ${FIXED_RATE}/s for ${options.seconds} s`);
    const load = paced(options, webhook.url, path.join(certDir, 'ca.crt'), bodyFile, FIXED_RATE, options.seconds);
    rss = await sampleRss(webhook, 5_000, load);
    fixed = await load;
    assertMostlyGood('paced fixed rate', fixed, log);
    log(`webhook: p50 ${fixed.latencyMs.p50} ms, p99 ${fixed.latencyMs.p99} ms, p99.9 ${fixed.latencyMs.p99_9} ms; RSS ${rss.at(-1)?.mib} MiB`);
  } finally {
    await webhook.stop();
  }

  const answerFile = path.join(dir, 'answer.json');
  await writeFile(answerFile, answerBody);
  log(`webhook: the bare node:https baseline, ${MAX_CONNECTIONS} connections, 20 s`);
  const bare = await startWebhook({ repoRoot, certDir, serve: { baseline: { answerFile } }, logFile: path.join(dir, 'baseline.log'), nodeFlags: [], imageEnv: image });
  let baseline: LoadResult;
  let baselinePaced: LoadResult;
  try {
    await autocannon(options, bare.url, bodyFile, MAX_CONNECTIONS, 5);
    baseline = await autocannon(options, bare.url, bodyFile, MAX_CONNECTIONS, 20);
    assertMostlyGood('baseline', baseline, log);
    log(`webhook: baseline ${Math.round(baseline.perSecond)} requests/s; the webhook reached ${(max.perSecond / baseline.perSecond).toFixed(2)}× of it`);
    log(`webhook: the baseline paced ${FIXED_RATE}/s for ${BASELINE_PACED_SECONDS} s`);
    baselinePaced = await paced(options, bare.url, path.join(certDir, 'ca.crt'), bodyFile, FIXED_RATE, BASELINE_PACED_SECONDS);
    assertMostlyGood('baseline paced', baselinePaced, log);
    log(`webhook: baseline paced p99 ${baselinePaced.latencyMs.p99} ms (the webhook: ${fixed.latencyMs.p99} ms)`);
  } finally {
    await bare.stop();
  }

  const profileSeconds = 15;
  log(`webhook: CPU profile under maximum load, ${profileSeconds} s`);
  const profiled = await startWebhook({
    repoRoot,
    certDir,
    serve: { webhook: { secretFile } },
    logFile: path.join(dir, 'webhook-profiled.log'),
    nodeFlags: [...nodeFlags, '--cpu-prof', '--cpu-prof-dir', profileDir],
    imageEnv: image,
  });
  try {
    await autocannon(options, profiled.url, bodyFile, MAX_CONNECTIONS, profileSeconds);
  } finally {
    await profiled.stop();
  }
  const profiles = (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile'));
  if (profiles.length === 0) throw new Error('the profiled webhook wrote no .cpuprofile');
  const profileFile = path.join(profileDir, profiles[0]!);
  const summary = await summarizeProfile(profileFile);
  await writeFile(path.join(dir, 'profile-summary.json'), JSON.stringify(summary, null, 2));
  return {
    command: options.command,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    nodeFlags,
    imageEnv: image,
    review,
    max,
    baseline,
    baselinePaced,
    bursty,
    fixed,
    idleRssMiB,
    rss,
    loadAverageAtEnd: describeMachine().loadAverage,
    profile: { ...summary, seconds: profileSeconds, file: path.relative(repoRoot, profileFile) },
  };
}

