import { mkdir, readFile, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { measure, measureUntil, type Measured } from './lib/measure.js';
import type { MinioInfo } from '../scripts/lib/minio.js';
import { diffRequests, scrapeRequests, type RequestCounts } from './lib/requests.js';
import type { Invocation, RunContext, Tool } from './lib/tools.js';
import { assertRestored, copyTree, overwriteWith, type Tree } from './lib/tree.js';

export const SCENARIOS = ['cold', 'nochange', 'changed', 'restore'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const SCENARIO_TITLES: Record<Scenario, string> = {
  cold: '(a) cold upload',
  nochange: '(b) no-change re-sync',
  changed: '(c) 1% changed re-sync',
  restore: '(d) restore into empty dir',
};

export interface Sample extends Measured {
  requests: RequestCounts;
}

// The previous pod's final sync before (d), where the tool has one: its wall time and the
// restore bundle it reported writing.
export interface FinalSync {
  wallSeconds: number;
  // Absent in results from before it was measured.
  peakRssKiB?: number;
  bundle?: string;
}

export interface ToolRuns {
  id: string;
  name: string;
  settings: string;
  samples: Record<Scenario, Sample[]>;
  finalSyncs: FinalSync[];
}

/*
 * Where each run's files go when it ends. This VM's ext4 has no journal, and there a new
 * inode skips every inode freed in the last minute (six while its inode table block is
 * still dirty): a restore started within a minute of the previous run's 20,000 files being
 * deleted spent ~30% of its CPU in that scan (perf: find_inode_bit -> recently_deleted) and
 * took twice as long as one started after none, a penalty landing on whichever tool ran
 * next. A node's journaled ext4 or XFS has no such scan. So runs are moved aside here and
 * deleted after the last one, while the disk has room for them.
 */
export interface RunTrash {
  dir: string;
  movedAside: number;
  // Runs deleted at once because the disk was short of room.
  removedAtOnce: number;
}

// Room left for MinIO's objects and the next runs before a run is kept until the end.
const TRASH_RESERVE_BYTES = 4 * 1024 ** 3;

export async function discardRun(root: string, trash: RunTrash, treeBytes: number): Promise<void> {
  const disk = await statfs(trash.dir);
  if (disk.bavail * disk.bsize > TRASH_RESERVE_BYTES + 4 * treeBytes) {
    await rename(root, path.join(trash.dir, path.basename(root)));
    trash.movedAside += 1;
    return;
  }
  await rm(root, { recursive: true, force: true });
  trash.removedAtOnce += 1;
}

interface Options {
  minio: MinioInfo;
  bucket: string;
  tree: Tree;
  workDir: string;
  runs: number;
  // The scaling row skips the restore to fit the time budget.
  restore: boolean;
  trash: RunTrash;
  log: (line: string) => void;
}

async function timed(minio: MinioInfo, logFile: string, invocation: Invocation): Promise<Sample> {
  const before = await scrapeRequests(minio.endpoint);
  if (invocation.doneLine) {
    const { atDone: after, ...measured } = await measureUntil(invocation.command, invocation.args, {
      env: invocation.env,
      logFile,
      doneLine: invocation.doneLine,
      atDone: () => scrapeRequests(minio.endpoint),
    });
    return { ...measured, requests: diffRequests(after, before) };
  }
  const measured = await measure(invocation.command, invocation.args, { env: invocation.env, logFile });
  const after = await scrapeRequests(minio.endpoint);
  return { ...measured, requests: diffRequests(after, before) };
}

/**
 * One tool's whole life on a fresh prefix: cold upload, a re-sync with nothing changed, a
 * re-sync after the change set lands, then a restore of the result into an empty folder,
 * checked byte for byte against the workspace.
 */
const BUNDLE_LINE = /Restore bundle written: (.*)/g;

// The last bundle line the tool logged: "N files, SIZE, SECONDSs".
async function lastBundleLine(logFile: string): Promise<string | undefined> {
  const matches = [...(await readFile(logFile, 'utf8')).matchAll(BUNDLE_LINE)];
  return matches.at(-1)?.[1];
}

interface RunSamples {
  samples: Partial<Record<Scenario, Sample>>;
  finalSync?: FinalSync;
}

async function runOnce(tool: Tool, run: number, options: Options): Promise<RunSamples> {
  const { minio, tree, workDir } = options;
  const runId = `${tool.id}-r${run}-${Date.now().toString(36)}`;
  const root = path.join(workDir, 'runs', runId);
  const ctx: RunContext = {
    bucket: options.bucket,
    runId,
    workspace: path.join(root, 'workspace'),
    stateDir: path.join(root, 'state'),
    scratch: path.join(root, 'scratch'),
  };
  const restoreDir = path.join(root, 'restore');
  const logFile = path.join(workDir, 'logs', `${runId}.log`);
  await mkdir(path.dirname(logFile), { recursive: true });
  await Promise.all([ctx.stateDir, ctx.scratch].map((dir) => mkdir(dir, { recursive: true })));
  await copyTree(tree.base, ctx.workspace);
  try {
    if (tool.setup) {
      const setup = tool.setup(ctx);
      await measure(setup.command, setup.args, { env: setup.env, logFile });
    }
    const cold = await timed(minio, logFile, tool.upload(ctx));
    const nochange = await timed(minio, logFile, tool.upload(ctx));
    await overwriteWith(tree.changes, ctx.workspace);
    const changed = await timed(minio, logFile, tool.upload(ctx));
    if (!options.restore) return { samples: { cold, nochange, changed } };
    let finalSync: FinalSync | undefined;
    if (tool.finalSync) {
      const invocation = tool.finalSync(ctx);
      const measured = await measure(invocation.command, invocation.args, { env: invocation.env, logFile });
      finalSync = { wallSeconds: measured.wallSeconds, peakRssKiB: measured.peakRssKiB, bundle: await lastBundleLine(logFile) };
    }
    await mkdir(restoreDir, { recursive: true });
    const restore = await timed(minio, logFile, tool.restore(ctx, restoreDir));
    await assertRestored(tree.expected, restoreDir);
    return { samples: { cold, nochange, changed, restore }, ...(finalSync ? { finalSync } : {}) };
  } finally {
    await discardRun(root, options.trash, tree.bytes);
  }
}

/** Runs every tool in turn, run after run, so a slow spell of the shared machine hits all of them. */
export async function benchAgent(tools: readonly Tool[], options: Options): Promise<ToolRuns[]> {
  const results: ToolRuns[] = tools.map((tool) => ({
    id: tool.id,
    name: tool.name,
    settings: tool.settings,
    samples: { cold: [], nochange: [], changed: [], restore: [] },
    finalSyncs: [],
  }));
  for (let run = 1; run <= options.runs; run++) {
    for (const [index, tool] of tools.entries()) {
      const { samples, finalSync } = await runOnce(tool, run, options);
      const line: string[] = [];
      if (finalSync) {
        results[index]!.finalSyncs.push(finalSync);
        line.push(`final-sync ${finalSync.wallSeconds.toFixed(2)}s/${Math.round((finalSync.peakRssKiB ?? 0) / 1024)}MiB (bundle: ${finalSync.bundle ?? 'none'})`);
      }
      for (const scenario of SCENARIOS) {
        const sample = samples[scenario];
        if (!sample) continue;
        results[index]!.samples[scenario].push(sample);
        line.push(`${scenario} ${sample.wallSeconds.toFixed(2)}s/${Math.round(sample.peakRssKiB / 1024)}MiB`);
      }
      options.log(`run ${run}/${options.runs} ${tool.id.padEnd(10)} ${line.join('  ')}`);
    }
  }
  return results;
}
