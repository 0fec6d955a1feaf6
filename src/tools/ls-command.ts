import { formatBytes } from '../shared/size.js';
import { note, openProjectStore, parseSessionRef, runTool, say, ToolError, type KubeOptions } from './project.js';
import { filesUnder, readSessionFiles } from './session-files.js';

export interface LsOptions extends KubeOptions {
  json?: boolean;
}

/** `session-storage ls NAMESPACE/SESSION [PATH]`: a stopped session's files, artifacts first. */
export function runLs(ref: string, path: string | undefined, options: LsOptions): Promise<number> {
  return runTool(async () => {
    const { namespace, session } = parseSessionRef(ref);
    const store = await openProjectStore(options, namespace, session, 4);
    try {
      const state = await readSessionFiles(store.target, AbortSignal.timeout(120_000));
      const files = filesUnder(state.files, path ?? '');
      if (files.length === 0) throw new ToolError(`no file at ${path} in ${namespace}/${session}`);
      if (options.json) {
        say(JSON.stringify(files.map((file) => ({ path: file.key, size: file.size, modified: modified(file.mtimeMs) ?? null, ...(file.refused ? { refused: file.refused } : {}) })), null, 2));
        return 0;
      }
      const total = files.reduce((sum, file) => sum + file.size, 0);
      const last = state.metadata ? `, last sync ${state.metadata.lastSync}` : '';
      note(`s3://${store.target.store.bucket}/${store.target.prefix}: ${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(total)}${last} (from the ${state.source})`);
      say(`${'SIZE'.padStart(10)}  ${'MODIFIED'.padEnd(20)}  PATH`);
      for (const file of files) {
        const refused = file.refused ? `  (refused by get: ${file.refused})` : '';
        say(`${formatBytes(file.size).padStart(10)}  ${(modified(file.mtimeMs) ?? '-').padEnd(20)}  ${file.key}${refused}`);
      }
      return 0;
    } finally {
      store.close();
    }
  });
}

function modified(mtimeMs: number | undefined): string | undefined {
  if (mtimeMs === undefined || mtimeMs <= 0) return undefined;
  return new Date(mtimeMs).toISOString().replace(/\.\d+Z$/, 'Z');
}
