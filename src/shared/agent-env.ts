import path from 'node:path';
import * as z from 'zod';
import { parseSize } from './size.js';
import { redactEndpoint } from './redact.js';

/*
 * The agent's environment: the contract between the webhook, which writes it into the
 * injected containers, and the agent, which reads it. Both sides parse with the functions
 * here, so a setting the webhook accepts is one the agent accepts, with the same meaning.
 */

export class SettingsError extends Error {}

export interface SyncPath {
  // S3 prefix below the session, without the trailing slash (".claude").
  name: string;
  // Directory relative to the workspace root that holds this path's files.
  localDir: string;
}

/**
 * The name of every variable the webhook sets in the injected containers, each one the
 * agent (or Node, for the network ones) reads: both sides name them through this object.
 */
export const AGENT_ENV = {
  S3_ENDPOINT: 'S3_ENDPOINT',
  S3_BUCKET: 'S3_BUCKET',
  S3_REGION: 'S3_REGION',
  S3_CREDENTIALS: 'S3_CREDENTIALS',
  AWS_ACCESS_KEY_ID: 'AWS_ACCESS_KEY_ID',
  AWS_SECRET_ACCESS_KEY: 'AWS_SECRET_ACCESS_KEY',
  AWS_SESSION_TOKEN: 'AWS_SESSION_TOKEN',
  S3_STS_ENDPOINT: 'S3_STS_ENDPOINT',
  AWS_ROLE_ARN: 'AWS_ROLE_ARN',
  AWS_WEB_IDENTITY_TOKEN_FILE: 'AWS_WEB_IDENTITY_TOKEN_FILE',
  S3_SSE: 'S3_SSE',
  S3_SSE_KMS_KEY_ID: 'S3_SSE_KMS_KEY_ID',
  NAMESPACE: 'NAMESPACE',
  SESSION_NAME: 'SESSION_NAME',
  // A continuation's parent session, on init-hydrate: its first pod starts from a copy of
  // the parent's saved state.
  PARENT_SESSION_NAME: 'PARENT_SESSION_NAME',
  // Where hydrate writes what the pod's status should say (files found missing).
  TERMINATION_MESSAGE_PATH: 'TERMINATION_MESSAGE_PATH',
  POD_UID: 'POD_UID',
  POD_NAME: 'POD_NAME',
  WORKSPACE_DIR: 'WORKSPACE_DIR',
  AGENT_STATE_DIR: 'AGENT_STATE_DIR',
  SYNC_PATHS: 'SYNC_PATHS',
  SYNC_EXCLUDE: 'SYNC_EXCLUDE',
  SYNC_INTERVAL: 'SYNC_INTERVAL',
  SYNC_DEBOUNCE_SECONDS: 'SYNC_DEBOUNCE_SECONDS',
  MAX_SYNC_SIZE: 'MAX_SYNC_SIZE',
  HYDRATE_TIMEOUT_SECONDS: 'HYDRATE_TIMEOUT_SECONDS',
  FINAL_SYNC_TIMEOUT_SECONDS: 'FINAL_SYNC_TIMEOUT_SECONDS',
  REFRESH_AFTER_DAYS: 'REFRESH_AFTER_DAYS',
  SYNC_METRICS_PORT: 'SYNC_METRICS_PORT',
  SYNC_UNHEALTHY_MIN_SECONDS: 'SYNC_UNHEALTHY_MIN_SECONDS',
  LEASE_TTL_SECONDS: 'LEASE_TTL_SECONDS',
  TERMINATION_GRACE_SECONDS: 'TERMINATION_GRACE_SECONDS',
  NODE_EXTRA_CA_CERTS: 'NODE_EXTRA_CA_CERTS',
  HTTPS_PROXY: 'HTTPS_PROXY',
  HTTP_PROXY: 'HTTP_PROXY',
  NO_PROXY: 'NO_PROXY',
} as const;

export const WORKSPACE_DIR = '/workspace';
export const AGENT_STATE_DIR = '/var/lib/session-storage';
export const DEFAULT_REGION = 'us-east-1';
// `uploads/` is the seed's name and `file-uploads/` the platform's for the same files:
// both are restored and synced, so sessions of either origin keep them. `.gemini` is the
// Gemini runner's state directory, as `.claude` is Claude's.
export const DEFAULT_SYNC_PATHS = '.claude,.gemini,artifacts,uploads,file-uploads';
// Where the kubelet reads a container's termination message (the pod's default
// terminationMessagePath).
export const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';
export const DEFAULT_EXCLUDE = 'repos/**,node_modules/**,.venv/**,__pycache__/**';

