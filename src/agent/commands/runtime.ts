import { loadSettings, sessionPrefix, SettingsError, type AgentSettings } from '../settings.js';
import type { AgentLog } from '../log.js';
import type { RemoteTarget } from '../state/remote.js';
import { AgentStore } from '../store/s3-store.js';

// Enough parallel requests to hide per-request latency on many small files without
// flooding a small S3-compatible server; the socket pool is sized to match.
export const TRANSFER_WORKERS = 32;

export interface AgentRuntime {
  settings: AgentSettings;
  target: RemoteTarget;
  // Releases the store's sockets.
  close(): void;
}

// Settings errors end the command with one line naming the setting.
export function loadRuntime(env: NodeJS.ProcessEnv, log: AgentLog): AgentRuntime | undefined {
  let settings: AgentSettings;
  try {
    settings = loadSettings(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    log.error(`invalid configuration: ${error.message}`);
    return undefined;
  }
  const store = new AgentStore(settings, TRANSFER_WORKERS);
  return {
    settings,
    target: { store, prefix: sessionPrefix(settings) },
    close: () => store.close(),
  };
}
