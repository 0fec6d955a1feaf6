import { setMaxListeners } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { loadSettings, sessionPrefix, type AgentSettings } from '../../../src/agent/settings.js';
import { hydrate } from '../../../src/agent/hydrate/hydrate.js';
import type { AgentLog } from '../../../src/agent/log.js';
import { AgentStore } from '../../../src/agent/store/s3-store.js';
import { CredentialSource } from '../../../src/agent/store/credentials.js';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { createSdkClient } from '../../../src/agent/store/sdk-writes.js';
import { Syncer, type CycleResult, type SyncContext } from '../../../src/agent/sync/sync.js';
import type { Metadata } from '../../../src/agent/state/metadata.js';
import { LEASE_KEY } from '../../../src/agent/state/lease.js';
import type { MinioInfo } from '../../support/minio.js';
import { RecordingStore, type RecordedRequest } from './recording-store.js';
import { FaultyStore } from './faulty-store.js';
import { IMAGE_CLI } from '../../support/image-layout.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = IMAGE_CLI;

export interface CapturedLog extends AgentLog {
  lines: string[];
  text(): string;
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => lines.push(`[info] ${message}`),
    detail: (message) => lines.push(`  ${message}`),
    warn: (message) => lines.push(`[warn] ${message}`),
    error: (message) => lines.push(`[error] ${message}`),
    text: () => lines.join('\n'),
  };
}

export interface Pod {
  env: Record<string, string>;
  settings: AgentSettings;
  workspace: string;
  stateDir: string;
  // A client of the test's own, to look at the bucket from outside the agent.
  client: S3Client;
  // The agent's production store, recording its requests.
  store: RecordingStore;
  // The same store's faults: each call passes through them before it is sent.
  faults: FaultyStore;
  log: CapturedLog;
  hydrate(options?: { progressIntervalMs?: number }): Promise<boolean>;
  // One syncer per pod, like the sidecar's process.
  sync(options?: { final?: boolean }): Promise<CycleResult>;
  dispose(): Promise<void>;
}

let sessionCounter = 0;

export function uniqueSession(): string {
  sessionCounter += 1;
  return `s-${process.pid}-${Date.now().toString(36)}-${sessionCounter}`;
}

export function agentEnv(
  minio: MinioInfo,
  bucket: string,
  session: string,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    S3_ENDPOINT: minio.endpoint,
    S3_BUCKET: bucket,
    S3_REGION: minio.region,
    AWS_ACCESS_KEY_ID: minio.accessKey,
    AWS_SECRET_ACCESS_KEY: minio.secretKey,
    NAMESPACE: 'project-a',
    SESSION_NAME: session,
    HYDRATE_TIMEOUT_SECONDS: '3',
    // A pod that stopped without its final sync is waited for this long by the next one.
    TERMINATION_GRACE_SECONDS: '1',
    ...overrides,
  };
}

// A pod: its own workspace and state EmptyDirs, the agent configured from env.
export async function newPod(
  env: Record<string, string>,
  syncOptions: Pick<SyncContext, 'refreshPerCycle'> = {},
): Promise<Pod> {
  const workspace = await mkdtemp(path.join(tmpdir(), 'ws-'));
  const stateDir = await mkdtemp(path.join(tmpdir(), 'state-'));
  const fullEnv = { WORKSPACE_DIR: workspace, AGENT_STATE_DIR: stateDir, ...env };
  const settings = loadSettings(fullEnv);
  const credentials = new CredentialSource(settings);
  const client = createSdkClient(new S3Endpoint(settings, 16, credentials), credentials);
  const log = captureLog();
  const faults = new FaultyStore(new AgentStore(settings, 16));
  const store = new RecordingStore(faults);
  const target = { store, prefix: sessionPrefix(settings) };
  const syncer = new Syncer({ settings, target, log, workers: 16, ...syncOptions });
  return {
    env: fullEnv,
    settings,
    workspace,
    stateDir,
    client,
    store,
    faults,
    log,
    hydrate: (options = {}) => hydrate({ settings, target, log, workers: 16, ...options }),
    // A final sync is the pod's last (SIGTERM's): it releases the session, as the sidecar does.
    sync: async (options = {}) => {
      const signal = new AbortController().signal;
      setMaxListeners(0, signal);
      const result = await syncer.cycle(signal, options);
      if (options.final) await syncer.release(signal);
      return result;
    },
    dispose: async () => {
      client.destroy();
      store.close();
      await rm(workspace, { recursive: true, force: true });
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    // The session's lease is the protocol's, beside the data: tests of it read it by name.
    for (const object of page.Contents ?? []) if (object.Key && !object.Key.endsWith(LEASE_KEY)) keys.push(object.Key.slice(prefix.length));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function getText(client: S3Client, bucket: string, key: string): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await response.Body?.transformToString('utf8')) ?? '';
}

// Every request the pod's agent sends from now on, with the key relative to the session prefix.
export function recordRequests(pod: Pick<Pod, 'store'>, options: { lease?: boolean } = {}): RecordedRequest[] {
  return pod.store.record(options);
}

export async function getMetadata(client: S3Client, bucket: string, prefix: string): Promise<Metadata> {
  return JSON.parse(await getText(client, bucket, `${prefix}metadata.json`)) as Metadata;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function ensureBuilt(): Promise<void> {
  try {
    await readFile(CLI);
  } catch {
    throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  }
}

export async function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
  withoutReadOverride = false,
): Promise<CliRun> {
  const running = startCli(args, env, withoutReadOverride);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      running.child.kill('SIGKILL');
      reject(new Error(`session-storage ${args.join(' ')} did not exit within ${timeoutMs}ms:\n${running.stdout()}\n${running.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([running.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RunningCli {
  child: ReturnType<typeof spawn>;
  stdout(): string;
  stderr(): string;
  // Resolves when stdout and stderr have matched `pattern` `count` times in total.
  waitFor(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  exited: Promise<CliRun>;
}

// `under`: a command the agent runs under (its arguments, then the agent's command line).
export function startCli(args: string[], env: Record<string, string>, withoutReadOverride = false, under: string[] = []): RunningCli {
  const started = Date.now();
  // Root reads any file whatever its mode; dropping the two capabilities that allow it
  // lets a test run as root see EACCES the way the non-root agent would, without needing
  // the checkout to be readable by another user.
  const [agent, agentArgs] = withoutReadOverride && process.getuid?.() === 0
    ? ['setpriv', ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search', process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  const [file, argv] = under.length > 0 ? [under[0]!, [...under.slice(1), agent, ...agentArgs]] : [agent, agentArgs];
  const child = spawn(file, argv, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliRun>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  const countOf = (pattern: RegExp) => (stdout + stderr).match(new RegExp(pattern.source, 'g'))?.length ?? 0;
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor: async (pattern, count = 1, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (countOf(pattern) < count) {
        if (child.exitCode !== null) throw new Error(`exited before ${pattern}:\n${stdout}\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${stdout}\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}

// What a promise expected to fail rejected with.
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

// A workspace's files, written with their folders: the state a runner leaves.
export async function writeFiles(workspace: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), body);
  }
}