// Node timers overflow past 2^31 ms (about 24.8 days) and then fire at once; a day is far
// beyond any sensible interval or budget.
const MAX_SECONDS = 86_400;
const PATH_NAME = /^[^/\\\0]+$/;

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
    // metadata.json and the agent's own objects (.session-storage/) sit beside the
    // prefixes: a prefix of either name would collide with them.
    if (!PATH_NAME.test(name) || name === '.' || name === '..' || name === 'metadata.json' || name === '.session-storage') {
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

/**
 * The SYNC_PATHS text for `paths`, checked by parsing it back: a local path the format
 * cannot carry (a comma, leading or trailing space) throws instead of being mangled.
 */
export function formatSyncPaths(paths: readonly SyncPath[]): string {
  const text = paths.map((p) => (p.localDir === p.name ? p.name : `${p.name}=${p.localDir}`)).join(',');
  let back: SyncPath[] | undefined;
  try {
    back = parseSyncPaths(text);
  } catch {
    back = undefined;
  }
  const lost = paths.find((p, index) => back?.[index]?.name !== p.name || back[index]?.localDir !== p.localDir);
  if (back === undefined || back.length !== paths.length || lost !== undefined) {
    const what = lost === undefined ? `"${text}"` : `"${lost.name}" at local path "${lost.localDir}"`;
    throw new SettingsError(`SYNC_PATHS cannot express ${what}`);
  }
  return text;
}

export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

const seconds = (name: string) => (text: string) => {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 1 || value > MAX_SECONDS) {
    throw new SettingsError(`${name} must be a number of seconds from 1 to ${MAX_SECONDS}, got "${text}"`);
  }
  return value;
};

// A pod's grace period is its own plus the final sync's budget plus a margin: each of
// those may be up to a day, so the sum may be more than one.
function graceSeconds(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 1 || value > 3 * MAX_SECONDS) {
    throw new SettingsError(`TERMINATION_GRACE_SECONDS must be a number of seconds from 1 to ${3 * MAX_SECONDS}, got "${text}"`);
  }
  return value;
}

// 0 turns the watching off: cycles run every SYNC_INTERVAL only.
function debounceSeconds(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (value !== 0 && (value < 0.1 || value > MAX_SECONDS))) {
    throw new SettingsError(`${AGENT_ENV.SYNC_DEBOUNCE_SECONDS} must be 0 (no watching) or a number of seconds from 0.1 to ${MAX_SECONDS}, got "${text}"`);
  }
  return value;
}

function size(text: string): number {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes <= 0) {
    throw new SettingsError(`MAX_SYNC_SIZE must be a positive size like 500Mi or 1G, got "${text}"`);
  }
  return bytes;
}

function days(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new SettingsError(`REFRESH_AFTER_DAYS must be a number of days above 0 (fractions allowed), got "${text}"`);
  }
  return value;
}

function port(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new SettingsError(`SYNC_METRICS_PORT must be a port number from 1 to 65535, or 0 for none, got "${text}"`);
  }
  return value;
}

/** The agent's tuning: what an operator may set on the webhook, which passes it on. */
export const AGENT_TUNING = {
  [AGENT_ENV.SYNC_PATHS]: { fallback: DEFAULT_SYNC_PATHS, parse: parseSyncPaths },
  [AGENT_ENV.SYNC_EXCLUDE]: { fallback: DEFAULT_EXCLUDE, parse: parseList },
  [AGENT_ENV.SYNC_INTERVAL]: { fallback: '60', parse: seconds(AGENT_ENV.SYNC_INTERVAL) },
  // How long the sync paths must stay unchanged before a change starts a cycle: below the
  // gap between a session's writes (a turn's lines come seconds apart), so they settle.
  [AGENT_ENV.SYNC_DEBOUNCE_SECONDS]: { fallback: '1', parse: debounceSeconds },
  [AGENT_ENV.MAX_SYNC_SIZE]: { fallback: '1Gi', parse: size },
  [AGENT_ENV.HYDRATE_TIMEOUT_SECONDS]: { fallback: '120', parse: seconds(AGENT_ENV.HYDRATE_TIMEOUT_SECONDS) },
  [AGENT_ENV.FINAL_SYNC_TIMEOUT_SECONDS]: { fallback: '45', parse: seconds(AGENT_ENV.FINAL_SYNC_TIMEOUT_SECONDS) },
  [AGENT_ENV.REFRESH_AFTER_DAYS]: { fallback: '7', parse: days },
  // state-sync's /metrics and /healthz; the agent serves nothing unless given a port, the
  // webhook gives it one (see the webhook's SYNC_METRICS_PORT).
  [AGENT_ENV.SYNC_METRICS_PORT]: { fallback: '0', parse: port },
  // The least time without a successful cycle before state-sync's /healthz fails (the
  // threshold is 5 intervals when that is longer; src/shared/liveness.ts).
  [AGENT_ENV.SYNC_UNHEALTHY_MIN_SECONDS]: { fallback: '300', parse: seconds(AGENT_ENV.SYNC_UNHEALTHY_MIN_SECONDS) },
  // How long a session's owner pod may go without renewing its ownership before a new pod
  // takes the session over as after a crash (docs/HOW-IT-WORKS.md, "One session, many pods").
  [AGENT_ENV.LEASE_TTL_SECONDS]: { fallback: '300', parse: seconds(AGENT_ENV.LEASE_TTL_SECONDS) },
  // The pod's terminationGracePeriodSeconds, as the webhook set it: how long a new pod of
  // the session waits for this one's final sync at most. Kubernetes' default 30 s plus the
  // default final-sync budget and margin when the webhook did not say.
  [AGENT_ENV.TERMINATION_GRACE_SECONDS]: { fallback: '90', parse: graceSeconds },
} as const;

