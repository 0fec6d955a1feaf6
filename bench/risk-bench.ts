import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { rootClient, type MinioInfo } from '../scripts/lib/minio.js';
import { diffRequests, type RequestCounts } from './lib/requests.js';
import type { Observation, Write } from './lib/risk.js';
import { oursEnv, rcloneEnv, type RunContext } from './lib/tools.js';
import { copyTree, type Tree } from './lib/tree.js';

/*
 * Data at risk and the cost of keeping it low: the three sidecars of the comparison run at
 * once, each on its own copy of the tree and its own bucket (MinIO counts requests per
 * bucket), while one writer appends a line to each copy's `.claude/history.jsonl` every
 * `writeEverySeconds` and one poller asks S3 for each object's length every POLL_MS.
 * Then the writer stops and, once every write is in S3, an idle window with no poller.
 */

export interface RiskOptions {
  minio: MinioInfo;
  repoRoot: string;
  tree: Tree;
  workDir: string;
  activeSeconds: number;
  idleSeconds: number;
  writeEverySeconds: number;
  log: (line: string) => void;
}

export interface RiskWindow {
  seconds: number;
  // The sidecar's requests, the poller's own taken out.
  requests: RequestCounts;
  cpuSeconds: number;
}

export interface RiskRun {
  id: string;
  name: string;
  settings: string;
  writes: Write[];
  observations: Observation[];
  active: RiskWindow;
  idle: RiskWindow;
  // The sidecar's high-water mark (ours only: rclone is a process per run).
  peakRssKiB?: number;
}

export interface RiskReport {
  activeSeconds: number;
  idleSeconds: number;
  writeEverySeconds: number;
  pollMs: number;
  syncIntervalSeconds: number;
  tools: RiskRun[];
}

const POLL_MS = 100;
// The platform's default, and the agent's.
const SYNC_INTERVAL_SECONDS = 60;
const HISTORY = '.claude/history.jsonl';
const CLOCK_TICKS = 100;
// A line like a session's transcript entry.
const LINE = `${JSON.stringify({ type: 'user', message: { role: 'user', content: 'x'.repeat(240) }, uuid: '00000000-0000-4000-8000-000000000000' })}\n`;

interface Mark {
  at: number;
  requests: RequestCounts;
  polls: number;
  cpuTicks: number;
}

/** One sidecar under test: set up and past its first sync, then left to run. */
interface Sidecar {
  id: string;
  name: string;
  settings: string;
  bucket: string;
  workspace: string;
  key: string;
  // CPU ticks used so far: ours reads its process's; rclone's are those of the runs started
  // by `at`, known once they ended (`settled`).
  cpuTicks(at: number, settled: boolean): Promise<number>;
  peakRssKiB(): Promise<number | undefined>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function procTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // utime and stime, fields 14 and 15 of the line (11 and 12 after the command name).
  return Number(fields[11]) + Number(fields[12]);
}

async function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}`)));
  });
}

async function runToEnd(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<void> {
  const log = await open(logFile, 'a');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: ['ignore', log.fd, log.fd] });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`${path.basename(command)} ${args[0]} exited with ${code} (see ${logFile})`);
  } finally {
    await log.close();
  }
}

// Ours as a pod runs it: hydrate, then the sidecar with the agent's defaults, or with
// `extra` settings (SYNC_DEBOUNCE_SECONDS=0: the interval alone, as before issue 26).
async function oursSidecar(options: RiskOptions, ctx: RunContext, id: string, extra: NodeJS.ProcessEnv, logFile: string): Promise<Sidecar> {
  const cli = path.join(options.repoRoot, 'dist', 'cli.js');
  const env = { ...oursEnv(options.minio, options.repoRoot, ctx, ctx.workspace, ctx.stateDir), ...extra };
  await runToEnd(process.execPath, [cli, 'hydrate'], env, logFile);
  const log = await open(logFile, 'a');
  const child = spawn(process.execPath, [cli, 'sync'], { env, stdio: ['ignore', 'pipe', log.fd] });
  child.stdout!.on('data', (chunk: Buffer) => void log.write(chunk));
  await waitForLine(child, /Sync complete/, 600_000);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    id,
    name: 'session-storage',
    settings: extra.SYNC_DEBOUNCE_SECONDS === '0' ? '`SYNC_DEBOUNCE_SECONDS=0`: every `SYNC_INTERVAL` only (before issue 26)' : 'defaults (`SYNC_DEBOUNCE_SECONDS=1`, `SYNC_INTERVAL=60`)',
    bucket: ctx.bucket,
    workspace: ctx.workspace,
    key: `bench/${ctx.runId}/${HISTORY}`,
    cpuTicks: (at, settled) => (settled ? Promise.resolve(NaN) : procTicks(child.pid!)),
    peakRssKiB: async () => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1]),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
      await log.close();
    },
  };
}

// The platform's state-sync: `rclone sync --checksum --copy-links` of the workspace, then
// SYNC_INTERVAL seconds of sleep, over and over. Each run's CPU time comes from GNU time.
async function rcloneSidecar(options: RiskOptions, ctx: RunContext, logFile: string): Promise<Sidecar> {
  const env = rcloneEnv(options.minio);
  const remote = `bench:${ctx.bucket}/peers/${ctx.runId}`;
  const runs: Array<{ startedAt: number; ticks: Promise<number> }> = [];
  const once = async (): Promise<number> => {
    const timeFile = path.join(ctx.scratch, `rclone-time-${runs.length}`);
    await runToEnd('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, '/usr/bin/rclone', 'sync', '--checksum', '--copy-links', ctx.workspace, remote], env, logFile);
    const [user, system] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
    return Math.round((user! + system!) * CLOCK_TICKS);
  };
  await once();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await sleep(SYNC_INTERVAL_SECONDS * 1000);
      if (stopped) break;
      const ticks = once();
      runs.push({ startedAt: Date.now(), ticks });
      await ticks;
    }
  })();
  return {
    id: 'rclone',
    name: 'rclone 1.60',
    settings: `\`rclone sync --checksum --copy-links\` every ${SYNC_INTERVAL_SECONDS} s (the platform's state-sync)`,
    bucket: ctx.bucket,
    workspace: ctx.workspace,
    key: `peers/${ctx.runId}/${HISTORY}`,
    cpuTicks: async (at, settled) => {
      if (!settled) return NaN;
      let total = 0;
      for (const run of runs) if (run.startedAt <= at) total += await run.ticks;
      return total;
    },
    peakRssKiB: async () => undefined,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

