import * as z from 'zod';
import {
  AGENT_TUNING,
  DEFAULT_REGION,
  regionProblem,
  tuningField,
  tuningProblem,
  type AgentTuningName,
  type SyncPath,
} from '../../shared/agent-env.js';
import { isDnsLabel } from '../../shared/dns-label.js';
import { parseEnvSchema } from '../../shared/env-schema.js';
import { AGENT_VOLUMES } from './names.js';
import type { S3Policy } from './s3-settings.js';
import { VERSION } from '../../shared/version.js';

export type SidecarMode = 'native' | 'legacy';

/** Everything the pure mutation needs; no I/O settings. */
export interface MutationConfig {
  /** the build's version, written into the status annotation (the caller reads it, not mutate) */
  version: string;
  agentImage: string;
  agentImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  sidecarMode: SidecarMode;
  stateVolume: string;
  emptyDirSizeLimit: string;
  syncInterval: number;
  syncDebounceSeconds: number;
  /** as the operator wrote it (checked with the agent's parser), so the pod shows "1Gi" */
  maxSyncSize: string;
  syncExclude: string;
  syncPaths: SyncPath[];
  hydrateTimeoutSeconds: number;
  finalSyncTimeoutSeconds: number;
  /** passed on only when the operator set it; the agent has its own default */
  refreshAfterDays: string | undefined;
  /** state-sync's metrics and liveness port; 0 injects none */
  syncMetricsPort: number;
  /** the least time without a successful cycle before state-sync's /healthz fails */
  syncUnhealthyMinSeconds: number;
  /** request the swapped workspace's sizeLimit as ephemeral storage on state-sync */
  reserveWorkspaceStorage: boolean;
  gracePeriodMarginSeconds: number;
  defaultRegion: string;
  /** the agent's uid when the runner declares none; undefined (`none`): no fixed uid */
  agentRunAsUser: number | undefined;
  resources: {
    requests: { cpu: string; memory: string };
    limits: { cpu: string; memory: string };
  };
  /** how the agent reaches S3 from inside the cluster: a private CA, a proxy */
  agentNetwork: AgentNetwork;
}

export interface AgentNetwork {
  /** a ConfigMap in the pod's namespace (trust-manager's Bundle puts one in every namespace) holding the CA bundle */
  caConfigMap: string | undefined;
  caKey: string;
  httpsProxy: string | undefined;
  httpProxy: string | undefined;
  noProxy: string | undefined;
}

export interface ServerConfig {
  address: string;
  port: number;
  /** plain HTTP, /metrics only: a NetworkPolicy can open it to monitoring alone */
  metricsPort: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
  headersTimeoutSeconds: number;
  requestTimeoutSeconds: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  bodyLimit: string;
  shutdownDelaySeconds: number;
  drainTimeoutSeconds: number;
  secretGetTimeoutMs: number;
  secretGetPerSecond: number;
}

export interface WebhookConfig {
  mutation: MutationConfig;
  policy: S3Policy;
  server: ServerConfig;
}

const quantity = z
  .string()
  .regex(/^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/, 'must be a Kubernetes quantity like 10Gi or 500m');
const seconds = z.coerce
  .number({ error: 'must be a number of seconds' })
  .int('must be a whole number of seconds')
  .positive('must be positive');
const policy = z.enum(['deny', 'ephemeral']);
const proxyUrl = z.string().refine((text) => {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}, 'must be an http(s) URL');
// Kept as written (the pod shows "1Gi", not a byte count), checked by the agent's parser.
const checkedText = (name: AgentTuningName) =>
  z
    .string()
    .superRefine((text, ctx) => {
      const problem = tuningProblem(name, text);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });

// The same names the agent reads, so one value means the same on both sides.
const schema = z.object({
  AGENT_IMAGE: z.string().min(1).optional(),
  AGENT_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  SIDECAR_MODE: z.enum(['native', 'legacy']).default('native'),
  STATE_VOLUME: z
    .string()
    .refine(isDnsLabel, 'must be a volume name (DNS label)')
    .refine((name) => !AGENT_VOLUMES.includes(name), 'is the name of a volume the webhook adds')
    .default('workspace'),
  EMPTYDIR_SIZE_LIMIT: quantity.default('10Gi'),
  // The agent's own parsers: a value the webhook starts with is one every agent accepts.
  SYNC_INTERVAL: tuningField('SYNC_INTERVAL'),
  SYNC_DEBOUNCE_SECONDS: tuningField('SYNC_DEBOUNCE_SECONDS'),
  MAX_SYNC_SIZE: checkedText('MAX_SYNC_SIZE').default(AGENT_TUNING.MAX_SYNC_SIZE.fallback),
  SYNC_EXCLUDE: checkedText('SYNC_EXCLUDE').default(AGENT_TUNING.SYNC_EXCLUDE.fallback),
  SYNC_PATHS: tuningField('SYNC_PATHS'),
  HYDRATE_TIMEOUT_SECONDS: tuningField('HYDRATE_TIMEOUT_SECONDS'),
  FINAL_SYNC_TIMEOUT_SECONDS: tuningField('FINAL_SYNC_TIMEOUT_SECONDS'),
  REFRESH_AFTER_DAYS: checkedText('REFRESH_AFTER_DAYS').optional(),
  SYNC_METRICS_PORT: checkedText('SYNC_METRICS_PORT').default('9464').transform(Number),
  SYNC_UNHEALTHY_MIN_SECONDS: tuningField('SYNC_UNHEALTHY_MIN_SECONDS'),
  RESERVE_WORKSPACE_STORAGE: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  GRACE_PERIOD_MARGIN_SECONDS: seconds.default(15),
  DEFAULT_S3_REGION: z
    .string()
    .superRefine((value, ctx) => {
      const problem = regionProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default(DEFAULT_REGION),
  AGENT_RUN_AS_USER: z
    .string()
    .regex(/^(none|[1-9]\d*)$/, 'must be a non-root uid, or none')
    .default('1001')
    .transform((uid) => (uid === 'none' ? undefined : Number(uid))),
  AGENT_CPU_REQUEST: quantity.default('100m'),
  AGENT_MEMORY_REQUEST: quantity.default('128Mi'),
  AGENT_CPU_LIMIT: quantity.default('1'),
  AGENT_MEMORY_LIMIT: quantity.default('1Gi'),
  AGENT_CA_CONFIGMAP: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a ConfigMap name')
    .optional(),
  AGENT_CA_KEY: z
    .string()
    .regex(/^[-._a-zA-Z0-9]+$/, 'must be a ConfigMap key')
    .default('ca.crt'),
  AGENT_HTTPS_PROXY: proxyUrl.optional(),
  AGENT_HTTP_PROXY: proxyUrl.optional(),
  AGENT_NO_PROXY: z.string().regex(/^[^\s]+$/, 'must be a comma-separated list without spaces').optional(),
  ON_INCOMPLETE: policy.default('deny'),
  ON_SECRET_ERROR: policy.default('deny'),
  ADDRESS: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(8443),
  METRICS_PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(9090),
  MAX_CONNECTIONS: z.coerce.number().int().positive().default(256),
  MAX_CONNECTIONS_PER_SOURCE: z.coerce.number().int().positive().default(64),
  HEADERS_TIMEOUT_SECONDS: seconds.default(10),
  REQUEST_TIMEOUT_SECONDS: seconds.default(30),
  TLS_CERT_FILE: z.string().min(1).default('/etc/webhook/certs/tls.crt'),
  TLS_KEY_FILE: z.string().min(1).default('/etc/webhook/certs/tls.key'),
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'must be like 3mb or 512kb').default('3mb'),
  SHUTDOWN_DELAY_SECONDS: z.coerce.number().min(0).default(5),
  DRAIN_TIMEOUT_SECONDS: z.coerce.number().min(0).default(20),
  SECRET_GET_TIMEOUT_MS: z.coerce.number().int().positive().default(2000),
  SECRET_GET_PER_SECOND: z.coerce.number().positive().default(5),
});

export class ConfigError extends Error {}

// What the schema cannot check one variable at a time.
function checkServer(c: z.infer<typeof schema>): void {
  if (c.METRICS_PORT !== 0 && c.METRICS_PORT === c.PORT) {
    throw new ConfigError('invalid webhook configuration: METRICS_PORT: must differ from PORT');
  }
  // Node refuses a server whose headers may take longer than the whole request.
  if (c.HEADERS_TIMEOUT_SECONDS > c.REQUEST_TIMEOUT_SECONDS) {
    throw new ConfigError('invalid webhook configuration: HEADERS_TIMEOUT_SECONDS: must not exceed REQUEST_TIMEOUT_SECONDS');
  }
}

/**
 * Reads and validates the webhook's settings; throws a ConfigError with a one-line message.
 * `version` (the build's, by default) goes into status annotations and the default image tag.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, version: string = VERSION): WebhookConfig {
  const c = parseEnvSchema(schema, env, 'webhook configuration', (message) => new ConfigError(message));
  checkServer(c);
  return {
    mutation: {
      version,
      agentImage: c.AGENT_IMAGE ?? `ghcr.io/ambient-code/ambient-session-storage:${version}`,
      agentImagePullPolicy: c.AGENT_IMAGE_PULL_POLICY,
      sidecarMode: c.SIDECAR_MODE,
      stateVolume: c.STATE_VOLUME,
      emptyDirSizeLimit: c.EMPTYDIR_SIZE_LIMIT,
      syncInterval: c.SYNC_INTERVAL,
      syncDebounceSeconds: c.SYNC_DEBOUNCE_SECONDS,
      maxSyncSize: c.MAX_SYNC_SIZE,
      syncExclude: c.SYNC_EXCLUDE,
      syncPaths: c.SYNC_PATHS,
      hydrateTimeoutSeconds: c.HYDRATE_TIMEOUT_SECONDS,
      finalSyncTimeoutSeconds: c.FINAL_SYNC_TIMEOUT_SECONDS,
      refreshAfterDays: c.REFRESH_AFTER_DAYS,
      syncMetricsPort: c.SYNC_METRICS_PORT,
      syncUnhealthyMinSeconds: c.SYNC_UNHEALTHY_MIN_SECONDS,
      reserveWorkspaceStorage: c.RESERVE_WORKSPACE_STORAGE,
      gracePeriodMarginSeconds: c.GRACE_PERIOD_MARGIN_SECONDS,
      defaultRegion: c.DEFAULT_S3_REGION,
      agentRunAsUser: c.AGENT_RUN_AS_USER,
      resources: {
        requests: { cpu: c.AGENT_CPU_REQUEST, memory: c.AGENT_MEMORY_REQUEST },
        limits: { cpu: c.AGENT_CPU_LIMIT, memory: c.AGENT_MEMORY_LIMIT },
      },
      agentNetwork: {
        caConfigMap: c.AGENT_CA_CONFIGMAP,
        caKey: c.AGENT_CA_KEY,
        httpsProxy: c.AGENT_HTTPS_PROXY,
        httpProxy: c.AGENT_HTTP_PROXY,
        noProxy: c.AGENT_NO_PROXY,
      },
    },
    policy: { onIncomplete: c.ON_INCOMPLETE, onSecretError: c.ON_SECRET_ERROR },
    server: serverConfig(c),
  };
}

function serverConfig(c: z.output<typeof schema>): ServerConfig {
  return {
    address: c.ADDRESS,
    port: c.PORT,
    metricsPort: c.METRICS_PORT,
    maxConnections: c.MAX_CONNECTIONS,
    maxConnectionsPerSource: c.MAX_CONNECTIONS_PER_SOURCE,
    headersTimeoutSeconds: c.HEADERS_TIMEOUT_SECONDS,
    requestTimeoutSeconds: c.REQUEST_TIMEOUT_SECONDS,
    tlsCertFile: c.TLS_CERT_FILE,
    tlsKeyFile: c.TLS_KEY_FILE,
    bodyLimit: c.BODY_LIMIT,
    shutdownDelaySeconds: c.SHUTDOWN_DELAY_SECONDS,
    drainTimeoutSeconds: c.DRAIN_TIMEOUT_SECONDS,
    secretGetTimeoutMs: c.SECRET_GET_TIMEOUT_MS,
    secretGetPerSecond: c.SECRET_GET_PER_SECOND,
  };
}
