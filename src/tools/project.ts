import type { KubeConfig } from '@kubernetes/client-node';
import { loadSettings, sessionPrefix, SettingsError, type AgentSettings } from '../agent/settings.js';
import type { RemoteTarget } from '../agent/state/remote.js';
import { AgentStore } from '../agent/store/s3-store.js';
import { INTEGRATION_SECRET } from '../webhook/config/names.js';
import { decideS3, type S3Decision } from '../webhook/config/s3-settings.js';
import { AGENT_ENV } from '../shared/agent-env.js';
import { isDnsLabel } from '../shared/dns-label.js';
import { redactUrlCredentials } from '../shared/redact.js';
import { summarizeSecret } from '../webhook/config/secret-summary.js';
import { loadKubeConfig, readIntegrationSecret, ToolError, UsageError, type KubeOptions } from './kube.js';

export { loadKubeConfig, ToolError, UsageError, type KubeOptions } from './kube.js';

// What the user-facing tools (ls, get, check) share: the namespace's integration secret
// read through the user's kubeconfig, the webhook's decision on it, and the session pods'
// own S3 adapter, so a tool sends the requests a session pod sends and sees what it sees.

// Every credential a tool has seen. Whatever reaches the terminal passes through redact():
// error texts come from servers and libraries, and a tool never prints a credential, nor
// the userinfo of an endpoint URL.
const credentials = new Set<string>();

export function redact(text: string): string {
  let out = redactUrlCredentials(text);
  for (const secret of credentials) out = out.split(secret).join('[redacted]');
  return out;
}

export const say = (line: string): void => void process.stdout.write(`${redact(line)}\n`);
export const note = (line: string): void => void process.stderr.write(`${redact(line)}\n`);

/** Runs a tool's action: exit 2 for usage errors, 1 for anything else that goes wrong, one line, no stack trace. */
export async function runTool(action: () => Promise<number>): Promise<number> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof UsageError) {
      note(`error: ${error.message}`);
      return 2;
    }
    note(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

export function checkDnsLabel(what: string, value: string): string {
  if (!isDnsLabel(value)) throw new UsageError(`${what} "${value}" is not a DNS label (lowercase letters, digits and "-")`);
  return value;
}

/** "NAMESPACE/SESSION", the way the S3 layout names a session. */
export function parseSessionRef(text: string): { namespace: string; session: string } {
  const parts = text.split('/');
  if (parts.length !== 2) throw new UsageError(`expected NAMESPACE/SESSION, got "${text}"`);
  return { namespace: checkDnsLabel('namespace', parts[0]!), session: checkDnsLabel('session', parts[1]!) };
}

export type ProjectSecret = { kind: 'absent' } | { kind: 'present'; values: Record<string, string> };

/** The secret as the kubelet would hand it to the agent: every key, decoded. */
export async function readProjectSecret(kubeConfig: KubeConfig, namespace: string): Promise<ProjectSecret> {
  const read = await readIntegrationSecret(kubeConfig, namespace);
  if (read.kind === 'absent') return read;
  if (read.kind === 'error') throw new ToolError(`cannot read secret ${namespace}/${INTEGRATION_SECRET}: ${read.reason}`);
  const values: Record<string, string> = {};
  for (const [key, encoded] of Object.entries(read.secret.data ?? {})) values[key] = Buffer.from(encoded, 'base64').toString('utf8');
  for (const key of ['S3_ACCESS_KEY', 'S3_SECRET_KEY']) {
    const value = values[key]?.trim();
    // Very short values would redact unrelated text; they are not credentials anyway.
    if (value !== undefined && value.length >= 4) credentials.add(value);
  }
  return { kind: 'present', values };
}

/** The webhook's decision table with its default policy (deny on incomplete or unreadable). */
export function decide(secret: ProjectSecret): S3Decision {
  return decideS3(secret.kind === 'absent' ? { kind: 'absent' } : summarizeSecret({ stringData: secret.values }), {
    onIncomplete: 'deny',
    onSecretError: 'deny',
  });
}

export interface ProjectStore {
  settings: AgentSettings;
  target: RemoteTarget;
  close(): void;
}

// The agent's own settings and store from the env the webhook gives it; the session is
// any DNS label when the tool is not about one session.
export function openStore(values: Record<string, string>, namespace: string, session: string, workers: number): ProjectStore {
  let settings: AgentSettings;
  try {
    settings = loadSettings({
      [AGENT_ENV.S3_ENDPOINT]: values.S3_ENDPOINT,
      [AGENT_ENV.S3_BUCKET]: values.S3_BUCKET,
      [AGENT_ENV.S3_REGION]: values.S3_REGION,
      [AGENT_ENV.AWS_ACCESS_KEY_ID]: values.S3_ACCESS_KEY,
      [AGENT_ENV.AWS_SECRET_ACCESS_KEY]: values.S3_SECRET_KEY,
      [AGENT_ENV.NAMESPACE]: namespace,
      [AGENT_ENV.SESSION_NAME]: session,
      // A bucket policy may require them: `check` writes as the agent would.
      [AGENT_ENV.S3_SSE]: values.S3_SSE,
      [AGENT_ENV.S3_SSE_KMS_KEY_ID]: values.S3_SSE_KMS_KEY_ID,
    });
  } catch (error) {
    if (error instanceof SettingsError) throw new ToolError(`the agent would refuse these settings: ${error.message}`);
    throw error;
  }
  const store = new AgentStore(settings, workers);
  return {
    settings,
    target: { store, prefix: sessionPrefix(settings) },
    close: () => store.close(),
  };
}

/** Secret, decision and store for a tool that needs S3 working; otherwise a ToolError in the webhook's words. */
export async function openProjectStore(
  options: KubeOptions,
  namespace: string,
  session: string,
  workers: number,
): Promise<ProjectStore> {
  const secret = await readProjectSecret(loadKubeConfig(options), namespace);
  const decision = decide(secret);
  if (decision.kind === 'deny') throw new ToolError(`${namespace}: ${decision.message}`);
  if (decision.kind === 'ephemeral' || secret.kind === 'absent') {
    throw new ToolError(`${namespace}: ${decision.kind === 'ephemeral' ? decision.warning : 'no integration secret'}: nothing is saved in S3`);
  }
  return openStore(secret.values, namespace, session, workers);
}
