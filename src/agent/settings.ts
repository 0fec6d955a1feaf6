import path from 'node:path';
import * as z from 'zod';
import {
  AGENT_STATE_DIR,
  bucketProblem,
  DEFAULT_REGION,
  endpointProblem,
  isDnsLabel,
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
}

const required = (name: string) =>
  z.string({ error: `${name} is required` }).trim().min(1, `${name} is required`);

const checked = (name: string, problem: (value: string) => string | undefined) =>
  required(name).superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });

const schema = z.object({
  S3_ENDPOINT: checked('S3_ENDPOINT', endpointProblem),
  S3_BUCKET: checked('S3_BUCKET', bucketProblem),
  S3_REGION: z
    .string()
    .trim()
    .optional()
    .superRefine((value, ctx) => {
      const message = value ? regionProblem(value) : undefined;
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    }),
  S3_CREDENTIALS: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().trim().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().trim().optional(),
  AWS_SESSION_TOKEN: z.string().trim().optional(),
  S3_STS_ENDPOINT: z
    .string()
    .trim()
    .optional()
    .superRefine((value, ctx) => {
      const message = value ? endpointProblem(value)?.replace('S3_ENDPOINT', 'S3_STS_ENDPOINT') : undefined;
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    }),
  NAMESPACE: required('NAMESPACE').refine(isDnsLabel, 'NAMESPACE must be a DNS label'),
  SESSION_NAME: required('SESSION_NAME').refine(isDnsLabel, 'SESSION_NAME must be a DNS label'),
  WORKSPACE_DIR: z.string().trim().optional(),
  SYNC_PATHS: tuningField('SYNC_PATHS'),
  SYNC_EXCLUDE: tuningField('SYNC_EXCLUDE'),
  SYNC_INTERVAL: tuningField('SYNC_INTERVAL'),
  MAX_SYNC_SIZE: tuningField('MAX_SYNC_SIZE'),
  HYDRATE_TIMEOUT_SECONDS: tuningField('HYDRATE_TIMEOUT_SECONDS'),
  FINAL_SYNC_TIMEOUT_SECONDS: tuningField('FINAL_SYNC_TIMEOUT_SECONDS'),
  REFRESH_AFTER_DAYS: tuningField('REFRESH_AFTER_DAYS'),
  SYNC_METRICS_PORT: tuningField('SYNC_METRICS_PORT'),
  SYNC_UNHEALTHY_MIN_SECONDS: tuningField('SYNC_UNHEALTHY_MIN_SECONDS'),
  LEASE_TTL_SECONDS: tuningField('LEASE_TTL_SECONDS'),
  TERMINATION_GRACE_SECONDS: tuningField('TERMINATION_GRACE_SECONDS'),
  POD_UID: z.string().trim().optional(),
  POD_NAME: z.string().trim().optional(),
  AGENT_STATE_DIR: z.string().trim().optional(),
  S3_SSE: z.string().optional(),
  S3_SSE_KMS_KEY_ID: z.string().optional(),
}).transform((values, ctx) => {
  try {
    const credentialMode = parseCredentialMode(values.S3_CREDENTIALS);
    // Keys are what the `keys` mode is; the other mode never reads them.
    if (credentialMode === 'keys') {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const) {
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
    ...values.encryption,
  };
}

export function sessionPrefix(settings: Pick<AgentSettings, 'namespace' | 'session'>): string {
  return `${settings.namespace}/${settings.session}/`;
}
