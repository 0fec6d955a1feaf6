import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { RemoteTarget } from '../agent/state/remote.js';
import { formatBytes } from '../shared/size.js';
import { describeError } from '../webhook/lookups/kube-read.js';
import { decide, loadKubeConfig, note, openStore, readProjectSecret, runTool, say, ToolError, UsageError, type KubeOptions } from './project.js';
import { AGENTIC_SESSION_GROUP, agenticSessionVersion, listAgenticSessions, livePodsBySession } from './session-cluster.js';
import { lastWrite, leaseHolder, listSavedSessions, removeSaved, sessionTarget, type SavedSession } from './session-retention.js';

export interface GcOptions extends KubeOptions {
  retention: string;
  namespace?: string[];
  yes?: boolean;
}

const OPT_IN_SELECTOR = 'ambient-code.io/session-storage=enabled';
const UNITS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };

/** "30d", "12h", "90m"; a bare number is days. */
export function parseRetention(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([dhm]?)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNITS[match[2] || 'd']! : NaN;
  if (!(ms > 0)) throw new UsageError(`--retention must be a duration like 30d, 12h or 90m, got "${text}"`);
  return ms;
}

interface Totals {
  removed: number;
  bytes: number;
  kept: number;
  failed: number;
}

/**
 * `session-storage gc`: in the opted-in namespaces, the saved state of sessions whose
 * AgenticSession no longer exists and whose last sync is older than the retention is
 * removed whole (a dry run unless --yes). Never a session with a live pod or owner, nor
 * the parent of an existing continuation. Without the AgenticSession CRD it does nothing.
 */
export function runGc(options: GcOptions): Promise<number> {
  return runTool(async () => {
    const retentionMs = parseRetention(options.retention);
    const kubeConfig = loadKubeConfig(options);
    const version = await agenticSessionVersion(kubeConfig);
    if (version === undefined) {
      say(`gc: the AgenticSession CRD (API group ${AGENTIC_SESSION_GROUP}) is not installed: nothing tells which sessions were deleted, so nothing is removed`);
      return 0;
    }
    const cutoff = new Date(Date.now() - retentionMs);
    const namespaces = options.namespace?.length ? options.namespace : await optedIn(kubeConfig);
    say(`gc: ${options.yes ? '' : 'dry run: '}sessions without an AgenticSession, last synced before ${cutoff.toISOString()}, in ${namespaces.length} namespaces`);
    const totals: Totals = { removed: 0, bytes: 0, kept: 0, failed: 0 };
    for (const namespace of namespaces) {
      try {
        await collectNamespace({ kubeConfig, version, cutoff, yes: options.yes === true, totals }, namespace);
      } catch (error) {
        totals.failed += 1;
        note(`gc: ${namespace}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const verb = options.yes ? 'removed' : 'would remove';
    say(`gc: ${verb} ${totals.removed} sessions, ${formatBytes(totals.bytes)} ${options.yes ? 'freed' : 'to free'}; kept ${totals.kept}${totals.failed ? `; ${totals.failed} namespaces failed` : ''}`);
    return totals.failed > 0 ? 1 : 0;
  });
}

async function optedIn(kubeConfig: KubeConfig): Promise<string[]> {
  try {
    const list = await kubeConfig.makeApiClient(CoreV1Api).listNamespace({ labelSelector: OPT_IN_SELECTOR });
    return list.items.flatMap((ns) => (ns.metadata?.name ? [ns.metadata.name] : [])).sort();
  } catch (error) {
    throw new ToolError(`cannot list the namespaces labelled ${OPT_IN_SELECTOR}: ${describeError(error)}`);
  }
}

interface GcContext {
  kubeConfig: KubeConfig;
  version: string;
  cutoff: Date;
  yes: boolean;
  totals: Totals;
}

async function collectNamespace(context: GcContext, namespace: string): Promise<void> {
  const secret = await readProjectSecret(context.kubeConfig, namespace);
  const decision = decide(secret);
  if (decision.kind !== 'sync' || secret.kind === 'absent') {
    say(`gc: ${namespace}: skipped, ${decision.kind === 'deny' ? decision.message : decision.kind === 'ephemeral' ? decision.warning : 'no integration secret'}`);
    return;
  }
  const sessions = await listAgenticSessions(context.kubeConfig, context.version, namespace);
  const pods = await livePodsBySession(context.kubeConfig, namespace);
  const project = openStore(secret.values, namespace, 'gc', 16);
  const signal = AbortSignal.timeout(60 * 60_000);
  try {
    const saved = await listSavedSessions(project.target.store, namespace, signal);
    const existing = new Set(sessions.map((s) => s.name));
    const parents = new Map(sessions.flatMap((s) => (s.parent ? [[s.parent, s.name] as const] : [])));
    for (const state of saved.values()) {
      if (existing.has(state.session)) continue;
      const why = parents.has(state.session) ? `parent of AgenticSession ${parents.get(state.session)}` : undefined;
      const live = why ?? pods.get(state.session)?.map((pod) => `pod ${pod} is running`).join(', ');
      await collectSession(context, sessionTarget(project.target.store, namespace, state.session), state, live, signal);
    }
  } finally {
    project.close();
  }
}

// One session with no AgenticSession: kept while anything still holds it or its last
// write is within the retention, else removed whole.
async function collectSession(context: GcContext, target: RemoteTarget, state: SavedSession, live: string | undefined, signal: AbortSignal): Promise<void> {
  const label = `gc: ${target.prefix.slice(0, -1)}`;
  const holder = live || (await leaseHolder(target, signal));
  const last = holder ? undefined : await lastWrite(target, state, signal);
  const keep = holder || (last === undefined || last >= context.cutoff ? `last written ${last?.toISOString() ?? 'at an unknown time'}, within the retention` : undefined);
  if (keep !== undefined) {
    context.totals.kept += 1;
    say(`${label}: kept (no AgenticSession): ${keep}`);
    return;
  }
  const what = `${state.objects.size} objects, ${formatBytes(state.bytes)}; last sync ${last!.toISOString()}, no AgenticSession`;
  context.totals.removed += 1;
  if (!context.yes) {
    context.totals.bytes += state.bytes;
    say(`${label}: would remove ${what}`);
    return;
  }
  const result = await removeSaved(target, state, signal);
  context.totals.bytes += result.bytes;
  say(`${label}: removed ${result.removed} objects (${formatBytes(result.bytes)} freed); ${what}`);
  if (result.failed.length > 0) throw new ToolError(`${label.slice(4)}: ${result.failed.length} objects could not be removed`);
}