// Read one bucket at a time: MinIO answered two concurrent scrapes of different buckets
// with the same bucket's counters. Only lines labelled with `bucket` are counted.
async function bucketRequests(minio: MinioInfo, bucket: string): Promise<RequestCounts> {
  const response = await fetch(`${minio.endpoint}/minio/metrics/v3/bucket/api/${bucket}`);
  if (!response.ok) throw new Error(`minio bucket metrics: HTTP ${response.status}`);
  const counts: RequestCounts = {};
  for (const line of (await response.text()).split('\n')) {
    const match = /^minio_bucket_api_total\{([^}]*)\}\s+([0-9.eE+]+)$/.exec(line.trim());
    if (!match || !match[1]!.includes(`bucket="${bucket}"`)) continue;
    const name = /name="([^"]+)"/.exec(match[1]!)?.[1];
    if (name) counts[name] = (counts[name] ?? 0) + Number(match[2]);
  }
  return counts;
}

class Poller {
  readonly observations = new Map<string, Observation[]>();
  readonly polls = new Map<string, number>();
  private running = true;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly client: S3Client, private readonly sidecars: readonly Sidecar[]) {
    for (const sidecar of sidecars) {
      this.observations.set(sidecar.id, []);
      this.polls.set(sidecar.id, 0);
    }
  }

  start(): void {
    this.done = (async () => {
      while (this.running) {
        const next = Date.now() + POLL_MS;
        await Promise.all(this.sidecars.map((sidecar) => this.poll(sidecar)));
        await sleep(Math.max(0, next - Date.now()));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async poll(sidecar: Sidecar): Promise<void> {
    this.polls.set(sidecar.id, this.polls.get(sidecar.id)! + 1);
    let length = 0;
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: sidecar.bucket, Key: sidecar.key }));
      length = head.ContentLength ?? 0;
    } catch {
      length = 0;
    }
    this.observations.get(sidecar.id)!.push({ at: Date.now(), length });
  }
}

async function mark(options: RiskOptions, sidecar: Sidecar, poller: Poller | undefined): Promise<Mark> {
  const at = Date.now();
  return {
    at,
    requests: await bucketRequests(options.minio, sidecar.bucket),
    polls: poller?.polls.get(sidecar.id) ?? 0,
    cpuTicks: await sidecar.cpuTicks(at, false),
  };
}

// What the sidecar did between two marks, read once it has stopped.
async function windowBetween(sidecar: Sidecar, from: Mark, to: Mark): Promise<RiskWindow> {
  const requests = diffRequests(to.requests, from.requests);
  const polls = to.polls - from.polls;
  if (polls > 0) {
    const left = (requests.HeadObject ?? 0) - polls;
    if (left > 0) requests.HeadObject = left;
    else delete requests.HeadObject;
  }
  const ticks = async (at: Mark) => (Number.isNaN(at.cpuTicks) ? sidecar.cpuTicks(at.at, true) : at.cpuTicks);
  return { seconds: (to.at - from.at) / 1000, requests, cpuSeconds: ((await ticks(to)) - (await ticks(from))) / CLOCK_TICKS };
}

