import path from 'node:path';
import * as z from 'zod';
import {
  AGENT_ENV,
  AGENT_STATE_DIR,
  bucketProblem,
  DEFAULT_REGION,
  DEFAULT_TERMINATION_MESSAGE_PATH,
  endpointProblem,
  parseCredentialMode,
  parseEncryption,
  regionProblem,
  SettingsError,
  tuningField,
  WORKSPACE_DIR,
  type CredentialMode,
  type Encryption,
  type SyncPath,
} from '../shared/agent-env.js';
import { isDnsLabel } from '../shared/dns-label.js';

export { DEFAULT_EXCLUDE, parseSyncPaths, SettingsError, type SyncPath } from '../shared/agent-env.js';

export interface AgentSettings extends Encryption {
  endpoint: string;
  bucket: string;
  region: string;
  credentialMode: CredentialMode;
  // Unset in workload-identity mode: credentials.ts fetches them.
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  stsEndpoint?: string;
  namespace: string;
  session: string;
  workspaceDir: string;
  syncPaths: SyncPath[];
  exclude: string[];
  syncIntervalSeconds: number;
  // 0: the sync paths are not watched.
  syncDebounceSeconds: number;
  maxSyncSize: number;
  hydrateTimeoutSeconds: number;
  finalSyncTimeoutSeconds: number;
  refreshAfterDays: number;
  // 0: no metrics server.
  metricsPort: number;
  // /healthz fails past max(this, 5 intervals) without a successful cycle.
  unhealthyMinSeconds: number;
  stateDir: string;
  // The pod's UID and name (downward API); without a UID the pod is told apart by an id
  // kept in its state dir (lease.ts).
  podUid?: string;
  podName?: string;
  leaseTtlSeconds: number;
  terminationGraceSeconds: number;
  // A continuation's parent session: hydrate seeds this session from it once.
  parentSession?: string;
  // Where hydrate leaves what users should see in the pod's status (files found missing).
  terminationMessagePath: string;
}

const required = (name: string) =>
  z.string({ error: `${name} is required` }).trim().min(1, `${name} is required`);

const checked = (name: string, problem: (value: string) => string | undefined) =>
  required(name).superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });

const schema = z.object({
  [AGENT_ENV.S3_ENDPOINT]: checked(AGENT_ENV.S3_ENDPOINT, endpointProblem),
  [AGENT_ENV.S3_BUCKET]: checked(AGENT_ENV.S3_BUCKET, bucketProblem),
  [AGENT_ENV.S3_REGION]: z
    .string()
    .trim()
    .optional()
    .superRefine((value, ctx) => {
      const message = value ? regionProblem(value) : undefined;
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    }),
  [AGENT_ENV.S3_CREDENTIALS]: z.string().optional(),
  [AGENT_ENV.AWS_ACCESS_KEY_ID]: z.string().trim().optional(),
  [AGENT_ENV.AWS_SECRET_ACCESS_KEY]: z.string().trim().optional(),
  [AGENT_ENV.AWS_SESSION_TOKEN]: z.string().trim().optional(),
  [AGENT_ENV.S3_STS_ENDPOINT]: z
    .string()
    .trim()
    .optional()
    .superRefine((value, ctx) => {
      const message = value ? endpointProblem(value)?.replace(AGENT_ENV.S3_ENDPOINT, AGENT_ENV.S3_STS_ENDPOINT) : undefined;
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    }),
  [AGENT_ENV.NAMESPACE]: required(AGENT_ENV.NAMESPACE).refine(isDnsLabel, 'NAMESPACE must be a DNS label'),
  [AGENT_ENV.SESSION_NAME]: required(AGENT_ENV.SESSION_NAME).refine(isDnsLabel, 'SESSION_NAME must be a DNS label'),
  [AGENT_ENV.PARENT_SESSION_NAME]: z
    .string()
    .trim()
    .optional()
    .refine((value) => !value || isDnsLabel(value), 'PARENT_SESSION_NAME must be a DNS label'),
  [AGENT_ENV.TERMINATION_MESSAGE_PATH]: z.string().trim().optional(),
  [AGENT_ENV.WORKSPACE_DIR]: z.string().trim().optional(),
  [AGENT_ENV.SYNC_PATHS]: tuningField(AGENT_ENV.SYNC_PATHS),
  [AGENT_ENV.SYNC_EXCLUDE]: tuningField(AGENT_ENV.SYNC_EXCLUDE),
  [AGENT_ENV.SYNC_INTERVAL]: tuningField(AGENT_ENV.SYNC_INTERVAL),
  [AGENT_ENV.SYNC_DEBOUNCE_SECONDS]: tuningField(AGENT_ENV.SYNC_DEBOUNCE_SECONDS),
  [AGENT_ENV.MAX_SYNC_SIZE]: tuningField(AGENT_ENV.MAX_SYNC_SIZE),
  [AGENT_ENV.HYDRATE_TIMEOUT_SECONDS]: tuningField(AGENT_ENV.HYDRATE_TIMEOUT_SECONDS),
  [AGENT_ENV.FINAL_SYNC_TIMEOUT_SECONDS]: tuningField(AGENT_ENV.FINAL_SYNC_TIMEOUT_SECONDS),
  [AGENT_ENV.REFRESH_AFTER_DAYS]: tuningField(AGENT_ENV.REFRESH_AFTER_DAYS),
  [AGENT_ENV.SYNC_METRICS_PORT]: tuningField(AGENT_ENV.SYNC_METRICS_PORT),
  [AGENT_ENV.SYNC_UNHEALTHY_MIN_SECONDS]: tuningField(AGENT_ENV.SYNC_UNHEALTHY_MIN_SECONDS),
  [AGENT_ENV.LEASE_TTL_SECONDS]: tuningField(AGENT_ENV.LEASE_TTL_SECONDS),
  [AGENT_ENV.TERMINATION_GRACE_SECONDS]: tuningField(AGENT_ENV.TERMINATION_GRACE_SECONDS),
  [AGENT_ENV.POD_UID]: z.string().trim().optional(),
  [AGENT_ENV.POD_NAME]: z.string().trim().optional(),
  [AGENT_ENV.AGENT_STATE_DIR]: z.string().trim().optional(),
  [AGENT_ENV.S3_SSE]: z.string().optional(),
  [AGENT_ENV.S3_SSE_KMS_KEY_ID]: z.string().optional(),
}).transform((values, ctx) => {
  try {
    const credentialMode = parseCredentialMode(values.S3_CREDENTIALS);
    // Keys are what the `keys` mode is; the other mode never reads them.
    if (credentialMode === 'keys') {
      for (const name of [AGENT_ENV.AWS_ACCESS_KEY_ID, AGENT_ENV.AWS_SECRET_ACCESS_KEY]) {
        if (!values[name]) throw new SettingsError(`${name} is required (or S3_CREDENTIALS=workload-identity)`);
      }
    }
    return { ...values, credentialMode, encryption: parseEncryption(values.S3_SSE, values.S3_SSE_KMS_KEY_ID) };
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
    return z.NEVER;
  }
});