export type AgentTuningName = keyof typeof AGENT_TUNING;
export type AgentTuning = { [K in AgentTuningName]: ReturnType<(typeof AGENT_TUNING)[K]['parse']> };

/** The problem with `text` as the value of `name`, in the agent's words, if any. */
export function tuningProblem(name: AgentTuningName, text: string): string | undefined {
  try {
    AGENT_TUNING[name].parse(text);
    return undefined;
  } catch (error) {
    if (error instanceof SettingsError) return error.message;
    throw error;
  }
}

/**
 * A zod field reading one tuning variable into its parsed value. Unset or empty takes the
 * default, except SYNC_EXCLUDE, where empty means "exclude nothing".
 */
export function tuningField<K extends AgentTuningName>(name: K) {
  const setting = AGENT_TUNING[name];
  return z
    .string()
    .optional()
    .transform((text, ctx): AgentTuning[K] => {
      const unset = text === undefined || (text.trim() === '' && name !== AGENT_ENV.SYNC_EXCLUDE);
      const effective = unset ? setting.fallback : text;
      const problem = tuningProblem(name, effective);
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return setting.parse(effective) as AgentTuning[K];
    });
}

// Server-side encryption the agent asks for on every object it writes. Unset: the
// bucket's default encryption applies.
export const SSE_ALGORITHMS = ['AES256', 'aws:kms'] as const;
export type SseAlgorithm = (typeof SSE_ALGORITHMS)[number];

export interface Encryption {
  sse?: SseAlgorithm;
  sseKmsKeyId?: string;
}

/** S3_SSE and S3_SSE_KMS_KEY_ID, checked together: a key id without aws:kms would be ignored by S3 or refused. */
export function parseEncryption(sse: string | undefined, kmsKeyId: string | undefined): Encryption {
  const algorithm = sse?.trim() ?? '';
  const keyId = kmsKeyId?.trim() ?? '';
  if (algorithm !== '' && !(SSE_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new SettingsError(`S3_SSE must be AES256 or aws:kms (or unset for the bucket's default), got "${algorithm}"`);
  }
  if (keyId !== '' && algorithm !== 'aws:kms') {
    throw new SettingsError('S3_SSE_KMS_KEY_ID is only used with S3_SSE=aws:kms');
  }
  return {
    ...(algorithm === '' ? {} : { sse: algorithm as SseAlgorithm }),
    ...(keyId === '' ? {} : { sseKmsKeyId: keyId }),
  };
}

// Where the agent's S3 credentials come from (S3_CREDENTIALS): `keys`, the secret's access
// keys (with S3_SESSION_TOKEN when they are temporary), or `workload-identity`, the pod's
// ServiceAccount identity (IRSA's web identity token or EKS Pod Identity), no keys at all.
export const CREDENTIAL_MODES = ['keys', 'workload-identity'] as const;
export type CredentialMode = (typeof CREDENTIAL_MODES)[number];

export function parseCredentialMode(text: string | undefined): CredentialMode {
  const mode = text?.trim() ?? '';
  if (mode === '') return 'keys';
  if (!(CREDENTIAL_MODES as readonly string[]).includes(mode)) {
    throw new SettingsError(`S3_CREDENTIALS must be ${CREDENTIAL_MODES.map((m) => `"${m}"`).join(' or ')} (got "${mode}")`);
  }
  return mode as CredentialMode;
}

// The S3 connection values. The webhook checks them in the namespace's secret before it
// injects the agent; the agent checks them again, with the same rules, at start.

export function endpointProblem(value: string): string | undefined {
  const shown = redactEndpoint(value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `S3_ENDPOINT must be an http or https URL (got "${shown}")`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `S3_ENDPOINT must be an http or https URL (got "${shown}")`;
  }
  if (url.username !== '' || url.password !== '') {
    return 'S3_ENDPOINT must not embed credentials';
  }
  if (url.search !== '' || url.hash !== '') {
    return `S3_ENDPOINT must not have a query or fragment (got "${shown}")`;
  }
  return undefined;
}

// S3's bucket naming rules, which MinIO and Ceph enforce as well.
export function bucketProblem(value: string): string | undefined {
  const why = (reason: string) => `S3_BUCKET "${value}" is not a legal bucket name: ${reason}`;
  if (value.length < 3 || value.length > 63) return why('must be 3 to 63 characters long');
  if (!/^[a-z0-9.-]+$/.test(value)) {
    return why('only lowercase letters, digits, dots and hyphens are allowed');
  }
  if (!/^[a-z0-9].*[a-z0-9]$/.test(value)) return why('must begin and end with a letter or digit');
  if (value.includes('..')) return why('must not contain two adjacent dots');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(value)) return why('must not be formatted as an IP address');
  return undefined;
}

export function regionProblem(value: string): string | undefined {
  return /^[a-z0-9]+(-[a-z0-9]+)*$/.test(value) && value.length <= 32
    ? undefined
    : `S3_REGION "${value}" is not a well-formed region (like us-east-1)`;
}