async function startSidecars(options: RiskOptions): Promise<Sidecar[]> {
  const sidecars: Sidecar[] = [];
  const client = rootClient(options.minio);
  try {
    for (const id of ['ours', 'ours-interval', 'rclone']) {
      const root = path.join(options.workDir, 'risk', id);
      const bucket = `risk-${id}-${Date.now().toString(36)}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const ctx: RunContext = { bucket, runId: `risk-${id}`, workspace: path.join(root, 'workspace'), stateDir: path.join(root, 'state'), scratch: path.join(root, 'scratch') };
      await Promise.all([ctx.stateDir, ctx.scratch].map((dir) => mkdir(dir, { recursive: true })));
      await copyTree(options.tree.base, ctx.workspace);
      const logFile = path.join(options.workDir, 'logs', `${ctx.runId}.log`);
      await mkdir(path.dirname(logFile), { recursive: true });
      options.log(`data at risk: starting ${id}`);
      if (id === 'rclone') sidecars.push(await rcloneSidecar(options, ctx, logFile));
      else sidecars.push(await oursSidecar(options, ctx, id, id === 'ours' ? {} : { SYNC_DEBOUNCE_SECONDS: '0' }, logFile));
    }
  } finally {
    client.destroy();
  }
  return sidecars;
}

// Appends one line to each workspace's history every `writeEverySeconds` until `until`.
async function write(sidecars: readonly Sidecar[], options: RiskOptions, until: number): Promise<Map<string, Write[]>> {
  const writes = new Map(sidecars.map((sidecar) => [sidecar.id, [] as Write[]]));
  let length = 0;
  for (let next = Date.now(); next < until; next += options.writeEverySeconds * 1000) {
    await sleep(Math.max(0, next - Date.now()));
    length += Buffer.byteLength(LINE);
    for (const sidecar of sidecars) {
      await appendFile(path.join(sidecar.workspace, HISTORY), LINE);
      writes.get(sidecar.id)!.push({ at: Date.now(), length });
    }
  }
  return writes;
}

// Until S3 shows every write (or two intervals and a margin have passed).
async function drain(poller: Poller, sidecars: readonly Sidecar[], writes: Map<string, Write[]>): Promise<void> {
  const deadline = Date.now() + (2 * SYNC_INTERVAL_SECONDS + 30) * 1000;
  const settled = () =>
    sidecars.every((sidecar) => {
      const last = writes.get(sidecar.id)!.at(-1);
      return last === undefined || poller.observations.get(sidecar.id)!.some((o) => o.at >= last.at && o.length >= last.length);
    });
  while (!settled() && Date.now() < deadline) await sleep(POLL_MS);
}

async function marks(options: RiskOptions, sidecars: readonly Sidecar[], poller?: Poller): Promise<Mark[]> {
  const taken: Mark[] = [];
  for (const sidecar of sidecars) taken.push(await mark(options, sidecar, poller));
  return taken;
}

export async function benchDataAtRisk(options: RiskOptions): Promise<RiskReport> {
  const sidecars = await startSidecars(options);
  const client = rootClient(options.minio);
  try {
    const poller = new Poller(client, sidecars);
    poller.start();
    options.log(`data at risk: writing every ${options.writeEverySeconds}s for ${options.activeSeconds}s`);
    const activeStart = await marks(options, sidecars, poller);
    const writes = await write(sidecars, options, Date.now() + options.activeSeconds * 1000);
    const activeEnd = await marks(options, sidecars, poller);
    await drain(poller, sidecars, writes);
    await poller.stop();
    options.log(`data at risk: idle for ${options.idleSeconds}s`);
    const idleStart = await marks(options, sidecars);
    await sleep(options.idleSeconds * 1000);
    const idleEnd = await marks(options, sidecars);
    const peaks = await Promise.all(sidecars.map((sidecar) => sidecar.peakRssKiB()));
    for (const sidecar of sidecars) await sidecar.stop();
    const tools = await Promise.all(
      sidecars.map(async (sidecar, index): Promise<RiskRun> => ({
        id: sidecar.id,
        name: sidecar.name,
        settings: sidecar.settings,
        writes: writes.get(sidecar.id)!,
        observations: poller.observations.get(sidecar.id)!,
        active: await windowBetween(sidecar, activeStart[index]!, activeEnd[index]!),
        idle: await windowBetween(sidecar, idleStart[index]!, idleEnd[index]!),
        ...(peaks[index] === undefined ? {} : { peakRssKiB: peaks[index] }),
      })),
    );
    const { activeSeconds, idleSeconds, writeEverySeconds } = options;
    return { activeSeconds, idleSeconds, writeEverySeconds, pollMs: POLL_MS, syncIntervalSeconds: SYNC_INTERVAL_SECONDS, tools };
  } finally {
    client.destroy();
    for (const sidecar of sidecars) await sidecar.stop().catch(() => undefined);
    await rm(path.join(options.workDir, 'risk'), { recursive: true, force: true });
  }
}