// One clear line per problem: the first failing setting is what the operator fixes first.
export function loadSettings(env: NodeJS.ProcessEnv): AgentSettings {
  const result = schema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new SettingsError(issue?.message ?? 'invalid settings');
  }
  const values = result.data;
  return {
    endpoint: values.S3_ENDPOINT,
    bucket: values.S3_BUCKET,
    region: values.S3_REGION || DEFAULT_REGION,
    credentialMode: values.credentialMode,
    ...(values.credentialMode === 'keys'
      ? {
          accessKeyId: values.AWS_ACCESS_KEY_ID,
          secretAccessKey: values.AWS_SECRET_ACCESS_KEY,
          ...(values.AWS_SESSION_TOKEN ? { sessionToken: values.AWS_SESSION_TOKEN } : {}),
        }
      : {}),
    ...(values.S3_STS_ENDPOINT ? { stsEndpoint: values.S3_STS_ENDPOINT } : {}),
    namespace: values.NAMESPACE,
    session: values.SESSION_NAME,
    workspaceDir: path.resolve(values.WORKSPACE_DIR || WORKSPACE_DIR),
    syncPaths: values.SYNC_PATHS,
    exclude: values.SYNC_EXCLUDE,
    syncIntervalSeconds: values.SYNC_INTERVAL,
    syncDebounceSeconds: values.SYNC_DEBOUNCE_SECONDS,
    maxSyncSize: values.MAX_SYNC_SIZE,
    hydrateTimeoutSeconds: values.HYDRATE_TIMEOUT_SECONDS,
    finalSyncTimeoutSeconds: values.FINAL_SYNC_TIMEOUT_SECONDS,
    refreshAfterDays: values.REFRESH_AFTER_DAYS,
    metricsPort: values.SYNC_METRICS_PORT,
    unhealthyMinSeconds: values.SYNC_UNHEALTHY_MIN_SECONDS,
    stateDir: path.resolve(values.AGENT_STATE_DIR || AGENT_STATE_DIR),
    ...(values.POD_UID ? { podUid: values.POD_UID } : {}),
    ...(values.POD_NAME ? { podName: values.POD_NAME } : {}),
    leaseTtlSeconds: values.LEASE_TTL_SECONDS,
    terminationGraceSeconds: values.TERMINATION_GRACE_SECONDS,
    // A session is never its own parent.
    ...(values.PARENT_SESSION_NAME && values.PARENT_SESSION_NAME !== values.SESSION_NAME ? { parentSession: values.PARENT_SESSION_NAME } : {}),
    terminationMessagePath: values.TERMINATION_MESSAGE_PATH || DEFAULT_TERMINATION_MESSAGE_PATH,
    ...values.encryption,
  };
}

export function sessionPrefix(settings: Pick<AgentSettings, 'namespace' | 'session'>): string {
  return `${settings.namespace}/${settings.session}/`;
}
