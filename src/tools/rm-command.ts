import { formatBytes } from '../shared/size.js';
import { loadKubeConfig, note, openProjectStore, parseSessionRef, runTool, say, ToolError, type KubeOptions } from './project.js';
import { agenticSessionVersion, listAgenticSessions, livePodsBySession } from './session-cluster.js';
import { lastWrite, leaseHolder, removeSaved, savedSession, sessionTarget } from './session-retention.js';

export interface RmOptions extends KubeOptions {
  yes?: boolean;
}

/**
 * `session-storage rm NAMESPACE/SESSION [--yes]`: every object a session saved, removed
 * whole; a dry run unless --yes. Refused while a pod of the session (or of a continuation
 * starting from it) runs, or while a pod owns its state.
 */
export function runRm(ref: string, options: RmOptions): Promise<number> {
  return runTool(async () => {
    const { namespace, session } = parseSessionRef(ref);
    const kubeConfig = loadKubeConfig(options);
    const project = await openProjectStore(options, namespace, session, 16);
    const signal = AbortSignal.timeout(15 * 60_000);
    try {
      const pods = (await livePodsBySession(kubeConfig, namespace)).get(session) ?? [];
      if (pods.length > 0) throw new ToolError(`${namespace}/${session}: refusing, pod ${pods.join(', ')} is running for it: stop the session first`);
      const target = sessionTarget(project.target.store, namespace, session);
      const holder = await leaseHolder(target, signal);
      if (holder !== undefined) throw new ToolError(`${namespace}/${session}: refusing, ${holder}: stop the session first`);
      const saved = await savedSession(target.store, namespace, session, signal);
      const where = `s3://${target.store.bucket}/${target.prefix}`;
      if (saved.objects.size === 0) {
        say(`${where}: nothing saved`);
        return 0;
      }
      const last = await lastWrite(target, saved, signal);
      say(`${where}: ${saved.objects.size} objects, ${formatBytes(saved.bytes)}${last ? `, last written ${last.toISOString()}` : ''}`);
      await noteLiveSession(kubeConfig, namespace, session);
      if (!options.yes) {
        say('dry run: nothing removed; run again with --yes to remove them');
        return 0;
      }
      const result = await removeSaved(target, saved, signal);
      say(`removed ${result.removed} objects (${formatBytes(result.bytes)} freed) from ${where}`);
      if (result.failed.length > 0) throw new ToolError(`${result.failed.length} objects could not be removed (${result.failed.slice(0, 3).join(', ')}): run again`);
      return 0;
    } finally {
      project.close();
    }
  });
}

// The platform may still start the session again: it then starts fresh. Said, not refused.
async function noteLiveSession(kubeConfig: Parameters<typeof agenticSessionVersion>[0], namespace: string, session: string): Promise<void> {
  try {
    const version = await agenticSessionVersion(kubeConfig);
    if (version === undefined) return;
    const sessions = await listAgenticSessions(kubeConfig, version, namespace);
    if (sessions.some((s) => s.name === session)) note(`note: AgenticSession ${namespace}/${session} still exists: its next start begins without saved state`);
    const children = sessions.filter((s) => s.parent === session).map((s) => s.name);
    if (children.length > 0) note(`note: ${children.join(', ')} continue ${session}: any of them not started yet starts without its state`);
  } catch {
    // Only a courtesy: a user may remove state without the right to read AgenticSessions.
  }
}
