import path from 'node:path';
import { z } from 'zod';
import { parseSize } from './size.js';

export interface SyncPath {
  // S3 prefix below the session, without the trailing slash (".claude").
  name: string;
  // Directory relative to the workspace root that holds this path's files.
  localDir: string;
}

export interface AgentSettings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  namespace: string;
  session: string;
  workspaceDir: string;
  syncPaths: SyncPath[];
  exclude: string[];
  syncIntervalSeconds: number;
  maxSyncSize: number;
  hydrateTimeoutSeconds: number;
  finalSyncTimeoutSeconds: number;
  stateDir: string;
  // Objects not written for this long are rewritten in place (the bucket's lifecycle
  // rule expires objects by age since their last write).
  refreshAfterDays: number;
}

export class SettingsError extends Error {}

export const DEFAULT_SYNC_PATHS = '.claude,artifacts,uploads';
export const DEFAULT_EXCLUDE = 'repos/**,node_modules/**,.venv/**,__pycache__/**';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// S3 bucket naming rules (3-63 chars, lowercase, digits, dots, hyphens).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PATH_NAME = /^[^/\\\0]+$/;

const required = (name: string) =>
  z.string({ error: `${name} is required` }).trim().min(1, `${name} is required`);

const seconds = (name: string, fallback: number, min: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return fallback;
      const parsed = Number(value);
      if (!Number.isFinite(parsed) || parsed < min) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a number of seconds >= ${min}, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    });

const schema = z.object({
  S3_ENDPOINT: required('S3_ENDPOINT').refine(
    (value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol),
    { message: 'S3_ENDPOINT must be an http(s) URL' },
  ),
  S3_BUCKET: required('S3_BUCKET').regex(BUCKET, 'S3_BUCKET is not a valid bucket name'),
  S3_REGION: z.string().trim().optional(),
  AWS_ACCESS_KEY_ID: required('AWS_ACCESS_KEY_ID'),
  AWS_SECRET_ACCESS_KEY: required('AWS_SECRET_ACCESS_KEY'),
  NAMESPACE: required('NAMESPACE').regex(DNS_LABEL, 'NAMESPACE must be a DNS label'),
  SESSION_NAME: required('SESSION_NAME').regex(DNS_LABEL, 'SESSION_NAME must be a DNS label'),
  WORKSPACE_DIR: z.string().trim().optional(),
  SYNC_PATHS: z.string().optional(),
  SYNC_EXCLUDE: z.string().optional(),
  SYNC_INTERVAL: seconds('SYNC_INTERVAL', 60, 1),
  MAX_SYNC_SIZE: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return 2 ** 30;
      const parsed = parseSize(value);
      if (parsed === undefined || parsed <= 0) {
        ctx.addIssue({ code: 'custom', message: `MAX_SYNC_SIZE must be a size like 500Mi or 1G, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    }),
  HYDRATE_TIMEOUT_SECONDS: seconds('HYDRATE_TIMEOUT_SECONDS', 120, 1),
  FINAL_SYNC_TIMEOUT_SECONDS: seconds('FINAL_SYNC_TIMEOUT_SECONDS', 45, 1),
  AGENT_STATE_DIR: z.string().trim().optional(),
  // Fractions are allowed (0.5 = 12 h); tests use a few seconds.
  REFRESH_AFTER_DAYS: z
    .string()
    .trim()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return 7;
      const parsed = Number(value);
      if (!Number.isFinite(parsed) || parsed <= 0) {
        ctx.addIssue({ code: 'custom', message: `REFRESH_AFTER_DAYS must be a number of days > 0, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    }),
});

export function parseSyncPaths(text: string): SyncPath[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new SettingsError('SYNC_PATHS must name at least one path');
  const seen = new Set<string>();
  return entries.map((entry) => {
    const [rawName, ...rest] = entry.split('=');
    const name = (rawName ?? '').trim();
    const localDir = rest.length > 0 ? rest.join('=').trim() : name;
    if (!PATH_NAME.test(name) || name === '.' || name === '..' || name === 'metadata.json') {
      throw new SettingsError(`SYNC_PATHS entry "${entry}": "${name}" is not a valid S3 prefix name`);
    }
    const normalized = path.posix.normalize(localDir);
    if (localDir === '' || path.posix.isAbsolute(localDir) || normalized === '..' || normalized.startsWith('../')) {
      throw new SettingsError(`SYNC_PATHS entry "${entry}": the local path must be relative and inside WORKSPACE_DIR`);
    }
    if (seen.has(name)) throw new SettingsError(`SYNC_PATHS names "${name}" twice`);
    seen.add(name);
    return { name, localDir: normalized };
  });
}

function parseList(text: string): string[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

// One clear line per problem: the first failing setting is what the operator fixes first.
export function loadSettings(env: NodeJS.ProcessEnv): AgentSettings {
  const result = schema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new SettingsError(issue?.message ?? 'invalid settings');
  }
  const values = result.data;
  const workspaceDir = path.resolve(values.WORKSPACE_DIR || '/workspace');
  return {
    endpoint: values.S3_ENDPOINT,
    bucket: values.S3_BUCKET,
    region: values.S3_REGION || 'us-east-1',
    accessKeyId: values.AWS_ACCESS_KEY_ID,
    secretAccessKey: values.AWS_SECRET_ACCESS_KEY,
    namespace: values.NAMESPACE,
    session: values.SESSION_NAME,
    workspaceDir,
    syncPaths: parseSyncPaths(values.SYNC_PATHS || DEFAULT_SYNC_PATHS),
    exclude: parseList(values.SYNC_EXCLUDE ?? DEFAULT_EXCLUDE),
    syncIntervalSeconds: values.SYNC_INTERVAL,
    maxSyncSize: values.MAX_SYNC_SIZE,
    hydrateTimeoutSeconds: values.HYDRATE_TIMEOUT_SECONDS,
    finalSyncTimeoutSeconds: values.FINAL_SYNC_TIMEOUT_SECONDS,
    stateDir: path.resolve(values.AGENT_STATE_DIR || '/var/lib/session-storage'),
    refreshAfterDays: values.REFRESH_AFTER_DAYS,
  };
}

export function sessionPrefix(settings: Pick<AgentSettings, 'namespace' | 'session'>): string {
  return `${settings.namespace}/${settings.session}/`;
}
