import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hydrate } from '../../../src/agent/hydrate/hydrate.js';
import { loadSettings, type AgentSettings } from '../../../src/agent/settings.js';
import { Syncer, type CycleResult } from '../../../src/agent/sync/sync.js';
import { captureLog, type CapturedLog } from './helpers.js';
import type { MemoryStore } from './memory-store.js';

// A pod of the whole agent (hydrate, sync, refresh) over the in-memory store: its own
// workspace and state folders, session project-a/s1.

export const MEMORY_PREFIX = 'project-a/s1/';

const signal = new AbortController().signal;
const folders: string[] = [];

export interface MemoryPod {
  settings: AgentSettings;
  log: CapturedLog;
  hydrate(): Promise<boolean>;
  sync(options?: { final?: boolean }): Promise<CycleResult>;
  write(files: Record<string, string | Buffer>): Promise<void>;
  read(rel: string): Promise<Buffer>;
}

export async function newMemoryPod(store: MemoryStore, tuning: Partial<AgentSettings> = {}, refreshPerCycle?: number): Promise<MemoryPod> {
  const workspace = await mkdtemp(path.join(tmpdir(), 'mem-ws-'));
  const stateDir = await mkdtemp(path.join(tmpdir(), 'mem-state-'));
  folders.push(workspace, stateDir);
  const settings = {
    ...loadSettings({
      S3_ENDPOINT: 'http://memory.invalid',
      S3_BUCKET: 'memory',
      AWS_ACCESS_KEY_ID: 'a',
      AWS_SECRET_ACCESS_KEY: 'b',
      NAMESPACE: 'project-a',
      SESSION_NAME: 's1',
      WORKSPACE_DIR: workspace,
      AGENT_STATE_DIR: stateDir,
      HYDRATE_TIMEOUT_SECONDS: '2',
      // A pod that stopped without its final sync is waited for this long by the next one.
      TERMINATION_GRACE_SECONDS: '1',
    }),
    ...tuning,
  };
  const log = captureLog();
  const target = { store, prefix: MEMORY_PREFIX };
  const syncer = new Syncer({ settings, target, log, workers: 4, refreshPerCycle });
  return {
    settings,
    log,
    hydrate: () => hydrate({ settings, target, log, workers: 4 }),
    // A final sync is the pod's last (SIGTERM's): it releases the session, as the sidecar does.
    sync: async (options = {}) => {
      const result = await syncer.cycle(signal, options);
      if (options.final) await syncer.release(signal);
      return result;
    },
    write: async (files) => {
      for (const [rel, body] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
        await writeFile(path.join(workspace, rel), body);
      }
    },
    read: (rel) => readFile(path.join(workspace, rel)),
  };
}

/** Removes the folders of every pod made so far (each test file's afterEach). */
export async function removeMemoryPods(): Promise<void> {
  for (const dir of folders.splice(0)) await rm(dir, { recursive: true, force: true });
}
