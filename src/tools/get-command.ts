import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { SyncPath } from '../agent/settings.js';
import { resolveKey } from '../agent/files/keys.js';
import { forEachBounded } from '../shared/pool.js';
import { describeFailure } from '../agent/store/store.js';
import { formatBytes } from '../shared/size.js';
import { downloadFile, WorkspaceTree } from '../agent/files/transfer.js';
import type { RemoteTarget } from '../agent/state/remote.js';
import { note, openProjectStore, parseSessionRef, runTool, say, UsageError, type KubeOptions } from './project.js';
import { filesUnder, readSessionFiles, type SessionFile } from './session-files.js';

export interface GetOptions extends KubeOptions {
  output: string;
}

const WORKERS = 8;

/**
 * `session-storage get NAMESPACE/SESSION PATH... [-o DIR]`: downloads files (or whole
 * folders) of a stopped session to DIR/<path>, with the agent's restore: temp file and
 * rename, mtime kept, nothing outside DIR and nothing through a symlink.
 */
export function runGet(ref: string, paths: string[], options: GetOptions): Promise<number> {
  return runTool(async () => {
    const { namespace, session } = parseSessionRef(ref);
    if (paths.length === 0) throw new UsageError('name at least one PATH (a file or a folder such as artifacts)');
    const store = await openProjectStore(options, namespace, session, WORKERS);
    try {
      const signal = AbortSignal.timeout(3_600_000);
      const state = await readSessionFiles(store.target, signal);
      const { selected, missing } = select(state.files, paths, `${namespace}/${session}`);
      const outDir = path.resolve(options.output);
      await mkdir(outDir, { recursive: true });
      const totals = await download(store.target, selected, outDir, signal);
      const failed = missing + totals.failed;
      note(`${totals.done} file${totals.done === 1 ? '' : 's'}, ${formatBytes(totals.bytes)} written to ${outDir}${failed > 0 ? `; ${failed} failed` : ''}`);
      return failed > 0 ? 1 : 0;
    } finally {
      store.close();
    }
  });
}

// The files at or below each path asked for, each once; a path with none is named.
function select(files: readonly SessionFile[], paths: readonly string[], session: string): { selected: SessionFile[]; missing: number } {
  let missing = 0;
  const selected = new Map<string, SessionFile>();
  for (const wanted of paths) {
    const found = filesUnder(files, wanted);
    if (found.length === 0) {
      note(`error: no file at ${wanted} in ${session}`);
      missing += 1;
    }
    for (const file of found) selected.set(file.key, file);
  }
  return { selected: [...selected.values()], missing };
}

// The agent's restore: every folder checked one component at a time, temp files opened
// without following links, so nothing lands outside DIR or through a link.
async function download(target: RemoteTarget, files: SessionFile[], outDir: string, signal: AbortSignal): Promise<{ done: number; bytes: number; failed: number }> {
  // Each top-level folder of the session lands in the folder of the same name.
  const folders: SyncPath[] = [...new Set(files.map((file) => file.key.split('/')[0]!))].map((name) => ({ name, localDir: name }));
  const tree = new WorkspaceTree(await realpath(outDir));
  const totals = { done: 0, bytes: 0, failed: 0 };
  await forEachBounded(files, WORKERS, async (file) => {
    const resolution = resolveKey(file.key, folders, outDir);
    const localPath = resolution.kind === 'file' ? resolution.localPath : resolution.kind === 'unmapped' ? path.join(outDir, file.key) : undefined;
    if (localPath === undefined) {
      note(`refusing ${file.key}: ${resolution.kind === 'refused' ? resolution.reason : 'unsafe key'}`);
      totals.failed += 1;
      return;
    }
    try {
      const known = file.mtimeMs === undefined ? undefined : { size: file.size, mtimeMs: file.mtimeMs };
      const { entry } = await downloadFile({ store: target.store, objectKey: target.prefix + file.key, relativePath: path.relative(outDir, localPath), known, signal }, tree);
      totals.bytes += entry.size;
      totals.done += 1;
      const shown = path.relative(process.cwd(), localPath);
      say(`${file.key} -> ${shown.startsWith('..') ? localPath : shown} (${formatBytes(entry.size)})`);
    } catch (error) {
      note(`error: ${file.key}: ${describeFailure(error)}`);
      totals.failed += 1;
    }
  });
  return totals;
}
